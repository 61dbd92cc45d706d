package results

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// windowRun records a run of ten intervals through the fake clock, starting
// off the whole second (the interval logs' BaseTime is the whole second
// before), the k-th tick at k s + k ms (a clock that drifts; with these
// figures the library's reader gives three of the interval ends one
// millisecond short): in each of intervals 0-4, 10 successes of 10 ms on oltp/point-read/n1 and on
// oltp/insert/n2, and 4 drops on the insert; in each of intervals 5-9, 10
// successes of 100 ms on both, the point-reads late, and on point-read/n1 3
// timeouts and 2 deadlocks over the five seconds, and one canceled; the
// workload "dash boards" (a name the file name cannot keep) only in seconds
// 5-9, 2 queries of 900 ms each interval on n1.
func windowRun(t *testing.T) (dir string, start time.Time) {
	dir, ticks := windowRunTicks(t)
	return dir, ticks[0]
}

// windowTick is the k-th tick of windowRun.
func windowTick(start time.Time, k int) time.Time {
	return start.Add(time.Duration(k) * (time.Second + time.Millisecond))
}

func windowRunTicks(t *testing.T) (dir string, ticks []time.Time) {
	t.Helper()
	dir = t.TempDir()
	start := t0.Add(250 * time.Millisecond)
	r, err := NewRecorder(Options{Dir: dir, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	read := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	ins := r.Handle(Key{Workload: "oltp", Op: "insert", Node: 2})
	dash := r.Handle(Key{Workload: "dash boards", Op: "dashboard", Node: 1})
	for s := 0; s < 10; s++ {
		sec := windowTick(start, s)
		lat := ms(10)
		if s >= 5 {
			lat = ms(100)
		}
		for i := 0; i < 10; i++ {
			at := sec.Add(time.Duration(i) * 50 * time.Millisecond)
			started := at
			if s >= 5 {
				started = at.Add(ms(20)) // late
			}
			read.Record(at, started, at.Add(lat), nil)
			ins.Record(at, at, at.Add(lat), nil)
		}
		if s < 5 {
			for i := 0; i < 4; i++ {
				ins.Dropped(sec)
			}
		} else {
			for i := 0; i < 2; i++ {
				at := sec.Add(time.Duration(i) * 10 * time.Millisecond)
				dash.Record(at, at, at.Add(time.Second-ms(100)), nil)
			}
		}
		switch s {
		case 5, 6, 7:
			read.Record(sec, sec, sec.Add(ms(500)), context.DeadlineExceeded)
		case 8:
			for i := 0; i < 2; i++ {
				read.Record(sec, sec, sec.Add(ms(5)), &mysql.MySQLError{Number: 1213, Message: "Deadlock found"})
			}
		case 9:
			read.Record(sec, sec, sec.Add(ms(5)), context.Canceled)
		}
		if _, err := r.Tick(windowTick(start, s+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Close(windowTick(start, 10)); err != nil {
		t.Fatal(err)
	}
	for k := 0; k <= 10; k++ {
		ticks = append(ticks, windowTick(start, k))
	}
	return dir, ticks
}

func TestWindowStats(t *testing.T) {
	dir, at := windowRunTicks(t)
	windows := []Window{
		{Name: "a", Start: at[0], End: at[5]},
		{Name: "b", Start: at[5], End: at[10]},
		{Name: "overlap", Start: at[4], End: at[6]}, // the intervals ending at ticks 5 and 6
	}
	got, err := WindowStats(dir, windows)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		count, errors, late, dropped int64
		p50, p99, max                float64
	}
	cases := []struct {
		window, workload, op string
		node                 int
		want                 want
	}{
		{"a", "oltp", "point-read", 1, want{50, 0, 0, 0, 10, 10, 10}},
		{"a", "oltp", "insert", 2, want{50, 0, 0, 20, 10, 10, 10}},
		{"a", "oltp", "insert", 0, want{50, 0, 0, 20, 10, 10, 10}},
		{"a", "oltp", "", 1, want{50, 0, 0, 0, 10, 10, 10}},
		{"a", "oltp", "", 2, want{50, 0, 0, 20, 10, 10, 10}},
		{"a", "oltp", "", 0, want{100, 0, 0, 20, 10, 10, 10}},
		{"a", "dash boards", "", 0, want{}}, // known to the run, idle in this window
		{"b", "oltp", "point-read", 1, want{50, 5, 50, 0, 100, 100, 100}},
		{"b", "oltp", "insert", 2, want{50, 0, 0, 0, 100, 100, 100}},
		{"b", "oltp", "", 0, want{100, 5, 50, 0, 100, 100, 100}},
		{"b", "dash boards", "dashboard", 1, want{10, 0, 0, 0, 900, 900, 900}},
		{"b", "dash boards", "", 0, want{10, 0, 0, 0, 900, 900, 900}},
		{"overlap", "oltp", "point-read", 1, want{20, 1, 10, 0, 10, 100, 100}},
		{"overlap", "oltp", "", 0, want{40, 1, 10, 4, 10, 100, 100}},
	}
	for _, c := range cases {
		var s *WindowStat
		for i := range got {
			g := &got[i]
			if g.Window == c.window && g.Workload == c.workload && g.Op == c.op && g.Node == c.node {
				if s != nil {
					t.Fatalf("%s %s/%s/n%d twice", c.window, c.workload, c.op, c.node)
				}
				s = g
			}
		}
		name := fmt.Sprintf("%s %s/%s/n%d", c.window, c.workload, c.op, c.node)
		if s == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		w := c.want
		if s.Count != w.count || s.Errors != w.errors || s.Late != w.late || s.Dropped != w.dropped {
			t.Errorf("%s: count %d errors %d late %d dropped %d, want %d %d %d %d", name, s.Count, s.Errors, s.Late, s.Dropped, w.count, w.errors, w.late, w.dropped)
		}
		if !near(s.Latency.P50, w.p50) || !near(s.Latency.P99, w.p99) || !near(s.Latency.Max, w.max) {
			t.Errorf("%s: p50 %g p99 %g max %g, want %g %g %g", name, s.Latency.P50, s.Latency.P99, s.Latency.Max, w.p50, w.p99, w.max)
		}
		if wantSecs := map[string]float64{"a": 5.005, "b": 5.005, "overlap": 2.002}[c.window]; !near(s.Seconds, wantSecs) {
			t.Errorf("%s: %g seconds, want %g", name, s.Seconds, wantSecs)
		}
	}

	// Errors by class, canceled apart; rate over the window; service time.
	for _, s := range got {
		if s.Window == "b" && s.Workload == "oltp" && s.Op == "" && s.Node == 1 {
			if s.ByClass[ClassTimeout] != 3 || s.ByClass[ClassConflict] != 2 || s.Canceled != 1 || len(s.ByClass) != 2 {
				t.Errorf("b oltp/n1: by class %v, canceled %d", s.ByClass, s.Canceled)
			}
			if !near(s.Rate, 50/5.005) {
				t.Errorf("b oltp/n1: rate %g, want %g", s.Rate, 50/5.005)
			}
			if !near(s.Service.P50, 80) {
				t.Errorf("b oltp/n1: service p50 %g, want 80 (100 ms from the intended start, started 20 ms late)", s.Service.P50)
			}
		}
	}

	// Sorted by window (as given), workload, op, node; no duplicates.
	order := map[string]int{"a": 0, "b": 1, "overlap": 2}
	for i := 1; i < len(got); i++ {
		p, q := got[i-1], got[i]
		if order[p.Window] > order[q.Window] || order[p.Window] == order[q.Window] &&
			(p.Workload > q.Workload || p.Workload == q.Workload && (p.Op > q.Op || p.Op == q.Op && p.Node >= q.Node)) {
			t.Errorf("not sorted at %d: %+v then %+v", i, p, q)
		}
	}
	// Every window has every level: for oltp 2 keys, 2 ops merged over
	// nodes, 2 streams and the workload; for dash boards 1 key, its op
	// merged, 1 stream and the workload.
	if len(got) != 3*11 {
		t.Errorf("%d stats, want %d", len(got), 3*11)
	}
}

// A window from one millisecond before a tick to one millisecond before the
// next holds exactly the interval that ends at the first: interval ends are
// exact to the millisecond, though the library's reader truncates some.
func TestWindowStatsTickExact(t *testing.T) {
	dir, at := windowRunTicks(t)
	var windows []Window
	for k := 1; k < 10; k++ {
		windows = append(windows, Window{Name: fmt.Sprint(k), Start: at[k].Add(-time.Millisecond), End: at[k+1].Add(-time.Millisecond)})
	}
	got, err := WindowStats(dir, windows)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range got {
		if s.Workload != "oltp" || s.Op != "point-read" || s.Node != 1 {
			continue
		}
		n++
		want := 10.0 // the interval ending at tick k holds second k-1
		if s.Window >= "6" {
			want = 100
		}
		if s.Count != 10 || !near(s.Latency.Max, want) || !near(s.Latency.P50, want) {
			t.Errorf("window %s: count %d, p50 %g max %g, want 10 at %g ms", s.Window, s.Count, s.Latency.P50, s.Latency.Max, want)
		}
	}
	if n != 9 {
		t.Errorf("%d windows, want 9", n)
	}
}

func TestWindowStatsErrors(t *testing.T) {
	dir, start := windowRun(t)
	if _, err := WindowStats(dir, []Window{{Name: "back", Start: start.Add(time.Second), End: start}}); err == nil || !strings.Contains(err.Error(), "back") {
		t.Errorf("a window that ends before it starts: %v", err)
	}
	if _, err := WindowStats(t.TempDir(), []Window{{Name: "x", Start: start, End: start.Add(time.Second)}}); err == nil {
		t.Error("no intervals.jsonl: no error")
	}
	got, err := WindowStats(dir, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("no windows: %v %v", got, err)
	}
}

// A run that died mid-write leaves a last line cut short: it is ignored; a
// bad line before the last is an error.
func TestReadIntervals(t *testing.T) {
	dir := t.TempDir()
	good := `{"t":1000,"workload":"oltp","op":"insert","node":1,"count":5,"errors":{"timeout":2},"late":1,"dropped":0,"p50_ms":1,"p99_ms":2,"max_ms":3}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "intervals.jsonl"), []byte(good+good+`{"t":20`), 0o644); err != nil {
		t.Fatal(err)
	}
	ls, err := ReadIntervals(dir)
	if err != nil || len(ls) != 2 {
		t.Fatalf("%d lines, %v", len(ls), err)
	}
	if l := ls[0]; l.Time() != time.UnixMilli(1000) || l.Count != 5 || l.ErrorsTotal() != 2 || l.Late != 1 || l.P99Ms != 2 {
		t.Errorf("line %+v", l)
	}
	if err := os.WriteFile(filepath.Join(dir, "intervals.jsonl"), []byte(good+"{bad\n"+good), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIntervals(dir); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line 2: %v", err)
	}
}

func TestParseTag(t *testing.T) {
	for _, c := range []struct {
		tag, kind, op string
		node          int
		ok            bool
	}{
		{"lat/point-read/n2", "lat", "point-read", 2, true},
		{"svc/a/b/n0", "svc", "a/b", 0, true},
		{"err/x/n", "", "", 0, false},
		{"lat", "", "", 0, false},
		{"lat/x/2", "", "", 0, false},
	} {
		kind, op, node, ok := parseTag(c.tag)
		if kind != c.kind || op != c.op || node != c.node || ok != c.ok {
			t.Errorf("%q: %q %q %d %v", c.tag, kind, op, node, ok)
		}
	}
}
