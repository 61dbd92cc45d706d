package agents

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// Options configure a distributed run (Run).
type Options struct {
	N        int      // agents
	Launcher Launcher // starts them
	// Listen is the coordinator's address ("" = 127.0.0.1:0). Off loopback the
	// connections are TLS 1.3 with a certificate made for the run.
	Listen string
	// JoinTimeout bounds the wait for every agent to join, and then for every one
	// to be ready (default 60 s).
	JoinTimeout time.Duration
	// LossTimeout is how long an agent may stay silent before it is lost (default
	// 3 s; agents answer the coordinator's pings every 500 ms).
	LossTimeout time.Duration
	// Stderr gets the coordinator's log lines (joins, losses); nil: none.
	Stderr io.Writer

	forceTLS bool // tests: TLS on loopback too
}

// RunReport is how the agents of a run fared; Run writes it to agents.json in the run
// directory.
type RunReport struct {
	Protocol int    `json:"protocol"`
	Launcher string `json:"launcher"`
	// Degraded: at least one agent was lost, and the run went on without its share.
	Degraded bool          `json:"degraded"`
	Agents   []AgentReport `json:"agents"`
}

// AgentReport is one agent of a run.
type AgentReport struct {
	Index int    `json:"index"` // 0-based, as the agent's --index
	Tag   string `json:"tag"`   // its tag in the run's .hlog files: a<Index+1>
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	// OffsetNs is the agent's clock minus the coordinator's (from the ping
	// exchange of least round trip, RTTNs); agents' times are moved by it.
	OffsetNs   int64      `json:"offset_ns"`
	RTTNs      int64      `json:"rtt_ns"`
	WorkerBase int        `json:"worker_base"` // its writer ids start above this
	WorkerIDs  int        `json:"worker_ids"`  // and number at most this many
	Joined     time.Time  `json:"joined"`
	LastReport time.Time  `json:"last_report,omitzero"`
	Lost       bool       `json:"lost"`
	LostAt     *time.Time `json:"lost_at,omitempty"`
	LostReason string     `json:"lost_reason,omitempty"`
	// ClientSaturated: the agent's own machine held the load back in some
	// interval (its dispatcher lagged past the late threshold, or its CPUs were
	// 90 % busy two intervals running); SaturatedIntervals counts them.
	ClientSaturated    bool    `json:"client_saturated"`
	SaturatedIntervals int     `json:"saturated_intervals"`
	MaxLagNs           int64   `json:"max_lag_ns"`
	MaxCPU             float64 `json:"max_cpu"`
	Acked              int64   `json:"acked"`
	Unknown            int64   `json:"unknown"`
	Err                string  `json:"error,omitempty"`
}

const (
	pingEvery  = 500 * time.Millisecond
	clockPings = 8
	// helloTimeout bounds a connection's wait for its hello (and TLS handshake).
	helloTimeout = 10 * time.Second
)

// Run drives cfg with o.N agents started by o.Launcher, and records their merged
// results in cfg.Out as loadgen.Run would (the same files and formats; per-agent
// histograms are tagged a<k> in the .hlog files) plus agents.json. Observer and
// Progress of cfg are called as loadgen.Run calls them.
//
// An agent that stops reporting for o.LossTimeout is lost: the run goes on with
// the others, its operations end at its last report, and the RunReport says
// Degraded. Cancelling ctx stops the agents and returns what was measured.
func Run(ctx context.Context, cfg loadgen.Config, o Options) (*loadgen.Result, *RunReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if cfg.Out == "" {
		return nil, nil, usage.Errorf("--out", "a run with agents needs a run directory")
	}
	if o.Launcher == nil {
		return nil, nil, usage.Errorf("--launcher", "no launcher")
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = 60 * time.Second
	}
	if o.LossTimeout == 0 {
		o.LossTimeout = 3 * time.Second
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	plans, err := Plans(cfg, o.N)
	if err != nil {
		return nil, nil, err
	}
	c := &coord{cfg: cfg, o: o, plans: plans, events: make(chan event, 256), quit: make(chan struct{}),
		report: &RunReport{Protocol: ProtocolVersion, Launcher: o.Launcher.Name()}}
	if err := c.listen(); err != nil {
		return nil, nil, err
	}
	launched, err := o.Launcher.Launch(ctx, LaunchRequest{N: o.N, Coordinator: c.addr, Token: c.token, CertSHA256: c.fp})
	if err != nil {
		c.shutdown()
		return nil, nil, err
	}
	defer func() {
		// Connections first: an agent still running sees its coordinator gone
		// and stops by itself; then the launcher ends what is left.
		c.shutdown()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := launched.Stop(sctx); err != nil {
			c.logf("stopping agents: %v", err)
		}
	}()
	if err := c.join(ctx, launched); err != nil {
		return nil, c.report, err
	}
	if err := c.prepare(ctx); err != nil {
		return nil, c.report, err
	}
	res, err := c.run(ctx)
	return res, c.report, errors.Join(err, c.writeReport())
}

// coord is one distributed run.
type coord struct {
	cfg   loadgen.Config
	o     Options
	plans []Plan

	ln       net.Listener
	addr     string // for the agents
	token    string
	fp       string // the certificate's fingerprint; "": plain TCP
	runID    string
	agents   []*agent // by index, once joined
	joinMu   sync.Mutex
	taken    []bool // indexes given out
	events   chan event
	quit     chan struct{} // closed by shutdown: goroutines stop
	wg       sync.WaitGroup
	shutOnce sync.Once
	report   *RunReport

	rec      *results.Recorder
	t0       time.Time
	lastTick time.Time
	errs     []error
	ledger   *results.Ledger
}

// agent is the coordinator's side of one agent.
type agent struct {
	idx   int
	tag   string
	nc    net.Conn
	wmu   sync.Mutex
	hello Hello
	rep   *AgentReport
	off   time.Duration

	// Main loop only:
	ready    bool
	queue    []*results.IntervalFrame // regular frames not yet ingested
	final    *results.IntervalFrame   // the Close frame, once received
	lastEnd  time.Time                // end of its last frame, coordinator clock
	lastSeq  int64                    // Seq of its last regular frame
	done     bool
	lost     bool
	ledger   json.RawMessage // its latest ledger
	ledgerUp bool            // ledger changed since the last write
	bigLed   bool            // its ledger became too large to send
	cpuHigh  int             // consecutive intervals with its CPUs 90 % busy
	lagNs    int64           // the interval's dispatcher lag, for Progress
}

type event struct {
	a   *agent
	m   *Msg
	err error
	at  time.Time
}

func (c *coord) logf(format string, args ...any) {
	if c.o.Stderr != nil {
		fmt.Fprintf(c.o.Stderr, "%s agents: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// listen opens the coordinator's socket: TLS with a run certificate off loopback.
func (c *coord) listen() error {
	c.token, c.runID = randomHex(32), randomHex(8)
	c.taken = make([]bool, c.o.N)
	c.agents = make([]*agent, c.o.N)
	ln, err := net.Listen("tcp", c.o.Listen)
	if err != nil {
		return usage.Errorf("agents.Options.Listen", "%v", err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // the local launcher's agents reach it there
	}
	c.addr = net.JoinHostPort(host, port)
	if NeedsTLS(ln.Addr().String()) || c.o.forceTLS {
		hosts := []string{host}
		if h, err := os.Hostname(); err == nil {
			hosts = append(hosts, h)
		}
		cert, fp, err := NewRunCert(hosts)
		if err != nil {
			ln.Close()
			return fmt.Errorf("agents: run certificate: %w", err)
		}
		c.fp = fp
		ln = tls.NewListener(ln, ServerConfig(cert))
	}
	c.ln = ln
	return nil
}

// shutdown stops every goroutine of the run and closes the connections.
func (c *coord) shutdown() {
	c.shutOnce.Do(func() {
		close(c.quit)
		if c.ln != nil {
			c.ln.Close()
		}
		c.joinMu.Lock()
		for _, a := range c.agents {
			if a != nil {
				a.nc.Close()
			}
		}
		c.joinMu.Unlock()
	})
	c.wg.Wait()
}

func (a *agent) send(m *Msg, timeout time.Duration) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	_ = a.nc.SetWriteDeadline(time.Now().Add(timeout))
	return WriteMsg(a.nc, m)
}

func refuse(nc net.Conn, code, format string, args ...any) error {
	e := &WireError{Code: code, Message: fmt.Sprintf(format, args...)}
	_ = nc.SetWriteDeadline(time.Now().Add(helloTimeout))
	_ = WriteMsg(nc, &Msg{Type: TypeRefuse, Error: e})
	nc.Close()
	return e
}

// join accepts the agents until all N have joined (handshake and clock sync).
func (c *coord) join(ctx context.Context, launched Launched) error {
	joined := make(chan *agent)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			nc, err := c.ln.Accept()
			if err != nil {
				return
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				a, err := c.handshake(nc)
				if err != nil {
					c.logf("refused %s: %v", nc.RemoteAddr(), err)
					return
				}
				select {
				case joined <- a:
				case <-c.quit:
					a.nc.Close()
				}
			}()
		}
	}()
	var exited <-chan error
	if x, ok := launched.(interface{ Exited() <-chan error }); ok {
		exited = x.Exited()
	}
	timeout := time.NewTimer(c.o.JoinTimeout)
	defer timeout.Stop()
	for n := 0; n < c.o.N; {
		select {
		case a := <-joined:
			c.joinMu.Lock()
			c.agents[a.idx] = a
			c.joinMu.Unlock()
			n++
			c.logf("agent %s joined from %s (pid %d), clock offset %v, round trip %v", a.tag, a.hello.Host, a.hello.PID, a.off, time.Duration(a.rep.RTTNs))
		case err := <-exited:
			return fmt.Errorf("agents: %w before joining", err)
		case <-timeout.C:
			return fmt.Errorf("agents: %d of %d agents joined in %v", n, c.o.N, c.o.JoinTimeout)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	c.ln.Close() // no more agents
	c.report.Agents = make([]AgentReport, len(c.agents))
	for i, a := range c.agents {
		c.report.Agents[i] = *a.rep
		a.rep = &c.report.Agents[i]
	}
	return nil
}

// handshake takes an agent's hello, checks its protocol and token before anything
// else is sent, welcomes it and measures its clock offset.
func (c *coord) handshake(nc net.Conn) (*agent, error) {
	_ = nc.SetDeadline(time.Now().Add(helloTimeout))
	m, err := ReadMsg(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if m.Type != TypeHello || m.Hello == nil {
		return nil, refuse(nc, CodeProtocol, "expected hello, got %q", m.Type)
	}
	h := *m.Hello
	if h.Protocol != ProtocolVersion {
		return nil, refuse(nc, CodeProtocol, "coordinator speaks protocol %d, this agent %d", ProtocolVersion, h.Protocol)
	}
	if subtle.ConstantTimeCompare([]byte(h.Token), []byte(c.token)) != 1 {
		return nil, refuse(nc, CodeToken, "wrong token")
	}
	c.joinMu.Lock()
	idx := h.Index
	switch {
	case idx == -1:
		idx = slices.Index(c.taken, false)
	case idx < 0 || idx >= c.o.N:
		c.joinMu.Unlock()
		return nil, refuse(nc, CodeIndex, "index %d: this run has agents 0-%d", h.Index, c.o.N-1)
	case c.taken[idx]:
		idx = -2
	}
	if idx < 0 {
		c.joinMu.Unlock()
		return nil, refuse(nc, CodeIndex, "index %d: taken, or the run is full", h.Index)
	}
	c.taken[idx] = true
	c.joinMu.Unlock()
	a := &agent{idx: idx, tag: "a" + strconv.Itoa(idx+1), nc: nc, hello: h}
	release := func(err error) (*agent, error) {
		nc.Close()
		c.joinMu.Lock()
		c.taken[idx] = false
		c.joinMu.Unlock()
		return nil, err
	}
	if err := WriteMsg(nc, &Msg{Type: TypeWelcome, Welcome: &Welcome{Protocol: ProtocolVersion, Index: idx, RunID: c.runID}}); err != nil {
		return release(err)
	}
	// Clock: the sample of least round trip gives the offset
	// ((T1-T0)+(T2-T3))/2, agent minus coordinator.
	best := time.Duration(-1)
	for range clockPings {
		_ = nc.SetDeadline(time.Now().Add(c.o.LossTimeout))
		t0 := time.Now()
		if err := WriteMsg(nc, &Msg{Type: TypePing, Ping: &Ping{T0: t0.UnixNano()}}); err != nil {
			return release(err)
		}
		m, err := ReadMsg(nc)
		if err != nil {
			return release(fmt.Errorf("clock sync: %w", err))
		}
		t3 := time.Now()
		if m.Type != TypePong || m.Ping == nil || m.Ping.T0 != t0.UnixNano() {
			return release(fmt.Errorf("clock sync: expected pong, got %q", m.Type))
		}
		p := m.Ping
		rtt := t3.Sub(t0) - time.Duration(p.T2-p.T1)
		if best < 0 || rtt < best {
			best = rtt
			a.off = time.Duration(((p.T1 - p.T0) + (p.T2 - t3.UnixNano())) / 2)
		}
	}
	_ = nc.SetDeadline(time.Time{})
	plan := c.plans[idx]
	a.rep = &AgentReport{Index: idx, Tag: a.tag, Host: h.Host, PID: h.PID, OffsetNs: int64(a.off), RTTNs: int64(best),
		WorkerBase: plan.WorkerBase, WorkerIDs: idSpace / c.o.N, Joined: time.Now()}
	return a, nil
}

// prepare starts each agent's reader and pinger, sends the plans and waits until
// every agent is ready.
func (c *coord) prepare(ctx context.Context) error {
	for _, a := range c.agents {
		c.wg.Add(2)
		go c.read(a)
		go c.ping(a)
	}
	for _, a := range c.agents {
		p := c.plans[a.idx]
		if err := a.send(&Msg{Type: TypePlan, Plan: &p}, c.o.LossTimeout); err != nil {
			return fmt.Errorf("agents: plan to %s: %w", a.tag, err)
		}
	}
	timeout := time.NewTimer(c.o.JoinTimeout)
	defer timeout.Stop()
	for n := 0; n < len(c.agents); {
		select {
		case ev := <-c.events:
			switch {
			case ev.err != nil:
				c.stopAll()
				return fmt.Errorf("agents: %s lost before the start: %w", ev.a.tag, ev.err)
			case ev.m.Type == TypeReady && !ev.a.ready:
				ev.a.ready = true
				n++
			case ev.m.Type == TypeError && ev.m.Error != nil:
				c.stopAll()
				// Not a usage error: the coordinator checked the input; an agent
				// that cannot run its plan (a pool it cannot open, a workload it
				// builds otherwise) is the agents' environment.
				return fmt.Errorf("agents: %s cannot run its plan: %s", ev.a.tag, ev.m.Error.Message)
			}
		case <-timeout.C:
			c.stopAll()
			return fmt.Errorf("agents: %d of %d agents ready in %v", n, len(c.agents), c.o.JoinTimeout)
		case <-ctx.Done():
			c.stopAll()
			return context.Cause(ctx)
		}
	}
	return nil
}

// read forwards an agent's frames to the main loop, each read bounded by the loss
// timeout (pongs keep a healthy agent talking).
func (c *coord) read(a *agent) {
	defer c.wg.Done()
	for {
		_ = a.nc.SetReadDeadline(time.Now().Add(c.o.LossTimeout))
		m, err := ReadMsg(a.nc)
		select {
		case c.events <- event{a: a, m: m, err: err, at: time.Now()}:
		case <-c.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// ping sends the heartbeat.
func (c *coord) ping(a *agent) {
	defer c.wg.Done()
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case now := <-t.C:
			if a.send(&Msg{Type: TypePing, Ping: &Ping{T0: now.UnixNano()}}, c.o.LossTimeout) != nil {
				return // the reader notices too
			}
		}
	}
}

func (c *coord) stopAll() {
	for _, a := range c.agents {
		if !a.lost && !a.done {
			_ = a.send(&Msg{Type: TypeStop}, time.Second)
		}
	}
}

// run starts the agents at one instant and merges their intervals until every
// agent is done or lost.
func (c *coord) run(ctx context.Context) (*loadgen.Result, error) {
	var maxRTT time.Duration
	for _, a := range c.agents {
		maxRTT = max(maxRTT, time.Duration(a.rep.RTTNs))
	}
	c.t0 = time.Now().Add(max(500*time.Millisecond, 4*maxRTT))
	cfg := c.cfg
	rec, err := results.NewRecorder(results.Options{Dir: cfg.Out, Start: c.t0, Interval: cfg.Interval,
		GapThreshold: cfg.GapThreshold, LateThreshold: cfg.LateThreshold, Observer: cfg.Observer})
	if err != nil {
		c.stopAll()
		return nil, err
	}
	c.rec, c.ledger, c.lastTick = rec, results.NewLedger(), c.t0
	// All at once: t0 is fixed, and one slow connection must not delay the
	// others' start.
	startErrs := make([]error, len(c.agents))
	var sends sync.WaitGroup
	for i, a := range c.agents {
		sends.Go(func() {
			startErrs[i] = a.send(&Msg{Type: TypeStart, Start: &StartAt{UnixNs: c.t0.UnixNano()}}, c.o.LossTimeout)
		})
	}
	sends.Wait()
	for i, err := range startErrs {
		if err != nil {
			c.lose(c.agents[i], time.Now(), fmt.Sprintf("start: %v", err))
		}
	}
	scheds := make([]*loadgen.Schedule, len(cfg.Workloads))
	var total time.Duration
	var drain time.Duration
	for i, s := range cfg.Workloads {
		scheds[i] = loadgen.NewSchedule(c.t0, s.Phases)
		total = max(total, scheds[i].End().Sub(c.t0))
		op := s.OpTimeout
		if op == 0 {
			op = 10 * time.Second
		}
		drain = max(drain, op)
	}
	phase := func(t time.Time) string {
		for i, s := range scheds {
			if p := s.PhaseAt(t); p >= 0 {
				return cfg.Workloads[i].Phases[p].Name
			}
		}
		return "draining"
	}

	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	done := ctx.Done()
	var stopBy time.Time // after a cancel: when agents still running are given up
	for k := int64(1); ; {
		for c.canTick(k) {
			at := c.t0.Add(time.Duration(k) * cfg.Interval)
			if err := c.ingest(k, at); err != nil {
				c.errs = append(c.errs, err)
			}
			iv, err := rec.Tick(at)
			c.lastTick = at
			if err != nil {
				c.errs = append(c.errs, err)
			}
			c.writeLedger(false)
			if cfg.Progress != nil {
				var lag int64
				for _, a := range c.agents {
					lag, a.lagNs = max(lag, a.lagNs), 0
				}
				cfg.Progress(loadgen.Progress{Elapsed: at.Sub(c.t0), Total: total, Interval: iv, Phase: phase(at), ScheduleLag: time.Duration(lag)})
			}
			k++
		}
		if c.over() {
			break
		}
		select {
		case ev := <-c.events:
			c.handle(ev)
		case now := <-check.C:
			c.loseWedged(now)
			if !stopBy.IsZero() && now.After(stopBy) {
				for _, a := range c.agents {
					if !a.done && !a.lost {
						c.lose(a, now, "no final report after stop")
					}
				}
			}
		case <-done:
			done = nil
			c.logf("stopping the agents")
			c.stopAll()
			stopBy = time.Now().Add(drain + 5*time.Second)
		}
	}
	return c.close()
}

// loseWedged loses each running agent whose next interval is overdue by the
// loss timeout plus an interval: its reader may still answer pings while its
// load is stuck, and the merge waits for every running agent.
func (c *coord) loseWedged(now time.Time) {
	for _, a := range c.agents {
		if a.lost || a.done || a.final != nil {
			continue
		}
		due := c.t0.Add(time.Duration(a.lastSeq+1) * c.cfg.Interval)
		if late := now.Sub(due); late > c.o.LossTimeout+c.cfg.Interval {
			c.lose(a, now, fmt.Sprintf("interval %d overdue by %v (the agent answers pings, its load does not report)", a.lastSeq+1, late.Round(time.Millisecond)))
		}
	}
}

// canTick says whether interval k can be closed: every agent still running has
// sent a frame of k or later (or its last frame), and some agent has one to give.
func (c *coord) canTick(k int64) bool {
	some := false
	for _, a := range c.agents {
		hasK := len(a.queue) > 0 && a.queue[len(a.queue)-1].Seq >= k
		some = some || hasK
		if !a.lost && a.final == nil && !a.done && !hasK {
			return false
		}
	}
	return some
}

// over says whether every agent is done or lost.
func (c *coord) over() bool {
	for _, a := range c.agents {
		if !a.done && !a.lost {
			return false
		}
	}
	return true
}

// ingest hands the recorder the frames of interval k (ending at `at`): regular
// frames up to k, and Close frames that end by then.
func (c *coord) ingest(k int64, at time.Time) error {
	var frames []results.AgentFrame
	for _, a := range c.agents {
		i := 0
		for ; i < len(a.queue) && a.queue[i].Seq <= k; i++ {
			frames = append(frames, results.AgentFrame{Tag: a.tag, Offset: a.off, Frame: a.queue[i]})
		}
		a.queue = a.queue[i:]
		if a.final != nil && len(a.queue) == 0 && !time.Unix(0, a.final.EndNs).Add(-a.off).After(at) {
			frames = append(frames, results.AgentFrame{Tag: a.tag, Offset: a.off, Frame: a.final})
			a.final = nil
		}
	}
	if len(frames) == 0 {
		return nil
	}
	return c.rec.Ingest(frames)
}

// handle takes one event of the run.
func (c *coord) handle(ev event) {
	a := ev.a
	if a.lost || (a.done && ev.err != nil) {
		return // the rest of a lost agent's talk, or the close after bye
	}
	if ev.err != nil {
		c.lose(a, ev.at, ev.err.Error())
		return
	}
	m := ev.m
	switch m.Type {
	case TypeInterval:
		if m.Report == nil || m.Report.Frame == nil {
			c.lose(a, ev.at, "an interval without a frame")
			return
		}
		r := m.Report
		f := r.Frame
		// Checked here, not at the merge: the recorder refuses a batch holding a
		// bad frame, which would drop every agent's data of the interval.
		if err := f.Check(); err != nil {
			c.lose(a, ev.at, fmt.Sprintf("bad interval frame: %v", err))
			return
		}
		// Its intervals do not go back, nor past the run's time: a peer must
		// not make the merge tick empty intervals up to a Seq of its choosing.
		// (A Seq may repeat: an agent's tick half an interval late rounds to
		// the next Seq, and so does the tick after it.)
		if maxSeq := int64(ev.at.Sub(c.t0)/c.cfg.Interval) + 2; f.Seq > maxSeq || !f.Final && f.Seq < a.lastSeq {
			c.lose(a, ev.at, fmt.Sprintf("interval %d out of order (its last %d, at most %d by now)", f.Seq, a.lastSeq, maxSeq))
			return
		}
		if f.Final {
			a.final = f
		} else {
			a.queue = append(a.queue, f)
			a.lastSeq = f.Seq
		}
		a.lastEnd = time.Unix(0, f.EndNs).Add(-a.off)
		if a.lastEnd.After(ev.at) {
			a.lastEnd = ev.at // an interval does not end after it arrived
		}
		a.rep.LastReport = ev.at
		if len(r.Ledger) > 0 {
			a.ledger, a.ledgerUp = r.Ledger, true
		}
		if r.LedgerOmitted > 0 && !a.bigLed {
			a.bigLed = true
			c.errs = append(c.errs, fmt.Errorf("agent %s: its ledger grew to %d bytes, too large to send: ledger.json lacks the writes it acknowledged after its last ledger sent", a.tag, r.LedgerOmitted))
		}
		c.clientStats(a, r.Client)
	case TypeDone:
		a.done = true
		if d := m.Done; d != nil {
			a.rep.Acked, a.rep.Unknown, a.rep.Err = d.Acked, d.Unknown, d.Err
			if d.Err != "" {
				c.errs = append(c.errs, fmt.Errorf("agent %s: %s", a.tag, d.Err))
			}
		}
		_ = a.send(&Msg{Type: TypeBye}, time.Second)
	case TypeError:
		if m.Error != nil {
			c.errs = append(c.errs, fmt.Errorf("agent %s: %s", a.tag, m.Error.Message))
		}
	}
}

// clientStats notes whether the agent's own machine held the load back.
func (c *coord) clientStats(a *agent, s ClientStats) {
	late := c.cfg.LateThreshold
	if late == 0 {
		late = 10 * time.Millisecond
	}
	a.lagNs = max(a.lagNs, s.LagMaxNs)
	a.rep.MaxLagNs = max(a.rep.MaxLagNs, s.LagMaxNs)
	a.rep.MaxCPU = max(a.rep.MaxCPU, s.CPU)
	if s.CPU >= 0.9 {
		a.cpuHigh++
	} else {
		a.cpuHigh = 0
	}
	if time.Duration(s.LagMaxNs) > late || a.cpuHigh >= 2 {
		a.rep.ClientSaturated = true
		a.rep.SaturatedIntervals++
	}
}

// lose gives an agent up: its frames so far count, the run goes on without it.
func (c *coord) lose(a *agent, at time.Time, reason string) {
	if a.lost || a.done {
		return
	}
	a.lost = true
	a.nc.Close()
	t := at
	a.rep.Lost, a.rep.LostAt, a.rep.LostReason = true, &t, reason
	c.report.Degraded = true
	c.logf("degraded: agent %s lost at %s (%s); its last report at %s", a.tag, at.Format("15:04:05.000"), reason, a.rep.LastReport.Format("15:04:05.000"))
}

// writeLedger writes ledger.json from the agents' latest ledgers, when one changed
// (or always).
func (c *coord) writeLedger(always bool) {
	changed := always
	for _, a := range c.agents {
		changed = changed || a.ledgerUp
	}
	if !changed {
		return
	}
	l := results.NewLedger()
	for _, a := range c.agents {
		a.ledgerUp = false
		if len(a.ledger) == 0 {
			continue
		}
		al, err := results.DecodeLedger(a.ledger)
		if err == nil {
			err = l.Merge(al)
		}
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("agent %s: ledger: %w", a.tag, err))
		}
	}
	c.ledger = l
	if err := l.WriteFile(filepath.Join(c.cfg.Out, "ledger.json")); err != nil {
		c.errs = append(c.errs, err)
	}
}

// close ingests what is left, closes the recorder at the last report's end and
// writes the ledger.
func (c *coord) close() (*loadgen.Result, error) {
	var frames []results.AgentFrame
	end := c.lastTick // not before the last interval closed
	for _, a := range c.agents {
		for _, f := range a.queue {
			frames = append(frames, results.AgentFrame{Tag: a.tag, Offset: a.off, Frame: f})
		}
		if a.final != nil {
			frames = append(frames, results.AgentFrame{Tag: a.tag, Offset: a.off, Frame: a.final})
		}
		a.queue, a.final = nil, nil
		if a.lastEnd.After(end) {
			end = a.lastEnd
		}
	}
	if len(frames) > 0 {
		if err := c.rec.Ingest(frames); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	sum, err := c.rec.Close(end)
	c.errs = append(c.errs, err)
	c.writeLedger(true)
	res := &loadgen.Result{Summary: sum, Ledger: c.ledger}
	res.Acked, res.Unknown = c.ledger.Count()
	lost := 0
	for _, a := range c.agents {
		if a.lost {
			lost++
		}
	}
	if lost == len(c.agents) {
		c.errs = append(c.errs, errors.New("agents: every agent was lost"))
	}
	return res, errors.Join(c.errs...)
}

// writeReport writes agents.json into the run directory.
func (c *coord) writeReport() error {
	b, err := json.MarshalIndent(c.report, "", "  ")
	if err != nil {
		return err
	}
	if err := results.WriteFileAtomic(filepath.Join(c.cfg.Out, "agents.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("agents: write agents.json: %w", err)
	}
	return nil
}
