package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
)

// list --json: every builtin, with the field names scripts read.
func TestListJSON(t *testing.T) {
	r := htapchaos(t, nil, "list", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	var names []string
	for _, e := range got {
		names = append(names, e["name"].(string))
		for _, k := range []string{"description", "modes", "workloads", "faults", "total", "quick_total"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%s: no %q", e["name"], k)
			}
		}
	}
	if !slices.Equal(names, experiments.BuiltinNames()) {
		t.Errorf("names %v, want %v", names, experiments.BuiltinNames())
	}
	s, err := experiments.Builtin("partition", experiments.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if e["name"] == "partition" && (e["total"] != s.Total().String() || e["topology"] != "galera") {
			t.Errorf("partition: %v, want total %v", e, s.Total())
		}
	}
}

// validate --json: what would run, or every error with its file and line, and
// exit code 2 all the same.
func TestValidateJSON(t *testing.T) {
	r := htapchaos(t, nil, "validate", "--json", "--quick", "failover-kill")
	var v struct {
		Arg        string
		OK         bool
		Experiment struct {
			Name      string
			Modes     []string
			Workloads int
			Total     string
		}
		Errors []struct {
			File    string
			Line    int
			Field   string
			Message string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if !v.OK || v.Arg != "failover-kill" || v.Experiment.Name != "failover-kill" || v.Experiment.Workloads < 1 || v.Experiment.Total == "" {
		t.Errorf("good spec: %+v", v)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nmodes: [durability]\ncluster: {topology: galera, nodes: 3, memory: lots}\nphases: [{name: baseline, duration: soon}]\nworkloads: [{kind: oltp, rate: 10}]\n"), 0o644)
	r = htapchaos(t, nil, "validate", "--json", bad)
	v.OK, v.Errors = true, nil
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 2 {
		t.Fatalf("bad spec: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if v.OK || len(v.Errors) != 2 {
		t.Fatalf("bad spec: %+v", v)
	}
	for i, want := range []struct {
		line int
		msg  string
	}{{3, `"lots": want a size`}, {4, `"soon": want a duration`}} {
		e := v.Errors[i]
		if e.File != bad || e.Line != want.line || e.Field != "experiment" || !strings.HasPrefix(e.Message, want.msg) {
			t.Errorf("error %d: %+v, want line %d %q", i, e, want.line, want.msg)
		}
	}

	r = htapchaos(t, nil, "validate", "--json", "failover-kill", "--set", "phases.nope.duration=1s")
	v.Errors = nil
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 2 || len(v.Errors) != 1 || v.Errors[0].Field != "--set" || v.Errors[0].File != "" {
		t.Errorf("bad --set: exit %d, %v: %s", r.code, err, r.stdout)
	}
}

// --seed's help says "random", not a number that changes on every call; a seed
// given is taken.
func TestSeedHelp(t *testing.T) {
	for _, cmd := range []string{"run", "suite"} {
		r := htapchaos(t, nil, cmd, "--help")
		line := ""
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.Contains(l, "--seed") {
				line = l
			}
		}
		if !strings.HasSuffix(line, "(default random)") {
			t.Errorf("%s --help: %q", cmd, line)
		}
	}
	r := htapchaos(t, nil, "run", "partition", "--dry-run", "--seed", "x")
	if r.code != 2 || !strings.Contains(r.stderr, "--seed") {
		t.Errorf("--seed x: exit %d: %s", r.code, r.stderr)
	}
}

// suite NAME|FILE...: bad arguments are refused, all at once, before anything runs.
func TestSuiteRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	r := htapchaos(t, nil, "suite", "--quick", "--out", filepath.Join(dir, "never"), "partition", "no-such-experiment", "partition", filepath.Join(dir, "missing.yaml"))
	for _, want := range []string{"no builtin experiment no-such-experiment", `experiment "partition" is also partition`, "missing.yaml"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r.stderr)
		}
	}
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Error("a refused suite wrote its directory")
	}
}
