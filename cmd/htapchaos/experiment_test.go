package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		for _, w := range tc.want {
			if code != exitUsage || !strings.Contains(errb.String(), w) {
				t.Errorf("%v: exit %d, stderr %q; want 2 with %q", tc.args, code, errb.String(), w)
			}
		}
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
