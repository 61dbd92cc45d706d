package agents

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// AgentOptions say where an agent's coordinator is and how the agent proves it
// belongs to the run.
type AgentOptions struct {
	// Coordinator is the coordinator's host:port.
	Coordinator string
	// Token is the run's secret (the coordinator passes it in
	// $HTAPCHAOS_AGENT_TOKEN).
	Token string
	// CertSHA256 is the hex SHA-256 fingerprint of the coordinator's
	// certificate: the connection is TLS 1.3 and the certificate must match.
	// Required unless the coordinator is on a loopback address (plain TCP).
	CertSHA256 string
	// Index asks for agent number Index (0-based); -1: the coordinator assigns
	// one.
	Index int
	// Stderr gets the agent's progress lines; nil: none.
	Stderr io.Writer
	// OnPlan, when set, is given the run's configuration rebuilt from the plan
	// before the workloads are prepared (the CLI sizes GOMAXPROCS for the share
	// from it, see ShareSpecs).
	OnPlan func(cfg *loadgen.Config)

	// Tests: dieAfter drops the connection that long after the start without
	// done (a crash); hangAfter stops every frame to the coordinator that long
	// after the start while the connection stays open (a hang).
	dieAfter, hangAfter time.Duration
}

// Errors of RunAgent, for errors.Is.
var (
	// ErrRefused: the coordinator refused the agent (protocol, token, index), or
	// speaks another protocol. The CLI exits 2.
	ErrRefused = errors.New("refused")
	// ErrCoordinatorGone: the coordinator could not be reached, closed the
	// connection, stayed silent for the loss timeout, or the plan's deadline
	// passed. The agent stopped its load by itself. The CLI exits 5.
	ErrCoordinatorGone = errors.New("coordinator gone")
)

// Timeouts of the agent's side.
const (
	// agentSilence: after the start, a coordinator silent this long is gone (it
	// pings every 500 ms).
	agentSilence = 3 * time.Second
	// welcomeTimeout bounds the wait for welcome or refuse after hello, and the
	// dial.
	welcomeTimeout = 10 * time.Second
	// joinSilence bounds the waits for the plan and for the start: the
	// coordinator waits up to its join timeout (60 s) for the other agents, and
	// pings only once it sent the plans.
	joinSilence = 75 * time.Second
	// writeTimeout bounds one frame's write.
	writeTimeout = 3 * time.Second
	// byeTimeout bounds the wait for bye after done.
	byeTimeout = 5 * time.Second
	// sendQueue caps the frames waiting to be written: past it, the coordinator
	// is not taking them and is treated as gone.
	sendQueue = 60
)

// RunAgent runs one agent: it dials the coordinator, says hello with the
// protocol version and the token, takes its plan (its share of the run),
// prepares the workloads (pools open) and says ready, starts at the coordinator's
// instant, and streams every closed interval of its loadgen.Run to the
// coordinator (with its ledger when it changed, and how busy the client was),
// then the final interval and done. It answers pings at any time.
//
// It stops its load by itself when the coordinator goes silent for 3 s after the
// start, the connection breaks, or the plan's deadline passes: then it returns an
// error wrapping ErrCoordinatorGone. A refusal wraps ErrRefused. A stop from the
// coordinator ends the run early and returns nil once done is acknowledged (bye).
// A cancel of ctx ends the run, reports what was measured, and returns the cause.
func RunAgent(ctx context.Context, o AgentOptions) error {
	logf := func(format string, args ...any) {
		if o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "%s agent: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
		}
	}
	nc, err := dialCoordinator(ctx, o)
	if err != nil {
		return err
	}
	c := newAgentConn(nc)
	defer c.close()
	host, _ := os.Hostname()
	c.send(&Msg{Type: TypeHello, Hello: &Hello{Protocol: ProtocolVersion, Token: o.Token, Index: o.Index,
		Version: agentVersion(), Host: host, PID: os.Getpid(), CPUs: runtime.NumCPU()}})

	// welcome or refuse
	m, err := c.next(ctx, welcomeTimeout)
	if err != nil {
		return err
	}
	switch {
	case m.Type == TypeRefuse && m.Error != nil:
		return fmt.Errorf("coordinator %s %w this agent: %w", o.Coordinator, ErrRefused, m.Error)
	case m.Type != TypeWelcome || m.Welcome == nil:
		return fmt.Errorf("coordinator %s: expected welcome, got %q", o.Coordinator, m.Type)
	case m.Welcome.Protocol != ProtocolVersion:
		return fmt.Errorf("%w: coordinator speaks protocol %d, this agent %d", ErrRefused, m.Welcome.Protocol, ProtocolVersion)
	}
	index := m.Welcome.Index
	logf("joined run %s at %s as agent %d", m.Welcome.RunID, o.Coordinator, index)

	// plan
	m, err = c.next(ctx, joinSilence)
	if err != nil {
		return err
	}
	if m.Type != TypePlan || m.Plan == nil {
		return fmt.Errorf("coordinator %s: expected plan, got %q", o.Coordinator, m.Type)
	}
	plan := m.Plan
	cfg, err := configOf(plan)
	if err != nil {
		c.send(&Msg{Type: TypeError, Error: &WireError{Code: CodePlan, Message: err.Error()}})
		c.flush(writeTimeout)
		// Not wrapped: the coordinator's input, not this agent's (the CLI exits 3).
		return fmt.Errorf("the coordinator's plan: %v", err)
	}
	if o.OnPlan != nil {
		o.OnPlan(&cfg)
	}
	return c.run(ctx, o, cfg, plan, logf)
}

// ShareSpecs are the workloads as much as the share runs of them: open-loop
// rates and closed-loop concurrency divided by the number of shares (rounded
// up), for sizing the agent's processors (loadgen.Procs).
func ShareSpecs(cfg *loadgen.Config) []loadgen.Spec {
	of := max(cfg.Share.Of, 1)
	out := make([]loadgen.Spec, len(cfg.Workloads))
	for i, s := range cfg.Workloads {
		s.Phases = append([]loadgen.Phase(nil), s.Phases...)
		for j := range s.Phases {
			s.Phases[j].Rate /= float64(of)
			s.Phases[j].Concurrency = (s.Phases[j].Concurrency + of - 1) / of
		}
		out[i] = s
	}
	return out
}

// configOf rebuilds the run's configuration from a plan: the workloads from
// their sources, the agent's share, no output files.
func configOf(p *Plan) (loadgen.Config, error) {
	cfg := loadgen.Config{Targets: p.Targets, Params: p.Params, Interval: p.Interval, GapThreshold: p.GapThreshold,
		LateThreshold: p.LateThreshold, RunTag: p.RunTag, Share: p.Share, WorkerBase: p.WorkerBase}
	var errs []error
	for _, s := range p.Specs {
		wl, err := s.Source.Build()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Workloads = append(cfg.Workloads, loadgen.Spec{Workload: wl, Name: s.Name, Mix: s.Mix, Closed: s.Closed,
			Phases: s.Phases, Route: s.Route, Workers: s.Workers, MaxInFlight: s.MaxInFlight, OpTimeout: s.OpTimeout,
			Retry: s.Retry, MaxOps: s.MaxOps, Seed: s.Seed, MeasureMemory: s.MeasureMemory})
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// dialCoordinator connects, over TLS with the pinned certificate when a
// fingerprint is given (required off loopback).
func dialCoordinator(ctx context.Context, o AgentOptions) (net.Conn, error) {
	if o.Coordinator == "" {
		return nil, usage.Errorf("--coordinator", "no coordinator address")
	}
	var tc *tls.Config
	if o.CertSHA256 != "" {
		var err error
		if tc, err = PinnedConfig(o.CertSHA256); err != nil {
			return nil, usage.Errorf("--cert-sha256", "%v", err)
		}
	} else if NeedsTLS(o.Coordinator) {
		return nil, usage.Errorf("--cert-sha256", "the coordinator %s is not on a loopback address: its certificate's fingerprint is required", o.Coordinator)
	}
	dctx, cancel := context.WithTimeout(ctx, welcomeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", o.Coordinator)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: %w", ErrCoordinatorGone, err)
	}
	if tc == nil {
		return nc, nil
	}
	tconn := tls.Client(nc, tc)
	if err := tconn.HandshakeContext(dctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("coordinator %s: TLS: %w", o.Coordinator, err)
	}
	return tconn, nil
}

// agentVersion is the build's module version and revision, for the hello.
func agentVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}

// agentConn is the agent's side of the connection: a reader that answers pings
// at once and hands every other frame on, and a writer fed by a bounded queue.
type agentConn struct {
	nc net.Conn

	out   chan outItem // frames to write, in order
	pongs chan *Msg    // written before out's frames
	quit  chan struct{}
	wg    sync.WaitGroup

	in      chan *Msg    // frames other than ping, for the handshake and the run
	dlMu    sync.Mutex   // orders the read deadline's updates
	silence atomic.Int64 // how long the coordinator may stay silent, ns
	lastIn  atomic.Int64 // unix ns of the last frame read

	goneOnce sync.Once
	gone     chan struct{} // closed when the coordinator is gone
	goneErr  error

	hung atomic.Bool // tests: write nothing more

	offMu   sync.Mutex
	offset  int64 // least T1-T0 of the pings: clock offset plus the one-way delay
	offsets int
}

// outItem is a frame to write, or (msg nil) a flush marker closed once
// everything before it was written.
type outItem struct {
	msg     *Msg
	flushed chan struct{}
}

func newAgentConn(nc net.Conn) *agentConn {
	c := &agentConn{nc: nc, out: make(chan outItem, sendQueue+4), pongs: make(chan *Msg, 16), quit: make(chan struct{}),
		in: make(chan *Msg, 16), gone: make(chan struct{})}
	c.silence.Store(int64(joinSilence))
	c.wg.Add(2)
	go c.read()
	go c.write()
	return c
}

// lose marks the coordinator gone (the first reason is kept).
func (c *agentConn) lose(err error) {
	c.goneOnce.Do(func() {
		c.goneErr = fmt.Errorf("%w: %w", ErrCoordinatorGone, err)
		close(c.gone)
	})
}

func (c *agentConn) close() {
	close(c.quit)
	c.nc.Close()
	c.wg.Wait()
}

func (c *agentConn) read() {
	defer c.wg.Done()
	for {
		c.armRead()
		m, err := ReadMsg(c.nc)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("no frame for %v", time.Duration(c.silence.Load()))
			}
			c.lose(err)
			return
		}
		now := time.Now()
		c.lastIn.Store(now.UnixNano())
		if m.Type == TypePing {
			if m.Ping == nil {
				continue
			}
			c.offMu.Lock()
			if d := now.UnixNano() - m.Ping.T0; c.offsets == 0 || d < c.offset {
				c.offset = d
			}
			c.offsets++
			c.offMu.Unlock()
			select {
			case c.pongs <- &Msg{Type: TypePong, Ping: &Ping{T0: m.Ping.T0, T1: now.UnixNano()}}:
			default: // the writer is stuck: the coordinator will notice
			}
			continue
		}
		select {
		case c.in <- m:
		case <-c.quit:
			return
		}
	}
}

func (c *agentConn) write() {
	defer c.wg.Done()
	failed := false
	put := func(m *Msg) {
		if failed || c.hung.Load() {
			return
		}
		if m.Type == TypePong {
			m.Ping.T2 = time.Now().UnixNano()
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := WriteMsg(c.nc, m); err != nil {
			failed = true
			c.lose(err)
		}
	}
	for {
		select {
		case m := <-c.pongs:
			put(m)
			continue
		default:
		}
		select {
		case m := <-c.pongs:
			put(m)
		case it := <-c.out:
			if it.msg != nil {
				put(it.msg)
			} else {
				close(it.flushed)
			}
		case <-c.quit:
			return
		}
	}
}

// send queues a frame; a full queue means the coordinator is not reading.
func (c *agentConn) send(m *Msg) {
	select {
	case c.out <- outItem{msg: m}:
	default:
		c.lose(fmt.Errorf("%d frames not taken", sendQueue))
	}
}

// flush waits until every queued frame was written (or the coordinator is gone,
// or timeout).
func (c *agentConn) flush(timeout time.Duration) {
	ch := make(chan struct{})
	select {
	case c.out <- outItem{flushed: ch}:
	default:
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-c.gone:
	case <-t.C:
	}
}

// next waits for the coordinator's next frame other than ping, at most
// timeout of silence.
func (c *agentConn) next(ctx context.Context, silence time.Duration) (*Msg, error) {
	c.setSilence(silence)
	var m *Msg
	select {
	case m = <-c.in:
	case <-c.gone:
		// A frame read before the loss (a refusal, then the close) comes first.
		select {
		case m = <-c.in:
		default:
			return nil, c.goneErr
		}
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if m.Type == TypeError && m.Error != nil {
		return nil, fmt.Errorf("coordinator: %w", m.Error)
	}
	return m, nil
}

// setSilence sets how long the coordinator may stay silent from now on; the
// read under way is bounded by it too.
func (c *agentConn) setSilence(d time.Duration) {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.silence.Store(int64(d))
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
}

// armRead bounds the next read by the silence allowed.
func (c *agentConn) armRead() {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Duration(c.silence.Load())))
}

// clockOffset is the estimate of the agent's clock minus the coordinator's: the
// least T1-T0 of the pings (which adds the one-way delay, so the agent starts
// that much late; the coordinator corrects the frames' times with its own
// estimate).
func (c *agentConn) clockOffset() time.Duration {
	c.offMu.Lock()
	defer c.offMu.Unlock()
	return time.Duration(c.offset)
}

// Causes of the run's cancel.
var (
	errStopped  = errors.New("stopped by the coordinator")
	errDeadline = errors.New("the plan's deadline passed")
	errDied     = errors.New("agent died (test)")
)

// agentRun is the state of one agent's load run.
type agentRun struct {
	c      *agentConn
	ledger *results.Ledger

	mu      sync.Mutex
	pending []*results.IntervalFrame // closed intervals not reported yet
	started bool                     // the start came: intervals are reported
	lastAck int64                    // the ledger's counts last sent
	lastUnk int64
	sentLed bool
	since   int  // intervals reported since the ledger was last sent
	lastLen int  // the size of the ledger last sent
	bigLed  bool // the ledger grew past maxLedgerBytes

	cpu cpuMeter
}

func (c *agentConn) run(ctx context.Context, o AgentOptions, cfg loadgen.Config, plan *Plan, logf func(string, ...any)) error {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ar := &agentRun{c: c, ledger: results.NewLedger()}
	ar.cpu.reset()
	cfg.Ledger = ar.ledger
	cfg.Export = ar.export
	cfg.Progress = ar.progress

	var byeOnce sync.Once
	bye := make(chan struct{})
	var coordErr atomic.Pointer[WireError]
	watchDone := make(chan struct{})
	// The run's watcher: the coordinator's frames during the run, and its loss.
	startCh := make(chan *StartAt, 1)
	var watch sync.WaitGroup
	handle := func(m *Msg) {
		switch m.Type {
		case TypeStart:
			if m.Start != nil {
				select {
				case startCh <- m.Start:
				default:
				}
			}
		case TypeStop:
			cancel(errStopped)
		case TypeBye:
			byeOnce.Do(func() { close(bye) })
		case TypeError, TypeRefuse:
			if m.Error != nil {
				coordErr.CompareAndSwap(nil, m.Error)
				cancel(fmt.Errorf("coordinator: %w", m.Error))
			}
		}
	}
	watch.Go(func() {
		for {
			select {
			case <-watchDone:
				return
			case m := <-c.in:
				handle(m)
			case <-c.gone:
				// Frames read before the loss first (a stop, a bye, an error).
				for {
					select {
					case m := <-c.in:
						handle(m)
						continue
					default:
					}
					break
				}
				cancel(c.goneErr)
				return
			}
		}
	})
	defer func() { close(watchDone); watch.Wait() }()

	var timers []*time.Timer
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	startAsked := false
	cfg.StartAt = func(ctx context.Context) (time.Time, error) {
		startAsked = true
		c.send(&Msg{Type: TypeReady})
		select {
		case s := <-startCh:
			// From now on, by the monotonic clock: a step of the wall clock
			// (NTP) must not move the schedule, the Seq of the intervals or
			// the latencies.
			t0 := time.Now().Add(time.Until(time.Unix(0, s.UnixNs).Add(c.clockOffset())))
			c.setSilence(agentSilence)
			ar.mu.Lock()
			ar.started = true
			ar.mu.Unlock()
			if plan.Deadline > 0 {
				timers = append(timers, time.AfterFunc(time.Until(t0)+plan.Deadline, func() { cancel(errDeadline) }))
			}
			if o.dieAfter > 0 {
				timers = append(timers, time.AfterFunc(time.Until(t0)+o.dieAfter, func() {
					cancel(errDied)
					c.hung.Store(true)
					c.nc.Close()
				}))
			}
			if o.hangAfter > 0 {
				timers = append(timers, time.AfterFunc(time.Until(t0)+o.hangAfter, func() { c.hung.Store(true) }))
			}
			logf("starting at %s", t0.Format("15:04:05.000"))
			return t0, nil
		case <-ctx.Done():
			return time.Time{}, context.Cause(ctx)
		}
	}

	res, runErr := loadgen.Run(runCtx, cfg)
	cause := context.Cause(runCtx)
	if !startAsked && runErr != nil {
		// Preparing failed (a pool, a workload's check): the plan cannot run here.
		c.send(&Msg{Type: TypeError, Error: &WireError{Code: CodePlan, Message: runErr.Error()}})
		c.flush(writeTimeout)
		return fmt.Errorf("the coordinator's plan: %v", runErr)
	}
	if errors.Is(cause, errDied) {
		return cause
	}
	// What is left: the last intervals and the final one, then done.
	ar.report(0)
	done := &Done{}
	if res != nil {
		done.Acked, done.Unknown = res.Acked, res.Unknown
	} else {
		done.Acked, done.Unknown = ar.ledger.Count()
	}
	if runErr != nil {
		done.Err = runErr.Error()
		var pe *safego.PanicError
		done.Panic = errors.As(runErr, &pe)
	}
	select {
	case <-c.gone:
		logf("%v: stopped the load", c.goneErr)
		return c.goneErr
	default:
	}
	if errors.Is(cause, errDeadline) {
		c.send(&Msg{Type: TypeDone, Done: done})
		c.flush(writeTimeout)
		logf("the plan's deadline passed: stopped the load")
		return fmt.Errorf("%w: %w", ErrCoordinatorGone, errDeadline)
	}
	c.send(&Msg{Type: TypeDone, Done: done})
	c.flush(writeTimeout)
	t := time.NewTimer(byeTimeout)
	defer t.Stop()
	select {
	case <-bye:
	case <-c.gone:
		if ctx.Err() == nil && runErr == nil {
			// done was written: a coordinator closing without bye is fine.
			logf("%v after done", c.goneErr)
		}
	case <-t.C:
		logf("no bye %v after done", byeTimeout)
	}
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case coordErr.Load() != nil:
		return fmt.Errorf("coordinator: %w", coordErr.Load())
	case runErr != nil && !errors.Is(cause, errStopped):
		return runErr
	}
	logf("done: %d acknowledged writes, %d unknown", done.Acked, done.Unknown)
	return nil
}

// export takes a closed interval from the recorder (under its lock: only keep
// it).
func (ar *agentRun) export(f *results.IntervalFrame) {
	ar.mu.Lock()
	ar.pending = append(ar.pending, f)
	ar.mu.Unlock()
}

// progress runs after each tick (after export): the interval goes to the
// coordinator with the dispatcher's lag.
func (ar *agentRun) progress(p loadgen.Progress) { ar.report(p.ScheduleLag) }

// The ledger travels whole (deltas would be the real fix): with every
// interval while it is under ledgerSmall (acknowledged ids form ranges: the
// usual ledger is small, and a lost agent's is then at most an interval old),
// at most every ledgerEvery intervals once it is larger, always with the final
// interval, and never when it is over maxLedgerBytes (a frame must stay under
// MaxFrame).
const ledgerEvery = 5

// Variables for tests.
var (
	ledgerSmall    = 64 << 10
	maxLedgerBytes = MaxFrame / 2
)

// report sends the pending intervals, with the ledger when it changed (see
// ledgerEvery) and the client's figures (lag: the dispatcher's worst in the
// interval).
func (ar *agentRun) report(lag time.Duration) {
	ar.mu.Lock()
	frames := ar.pending
	ar.pending = nil
	started := ar.started
	ar.mu.Unlock()
	if !started || len(frames) == 0 {
		return
	}
	cpu := ar.cpu.busy()
	for i, f := range frames {
		r := &Report{Frame: f, Client: ClientStats{CPU: cpu, LagMaxNs: int64(lag)}}
		for _, k := range f.Keys {
			r.Client.Dropped += k.Dropped
		}
		ar.since++
		if i == len(frames)-1 && (f.Final || !ar.bigLed && (ar.lastLen < ledgerSmall || ar.since >= ledgerEvery)) {
			if a, u := ar.ledger.Count(); !ar.sentLed || a != ar.lastAck || u != ar.lastUnk {
				b, err := ar.ledger.MarshalJSON()
				switch {
				case err != nil:
				case len(b) > maxLedgerBytes || ar.bigLed:
					ar.bigLed = true
					r.LedgerOmitted = len(b)
				default:
					r.Ledger, ar.sentLed, ar.lastAck, ar.lastUnk, ar.since, ar.lastLen = b, true, a, u, 0, len(b)
				}
			}
		}
		ar.c.send(&Msg{Type: TypeInterval, Report: r})
	}
}

// cpuMeter is the process's busy share of all the machine's processors between
// two readings, from /proc/self/stat (user and system time of every thread); 0
// where there is no /proc.
type cpuMeter struct {
	at  time.Time
	sec float64 // busy cpu-seconds at
}

// clockTicks is USER_HZ, the unit of /proc/self/stat's times (100 on every Linux
// architecture Go runs on).
const clockTicks = 100

// readBusy is the process's user plus system CPU seconds; -1: unknown.
func readBusy() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) is in parentheses and may hold spaces: count
	// from the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (u + s) / clockTicks
}

func (m *cpuMeter) reset() { m.at, m.sec = time.Now(), readBusy() }

// busy returns the share since the last reading and starts the next.
func (m *cpuMeter) busy() float64 {
	now, b := time.Now(), readBusy()
	wall := now.Sub(m.at).Seconds()
	share := 0.0
	if wall > 0 && b >= 0 && m.sec >= 0 {
		share = (b - m.sec) / wall / float64(runtime.NumCPU())
	}
	m.at, m.sec = now, b
	return min(max(share, 0), 1)
}
