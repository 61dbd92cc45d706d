package agents

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// ProtocolVersion is the version of the coordinator-agent protocol this build speaks.
// Both sides refuse another: an agent and its coordinator come from the same release.
const ProtocolVersion = 1

// MaxFrame bounds one frame's JSON (64 MiB): a longer length prefix is an error, not
// an allocation.
const MaxFrame = 64 << 20

// Message types (Msg.Type).
const (
	TypeHello    = "hello"    // agent → coordinator: Hello
	TypeWelcome  = "welcome"  // coordinator → agent: Welcome
	TypeRefuse   = "refuse"   // coordinator → agent: Error, then the coordinator closes
	TypePlan     = "plan"     // coordinator → agent: Plan
	TypeReady    = "ready"    // agent → coordinator: the plan's workloads are prepared
	TypeStart    = "start"    // coordinator → agent: Start
	TypeInterval = "interval" // agent → coordinator: Report
	TypeDone     = "done"     // agent → coordinator: Done
	TypeStop     = "stop"     // coordinator → agent: end the run now
	TypeBye      = "bye"      // coordinator → agent: done received, exit 0
	TypePing     = "ping"     // coordinator → agent: Ping (T0)
	TypePong     = "pong"     // agent → coordinator: Ping (T0, T1, T2)
	TypeError    = "error"    // either way: Error
)

// Msg is one frame of the protocol: exactly one pointer set, matching Type (none for
// ready, stop and bye).
type Msg struct {
	Type    string     `json:"type"`
	Hello   *Hello     `json:"hello,omitempty"`
	Welcome *Welcome   `json:"welcome,omitempty"`
	Plan    *Plan      `json:"plan,omitempty"`
	Start   *StartAt   `json:"start,omitempty"`
	Report  *Report    `json:"report,omitempty"`
	Done    *Done      `json:"done,omitempty"`
	Ping    *Ping      `json:"ping,omitempty"`  // ping and pong
	Error   *WireError `json:"error,omitempty"` // refuse and error
}

// Hello is an agent's first frame.
type Hello struct {
	Protocol int    `json:"protocol"`
	Token    string `json:"token"`
	Index    int    `json:"index"` // -1: the coordinator assigns one
	Version  string `json:"version"`
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	CPUs     int    `json:"cpus"`
}

// Welcome accepts an agent.
type Welcome struct {
	Protocol int    `json:"protocol"`
	Index    int    `json:"index"`
	RunID    string `json:"run_id"`
}

// WireError is a refusal or an error; Code is one of protocol, token, index, plan, run.
type WireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of WireError.
const (
	CodeProtocol = "protocol"
	CodeToken    = "token"
	CodeIndex    = "index"
	CodePlan     = "plan"
	CodeRun      = "run"
)

func (e *WireError) Error() string { return e.Code + ": " + e.Message }

// Plan is one agent's part of the run.
type Plan struct {
	RunTag        int64            `json:"run_tag"`
	Interval      time.Duration    `json:"interval"`
	GapThreshold  time.Duration    `json:"gap_threshold"`
	LateThreshold time.Duration    `json:"late_threshold"`
	Targets       []loadgen.Target `json:"targets"`
	Params        loadgen.Params   `json:"params"`
	Specs         []PlanSpec       `json:"specs"`
	Share         loadgen.Share    `json:"share"`
	WorkerBase    int              `json:"worker_base"`
	// Deadline is the agent's hard bound from the start: phases + drain + 30 s.
	Deadline time.Duration `json:"deadline"`
}

// PlanSpec is a loadgen.Spec without its *Workload, plus where to get it.
type PlanSpec struct {
	Source        loadgen.WorkloadSource `json:"source"`
	Name          string                 `json:"name"`
	Mix           map[string]int         `json:"mix,omitempty"`
	Closed        bool                   `json:"closed,omitempty"`
	Phases        []loadgen.Phase        `json:"phases"`
	Route         loadgen.Route          `json:"route"`
	Workers       int                    `json:"workers"`
	MaxInFlight   int                    `json:"max_in_flight"`
	OpTimeout     time.Duration          `json:"op_timeout"`
	Retry         loadgen.Retry          `json:"retry"`
	MaxOps        int64                  `json:"max_ops"`
	Seed          uint64                 `json:"seed"`
	MeasureMemory bool                   `json:"measure_memory,omitempty"`
}

// StartAt is the agreed start instant on the coordinator's clock; the agent adds its
// offset.
type StartAt struct {
	UnixNs int64 `json:"unix_ns"`
}

// Report is one closed interval of an agent.
type Report struct {
	Frame *results.IntervalFrame `json:"frame"`
	// Ledger is the agent's whole ledger (results.Ledger's JSON) when it changed
	// since the last one sent: with every interval while it is small, every few
	// intervals once it is larger, and always with the final one.
	Ledger json.RawMessage `json:"ledger,omitempty"`
	// LedgerOmitted is the ledger's size when it was too large to send.
	LedgerOmitted int         `json:"ledger_omitted,omitempty"`
	Client        ClientStats `json:"client"`
}

// ClientStats is how busy the agent's own machine was in the interval.
type ClientStats struct {
	CPU      float64 `json:"cpu"` // busy share of all CPUs
	LagMaxNs int64   `json:"lag_max_ns"`
	Dropped  int64   `json:"dropped"`
}

// Done ends an agent's run.
type Done struct {
	Acked   int64  `json:"acked"`
	Unknown int64  `json:"unknown"`
	Err     string `json:"err,omitempty"`
	Panic   bool   `json:"panic,omitempty"`
}

// Ping is a clock sample, unix ns: T0 the coordinator's send, T1 the agent's
// receipt, T2 the agent's send (the coordinator notes T3 on receipt).
type Ping struct {
	T0 int64 `json:"t0"`
	T1 int64 `json:"t1,omitempty"`
	T2 int64 `json:"t2,omitempty"`
}

// WriteMsg writes one frame: a 4-byte big-endian length and the message's JSON.
func WriteMsg(w io.Writer, m *Msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > MaxFrame {
		return fmt.Errorf("agents: %s frame of %d bytes exceeds %d", m.Type, len(b), MaxFrame)
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err = w.Write(buf)
	return err
}

// ReadMsg reads one frame written by WriteMsg.
func ReadMsg(r io.Reader) (*Msg, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, fmt.Errorf("agents: frame of %d bytes exceeds %d", n, MaxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	m := new(Msg)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("agents: bad frame: %w", err)
	}
	if m.Type == "" {
		return nil, fmt.Errorf("agents: frame without a type")
	}
	return m, nil
}
