package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/testcontainers"
)

func TestListAndValidate(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"list"}, &out, &errb); code != 0 {
		t.Fatalf("list: exit %d: %s", code, errb.String())
	}
	for _, n := range []string{"memory-headroom", "htap-contention", "schema-change", "failover-kill", "failover-pause", "partition", "fail-sideways"} {
		if !strings.Contains(out.String(), n) {
			t.Errorf("list lacks %s:\n%s", n, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"validate", "partition", "--quick"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "partition: ok") {
		t.Errorf("validate partition: exit %d %s %s", code, out.String(), errb.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nmodes: [failover]\ncolour: blue\nphases: [{name: a, duration: 1s}]\nworkloads: [{kind: oltp}]\n"), 0o644)
	target := filepath.Join(t.TempDir(), "staging.yaml")
	os.WriteFile(target, []byte("name: staging\nactions: {pause: 'true', resume: 'true'}\nnodes:\n  - {name: db1, role: galera, dsn: 'app:pw@tcp(127.0.0.1:1)/app'}\n"), 0o644)
	noWrites := filepath.Join(t.TempDir(), "never")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"validate", bad}, []string{bad + ": line 3: field colour not found"}},
		{[]string{"validate", "no-such-experiment"}, []string{"no builtin experiment no-such-experiment"}},
		{[]string{"run", "partition", "--set", "workloads.oltp.rate=-5", "--out", filepath.Join(t.TempDir(), "never")}, []string{"rate and concurrency must not be negative"}},
		{[]string{"run", "partition", "--set", "novalue"}, []string{`"novalue": want path=value`}},
		{[]string{"run", "partition", "--cluster", "a", "--target", "b.yaml"}, []string{"--cluster and --target: give one"}},
		{[]string{"suite", "--set", "phases.nope.duration=1s"}, []string{`no list item named "nope"`}},
		// A run on a target writes htapchaos's tables there: consent first,
		// before anything connects or is written.
		{[]string{"run", "failover-pause", "--target", target, "--allow-destructive", "--out", noWrites}, []string{"failover-pause on target staging creates and seeds users and orders", "pass --allow-writes"}},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		for _, w := range tc.want {
			if code != exitUsage || !strings.Contains(errb.String(), w) {
				t.Errorf("%v: exit %d, stderr %q; want 2 with %q", tc.args, code, errb.String(), w)
			}
		}
	}
	if _, err := os.Stat(noWrites); err == nil {
		t.Error("a run refused for want of consent left a run directory")
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "never")); err == nil {
		t.Error("a run with bad input made its directory")
	}
}

// Ctrl-C in the middle of a run: the fault is recovered, the cluster removed, what
// was measured is kept and scored, and the exit code is 130.
func TestRunInterruptedKeepsResults(t *testing.T) {
	eng := engineOrSkip(t)
	before := len(clusterNames(t, eng))
	dir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "run", "failover-pause", "--quick", "--out", dir, "--set", "phases.fault.duration=30s")
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt while the node is frozen.
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(errb.String(), "pause effect") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("no exit 3 min after Ctrl-C:\n%s", errb.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit %d, want 130:\n%s", code, errb.String())
	}
	var rf experiments.RunFile
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err == nil {
		err = json.Unmarshal(b, &rf)
	}
	if err != nil || !rf.Interrupted || len(rf.Findings) == 0 || len(rf.Faults) != 1 || rf.Faults[0].State != "cleaned" {
		t.Errorf("run.json after Ctrl-C: %v interrupted %t findings %d faults %+v\n%s", err, rf.Interrupted, len(rf.Findings), rf.Faults, errb.String())
	}
	if after := len(clusterNames(t, eng)); after != before {
		t.Errorf("%d clusters before the run, %d after", before, after)
	}
}

func clusterNames(t *testing.T, eng *testcontainers.Engine) []string {
	t.Helper()
	list, err := testcontainers.List(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

// --repeat takes 1 or more: anything else is bad input naming the flag, refused
// before anything runs, by the library's check (experiments.CheckRepeat, whose
// message this is).
func TestRepeatFlagUsage(t *testing.T) {
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"run", "partition", "--quick", "--repeat", "0", "--out", filepath.Join(tmp, "never")},
		{"run", "partition", "--quick", "--repeat", "-2", "--out", filepath.Join(tmp, "never")},
		{"suite", "--quick", "--repeat", "0", "--out", filepath.Join(tmp, "never"), "--junit", filepath.Join(tmp, "junit.xml")},
		{"suite", "--quick", "--repeat", "-1", "--out", filepath.Join(tmp, "never")},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		n := args[slices.Index(args, "--repeat")+1]
		if code != exitUsage || !strings.Contains(errb.String(), "--repeat: "+n+": want 1 or more runs of each experiment") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming --repeat", args, code, errb.String())
		}
	}
	for _, p := range []string{"never", "junit.xml"} {
		if _, err := os.Stat(filepath.Join(tmp, p)); err == nil {
			t.Errorf("a refused command wrote %s", p)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"run", "partition", "--repeat", "two"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--repeat") {
		t.Errorf("--repeat two: exit %d, %q", code, errb.String())
	}
}

// A short experiment on one node, run twice: one cluster for both runs, removed
// at the end; the runs in r1 and r2 with seeds s and s+1; repeat.json's medians
// those of the two run.json files; the repeat's page linking the runs' reports;
// JUnit with the seeds and the unstable findings; the exit code by the verdicts on
// the medians.
func TestRunRepeatOnOneNode(t *testing.T) {
	eng := engineOrSkip(t)
	tmp := t.TempDir()
	spec := filepath.Join(tmp, "short.yaml")
	os.WriteFile(spec, []byte(`name: short
description: OLTP with a fraud-scan spike on one node
modes: [htap-contention, durability]
cluster: {topology: single, memory: 512MiB}
data: {users: 200, orders: 5000}
phases:
  - {name: baseline, duration: 3s}
  - {name: spike, duration: 3s}
workloads:
  - {kind: oltp, rate: 100, timeout: 2s}
faults:
  - {kind: analytics-spike, phase: spike, node: "1", params: {rate: "2", times: "2", mix: fraud-scan}}
`), 0o644)
	dir, junit := filepath.Join(tmp, "rep"), filepath.Join(tmp, "junit.xml")
	start := time.Now()
	r := htapchaos(t, nil, "run", spec, "--repeat", "2", "--seed", "11", "--out", dir, "--junit", junit)
	t.Logf("run --repeat 2 took %v", time.Since(start).Round(time.Second))
	if r.code != exitOK && r.code != exitVerdictFail {
		t.Fatalf("exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stderr, "starting a single cluster"); n != 1 {
		t.Errorf("%d clusters started for two runs, want 1:\n%s", n, r.stderr)
	}
	// Other tests may start clusters meanwhile: look for this one by name.
	m := regexp.MustCompile(`cluster (\S+): creating`).FindAllStringSubmatch(r.stderr, -1)
	if len(m) != 1 {
		t.Fatalf("%d clusters created, want 1:\n%s", len(m), r.stderr)
	}
	if slices.Contains(clusterNames(t, eng), m[0][1]) {
		t.Errorf("cluster %s is left after the repeat", m[0][1])
	}

	// The runs, with their seeds.
	var runs []recordedRun
	for i, want := range []uint64{11, 12} {
		rf, err := experiments.ReadRunFile(filepath.Join(dir, fmt.Sprintf("r%d", i+1), "run.json"))
		if err != nil {
			t.Fatal(err)
		}
		if rf.Seed != want {
			t.Errorf("r%d: seed %d, want %d", i+1, rf.Seed, want)
		}
		runs = append(runs, readRecorded(t, filepath.Join(dir, fmt.Sprintf("r%d", i+1))))
	}

	// repeat.json, read apart from the package's types.
	var rep struct {
		Verdict  string `json:"verdict"`
		Findings []struct {
			Mode, Name, Verdict string
			Median              *float64
			Unstable            bool
		} `json:"findings"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "repeat.json"))
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil || len(rep.Findings) == 0 {
		t.Fatalf("repeat.json: %v\n%s", err, b)
	}
	var unstable []string
	for _, f := range rep.Findings {
		var vals []float64
		var verdicts []string
		for _, run := range runs {
			for _, x := range run.Findings {
				if x.Mode == f.Mode && x.Name == f.Name {
					verdicts = append(verdicts, x.Verdict)
					if x.Verdict == "pass" || x.Verdict == "fail" {
						vals = append(vals, x.Value)
					}
				}
			}
		}
		want := math.NaN()
		switch len(vals) {
		case 1:
			want = vals[0]
		case 2:
			want = (vals[0] + vals[1]) / 2
		}
		if (f.Median == nil) != math.IsNaN(want) || (f.Median != nil && *f.Median != want) {
			t.Errorf("%s: %s: median %v, want %v from the runs' values %v", f.Mode, f.Name, f.Median, want, vals)
		}
		if f.Unstable != (len(verdicts) != 2 || verdicts[0] != verdicts[1]) {
			t.Errorf("%s: %s: unstable %t, the runs' verdicts %v", f.Mode, f.Name, f.Unstable, verdicts)
		}
		if f.Unstable {
			unstable = append(unstable, f.Mode+": "+f.Name)
		}
	}
	if want := map[bool]int{true: exitVerdictFail, false: exitOK}[rep.Verdict == "fail"]; r.code != want {
		t.Errorf("exit %d with the verdict %s on the medians", r.code, rep.Verdict)
	}
	if !strings.Contains(r.stdout, "on the medians of 2 run(s), seeds 11, 12") || !strings.Contains(r.stdout, "MEDIAN (MIN..MAX)") {
		t.Errorf("no table of the medians:\n%s", r.stdout)
	}

	// The repeat's page, linking each run's report; `report DIR` writes it again.
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"r1", "r2"} {
		if _, err := os.Stat(filepath.Join(dir, run, "report.html")); err != nil || !strings.Contains(string(page), `<a href="`+run+`/report.html">`) {
			t.Errorf("%s: report %v; the repeat's page links it: %t", run, err, strings.Contains(string(page), run+"/report.html"))
		}
	}
	os.Remove(filepath.Join(dir, "report.html"))
	if rr := htapchaos(t, nil, "report", dir); rr.code != 0 || strings.TrimSpace(rr.stdout) != filepath.Join(dir, "report.html") {
		t.Errorf("report of the repeat: exit %d %q %s", rr.code, rr.stdout, rr.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Error("report DIR wrote no page for the repeat")
	}

	// JUnit: the repeat's seeds, and each unstable finding.
	b, err = os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitReport
	if err := xml.Unmarshal(b, &doc); err != nil || len(doc.Suites) != 1 {
		t.Fatalf("%v\n%s", err, b)
	}
	props := map[string]string{}
	for _, p := range doc.Suites[0].Properties {
		props[p.Name] = p.Value
	}
	if props["seeds"] != "11,12" || props["repeats"] != "2" || props["run_dir"] != dir || props["unstable"] != strconv.Itoa(len(unstable)) {
		t.Errorf("JUnit properties %v; %d unstable in repeat.json", props, len(unstable))
	}
	for _, u := range unstable {
		if _, ok := props["unstable: "+u]; !ok {
			t.Errorf("JUnit lacks the unstable %s", u)
		}
	}
	t.Logf("verdict on the medians %s; unstable %v", rep.Verdict, unstable)
}
