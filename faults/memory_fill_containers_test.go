package faults_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/htapchaos/htapchaos/faults"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// memSample is one engine reading, taken at At.
type memSample struct {
	At  time.Time
	Pct float64
}

// memSampler reads the engine's figure every interval, each reading in its own
// goroutine (one takes a second or more), until stop.
func memSampler(n *htc.Node, interval time.Duration) (stop func() []memSample) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var out []memSample
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ms, err := n.MemoryStats(context.Background())
				if err == nil {
					mu.Lock()
					out = append(out, memSample{time.Now(), ms.Percent})
					mu.Unlock()
				}
			}()
			select {
			case <-quit:
				return
			case <-time.After(interval):
			}
		}
	}()
	return func() []memSample {
		close(quit)
		<-stopped
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

func memPercent(t *testing.T, n *htc.Node) float64 {
	t.Helper()
	ms, err := n.MemoryStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ms.Percent
}

// memHogs counts live hog processes on the node.
func memHogs(t *testing.T, c Cluster) string {
	t.Helper()
	st, err := MemfillStatus(context.Background(), c.Nodes()[0])
	if err != nil {
		t.Fatal(err)
	}
	return st["live"]
}

// memHogBytes reads what the hog holds, by its own count.
func memHogBytes(t *testing.T, c Cluster) float64 {
	t.Helper()
	st, err := MemfillStatus(context.Background(), c.Nodes()[0])
	if err != nil {
		t.Fatal(err)
	}
	var b float64
	if _, err := fmt.Sscan(st["hog_bytes"], &b); err != nil {
		t.Fatalf("hog_bytes in the hog's state %v: %v", st, err)
	}
	return b
}

// memGrow makes the database hold about size more bytes, in a MEMORY table that
// the test drops when it ends (the server keeps the memory).
func memGrow(t *testing.T, db *sql.DB, size int) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows := size / MemfillRow
	for _, q := range []string{
		fmt.Sprintf("SET SESSION max_heap_table_size = %d", 2*size),
		fmt.Sprintf("CREATE TABLE memfill_test_grow (pad VARBINARY(%d) NOT NULL) ENGINE=MEMORY", MemfillRow),
		fmt.Sprintf("INSERT INTO memfill_test_grow (pad) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n < %d) SELECT REPEAT('x', %d) FROM s", rows, MemfillRow),
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS memfill_test_grow") })
}

func TestMemoryFill(t *testing.T) {
	const limit = 512 << 20
	c, n, db := startSingle(t, limit)
	ctx := context.Background()
	answers := func() error {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var one int
		return db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
	}

	t.Run("exec-reaches-and-holds", func(t *testing.T) {
		const target, hold = 90.0, 8 * time.Second
		before := memPercent(t, n)
		r, done := startWith(t, ctx, c, "memory-fill", "1", hold, map[string]string{"percent": "90"})
		effective := time.Now()
		samples := memSampler(n, 500*time.Millisecond)
		var errs []error
		if err := answers(); err != nil {
			errs = append(errs, err)
		}
		// The database grows by 40 MB (a MEMORY table) during the hold: the hog gives way.
		time.Sleep(time.Until(effective.Add(2 * time.Second)))
		hogBefore := memHogBytes(t, c)
		growStart := time.Now()
		memGrow(t, db, 40e6)
		growEnd := time.Now()
		time.Sleep(1500 * time.Millisecond)
		hogAfter := memHogBytes(t, c)
		if shrunk := hogBefore - hogAfter; shrunk < 30e6 || shrunk > 60e6 {
			t.Errorf("the database grew by 40 MB, the hog went from %.0f to %.0f bytes", hogBefore, hogAfter)
		}
		t.Logf("the database grew by 40 MB in %v: the hog went from %.1f to %.1f MB",
			growEnd.Sub(growStart).Round(time.Millisecond), hogBefore/1e6, hogAfter/1e6)
		for time.Since(effective) < hold-2*time.Second {
			if err := answers(); err != nil {
				errs = append(errs, err)
			}
			time.Sleep(time.Second)
		}
		got := samples()
		if len(errs) > 0 {
			t.Errorf("the database did not answer SELECT 1 during the hold: %d times, first: %v", len(errs), errs[0])
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		after := memPercent(t, n)

		var held []string
		counted := 0
		for _, s := range got {
			held = append(held, fmt.Sprintf("%.1f", s.Pct))
			if s.At.Sub(effective) < time.Second || s.At.After(r.Recovered) ||
				s.At.After(growStart) && s.At.Before(growEnd.Add(time.Second)) {
				continue // settling after the effect or the database's growth; or read after the release
			}
			counted++
			if math.Abs(s.Pct-target) > MemfillBand {
				t.Errorf("sample %.1fs into the hold: %.1f%%, want %.0f±%.0f", s.At.Sub(effective).Seconds(), s.Pct, target, MemfillBand)
			}
		}
		if counted < 6 {
			t.Errorf("only %d engine samples during the hold", counted)
		}
		t.Logf("before %.1f%%, reached in %v, hold samples %s, released in %v (recover to healthy), after %.1f%%",
			before, r.Effective.Sub(r.Injected).Round(10*time.Millisecond), strings.Join(held, " "), r.Healthy.Sub(r.Recovered).Round(10*time.Millisecond), after)
		for _, m := range r.Measurements() {
			t.Log(m)
		}

		ms := r.Measurements()
		if m, ok := FindMeasurement(ms, MeasureMemoryReached); !ok || math.Abs(m.Value-target) > MemfillBand {
			t.Errorf("memory reached %+v, want %.0f±%.0f", m, target, MemfillBand)
		}
		// The hog held what the database did not: the target minus the use before, roughly.
		want := (target - before) / 100 * limit
		if m, ok := FindMeasurement(ms, MeasureHogSize); !ok || m.Value < want*0.8 || m.Value > want*1.2 {
			t.Errorf("hog size %+v, want about %.0f MiB", m, want/(1<<20))
		}
		if after > 80 || after > before+10 {
			t.Errorf("after recovery the engine reports %.1f%%: not released (before: %.1f%%)", after, before)
		}
		if live := memHogs(t, c); live != "0" {
			t.Errorf("%s hog(s) live after recovery", live)
		}
		if res, err := n.Exec(ctx, "sh", "-c", "ls /tmp/htapchaos-memfill* 2>/dev/null | wc -l"); err != nil || strings.TrimSpace(res.Stdout) != "0" {
			t.Errorf("files left in /tmp after cleanup: %q %v", res.Stdout, err)
		}
	})

	t.Run("cancel-leaves-nothing-active", func(t *testing.T) {
		before := memPercent(t, n)
		cctx, cancel := context.WithCancel(ctx)
		r, done := startWith(t, cctx, c, "memory-fill", "1", time.Hour, map[string]string{"percent": "85"})
		if p := memPercent(t, n); math.Abs(p-85) > MemfillBand {
			t.Errorf("at effect the engine reports %.1f%%, want 85±%.0f", p, MemfillBand)
		}
		cancelAndWait(t, cancel, done)
		if r.State() != StateCleaned {
			t.Errorf("state %s", r.State())
		}
		if live := memHogs(t, c); live != "0" {
			t.Errorf("%s hog(s) live after a cancel", live)
		}
		if p := memPercent(t, n); p > 80 || p > before+10 {
			t.Errorf("after a cancel the engine reports %.1f%% (before: %.1f%%)", p, before)
		}
		if err := answers(); err != nil {
			t.Errorf("the database after a cancel: %v", err)
		}
	})

	t.Run("sql-held-figure-follows-a-drop", func(t *testing.T) {
		// The database grows by 40 MB during the hold: the filler drops tables,
		// and what it says it holds follows at once, not at its next
		// once-a-second read (the sampler took Memory_used less a figure up to a
		// second stale before).
		sum := func() int64 {
			return queryCount(t, db, `SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_name LIKE 'htapchaos\_memfill\_%'`)
		}
		tables := func() int64 {
			return queryCount(t, db, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'htapchaos\_memfill\_%'`)
		}
		r, done := startWith(t, ctx, c, "memory-fill", "1", 8*time.Second, map[string]string{"percent": "60", "method": "sql"})
		mh := r.Fault.(MemoryHolder)
		time.Sleep(1500 * time.Millisecond) // past the filler's last step
		before := tables()
		memGrow(t, db, 40e6)
		deadline := time.Now().Add(3 * time.Second)
		for tables() >= before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		after := tables()
		time.Sleep(100 * time.Millisecond) // the filler's read after its DROP
		held, inServer, ok := mh.HeldBytes(1)
		want := sum()
		t.Logf("tables %d -> %d after the database grew by 40 MB; held %d, the server counts %d bytes", before, after, held, want)
		if after >= before {
			t.Fatalf("the filler dropped no table after the database grew by 40 MB (%d tables)", after)
		}
		if !ok || !inServer || held != want {
			t.Errorf("100 ms after the drop the fault says it holds %d bytes (ok %v, in server %v); the server counts %d", held, ok, inServer, want)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		_, _ = db.Exec("DROP TABLE IF EXISTS memfill_test_grow")
	})

	t.Run("sql-reaches-and-drops-its-tables", func(t *testing.T) {
		const target = 60.0
		tables := func() int64 {
			return queryCount(t, db, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'htapchaos\_memfill\_%'`)
		}
		before := memPercent(t, n)
		r, done := startWith(t, ctx, c, "memory-fill", "1", 3*time.Second, map[string]string{"percent": "60", "method": "sql"})
		reached := memPercent(t, n)
		during := tables()
		if err := answers(); err != nil {
			t.Errorf("the database during the hold: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		after := memPercent(t, n)
		t.Logf("before %.1f%%, reached %.1f%% in %v with %d tables, after %.1f%%",
			before, reached, r.Effective.Sub(r.Injected).Round(10*time.Millisecond), during, after)
		for _, m := range r.Measurements() {
			t.Log(m)
		}
		if math.Abs(reached-target) > MemfillBand {
			t.Errorf("at effect the engine reports %.1f%%, want %.0f±%.0f", reached, target, MemfillBand)
		}
		if during == 0 {
			t.Error("no MEMORY tables during the hold")
		}
		if k := tables(); k != 0 {
			t.Errorf("%d MEMORY tables left after recovery", k)
		}
		if after > target-MemfillMargin || after > before+10 {
			t.Errorf("after recovery the engine reports %.1f%%: not released (before: %.1f%%)", after, before)
		}
		if m, ok := FindMeasurement(r.Measurements(), MeasureMemoryTableSize); !ok || m.Value < (target-before-10)/100*limit {
			t.Errorf("memory-table size %+v: less than the fill", m)
		}
	})
}
