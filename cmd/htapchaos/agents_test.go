package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/agents"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	"github.com/htapchaos/htapchaos/testcontainers"
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
	rep, b := readAgentsJSON(t, dir)
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

// readAgentsJSON reads a run's agents.json, and gives its text for messages.
func readAgentsJSON(t *testing.T, dir string) (agents.RunReport, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "agents.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep agents.RunReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, b
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

// children lists the pids whose parent is pid (Linux /proc).
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: count from the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// An agent process killed mid-run: the load goes on with the other, exits 0,
// and says it was degraded.
func TestLoadAgentKilled(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to find the agent processes")
	}
	dir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "load", "--workload", "noop", "--rate", "300", "--duration", "3s", "--agents", "2", "--out", dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		pids = children(cmd.Process.Pid)
	}
	if len(pids) < 2 {
		_ = cmd.Process.Kill()
		t.Fatalf("agent processes: %v", pids)
	}
	// After its first report (the start is about 0.5 s after the join, the
	// interval 1 s), before its last.
	time.Sleep(2200 * time.Millisecond)
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "degraded: agent a") {
		t.Errorf("no degraded line: %s", out.String())
	}
	rep, b := readAgentsJSON(t, dir)
	lost := 0
	for _, a := range rep.Agents {
		if a.Lost {
			lost++
		}
	}
	if !rep.Degraded || lost != 1 {
		t.Errorf("agents.json: %s", b)
	}
	sum, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The live agent's whole share (450) and part of the killed one's.
	if n := sum.Ops[0].Count; n <= 450 || n >= 900 {
		t.Errorf("%d ops, want the live share (450) and part of the other: %s", n, out.String())
	}
	for _, g := range append(sum.Gaps, sum.Cluster...) {
		if len(g.Gaps) > 0 {
			t.Errorf("gap in %+v: the live agent served the stream", g)
		}
	}
}

// Two agents against a real database: their writer ids are disjoint, the ledger
// is the union of theirs, and every insert it says was acknowledged is there.
func TestLoadAgentsAgainstACluster(t *testing.T) {
	engineOrSkip(t)
	name := testPrefix + "agents"
	if r := htapchaos(t, nil, "cluster", "up", "--topology", "single", "--name", name); r.code != 0 {
		t.Fatalf("cluster up: %s", r.stderr)
	}
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	dir := filepath.Join(t.TempDir(), "run")
	r := htapchaos(t, nil, "load", "--cluster", name, "--workload", "oltp", "--rate", "300", "--duration", "4s",
		"--users", "500", "--orders", "5000", "--agents", "2", "--out", dir)
	if r.code != 0 {
		t.Fatalf("load: exit %d: %s", r.code, r.stderr)
	}
	sum, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, o := range sum.Ops {
		total += o.Count + o.ErrorsTotal + o.Dropped
	}
	if total != 1200 {
		t.Errorf("%d ops, want the schedule's 1200", total)
	}
	rep, b := readAgentsJSON(t, dir)
	if rep.Degraded || len(rep.Agents) != 2 {
		t.Fatalf("agents.json: %s", b)
	}
	ledger, err := results.ReadLedger(filepath.Join(dir, "ledger.json"))
	if err != nil {
		t.Fatal(err)
	}
	acked, unknown := ledger.Count()
	var agentsAcked int64
	for _, a := range rep.Agents {
		agentsAcked += a.Acked
	}
	if acked == 0 || acked != agentsAcked || unknown != 0 {
		t.Errorf("ledger.json: %d acknowledged, %d unknown; the agents said %d acknowledged", acked, unknown, agentsAcked)
	}
	// Each agent's writers lie in its own range.
	raw, err := os.ReadFile(filepath.Join(dir, "ledger.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lf struct {
		Writers []struct{ Writer int }
	}
	if err := json.Unmarshal(raw, &lf); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, w := range lf.Writers {
		k := -1
		for i, a := range rep.Agents {
			if w.Writer > a.WorkerBase && w.Writer <= a.WorkerBase+a.WorkerIDs {
				k = i
			}
		}
		if k < 0 {
			t.Errorf("writer %d is in no agent's range (%s)", w.Writer, b)
		}
		seen[k] = true
	}
	if !seen[0] || !seen[1] {
		t.Errorf("writers %v: want both agents'", lf.Writers)
	}
	// Every acknowledged insert is in the table.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := testcontainers.Attach(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", c.Nodes[0].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := loadgen.DefaultAudit
	for _, rg := range ledger.Acked() {
		var n int64
		q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s BETWEEN ? AND ?", at.Table, at.Column)
		if err := db.QueryRowContext(ctx, q, rg.Lo, rg.Hi).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != rg.Hi-rg.Lo+1 {
			t.Errorf("ids %d-%d: %d rows, want %d", rg.Lo, rg.Hi, n, rg.Hi-rg.Lo+1)
		}
	}
}

// htapchaos agent: a coordinator that is not there is exit 5 (the agent
// stopped by itself), a missing token exit 2.
func TestAgentExitCodes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	r := htapchaos(t, []string{agents.EnvToken + "=t0ken"}, "agent", "--coordinator", addr)
	if r.code != 5 {
		t.Errorf("agent with no coordinator at %s: exit %d, stderr %q; want 5", addr, r.code, r.stderr)
	}
	r = htapchaos(t, nil, "agent", "--coordinator", addr)
	if r.code != 2 {
		t.Errorf("agent without a token: exit %d, stderr %q; want 2", r.code, r.stderr)
	}
}
