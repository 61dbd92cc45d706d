package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The health check before hurting anything: on a cluster or target that exists
// already, `run` and `fault` first check that every node serves in its role, is
// running and not frozen, is on its cluster network, and holds none of
// htapchaos's leftovers (a bandwidth filter, a CPU or memory hog, MEMORY tables,
// schema-change's column or index), and that the journal holds no fault left
// unrecovered. A fault on a cluster that is already hurt measures the old hurt,
// and can push it over.

// Problem is one thing wrong before a fault.
type Problem struct {
	Node string `json:"node,omitempty"` // "" for the cluster
	What string `json:"what"`
}

func (p Problem) String() string {
	if p.Node == "" {
		return p.What
	}
	return p.Node + ": " + p.What
}

// ErrUnhealthy is what HealthError wraps: the CLI maps it to exit 3.
var ErrUnhealthy = errors.New("the cluster is not healthy")

// HealthError lists the problems and the command that heals what htapchaos left.
type HealthError struct {
	Problems []Problem
	Heal     string
}

func (e *HealthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: nothing was done:", ErrUnhealthy)
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	fmt.Fprintf(&b, "\nheal what htapchaos left with: %s (or pass --skip-health-check if you know better)", e.Heal)
	return b.String()
}

func (e *HealthError) Unwrap() error { return ErrUnhealthy }

// HealthCheck checks every node of the cluster and the journal of key, and
// returns a *HealthError naming every problem found, or nil.
func HealthCheck(ctx context.Context, c Cluster, key JournalKey) error {
	var (
		mu       sync.Mutex
		problems []Problem
		wg       sync.WaitGroup
	)
	add := func(node, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, Problem{Node: node, What: fmt.Sprintf(format, args...)})
	}
	if path, err := JournalPath(key); err == nil {
		es, err := ReadJournal(path)
		if err != nil {
			add("", "the fault journal %s cannot be read: %v", path, err)
		}
		for _, e := range Unrecovered(es) {
			who := "never recovered"
			if e.Alive() {
				who = fmt.Sprintf("held by process %d (%s), which still runs", e.PID, e.Command)
			}
			add("", "the journal holds %s on %s, injected %s: %s", e.Kind, strings.Join(e.Labels, ", "), e.Time.Local().Format("2006-01-02 15:04:05"), who)
		}
	}
	for _, n := range c.Nodes() {
		wg.Go(func() {
			for _, what := range nodeProblems(ctx, n) {
				add(n.Label(), "%s", what)
			}
		})
	}
	wg.Wait()
	if len(problems) == 0 {
		return nil
	}
	return &HealthError{Problems: problems, Heal: key.HealCommand()}
}

// maxHealthyLag is how far behind its primary a replica may be before a fault.
const maxHealthyLag = 5

// nodeProblems checks one node.
func nodeProblems(ctx context.Context, n Node) []string {
	var out []string
	if s, ok := n.(Stater); ok {
		running, paused, err := s.Running(ctx)
		switch {
		case err != nil:
			return []string{"its state cannot be read: " + err.Error()}
		case paused:
			return []string{"frozen (paused)"}
		case !running:
			return []string{"not running"}
		}
	}
	if nc, ok := n.(NetChecker); ok {
		if on, err := nc.OnClusterNet(ctx); err == nil && !on {
			out = append(out, "cut off its cluster network")
		}
	}
	if r, ok := n.(Readier); ok {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := r.WaitReady(rctx)
		cancel()
		if err != nil {
			out = append(out, "does not serve in its role: "+shortError(err))
		}
	}
	if lr, ok := n.(LagReader); ok {
		if lag, known, err := lr.ReplicaLag(ctx); err == nil && known && lag > maxHealthyLag {
			out = append(out, fmt.Sprintf("a replica %d s behind its primary (more than %d s)", lag, maxHealthyLag))
		}
	}
	if ex, ok := n.(Execer); ok && isOwned(n) {
		// Processes and filters htapchaos's faults leave inside a node, zombies
		// not counted (the server never reaps what exec leaves). The hog's name
		// is matched as [h]tapchaos-memfill: the probe's own command line must
		// not match itself.
		probe := `echo "tbf=$(tc qdisc show 2>/dev/null | grep -c ' tbf ')"; echo "stress=$(` + hogCheck + `)"; ` +
			`echo "memfill=$(ps -eo stat=,args= | awk '$1 !~ /^Z/ && /[` + memfillProc[:1] + `]` + memfillProc[1:] + `/ {n++} END {print n+0}')"`
		if code, stdout, err := ex.Exec(ctx, "sh", "-c", probe); err == nil && code == 0 {
			kv := map[string]int{}
			for _, line := range strings.Split(stdout, "\n") {
				k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
				kv[k], _ = strconv.Atoi(v)
			}
			if kv["tbf"] > 0 {
				out = append(out, "a bandwidth filter (tc tbf) is on an interface: network-bandwidth's")
			}
			if kv["stress"] > 0 {
				out = append(out, "stress-ng runs: cpu-hog's")
			}
			if kv["memfill"] > 0 {
				out = append(out, "memory-fill's hog ("+memfillProc+") runs")
			}
		}
	}
	if sn, ok := n.(SQLNode); ok && sn.DSN() != "" {
		if db, err := healDB(n); err == nil {
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if names, err := memfillTables(qctx, db); err == nil && len(names) > 0 {
				out = append(out, fmt.Sprintf("%d MEMORY table(s) of memory-fill (%s)", len(names), strings.Join(names, ", ")))
			}
			var tables string
			err := db.QueryRowContext(qctx, `SELECT COALESCE(GROUP_CONCAT(DISTINCT TABLE_NAME), '') FROM (
  SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = ?
  UNION SELECT TABLE_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = ?) t`,
				schemaColumn, schemaIndex).Scan(&tables)
			if err == nil && tables != "" {
				out = append(out, "schema-change's column or index is on "+tables)
			}
			cancel()
			db.Close()
		}
	}
	return out
}

// isOwned says whether htapchaos started the node itself (Owned: a container), so
// that probes of ours may run inside it (an exec target's nodes run the user's
// commands, not probes of ours).
func isOwned(n Node) bool {
	o, ok := n.(Owned)
	return ok && o.Owned()
}

func shortError(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// alive says whether a process runs (signal 0 reaches it).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Alive says whether the process that wrote a journal entry still runs: same
// boot (a process id from before a reboot names another process now) and the
// process answers.
func (e JournalEntry) Alive() bool {
	if e.Boot != "" && e.Boot != bootID() {
		return false
	}
	return e.PID != 0 && alive(e.PID)
}

// bootID names this boot of the machine ("" where the kernel does not say).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
