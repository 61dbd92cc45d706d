package experiments

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

func TestReadRepeatFileRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadRepeatFile(dir); !errors.Is(err, ErrNotRunDir) {
		t.Errorf("no repeat.json: %v", err)
	}
	if IsRepeatDir(dir) {
		t.Error("an empty directory is a repeat directory")
	}
	for _, tc := range []struct {
		body string
		want error
		text string
	}{
		{`{"version": 2}`, ErrNewerVersion, "version 2"},
		{`{"experiment": "x"}`, ErrBadRepeatFile, "no version"},
		{`not json`, ErrBadRepeatFile, "repeat.json"},
		{`{"version": 1, "runs": [{"dir": "../elsewhere"}]}`, ErrBadRepeatFile, "../elsewhere"},
	} {
		os.WriteFile(filepath.Join(dir, RepeatFileName), []byte(tc.body), 0o644)
		_, err := ReadRepeatFile(dir)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v; want %v with %q", tc.body, err, tc.want, tc.text)
		}
		if tc.want == ErrBadRepeatFile && !errors.Is(err, ErrBadRunFile) {
			t.Errorf("%s: %v is not an ErrBadRunFile: the CLI would not call it bad input", tc.body, err)
		}
	}
	if !IsRepeatDir(dir) {
		t.Error("a directory with repeat.json is not a repeat directory")
	}
	os.WriteFile(filepath.Join(dir, "run.json"), []byte(`{"version": 1}`), 0o644)
	if IsRepeatDir(dir) {
		t.Error("a run directory is a repeat directory")
	}
}

// Bad input is refused before anything runs; a run that fails ends the repeat,
// which says so in repeat.json.
func TestRepeatBadInput(t *testing.T) {
	spec, err := ParseSpec("x.yaml", []byte("name: nocluster\nmodes: [durability]\nphases: [{name: baseline, duration: 1s}]\nworkloads: [{kind: oltp, rate: 10}]\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ue *UsageError
	for _, n := range []int{0, -1} {
		out := filepath.Join(t.TempDir(), "never")
		rr, err := Repeat(ctx, spec, n, RepeatOptions{Options: Options{Out: out}})
		if !errors.As(err, &ue) || ue.Field != "--repeat" || rr == nil {
			t.Errorf("n=%d: %v, want a usage error naming --repeat", n, err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("n=%d: the directory was made", n)
		}
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if _, err := Repeat(ctx, spec, 2, RepeatOptions{Options: Options{Out: full}}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a directory that is not empty: %v", err)
	}
	// No cluster and no target: the first run says so, and the repeat stops there.
	out := filepath.Join(t.TempDir(), "rep")
	done := 0
	rr, err := Repeat(ctx, spec, 3, RepeatOptions{Options: Options{Out: out, Seed: 5}, Hooks: Hooks{Done: func(*Spec, Options, *Result, error) { done++ }}})
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "run 1 of 3 (seed 5)") || done != 1 {
		t.Fatalf("%v (%d runs done), want the first run's usage error", err, done)
	}
	rf, err := ReadRepeatFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Runs) != 1 || rf.Runs[0].Seed != 5 || rf.Runs[0].Counted || rf.Runs[0].Error == "" || rf.Error == "" || rr.File.Verdict != Inconclusive {
		t.Errorf("repeat.json after a failed first run: %+v", rf)
	}
}

// The test's experiment: OLTP on node 1 only, one Galera node paused at random
// for 3 s. When the seed picks node 1, every client stream is on the faulted node
// and the failover gap is inconclusive; when it picks another, the gap is judged.
// Two seeds that pick differently make an unstable finding by design.
const repeatSpec = `name: repeat-test
description: pause a random node under OLTP on node 1
modes: [failover, durability]
cluster: {topology: galera, nodes: 3, memory: 512MiB}
data: {users: 1000, orders: 20000}
phases:
  - {name: warmup, duration: 1s}
  - {name: baseline, duration: 4s}
  - {name: fault, duration: 3s}
  - {name: recovery, duration: 4s}
workloads:
  - {kind: oltp, rate: 100, route: node=1, timeout: 2s}
faults:
  - {kind: pause, phase: fault, node: random}
`

// Repeat on a real cluster: two runs with seeds s and s+1, each in its directory
// with its seed, and repeat.json aggregating what their run.json files hold:
// medians, per-run verdicts, and the unstable finding, which JUnit carries.
func TestRepeatOnGalera(t *testing.T) {
	c := sharedGalera(t)
	spec, err := ParseSpec("repeat-test.yaml", []byte(repeatSpec), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Seeds whose random node differs: node 1 for one run, another for the other.
	pick := func(seed uint64) int {
		ns, err := faults.Resolve(faulttarget.Cluster(c), "random", seed)
		if err != nil {
			t.Fatal(err)
		}
		return ns[0].Index()
	}
	seed := uint64(1)
	for ; seed < 1000 && (pick(seed) == 1) == (pick(seed+1) == 1); seed++ {
	}
	t.Logf("seeds %d and %d pause nodes %d and %d", seed, seed+1, pick(seed), pick(seed+1))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "rep")
	var done []uint64
	start := time.Now()
	rr, err := Repeat(ctx, spec, 2, RepeatOptions{
		Options: Options{Cluster: c, Out: out, Seed: seed, Labels: testLabels, Log: t.Logf},
		Hooks:   Hooks{Done: func(_ *Spec, o Options, _ *Result, _ error) { done = append(done, o.Seed) }},
	})
	if err != nil {
		t.Fatalf("repeat: %v", err)
	}
	t.Logf("two runs in %v", time.Since(start).Round(time.Second))
	if !slices.Equal(done, []uint64{seed, seed + 1}) {
		t.Errorf("runs done with seeds %v, want %d and %d", done, seed, seed+1)
	}

	// Each run's directory, with its seed.
	var runs []*RunFile
	for i, want := range []uint64{seed, seed + 1} {
		rf, err := ReadRunFile(filepath.Join(out, "r"+strconv.Itoa(i+1), "run.json"))
		if err != nil {
			t.Fatal(err)
		}
		if rf.Seed != want || len(rf.Findings) == 0 {
			t.Errorf("r%d: seed %d, %d findings; want seed %d", i+1, rf.Seed, len(rf.Findings), want)
		}
		runs = append(runs, rf)
	}

	// repeat.json against the run.json files, computed here apart from the code.
	f, err := ReadRepeatFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.Repeats != 2 || len(f.Runs) != 2 || f.Runs[0].Dir != "r1" || f.Runs[1].Seed != seed+1 || !f.Runs[0].Counted || !f.Runs[1].Counted {
		t.Errorf("repeat.json runs: %+v", f.Runs)
	}
	unstable := map[string]bool{}
	for _, rf := range f.Findings {
		var vals []float64
		var verdicts []Verdict
		for _, run := range runs {
			v := Verdict("")
			for _, x := range run.Findings {
				if x.Mode == rf.Mode && x.Name == rf.Name {
					v = x.Verdict
					if v == Pass || v == Fail {
						vals = append(vals, x.Value)
					}
				}
			}
			verdicts = append(verdicts, v)
		}
		name := rf.Mode + ": " + rf.Name
		if !slices.Equal(rf.Verdicts, verdicts) {
			t.Errorf("%s: verdicts %v, run.json files %v", name, rf.Verdicts, verdicts)
		}
		switch len(vals) {
		case 0:
			if rf.Median != nil {
				t.Errorf("%s: median %v with no judged run", name, *rf.Median)
			}
		default:
			want := vals[0]
			if len(vals) == 2 {
				want = (vals[0] + vals[1]) / 2
			}
			if rf.Median == nil || *rf.Median != want || *rf.Min != slices.Min(vals) || *rf.Max != slices.Max(vals) {
				t.Errorf("%s: median %v, want %v from the run.json values %v", name, rf.Median, want, vals)
			}
		}
		if rf.Unstable != (verdicts[0] != verdicts[1]) {
			t.Errorf("%s: unstable %t with verdicts %v", name, rf.Unstable, verdicts)
		}
		if rf.Unstable {
			unstable[name] = true
		}
	}
	if len(unstable) == 0 {
		t.Fatalf("no unstable finding, though the seeds paused different nodes: %+v", f.Findings)
	}
	t.Logf("unstable: %v; verdict on the medians %s", unstable, f.Verdict)

	// JUnit carries each unstable finding.
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := WriteJUnitFile(path, []JUnitRun{NewJUnitRepeat(spec.Name, Options{Out: out, Seed: seed}, start, rr, nil)}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var doc xUnitSuites
	if err := xml.Unmarshal(b, &doc); err != nil || len(doc.Suites) != 1 {
		t.Fatalf("%v\n%s", err, b)
	}
	props := map[string]string{}
	for _, p := range doc.Suites[0].Properties {
		props[p.Name] = p.Value
	}
	if props["seeds"] != strconv.FormatUint(seed, 10)+","+strconv.FormatUint(seed+1, 10) || props["unstable"] != strconv.Itoa(len(unstable)) {
		t.Errorf("properties %v", props)
	}
	for name := range unstable {
		if _, ok := props["unstable: "+name]; !ok {
			t.Errorf("JUnit lacks the property of the unstable %s: %v", name, props)
		}
	}
}
