package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
	"github.com/htapchaos/htapchaos/testcontainers"
)

func TestLoadBadInputExitsTwo(t *testing.T) {
	dsn := "root:x@tcp(127.0.0.1:1)/htapchaos"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"load", "--target", dsn, "--workload", "olap"}, `unknown workload "olap"`},
		{[]string{"load", "--target", dsn, "--mix", "point-write=1"}, `workload oltp has no operation "point-write"`},
		{[]string{"load", "--target", dsn, "--mix", "point-read=0"}, "weights must be positive"},
		{[]string{"load", "--target", dsn, "--mix", "point-read=-3"}, "weights must be positive"},
		{[]string{"load", "--target", dsn, "--mix", "point-read"}, "want op=weight"},
		{[]string{"load", "--target", dsn, "--mix", "point-read=9223372036854775807,insert=9223372036854775807"}, "--mix: point-read=9223372036854775807: the weights add up to more than"},
		{[]string{"load", "--target", dsn, "--rate", "0"}, "the rate must be positive"},
		{[]string{"load", "--target", dsn, "--rate", "-5"}, "the rate must be positive"},
		{[]string{"load", "--target", dsn, "--concurrency", "0"}, "--concurrency 0: must be positive"},
		{[]string{"load", "--target", dsn, "--rate", "10", "--concurrency", "2"}, "pick one"},
		{[]string{"load", "--target", dsn, "--route", "node=4"}, `--route: "node=4": node "4" is not in 1-1`},
		{[]string{"load", "--target", dsn, "--phases", "10s"}, "want DURATION@RATE"},
		{[]string{"load", "--target", dsn, "--duration", "-1s"}, "--duration -1s: must be positive"},
		{[]string{"load", "--target", "not a dsn"}, "--target: DSN 1"},
		{[]string{"load"}, "give --target DSNs or --cluster NAME"},
		{[]string{"load", "--cluster", "x", "--target", dsn}, "give --target DSNs or --cluster NAME"},
		{[]string{"load", "--target", dsn, "--dialect", "oracle"}, `unknown dialect "oracle"`},
		// Numbers that cannot be meant.
		{[]string{"load", "--target", dsn, "--rate", "Inf"}, "the rate must be positive"},
		{[]string{"load", "--target", dsn, "--rate", "NaN"}, "the rate must be positive"},
		{[]string{"load", "--target", dsn, "--retry-backoff", "-1s"}, "backoff and op counts must not be negative"},
		{[]string{"load", "--target", dsn, "--batch-rows", "0"}, "--batch-rows 0: must be positive"},
		{[]string{"load", "--target", dsn, "--workers", "100000"}, "100000: at most 4096 connections per node"},
		{[]string{"load", "--target", dsn, "--concurrency", "99999"}, "99999: at most 4096 closed-loop workers"},
		{[]string{"load", "--target", dsn, "--gap-threshold", "-1s"}, "the gap and late thresholds must not be negative"},
		// No writes without consent, refused before anything connects.
		{[]string{"load", "--target", dsn}, "--target: this load writes to the database the DSN names (--setup creates and seeds users and orders; ops insert, update-status change data): pass --allow-writes"},
		{[]string{"load", "--target", dsn, "--setup=false", "--mix", "point-read=1,insert=1"}, "(ops insert change data)"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			dir := t.TempDir()
			var out, errb bytes.Buffer
			code := run(append(tc.args, "--out", filepath.Join(dir, "run")), &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 with %q", code, errb.String(), tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
				t.Error("bad input left a run directory behind")
			}
		})
	}
}

// A workload file that cannot be read, or is malformed, is bad input naming the
// file and line; so is a file given with --workload.
func TestLoadWorkloadFileBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: shop\nops:\n  - name: r\n    sql: SELECT ?\n    args: [{zipf: {min: 1, max: 9, s: 0.5}}]\n"), 0o644)
	dsn := "root:x@tcp(127.0.0.1:1)/htapchaos"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--workload-file", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file"},
		{[]string{"--workload-file", bad}, "bad.yaml:5: op r: argument 1: s 0.5: the zipf exponent must be above 1"},
		{[]string{"--workload", "oltp", "--workload-file", "../../examples/workloads/shop.yaml"}, "--workload and --workload-file: pick one"},
		{[]string{"--workload-file", "../../examples/workloads/shop.yaml"}, "--target: this load writes to the database the DSN names (--setup runs shop's schema and seeding; ops purchase, ship change data): pass --allow-writes"},
		{[]string{"--workload-file", "../../examples/workloads/shop.yaml", "--mix", "purchase=1,refund=1"}, `workload shop has no operation "refund"`},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(append([]string{"load", "--target", dsn, "--out", filepath.Join(dir, "run")}, tc.args...), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// fileOnTopology: a workload file on a sharded or vitess cluster is a usage
// error naming the flag, the cluster and its topology (attach needs a cluster,
// so the check is tested alone).
func TestLoadWorkloadFileBadInputTopology(t *testing.T) {
	for topo, refused := range map[testcontainers.Topology]bool{
		testcontainers.Sharded: true, testcontainers.Vitess: true,
		testcontainers.Galera: false, testcontainers.PrimaryReplica: false, testcontainers.Single: false,
	} {
		err := fileOnTopology("shop.yaml", "demo", topo)
		want := fmt.Sprintf("--workload-file shop.yaml: cluster demo is %s", topo)
		var ue usageError
		if refused && (!errors.As(err, &ue) || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want a usage error %q", topo, err, want)
		}
		if !refused && err != nil {
			t.Errorf("%s: %v, want none", topo, err)
		}
		if err := fileOnTopology("", "demo", topo); err != nil {
			t.Errorf("%s without a file: %v", topo, err)
		}
	}
}

func TestLoadUnreachableTargetExitsThree(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"load", "--target", "root:secret@tcp(" + addr + ")/htapchaos", "--allow-writes", "--out", filepath.Join(dir, "run")}, &out, &errb)
	if code != exitInfra || !strings.Contains(errb.String(), "target unreachable: node 1") || !strings.Contains(errb.String(), addr) {
		t.Fatalf("exit %d, stderr %q; want exit 3 naming the node", code, errb.String())
	}
	if strings.Contains(errb.String(), "secret") {
		t.Errorf("the password was printed: %s", errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
		t.Error("an unreachable target left a run directory behind")
	}
}

// The noop workload needs no database: the whole pipeline (pacer, recorder, files)
// runs, and its numbers add up.
func TestLoadNoopWritesResults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	var out, errb bytes.Buffer
	if code := run([]string{"load", "--workload", "noop", "--rate", "2000", "--duration", "2s", "--out", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	sum, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Ops) != 1 || sum.Ops[0].Count != 4000 || sum.Ops[0].ErrorsTotal != 0 {
		t.Fatalf("summary %+v, want 4000 noop successes", sum.Ops)
	}
	for _, f := range []string{"noop.hlog", "intervals.jsonl", "ledger.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	if !strings.Contains(out.String(), "noop") || !strings.Contains(out.String(), "4000") {
		t.Errorf("summary table: %s", out.String())
	}
}

// --abort-on stops a load once its condition holds, keeps what was measured,
// and exits 4; a condition only a run's sampler can read is refused (exit 2).
func TestLoadAbortOn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	var out, errb bytes.Buffer
	start := time.Now()
	code := run([]string{"load", "--workload", "noop", "--rate", "200", "--duration", "60s", "--abort-on", "p99 >= 0 for 2s", "--out", dir}, &out, &errb)
	took := time.Since(start)
	if code != exitAborted || !strings.Contains(errb.String(), "aborted: p99 >= 0 for 2s") {
		t.Fatalf("exit %d (want 4): %s", code, errb.String())
	}
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("the load stopped after %v: want about 3 s (the condition holds from the first second, for 2 s)", took)
	}
	if sum, err := results.ReadSummary(filepath.Join(dir, "summary.json")); err != nil || len(sum.Ops) != 1 || sum.Ops[0].Count < 200 {
		t.Errorf("what was measured before the abort: %+v %v", sum, err)
	}
	errb.Reset()
	if code := run([]string{"load", "--workload", "noop", "--abort-on", "memory > 90%", "--abort-on", "errors >> 5"}, &out, &errb); code != exitUsage ||
		!strings.Contains(errb.String(), "memory is read by run's indicator sampler") || !strings.Contains(errb.String(), `"errors >> 5": want [WORKLOAD: | node N:] METRIC OP VALUE`) {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// Against a real cluster, by name: setup, load, a summary with every op on every node.
func TestLoadAgainstACluster(t *testing.T) {
	engineOrSkip(t)
	name := testPrefix + "load"
	if r := htapchaos(t, nil, "cluster", "up", "--topology", "single", "--name", name); r.code != 0 {
		t.Fatalf("cluster up: %s", r.stderr)
	}
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	dir := filepath.Join(t.TempDir(), "run")
	r := htapchaos(t, nil, "load", "--cluster", name, "--workload", "oltp", "--rate", "200", "--duration", "3s",
		"--users", "500", "--orders", "5000", "--out", dir)
	if r.code != 0 {
		t.Fatalf("load: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "setup: seeded 500 users and 5000 orders") {
		t.Errorf("no seeding report: %s", r.stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum results.Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	var total int64
	ops := map[string]bool{}
	for _, o := range sum.Ops {
		total += o.Count + o.ErrorsTotal + o.Dropped
		ops[o.Op] = true
	}
	if total != 600 || len(ops) != 4 {
		t.Errorf("%d ops over %v, want 600 over the 4 oltp ops", total, ops)
	}
	// A second run reuses the seeded data.
	r = htapchaos(t, nil, "load", "--cluster", name, "--workload", "analytics", "--rate", "5", "--duration", "1s",
		"--users", "500", "--orders", "5000", "--out", dir+"2")
	if r.code != 0 || strings.Contains(r.stderr, "seeded") {
		t.Errorf("second load: exit %d, %s", r.code, r.stderr)
	}

	// A workload file: its own tables seeded, its own ops measured, its inserts in
	// the ledger.
	r = htapchaos(t, nil, "load", "--cluster", name, "--workload-file", "../../examples/workloads/shop.yaml", "--rate", "100", "--duration", "2s", "--out", dir+"3")
	if r.code != 0 || !strings.Contains(r.stderr, "setup: seeded 2000 customers, 20000 purchases in") {
		t.Fatalf("workload file: exit %d, %s", r.code, r.stderr)
	}
	fsum, err := results.ReadSummary(filepath.Join(dir+"3", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	ops = map[string]bool{}
	for _, o := range fsum.Ops {
		if o.Workload != "shop" || o.ErrorsTotal != 0 {
			t.Errorf("op %+v: want shop's, without errors", o)
		}
		ops[o.Op] = o.Count > 0
	}
	if len(ops) != 4 || !ops["customer"] || !ops["purchase"] {
		t.Errorf("ops %v: want customer, customer-purchases, purchase and ship", ops)
	}
	if !strings.Contains(r.stdout, "ledger: ") || !strings.Contains(r.stdout, " inserts acknowledged, 0 with unknown outcome") {
		t.Errorf("no ledger line: %s", r.stdout)
	}
}

// DSNs from a file or $HTAPCHAOS_TARGET (passwords out of ps) reach the load
// as --target's do; a file that holds none, or none at all, is bad input.
func TestLoadTargetFromFileOrEnv(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	file := filepath.Join(t.TempDir(), "dsns")
	os.WriteFile(file, []byte("# staging\nroot:secret@tcp("+addr+")/htapchaos\n\n"), 0o600)
	for name, tc := range map[string]struct {
		args []string
		env  string
	}{
		"file": {args: []string{"--target-file", file}},
		"env":  {env: "root:secret@tcp(" + addr + ")/htapchaos"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(envTarget, tc.env)
			var out, errb bytes.Buffer
			code := run(append([]string{"load", "--allow-writes", "--out", filepath.Join(t.TempDir(), "run")}, tc.args...), &out, &errb)
			if code != exitInfra || !strings.Contains(errb.String(), "target unreachable: node 1") || strings.Contains(errb.String(), "secret") {
				t.Errorf("exit %d: %s", code, errb.String())
			}
		})
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	for _, f := range []string{empty, filepath.Join(t.TempDir(), "missing")} {
		var out, errb bytes.Buffer
		if code := run([]string{"load", "--target-file", f}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--target-file") {
			t.Errorf("%s: exit %d: %s", f, code, errb.String())
		}
	}
}
