package results

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/go-sql-driver/mysql"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// near reports whether got is within HDR precision (3 digits: 0.1%) of want.
func near(got, want float64) bool {
	return math.Abs(got-want) <= want*0.001+1e-9
}

func newTestRecorder(t *testing.T, dir string) *Recorder {
	t.Helper()
	r, err := NewRecorder(Options{Dir: dir, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fill records, through the fake clock, the known operations the tests below
// check: on A (oltp/point-read/n1) 100 successes of latency 1..100 ms, the
// last 3 late (started half-way); on B (oltp/insert/n2) 10 successes of
// latency 51 ms, all late, with a service time of 1 ms; errors of every kind
// on A; 4 drops on B.
func fill(r *Recorder) {
	a := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	b := r.Handle(Key{Workload: "oltp", Op: "insert", Node: 2})
	for i := 1; i <= 100; i++ {
		intended := t0.Add(time.Duration(i) * 5 * time.Millisecond)
		lat := ms(float64(i))
		var started time.Time
		switch {
		case i > 97:
			started = intended.Add(lat / 2) // late by 49..50 ms
		case i%2 == 1:
			started = intended.Add(ms(1)) // 1 ms behind: not late
		default:
			started = intended
		}
		a.Record(intended, started, intended.Add(lat), nil)
	}
	for i := 0; i < 10; i++ {
		intended := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		started := intended.Add(ms(50))
		b.Record(intended, started, started.Add(ms(1)), nil)
	}
	at := t0.Add(600 * time.Millisecond)
	errs := []error{
		&mysql.MySQLError{Number: 1213, Message: "Deadlock found"},
		fmt.Errorf("commit: %w", &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}),
		context.DeadlineExceeded,
		&mysql.MySQLError{Number: 1146, Message: "Table 'db.t' doesn't exist"},
		&mysql.MySQLError{Number: 1146, Message: "second message"},
		&mysql.MySQLError{Number: 1146, Message: "third message"},
		errors.New("boom"),
	}
	for _, err := range errs {
		a.Record(at, at, at.Add(ms(200)), err) // error latency 200 ms
	}
	// Canceled: late, but counted apart and nowhere else.
	a.Record(at, at.Add(time.Second), at.Add(2*time.Second), context.Canceled)
	for i := 0; i < 4; i++ {
		b.Dropped(at)
	}
}

func TestRecordTickClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run") // created by NewRecorder
	r := newTestRecorder(t, dir)
	fill(r)

	// The live summary sees the open interval.
	live := r.Summary(t0.Add(time.Second))
	if live.Ops[1].Count != 100 || live.Ops[0].Count != 10 {
		t.Fatalf("live summary counts = %d, %d, want 10, 100", live.Ops[0].Count, live.Ops[1].Count)
	}

	iv, err := r.Tick(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !iv.Start.Equal(t0) || !iv.End.Equal(t0.Add(time.Second)) {
		t.Fatalf("interval %v..%v, want %v..+1s", iv.Start, iv.End, t0)
	}
	if iv.Ops != 110 || iv.Errors != 7 || iv.Late != 3+10 || iv.Dropped != 4 {
		t.Fatalf("interval = %+v, want ops 110 errors 7 late 13 dropped 4", iv)
	}
	// p99 of {1..100 ms} + 10 x 51 ms: rank ceil(0.99*110) = 109 -> 99 ms.
	if !near(iv.P99.Seconds()*1000, 99) {
		t.Fatalf("interval p99 = %v, want 99ms", iv.P99)
	}
	ws := iv.ByWorkload["oltp"]
	if len(iv.ByWorkload) != 1 || ws.Ops != 110 || ws.Errors != 7 || ws.Late != 13 || ws.Dropped != 4 || ws.P99 != iv.P99 {
		t.Fatalf("by workload = %+v", iv.ByWorkload)
	}

	// An empty interval.
	iv, err = r.Tick(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if iv.Ops != 0 || iv.Errors != 0 || iv.Late != 0 || iv.Dropped != 0 || iv.P99 != 0 || !iv.Start.Equal(t0.Add(time.Second)) {
		t.Fatalf("empty interval = %+v", iv)
	}

	sum, err := r.Close(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Version != 2 || !sum.Start.Equal(t0) || !sum.End.Equal(t0.Add(2*time.Second)) || sum.Duration != 2 {
		t.Fatalf("summary header = %d %v %v %v", sum.Version, sum.Start, sum.End, sum.Duration)
	}
	if len(sum.Ops) != 2 {
		t.Fatalf("ops = %+v", sum.Ops)
	}
	// Sorted by workload, op, node: insert before point-read.
	b, a := sum.Ops[0], sum.Ops[1]
	if a.Op != "point-read" || a.Node != 1 || b.Op != "insert" || b.Node != 2 {
		t.Fatalf("ops order: %s/%d, %s/%d", sum.Ops[0].Op, sum.Ops[0].Node, sum.Ops[1].Op, sum.Ops[1].Node)
	}
	if a.Count != 100 || a.Rate != 50 || a.Late != 3 || a.Dropped != 0 || a.Canceled != 1 || a.ErrorsTotal != 7 {
		t.Fatalf("A = %+v", a)
	}
	wantErrs := map[Class]int64{ClassTimeout: 1, ClassConnection: 0, ClassNotReady: 0, ClassConflict: 2, ClassLockWait: 0, ClassReadOnly: 0, ClassResource: 0, ClassOther: 4}
	if fmt.Sprint(a.Errors) != fmt.Sprint(wantErrs) {
		t.Fatalf("A errors = %v, want %v", a.Errors, wantErrs)
	}
	wantOther := []OtherError{{0, 1, "boom"}, {1146, 3, "Table 'db.t' doesn't exist"}}
	if fmt.Sprint(a.Other) != fmt.Sprint(wantOther) {
		t.Fatalf("A other = %v, want %v", a.Other, wantOther)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p50", a.Latency.P50, 50}, {"p90", a.Latency.P90, 90}, {"p99", a.Latency.P99, 99},
		{"p999", a.Latency.P999, 100}, {"max", a.Latency.Max, 100}, {"mean", a.Latency.Mean, 50.5},
		{"svc max (latency 96, started at intended)", a.Service.Max, 96},
		{"err p50", a.ErrorLatency.P50, 200}, {"err max", a.ErrorLatency.Max, 200},
		{"B p50", b.Latency.P50, 51}, {"B svc p99", b.Service.P99, 1},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v ms, want %v ms", c.name, c.got, c.want)
		}
	}
	if b.Count != 10 || b.Late != 10 || b.Dropped != 4 || b.ErrorsTotal != 0 || b.ErrorLatency != nil || b.Rate != 5 {
		t.Fatalf("B = %+v", b)
	}
	if len(sum.Workloads) != 2 || sum.Workloads[1].Node != 0 || sum.Workloads[1].Count != 100 || sum.Workloads[1].Latency != a.Latency {
		t.Fatalf("workloads = %+v", sum.Workloads)
	}

	// After Close: Record is a no-op, Close is idempotent, Tick fails.
	r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1}).Record(t0.Add(time.Hour), t0.Add(time.Hour), t0.Add(time.Hour+ms(1)), nil)
	r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1}).Record(t0.Add(time.Hour), t0.Add(time.Hour), t0.Add(time.Hour+ms(1)), mysql.ErrInvalidConn)
	r.Handle(Key{Workload: "new", Op: "x", Node: 1}).Record(t0, t0, t0.Add(ms(1)), nil)
	r.Handle(Key{Workload: "oltp", Op: "insert", Node: 2}).Dropped(t0)
	for _, h := range r.list() {
		if h.cur.active() || h.cur.lat.TotalCount() != 0 {
			t.Fatalf("%+v recorded after Close", h.key)
		}
	}
	if s := r.streams[streamKey{"oltp", 1, Read}]; !s.last.Equal(t0.Add(600*time.Millisecond)) || s.failed != 7 {
		t.Fatalf("stream updated after Close: last success %v, %d failed", s.last, s.failed)
	}
	again, err := r.Close(t0.Add(time.Hour))
	if err != nil || again != sum || again.Ops[1].Count != 100 || again.Ops[0].Dropped != 4 || len(again.Ops) != 2 {
		t.Fatalf("second Close = %p %v, want the same summary %p", again, err, sum)
	}
	if r.Summary(t0.Add(time.Hour)) != sum {
		t.Fatal("Summary after Close is not the final summary")
	}
	if _, err := r.Tick(t0.Add(time.Hour)); err == nil {
		t.Fatal("Tick after Close succeeded")
	}

	// intervals.jsonl: one line per key with activity, in the first interval only.
	f, err := os.Open(filepath.Join(dir, "intervals.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []intervalLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l intervalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("intervals.jsonl: %v: %s", err, sc.Text())
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 {
		t.Fatalf("intervals.jsonl has %d lines, want 2: %+v", len(lines), lines)
	}
	la := lines[1]
	if la.T != t0.Add(time.Second).UnixMilli() || la.Op != "point-read" || la.Count != 100 || la.Late != 3 ||
		la.Errors[ClassConflict] != 2 || la.Errors[ClassOther] != 4 || la.Canceled != 1 || !near(la.P99Ms, 99) || !near(la.MaxMs, 100) || !near(la.P50Ms, 50) {
		t.Fatalf("intervals.jsonl line = %+v", la)
	}
	if _, ok := la.Errors[ClassCanceled]; ok {
		t.Fatal("canceled counted among the errors of intervals.jsonl")
	}
	if lines[0].Dropped != 4 || lines[0].Count != 10 {
		t.Fatalf("intervals.jsonl line = %+v", lines[0])
	}
}

func TestOtherCap(t *testing.T) {
	r := newTestRecorder(t, "")
	h := r.Handle(Key{Workload: "w", Op: "op", Node: 1})
	for n := 3000; n < 3025; n++ {
		h.Record(t0, t0, t0.Add(ms(1)), &mysql.MySQLError{Number: uint16(n), Message: fmt.Sprint("m", n)})
	}
	h.Record(t0, t0, t0.Add(ms(1)), &mysql.MySQLError{Number: 3000, Message: "again"})
	sum, err := r.Close(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	o := sum.Ops[0].Other
	if len(o) != maxOtherNumbers+1 {
		t.Fatalf("%d other entries, want %d: %v", len(o), maxOtherNumbers+1, o)
	}
	if o[0] != (OtherError{0, 5, "more"}) || o[1] != (OtherError{3000, 2, "m3000"}) || o[20].Number != 3019 {
		t.Fatalf("other = %v", o)
	}
	if sum.Ops[0].Errors[ClassOther] != 26 {
		t.Fatalf("other errors = %d, want 26", sum.Ops[0].Errors[ClassOther])
	}
}

func TestClamp(t *testing.T) {
	r := newTestRecorder(t, "")
	h := r.Handle(Key{Workload: "w", Op: "op"})
	h.Record(t0, t0, t0, nil)                   // 0
	h.Record(t0, t0, t0.Add(-time.Second), nil) // negative (clock step)
	h.Record(t0, t0, t0.Add(3*time.Hour), nil)  // beyond 1 h
	h.Record(t0, t0.Add(2*time.Hour), t0.Add(time.Hour), nil)
	sum, err := r.Close(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	o := sum.Ops[0]
	if n := r.Handle(Key{Workload: "w", Op: "op"}).cum.lat.TotalCount(); n != 4 {
		t.Fatalf("latency histogram holds %d samples, want 4: no sample may be dropped", n)
	}
	if o.Count != 4 {
		t.Fatalf("count %d, want 4: no sample may be dropped", o.Count)
	}
	if o.Latency.P50 > 0.002 || !near(o.Latency.Max, 3_600_000) {
		t.Fatalf("latency = %+v, want low values at 1µs and the max at 1h", o.Latency)
	}
	// Below 1 µs: clamped up to 1 µs (the bucket of 1000 ns tops at 1023 ns).
	r2 := newTestRecorder(t, "")
	h2 := r2.Handle(Key{Workload: "w", Op: "op"})
	h2.Record(t0, t0, t0, nil)
	h2.Record(t0, t0, t0.Add(500), nil)
	if got := r2.Summary(t0).Ops[0].Latency; got.P50 != 0.001023 || got.Max != 0.001023 {
		t.Fatalf("sub-µs latencies: %+v, want all at 1µs (0.001023 ms)", got)
	}
}

// TestMerge: per-node histograms merged give the same count, max and
// percentiles as one histogram fed all the values.
func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	one := newHist()
	dst := newHist()
	r := newTestRecorder(t, "")
	for node := 1; node <= 3; node++ {
		h := newHist()
		rh := r.Handle(Key{Workload: "w", Op: "op", Node: node})
		for i := 0; i < 20000; i++ {
			// Log-normal-ish latencies from 50 µs to minutes, per node scale.
			d := time.Duration(math.Exp(rng.NormFloat64()*2+13+float64(node))) + 1
			record(h, d)
			record(one, d)
			rh.Record(t0, t0, t0.Add(d), nil)
		}
		merge(dst, h)
		if node == 2 {
			r.Tick(t0.Add(time.Second)) // part in one interval, part in the next
		}
	}
	check := func(name string, got *hdr.Histogram) {
		t.Helper()
		if got.TotalCount() != one.TotalCount() || got.Max() != one.Max() || got.Min() != one.Min() || got.Mean() != one.Mean() {
			t.Fatalf("%s: count %d max %d min %d mean %v, want %d %d %d %v", name, got.TotalCount(), got.Max(), got.Min(), got.Mean(), one.TotalCount(), one.Max(), one.Min(), one.Mean())
		}
		for _, q := range []float64{0, 1, 25, 50, 90, 99, 99.9, 99.99, 100} {
			if got.ValueAtQuantile(q) != one.ValueAtQuantile(q) {
				t.Fatalf("%s: p%v = %d, want %d", name, q, got.ValueAtQuantile(q), one.ValueAtQuantile(q))
			}
		}
		if !got.Equals(one) {
			t.Fatalf("%s: histograms differ", name)
		}
	}
	check("merge", dst)
	sum, err := r.Close(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sum.Workloads[0].Latency, percentilesOf(one); got != want || sum.Workloads[0].Count != 60000 {
		t.Fatalf("workload latency = %+v (count %d), want %+v", got, sum.Workloads[0].Count, want)
	}
	var n int64
	for _, o := range sum.Ops {
		n += o.Count
	}
	if n != 60000 {
		t.Fatalf("ops sum to %d, want 60000", n)
	}
}

func TestGaps(t *testing.T) {
	r := newTestRecorder(t, "")
	ok := func(node int, ended time.Time) {
		r.Handle(Key{Workload: "oltp", Op: "read", Node: node}).Record(ended.Add(-ms(1)), ended.Add(-ms(1)), ended, nil)
	}
	fail := func(node int, ended time.Time, late bool) {
		intended := ended.Add(-ms(1))
		started := intended
		if late {
			started = intended.Add(ms(100))
		}
		r.Handle(Key{Workload: "oltp", Op: "write", Node: node}).Record(intended, started, ended, &mysql.MySQLError{Number: 1047, Message: "not ready"})
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	// Node 1: successes every 10 ms until 1 s, nothing for 5 s but 3 failures,
	// then successes again from 6.01 s to 7 s.
	for d := time.Duration(0); d <= time.Second; d += 10 * time.Millisecond {
		ok(1, at(d))
	}
	fail(1, at(2*time.Second), true)
	ok(1, at(900*time.Millisecond)) // out of order: does not close the gap
	fail(1, at(3*time.Second), true)
	fail(1, at(4*time.Second), false)
	fail(1, at(500*time.Millisecond), true) // completed before the last success: outside
	// The first success after the pause was due at 5.5 s: late.
	r.Handle(Key{Workload: "oltp", Op: "read", Node: 1}).Record(at(5500*time.Millisecond), at(6005*time.Millisecond), at(6010*time.Millisecond), nil)
	for d := 6020 * time.Millisecond; d <= 7*time.Second; d += 10 * time.Millisecond {
		ok(1, at(d))
	}
	// Node 2: successes every 10 ms throughout, with a failure now and then.
	for d := time.Duration(0); d <= 7*time.Second; d += 10 * time.Millisecond {
		ok(2, at(d))
		if d%time.Second == 0 {
			fail(2, at(d+ms(5)), false)
		}
	}
	// Node 3: failures before the first success count nothing; then a pause
	// of 400 ms with a failure inside (below the threshold: no gap); then it
	// stops 1 s before Close: an ongoing gap.
	for d := time.Duration(0); d < 2*time.Second; d += 100 * time.Millisecond {
		fail(3, at(d), true)
	}
	for d := 2 * time.Second; d <= 6*time.Second; d += 10 * time.Millisecond {
		if d > 3*time.Second && d < 3400*time.Millisecond {
			if d == 3200*time.Millisecond {
				fail(3, at(d), false) // inside a 400 ms pause: no gap
			}
			continue
		}
		ok(3, at(d))
	}
	fail(3, at(6500*time.Millisecond), true)
	// Node 4: failures before the first success, then a 1 s pause without
	// failures: a gap of 1 s with Failed 0.
	for d := time.Duration(0); d < 500*time.Millisecond; d += 100 * time.Millisecond {
		fail(4, at(d), true)
	}
	ok(4, at(time.Second))
	ok(4, at(2*time.Second))
	for d := 2 * time.Second; d <= 7*time.Second; d += 10 * time.Millisecond {
		ok(4, at(d))
	}

	live := r.Summary(at(6200 * time.Millisecond)) // not ongoing yet: 200 ms < 500 ms
	if g := live.Gaps[2].Gaps; len(g) != 0 {
		t.Fatalf("node 3 at 6.2 s: gaps %+v, want none", g)
	}
	sum, err := r.Close(at(7 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Gaps) != 4 {
		t.Fatalf("%d streams, want 4: %+v", len(sum.Gaps), sum.Gaps)
	}
	want4 := Gap{Start: at(time.Second), End: at(2 * time.Second), Duration: 1}
	if g := sum.Gaps[3]; len(g.Gaps) != 1 || !gapEqual(g.Gaps[0], want4) {
		t.Fatalf("node 4 gaps = %+v, want exactly %+v", g, want4)
	}
	s1, s2, s3 := sum.Gaps[0], sum.Gaps[1], sum.Gaps[2]
	if s1.Workload != "oltp" || s1.Node != 1 || s2.Node != 2 || s3.Node != 3 {
		t.Fatalf("streams: %+v", sum.Gaps)
	}
	want1 := Gap{Start: at(time.Second), End: at(6010 * time.Millisecond), Duration: 5.01, Failed: 3, Late: 3}
	if len(s1.Gaps) != 1 || !gapEqual(s1.Gaps[0], want1) || math.Abs(s1.Longest-5.01) > 1e-9 || s1.MoreGaps != 0 {
		t.Fatalf("node 1 gaps = %+v, want exactly %+v", s1, want1)
	}
	if len(s2.Gaps) != 0 || s2.Longest != 0 || s2.Gaps == nil {
		t.Fatalf("node 2 gaps = %+v, want none (an empty list)", s2)
	}
	want3 := Gap{Start: at(6 * time.Second), End: at(7 * time.Second), Duration: 1, Failed: 1, Late: 1, Ongoing: true}
	if len(s3.Gaps) != 1 || !gapEqual(s3.Gaps[0], want3) || s3.Longest != 1 {
		t.Fatalf("node 3 gaps = %+v, want exactly %+v", s3, want3)
	}
}

// Writes that stall behind reads that go on: the write streams and the
// cluster-wide write stream show the stall, the read streams do not; the
// cluster-wide gap is the window in which no node had a write succeed.
func TestAccessGaps(t *testing.T) {
	r := newTestRecorder(t, "")
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	rec := func(op string, a Access, node int, ended time.Time, err error) {
		r.Handle(Key{Workload: "oltp", Op: op, Node: node, Access: a}).Record(ended.Add(-ms(1)), ended.Add(-ms(1)), ended, err)
	}
	notReady := &mysql.MySQLError{Number: 1047, Message: "not ready"}
	for d := time.Duration(0); d <= 7*time.Second; d += 10 * time.Millisecond {
		rec("point-read", Read, 1, at(d), nil)
		rec("point-read", Read, 2, at(d), nil)
	}
	for d := time.Duration(0); d <= 7*time.Second; d += 50 * time.Millisecond {
		// Node 1 writes nothing from 2 s to 5 s (they fail), node 2 from 2.5 s to 4.5 s.
		var err1, err2 error
		if d > 2*time.Second && d < 5*time.Second {
			err1 = notReady
		}
		if d > 2500*time.Millisecond && d < 4500*time.Millisecond {
			err2 = notReady
		}
		rec("insert", Write, 1, at(d), err1)
		rec("update-status", Write, 2, at(d), err2)
	}
	sum, err := r.Close(at(7 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Gaps) != 4 {
		t.Fatalf("%d streams, want 4 (2 nodes x read, write): %+v", len(sum.Gaps), sum.Gaps)
	}
	for _, sg := range sum.Gaps {
		var want []Gap
		switch {
		case sg.Access == Write && sg.Node == 1:
			want = []Gap{{Start: at(2 * time.Second), End: at(5 * time.Second), Duration: 3, Failed: 59}}
		case sg.Access == Write && sg.Node == 2:
			want = []Gap{{Start: at(2500 * time.Millisecond), End: at(4500 * time.Millisecond), Duration: 2, Failed: 39}}
		case sg.Access != Read:
			t.Fatalf("stream %+v: access %q", sg, sg.Access)
		}
		if len(sg.Gaps) != len(want) || (len(want) == 1 && !gapEqual(sg.Gaps[0], want[0])) {
			t.Errorf("%s n%d: gaps %+v, want %+v", sg.Access, sg.Node, sg.Gaps, want)
		}
	}
	cw, ok := sum.ClusterGaps(Write)
	want := Gap{Start: at(2500 * time.Millisecond), End: at(4500 * time.Millisecond), Duration: 2, Failed: 40 + 39} // node 1 failed at 2.55-4.5 s, node 2 at 2.55-4.45 s
	if !ok || len(cw.Gaps) != 1 || !gapEqual(cw.Gaps[0], want) || cw.Longest != 2 || cw.Node != 0 || cw.Workload != "" {
		t.Errorf("cluster-wide writes: %+v, want one gap %+v", cw, want)
	}
	if cr, ok := sum.ClusterGaps(Read); !ok || len(cr.Gaps) != 0 {
		t.Errorf("cluster-wide reads: %+v, want no gap", cr)
	}
	for _, o := range sum.Ops {
		if want := map[string]Access{"point-read": Read, "insert": Write, "update-status": Write}[o.Op]; o.Access != want {
			t.Errorf("op %s n%d: access %q, want %q", o.Op, o.Node, o.Access, want)
		}
	}
}

func gapEqual(a, b Gap) bool {
	return a.Start.Equal(b.Start) && a.End.Equal(b.End) && math.Abs(a.Duration-b.Duration) < 1e-9 &&
		a.Failed == b.Failed && a.Late == b.Late && a.Ongoing == b.Ongoing
}

func TestGapCap(t *testing.T) {
	r := newTestRecorder(t, "")
	h := r.Handle(Key{Workload: "w", Op: "op", Node: 1})
	end := t0
	for i := 0; i <= maxGapsPerStream+5; i++ {
		if i == 1003 {
			end = end.Add(time.Minute) // the longest gap is beyond the cap
		} else {
			end = end.Add(time.Second)
		}
		h.Record(end, end, end, nil)
	}
	sum, err := r.Close(end)
	if err != nil {
		t.Fatal(err)
	}
	g := sum.Gaps[0]
	if len(g.Gaps) != maxGapsPerStream || g.MoreGaps != 5 || g.Longest != 60 {
		t.Fatalf("%d gaps, %d more, longest %v s; want 1000, 5, 60", len(g.Gaps), g.MoreGaps, g.Longest)
	}
}

// TestFiles reads back what the recorder wrote: the interval log with
// hdr.NewHistogramLogReader, summary.json with ReadSummary.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	start := t0.Add(250 * time.Millisecond) // not on a whole second
	r, err := NewRecorder(Options{Dir: dir, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{} // "tag start-end" -> count
	oltp := func(op string, node int) *Handle { return r.Handle(Key{Workload: "oltp", Op: op, Node: node}) }
	for sec := 0; sec < 3; sec++ {
		s := start.Add(time.Duration(sec) * time.Second)
		e := s.Add(time.Second)
		span := fmt.Sprintf("%d-%d", s.UnixMilli(), e.UnixMilli())
		for node := 1; node <= 2; node++ {
			n := 10*(sec+1) + node
			for i := 0; i < n; i++ {
				at := s.Add(time.Duration(i) * time.Millisecond)
				oltp("point-read", node).Record(at, at, at.Add(ms(float64(node))), nil)
			}
			want[fmt.Sprintf("lat/point-read/n%d %s", node, span)] = int64(n)
			want[fmt.Sprintf("svc/point-read/n%d %s", node, span)] = int64(n)
		}
		if sec == 1 {
			oltp("insert", 1).Record(s, s, s.Add(ms(3)), mysql.ErrInvalidConn)
			oltp("insert", 1).Record(s, s, s.Add(ms(3)), mysql.ErrInvalidConn)
			want["err/insert/n1 "+span] = 2
		}
		r.Handle(Key{Workload: "olap lb", Op: "big scan", Node: 0}).Record(s, s, s.Add(time.Second), nil)
		if _, err := r.Tick(e); err != nil {
			t.Fatal(err)
		}
		// Flushed after every tick: the log is readable while the run goes on.
		if got := readHlog(t, filepath.Join(dir, "oltp.hlog")); len(got) != len(want) {
			t.Fatalf("after tick %d the log has %d histograms, want %d", sec, len(got), len(want))
		}
	}
	sum, err := r.Close(start.Add(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := readHlog(t, filepath.Join(dir, "oltp.hlog"))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("oltp.hlog:\n got %v\nwant %v", got, want)
	}
	// A workload name with a space: a safe file name and tag.
	if got := readHlog(t, filepath.Join(dir, "olap_lb.hlog")); len(got) != 6 {
		t.Fatalf("olap_lb.hlog: %v", got)
	}
	for k := range readHlog(t, filepath.Join(dir, "olap_lb.hlog")) {
		if !strings.HasPrefix(k, "lat/big_scan/n0 ") && !strings.HasPrefix(k, "svc/big_scan/n0 ") {
			t.Fatalf("olap_lb.hlog tag %q", k)
		}
	}
	// The header carries the run start.
	b, err := os.ReadFile(filepath.Join(dir, "oltp.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), fmt.Sprintf("#[StartTime: %d ", start.Unix())) || !strings.Contains(string(b), fmt.Sprintf("#[BaseTime: %d ", start.Unix())) {
		t.Fatalf("oltp.hlog header:\n%s", b[:300])
	}

	// summary.json round trip.
	read, err := ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(sum)
	j2, _ := json.Marshal(read)
	if string(j1) != string(j2) {
		t.Fatalf("summary.json round trip:\n%s\n%s", j1, j2)
	}
	if !read.Start.Equal(start) || read.Ops[0].Workload != "olap lb" {
		t.Fatalf("summary.json: %+v", read)
	}
	for _, name := range []string{"summary.json", "intervals.jsonl", "oltp.hlog", "olap_lb.hlog"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Fatalf("run directory holds %d files, want 4 (no temp file left)", len(ents))
	}
}

// readHlog returns the interval log's histograms as "tag startMs-endMs" ->
// count.
func readHlog(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr := hdr.NewHistogramLogReader(f)
	out := map[string]int64{}
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h == nil {
			return out
		}
		out[fmt.Sprintf("%s %d-%d", h.Tag(), h.StartTimeMs(), h.EndTimeMs())] += h.TotalCount()
	}
}

func TestReadSummaryVersions(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.json")
	os.WriteFile(newer, []byte(`{"version": 3, "ops": []}`), 0o644)
	_, err := ReadSummary(newer)
	if err == nil || !strings.Contains(err.Error(), newer) || !strings.Contains(err.Error(), "version 3") || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("ReadSummary of a version 3 file: %v", err)
	}
	// A version 1 file (before access kinds) still reads: its streams have no access.
	old := filepath.Join(dir, "old.json")
	os.WriteFile(old, []byte(`{"version": 1, "ops": [], "gaps": [{"workload": "oltp", "node": 1, "gaps": [], "longest_s": 2}]}`), 0o644)
	if s, err := ReadSummary(old); err != nil || len(s.Gaps) != 1 || s.Gaps[0].Access != "" || s.Gaps[0].Longest != 2 {
		t.Fatalf("ReadSummary of a version 1 file: %+v, %v", s, err)
	}
	none := filepath.Join(dir, "none.json")
	os.WriteFile(none, []byte(`{"ops": []}`), 0o644)
	if _, err := ReadSummary(none); err == nil {
		t.Fatal("ReadSummary of a file without a version succeeded")
	}
	if _, err := ReadSummary(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadSummary of a missing file: %v", err)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := NewRecorder(Options{Dir: filepath.Join(file, "run")}); err == nil {
		t.Fatal("NewRecorder under a regular file succeeded")
	}
	if _, err := NewRecorder(Options{GapThreshold: -1}); err == nil {
		t.Fatal("NewRecorder with a negative threshold succeeded")
	}
	// A workload whose log cannot be created: Tick reports it, keeps counting.
	run := filepath.Join(dir, "run")
	r, err := NewRecorder(Options{Dir: run, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(run, "w.hlog"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.Handle(Key{Workload: "w", Op: "op", Node: 1}).Record(t0, t0, t0.Add(ms(1)), nil)
	iv, err := r.Tick(t0.Add(time.Second))
	if err == nil || iv.Ops != 1 {
		t.Fatalf("Tick = %+v, %v; want the interval and an error", iv, err)
	}
	sum, err := r.Close(t0.Add(2 * time.Second))
	if err == nil || sum == nil || sum.Ops[0].Count != 1 {
		t.Fatalf("Close = %v, %v; want the summary and an error", sum, err)
	}
	if _, err := ReadSummary(filepath.Join(run, "summary.json")); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	before := time.Now()
	r, err := NewRecorder(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.start.Before(before) || r.interval != time.Second || r.gapThr != 500*time.Millisecond || r.lateThr != 10*time.Millisecond {
		t.Fatalf("defaults: %v %v %v %v", r.start, r.interval, r.gapThr, r.lateThr)
	}
	k := Key{Workload: "w", Op: "op", Node: 1}
	if h1, h2 := r.Handle(k), r.Handle(k); h1 != h2 || h1 == r.Handle(Key{Workload: "w", Op: "op", Node: 2}) {
		t.Fatal("Handle does not return one handle per key")
	}
	// Late is strictly more than the threshold.
	h := r.Handle(k)
	h.Record(t0, t0.Add(10*time.Millisecond), t0.Add(11*time.Millisecond), nil)
	h.Record(t0, t0.Add(10*time.Millisecond+1), t0.Add(11*time.Millisecond), nil)
	if s := r.Summary(t0.Add(time.Second)); s.Ops[0].Late != 1 {
		t.Fatalf("late = %d, want 1", s.Ops[0].Late)
	}
}

// TestConcurrent: 8 goroutines record while another ticks and a third reads
// summaries; nothing is lost. Run with -race.
func TestConcurrent(t *testing.T) {
	r, err := NewRecorder(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 8, 20000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var ticked struct {
		sync.Mutex
		ops, errs, dropped int64
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tk.C:
				iv, err := r.Tick(now)
				if err != nil {
					t.Error(err)
					return
				}
				ticked.Lock()
				ticked.ops += iv.Ops
				ticked.errs += iv.Errors
				ticked.dropped += iv.Dropped
				ticked.Unlock()
			}
		}
	}()
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				r.Summary(time.Now())
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				// Shared keys (as loadgen workers share them) and per-node ones.
				h := r.Handle(Key{Workload: "oltp", Op: "read", Node: 1 + (w+i)%3})
				now := time.Now()
				switch i % 10 {
				case 0:
					h.Record(now, now, time.Now(), &mysql.MySQLError{Number: 1213})
				case 1:
					h.Dropped(now)
				case 2:
					h.Record(now, now, time.Now(), context.Canceled)
				default:
					h.Record(now, now, time.Now(), nil)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	sum, err := r.Close(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ops, errs, dropped, canceled int64
	for _, o := range sum.Ops {
		ops += o.Count
		errs += o.ErrorsTotal
		dropped += o.Dropped
		canceled += o.Canceled
	}
	total := int64(workers * perWorker)
	if ops != total*7/10 || errs != total/10 || dropped != total/10 || canceled != total/10 {
		t.Fatalf("summary: ops %d errors %d dropped %d canceled %d of %d", ops, errs, dropped, canceled, total)
	}
	// Every op was in exactly one interval: what Tick reported plus what
	// Close's last interval holds adds up to the total.
	var inLines int64
	if f, err := os.Open(filepath.Join(r.dir, "intervals.jsonl")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l intervalLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			inLines += l.Count
		}
	}
	if inLines != ops {
		t.Fatalf("intervals.jsonl counts %d successes, the summary %d", inLines, ops)
	}
	if ticked.ops > ops || ticked.errs > errs || ticked.dropped > dropped {
		t.Fatalf("ticks saw more than the total: ops %d errors %d dropped %d", ticked.ops, ticked.errs, ticked.dropped)
	}
}
