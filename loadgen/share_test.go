package loadgen

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// The agents' shares of an open-loop schedule together are exactly the schedule:
// every intended time once, none added, whatever the number of agents, the
// rates and the operation bound.
func TestShareUnionIsSchedule(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	phases := []Phase{{Name: "slow", Rate: 1.5, Duration: 7 * time.Second}, {Name: "fast", Rate: 1000, Duration: 2 * time.Second}, {Name: "odd", Rate: 333.3, Duration: 1500 * time.Millisecond}}
	sched := NewSchedule(start, phases)
	for _, maxOps := range []int64{0, 1, 2, 7, 1234, sched.Total() + 5} {
		want := []time.Time{}
		for n := int64(0); maxOps == 0 || n < maxOps; n++ {
			at, _, ok := sched.At(n)
			if !ok {
				break
			}
			want = append(want, at)
		}
		for of := 1; of <= 4; of++ {
			var got []time.Time
			for i := range of {
				mine := slices.Collect(Share{Index: i, Of: of}.ops(sched, maxOps))
				if !slices.IsSortedFunc(mine, time.Time.Compare) {
					t.Fatalf("max %d, share %d/%d: times out of order", maxOps, i, of)
				}
				// Shares differ by at most one operation.
				if lo, hi := int64(len(want))/int64(of), (int64(len(want))+int64(of)-1)/int64(of); int64(len(mine)) < lo || int64(len(mine)) > hi {
					t.Errorf("max %d, share %d/%d: %d ops, want %d-%d", maxOps, i, of, len(mine), lo, hi)
				}
				got = append(got, mine...)
			}
			slices.SortFunc(got, time.Time.Compare)
			if !slices.EqualFunc(got, want, time.Time.Equal) {
				t.Errorf("max %d, %d shares: %d times, the schedule has %d (or they differ)", maxOps, of, len(got), len(want))
			}
		}
	}
	// The zero Share is the whole schedule.
	if got := slices.Collect(Share{}.ops(sched, 0)); int64(len(got)) != sched.Total() {
		t.Errorf("zero share: %d ops, want %d", len(got), sched.Total())
	}
}

// In the closed loop the shares split the workers and MaxOps exactly.
func TestShareClosedLoop(t *testing.T) {
	for of := 1; of <= 4; of++ {
		for _, conc := range []int{1, 3, 8, 17} {
			seen := make([]int, conc)
			for i := range of {
				for id := range conc {
					if (Share{Index: i, Of: of}).has(id) {
						seen[id]++
					}
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%d shares, concurrency %d: worker %d run by %d shares", of, conc, id, n)
				}
			}
		}
		for _, total := range []int64{0, 1, 5, 1000, 1001} {
			var sum int64
			for i := range of {
				n := Share{Index: i, Of: of}.maxOps(total)
				if total == 0 && n != 0 {
					t.Errorf("unbounded split into %d", n)
				}
				sum += n
			}
			if sum != total {
				t.Errorf("MaxOps %d over %d shares: parts add up to %d", total, of, sum)
			}
		}
	}
}

func TestShareValidate(t *testing.T) {
	base := Config{Workloads: []Spec{{Workload: Noop(), Phases: []Phase{{Rate: 1, Duration: time.Second}}}}}
	for _, c := range []struct {
		s    Share
		base int
		ok   bool
	}{{Share{}, 0, true}, {Share{0, 1}, 0, true}, {Share{2, 3}, 65000, true}, {Share{3, 3}, 0, false}, {Share{-1, 2}, 0, false}, {Share{1, 0}, 0, false}, {Share{0, 2}, -1, false}, {Share{0, 2}, 70000, false}} {
		cfg := base
		cfg.Share, cfg.WorkerBase = c.s, c.base
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("share %+v, worker base %d: Validate = %v, want ok %v", c.s, c.base, err, c.ok)
		}
	}
}

// Three processes' runs with shares, a common start and worker bases together
// make the run's operations once each, with writer ids apart, on the interval
// grid of the common start.
func TestShareRunsAddUp(t *testing.T) {
	var mu sync.Mutex
	ids := map[int]int{} // worker id -> share
	wl := &Workload{Name: "acks", NoDB: true, Ops: []Op{{Name: "ack", Weight: 1, ChangesData: true, Ledgered: true,
		Run: func(_ context.Context, _ Querier, w *Worker) error { w.Ack(w.NextID()); return nil }}}}
	phases := []Phase{{Name: "p", Rate: 300, Duration: time.Second}}
	const of, stride = 3, 65535 / 3
	t0 := time.Now().Add(300 * time.Millisecond)
	type out struct {
		res    *Result
		err    error
		frames []*results.IntervalFrame
		lag    time.Duration
	}
	outs := make([]out, of)
	var wg sync.WaitGroup
	for k := range of {
		wl := *wl
		wl.Ops = []Op{wl.Ops[0]}
		inner := wl.Ops[0].Run
		wl.Ops[0].Run = func(ctx context.Context, q Querier, w *Worker) error {
			mu.Lock()
			if prev, ok := ids[w.ID]; ok && prev != k {
				t.Errorf("worker id %d in shares %d and %d", w.ID, prev, k)
			}
			ids[w.ID] = k
			mu.Unlock()
			return inner(ctx, q, w)
		}
		wg.Go(func() {
			o := &outs[k]
			cfg := Config{Workloads: []Spec{{Workload: &wl, Phases: phases, Workers: 2, Seed: 1 + uint64(k)}},
				Interval: 250 * time.Millisecond, RunTag: 7, Share: Share{Index: k, Of: of}, WorkerBase: k * stride,
				StartAt:  func(context.Context) (time.Time, error) { return t0, nil },
				Export:   func(f *results.IntervalFrame) { o.frames = append(o.frames, f) },
				Progress: func(p Progress) { o.lag = max(o.lag, p.ScheduleLag) }}
			o.res, o.err = Run(context.Background(), cfg)
		})
	}
	wg.Wait()
	want := NewSchedule(t0, phases).Total()
	merged := results.NewLedger()
	var ops int64
	for k, o := range outs {
		if o.err != nil {
			t.Fatalf("share %d: %v", k, o.err)
		}
		if got := o.res.Summary.Start; !got.Equal(t0) {
			t.Errorf("share %d: summary starts %v, want the common start %v", k, got, t0)
		}
		for _, s := range o.res.Summary.Ops {
			ops += s.Count
		}
		if err := merged.Merge(o.res.Ledger); err != nil {
			t.Errorf("share %d: ledger merge: %v", k, err)
		}
		if len(o.frames) == 0 || !o.frames[len(o.frames)-1].Final {
			t.Fatalf("share %d: %d frames, the last not final", k, len(o.frames))
		}
		var frameOps, shareOps int64
		for i, f := range o.frames {
			for _, kf := range f.Keys {
				frameOps += kf.OK
			}
			if f.Final {
				continue
			}
			// Ticks come from a ticker started at the common start: a tick may be
			// late, never off the grid by more than its lateness.
			if d := time.Unix(0, f.EndNs).Sub(t0) - time.Duration(f.Seq)*250*time.Millisecond; f.Seq != int64(i+1) || d < 0 || d > 100*time.Millisecond {
				t.Errorf("share %d frame %d: seq %d ends %v after the start", k, i, f.Seq, time.Unix(0, f.EndNs).Sub(t0))
			}
		}
		for _, s := range o.res.Summary.Ops {
			shareOps += s.Count
		}
		if frameOps != shareOps {
			t.Errorf("share %d: the frames hold %d successes, the summary %d", k, frameOps, shareOps)
		}
		if o.lag <= 0 || o.lag > 200*time.Millisecond {
			t.Errorf("share %d: schedule lag %v, want a small positive one", k, o.lag)
		}
	}
	if ops != want {
		t.Errorf("the shares ran %d ops, the schedule has %d", ops, want)
	}
	if acked, _ := merged.Count(); acked != want {
		t.Errorf("merged ledger: %d acked, want %d", acked, want)
	}
	for id, k := range ids {
		if id <= k*stride || id > (k+1)*stride {
			t.Errorf("share %d: worker id %d outside %d-%d", k, id, k*stride+1, (k+1)*stride)
		}
	}
}

// A workload travels as its Source: a builtin by name, a workload file with its
// text and the .sql files it read, which the rebuild takes from the Source and
// not from the disk.
func TestWorkloadSourceBuild(t *testing.T) {
	for _, name := range NewRegistry().Names() {
		wl, _ := NewRegistry().Get(name)
		if wl.Source == nil || wl.Source.Builtin != name {
			t.Fatalf("builtin %s: Source %+v", name, wl.Source)
		}
		got, err := wl.Source.Build()
		if err != nil || got.Name != name || len(got.Ops) != len(wl.Ops) {
			t.Errorf("builtin %s rebuilt: %v, %v", name, got, err)
		}
	}
	dir := t.TempDir()
	schema := "CREATE TABLE IF NOT EXISTS kv (id BIGINT PRIMARY KEY, v INT);\n"
	if err := os.WriteFile(filepath.Join(dir, "kv.sql"), []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	text := "name: kv\nschema: {file: kv.sql}\nops:\n  - name: get\n    sql: SELECT v FROM kv WHERE id = ?\n    args: [{uniform: {min: 1, max: 10}}]\n    weight: 1\n"
	path := filepath.Join(dir, "kv.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	wl, err := LoadWorkloadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := wl.Source
	if src == nil || src.File != path || string(src.Data) != text || string(src.Files[filepath.Join(dir, "kv.sql")]) != schema {
		t.Fatalf("file workload: Source %+v", src)
	}
	// The agent may have no such directory: the rebuild reads nothing from disk.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	got, err := src.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "kv" || len(got.Ops) != 1 || got.Ops[0].Name != "get" || got.Setup == nil {
		t.Errorf("rebuilt: %+v", got)
	}
	// A Source without its .sql file is refused, naming it.
	bad := *src
	bad.Files = nil
	if _, err := bad.Build(); err == nil || !strings.Contains(err.Error(), "kv.sql") {
		t.Errorf("without the .sql file: %v", err)
	}
	for _, s := range []WorkloadSource{{}, {Builtin: "nope"}, {Builtin: "noop", File: "x.yaml", Data: []byte("name: x")}} {
		if _, err := s.Build(); err == nil {
			t.Errorf("%+v: built", s)
		}
	}
}

// Closed loop: the shares' workers together are the run's, and their parts of
// MaxOps add up to it exactly.
func TestShareClosedLoopRuns(t *testing.T) {
	const of, conc, maxOps = 3, 5, 101
	var mu sync.Mutex
	workers := map[int]bool{}
	wl := &Workload{Name: "w", NoDB: true, Ops: []Op{{Name: "op", Weight: 1, Run: func(_ context.Context, _ Querier, w *Worker) error {
		mu.Lock()
		workers[w.ID] = true
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // every worker gets ops
		return nil
	}}}}
	var ops int64
	for k := range of {
		res, err := Run(context.Background(), Config{Workloads: []Spec{{Workload: wl, Closed: true, MaxOps: maxOps,
			Phases: []Phase{{Concurrency: conc, Duration: 5 * time.Second}}}}, Share: Share{Index: k, Of: of}, WorkerBase: k * 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Summary.Ops {
			ops += s.Count
		}
	}
	if ops != maxOps {
		t.Errorf("%d ops, want %d", ops, maxOps)
	}
	// Workers 0-4 of the run: 0 and 3 in share 0, 1 and 4 in share 1, 2 in share 2.
	want := map[int]bool{1: true, 2: true, 101: true, 102: true, 201: true}
	if len(workers) != len(want) {
		t.Errorf("worker ids %v, want %v", workers, want)
	}
	for id := range want {
		if !workers[id] {
			t.Errorf("worker ids %v, want %v", workers, want)
			break
		}
	}
}
