package agents

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// fakeCoord is a coordinator made of the protocol functions, one connection.
type fakeCoord struct {
	t    *testing.T
	nc   net.Conn
	wmu  sync.Mutex
	stop chan struct{} // closes the pinger
	wg   sync.WaitGroup
}

// listenFake accepts one agent and runs serve on it; wait waits for serve's end.
func listenFake(t *testing.T, tc *tls.Config, serve func(f *fakeCoord)) (addr string, wait func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		f := &fakeCoord{t: t, nc: nc, stop: make(chan struct{})}
		defer func() {
			f.stopPings()
			nc.Close()
		}()
		serve(f)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), func() { <-done }
}

func (f *fakeCoord) send(m *Msg) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_ = f.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	return WriteMsg(f.nc, m)
}

// read reads the next frame that is not a pong.
func (f *fakeCoord) read() (*Msg, error) {
	for {
		_ = f.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := ReadMsg(f.nc)
		if err != nil || m.Type != TypePong {
			return m, err
		}
	}
}

// hello reads the agent's hello and checks it.
func (f *fakeCoord) hello(token string) *Hello {
	m, err := f.read()
	if err != nil || m.Type != TypeHello || m.Hello == nil {
		f.t.Errorf("expected hello, got %+v, %v", m, err)
		return nil
	}
	if m.Hello.Protocol != ProtocolVersion || m.Hello.Token != token || m.Hello.PID == 0 || m.Hello.CPUs == 0 {
		f.t.Errorf("hello: %+v", m.Hello)
	}
	return m.Hello
}

// welcome welcomes the agent and syncs clocks like the coordinator: pings
// answered at once with the sample's times.
func (f *fakeCoord) welcome() bool {
	if f.send(&Msg{Type: TypeWelcome, Welcome: &Welcome{Protocol: ProtocolVersion, Index: 1, RunID: "test"}}) != nil {
		return false
	}
	for range 3 {
		t0 := time.Now().UnixNano()
		if f.send(&Msg{Type: TypePing, Ping: &Ping{T0: t0}}) != nil {
			return false
		}
		_ = f.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := ReadMsg(f.nc)
		if err != nil || m.Type != TypePong || m.Ping == nil || m.Ping.T0 != t0 || m.Ping.T1 < t0 || m.Ping.T2 < m.Ping.T1 {
			f.t.Errorf("pong: %+v %v", m, err)
			return false
		}
	}
	return true
}

// pings pings every 200 ms until stopPings.
func (f *fakeCoord) pings() {
	f.wg.Go(func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-f.stop:
				return
			case now := <-tk.C:
				if f.send(&Msg{Type: TypePing, Ping: &Ping{T0: now.UnixNano()}}) != nil {
					return
				}
			}
		}
	})
}

func (f *fakeCoord) stopPings() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.wg.Wait()
}

// planStart sends the plan, waits for ready and sends the start; it returns the
// start instant.
func (f *fakeCoord) planStart(p *Plan) (time.Time, bool) {
	if f.send(&Msg{Type: TypePlan, Plan: p}) != nil {
		return time.Time{}, false
	}
	m, err := f.read()
	if err != nil || m.Type != TypeReady {
		f.t.Errorf("expected ready, got %+v, %v", m, err)
		return time.Time{}, false
	}
	t0 := time.Now().Add(300 * time.Millisecond)
	return t0, f.send(&Msg{Type: TypeStart, Start: &StartAt{UnixNs: t0.UnixNano()}}) == nil
}

// collect hands every interval report to each until done, answers it with
// bye and returns it.
func (f *fakeCoord) collect(each func(*Report)) *Done {
	for {
		m, err := f.read()
		if err != nil {
			f.t.Errorf("read: %v", err)
			return nil
		}
		switch m.Type {
		case TypeInterval:
			each(m.Report)
		case TypeDone:
			f.stopPings()
			_ = f.send(&Msg{Type: TypeBye})
			return m.Done
		default:
			f.t.Errorf("unexpected %q", m.Type)
		}
	}
}

// noopPlan is agent share 1 of 2 of a noop run.
func noopPlan(rate float64, d time.Duration) *Plan {
	return &Plan{Interval: 250 * time.Millisecond, Share: loadgen.Share{Index: 1, Of: 2}, WorkerBase: 32767, Deadline: d + 30*time.Second,
		Specs: []PlanSpec{{Source: loadgen.WorkloadSource{Builtin: "noop"}, Phases: []loadgen.Phase{{Name: "steady", Rate: rate, Duration: d}}, Workers: 2, Seed: 3}}}
}

func runAgent(t *testing.T, o AgentOptions) (error, time.Duration) {
	t.Helper()
	if o.Token == "" {
		o.Token = "secret"
	}
	if o.Index == 0 {
		o.Index = -1
	}
	start := time.Now()
	err := RunAgent(context.Background(), o)
	return err, time.Since(start)
}

// A whole run against the fake: the agent sends its share's intervals on the
// grid of the start, the final one, done, and ends on bye.
func TestAgentRunsPlan(t *testing.T) {
	var frames []*results.IntervalFrame
	var reports []*Report
	var done *Done
	var t0 time.Time
	plan := noopPlan(400, time.Second)
	addr, wait := listenFake(t, nil, func(f *fakeCoord) {
		if f.hello("secret") == nil || !f.welcome() {
			return
		}
		f.pings()
		var ok bool
		if t0, ok = f.planStart(plan); !ok {
			return
		}
		done = f.collect(func(r *Report) {
			reports = append(reports, r)
			frames = append(frames, r.Frame)
		})
	})
	err, took := runAgent(t, AgentOptions{Coordinator: addr})
	wait()
	if err != nil {
		t.Fatalf("RunAgent: %v", err)
	}
	if took > 4*time.Second {
		t.Errorf("took %v", took)
	}
	if done == nil || len(frames) == 0 || !frames[len(frames)-1].Final {
		t.Fatalf("done %+v, %d frames, the last not final", done, len(frames))
	}
	// Share 1 of 2 of 400 ops: the odd-numbered ones.
	want := int64(loadgen.NewSchedule(t0, plan.Specs[0].Phases).Total() / 2)
	var ops int64
	for i, fr := range frames {
		for _, k := range fr.Keys {
			ops += k.OK
		}
		if !fr.Final && fr.Seq != int64(i+1) {
			t.Errorf("frame %d has seq %d", i, fr.Seq)
		}
		if d := time.Unix(0, fr.EndNs).Sub(t0) - time.Duration(fr.Seq)*plan.Interval; !fr.Final && (d < 0 || d > 100*time.Millisecond) {
			t.Errorf("frame %d ends %v off the start's grid", i, d)
		}
	}
	if ops != want {
		t.Errorf("the frames hold %d ops, the share is %d", ops, want)
	}
	sawLag := false
	for _, r := range reports {
		if r.Client.CPU < 0 || r.Client.CPU > 1 || r.Client.LagMaxNs < 0 || r.Client.Dropped != 0 {
			t.Errorf("client stats %+v", r.Client)
		}
		sawLag = sawLag || r.Client.LagMaxNs > 0
	}
	if !sawLag {
		t.Errorf("no interval reported a dispatcher lag")
	}
}

// The agent checks the coordinator's protocol, and a refusal (a wrong token)
// ends it with ErrRefused, naming the reason.
func TestAgentRefused(t *testing.T) {
	addr, wait := listenFake(t, nil, func(f *fakeCoord) {
		if h := f.hello("wrong"); h != nil {
			_ = f.send(&Msg{Type: TypeRefuse, Error: &WireError{Code: CodeToken, Message: "wrong token"}})
		}
	})
	err, took := runAgent(t, AgentOptions{Coordinator: addr, Token: "wrong"})
	wait()
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "wrong token") || took > 2*time.Second {
		t.Errorf("refused by token: %v after %v", err, took)
	}

	addr, wait = listenFake(t, nil, func(f *fakeCoord) {
		if f.hello("secret") != nil {
			_ = f.send(&Msg{Type: TypeWelcome, Welcome: &Welcome{Protocol: ProtocolVersion + 1}})
			_, _ = f.read() // the agent must close without going on
		}
	})
	err, _ = runAgent(t, AgentOptions{Coordinator: addr})
	wait()
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "coordinator speaks protocol 2, this agent 1") {
		t.Errorf("another protocol: %v", err)
	}
}

// A coordinator that goes away, or goes silent with the connection open, or
// cannot be reached: the agent stops its load and returns ErrCoordinatorGone in
// bounded time, leaving no goroutine behind.
func TestAgentCoordinatorGone(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, c := range []struct {
		name     string
		after    func(f *fakeCoord)
		min, max time.Duration
	}{
		{"closes", func(f *fakeCoord) { time.Sleep(time.Second); f.stopPings() }, 900 * time.Millisecond, 3 * time.Second},
		{"silent", func(f *fakeCoord) {
			time.Sleep(time.Second)
			f.stopPings()
			time.Sleep(6 * time.Second) // the connection stays open, nothing is sent
		}, time.Second + 2500*time.Millisecond, 5 * time.Second},
		// No ping ever after the start: the wait for the plan and the start
		// may be long, the run's silence is 3 s from the start.
		{"never pings", func(f *fakeCoord) {
			f.stopPings()
			time.Sleep(6 * time.Second)
		}, 2500 * time.Millisecond, 4500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			var t0 time.Time
			addr, _ := listenFake(t, nil, func(f *fakeCoord) {
				if f.hello("secret") == nil || !f.welcome() {
					return
				}
				if c.name != "never pings" {
					f.pings()
				}
				var ok bool
				if t0, ok = f.planStart(noopPlan(100, 20*time.Second)); ok {
					c.after(f)
				}
			})
			err, took := runAgent(t, AgentOptions{Coordinator: addr})
			if !errors.Is(err, ErrCoordinatorGone) {
				t.Fatalf("err %v", err)
			}
			// From the start (300 ms after the plan): it ran, then stopped itself.
			if took < c.min || took > c.max {
				t.Errorf("returned after %v (%v after the start), want %v-%v", took, time.Since(t0), c.min, c.max)
			}
		})
	}
	err, took := runAgent(t, AgentOptions{Coordinator: "127.0.0.1:1"})
	if !errors.Is(err, ErrCoordinatorGone) || took > 2*time.Second {
		t.Errorf("unreachable: %v after %v", err, took)
	}
	// The agents' goroutines are gone (the fakes' too, by their cleanups:
	// allow them a moment).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// The plan's deadline bounds the run even when the coordinator keeps pinging.
func TestAgentDeadline(t *testing.T) {
	plan := noopPlan(100, 20*time.Second)
	plan.Deadline = time.Second
	addr, wait := listenFake(t, nil, func(f *fakeCoord) {
		if f.hello("secret") == nil || !f.welcome() {
			return
		}
		f.pings()
		if _, ok := f.planStart(plan); ok {
			for {
				if _, err := f.read(); err != nil {
					return
				}
			}
		}
	})
	err, took := runAgent(t, AgentOptions{Coordinator: addr})
	wait()
	if !errors.Is(err, ErrCoordinatorGone) || !strings.Contains(err.Error(), "deadline") || took > 3*time.Second {
		t.Errorf("%v after %v", err, took)
	}
}

// A stop ends the run early: the final interval and done still come, and bye
// ends the agent without an error.
func TestAgentStop(t *testing.T) {
	var final bool
	var ops int64
	addr, wait := listenFake(t, nil, func(f *fakeCoord) {
		if f.hello("secret") == nil || !f.welcome() {
			return
		}
		f.pings()
		if _, ok := f.planStart(noopPlan(200, 20*time.Second)); !ok {
			return
		}
		time.AfterFunc(time.Second, func() { _ = f.send(&Msg{Type: TypeStop}) })
		f.collect(func(r *Report) {
			final = final || r.Frame.Final
			for _, k := range r.Frame.Keys {
				ops += k.OK
			}
		})
	})
	err, took := runAgent(t, AgentOptions{Coordinator: addr})
	wait()
	if err != nil || took > 3*time.Second || !final {
		t.Errorf("err %v after %v, final frame %v", err, took, final)
	}
	// ~0.7 s of 100 ops/s (its half of 200) ran.
	if ops < 40 || ops > 110 {
		t.Errorf("%d ops before the stop", ops)
	}
}

// A plan the agent cannot run is answered with error{plan}.
func TestAgentBadPlan(t *testing.T) {
	var got *WireError
	addr, wait := listenFake(t, nil, func(f *fakeCoord) {
		if f.hello("secret") == nil || !f.welcome() {
			return
		}
		p := noopPlan(100, time.Second)
		p.Specs[0].Source = loadgen.WorkloadSource{Builtin: "nope"}
		_ = f.send(&Msg{Type: TypePlan, Plan: p})
		if m, err := f.read(); err == nil && m.Type == TypeError {
			got = m.Error
		}
	})
	err, _ := runAgent(t, AgentOptions{Coordinator: addr})
	wait()
	if err == nil || got == nil || got.Code != CodePlan || !strings.Contains(got.Message, "nope") {
		t.Errorf("err %v, sent %+v", err, got)
	}
}

// With a fingerprint the agent speaks TLS and accepts only that certificate; off
// loopback it needs one.
func TestAgentTLSPin(t *testing.T) {
	cert, fp, err := NewRunCert([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fp string
		ok bool
	}{{fp, true}, {strings.Repeat("ab", 32), false}} {
		addr, wait := listenFake(t, ServerConfig(cert), func(f *fakeCoord) {
			if !c.ok {
				_, _ = ReadMsg(f.nc) // the handshake fails
				return
			}
			if f.hello("secret") != nil {
				_ = f.send(&Msg{Type: TypeRefuse, Error: &WireError{Code: CodeIndex, Message: "full"}})
			}
		})
		err, _ := runAgent(t, AgentOptions{Coordinator: addr, CertSHA256: c.fp})
		wait()
		// Through TLS the agent gets as far as the refusal; with the wrong pin
		// not even to the hello.
		if got := errors.Is(err, ErrRefused); got != c.ok || !c.ok && !strings.Contains(err.Error(), "does not match") {
			t.Errorf("fingerprint %s…: %v", c.fp[:8], err)
		}
	}
	if err := RunAgent(context.Background(), AgentOptions{Coordinator: "192.0.2.1:9", Token: "x"}); err == nil || !strings.Contains(err.Error(), "--cert-sha256") {
		t.Errorf("off loopback without a fingerprint: %v", err)
	}
}

// An agent sizes its processors for its share: rates and concurrency divided.
func TestShareSpecs(t *testing.T) {
	cfg := &loadgen.Config{Share: loadgen.Share{Index: 1, Of: 3}, Workloads: []loadgen.Spec{
		{Phases: []loadgen.Phase{{Rate: 30000}, {Rate: 3}}},
		{Closed: true, Phases: []loadgen.Phase{{Concurrency: 64}}},
	}}
	got := ShareSpecs(cfg)
	if got[0].Phases[0].Rate != 10000 || got[0].Phases[1].Rate != 1 || got[1].Phases[0].Concurrency != 22 {
		t.Errorf("share specs %+v", got)
	}
	if cfg.Workloads[0].Phases[0].Rate != 30000 {
		t.Errorf("the config's phases changed")
	}
}

// A small ledger travels with every interval that changed it; a larger one at
// most every ledgerEvery intervals, and always with the final one; one past
// maxLedgerBytes is left out and the report says so.
func TestReportLedgerEvery(t *testing.T) {
	reports := func(small, lim int, n int64) []*Report {
		oldSmall, oldLim := ledgerSmall, maxLedgerBytes
		ledgerSmall, maxLedgerBytes = small, lim
		defer func() { ledgerSmall, maxLedgerBytes = oldSmall, oldLim }()
		c := &agentConn{out: make(chan outItem, 100), gone: make(chan struct{})}
		ar := &agentRun{c: c, ledger: results.NewLedger(), started: true}
		ar.cpu.reset()
		for k := int64(1); k <= n; k++ {
			ar.ledger.Ack(1, k) // a change every interval
			ar.export(&results.IntervalFrame{Seq: k, Final: k == n})
			ar.report(0)
		}
		var out []*Report
		for len(c.out) > 0 {
			out = append(out, (<-c.out).msg.Report)
		}
		if int64(len(out)) != n {
			t.Fatalf("%d reports for %d intervals", len(out), n)
		}
		return out
	}
	for _, tc := range []struct {
		small int
		want  string
	}{{64 << 10, "[1 2 3 4 5 6 7 8 9 10 11 12 13]"}, {1, "[1 6 11 13]"}} {
		var with []int64
		rs := reports(tc.small, MaxFrame/2, 13)
		for _, r := range rs {
			if len(r.Ledger) > 0 {
				with = append(with, r.Frame.Seq)
			}
		}
		if fmt.Sprint(with) != tc.want {
			t.Errorf("small %d: ledger sent with intervals %v, want %s", tc.small, with, tc.want)
		}
		l, err := results.DecodeLedger(rs[12].Ledger)
		if err != nil {
			t.Fatal(err)
		}
		if a, _ := l.Count(); a != 13 {
			t.Errorf("small %d: the final ledger has %d acknowledged writes, want 13", tc.small, a)
		}
	}
	for _, r := range reports(64<<10, 10, 6) {
		if len(r.Ledger) > 0 || (r.LedgerOmitted > 0) != (r.Frame.Seq == 1 || r.Frame.Seq == 6) {
			t.Errorf("interval %d: ledger %q, omitted %d; want none sent, said omitted with the first and the final", r.Frame.Seq, r.Ledger, r.LedgerOmitted)
		}
	}
}
