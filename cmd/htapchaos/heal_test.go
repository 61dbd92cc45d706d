package main

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

// Each fault kind that leaves state behind, started from the real binary on one
// shared 3-node Galera cluster, survives a kill -9 of htapchaos once its effect
// is verified; `htapchaos heal --cluster` then undoes it from the journal alone,
// the node serves and nothing is left, and a second heal has nothing to do.
func TestHealAfterKill9(t *testing.T) {
	engineOrSkip(t)
	ctx := context.Background()
	name := testPrefix + "heal"
	t.Setenv("HTAPCHAOS_STATE_DIR", t.TempDir()) // the binary's runs inherit it
	var env []string
	r := htapchaos(t, env, "cluster", "up", "--topology", "galera", "--nodes", "3", "--memory", "512MiB", "--name", name)
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	if r.code != 0 {
		t.Fatalf("up: exit %d: %s", r.code, r.stderr)
	}
	hc, err := testcontainers.Attach(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	n3 := hc.Nodes[2]
	db, err := sql.Open("mysql", hc.Nodes[0].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := loadgen.Setup(ctx, db, loadgen.MariaDB, loadgen.Data{Users: 200, Orders: 5000}); err != nil {
		t.Fatal(err)
	}
	exec3 := func(cmd ...string) (int, string) {
		res, err := n3.Exec(ctx, cmd...)
		if err != nil {
			t.Fatal(err)
		}
		return res.ExitCode, res.Stdout + res.Stderr
	}
	n3db := func() *sql.DB {
		d, err := sql.Open("mysql", n3.DSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	count := func(d *sql.DB, q string) int {
		var n int
		if err := d.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	// live says whether a process runs on n3, zombies not counted (the server,
	// the node's first process, never reaps what exec leaves behind).
	live := func(name string) bool {
		_, out := exec3("sh", "-c", `ps -eo stat=,args= | awk -v p="$1" '$1 !~ /^Z/ && index($0, p) && !/awk/ {n++} END {print n+0}'`, "sh", name)
		return strings.TrimSpace(out) != "0"
	}
	onClusterNet := func() bool {
		ins, err := hc.Engine().Client.ContainerInspect(ctx, n3.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ins.Container.NetworkSettings.Networks) == 2 // its client network and the cluster's
	}
	cases := []struct {
		kind   string
		params []string
		// left says whether the fault's effect is in place (before: took effect;
		// after the heal: must be false).
		left func() bool
		// problem is what the health check names on the node, beside the journal.
		problem string
	}{
		{"pause", nil, func() bool { st, _ := n3.State(ctx); return st.Paused }, "frozen (paused)"},
		{"partition", nil, func() bool { return !onClusterNet() }, "cut off its cluster network"},
		{"network-bandwidth", nil, func() bool { _, out := exec3("tc", "qdisc", "show"); return strings.Contains(out, "tbf") }, "bandwidth filter"},
		{"slow-node", []string{"--param", "percent=50"}, func() bool {
			l, err := n3.CPULimits(ctx)
			return err == nil && (l.CPUQuota > 0 || l.NanoCPUs > 0)
		}, ""},
		{"cpu-hog", nil, func() bool { return live("stress-ng") }, "stress-ng runs"},
		{"memory-fill", []string{"--param", "method=exec", "--param", "percent=60"}, func() bool {
			return live("htapchaos-memfill")
		}, "memory-fill's hog"},
		{"memory-fill", []string{"--param", "method=sql", "--param", "percent=60"}, func() bool {
			return count(n3db(), `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'htapchaos\_memfill\_%'`) > 0
		}, "MEMORY table(s) of memory-fill"},
		{"schema-change", []string{"--param", "variant=add-not-null-default"}, func() bool {
			return count(n3db(), "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'htapchaos_sc'") > 0
		}, "schema-change's column or index is on orders"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(append([]string{tc.kind}, tc.params...), " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"fault", tc.kind, "--cluster", name, "--node", "3", "--duration", "5m", "--out", out}, tc.params...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), env...)
			var errb strings.Builder
			cmd.Stderr, cmd.Stdout = &errb, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			deadline := time.Now().Add(90 * time.Second)
			for !tc.left() {
				select {
				case err := <-done:
					t.Fatalf("htapchaos fault ended before its effect showed: %v\n%s", err, errb.String())
				default:
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("no effect after 90 s:\n%s", errb.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-done
			time.Sleep(time.Second)
			if !tc.left() {
				t.Fatalf("%s was undone without a heal: nothing to test", tc.kind)
			}
			// The health check refuses another fault while this one's leftovers
			// are there, naming them and the heal command (exit 3).
			chk := htapchaos(t, env, "fault", "pause", "--cluster", name, "--node", "1", "--duration", "1s")
			for _, want := range []string{"the journal holds " + tc.kind + " on " + n3.Name, tc.problem, "htapchaos heal --cluster " + name} {
				if chk.code != exitInfra || !strings.Contains(chk.stderr, want) {
					t.Errorf("fault on the hurt cluster: exit %d, no %q in: %s", chk.code, want, chk.stderr)
				}
			}
			start := time.Now()
			h := htapchaos(t, env, "heal", "--cluster", name)
			t.Logf("heal (%v): exit %d\n%s%s", time.Since(start).Round(time.Millisecond), h.code, h.stdout, h.stderr)
			if h.code != 0 || !strings.Contains(h.stdout, "healed: "+tc.kind) {
				t.Fatalf("heal: exit %d: %s %s", h.code, h.stdout, h.stderr)
			}
			if tc.left() {
				t.Errorf("%s still in place after the heal", tc.kind)
			}
			if err := n3.WaitReady(ctx); err != nil {
				t.Errorf("n3 after the heal: %v", err)
			}
			// The run directory's copy of the journal holds the inject too, and a
			// second heal has nothing left to do.
			es, err := faults.ReadJournal(filepath.Join(out, "faults.journal.jsonl"))
			if err != nil || len(es) == 0 || es[0].Event != faults.JournalInject || es[0].Cluster != name {
				t.Errorf("run directory journal: %+v %v", es, err)
			}
			if h := htapchaos(t, env, "heal", out); h.code != 0 || !strings.Contains(h.stdout, "nothing to heal") {
				t.Errorf("second heal from the run directory: exit %d: %s %s", h.code, h.stdout, h.stderr)
			}
			// Healthy again: the check lets a fault through.
			if err := faults.HealthCheck(ctx, faulttarget.Cluster(hc), faults.JournalKey{Cluster: name}); err != nil {
				t.Errorf("health check after the heal: %v", err)
			}
		})
	}
	// Galera is whole again: every node Synced in a cluster of 3.
	if err := hc.WaitReady(ctx); err != nil {
		t.Errorf("cluster after the heals: %v", err)
	}
}

// One actor per cluster: heal is refused while another process holds the
// cluster's lock, naming it (exit 3); --force heals anyway.
func TestHealWaitsForTheLock(t *testing.T) {
	t.Setenv("HTAPCHAOS_STATE_DIR", t.TempDir())
	key := faults.JournalKey{Cluster: testPrefix + "locked"}
	j, err := faults.OpenJournal(key, "")
	if err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(faults.JournalEntry{ID: "1", Event: faults.JournalInject, Kind: "pause", Nodes: []int{1}, PID: gone.Process.Pid}); err != nil {
		t.Fatal(err)
	}
	lk, err := faults.AcquireLock(key, "htapchaos run failover-pause")
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	r := htapchaos(t, nil, "heal", "--cluster", key.Cluster)
	if r.code != exitInfra || !strings.Contains(r.stderr, "is held by process "+strconv.Itoa(os.Getpid())+" (htapchaos run failover-pause)") {
		t.Errorf("heal while locked: exit %d: %s", r.code, r.stderr)
	}
}
