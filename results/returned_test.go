package results

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Bytes returned per operation in returnedRun: a 100 kB result (a REPEAT('x',
// 100000) with its framing), a 1 kB one and a point read's.
const (
	bigResult   = 100_103
	smallResult = 1_061
	pointResult = 150
)

// returnedRun records four one-second intervals: 10 analytics sql ops a second
// returning bigResult bytes on n1 in intervals 0-1 and smallResult on n2 in
// intervals 2-3; 100 point reads a second of pointResult bytes on n1, and one
// more a second recorded without a figure; a noop op that never reports bytes.
// Before the last tick it takes a live summary; after Close it records a
// figure that must be dropped.
func returnedRun(t *testing.T) (dir string, ticks []time.Time, live, sum *Summary) {
	t.Helper()
	dir = t.TempDir()
	start := t0.Add(250 * time.Millisecond)
	r, err := NewRecorder(Options{Dir: dir, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	s1 := r.Handle(Key{Workload: "analytics", Op: "sql", Node: 1})
	s2 := r.Handle(Key{Workload: "analytics", Op: "sql", Node: 2})
	pr := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	noop := r.Handle(Key{Workload: "noop", Op: "noop", Node: 0})
	ticks = []time.Time{start}
	for s := 0; s < 4; s++ {
		sec := start.Add(time.Duration(s) * time.Second)
		sql, bytes := s1, int64(bigResult)
		if s >= 2 {
			sql, bytes = s2, smallResult
		}
		for i := range 10 {
			at := sec.Add(time.Duration(i) * 50 * time.Millisecond)
			sql.Record(at, at, at.Add(ms(20)), nil)
			sql.RecordReturned(bytes)
		}
		for i := range 100 {
			at := sec.Add(time.Duration(i) * 5 * time.Millisecond)
			pr.Record(at, at, at.Add(ms(1)), nil)
			pr.RecordReturned(pointResult)
			noop.Record(at, at, at.Add(ms(0.01)), nil)
		}
		pr.Record(sec, sec, sec.Add(ms(1)), nil) // a success whose bytes are not known
		tick := start.Add(time.Duration(s+1) * time.Second)
		if s == 3 {
			live = r.Summary(tick)
		}
		if _, err := r.Tick(tick); err != nil {
			t.Fatal(err)
		}
		ticks = append(ticks, tick)
	}
	sum, err = r.Close(ticks[4])
	if err != nil {
		t.Fatal(err)
	}
	s1.RecordReturned(5 << 30) // after Close: dropped
	return dir, ticks, live, sum
}

// checkReturned: p50 and max within the histogram's precision (exact to the
// byte below 2 kB, within 0.1% above), the total exact.
func checkReturned(t *testing.T, what string, got *BytePercentiles, gotTotal int64, p50, max float64, total int64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no bytes returned, want p50 %.0f max %.0f total %d", what, p50, max, total)
		return
	}
	exact := func(g, w float64) bool {
		if w < 2048 {
			return g == w
		}
		return nearBytes(g, w)
	}
	if !exact(got.P50, p50) || !exact(got.Max, max) || gotTotal != total {
		t.Errorf("%s: returned p50 %.0f max %.0f total %d, want %.0f %.0f %d", what, got.P50, got.Max, gotTotal, p50, max, total)
	}
}

func TestRecordReturned(t *testing.T) {
	dir, at, live, sum := returnedRun(t)

	t.Run("summary", func(t *testing.T) {
		read := mustReadSummary(t, dir)
		for _, s := range []*Summary{sum, read} {
			for _, o := range s.Ops {
				switch o.Op {
				case "sql":
					if o.Node == 1 {
						checkReturned(t, "sql n1", o.Returned, o.ReturnedTotal, bigResult, bigResult, 20*bigResult)
					} else {
						checkReturned(t, "sql n2", o.Returned, o.ReturnedTotal, smallResult, smallResult, 20*smallResult)
					}
				case "point-read":
					// 404 successes, 400 of them with a figure.
					checkReturned(t, "point-read", o.Returned, o.ReturnedTotal, pointResult, pointResult, 400*pointResult)
					if o.Count != 404 {
						t.Errorf("point-read: %d successes, want 404", o.Count)
					}
				case "noop":
					if o.Returned != nil || o.ReturnedTotal != 0 {
						t.Errorf("noop: returned %+v, total %d; nothing was recorded", o.Returned, o.ReturnedTotal)
					}
				}
			}
			for _, o := range s.Workloads {
				if o.Op == "sql" {
					// 20 of 1061 B and 20 of 100103 B: the 20th of 40 is the median.
					checkReturned(t, "sql merged", o.Returned, o.ReturnedTotal, smallResult, bigResult, 20*bigResult+20*smallResult)
				}
			}
		}
		// The file gives back what the recorder summed, to the byte.
		for i, o := range sum.Ops {
			r := read.Ops[i]
			if o.ReturnedTotal != r.ReturnedTotal || !reflect.DeepEqual(o.Returned, r.Returned) {
				t.Errorf("%s n%d: summary.json has returned %+v total %d, the recorder %+v total %d", o.Op, o.Node, r.Returned, r.ReturnedTotal, o.Returned, o.ReturnedTotal)
			}
		}
	})

	t.Run("live-summary-counts-the-open-interval", func(t *testing.T) {
		// n1's figures are all from closed intervals, n2's half from the open one.
		for _, o := range live.Ops {
			switch {
			case o.Op == "sql" && o.Node == 1:
				checkReturned(t, "live sql n1", o.Returned, o.ReturnedTotal, bigResult, bigResult, 20*bigResult)
			case o.Op == "sql" && o.Node == 2:
				checkReturned(t, "live sql n2", o.Returned, o.ReturnedTotal, smallResult, smallResult, 20*smallResult)
			}
		}
	})

	t.Run("negative-is-zero", func(t *testing.T) {
		r, err := NewRecorder(Options{Start: t0})
		if err != nil {
			t.Fatal(err)
		}
		h := r.Handle(Key{Workload: "w", Op: "o", Node: 1})
		h.Record(t0, t0, t0.Add(ms(1)), nil)
		h.RecordReturned(-5)
		h.RecordReturned(300)
		s, _ := r.Close(t0.Add(time.Second))
		checkReturned(t, "-5 and 300", s.Ops[0].Returned, s.Ops[0].ReturnedTotal, 0, 300, 300)
	})

	t.Run("interval-files", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, "analytics.hlog"))
		if err != nil {
			t.Fatal(err)
		}
		var ret []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Tag=ret/") {
				ret = append(ret, l[:strings.Index(l, ",")])
			}
		}
		want := []string{"Tag=ret/sql/n1", "Tag=ret/sql/n1", "Tag=ret/sql/n2", "Tag=ret/sql/n2"}
		if !reflect.DeepEqual(ret, want) {
			t.Errorf("ret lines %v, want %v", ret, want)
		}
		lines, err := ReadIntervals(dir)
		if err != nil {
			t.Fatal(err)
		}
		var sql1 []int64
		for _, l := range lines {
			switch {
			case l.Op == "sql" && l.Node == 1:
				sql1 = append(sql1, l.ReturnedTotal)
			case l.Op == "noop" && l.ReturnedTotal != 0:
				t.Errorf("noop line with %d bytes returned", l.ReturnedTotal)
			}
		}
		if !reflect.DeepEqual(sql1, []int64{10 * bigResult, 10 * bigResult}) {
			t.Errorf("sql n1 intervals return %v bytes, want 2 x %d", sql1, 10*bigResult)
		}
	})

	t.Run("window-stats", func(t *testing.T) {
		ws, err := WindowStats(dir, []Window{{Name: "first", Start: at[0], End: at[2]}, {Name: "second", Start: at[2], End: at[4]}, {Name: "one-second", Start: at[1], End: at[2]}, {Name: "all", Start: at[0], End: at[4]}})
		if err != nil {
			t.Fatal(err)
		}
		get := func(window, workload, op string, node int) WindowStat {
			t.Helper()
			for _, w := range ws {
				if w.Window == window && w.Workload == workload && w.Op == op && w.Node == node {
					return w
				}
			}
			t.Fatalf("no window stat %s %s %s n%d", window, workload, op, node)
			return WindowStat{}
		}
		w := get("first", "analytics", "sql", 1)
		checkReturned(t, "first, sql n1", w.Returned, w.ReturnedTotal, bigResult, bigResult, 20*bigResult)
		w = get("one-second", "analytics", "sql", 1)
		checkReturned(t, "one second, sql n1", w.Returned, w.ReturnedTotal, bigResult, bigResult, 10*bigResult)
		if w := get("first", "analytics", "sql", 2); w.Returned != nil || w.ReturnedTotal != 0 {
			t.Errorf("sql n2 in the first window: returned %+v total %d, want none", w.Returned, w.ReturnedTotal)
		}
		w = get("second", "analytics", "", 0)
		checkReturned(t, "second, analytics", w.Returned, w.ReturnedTotal, smallResult, smallResult, 20*smallResult)
		w = get("second", "oltp", "point-read", 0)
		checkReturned(t, "second, point-read", w.Returned, w.ReturnedTotal, pointResult, pointResult, 200*pointResult)
		w = get("all", "analytics", "sql", 0) // both nodes merged
		checkReturned(t, "all, sql", w.Returned, w.ReturnedTotal, smallResult, bigResult, 20*bigResult+20*smallResult)
		if w := get("second", "noop", "", 0); w.Returned != nil || w.ReturnedTotal != 0 {
			t.Errorf("noop: returned %+v total %d, want none", w.Returned, w.ReturnedTotal)
		}
	})

	t.Run("json-names", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Ops []map[string]json.RawMessage `json:"ops"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		for _, o := range raw.Ops {
			op := string(o["op"])
			_, hasRet := o["returned"]
			_, hasTotal := o["returned_total_bytes"]
			if want := op != `"noop"`; hasRet != want || hasTotal != want {
				t.Errorf("%s: returned in summary.json %v, returned_total_bytes %v; want both %v", op, hasRet, hasTotal, want)
			}
			if !hasRet {
				continue
			}
			var p map[string]float64
			if err := json.Unmarshal(o["returned"], &p); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"p50_bytes", "p90_bytes", "p99_bytes", "p999_bytes", "max_bytes", "mean_bytes"} {
				if _, ok := p[k]; !ok {
					t.Errorf("%s: returned has no %q: %v", op, k, p)
				}
			}
		}
	})
}

// BenchmarkRecordReturned: one successful Record and its bytes returned, as the
// runner records every op on a connection (compare BenchmarkRecord).
func BenchmarkRecordReturned(b *testing.B) {
	r, err := NewRecorder(Options{Start: t0})
	if err != nil {
		b.Fatal(err)
	}
	h := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	t0 := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		intended := t0.Add(time.Duration(i) * time.Microsecond)
		started := intended.Add(time.Duration(i%50) * time.Microsecond)
		h.Record(intended, started, started.Add(time.Duration(200+i%5000)*time.Microsecond), nil)
		h.RecordReturned(int64(400 + i%200))
	}
}
