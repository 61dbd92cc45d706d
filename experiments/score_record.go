package experiments

import (
	"fmt"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// The failure modes of the catalog (docs/failure-modes.md), by stable id.
const (
	ModeMemoryHeadroom = "memory-headroom"
	ModeDataMovement   = "data-movement"
	ModeHTAPContention = "htap-contention"
	ModeSchemaChange   = "schema-change"
	ModeFailover       = "failover"
	ModeFailSideways   = "fail-sideways"
	ModeDurability     = "durability"
	ModeFreshness      = "freshness"
)

// Modes lists every failure-mode id, in catalog order.
var Modes = []string{ModeMemoryHeadroom, ModeDataMovement, ModeHTAPContention, ModeSchemaChange,
	ModeFailover, ModeFailSideways, ModeDurability, ModeFreshness}

// Window is a named span of the run: a phase (baseline, a fault window, recovery,
// after) or any span evidence points at.
type Window struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains says whether t falls in [Start, End).
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// Duration is the window's length.
func (w Window) Duration() time.Duration { return w.End.Sub(w.Start) }

// Phase names the runner gives its windows. A fault window is named after its fault:
// "fault:<name>" (the fault's name in the spec).
const (
	PhaseWarmup   = "warmup"
	PhaseBaseline = "baseline"
	PhaseRecovery = "recovery"
	PhaseAfter    = "after"
	FaultPrefix   = "fault:"
)

// Sample is one node's leading indicators at one second. Counters are deltas since
// the node's previous sample; a field the node cannot give is left at its zero value
// and named in Missing once per run (see Indicators.Missing).
type Sample struct {
	T    time.Time `json:"t"`
	Node int       `json:"node"`
	// Up: the node answered a query this second.
	Up bool `json:"up"`

	// Galera (wsrep_*).
	ClusterSize   int     `json:"cluster_size,omitempty"`
	Primary       bool    `json:"primary,omitempty"`
	Ready         bool    `json:"ready,omitempty"`
	State         string  `json:"state,omitempty"`          // Synced, Donor/Desynced, Joining, ...
	FCPausedMs    float64 `json:"fc_paused_ms,omitempty"`   // delta of wsrep_flow_control_paused_ns, in ms
	FCSent        int64   `json:"fc_sent,omitempty"`        // delta of wsrep_flow_control_sent
	RecvQueue     int64   `json:"recv_queue,omitempty"`     // wsrep_local_recv_queue
	SendQueue     int64   `json:"send_queue,omitempty"`     // wsrep_local_send_queue
	LastCommitted int64   `json:"last_committed,omitempty"` // wsrep_last_committed

	// Primary-replica.
	ReplicaLagS *float64 `json:"replica_lag_s,omitempty"` // Seconds_Behind_Master; nil: not a replica or unknown

	// Container (the engine's stats and state).
	MemoryPct  float64 `json:"memory_pct,omitempty"`
	CPUPct     float64 `json:"cpu_pct,omitempty"` // as docker stats shows it: 100 = one core
	OOMKilled  bool    `json:"oom_killed,omitempty"`
	Restarts   int     `json:"restarts,omitempty"`
	Running    bool    `json:"running,omitempty"`
	Paused     bool    `json:"paused,omitempty"`
	NetRxBytes int64   `json:"net_rx_bytes,omitempty"` // delta
	NetTxBytes int64   `json:"net_tx_bytes,omitempty"` // delta
	// ClusterNetRx/TxBytes are the bytes on the cluster network alone (between
	// nodes; no client traffic), deltas; sampled on sharded clusters' nodes.
	ClusterNetRxBytes int64 `json:"cluster_net_rx_bytes,omitempty"`
	ClusterNetTxBytes int64 `json:"cluster_net_tx_bytes,omitempty"`
	// BytesSent and ComSelect are deltas of the server's Bytes_sent and
	// Com_select: on a leaf, what it sent its aggregators (and the sampler) and
	// the SELECTs it ran for them, the data movement of a sharded query.
	BytesSent int64 `json:"bytes_sent,omitempty"`
	ComSelect int64 `json:"com_select,omitempty"`
	// SpiderDirectAggregate is the delta of an aggregator's
	// Spider_direct_aggregate: aggregates pushed down to the leaves.
	SpiderDirectAggregate int64 `json:"spider_direct_aggregate,omitempty"`
	// MemoryLimitBytes is the container's memory limit as the engine reports it
	// (MemoryPct is of it).
	MemoryLimitBytes int64 `json:"memory_limit_bytes,omitempty"`
	// HogBytes is what the memory-fill fault holds on this node now (see
	// faults.MemoryHolder): the exec hog's resident memory, or with method=sql
	// its MEMORY tables' size as the server accounts for it (whole blocks, more
	// than the rows resident); HogInServer says the hog lives inside the server
	// (method=sql) and so counts in ServerMemoryBytes too: ServerMemoryBytes -
	// HogBytes is then the server's own.
	HogBytes    int64 `json:"hog_bytes,omitempty"`
	HogInServer bool  `json:"hog_in_server,omitempty"`

	// Server.
	ThreadsRunning   int64 `json:"threads_running,omitempty"`
	ThreadsConnected int64 `json:"threads_connected,omitempty"`
	// ServerMemoryBytes is the server's own account of the memory it allocated
	// (MariaDB's global status Memory_used), hog's MEMORY tables included.
	ServerMemoryBytes int64 `json:"server_memory_bytes,omitempty"`

	// Freshness: now minus the newest heartbeat visible on this node, in ms; nil where
	// not measured.
	StalenessMs *float64 `json:"staleness_ms,omitempty"`
}

// FaultRecord is what happened to one fault of the spec.
type FaultRecord struct {
	Name string `json:"name"` // the fault's name in the spec
	Kind string `json:"kind"`
	// The kind's traits the scorers select faults by (faults.Kind), recorded when
	// the run resolved the kind: a kind a user registers is scored by them too. A
	// run.json from before they were recorded has no Class (see traits).
	Class        faults.Class         `json:"class,omitempty"`
	StopsServer  bool                 `json:"stops_server,omitempty"`
	Workload     string               `json:"workload,omitempty"`
	Nodes        []int                `json:"nodes"`
	NodeLabels   []string             `json:"node_labels"`
	Params       map[string]string    `json:"params"`
	Planned      Window               `json:"planned"` // when the spec said
	Injected     time.Time            `json:"injected,omitzero"`
	Effective    time.Time            `json:"effective,omitzero"` // zero: never took effect
	Recovered    time.Time            `json:"recovered,omitzero"`
	Healthy      time.Time            `json:"healthy,omitzero"` // zero: the nodes never served again in the run
	State        string               `json:"state"`
	Error        string               `json:"error,omitempty"`
	Measurements []faults.Measurement `json:"measurements"`
}

// newFaultRecord is the record of the spec's fault name, of kind k, with the
// kind's traits the scorers select on.
func newFaultRecord(name string, k *faults.Kind) FaultRecord {
	return FaultRecord{Name: name, Kind: k.Name, Class: k.Class, StopsServer: k.StopsServer, Workload: k.Workload}
}

// traits is the fault's kind as far as the scorers need it (Name, Class,
// StopsServer, Workload): as recorded or, in a run.json written before the
// traits were recorded (no Class), the builtin kind of that name, so that old
// runs score again as they did. ok is false when neither knows the kind.
func (f FaultRecord) traits() (k *faults.Kind, ok bool) {
	if f.Class != "" {
		return &faults.Kind{Name: f.Kind, Class: f.Class, StopsServer: f.StopsServer, Workload: f.Workload}, true
	}
	k, err := faults.NewRegistry().Get(f.Kind)
	return k, err == nil
}

// TookEffect says whether the fault verifiably happened.
func (f FaultRecord) TookEffect() bool { return !f.Effective.IsZero() }

// Window is the span the fault held: from effect to recover (or the run's end).
func (f FaultRecord) Window(runEnd time.Time) Window {
	end := f.Recovered
	if end.IsZero() {
		end = runEnd
	}
	return Window{Name: FaultPrefix + f.Name, Start: f.Effective, End: end}
}

// PhaseStats are one workload x op x node's figures over one window (a phase of
// the timeline, or a fault's window: Window names it), merged from the
// per-second interval histograms; Node 0: merged over nodes. It is the
// recorder's own results.WindowStat. run.json's phase_stats written before it
// was (whose entries name the window "phase") are read by ReadRunFile.
type PhaseStats = results.WindowStat

// Audit is the durability audit: every acknowledged write read back on every node
// that serves, once each had applied everything (see AuditCluster).
type Audit struct {
	Acked   int64 `json:"acked"`   // writes the database acknowledged, of every source
	Unknown int64 `json:"unknown"` // writes whose outcome the client could not know
	// Sources are the writers read back: the load, and faults that write (a batch
	// spike), each with its own ids.
	Sources []AuditSourceCount `json:"sources,omitempty"`
	// Lost: acknowledged and missing on every node read: the cluster lost them.
	Lost      int64   `json:"lost"`
	FirstLost []int64 `json:"first_lost,omitempty"`
	// Divergent: rows some nodes read have and others lack (DivergentAcked of them
	// acknowledged): the copies disagree. Per node in Nodes (Lacks).
	Divergent      int64   `json:"divergent,omitempty"`
	DivergentAcked int64   `json:"divergent_acked,omitempty"`
	FirstDivergent []int64 `json:"first_divergent,omitempty"`
	// Unexpected: present on a node read but never acknowledged; FromUnknown of
	// them come from writes of unknown outcome (legal: a retry policy must handle
	// them), Unsent are rows no writer of the run sent (an anomaly).
	Unexpected       int64   `json:"unexpected"`
	FirstExtra       []int64 `json:"first_unexpected,omitempty"`
	FromUnknown      int64   `json:"unexpected_unknown"`
	FirstFromUnknown []int64 `json:"first_unexpected_unknown,omitempty"`
	Unsent           int64   `json:"unexpected_unsent"`
	FirstUnsent      []int64 `json:"first_unexpected_unsent,omitempty"`
	// Nodes: each node's read-back, or why it was not read.
	Nodes []NodeAudit `json:"nodes,omitempty"`
	// Settle: how long the nodes took to apply everything before the read-back.
	Settle AuditSettle `json:"settle"`
	// Node is the node read back on when only one was (a single server); 0 when
	// several were (see Nodes).
	Node  int    `json:"node,omitempty"`
	Error string `json:"error,omitempty"`
}

// AuditSourceCount is one writer's share of an audit.
type AuditSourceCount struct {
	Name    string `json:"name"`
	Acked   int64  `json:"acked"`
	Unknown int64  `json:"unknown"`
}

// NodeAudit is one node's read-back.
type NodeAudit struct {
	Node  int    `json:"node"`
	Label string `json:"label,omitempty"`
	// Read: the node was read back; Skipped says why not (did not answer, did
	// not apply everything in time, the read failed).
	Read    bool   `json:"read"`
	Skipped string `json:"skipped,omitempty"`
	// Down: it did not answer at all when the audit began, the one reason a
	// node may be left out of the durability verdicts (any other node not read
	// leaves loss and divergence unjudged).
	Down bool  `json:"down,omitempty"`
	Rows int64 `json:"rows"` // rows found in the audited ids
	// Lost: acknowledged rows this node lacks (on every node, or here only).
	Lost      int64   `json:"lost"`
	FirstLost []int64 `json:"first_lost,omitempty"`
	// Lacks: rows another node read has and this one lacks (LacksAcked of them
	// acknowledged; LacksAlone: every other node read has them).
	Lacks      int64   `json:"lacks,omitempty"`
	LacksAcked int64   `json:"lacks_acked,omitempty"`
	LacksAlone int64   `json:"lacks_alone,omitempty"`
	FirstLacks []int64 `json:"first_lacks,omitempty"`
	Unexpected int64   `json:"unexpected,omitempty"` // present here, never acknowledged
	// Applied is where the node was when it settled: a Galera seqno, a GTID
	// position; Behind: Galera seqnos it was behind the target when the audit began.
	Applied string `json:"applied,omitempty"`
	Behind  int64  `json:"behind,omitempty"`
}

// AuditSettle is the audit's wait for every node to apply everything.
type AuditSettle struct {
	Seconds  float64 `json:"seconds"`   // from the audit's start until every node read had applied everything
	Timeout  float64 `json:"timeout_s"` // the bound
	TimedOut bool    `json:"timed_out,omitempty"`
	Target   string  `json:"target,omitempty"` // what every node had to reach: a Galera seqno, a GTID position
	Behind   string  `json:"behind,omitempty"` // when it timed out: who was behind, where
	// Capped: why the bound is shorter than the one asked for (the run was
	// interrupted: the audit does not keep the user waiting).
	Capped string `json:"capped,omitempty"`
}

// Verdict of a finding.
type Verdict string

const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Evidence says where a finding's figure comes from.
type Evidence struct {
	Workload string    `json:"workload,omitempty"`
	Op       string    `json:"op,omitempty"`
	Node     int       `json:"node,omitempty"`
	Access   string    `json:"access,omitempty"` // read or write: the access kind of a gap
	Phase    string    `json:"phase,omitempty"`
	From     time.Time `json:"from,omitzero"`
	To       time.Time `json:"to,omitzero"`
	Detail   string    `json:"detail,omitempty"`
}

// Text is the evidence on one line: workload, op, node, phase, the span and the
// detail. The span is in seconds since start, or in clock time (UTC) when start is
// zero.
func (e Evidence) Text(start time.Time) string {
	var parts []string
	for _, p := range []string{e.Workload, e.Op, accessText(e.Access)} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if e.Node != 0 {
		parts = append(parts, fmt.Sprintf("n%d", e.Node))
	}
	if e.Phase != "" {
		parts = append(parts, "in "+e.Phase)
	}
	switch {
	case e.From.IsZero() && e.To.IsZero():
	case start.IsZero():
		parts = append(parts, e.From.UTC().Format("15:04:05.000")+"-"+e.To.UTC().Format("15:04:05.000"))
	default:
		parts = append(parts, fmt.Sprintf("%.1fs-%.1fs", e.From.Sub(start).Seconds(), e.To.Sub(start).Seconds()))
	}
	s := strings.Join(parts, " ")
	if e.Detail != "" {
		if s != "" {
			s += ": "
		}
		s += e.Detail
	}
	return s
}

// accessText names an access kind in evidence: "writes", "reads", or "".
func accessText(a string) string {
	if a == "" {
		return ""
	}
	return a + "s"
}

// Finding is one scored measurement against a failure mode.
type Finding struct {
	Mode      string     `json:"mode"`
	Name      string     `json:"name"` // what was measured, e.g. "oltp p99 inflation"
	Verdict   Verdict    `json:"verdict"`
	Value     float64    `json:"value"`
	Unit      string     `json:"unit,omitempty"`
	Budget    float64    `json:"budget"`
	Op        string     `json:"op"`               // how Value is held to Budget: "<=" or ">="
	Reason    string     `json:"reason,omitempty"` // why inconclusive or fail, in words
	Evidence  []Evidence `json:"evidence,omitempty"`
	Reference string     `json:"reference,omitempty"` // the SingleStore production article's figure (docs/failure-modes.md)
	Notes     []string   `json:"notes,omitempty"`     // further figures (per stream, chain, formula)
	// Strict: the finding tolerates no failure (acknowledged writes lost): over
	// repeated runs, any failing run fails the aggregate (see AggregateFindings).
	Strict bool `json:"strict,omitempty"`
}

// Recorded is everything a run measured, what the scorers read.
type Recorded struct {
	Spec     *Spec
	Topology string // galera, primary-replica, sharded, single, external
	Nodes    int
	// Roles are the nodes' roles by index (galera, primary, aggregator, leaf, ...);
	// nil when not known.
	Roles map[int]string
	// Shards are the rows of every partition on its leaf after seeding (sharded
	// clusters).
	Shards []loadgen.PartitionRows
	// ShardEngine is the sharded schema's engine (spider, vitess); Plans, on
	// Vitess, vtgate's plan of each sharded-analytics op.
	ShardEngine loadgen.ShardEngine
	Plans       map[string]loadgen.QueryPlan
	Start, End  time.Time
	Phases      []Window
	Faults      []FaultRecord
	Summary     *results.Summary
	Phase       []PhaseStats // per phase x workload x op x node, and merged (Op "", Node 0)
	Indicators  []Sample
	Audit       *Audit
	// DataBytes is the run's database's size after seeding (information_schema
	// data_length + index_length of its tables); 0: not measured.
	DataBytes int64
	// Rates the spec asked for, per workload, per phase (open loop).
	TargetRate map[string]float64
	// Seconds are the per-second lines of intervals.jsonl (results.ReadIntervals):
	// per workload x op x node, the successes, errors by class, late, dropped and
	// p50/p99/max of each interval. The scorers read recovery times and first
	// breaches from them; nil: those are reported as not measured.
	Seconds []results.IntervalLine
}
