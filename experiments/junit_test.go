package experiments

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/internal/testtool"
)

// The JUnit document as a CI server reads it, declared apart from the writer's types
// so a change there cannot hide here.
type xUnitSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Time     float64  `xml:"time,attr"`
	Suites   []struct {
		Name       string  `xml:"name,attr"`
		Tests      int     `xml:"tests,attr"`
		Failures   int     `xml:"failures,attr"`
		Errors     int     `xml:"errors,attr"`
		Skipped    int     `xml:"skipped,attr"`
		Time       float64 `xml:"time,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []xUnitCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type xUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *xUnitOutcome `xml:"failure"`
	Error     *xUnitOutcome `xml:"error"`
	Skipped   *xUnitOutcome `xml:"skipped"`
}

type xUnitOutcome struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// nasty is evidence text a report must carry through unharmed.
const nasty = `gap 8.05 s <from +11.0 s> & "98 failed", 'late'` + "\nsecond line\ttab ]]> <![CDATA[ x"

func junitRuns() []JUnitRun {
	t0 := time.Date(2026, 11, 26, 4, 4, 38, 0, time.UTC)
	return []JUnitRun{
		{
			Experiment: "failover-pause", Dir: "runs/suite/failover-pause", Seed: 42, Start: t0, Duration: 61500 * time.Millisecond,
			Findings: []Finding{
				{Mode: ModeFailover, Name: "longest gap, surviving nodes", Verdict: Fail, Value: 8.05, Unit: "s", Budget: 5, Op: "<=",
					Reason:    "a surviving stream stopped for longer than the budget",
					Evidence:  []Evidence{{Workload: "oltp", Node: 3, Phase: "fault:pause", From: t0.Add(18 * time.Second), To: t0.Add(26 * time.Second), Detail: nasty}},
					Reference: "the article: automatic failover took 45 s (60-90 s in practice)",
					Notes:     []string{"oltp on node 1: gap 1.00 s", "throughput < baseline & p99 > 3x"}},
				{Mode: ModeFailover, Name: "throughput back to baseline", Verdict: Pass, Value: 11.9, Unit: "s"},
				{Mode: ModeDurability, Name: "acknowledged writes lost", Verdict: Inconclusive, Op: "<=",
					Reason: "no node answered for the audit: dial tcp 127.0.0.1:3306: <refused>"},
			},
		},
		{
			// A fault that did not recover: an error, and no findings.
			Experiment: "partition", Dir: "runs/suite/partition", Seed: 43, Start: t0.Add(time.Minute), Duration: 30 * time.Second,
			Err: fmt.Errorf("%w: cut on n2: reconnect: timeout", ErrNotRecovered),
		},
		{
			// Interrupted: findings kept, and the interruption as an error.
			Experiment: "schema-change", Dir: "runs/suite/schema-change", Seed: 44, Start: t0.Add(2 * time.Minute), Duration: 12 * time.Second,
			Findings: []Finding{{Mode: ModeSchemaChange, Name: "write stall, nullable ALTER", Verdict: Fail, Value: 1.8, Unit: "s", Budget: 1, Op: "<=",
				Evidence: []Evidence{{Workload: "oltp", Detail: "stall 1.8 s"}}}},
			Err: fmt.Errorf("interrupted: %w", context.Canceled),
		},
	}
}

func writeJUnitRuns(t *testing.T) (string, []JUnitRun) {
	t.Helper()
	runs := junitRuns()
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := WriteJUnitFile(path, runs); err != nil {
		t.Fatal(err)
	}
	return path, runs
}

func TestJUnitCountsAndEvidence(t *testing.T) {
	path, runs := writeJUnitRuns(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files after the write, want the report alone", len(entries))
	}
	var doc xUnitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse the report back: %v\n%s", err, b)
	}
	if len(doc.Suites) != len(runs) {
		t.Fatalf("%d test suites, want one per experiment (%d)", len(doc.Suites), len(runs))
	}
	var tests, failures, errs int
	var secs float64
	for i, r := range runs {
		s := doc.Suites[i]
		var fails, skips int
		for _, f := range r.Findings {
			switch f.Verdict {
			case Fail:
				fails++
			case Inconclusive:
				skips++
			}
		}
		wantErr := 0
		if r.Err != nil {
			wantErr = 1
		}
		if s.Name != r.Experiment || s.Tests != len(r.Findings)+1 || len(s.Cases) != len(r.Findings)+1 ||
			s.Failures != fails || s.Skipped != skips || s.Errors != wantErr {
			t.Errorf("suite %d: %s tests %d (%d cases) failures %d skipped %d errors %d; want %s, %d, %d, %d, %d",
				i, s.Name, s.Tests, len(s.Cases), s.Failures, s.Skipped, s.Errors, r.Experiment, len(r.Findings)+1, fails, skips, wantErr)
		}
		if s.Time != r.Duration.Seconds() {
			t.Errorf("suite %s: time %v, want %v", s.Name, s.Time, r.Duration.Seconds())
		}
		props := map[string]string{}
		for _, p := range s.Properties {
			props[p.Name] = p.Value
		}
		if props["run_dir"] != r.Dir || props["seed"] != strconv.FormatUint(r.Seed, 10) || props["verdict"] != string(Worst(r.Findings)) {
			t.Errorf("suite %s: properties %v", s.Name, props)
		}
		// The run case first, then one case per finding in order.
		run := s.Cases[0]
		if run.Name != "run" || run.Classname != r.Experiment || run.Time != r.Duration.Seconds() {
			t.Errorf("suite %s: first case %+v, want the run", s.Name, run)
		}
		if (run.Error != nil) != (r.Err != nil) {
			t.Errorf("suite %s: run case error %+v, run error %v", s.Name, run.Error, r.Err)
		}
		var caseFails int
		for j, f := range r.Findings {
			c := s.Cases[j+1]
			if c.Classname != r.Experiment || c.Name != f.Mode+": "+f.Name {
				t.Errorf("case %s / %s, want %s / %s", c.Classname, c.Name, r.Experiment, f.Mode+": "+f.Name)
			}
			if got := c.Failure != nil; got != (f.Verdict == Fail) {
				t.Errorf("%s: failure element %t for verdict %s", c.Name, got, f.Verdict)
			}
			if got := c.Skipped != nil; got != (f.Verdict == Inconclusive) {
				t.Errorf("%s: skipped element %t for verdict %s", c.Name, got, f.Verdict)
			}
			if c.Failure != nil {
				caseFails++
				for _, e := range f.Evidence {
					if !strings.Contains(c.Failure.Body, e.Detail) {
						t.Errorf("%s: failure body lacks the evidence %q:\n%s", c.Name, e.Detail, c.Failure.Body)
					}
				}
				for _, want := range append([]string{f.Reason, f.Reference}, f.Notes...) {
					if !strings.Contains(c.Failure.Body, want) {
						t.Errorf("%s: failure body lacks %q:\n%s", c.Name, want, c.Failure.Body)
					}
				}
				if c.Failure.Type != "fail" {
					t.Errorf("%s: failure type %q", c.Name, c.Failure.Type)
				}
			}
			if c.Skipped != nil && c.Skipped.Message != f.Reason {
				t.Errorf("%s: skipped message %q, want the reason %q", c.Name, c.Skipped.Message, f.Reason)
			}
		}
		if caseFails != s.Failures {
			t.Errorf("suite %s: %d failure elements, failures=%d", s.Name, caseFails, s.Failures)
		}
		tests += s.Tests
		failures += s.Failures
		errs += s.Errors
		secs += s.Time
	}
	if doc.Tests != tests || doc.Failures != failures || doc.Errors != errs || doc.Time != secs {
		t.Errorf("totals tests %d failures %d errors %d time %v; the suites add up to %d %d %d %v",
			doc.Tests, doc.Failures, doc.Errors, doc.Time, tests, failures, errs, secs)
	}

	// The figures, as the verdict table prints them.
	first := doc.Suites[0].Cases[1].Failure
	if first == nil || first.Message != "8.05 s vs budget <= 5 s" {
		t.Errorf("failure message %+v, want %q", first, "8.05 s vs budget <= 5 s")
	}
	if e := doc.Suites[1].Cases[0].Error; e == nil || e.Type != "not-recovered" || !strings.Contains(e.Body, "cut on n2") {
		t.Errorf("not-recovered run: error %+v", e)
	}
	if e := doc.Suites[2].Cases[0].Error; e == nil || e.Type != "interrupted" {
		t.Errorf("interrupted run: error %+v", e)
	}
}

// TestJUnitValidates checks the report against experiments/testdata/junit.xsd with
// xmllint, and that the schema does refuse a broken report.
func TestJUnitValidates(t *testing.T) {
	lint := testtool.Find(t, "libxml2-utils", "xmllint")
	schema := filepath.Join("testdata", "junit.xsd")
	path, _ := writeJUnitRuns(t)
	if out, err := exec.Command(lint, "--noout", "--schema", schema, path).CombinedOutput(); err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("xmllint: %v\n%s\n%s", err, out, b)
	}

	// An empty report (nothing ran) is a valid document too.
	empty := filepath.Join(t.TempDir(), "empty.xml")
	if err := WriteJUnitFile(empty, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(lint, "--noout", "--schema", schema, empty).CombinedOutput(); err != nil {
		t.Errorf("xmllint on an empty report: %v\n%s", err, out)
	}

	// The schema is no rubber stamp: what a CI server would choke on is refused.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new string }{
		{"failure without a type", `type="fail"`, ``},
		{"test case without a class name", `classname="failover-pause"`, ``},
		{"time not a number", `time="61.500"`, `time="61.5s"`},
		{"two outcomes in one case", `<skipped message=`, `<failure type="x"></failure><skipped message=`},
	} {
		broken := strings.Replace(string(b), tc.old, tc.new, 1)
		if broken == string(b) {
			t.Fatalf("%s: %q is not in the report", tc.name, tc.old)
		}
		p := filepath.Join(t.TempDir(), "broken.xml")
		os.WriteFile(p, []byte(broken), 0o644)
		if out, err := exec.Command(lint, "--noout", "--schema", schema, p).CombinedOutput(); err == nil {
			t.Errorf("%s: xmllint accepted it:\n%s", tc.name, out)
		}
	}
}

func TestJUnitControlCharacters(t *testing.T) {
	// Text XML 1.0 cannot carry (a NUL, an escape from a terminal) is replaced, not
	// written raw: the document stays well formed.
	runs := []JUnitRun{{Experiment: "x", Findings: []Finding{{Mode: ModeFailover, Name: "gap", Verdict: Fail, Op: "<=",
		Evidence: []Evidence{{Detail: "nul \x00 esc \x1b[31m red"}}}}}}
	var b strings.Builder
	if err := WriteJUnit(&b, runs); err != nil {
		t.Fatal(err)
	}
	var doc xUnitSuites
	if err := xml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatalf("not well formed: %v\n%s", err, b.String())
	}
	if body := doc.Suites[0].Cases[1].Failure.Body; !strings.Contains(body, "nul \uFFFD esc \uFFFD[31m red") {
		t.Errorf("failure body %q", body)
	}
}

func TestNewJUnitRun(t *testing.T) {
	start := time.Now().Add(-3 * time.Second)
	o := Options{Out: "runs/x", Seed: 7}
	res := &Result{Dir: "runs/x", Findings: []Finding{{Mode: ModeFailover, Name: "gap", Verdict: Pass}}}
	jr := NewJUnitRun("x", o, start, res, nil)
	if jr.Experiment != "x" || jr.Dir != "runs/x" || jr.Seed != 7 || len(jr.Findings) != 1 || jr.Duration < 3*time.Second || jr.Err != nil {
		t.Errorf("%+v", jr)
	}
	boom := errors.New("start node 2: boom")
	jr = NewJUnitRun("y", Options{Out: "runs/y", Seed: 8}, start, nil, boom)
	if jr.Dir != "runs/y" || jr.Findings != nil || jr.Err != boom {
		t.Errorf("%+v", jr)
	}
}

func TestCheckJUnitPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		path string
		want string // "" = accepted
	}{
		{"", ""},
		{filepath.Join(dir, "junit.xml"), ""},
		{file, ""}, // replaced at the end
		{"junit.xml", ""},
		{filepath.Join(dir, "no", "such", "junit.xml"), "--junit: " + filepath.Join(dir, "no", "such", "junit.xml") + ": directory " + filepath.Join(dir, "no", "such") + " does not exist"},
		{filepath.Join(file, "junit.xml"), "is not a directory"},
		{dir, "is a directory: give a file"},
	} {
		err := CheckJUnitPath("--junit", tc.path)
		var uerr *UsageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.path, err)
		case tc.want != "" && (err == nil || !errors.As(err, &uerr) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want a usage error with %q", tc.path, err, tc.want)
		}
	}
}

// repeatResult is a repeat of three runs as Repeat would leave it: a gap that
// failed in one run (unstable, median passes), a write stall whose median fails
// in every run (stable), and lost rows judged alike.
func repeatResult() *RepeatResult {
	runs := [][]Finding{
		{fd("gap", "<=", 5, Pass, 1), fd("stall", "<=", 1, Fail, 1.8), fd("lost", "<=", 0, Pass, 0)},
		{fd("gap", "<=", 5, Fail, 8), fd("stall", "<=", 1, Fail, 2.2), fd("lost", "<=", 0, Pass, 0)},
		{fd("gap", "<=", 5, Pass, 3), fd("stall", "<=", 1, Fail, 1.5), fd("lost", "<=", 0, Pass, 0)},
	}
	f := &RepeatFile{Version: repeatVersion, Experiment: "failover-pause", Repeats: 3,
		Runs: []RepeatRun{{Dir: "r1", Seed: 7, Counted: true}, {Dir: "r2", Seed: 8, Counted: true}, {Dir: "r3", Seed: 9, Counted: true}}}
	f.aggregate(runs)
	return &RepeatResult{Dir: "runs/rep", File: f}
}

// A repeated experiment in JUnit: one suite, the verdicts on the medians, and the
// repeat in its properties: the runs, the seeds, and each unstable finding.
func TestJUnitRepeat(t *testing.T) {
	rr := repeatResult()
	if rr.Verdict() != Fail {
		t.Fatalf("verdict on the medians %s, want fail (the stall's median fails)", rr.Verdict())
	}
	jr := NewJUnitRepeat("failover-pause", Options{Out: "runs/rep", Seed: 7}, time.Now().Add(-time.Minute), rr, nil)
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := WriteJUnitFile(path, []JUnitRun{jr}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc xUnitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d suites for one repeat", len(doc.Suites))
	}
	s := doc.Suites[0]
	props := map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	for k, want := range map[string]string{"run_dir": "runs/rep", "seed": "7", "seeds": "7,8,9", "repeats": "3", "verdict": "fail",
		"unstable": "1", "unstable: m: gap": "pass 2, fail 1"} {
		if props[k] != want {
			t.Errorf("property %q = %q, want %q (all: %v)", k, props[k], want, props)
		}
	}
	if _, ok := props["unstable: m: stall"]; ok {
		t.Error("a finding every run failed alike is marked unstable")
	}
	// Test cases: the verdict on the median, not each run's.
	if s.Tests != 4 || s.Failures != 1 {
		t.Errorf("tests %d failures %d, want 4 and 1 (the stall)", s.Tests, s.Failures)
	}
	for _, c := range s.Cases {
		switch c.Name {
		case "m: gap":
			if c.Failure != nil {
				t.Errorf("the gap's median passes, yet a failure: %+v", c.Failure)
			}
		case "m: stall":
			if c.Failure == nil || !strings.HasPrefix(c.Failure.Message, "1.8 s vs budget <= 1 s") || !strings.Contains(c.Failure.Body, "1.8 (1.5..2.2)") {
				t.Errorf("stall: %+v, want a failure on the median 1.8 with its spread", c.Failure)
			}
		}
	}
	if !strings.Contains(string(b), "unstable: m: gap: pass 2, fail 1 over 3 runs") {
		t.Errorf("system-out does not list the unstable finding:\n%s", b)
	}
	lint := testtool.Find(t, "libxml2-utils", "xmllint")
	if out, err := exec.Command(lint, "--noout", "--schema", filepath.Join("testdata", "junit.xsd"), path).CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s\n%s", err, out, b)
	}
}
