package main

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/internal/testtool"
)

// junitReport is the JUnit document as a CI server reads it.
type junitReport struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Error   *struct{} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// A real run with --junit: the report validates against the JUnit schema and has one
// test case per finding of run.json, with the same verdicts.
func TestRunJUnitReport(t *testing.T) {
	engineOrSkip(t)
	lint := testtool.Find(t, "libxml2-utils", "xmllint")
	tmp := t.TempDir()
	dir, report := filepath.Join(tmp, "run"), filepath.Join(tmp, "junit.xml")
	// A budget no cluster meets, so the report carries a failure with real evidence.
	r := htapchaos(t, nil, "run", "failover-pause", "--quick", "--seed", "7", "--out", dir, "--junit", report,
		"--set", "budgets.failover.gap=1ms")
	if r.code != exitOK && r.code != exitVerdictFail {
		t.Fatalf("exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "JUnit report in "+report) {
		t.Errorf("no progress line for the report:\n%s", r.stderr)
	}
	schema, _ := filepath.Abs(filepath.Join("..", "..", "experiments", "testdata", "junit.xsd"))
	if out, err := exec.Command(lint, "--noout", "--schema", schema, report).CombinedOutput(); err != nil {
		b, _ := os.ReadFile(report)
		t.Fatalf("xmllint: %v\n%s\n%s", err, out, b)
	}
	rf, err := experiments.ReadRunFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitReport
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != 1 || len(rf.Findings) == 0 {
		t.Fatalf("%d suites for one run; run.json has %d findings\n%s", len(doc.Suites), len(rf.Findings), b)
	}
	s := doc.Suites[0]
	if s.Name != "failover-pause" || s.Tests != len(rf.Findings)+1 || len(s.Cases) != len(rf.Findings)+1 || s.Errors != 0 {
		t.Errorf("suite %s: tests %d, %d cases, errors %d; run.json has %d findings", s.Name, s.Tests, len(s.Cases), s.Errors, len(rf.Findings))
	}
	props := map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	if props["run_dir"] != dir || props["seed"] != strconv.FormatUint(rf.Seed, 10) || props["seed"] != "7" || props["verdict"] != string(rf.Verdict) {
		t.Errorf("properties %v; run.json: seed %d verdict %s", props, rf.Seed, rf.Verdict)
	}
	failed := 0
	for i, f := range rf.Findings {
		if i+1 >= len(s.Cases) {
			break
		}
		c := s.Cases[i+1]
		if c.Classname != "failover-pause" || c.Name != f.Mode+": "+f.Name {
			t.Errorf("case %d: %s / %s, run.json finding %s: %s", i, c.Classname, c.Name, f.Mode, f.Name)
		}
		if (c.Failure != nil) != (f.Verdict == experiments.Fail) || (c.Skipped != nil) != (f.Verdict == experiments.Inconclusive) {
			t.Errorf("%s: verdict %s, failure %t skipped %t", c.Name, f.Verdict, c.Failure != nil, c.Skipped != nil)
		}
		if f.Verdict == experiments.Fail {
			failed++
			for _, e := range f.Evidence {
				if c.Failure != nil && !strings.Contains(c.Failure.Body, e.Detail) {
					t.Errorf("%s: failure body lacks the evidence %q", c.Name, e.Detail)
				}
			}
		}
		if c.Skipped != nil && c.Skipped.Message != f.Reason && f.Reason != "" {
			t.Errorf("%s: skipped %q, reason %q", c.Name, c.Skipped.Message, f.Reason)
		}
	}
	if failed == 0 {
		t.Errorf("no finding failed a 1 ms gap budget: the failure path went untested\n%s", b)
	}
	if s.Failures != failed || doc.Failures != failed {
		t.Errorf("failures %d (document %d), run.json has %d failed findings", s.Failures, doc.Failures, failed)
	}
	if wantCode := map[bool]int{true: exitVerdictFail, false: exitOK}[failed > 0]; r.code != wantCode {
		t.Errorf("exit %d with %d failed findings", r.code, failed)
	}
	t.Logf("report: %d test cases, %d failed, %d skipped; verdict %s", s.Tests, s.Failures, s.Skipped, rf.Verdict)
}

// A --junit path that cannot be written is bad input, refused before anything runs;
// a suite refused for bad input writes no report.
func TestJUnitFlagUsage(t *testing.T) {
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "no-such-dir", "junit.xml")
	for _, args := range [][]string{
		{"run", "failover-pause", "--quick", "--out", filepath.Join(tmp, "never"), "--junit", missing},
		{"suite", "--quick", "--out", filepath.Join(tmp, "never"), "--junit", missing},
		{"run", "failover-pause", "--junit", tmp},
	} {
		r := htapchaos(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--junit: "+args[len(args)-1]) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming --junit and the path", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "never")); err == nil {
		t.Error("a refused run made its run directory")
	}
	report := filepath.Join(tmp, "junit.xml")
	r := htapchaos(t, nil, "suite", "--junit", report, "--set", "phases.nope.duration=1s")
	if r.code != exitUsage {
		t.Errorf("suite with a bad --set: exit %d, want 2: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(report); err == nil {
		t.Error("a suite refused before it ran wrote a report")
	}
}
