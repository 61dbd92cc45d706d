package results

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memoryRun records six one-second intervals: in intervals 0-2, 100 dashboard
// queries on n1 whose peak memory is 1, 2, ..., 100 MB (a third of them per
// interval), and point reads (no memory) on n1; in intervals 3-5, 100 dashboard
// queries on n2 of 200 MB each, and one of 10 bytes (counted as the histogram's
// floor, 1 kB). A memory figure given after Close is dropped.
func memoryRun(t *testing.T) (dir string, ticks []time.Time, sum *Summary) {
	t.Helper()
	dir = t.TempDir()
	start := t0.Add(250 * time.Millisecond)
	r, err := NewRecorder(Options{Dir: dir, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	d1 := r.Handle(Key{Workload: "analytics", Op: "dashboard", Node: 1})
	d2 := r.Handle(Key{Workload: "analytics", Op: "dashboard", Node: 2})
	pr := r.Handle(Key{Workload: "analytics", Op: "point-read", Node: 1})
	ticks = []time.Time{start}
	v := 0
	for s := 0; s < 6; s++ {
		sec := start.Add(time.Duration(s) * time.Second)
		n := 34 // 34 + 33 + 33 = 100
		if s > 0 {
			n = 33
		}
		for i := 0; i < n && s < 3; i++ {
			at := sec.Add(time.Duration(i) * 10 * time.Millisecond)
			v++
			d1.Record(at, at, at.Add(ms(5)), nil)
			d1.RecordMemory(int64(v) * 1_000_000)
			pr.Record(at, at, at.Add(ms(1)), nil)
		}
		if s >= 3 {
			for i := 0; i < 34 && (s-3)*34+i < 100; i++ {
				at := sec.Add(time.Duration(i) * 10 * time.Millisecond)
				d2.Record(at, at, at.Add(ms(5)), nil)
				d2.RecordMemory(200_000_000)
			}
		}
		if s == 5 {
			d2.Record(sec, sec, sec.Add(ms(5)), nil)
			d2.RecordMemory(10)
		}
		tick := start.Add(time.Duration(s+1) * time.Second)
		if _, err := r.Tick(tick); err != nil {
			t.Fatal(err)
		}
		ticks = append(ticks, tick)
	}
	sum, err = r.Close(ticks[6])
	if err != nil {
		t.Fatal(err)
	}
	d1.RecordMemory(5_000_000_000) // after Close: dropped
	return dir, ticks, sum
}

// near: within HDR's precision (3 significant digits: a value is reported as the
// highest of its bucket, at most 1/1024 above it).
func nearBytes(got, want float64) bool { return math.Abs(got-want) <= want/1000+1 }

func checkMemory(t *testing.T, what string, got *BytePercentiles, p50, p99, max float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no memory figures, want p50 %.0f p99 %.0f max %.0f bytes", what, p50, p99, max)
		return
	}
	if !nearBytes(got.P50, p50) || !nearBytes(got.P99, p99) || !nearBytes(got.Max, max) {
		t.Errorf("%s: memory p50 %.0f p99 %.0f max %.0f bytes, want %.0f %.0f %.0f", what, got.P50, got.P99, got.Max, p50, p99, max)
	}
}

func TestRecordMemory(t *testing.T) {
	dir, at, sum := memoryRun(t)

	t.Run("summary", func(t *testing.T) {
		for _, s := range []*Summary{sum, mustReadSummary(t, dir)} {
			for _, o := range s.Ops {
				switch o.Op {
				case "point-read":
					if o.Memory != nil {
						t.Errorf("point-read n%d has memory %+v: nothing was recorded", o.Node, o.Memory)
					}
				case "dashboard":
					if o.Node == 1 {
						checkMemory(t, "dashboard n1", o.Memory, 50e6, 99e6, 100e6)
					} else {
						// 100 of 200 MB and one of 10 bytes, kept as 1 kB.
						checkMemory(t, "dashboard n2", o.Memory, 200e6, 200e6, 200e6)
					}
				}
			}
			for _, o := range s.Workloads {
				if o.Op == "dashboard" {
					// 1 kB, 1..100 MB, 100 x 200 MB: the 101st of 201 is the median.
					checkMemory(t, "dashboard merged", o.Memory, 100e6, 200e6, 200e6)
					if o.Memory != nil && !nearBytes(o.Memory.Mean, (5050e6+20000e6+1000)/201) {
						t.Errorf("merged mean %.0f, want (5050 + 20000) MB / 201 = 124.6 MB", o.Memory.Mean)
					}
				}
			}
		}
	})

	t.Run("interval-log", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, "analytics.hlog"))
		if err != nil {
			t.Fatal(err)
		}
		var mem []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Tag=mem/") {
				mem = append(mem, l)
			}
		}
		if len(mem) != 6 {
			t.Fatalf("%d mem lines, want 3 for n1 and 3 for n2:\n%s", len(mem), strings.Join(mem, "\n"))
		}
		// The max column is the histogram's max / 1e6: megabytes for bytes.
		f := strings.Split(mem[2], ",")
		if mb, err := strconv.ParseFloat(f[3], 64); f[0] != "Tag=mem/dashboard/n1" || err != nil || !nearBytes(mb*1e6, 100e6) {
			t.Errorf("third mem line %q, want Tag=mem/dashboard/n1 with max 100 (MB)", mem[2][:min(len(mem[2]), 60)])
		}
	})

	t.Run("window-stats", func(t *testing.T) {
		ws, err := WindowStats(dir, []Window{{Name: "first", Start: at[0], End: at[3]}, {Name: "second", Start: at[3], End: at[6]}, {Name: "all", Start: at[0], End: at[6]}, {Name: "two-seconds", Start: at[1], End: at[3]}})
		if err != nil {
			t.Fatal(err)
		}
		get := func(window, op string, node int) WindowStat {
			t.Helper()
			for _, w := range ws {
				if w.Window == window && w.Workload == "analytics" && w.Op == op && w.Node == node {
					return w
				}
			}
			t.Fatalf("no window stat %s %s n%d", window, op, node)
			return WindowStat{}
		}
		checkMemory(t, "first, n1", get("first", "dashboard", 1).Memory, 50e6, 99e6, 100e6)
		checkMemory(t, "two-seconds, n1", get("two-seconds", "dashboard", 1).Memory, 67e6, 99e6, 100e6) // 35..100 MB
		if m := get("first", "dashboard", 2).Memory; m != nil {
			t.Errorf("n2 in the first window: memory %+v, want none", m)
		}
		second := get("second", "dashboard", 2)
		checkMemory(t, "second, n2", second.Memory, 200e6, 200e6, 200e6)
		checkMemory(t, "all, merged", get("all", "dashboard", 0).Memory, 100e6, 200e6, 200e6)
		checkMemory(t, "first, every op", get("first", "", 0).Memory, 50e6, 99e6, 100e6)
		if m := get("all", "point-read", 1).Memory; m != nil {
			t.Errorf("point-read: memory %+v, want none", m)
		}
		if second.Count != 101 {
			t.Errorf("second window n2: %d queries, want 101", second.Count)
		}
		// 100 x 200 MB and the 10-byte query, kept at the histogram's floor (1 kB).
		if m := second.Memory; m != nil && !nearBytes(m.Mean, (100*200e6+1000)/101) {
			t.Errorf("second window n2: mean %.0f, want %.0f", m.Mean, (100*200e6+1000)/101)
		}
	})

	t.Run("json-names", func(t *testing.T) {
		// Bytes are named as bytes in summary.json: no _ms names under memory.
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Ops []struct {
				Op     string                     `json:"op"`
				Memory map[string]json.RawMessage `json:"memory"`
			} `json:"ops"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, o := range raw.Ops {
			if o.Memory == nil {
				continue
			}
			seen++
			for _, k := range []string{"p50_bytes", "p90_bytes", "p99_bytes", "p999_bytes", "max_bytes", "mean_bytes"} {
				if _, ok := o.Memory[k]; !ok {
					t.Errorf("%s: memory has no %q: %v", o.Op, k, o.Memory)
				}
			}
			for k := range o.Memory {
				if strings.HasSuffix(k, "_ms") {
					t.Errorf("%s: memory has %q, a name in milliseconds", o.Op, k)
				}
			}
		}
		if seen == 0 {
			t.Errorf("summary.json: no op with memory: %s", b)
		}
	})

	t.Run("floor-and-ceiling", func(t *testing.T) {
		h := newHist()
		recordBytes(h, 10)
		recordBytes(h, -5)
		recordBytes(h, 1<<62)
		// The lowest bucket is 1000..1023: the floor's figure is 1 kB within 2.4%.
		if med := h.ValueAtQuantile(50); h.TotalCount() != 3 || med < 1000 || med > 1024 || !nearBytes(float64(h.Max()), histHigh) {
			t.Errorf("10 B, -5 B and 4 EB: count %d, median %d, max %d; want 3, 1 kB, %d", h.TotalCount(), med, h.Max(), int64(histHigh))
		}
	})
}

func mustReadSummary(t *testing.T, dir string) *Summary {
	t.Helper()
	s, err := ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
