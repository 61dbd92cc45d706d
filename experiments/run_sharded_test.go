package experiments

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// sharedSharded is the sharded cluster of the quick sharded builtins (2
// aggregators over 3 leaves), shared by their tests.
func sharedSharded(t testing.TB) *htc.Cluster {
	t.Helper()
	spec, err := Builtin("data-movement", ParseOptions{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := spec.ClusterConfig()
	cfg.Labels = testLabels
	return htc.SharedForTest(t, "sharded-quick", cfg)
}

// leafTotals sums the leaves' Bytes_sent and Com_select, read by the test itself.
func leafTotals(t *testing.T, ctx context.Context, c *htc.Cluster) (bytes, selects int64) {
	t.Helper()
	for _, n := range c.Leaves() {
		st, err := n.Status(ctx, "%")
		if err != nil {
			t.Fatal(err)
		}
		b, err1 := strconv.ParseInt(st["bytes_sent"], 10, 64)
		s, err2 := strconv.ParseInt(st["com_select"], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		bytes += b
		selects += s
	}
	return bytes, selects
}

// measureAlone runs one query on the first aggregator while nothing else runs
// and returns what the leaves sent for it and the SELECTs they ran, as the
// leaves count them.
func measureAlone(t *testing.T, ctx context.Context, c *htc.Cluster, query string) (bytes, selects int64) {
	t.Helper()
	db, err := c.Aggregators()[0].DB()
	if err != nil {
		t.Fatal(err)
	}
	b0, s0 := leafTotals(t, ctx, c)
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	b1, s1 := leafTotals(t, ctx, c)
	b2, s2 := leafTotals(t, ctx, c) // what one reading of the counters adds
	return (b1 - b0) - (b2 - b1), (s1 - s0) - (s2 - s1)
}

// The sharded builtins on one sharded cluster, in turn: each fault heals before
// the next starts.
func TestShardedBuiltins(t *testing.T) {
	c := sharedSharded(t)
	ctx := context.Background()
	run := func(t *testing.T, name string) *Result { return runShardedBuiltin(t, c, "spider", name, nil) }

	t.Run("data-movement", func(t *testing.T) {
		res := run(t, "data-movement")
		leaves := res.Recorded.nodesWithRole(htc.RoleLeaf)
		if len(leaves) != 3 {
			t.Fatalf("leaves %v, want 3", leaves)
		}
		classes, mixed := res.Recorded.movementClasses(leaves)
		if len(mixed) > 0 {
			t.Errorf("mixed classes: %v", mixed)
		}
		per := map[string]movementClass{}
		for _, c := range classes {
			per[c.op] = c
			t.Logf("%s: %d queries, moved %.0f B (%.0f per query), returned %d B, %.0f selects", c.op, c.queries, c.moved, c.moved/float64(max(c.queries, 1)), c.returned, c.selects)
		}
		for _, op := range []string{"pushed-aggregate", "high-card-groupby", "colocated-join", "noncolocated-join", "colocated-join-bka", "noncolocated-join-bka"} {
			if c, ok := per[op]; !ok || c.queries == 0 || c.returned == 0 || !c.baselined {
				t.Fatalf("%s: not measured: %+v", op, c)
			}
		}
		// Against the leaves' own count of one query run alone, after the run.
		for _, tc := range []struct{ op, query string }{
			{"pushed-aggregate", loadgen.ShardedQuery("pushed-aggregate")},
			{"noncolocated-join", loadgen.ShardedQuery("noncolocated-join")},
		} {
			alone, selects := measureAlone(t, ctx, c, tc.query)
			got := per[tc.op].moved / float64(per[tc.op].queries)
			trips := per[tc.op].selects / float64(per[tc.op].queries)
			t.Logf("%s: the tool measured %.0f B moved and %.0f leaf selects per query under load, the leaves counted %d B and %d for one alone",
				tc.op, got, trips, alone, selects)
			if got < float64(alone)/2 || got > float64(alone)*2 {
				t.Errorf("%s: %.0f B moved per query, the leaves counted %d B for the query alone", tc.op, got, alone)
			}
			if trips < float64(selects)/2 || trips > float64(selects)*2 {
				t.Errorf("%s: %.0f leaf selects per query, the leaves counted %d for the query alone", tc.op, trips, selects)
			}
		}
		ratio := func(op string) float64 { return per[op].moved / float64(per[op].returned) }
		if ratio("noncolocated-join") < 10*ratio("pushed-aggregate") {
			t.Errorf("movement ratio: non-co-located join %.0fx, pushed-down aggregate %.0fx: want at least 10 times", ratio("noncolocated-join"), ratio("pushed-aggregate"))
		}
		findingOf(t, res.Findings, named("bytes moved / bytes returned", "pushed-aggregate"), Pass)
		findingOf(t, res.Findings, named("bytes moved / bytes returned", "noncolocated-join"), Fail)
		for _, join := range []string{"colocated-join", "noncolocated-join"} {
			f := findingOf(t, res.Findings, named("join strategy: bytes moved unbatched / batched", join), Pass)
			if f.Value < 3 {
				t.Errorf("%s: %.2fx, want the unbatched join to move at least 3x the batched one's bytes", f.Name, f.Value)
			}
		}
		if len(res.Recorded.Shards) != 18 {
			t.Errorf("run.json's shards: %d partitions, want 3 tables x 6", len(res.Recorded.Shards))
		}
	})

	t.Run("leaf-failure", func(t *testing.T) { checkLeafFailure(t, run(t, "leaf-failure"), nil) })

	t.Run("aggregator-memory", func(t *testing.T) {
		res := run(t, "aggregator-memory")
		for _, f := range findings(res, ModeMemoryHeadroom) {
			if f.Verdict == Inconclusive {
				t.Errorf("%s: inconclusive: %s", f.Name, f.Reason)
			}
		}
		for _, f := range res.Recorded.Faults {
			if !f.TookEffect() {
				t.Errorf("%s never took effect: %s", f.Name, f.Error)
			}
		}
		// The join's peak memory on the aggregator, read by the test on a fresh
		// connection of its own after the run.
		conn, err := sql.Open("mysql", c.Aggregators()[0].DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetMaxOpenConns(1)
		rows, err := conn.QueryContext(ctx, loadgen.ShardedQuery("noncolocated-join"))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		var peak int64
		if err := conn.QueryRowContext(ctx, "SELECT MAX_MEMORY_USED FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()").Scan(&peak); err != nil {
			t.Fatal(err)
		}
		maxq := findingOf(t, res.Findings, findMemQuery, Pass)
		got := maxq.Value
		if maxq.Unit == UnitMiB {
			got *= 1 << 20
		}
		t.Logf("max query memory: the tool %.0f B, the test's own fresh connection %d B", got, peak)
		if got < float64(peak)/2 || got > float64(peak)*2 {
			t.Errorf("max query memory %.0f B; the join alone peaked at %d B on a fresh connection", got, peak)
		}
	})

	t.Run("aggregator-failover", func(t *testing.T) {
		res := run(t, "aggregator-failover")
		with := findingOf(t, res.Findings, named(nameClientGap, "with-retries"), Pass)
		without := findingOf(t, res.Findings, named(nameClientGap, "no-retries"), Pass)
		// The lost aggregator refuses connections at once: a retry on the other
		// costs its backoff. Requests sent to it while it starts again wait about
		// a second for the server (seen: 1.2-1.3 s), never the rest of the run.
		d := with.Evidence[0].Detail
		m := regexp.MustCompile(`p99 up to (\S+)$`).FindStringSubmatch(d)
		if m == nil {
			t.Fatalf("no p99 in %q", d)
		}
		p99, err := time.ParseDuration(m[1])
		if err != nil || !strings.HasPrefix(d, "0 of ") || p99 > 3*time.Second {
			t.Errorf("with retries to the other aggregator: %s; want none failed and a p99 under 3 s", d)
		}
		// Round-robin over two aggregators, one lost: the requests sent to it fail
		// without retries.
		if d := without.Evidence[0].Detail; strings.HasPrefix(d, "0 of ") {
			t.Errorf("without retries no request failed: %s", d)
		}
	})
}

// runShardedBuiltin runs a quick builtin on a sharded cluster (set puts it on
// the engine's topology), logs its findings and checks its durability passed.
func runShardedBuiltin(t *testing.T, c *htc.Cluster, engine, name string, set []string) *Result {
	t.Helper()
	spec, err := Builtin(name, ParseOptions{Quick: true, Set: set})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), spec, Options{Cluster: c, Out: runDir(t, engine, name), Seed: 1, Log: t.Logf})
	if err != nil && res == nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		t.Logf("%s %s: %s %.4g %s (budget %s %.4g) %s %v", f.Mode, f.Name, f.Verdict, f.Value, f.Unit, f.Op, f.Budget, f.Reason, f.Notes)
	}
	for _, f := range findings(res, ModeDurability) {
		if f.Verdict != Pass {
			t.Errorf("durability: %+v", f)
		}
	}
	return res
}

// checkLeafFailure checks a leaf-failure run (set: the engine's overrides): the
// leaf was frozen for a known time, so the scatter read had no success for
// about as long (to the second), and the single-shard read, whose other users
// live on the other leaves, went on.
func checkLeafFailure(t *testing.T, res *Result, set []string) {
	t.Helper()
	spec, err := Builtin("leaf-failure", ParseOptions{Quick: true, Set: set})
	if err != nil {
		t.Fatal(err)
	}
	var pause time.Duration
	for _, f := range spec.Faults {
		if f.Name == "pause-leaf" {
			pause = f.For.D()
		}
	}
	if pause == 0 {
		t.Fatal("leaf-failure has no pause-leaf fault with a hold")
	}
	scatter := findingOf(t, res.Findings, named(nameOpGap, "point-read", "pause-leaf"), Fail)
	if got := time.Duration(scatter.Value * float64(time.Second)); got < pause-2*time.Second || got > pause+time.Second {
		t.Errorf("scatter read's gap %v while the leaf was frozen for %v", got, pause)
	}
	single := findingOf(t, res.Findings, named(nameOpGap, "shard-point-read", "pause-leaf"), Pass)
	if single.Value > 1 {
		t.Errorf("single-shard read's gap %.0f s: the other leaves served it", single.Value)
	}
}

// dataMovementRuns are the data-movement runs' directories by engine, for
// TestCompareEngines.
var dataMovementRuns = map[string]string{}

// runDir is where a sharded builtin writes its run: data-movement's outlives
// the test (in keptRuns), the others' do not.
func runDir(t *testing.T, engine, name string) string {
	if name != "data-movement" {
		return filepath.Join(t.TempDir(), name)
	}
	dir := filepath.Join(keptRuns, engine+"-"+name)
	dataMovementRuns[engine] = dir
	return dir
}

// findingOf finds a finding by name and checks its verdict.
func findingOf(t *testing.T, fs []Finding, name string, v Verdict) Finding {
	t.Helper()
	i := slices.IndexFunc(fs, func(f Finding) bool { return f.Name == name })
	if i < 0 {
		t.Fatalf("no finding %q", name)
	}
	if fs[i].Verdict != v {
		t.Errorf("%s: %s %g (%s), want %s", name, fs[i].Verdict, fs[i].Value, fs[i].Reason, v)
	}
	return fs[i]
}
