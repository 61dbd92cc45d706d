package agents

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// goLauncher runs the agents as goroutines of the test: run(ctx, req, k) is agent
// k. Stop cancels them and waits.
type goLauncher struct {
	run func(ctx context.Context, req LaunchRequest, k int) error
}

func (goLauncher) Name() string { return "test" }

type goLaunched struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

func (l goLauncher) Launch(ctx context.Context, req LaunchRequest) (Launched, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g := &goLaunched{cancel: cancel}
	for k := range req.N {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := l.run(ctx, req, k); err != nil {
				g.mu.Lock()
				g.errs = append(g.errs, fmt.Errorf("agent %d: %w", k, err))
				g.mu.Unlock()
			}
		}()
	}
	return g, nil
}

func (g *goLaunched) Stop(context.Context) error {
	g.cancel()
	g.wg.Wait()
	return nil
}

// fake is an agent built from the protocol alone: it records a known load into a
// results.Recorder of its own with explicit times and sends the frames it
// exports, each when its interval has ended.
type fake struct {
	opsPerInterval int    // successes per interval
	intervals      int    // regular frames before the Close frame
	dieAfter       int    // >0: close the connection after this many frames, no done
	hangAfter      int    // >0: stay connected but silent after this many frames
	corruptAt      int    // >0: frame number corruptAt (0-based) is sent changed by corrupt; nothing after it
	wedgeAfter     int    // >0: send no frame after this many, but answer pings
	token          string // "": the run's
	protocol       int    // 0: ProtocolVersion
	index          int    // -1: assign; else k
	corrupt        func(fr *results.IntervalFrame)
}

// run is one fake agent's life; it returns the frames' successes it sent.
func (f fake) run(ctx context.Context, req LaunchRequest, k int) (sent int64, err error) {
	nc, err := net.DialTimeout("tcp", req.Coordinator, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	context.AfterFunc(ctx, func() { nc.Close() })
	tok, proto := req.Token, ProtocolVersion
	if f.token != "" {
		tok = f.token
	}
	if f.protocol != 0 {
		proto = f.protocol
	}
	if err := WriteMsg(nc, &Msg{Type: TypeHello, Hello: &Hello{Protocol: proto, Token: tok, Index: k, Host: "test", PID: os.Getpid(), CPUs: 1}}); err != nil {
		return 0, err
	}
	var wmu sync.Mutex
	send := func(m *Msg) error { wmu.Lock(); defer wmu.Unlock(); return WriteMsg(nc, m) }
	var plan *Plan
	var t0 time.Time
	silent := false
	for t0.IsZero() {
		m, err := ReadMsg(nc)
		if err != nil {
			return 0, err
		}
		switch m.Type {
		case TypeRefuse:
			return 0, m.Error
		case TypePing:
			now := time.Now().UnixNano()
			_ = send(&Msg{Type: TypePong, Ping: &Ping{T0: m.Ping.T0, T1: now, T2: now}})
		case TypePlan:
			plan = m.Plan
			_ = send(&Msg{Type: TypeReady})
		case TypeStart:
			t0 = time.Unix(0, m.Start.UnixNs)
		}
	}
	// The rest of the coordinator's talk: answer pings unless silent.
	go func() {
		for {
			m, err := ReadMsg(nc)
			if err != nil {
				return
			}
			wmu.Lock()
			quiet := silent
			wmu.Unlock()
			if m.Type == TypePing && !quiet {
				now := time.Now().UnixNano()
				_ = send(&Msg{Type: TypePong, Ping: &Ping{T0: m.Ping.T0, T1: now, T2: now}})
			}
		}
	}()
	var frames []*results.IntervalFrame
	rec, err := results.NewRecorder(results.Options{Start: t0, Interval: plan.Interval, GapThreshold: plan.GapThreshold,
		Export: func(fr *results.IntervalFrame) { frames = append(frames, fr) }})
	if err != nil {
		return 0, err
	}
	h := rec.Handle(results.Key{Workload: "fake", Op: "op", Node: 1, Access: results.Write})
	step := plan.Interval / time.Duration(f.opsPerInterval)
	for i := range f.intervals {
		start := t0.Add(time.Duration(i) * plan.Interval)
		for j := range f.opsPerInterval {
			// Agent k's ops interleave with the others': the union covers the interval evenly.
			at := start.Add(time.Duration(j)*step + time.Duration(k)*step/time.Duration(req.N))
			h.Record(at, at, at.Add(time.Millisecond), nil)
		}
		if _, err := rec.Tick(start.Add(plan.Interval)); err != nil {
			return 0, err
		}
	}
	if _, err := rec.Close(t0.Add(time.Duration(f.intervals)*plan.Interval + 5*time.Millisecond)); err != nil {
		return 0, err
	}
	for i, fr := range frames {
		// Each frame when its interval has ended, as an agent sends it.
		select {
		case <-time.After(time.Until(time.Unix(0, fr.EndNs))):
		case <-ctx.Done():
			return sent, ctx.Err()
		}
		if f.dieAfter > 0 && i == f.dieAfter {
			return sent, nil // the deferred Close drops the connection
		}
		if f.hangAfter > 0 && i == f.hangAfter {
			wmu.Lock()
			silent = true
			wmu.Unlock()
			<-ctx.Done()
			return sent, nil
		}
		if f.wedgeAfter > 0 && i == f.wedgeAfter {
			<-ctx.Done()
			return sent, nil
		}
		if f.corruptAt > 0 && i == f.corruptAt {
			bad := *fr
			bad.Keys = append([]results.KeyFrame(nil), fr.Keys...)
			f.corrupt(&bad)
			_ = send(&Msg{Type: TypeInterval, Report: &Report{Frame: &bad}})
			<-ctx.Done()
			return sent, nil
		}
		if err := send(&Msg{Type: TypeInterval, Report: &Report{Frame: fr}}); err != nil {
			return sent, err
		}
		for _, kf := range fr.Keys {
			sent += kf.OK
		}
	}
	if err := send(&Msg{Type: TypeDone, Done: &Done{}}); err != nil {
		return sent, err
	}
	for {
		if _, err := ReadMsg(nc); err != nil {
			return sent, nil // bye, then the coordinator closes
		}
	}
}

// noopConfig is a run of the noop workload (no database).
func noopConfig(t *testing.T, rate float64, d time.Duration) loadgen.Config {
	t.Helper()
	wl, err := loadgen.NewRegistry().Get("noop")
	if err != nil {
		t.Fatal(err)
	}
	return loadgen.Config{
		Workloads: []loadgen.Spec{{Workload: wl, Phases: []loadgen.Phase{{Name: "run", Duration: d, Rate: rate}}, Seed: 7}},
		Out:       t.TempDir(), Interval: 200 * time.Millisecond,
	}
}

// fakeRun is what runFakes saw.
type fakeRun struct {
	out  string
	res  *loadgen.Result
	rep  *RunReport
	sent []int64 // successes each fake sent
	errs []error // each fake's error
	err  error   // Run's
	took time.Duration
}

// runFakes runs the coordinator with fake agents.
func runFakes(t *testing.T, fakes []fake, o Options) fakeRun {
	t.Helper()
	cfg := noopConfig(t, 100, time.Second)
	fr := fakeRun{out: cfg.Out, sent: make([]int64, len(fakes)), errs: make([]error, len(fakes))}
	o.N = len(fakes)
	o.Launcher = goLauncher{run: func(ctx context.Context, req LaunchRequest, k int) error {
		fr.sent[k], fr.errs[k] = fakes[k].run(ctx, req, k)
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	fr.res, fr.rep, fr.err = Run(ctx, cfg, o)
	fr.took = time.Since(start)
	return fr
}

func sumOps(s *results.Summary) int64 {
	var n int64
	for _, o := range s.Ops {
		n += o.Count
	}
	return n
}

// hlogTags counts the interval lines of each tag in a run's .hlog file.
func hlogTags(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		if tag, ok := strings.CutPrefix(line, "Tag="); ok {
			tag, _, _ = strings.Cut(tag, ",")
			tags[tag]++
		}
	}
	return tags
}

func TestCoordinatorMergesFakeAgentsExactly(t *testing.T) {
	fakes := []fake{{opsPerInterval: 50, intervals: 5}, {opsPerInterval: 30, intervals: 5}, {opsPerInterval: 20, intervals: 5}}
	r := runFakes(t, fakes, Options{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := int64(5 * (50 + 30 + 20))
	for k, n := range r.sent {
		if n != int64(5*fakes[k].opsPerInterval) || r.errs[k] != nil {
			t.Fatalf("fake %d sent %d successes (%v), want %d", k, n, r.errs[k], 5*fakes[k].opsPerInterval)
		}
	}
	if got := sumOps(r.res.Summary); got != want {
		t.Errorf("merged summary has %d successes, want %d", got, want)
	}
	onDisk, err := results.ReadSummary(filepath.Join(r.out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sumOps(onDisk); got != want {
		t.Errorf("summary.json has %d successes, want %d", got, want)
	}
	// The readers skip the per-agent tags: no double count.
	ws, err := results.WindowStats(r.out, []results.Window{{Name: "all", Start: r.res.Summary.Start.Add(-time.Hour), End: r.res.Summary.End.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Op == "op" && w.Node == 1 && w.Count != want {
			t.Errorf("WindowStats: %d successes, want %d", w.Count, want)
		}
	}
	tags := hlogTags(t, filepath.Join(r.out, "fake.hlog"))
	for _, tag := range []string{"lat/op/n1", "a1.lat/op/n1", "a2.lat/op/n1", "a3.lat/op/n1"} {
		if tags[tag] == 0 {
			t.Errorf("fake.hlog has no %s line (tags %v)", tag, tags)
		}
	}
	for _, g := range append(r.res.Summary.Gaps, r.res.Summary.Cluster...) {
		if len(g.Gaps) > 0 {
			t.Errorf("gap in %+v: the agents' ops cover every interval", g)
		}
	}
	if r.rep.Degraded || len(r.rep.Agents) != 3 {
		t.Errorf("report: degraded %v, %d agents; want 3, not degraded", r.rep.Degraded, len(r.rep.Agents))
	}
	for i, a := range r.rep.Agents {
		if a.Index != i || a.Tag != fmt.Sprintf("a%d", i+1) || a.Lost || a.WorkerBase != i*(0xffff/3) || a.PID != os.Getpid() {
			t.Errorf("agent %d: %+v", i, a)
		}
	}
	if _, err := os.Stat(filepath.Join(r.out, "agents.json")); err != nil {
		t.Error(err)
	}
}

// An agent lost mid-run: the run goes on with the others, degraded; the lost
// agent's operations are those it reported, and no gap appears (the others
// serve the same streams).
func TestLostAgentFake(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  fake
	}{
		{"dies", fake{opsPerInterval: 40, intervals: 5, dieAfter: 2}},
		{"hangs", fake{opsPerInterval: 40, intervals: 5, hangAfter: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakes := []fake{{opsPerInterval: 40, intervals: 5}, tc.bad, {opsPerInterval: 40, intervals: 5}}
			r := runFakes(t, fakes, Options{LossTimeout: time.Second})
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.sent[1] != 2*40 {
				t.Fatalf("the lost fake sent %d successes, want %d", r.sent[1], 2*40)
			}
			want := r.sent[0] + r.sent[1] + r.sent[2]
			if want != 5*40+2*40+5*40 {
				t.Fatalf("fakes sent %v", r.sent)
			}
			if got := sumOps(r.res.Summary); got != want {
				t.Errorf("merged summary has %d successes, want %d", got, want)
			}
			if !r.rep.Degraded || !r.rep.Agents[1].Lost || r.rep.Agents[0].Lost || r.rep.Agents[2].Lost {
				t.Fatalf("report: %+v", r.rep)
			}
			a := r.rep.Agents[1]
			if d := a.LostAt.Sub(a.LastReport); d < 0 || d > 1500*time.Millisecond {
				t.Errorf("lost %v after its last report, want within the loss timeout (1s)", d)
			}
			for _, g := range append(r.res.Summary.Gaps, r.res.Summary.Cluster...) {
				if len(g.Gaps) > 0 {
					t.Errorf("gap in %+v: the other agents served the stream", g)
				}
			}
		})
	}
}

// runOneBad runs two good fakes around bad (40 successes in each of 5
// intervals, bad sending badSent of them) within 25 s, and checks that bad
// alone was lost and the merged totals are exactly what the fakes sent; it
// returns the lost agent's reason.
func runOneBad(t *testing.T, bad fake, badSent int64, o Options) (string, fakeRun) {
	t.Helper()
	fakes := []fake{{opsPerInterval: 40, intervals: 5}, bad, {opsPerInterval: 40, intervals: 5}}
	done := make(chan fakeRun, 1)
	go func() { done <- runFakes(t, fakes, o) }()
	var r fakeRun
	select {
	case r = <-done:
	case <-time.After(25 * time.Second):
		t.Fatal("Run still merging 25 s on")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.sent[0] != 5*40 || r.sent[1] != badSent || r.sent[2] != 5*40 {
		t.Fatalf("fakes sent %v", r.sent)
	}
	if got, want := sumOps(r.res.Summary), r.sent[0]+r.sent[1]+r.sent[2]; got != want {
		t.Errorf("merged summary has %d successes, want %d", got, want)
	}
	if !r.rep.Degraded || !r.rep.Agents[1].Lost || r.rep.Agents[0].Lost || r.rep.Agents[2].Lost {
		t.Fatalf("report: %+v", r.rep)
	}
	return r.rep.Agents[1].LostReason, r
}

// One agent's corrupt frame costs that agent alone: it is lost, the others'
// frames of the interval are merged, and the totals stay exact.
func TestBadFrameLosesOnlyItsAgent(t *testing.T) {
	bad := fake{opsPerInterval: 40, intervals: 5, corruptAt: 2, corrupt: func(fr *results.IntervalFrame) {
		fr.Keys[0].Lat = "bm90IGEgaGlzdG9ncmFt" // base64, not a histogram
	}}
	reason, _ := runOneBad(t, bad, 2*40, Options{LossTimeout: time.Second})
	if !strings.Contains(reason, "bad interval frame") || !strings.Contains(reason, "lat histogram") {
		t.Errorf("lost reason %q, want the bad histogram named", reason)
	}
}

// An agent's interval Seq must not go back and must stay within the run's
// time: a huge Seq (which would make the merge tick empty intervals up to it)
// or one going back loses the agent; the others' totals stay exact.
func TestBadSeqLosesItsAgent(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  int64
	}{{"huge", 1e9}, {"back", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			bad := fake{opsPerInterval: 40, intervals: 5, corruptAt: 2, corrupt: func(fr *results.IntervalFrame) { fr.Seq = tc.seq }}
			reason, r := runOneBad(t, bad, 2*40, Options{LossTimeout: time.Second})
			if !strings.Contains(reason, "out of order") {
				t.Errorf("lost reason %q", reason)
			}
			if d := r.res.Summary.End.Sub(r.res.Summary.Start); d > 2*time.Second {
				t.Errorf("the merged run lasts %v, want about 1 s", d)
			}
		})
	}
}

// An agent whose load is stuck while its reader still answers pings is lost
// once its next interval is overdue by the loss timeout plus an interval; the
// others' data is merged meanwhile.
func TestWedgedAgentLost(t *testing.T) {
	bad := fake{opsPerInterval: 40, intervals: 5, wedgeAfter: 2}
	reason, r := runOneBad(t, bad, 2*40, Options{LossTimeout: time.Second})
	if !strings.Contains(reason, "overdue") {
		t.Errorf("lost reason %q", reason)
	}
	// Its last frame (interval 2) came at about t0+0.4 s, interval 3 was due at
	// t0+0.6 s: lost 1.2 s later, checked every 250 ms.
	a := r.rep.Agents[1]
	if d := a.LostAt.Sub(a.LastReport); d < time.Second || d > 2*time.Second {
		t.Errorf("lost %v after its last report, want about 1.4 s", d)
	}
}

// A hello with another protocol, or a wrong token, is refused before anything
// else is sent; so is an index out of range or taken.
func TestRefuse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     fake
		index int
		code  string
	}{
		{"protocol", fake{protocol: 2}, 0, CodeProtocol},
		{"token", fake{token: strings.Repeat("0", 64)}, 0, CodeToken},
		{"index", fake{}, 5, CodeIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := noopConfig(t, 100, time.Second)
			var got error
			o := Options{N: 1, JoinTimeout: time.Second, Launcher: goLauncher{run: func(ctx context.Context, req LaunchRequest, k int) error {
				_, got = tc.f.run(ctx, req, tc.index)
				return nil
			}}}
			_, _, err := Run(context.Background(), cfg, o)
			if err == nil || !strings.Contains(err.Error(), "0 of 1 agents joined") {
				t.Errorf("Run: %v, want no agent joined", err)
			}
			var we *WireError
			if !errors.As(got, &we) || we.Code != tc.code {
				t.Errorf("agent got %v, want a refusal %q", got, tc.code)
			}
		})
	}
}

// Off loopback the coordinator speaks TLS: an agent pinning another certificate
// fails the handshake; the right pin gets a welcome.
func TestTLSPin(t *testing.T) {
	cfg := noopConfig(t, 100, time.Second)
	var wrong, right error
	var fp string
	o := Options{N: 1, JoinTimeout: 2 * time.Second, forceTLS: true, Launcher: goLauncher{run: func(ctx context.Context, req LaunchRequest, k int) error {
		fp = req.CertSHA256
		dial := func(pin string) error {
			conf, err := PinnedConfig(pin)
			if err != nil {
				return err
			}
			nc, err := tls.Dial("tcp", req.Coordinator, conf)
			if err != nil {
				return err
			}
			defer nc.Close()
			if err := WriteMsg(nc, &Msg{Type: TypeHello, Hello: &Hello{Protocol: ProtocolVersion, Token: req.Token, Index: 0}}); err != nil {
				return err
			}
			m, err := ReadMsg(nc)
			if err != nil {
				return err
			}
			if m.Type != TypeWelcome {
				return fmt.Errorf("got %q", m.Type)
			}
			return nil
		}
		wrong = dial(strings.Repeat("ab", 32))
		right = dial(req.CertSHA256)
		return nil
	}}}
	_, _, _ = Run(context.Background(), cfg, o)
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q", fp)
	}
	if wrong == nil || !strings.Contains(wrong.Error(), "does not match") {
		t.Errorf("wrong pin: %v, want a failed handshake", wrong)
	}
	if right != nil {
		t.Errorf("right pin: %v", right)
	}
}

func TestPlans(t *testing.T) {
	cfg := noopConfig(t, 100, time.Second)
	cfg.Workloads[0].Workers = 4
	plans, err := Plans(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range plans {
		s := p.Specs[0]
		if p.Share != (loadgen.Share{Index: k, Of: 3}) || p.WorkerBase != k*21845 || s.Seed != 7+uint64(k)*0x9E3779B97F4A7C15 || s.Source.Builtin != "noop" {
			t.Errorf("plan %d: %+v", k, p)
		}
		if p.Deadline != time.Second+10*time.Second+30*time.Second {
			t.Errorf("plan %d: deadline %v", k, p.Deadline)
		}
	}
	bad := cfg
	bad.Workloads = []loadgen.Spec{cfg.Workloads[0]}
	wl := *cfg.Workloads[0].Workload
	wl.Source = nil
	bad.Workloads[0].Workload = &wl
	bad.Workloads[0].Workers = 4000
	bad.GapThreshold = time.Millisecond
	_, err = Plans(bad, 20)
	var ue *usage.Error
	if !errors.As(err, &ue) {
		t.Fatalf("Plans: %v, want a usage error", err)
	}
	for _, want := range []string{"no source", "ids for", "at least 10ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Plans: %v: no %q", err, want)
		}
	}
	if _, err := Plans(cfg, 0); err == nil {
		t.Error("Plans(0): no error")
	}
}

// agentLauncher runs real agents (RunAgent) as goroutines; opts(k) adjusts agent
// k's options.
func agentLauncher(opts func(k int, o *AgentOptions)) goLauncher {
	return goLauncher{run: func(ctx context.Context, req LaunchRequest, k int) error {
		o := AgentOptions{Coordinator: req.Coordinator, Token: req.Token, CertSHA256: req.CertSHA256, Index: k}
		if opts != nil {
			opts(k, &o)
		}
		return RunAgent(ctx, o)
	}}
}

// agentCounts sums the successes of each agent's histograms (tags a<k>.lat/...)
// in an interval log.
func agentCounts(t *testing.T, path string) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Tag=")
		if !ok {
			continue
		}
		f := strings.SplitN(rest, ",", 5)
		agent, kind, ok := strings.Cut(f[0], ".")
		if !ok || !strings.HasPrefix(kind, "lat/") {
			continue
		}
		p, err := hdr.DecodePacked([]byte(f[4]))
		if err != nil {
			t.Fatal(err)
		}
		out[agent] += p.TotalCount()
	}
	return out
}

// Three real agents share a noop schedule: the merged run has exactly the
// schedule's operations, each agent its share.
func TestAgentsShareTheSchedule(t *testing.T) {
	cfg := noopConfig(t, 300, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, rep, err := Run(ctx, cfg, Options{N: 3, Launcher: agentLauncher(nil)})
	if err != nil {
		t.Fatal(err)
	}
	total := loadgen.NewSchedule(time.Now(), cfg.Workloads[0].Phases).Total()
	if total != 600 {
		t.Fatalf("schedule of %d ops", total)
	}
	if got := sumOps(res.Summary); got != total {
		t.Errorf("merged summary: %d ops, want the schedule's %d", got, total)
	}
	counts := agentCounts(t, filepath.Join(cfg.Out, "noop.hlog"))
	for k := range 3 {
		if got := counts[fmt.Sprintf("a%d", k+1)]; got != total/3 {
			t.Errorf("agent a%d: %d ops, want its share %d (all: %v)", k+1, got, total/3, counts)
		}
	}
	ws, err := results.WindowStats(cfg.Out, []results.Window{{Name: "all", Start: res.Summary.Start.Add(-time.Hour), End: res.Summary.End.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Op == "noop" && w.Node == 0 && w.Count != total {
			t.Errorf("WindowStats: %d ops, want %d", w.Count, total)
		}
	}
	for _, g := range append(res.Summary.Gaps, res.Summary.Cluster...) {
		if len(g.Gaps) > 0 {
			t.Errorf("gap in %+v", g)
		}
	}
	if rep.Degraded {
		t.Errorf("degraded: %+v", rep)
	}
}

// A real agent that dies (or hangs) mid-run is lost; the others' shares are
// whole, its own ends at its last report, and no gap appears.
func TestLostAgent(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(o *AgentOptions)
	}{
		{"dies", func(o *AgentOptions) { o.dieAfter = 1500 * time.Millisecond }},
		{"hangs", func(o *AgentOptions) { o.hangAfter = 1500 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := noopConfig(t, 300, 3*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, rep, err := Run(ctx, cfg, Options{N: 3, Launcher: agentLauncher(func(k int, o *AgentOptions) {
				if k == 1 {
					tc.set(o)
				}
			})})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Degraded || !rep.Agents[1].Lost || rep.Agents[0].Lost || rep.Agents[2].Lost {
				t.Fatalf("report: %+v", rep.Agents)
			}
			a := rep.Agents[1]
			if d := a.LostAt.Sub(a.LastReport); d < 0 || d > 3500*time.Millisecond {
				t.Errorf("lost %v after its last report, want within 3.5 s", d)
			}
			counts := agentCounts(t, filepath.Join(cfg.Out, "noop.hlog"))
			if counts["a1"] != 300 || counts["a3"] != 300 {
				t.Errorf("the live agents' shares: %v, want 300 each", counts)
			}
			// Agent a2 reported about 1.4 s of its 3 s share (ticks every 200 ms).
			if n := counts["a2"]; n < 100 || n > 160 {
				t.Errorf("the lost agent reported %d ops, want those of its first ~1.4 s", n)
			}
			if got, want := sumOps(res.Summary), counts["a1"]+counts["a2"]+counts["a3"]; got != want {
				t.Errorf("merged: %d ops, agents: %d", got, want)
			}
			for _, g := range append(res.Summary.Gaps, res.Summary.Cluster...) {
				if len(g.Gaps) > 0 {
					t.Errorf("gap in %+v: the others served the stream", g)
				}
			}
		})
	}
}

// A cancel stops the agents over the protocol: Run returns soon with what was
// measured, not degraded.
func TestCancelStopsAgents(t *testing.T) {
	cfg := noopConfig(t, 200, 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Progress = func(p loadgen.Progress) {
		if p.Elapsed >= time.Second {
			cancel()
		}
	}
	start := time.Now()
	res, rep, err := Run(ctx, cfg, Options{N: 2, Launcher: agentLauncher(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %v after a cancel at 1 s", took)
	}
	if n := sumOps(res.Summary); n < 150 || n > 600 {
		t.Errorf("%d ops in about 1 s at 200/s", n)
	}
	if rep.Degraded {
		t.Errorf("a stopped run is not degraded: %+v", rep.Agents)
	}
}

// A plan an agent cannot run (a workload it cannot build) ends the run before
// the start; it is the agents' environment, not the user's input.
func TestAgentRefusesPlan(t *testing.T) {
	cfg := noopConfig(t, 100, time.Second)
	wl := *cfg.Workloads[0].Workload
	wl.Source = &loadgen.WorkloadSource{Builtin: "no-such-workload"}
	cfg.Workloads[0].Workload = &wl
	_, _, err := Run(context.Background(), cfg, Options{N: 2, Launcher: agentLauncher(nil)})
	var ue *usage.Error
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot run its plan") || !strings.Contains(err.Error(), "no-such-workload") {
		t.Errorf("Run: %v, want an error naming the agent and the workload, not a usage error", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, "summary.json")); err == nil {
		t.Error("a run that never started wrote summary.json")
	}
}

// A local agent process that exits before joining ends the wait at once.
func TestLocalAgentExitsBeforeJoining(t *testing.T) {
	cfg := noopConfig(t, 100, time.Second)
	start := time.Now()
	_, _, err := Run(context.Background(), cfg, Options{N: 2, Launcher: Local{Exe: "/bin/false"}})
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("Run: %v, want an agent's exit", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}
