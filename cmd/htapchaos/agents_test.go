package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/agents"
	"github.com/htapchaos/htapchaos/results"
)

// load --agents 2 --launcher local: two agent processes of the binary share the
// schedule; the run directory is one run's, plus agents.json.
func TestLoadAgentsLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := htapchaos(t, nil, "load", "--workload", "noop", "--rate", "400", "--duration", "2s", "--agents", "2", "--launcher", "local", "--out", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	sum, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Ops) != 1 || sum.Ops[0].Count != 800 || sum.Ops[0].ErrorsTotal != 0 {
		t.Fatalf("summary %+v, want 800 noop successes", sum.Ops)
	}
	for _, f := range []string{"noop.hlog", "intervals.jsonl", "ledger.json", "agents.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "agents.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep agents.RunReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Launcher != "local" || rep.Degraded || len(rep.Agents) != 2 {
		t.Fatalf("agents.json: %s", b)
	}
	for i, a := range rep.Agents {
		if a.Index != i || a.PID <= 0 || a.PID == os.Getpid() || a.Lost {
			t.Errorf("agent %d: %+v", i, a)
		}
	}
	if !strings.Contains(r.stdout, "800") || !strings.Contains(r.stdout, "agents.json") {
		t.Errorf("stdout: %s", r.stdout)
	}
}

// Launchers of later versions and bad agent counts are usage errors.
func TestLoadAgentsBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--agents", "2", "--launcher", "swarm"}, "not in this version"},
		{[]string{"--agents", "2", "--launcher", "kubernetes"}, "not in this version"},
		{[]string{"--agents", "2", "--launcher", "ssh"}, "--launcher"},
		{[]string{"--agents", "-1"}, "--agents"},
		{[]string{"--agents", "2", "--gap-threshold", "1ms"}, "--gap-threshold"},
	} {
		dir := filepath.Join(t.TempDir(), "run")
		r := htapchaos(t, nil, append([]string{"load", "--workload", "noop", "--rate", "10", "--duration", "1s", "--out", dir}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: a refused run left %s", tc.args, dir)
		}
	}
}
