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
