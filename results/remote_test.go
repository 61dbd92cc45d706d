package results

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/go-sql-driver/mysql"
)

// The tests of this file check that a Recorder fed agents' frames (Ingest)
// ends up with what one Recorder fed every operation writes: the truth is a
// reference Recorder (or GapTracker) given the same operations directly.

var rbase = time.Unix(1_760_000_000, 250_000_000) // the runs' start

// cluster drives n agent Recorders that export their frames (through JSON,
// as on the wire), a reference Recorder recording every operation, and a
// coordinator Recorder ingesting the agents' frames.
type cluster struct {
	t      *testing.T
	iv     time.Duration
	offs   []time.Duration // agent clock - coordinator clock
	agents []*Recorder
	frames [][]*IntervalFrame
	ref    *Recorder
	coord  *Recorder
}

func newCluster(t *testing.T, n int, offs []time.Duration, o Options) *cluster {
	t.Helper()
	c := &cluster{t: t, iv: time.Second, offs: offs, frames: make([][]*IntervalFrame, n)}
	for k := range n {
		ao := o
		ao.Dir, ao.Start = "", rbase.Add(offs[k])
		ao.Export = func(f *IntervalFrame) {
			b, err := json.Marshal(f)
			if err != nil {
				t.Error(err)
				return
			}
			var g IntervalFrame
			if err := json.Unmarshal(b, &g); err != nil {
				t.Error(err)
				return
			}
			c.frames[k] = append(c.frames[k], &g)
		}
		r, err := NewRecorder(ao)
		if err != nil {
			t.Fatal(err)
		}
		c.agents = append(c.agents, r)
	}
	var err error
	ro := o
	ro.Dir, ro.Start = filepath.Join(t.TempDir(), "ref"), rbase
	if c.ref, err = NewRecorder(ro); err != nil {
		t.Fatal(err)
	}
	co := o
	co.Dir, co.Start = filepath.Join(t.TempDir(), "coord"), rbase.Add(-time.Hour) // SetStart moves it
	if c.coord, err = NewRecorder(co); err != nil {
		t.Fatal(err)
	}
	c.coord.SetStart(rbase)
	return c
}

// op is one operation of agent k, in coordinator time.
type op struct {
	agent                    int
	key                      Key
	intended, started, ended time.Time
	err                      error
	dropped                  bool
	mem, ret                 int64 // recorded when > 0 (ret: >= 0 with haveRet)
	haveRet                  bool
}

// record gives o to the reference and to its agent (in the agent's clock).
func (c *cluster) record(o op) {
	off := c.offs[o.agent]
	for _, x := range []struct {
		r   *Recorder
		off time.Duration
	}{{c.ref, 0}, {c.agents[o.agent], off}} {
		h := x.r.Handle(o.key)
		if o.dropped {
			h.Dropped(o.intended.Add(x.off))
			continue
		}
		h.Record(o.intended.Add(x.off), o.started.Add(x.off), o.ended.Add(x.off), o.err)
		if o.err == nil && o.mem > 0 {
			h.RecordMemory(o.mem)
		}
		if o.err == nil && o.haveRet {
			h.RecordReturned(o.ret)
		}
	}
}

// tick closes interval k everywhere: the agents export, the coordinator
// ingests their frames and ticks.
func (c *cluster) tick(k int) {
	c.t.Helper()
	now := rbase.Add(time.Duration(k) * c.iv)
	var afs []AgentFrame
	for i, a := range c.agents {
		if _, err := a.Tick(now.Add(c.offs[i])); err != nil {
			c.t.Fatal(err)
		}
		f := c.frames[i][len(c.frames[i])-1]
		if f.Seq != int64(k) || f.Final {
			c.t.Fatalf("agent %d's frame at tick %d: seq %d, final %v", i, k, f.Seq, f.Final)
		}
		afs = append(afs, AgentFrame{Tag: fmt.Sprintf("a%d", i+1), Offset: c.offs[i], Frame: f})
	}
	if _, err := c.ref.Tick(now); err != nil {
		c.t.Fatal(err)
	}
	if err := c.coord.Ingest(afs); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.coord.Tick(now); err != nil {
		c.t.Fatal(err)
	}
}

// close closes every recorder at end and returns the reference's and the
// coordinator's summaries.
func (c *cluster) close(end time.Time) (ref, coord *Summary) {
	c.t.Helper()
	var afs []AgentFrame
	for i, a := range c.agents {
		if _, err := a.Close(end.Add(c.offs[i])); err != nil {
			c.t.Fatal(err)
		}
		f := c.frames[i][len(c.frames[i])-1]
		if !f.Final {
			c.t.Fatalf("agent %d's last frame is not final", i)
		}
		afs = append(afs, AgentFrame{Tag: fmt.Sprintf("a%d", i+1), Offset: c.offs[i], Frame: f})
	}
	ref, err := c.ref.Close(end)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.coord.Ingest(afs); err != nil {
		c.t.Fatal(err)
	}
	if coord, err = c.coord.Close(end); err != nil {
		c.t.Fatal(err)
	}
	return ref, coord
}

var testErrors = []error{
	context.DeadlineExceeded,
	io.EOF,
	&mysql.MySQLError{Number: 1047, Message: "WSREP has not yet prepared node for application use"},
	&mysql.MySQLError{Number: 1213, Message: "Deadlock found"},
	&mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"},
	&mysql.MySQLError{Number: 1290, Message: "read-only"},
	&mysql.MySQLError{Number: 1041, Message: "Out of memory"},
	&mysql.MySQLError{Number: 1146, Message: "Table 'db.t' doesn't exist"},
	&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"},
	&mysql.MySQLError{Number: 1064, Message: "syntax"},
	errors.New("boom"),
	context.Canceled,
}

func TestIngestEqualsOneRecorder(t *testing.T) {
	offs := []time.Duration{0, 3500 * time.Microsecond, -2 * time.Millisecond}
	c := newCluster(t, 3, offs, Options{GapThreshold: 120 * time.Millisecond})
	rng := rand.New(rand.NewPCG(16, 1))
	keys := []Key{
		{Workload: "oltp", Op: "point-read", Node: 1, Access: Read},
		{Workload: "oltp", Op: "point-read", Node: 2, Access: Read},
		{Workload: "oltp", Op: "insert", Node: 1, Access: Write},
		{Workload: "oltp", Op: "insert", Node: 3, Access: Write},
		{Workload: "olap", Op: "scan", Node: 2, Access: Read},
	}
	c.ref.MemoryUnavailable("no accounting")
	c.agents[1].MemoryUnavailable("no accounting")
	const intervals = 5
	end := rbase.Add(intervals*c.iv + 400*time.Millisecond)
	for k := 1; k <= intervals+1; k++ {
		lo := rbase.Add(time.Duration(k-1) * c.iv)
		hi := rbase.Add(time.Duration(k) * c.iv)
		if hi.After(end) {
			hi = end
		}
		n := 30 + rng.IntN(40)
		ends := make([]time.Time, n)
		for i := range ends {
			ends[i] = lo.Add(time.Duration(rng.Int64N(int64(hi.Sub(lo)))))
		}
		slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
		for _, e := range ends {
			o := op{agent: rng.IntN(3), key: keys[rng.IntN(len(keys))], ended: e}
			svc := time.Duration(rng.Int64N(int64(40 * time.Millisecond)))
			if rng.IntN(20) == 0 {
				svc = time.Duration(rng.Int64N(int64(3 * time.Second)))
			}
			o.started = e.Add(-svc)
			o.intended = o.started.Add(-time.Duration(rng.Int64N(int64(25 * time.Millisecond))))
			switch x := rng.IntN(100); {
			case x < 5:
				o.dropped = true
			case x < 40:
				o.err = testErrors[rng.IntN(len(testErrors))]
			}
			if rng.IntN(3) == 0 {
				o.mem = 1 + rng.Int64N(50<<20)
			}
			if rng.IntN(2) == 0 {
				o.ret, o.haveRet = rng.Int64N(5000), true
			}
			c.record(o)
		}
		if k <= intervals {
			c.tick(k)
		}
	}
	ref, coord := c.close(end)

	// Every key's cumulative histograms, bucket for bucket.
	refH, coordH := c.ref.list(), c.coord.list()
	if len(refH) != len(coordH) {
		t.Fatalf("%d keys merged, want %d", len(coordH), len(refH))
	}
	for i, rh := range refH {
		ch := coordH[i]
		if rh.key != ch.key {
			t.Fatalf("key %d: %v, want %v", i, ch.key, rh.key)
		}
		for j, pair := range [][2]*hdr.Histogram{{rh.cum.lat, ch.cum.lat}, {rh.cum.svc, ch.cum.svc}, {rh.cum.err, ch.cum.err}, {rh.cum.mem, ch.cum.mem}, {rh.cum.ret, ch.cum.ret}} {
			if (pair[0] == nil) != (pair[1] == nil) || pair[0] != nil && !pair[0].Equals(pair[1]) {
				t.Errorf("%v: merged %s histogram differs from the reference's", rh.key, histKinds[j])
			}
		}
		if rh.cum.ok == 0 || rh.cum.errorsTotal() == 0 {
			t.Errorf("%v: the test recorded no success or no error", rh.key)
		}
	}
	// The files, whole: intervals.jsonl and summary.json byte for byte, the
	// interval logs without the agents' lines.
	sameFile(t, c.ref, c.coord, "intervals.jsonl", nil)
	sameFile(t, c.ref, c.coord, "summary.json", nil)
	for _, wl := range []string{"oltp", "olap"} {
		sameFile(t, c.ref, c.coord, wl+".hlog", func(line []byte) bool { return !bytes.HasPrefix(line, []byte("Tag=a")) })
	}
	if !reflect.DeepEqual(ref, coord) {
		t.Errorf("summaries differ")
	}
	var classes, others, late, dropped, retTotal int64
	for _, o := range ref.Ops {
		others += int64(len(o.Other))
		late += o.Late
		dropped += o.Dropped
		retTotal += o.ReturnedTotal
	}
	for _, w := range ref.Workloads {
		for _, n := range w.Errors {
			if n > 0 {
				classes++
			}
		}
	}
	if classes < 7 || others == 0 || late == 0 || dropped == 0 || retTotal == 0 || ref.MemoryUnavailable == "" {
		t.Errorf("the run misses cases: %d class counts, %d other numbers, %d late, %d dropped, %d bytes returned, memory %q", classes, others, late, dropped, retTotal, ref.MemoryUnavailable)
	}
	if g := ref.Cluster[0].Gaps; len(g) == 0 {
		t.Errorf("no cluster-wide gap in the run: the gap merge is not exercised")
	}

	// Each agent's lines add up to its own histograms.
	perAgent := map[string]*hdr.Histogram{}
	for _, wl := range []string{"oltp", "olap"} {
		f, err := os.Open(filepath.Join(c.coord.dir, wl+".hlog"))
		if err != nil {
			t.Fatal(err)
		}
		err = eachInterval(f, func(tag string) bool { return strings.HasPrefix(tag, "a") }, func(iv hlogInterval) error {
			if iv.Hist == nil {
				return nil
			}
			k := wl + "|" + iv.Tag
			if perAgent[k] == nil {
				perAgent[k] = newHist()
				if strings.Contains(iv.Tag, ".ret/") {
					perAgent[k] = newByteHist()
				}
			}
			mergePacked(perAgent[k], iv.Hist)
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	for i, a := range c.agents {
		for _, h := range a.list() {
			for j, hist := range []*hdr.Histogram{h.cum.lat, h.cum.svc, h.cum.err, h.cum.mem, h.cum.ret} {
				if hist == nil || hist.TotalCount() == 0 {
					continue
				}
				k := fmt.Sprintf("%s|a%d.%s", h.key.Workload, i+1, h.tags[j])
				got := perAgent[k]
				if got == nil || !got.Equals(hist) {
					t.Errorf("agent %d's %s lines do not add up to its histogram", i+1, k)
				}
				delete(perAgent, k)
				seen++
			}
		}
	}
	if len(perAgent) != 0 || seen == 0 {
		t.Errorf("agent lines with no agent histogram: %v (%d matched)", slices.Collect(mapsKeys(perAgent)), seen)
	}

	// The readers skip the agents' lines: what they make of the merged run
	// is what they make of the reference's.
	windows := []Window{{Name: "all", Start: rbase, End: end}, {Name: "mid", Start: rbase.Add(time.Second), End: rbase.Add(3 * time.Second)}}
	ws1, err1 := WindowStats(c.ref.dir, windows)
	ws2, err2 := WindowStats(c.coord.dir, windows)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(ws1, ws2) {
		t.Errorf("WindowStats of the merged run differ from the reference's (%v, %v)", err1, err2)
	}
	s1, d1, err1 := SeriesAndDistributions(c.ref.dir, windows)
	s2, d2, err2 := SeriesAndDistributions(c.coord.dir, windows)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(d1, d2) {
		t.Errorf("SeriesAndDistributions of the merged run differ from the reference's (%v, %v)", err1, err2)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sameFile fails t unless the file name of both recorders' directories has
// the same lines (those keep accepts, all with nil).
func sameFile(t *testing.T, a, b *Recorder, name string, keep func([]byte) bool) {
	t.Helper()
	read := func(dir string) [][]byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, l := range bytes.SplitAfter(data, []byte("\n")) {
			if keep == nil || keep(l) {
				out = append(out, l)
			}
		}
		return out
	}
	want, got := read(a.dir), read(b.dir)
	if len(got) != len(want) {
		t.Errorf("%s: %d lines, want %d", name, len(got), len(want))
		return
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s line %d:\n got %s\nwant %s", name, i+1, got[i], want[i])
			return
		}
	}
}

func TestMergedGapsArranged(t *testing.T) {
	c := newCluster(t, 2, []time.Duration{0, 2 * time.Millisecond}, Options{GapThreshold: 500 * time.Millisecond})
	key := Key{Workload: "oltp", Op: "insert", Node: 1, Access: Write}
	// Agent 1 only fails in [2 s, 4 s), agent 2 in [3 s, 5 s) (its
	// completions 7 ms after agent 1's): the only window with no success
	// anywhere runs from agent 2's last success before its hole, 2.957 s, to
	// agent 1's first after its own, 4 s.
	holes := [][2]time.Duration{{2 * time.Second, 4 * time.Second}, {3 * time.Second, 5 * time.Second}}
	var ops []op
	gapStart, gapEnd := rbase.Add(2957*time.Millisecond), rbase.Add(4*time.Second)
	var wantFailed, wantLate int64
	for a := range 2 {
		for i := range 140 {
			at := time.Duration(i)*50*time.Millisecond + time.Duration(a)*7*time.Millisecond
			o := op{agent: a, key: key, ended: rbase.Add(at)}
			o.started = o.ended.Add(-time.Millisecond)
			o.intended = o.started
			if at >= holes[a][0] && at < holes[a][1] {
				o.err = io.EOF
				if i%3 == 0 {
					o.intended = o.started.Add(-20 * time.Millisecond) // late
				}
				if o.ended.After(gapStart) && o.ended.Before(gapEnd) {
					wantFailed++
					if i%3 == 0 {
						wantLate++
					}
				}
			}
			ops = append(ops, o)
		}
	}
	slices.SortFunc(ops, func(a, b op) int { return a.ended.Compare(b.ended) })
	next := 0
	for k := 1; k <= 7; k++ {
		for ; next < len(ops) && !ops[next].ended.After(rbase.Add(time.Duration(k)*c.iv)); next++ {
			c.record(ops[next])
		}
		c.tick(k)
	}
	ref, coord := c.close(rbase.Add(7200 * time.Millisecond))
	want := Gap{Start: gapStart, End: gapEnd, Duration: gapEnd.Sub(gapStart).Seconds(), Failed: wantFailed, Late: wantLate}
	for _, sg := range [][]StreamGaps{ref.Gaps, ref.Cluster, coord.Gaps, coord.Cluster} {
		if len(sg) != 1 || len(sg[0].Gaps) != 1 || !reflect.DeepEqual(sg[0].Gaps[0], want) {
			t.Errorf("gaps %+v, want one: %+v", sg, want)
		}
	}
	if wantFailed < 20 || wantLate == 0 {
		t.Errorf("the test put %d failures, %d late, in the gap", wantFailed, wantLate)
	}
	if !reflect.DeepEqual(ref, coord) {
		t.Errorf("merged summary differs from the reference's")
	}
}

// TestMergedGapsRandom feeds random completions of three agents to one
// tracker in time order, and to three trackers whose runs and failures a
// coordinator ingests frame by frame (with clock offsets, and with
// completions noted after the agent's tick, so that they travel in the next
// frame): the gaps must be the same.
func TestMergedGapsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 3))
	sk := streamKey{Workload: "w", Node: 1, Access: Write}
	const agents, ticks = 3, 8
	var gaps, failedIn, withSlip int
	for cs := range 400 {
		thr := time.Duration(1+rng.IntN(700)) * time.Millisecond
		slip := cs%2 == 1
		type ev struct {
			agent    int
			at       int64 // ns since rbase
			ok, late bool
		}
		var evs []ev
		seen := map[int64]bool{}
		outStart := rng.Int64N(int64(ticks * time.Second))
		outEnd := outStart + rng.Int64N(int64(1500*time.Millisecond))
		for a := range agents {
			n := rng.IntN(400)
			pause := rng.Int64N(int64(ticks * time.Second))
			pauseEnd := pause + rng.Int64N(int64(2*time.Second))
			for range n {
				at := rng.Int64N(int64(ticks*time.Second + 300*time.Millisecond))
				if seen[at] {
					continue
				}
				seen[at] = true
				ok := rng.IntN(10) < 8
				if at >= outStart && at < outEnd || at >= pause && at < pauseEnd {
					ok = false
				}
				evs = append(evs, ev{agent: a, at: at, ok: ok, late: rng.IntN(4) == 0})
			}
		}
		slices.SortFunc(evs, func(a, b ev) int { return cmpInt64(a.at, b.at) })
		end := rbase.Add(ticks*time.Second + 500*time.Millisecond)

		ref := newStream(sk, thr)
		for _, e := range evs {
			if e.ok {
				ref.Success(rbase.Add(time.Duration(e.at)), e.late)
			} else {
				ref.Failure(rbase.Add(time.Duration(e.at)), e.late)
			}
		}
		want := ref.Snapshot(end)

		coord, err := NewRecorder(Options{Start: rbase, GapThreshold: thr})
		if err != nil {
			t.Fatal(err)
		}
		trs := make([]*GapTracker, agents)
		offs := make([]time.Duration, agents)
		next := make([]int, agents) // per agent: index into its events
		per := make([][]ev, agents)
		for a := range agents {
			trs[a] = newStream(sk, thr)
			trs[a].cov = &coverLog{}
			offs[a] = time.Duration(rng.Int64N(int64(10*time.Millisecond))) - 5*time.Millisecond
		}
		for _, e := range evs {
			per[e.agent] = append(per[e.agent], e)
		}
		for k := 1; k <= ticks+1; k++ {
			final := k == ticks+1
			var afs []AgentFrame
			for a := range agents {
				limit := int64(k) * int64(time.Second)
				if slip && rng.IntN(2) == 0 {
					limit -= rng.Int64N(int64(60 * time.Millisecond)) // noted after the tick
				}
				for ; next[a] < len(per[a]) && (final || per[a][next[a]].at <= limit); next[a]++ {
					e := per[a][next[a]]
					at := rbase.Add(time.Duration(e.at) + offs[a])
					if e.ok {
						trs[a].Success(at, e.late)
					} else {
						trs[a].Failure(at, e.late)
					}
					if k > 1 && !final && e.at <= int64(k-1)*int64(time.Second) {
						withSlip++
					}
				}
				runs, fails := trs[a].drain()
				f := &IntervalFrame{Seq: int64(k), Final: final, EndNs: rbase.Add(time.Duration(k)*time.Second + offs[a]).UnixNano(), Streams: []StreamFrame{}}
				if len(runs)+len(fails) > 0 {
					f.Streams = append(f.Streams, StreamFrame{Workload: sk.Workload, Node: sk.Node, Access: sk.Access, Runs: runs, Fails: fails})
				}
				afs = append(afs, AgentFrame{Tag: fmt.Sprintf("a%d", a+1), Offset: offs[a], Frame: f})
			}
			if err := coord.Ingest(afs); err != nil {
				t.Fatal(err)
			}
			if !final {
				if _, err := coord.Tick(rbase.Add(time.Duration(k) * time.Second)); err != nil {
					t.Fatal(err)
				}
			}
		}
		sum, err := coord.Close(end)
		if err != nil {
			t.Fatal(err)
		}
		var got StreamGaps
		if len(sum.Gaps) == 1 {
			got = sum.Gaps[0]
		} else if len(evs) > 0 {
			t.Fatalf("case %d: %d streams", cs, len(sum.Gaps))
		} else {
			got = want
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d (threshold %v, slip %v): merged gaps\n%+v\nwant\n%+v", cs, thr, slip, got, want)
		}
		gaps += len(want.Gaps)
		for _, g := range want.Gaps {
			if g.Failed > 0 {
				failedIn++
			}
		}
	}
	if gaps < 400 || failedIn < 100 || withSlip < 100 {
		t.Errorf("the cases had %d gaps, %d with failures, %d completions in the next frame: too few to tell", gaps, failedIn, withSlip)
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestLedgerMerge(t *testing.T) {
	a, b := NewLedger(), NewLedger()
	for id := int64(1); id <= 10; id++ {
		a.Ack(1, id)
	}
	a.Ack(1, 20)
	a.Unknown(1, 11)
	for id := int64(12); id <= 15; id++ {
		b.Ack(2, id)
	}
	b.Ack(3, 16)
	b.Unknown(3, 30)
	b.Unknown(3, 25)

	// Through the wire form, as agents send them.
	m := NewLedger()
	for _, l := range []*Ledger{a, b} {
		data, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeLedger(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := m.Acked(), []Range{{1, 10}, {12, 16}, {20, 20}}; !reflect.DeepEqual(got, want) {
		t.Errorf("merged acked %v, want %v", got, want)
	}
	if got, want := m.Unknowns(), []int64{11, 25, 30}; !reflect.DeepEqual(got, want) {
		t.Errorf("merged unknowns %v, want %v", got, want)
	}
	if acked, unknown := m.Count(); acked != 16 || unknown != 3 {
		t.Errorf("merged count %d acked, %d unknown; want 16, 3", acked, unknown)
	}
	// The file is the wire form.
	path := filepath.Join(t.TempDir(), "ledger.json")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(path)
	wire, _ := json.Marshal(m)
	if !bytes.Equal(file, append(wire, '\n')) {
		t.Errorf("ledger.json\n%s\nis not the wire form\n%s", file, wire)
	}

	// A writer in both: ids collided; nothing is merged.
	c := NewLedger()
	c.Ack(4, 100)
	c.Ack(2, 99)
	if err := m.Merge(c); err == nil || !strings.Contains(err.Error(), "writer 2") {
		t.Errorf("merging a shared writer: %v", err)
	}
	if acked, _ := m.Count(); acked != 16 {
		t.Errorf("a refused merge changed the ledger: %d acked", acked)
	}
	if err := m.Merge(m); err == nil {
		t.Errorf("a ledger merged into itself")
	}
	for _, bad := range []string{`{"version":2,"writers":[]}`, `{"writers":[]}`, `{"version":1,"writers":[{"writer":1,"acked":[[5,4]],"unknown":[]}]}`, `{`} {
		if _, err := DecodeLedger([]byte(bad)); err == nil {
			t.Errorf("DecodeLedger(%s) took it", bad)
		}
	}
}

func TestIngestRefuses(t *testing.T) {
	r, err := NewRecorder(Options{Start: rbase})
	if err != nil {
		t.Fatal(err)
	}
	good := KeyFrame{Workload: "w", Op: "o", Node: 1, Access: Read, OK: 1}
	for name, af := range map[string]AgentFrame{
		"no frame":      {Tag: "a1"},
		"bad tag":       {Tag: "a/1", Frame: &IntervalFrame{Keys: []KeyFrame{good}}},
		"bad access":    {Tag: "a1", Frame: &IntervalFrame{Keys: []KeyFrame{{Workload: "w", Op: "o", Access: "both"}}}},
		"bad class":     {Tag: "a1", Frame: &IntervalFrame{Keys: []KeyFrame{{Workload: "w", Op: "o", Errors: map[Class]int64{"weird": 1}}}}},
		"canceled":      {Tag: "a1", Frame: &IntervalFrame{Keys: []KeyFrame{{Workload: "w", Op: "o", Errors: map[Class]int64{ClassCanceled: 1}}}}},
		"negative":      {Tag: "a1", Frame: &IntervalFrame{Keys: []KeyFrame{{Workload: "w", Op: "o", OK: -1}}}},
		"bad hist":      {Tag: "a1", Frame: &IntervalFrame{Keys: []KeyFrame{{Workload: "w", Op: "o", Lat: "bm90IGEgaGlzdG9ncmFt"}}}},
		"other zero":    {Tag: "a1", Frame: &IntervalFrame{Keys: []KeyFrame{{Workload: "w", Op: "o", Other: []OtherError{{Number: 1, Count: 0}}}}}},
		"stream access": {Tag: "a1", Frame: &IntervalFrame{Streams: []StreamFrame{{Access: "x"}}}},
	} {
		// The good frame first: a refused batch adds nothing of it.
		if err := r.Ingest([]AgentFrame{{Tag: "a2", Frame: &IntervalFrame{Keys: []KeyFrame{good}}}, af}); err == nil {
			t.Errorf("%s: Ingest took it", name)
		}
		// Check refuses the frame itself (the tag is the ingester's to check).
		if err := af.Frame.Check(); (err == nil) != (name == "bad tag") {
			t.Errorf("%s: Check: %v", name, err)
		}
	}
	if err := (&IntervalFrame{Keys: []KeyFrame{good}}).Check(); err != nil {
		t.Errorf("Check of a good frame: %v", err)
	}
	if iv, _ := r.Tick(rbase.Add(time.Second)); iv.Ops != 0 {
		t.Errorf("refused batches added %d ops", iv.Ops)
	}
}

// TestExportConcurrent records from several goroutines on an exporting
// recorder while it ticks (run it with -race): the frames hold every
// operation once.
func TestExportConcurrent(t *testing.T) {
	var frames []*IntervalFrame
	agent, err := NewRecorder(Options{Start: rbase, Export: func(f *IntervalFrame) { frames = append(frames, f) }})
	if err != nil {
		t.Fatal(err)
	}
	coord, err := NewRecorder(Options{Start: rbase})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			h := agent.Handle(Key{Workload: "w", Op: "o", Node: 1 + w%2, Access: Write})
			for i := range each {
				at := rbase.Add(time.Duration(w*each+i) * time.Microsecond)
				var err error
				if i%10 == 0 {
					err = io.EOF
				}
				h.Record(at, at, at.Add(time.Millisecond), err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ingest := func() {
		if err := coord.Ingest([]AgentFrame{{Tag: "a1", Frame: frames[len(frames)-1]}}); err != nil {
			t.Fatal(err)
		}
	}
	for k := 1; ; k++ {
		now := rbase.Add(time.Duration(k) * time.Millisecond)
		if _, err := agent.Tick(now); err != nil {
			t.Fatal(err)
		}
		ingest()
		if _, err := coord.Tick(now); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		default:
			continue
		}
		break
	}
	end := rbase.Add(time.Hour)
	want, _ := agent.Close(end)
	ingest()
	got, _ := coord.Close(end)
	if n := got.Workloads[0].Count + got.Workloads[0].ErrorsTotal; n != workers*each || !reflect.DeepEqual(got.Workloads, want.Workloads) {
		t.Errorf("merged %d ops, want %d: %+v\nwant %+v", n, workers*each, got.Workloads, want.Workloads)
	}
}
