package experiments

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// The memory a query holds, arranged by the test: a GROUP BY into an in-memory
// temporary table of memGroups rows, one per group, each row the group key,
// COUNT(*), MAX of a memPad-byte binary column and the MIN(seq) the HAVING
// reads: about 25 MB of rows. tmp_table_size and max_heap_table_size are
// raised on the server so that the table stays in memory (memHeap), and the
// pad is at most 512 bytes: a longer string column makes the temporary table a
// BLOB table, which goes to disk (measured: MAX_MEMORY_USED 0.2 MB, not 30).
// The HAVING holds the finished table for the query's hold: the table is
// built in tens of milliseconds and then held, so a query in flight holds its
// full table nearly all its life, and the memory each extra concurrent query
// adds (the time average Memory_used sees) is its peak. Only the group whose
// smallest seq is memGroups passes the HAVING (an aggregate, so the optimizer
// cannot push it into WHERE): one row returns, and the query sleeps once.
const (
	memGroups = 48000
	memPad    = 500
	memHeap   = 64 << 20 // tmp_table_size and max_heap_table_size: room for the table
)

func memQuery(hold time.Duration) string {
	return fmt.Sprintf("SELECT seq %% %d AS k, COUNT(*) AS c, MAX(CAST(seq AS BINARY(%d))) AS pad FROM seq_1_to_%d "+
		"GROUP BY k HAVING MIN(seq) = %d AND SLEEP(%g) = 0 ORDER BY NULL",
		memGroups, memPad, memGroups, memGroups, hold.Seconds())
}

// memTruth is the arranged query's memory, established apart from the tool.
// table is the MEMORY engine's own count (information_schema data_length +
// index_length) of a table of the same rows and key as the query's temporary
// one: the same four columns, the same 48000 rows, a hash key on the group.
// It is not rows x width: the engine allocates rows in blocks of
// max_heap_table_size / 16 (4 MiB here), so 48000 rows of 519 bytes fill 6
// blocks (25.2 MB) and of 527 bytes, with the MIN column, 7 (29.4 MB); the
// hash index adds 1.3 MB. held is the server's Memory_used while one copy of
// the query holds its table (the median of three readings during its sleep,
// less the median of three before): a cross-check that the query holds that
// table and little else. Neither is the tool's method (each query's fresh
// connection's MAX_MEMORY_USED; a slope of Memory_used over phases of rising
// concurrency).
type memTruth struct{ table, held float64 }

func measureMemTruth(t *testing.T, ctx context.Context, db *sql.DB) memTruth {
	t.Helper()
	var tr memTruth
	// The MEMORY engine's own count of such a table.
	must := func(_ sql.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	must(conn.ExecContext(ctx, "DROP TABLE IF EXISTS memtruth"))
	must(conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE memtruth (k BIGINT NOT NULL, c BIGINT NOT NULL, pad VARBINARY(%d), m BIGINT, UNIQUE KEY USING HASH (k)) ENGINE=MEMORY", memPad)))
	must(conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO memtruth SELECT seq %% %d, 1, CAST(seq AS BINARY(%d)), seq FROM seq_1_to_%d", memGroups, memPad, memGroups)))
	if err := conn.QueryRowContext(ctx, "SELECT data_length + index_length FROM information_schema.TABLES WHERE table_schema = DATABASE() AND table_name = 'memtruth'").Scan(&tr.table); err != nil {
		t.Fatal(err)
	}
	must(conn.ExecContext(ctx, "DROP TABLE memtruth"))

	// Memory_used while one copy holds its table.
	used := func() float64 {
		var xs []float64
		for range 3 {
			var name string
			var v float64
			if err := conn.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Memory_used'").Scan(&name, &v); err != nil {
				t.Fatal(err)
			}
			xs = append(xs, v)
			time.Sleep(50 * time.Millisecond)
		}
		return median(xs)
	}
	q, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var id int64
	if err := q.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	before := used()
	done := make(chan error, 1)
	go func() {
		rows, err := q.QueryContext(ctx, memQuery(3*time.Second))
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var state sql.NullString
		_ = conn.QueryRowContext(ctx, "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&state)
		if state.String == "User sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the query never reached its sleep (state %q)", state.String)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tr.held = used() - before
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return tr
}

// within says whether got is within frac of want.
func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*want }

// TestMemoryAgainstArrangedTruth runs a query whose memory the test arranges
// at concurrency 1, 2 and 4 on one node, with the memory-fill hog off and on
// (method=sql: its MEMORY tables count in Memory_used, and the scorer must take
// them out), and holds the tool's figures to the truth: each query's peak
// (PhaseStats.Memory) and the memory per extra concurrent query (the slope of
// Memory_used) within 20% of the table's size.
func TestMemoryAgainstArrangedTruth(t *testing.T) {
	heap := strconv.Itoa(memHeap)
	c := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: 1 << 30, Labels: testLabels,
		Settings: map[string]string{"tmp_table_size": heap, "max_heap_table_size": heap}})
	ctx := context.Background()
	n, err := c.Node(1)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", n.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	truth := measureMemTruth(t, ctx, db)
	t.Logf("truth: the MEMORY engine counts %s for the table (%d rows, %s of pad alone); Memory_used rose %s while one copy held it",
		bytesStr(truth.table), memGroups, bytesStr(memGroups*memPad), bytesStr(truth.held))
	// The two accounts must agree, or there is no truth to hold the tool to:
	// the query holds that table and little else.
	if !within(truth.held, truth.table, 0.05) || truth.table < memGroups*memPad {
		t.Fatalf("no agreed truth: the table is %s by the engine's count, %s by Memory_used held", bytesStr(truth.table), bytesStr(truth.held))
	}
	want := truth.table

	for _, hog := range []string{"off", "on"} {
		t.Run("hog "+hog, func(t *testing.T) {
			// The fill phase gives the hog the 9 s it takes to reach 60%
			// (measured), so that it holds by c1; without a hog there is
			// nothing to wait for.
			fill := ""
			if hog == "on" {
				fill = "\n  - {name: fill, duration: 10s}"
			}
			y := fmt.Sprintf(`name: memory-truth
modes: [memory-headroom]
data: {users: 100, orders: 1000}
phases:
  - {name: warmup, duration: 2s}
  - {name: baseline, duration: 5s}%s
  - {name: c1, duration: 7s}
  - {name: c2, duration: 7s}
  - {name: c4, duration: 7s}
workloads:
  - name: groupby
    kind: analytics
    mix: {sql: 1}
    query: %q
    concurrency: 1
    timeout: 30s
    route: all
    during: [c1, c2, c4]
    phase_rates: {c1: 1, c2: 2, c4: 4}
`, fill, memQuery(2*time.Second))
			if hog == "on" {
				y += `faults:
  - {kind: memory-fill, phase: fill, for: 31s, node: "1", params: {percent: "60", method: sql}}
`
			}
			spec, err := ParseSpec("memory-truth.yaml", []byte(y), ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(ctx, spec, Options{Cluster: c, Out: t.TempDir(), Seed: 1, Log: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			fs := findings(res, ModeMemoryHeadroom)
			for _, f := range fs {
				t.Logf("%s: %s %.4g %s %s\n  %s", f.Name, f.Verdict, f.Value, f.Unit, f.Reason, strings.Join(f.Notes, "\n  "))
			}
			rec := res.Recorded
			if hog == "on" {
				f := rec.Faults[0]
				held := slices.ContainsFunc(rec.Indicators, func(s Sample) bool { return s.HogInServer && s.HogBytes > 0 })
				if !f.TookEffect() || !held {
					t.Fatalf("the hog never held memory in the server: %s %s, hog samples %v", f.State, f.Error, held)
				}
				t.Logf("the hog took effect %.1f s after it was injected (the fill phase is 10 s)", f.Effective.Sub(f.Injected).Seconds())
			}
			// Each query's peak, per phase.
			for _, p := range []string{"c1", "c2", "c4"} {
				s, ok := rec.stat(p, "groupby", "sql", 0)
				if !ok || s.Memory == nil || s.Count == 0 {
					t.Errorf("%s: no per-query memory (%+v)", p, s)
					continue
				}
				t.Logf("%s: %d queries, peak p50 %s, max %s", p, s.Count, bytesStr(s.Memory.P50), bytesStr(s.Memory.Max))
				if !within(s.Memory.P50, want, 0.2) || !within(s.Memory.Max, want, 0.2) {
					t.Errorf("%s: per-query peak p50 %s, max %s; the table is %s", p, bytesStr(s.Memory.P50), bytesStr(s.Memory.Max), bytesStr(want))
				}
			}
			i := slices.IndexFunc(fs, func(f Finding) bool { return f.Name == findMemQuery })
			if i < 0 || fs[i].Verdict != Pass || !within(fs[i].Value*(1<<20), want, 0.2) {
				t.Errorf("max query memory: %+v; the table is %s", fs, bytesStr(want))
			}
			// The memory each extra concurrent query adds, from Memory_used.
			i = slices.IndexFunc(fs, func(f Finding) bool { return f.Name == findMemPerExtr })
			if i < 0 {
				t.Fatal("no memory per extra concurrent query")
			}
			ex := fs[i]
			if ex.Verdict != Pass || !within(ex.Value*(1<<20), want, 0.2) {
				t.Errorf("memory per extra concurrent query: %s %.1f MiB (%s); the table is %s", ex.Verdict, ex.Value, ex.Reason, bytesStr(want))
			}
			if notes := strings.Join(ex.Notes, "\n"); hog == "on" && !strings.Contains(notes, "less the memory-fill hog's MEMORY tables") {
				t.Errorf("the hog's tables were not taken out:\n%s", notes)
			}
		})
	}
}
