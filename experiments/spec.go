package experiments

import (
	"fmt"
	"slices"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/units"
)

// Spec is an experiment file: what cluster, what data, which phases, which
// workloads and faults on one clock, which failure modes to score and against
// which budgets.
type Spec struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description" json:"description"`
	Modes       []string `yaml:"modes" json:"modes"` // failure-mode ids scored

	// Cluster to start in containers; or Target, an exec target file (a cluster
	// htapchaos did not create). --cluster NAME on the command line uses a running
	// cluster instead of either.
	Cluster *ClusterSpec `yaml:"cluster" json:"cluster,omitempty"`
	Target  string       `yaml:"target" json:"target,omitempty"`

	Data      DataSpec             `yaml:"data" json:"data"`
	Phases    []PhaseSpec          `yaml:"phases" json:"phases"`
	Workloads []WorkloadSpec       `yaml:"workloads" json:"workloads"`
	Faults    []FaultSpec          `yaml:"faults" json:"faults"`
	Heartbeat *HeartbeatSpec       `yaml:"heartbeat" json:"heartbeat,omitempty"`
	Audit     *AuditSpec           `yaml:"audit" json:"audit,omitempty"`
	Budgets   map[string]BudgetSet `yaml:"budgets" json:"budgets,omitempty"` // mode -> key -> value
	// Abort are conditions that stop the run when they hold (see
	// ParseAbortCondition): "errors > 5% for 10s", "nodes_down >= 2".
	Abort []string `yaml:"abort" json:"abort,omitempty"`

	// Quick is the --quick profile: overrides applied before --set, as --set takes
	// them (path: value), to keep the experiment short enough for CI.
	Quick map[string]string `yaml:"quick" json:"quick,omitempty"`

	file  string
	lines map[string]int // path -> line, for errors
	regs  registries     // what ParseSpec was given (ParseOptions); nil fields: the builtins
}

// BudgetSet is one mode's budget overrides: key -> value in human units.
type BudgetSet map[string]string

// ClusterSpec is a cluster to start in containers.
type ClusterSpec struct {
	Topology string `yaml:"topology" json:"topology"` // galera, primary-replica, sharded, single, vitess
	Nodes    int    `yaml:"nodes" json:"nodes"`
	// Sharded: aggregators over leaves (nodes 1..aggregators are the aggregators),
	// and how many partitions of each sharded table a leaf holds.
	Aggregators       int `yaml:"aggregators" json:"aggregators,omitempty"`
	Leaves            int `yaml:"leaves" json:"leaves,omitempty"`
	PartitionsPerLeaf int `yaml:"partitions_per_leaf" json:"partitions_per_leaf,omitempty"`
	// LeafProxy puts a Toxiproxy container between the aggregators and the
	// leaves: network-latency on a leaf then acts on the aggregator -> leaf path.
	LeafProxy bool              `yaml:"leaf_proxy" json:"leaf_proxy,omitempty"`
	Memory    Size              `yaml:"memory" json:"memory"` // per node
	CPUs      float64           `yaml:"cpus" json:"cpus,omitempty"`
	Settings  map[string]string `yaml:"settings" json:"settings,omitempty"` // every node
	// NodeSettings are per node: index -> key -> value.
	NodeSettings map[int]map[string]string `yaml:"node_settings" json:"node_settings,omitempty"`
	LB           bool                      `yaml:"lb" json:"lb,omitempty"`
}

// DataSpec sizes the load generator's tables.
type DataSpec struct {
	Users  int64 `yaml:"users" json:"users"`
	Orders int64 `yaml:"orders" json:"orders"`
	// Merchants: the sharded schema's (default 500).
	Merchants int64 `yaml:"merchants" json:"merchants,omitempty"`
}

// PhaseSpec is one step of the timeline. Phases run one after the other; the
// runner's baseline, recovery and after windows are the phases of those names.
type PhaseSpec struct {
	Name     string `yaml:"name" json:"name"`
	Duration Dur    `yaml:"duration" json:"duration"`
}

// WorkloadSpec is one workload stream.
type WorkloadSpec struct {
	Name        string         `yaml:"name" json:"name"` // default: the kind
	Kind        string         `yaml:"kind" json:"kind"` // oltp, analytics, batch (loadgen registry)
	Rate        float64        `yaml:"rate" json:"rate,omitempty"`
	Concurrency int            `yaml:"concurrency" json:"concurrency,omitempty"`
	Mix         map[string]int `yaml:"mix" json:"mix,omitempty"`
	Route       string         `yaml:"route" json:"route,omitempty"` // all, node=N, nodes=N,M
	Timeout     Dur            `yaml:"timeout" json:"timeout,omitempty"`
	Retries     int            `yaml:"retries" json:"retries,omitempty"`
	Backoff     Dur            `yaml:"backoff" json:"backoff,omitempty"`
	BatchRows   int            `yaml:"batch_rows" json:"batch_rows,omitempty"`
	Query       string         `yaml:"query" json:"query,omitempty"` // analytics "sql"
	// File is a workload file (kind: file), relative to the spec's file; Inline
	// is one written in the spec (workload: {name: ..., schema: ..., ops: ...}).
	// See loadgen.ParseWorkloadFile and spec_workloads.go.
	File   string          `yaml:"file" json:"file,omitempty"`
	Inline *InlineWorkload `yaml:"workload" json:"-"`
	// Class is what the scorers count the workload as (oltp, analytics, batch):
	// its registered or file workload's class, resolved when the spec is checked.
	Class string            `yaml:"-" json:"class,omitempty"`
	wl    *loadgen.Workload // a workload file's, once read
	// During limits the workload to these phases (default: all); PhaseRates change
	// its rate (or concurrency, in closed loop) by phase.
	During     []string           `yaml:"during" json:"during,omitempty"`
	PhaseRates map[string]float64 `yaml:"phase_rates" json:"phase_rates,omitempty"`
}

// Closed says whether the workload runs closed-loop.
func (w WorkloadSpec) Closed() bool { return w.Concurrency > 0 }

// FaultSpec is one fault on the timeline.
type FaultSpec struct {
	Name   string            `yaml:"name" json:"name"` // default: the kind
	Kind   string            `yaml:"kind" json:"kind"`
	Phase  string            `yaml:"phase" json:"phase"`             // starts with this phase
	Offset Dur               `yaml:"offset" json:"offset,omitempty"` // after the phase starts
	For    Dur               `yaml:"for" json:"for,omitempty"`       // hold; default: the rest of the phase
	Node   string            `yaml:"node" json:"node"`               // as --node takes it
	Params map[string]string `yaml:"params" json:"params,omitempty"` // as --param takes them
	Expect string            `yaml:"expect" json:"expect,omitempty"` // "" or "no-effect": built to not take effect
}

// HeartbeatSpec is the freshness heartbeat: a row written on one node every
// Every, read on the others.
type HeartbeatSpec struct {
	Node  int `yaml:"node" json:"node"`
	Every Dur `yaml:"every" json:"every"`
}

// AuditSpec tunes the durability audit.
type AuditSpec struct {
	// Settle bounds the wait for every node to apply everything before the
	// read-back (default 60s); when it expires the audit is inconclusive.
	Settle Dur `yaml:"settle" json:"settle,omitempty"`
}

// auditSettle is the spec's audit.settle, 0 when not given.
func (s *Spec) auditSettle() time.Duration {
	if s.Audit == nil {
		return 0
	}
	return s.Audit.Settle.D()
}

// Dur is a duration written in human units ("30s", "1m30s"): units.Duration, the
// one duration type of specs, exec targets and --set.
type Dur = units.Duration

// Size is a byte size written in human units ("512MiB", "1GiB", "512MB" = 512 MiB
// as in docker run --memory): units.Size, positive when written.
type Size = units.Size

// ParseSize parses a positive size, as units.ParseSize (512MiB, 1GiB, 64M,
// 512MB = 512 MiB, 1048576).
func ParseSize(s string) (int64, error) {
	v, err := units.ParseSize(s)
	if err == nil && v == 0 {
		err = fmt.Errorf("%q: want a positive size such as 512MiB or 2GiB", s)
	}
	return v, err
}

// loadPhases is w's rate (open loop) or concurrency (closed loop) in each phase of
// the timeline.
func (s *Spec) loadPhases(w WorkloadSpec) []loadgen.Phase {
	var out []loadgen.Phase
	for _, p := range s.Phases {
		lp := loadgen.Phase{Name: p.Name, Duration: p.Duration.D()}
		level := w.Rate
		if w.Closed() {
			level = float64(w.Concurrency)
		}
		if v, ok := w.PhaseRates[p.Name]; ok {
			level = v
		}
		if len(w.During) > 0 && !slices.Contains(w.During, p.Name) {
			level = 0
		}
		if w.Closed() {
			lp.Concurrency = int(level)
		} else {
			lp.Rate = level
		}
		out = append(out, lp)
	}
	return out
}

// Procs is how many processors (GOMAXPROCS) the experiment needs, at most limit:
// loadgen.Procs for its workloads and spikes (each spike is its workload, analytics
// or batch), and one more. Beside the load an experiment samples every node, writes
// a heartbeat and drives faults; on one processor that work delayed the start of
// operations: at 2K ops/s, point-read p99 1.78 ms against 1.41 ms on two (medians
// of 6 runs), with the same service time.
func (s *Spec) Procs(limit int) int {
	regs := s.registries()
	reg := regs.workloads
	var specs []loadgen.Spec
	for i, w := range s.Workloads {
		wl, _ := s.workload(i, reg)
		specs = append(specs, loadgen.Spec{Workload: wl, Closed: w.Closed(), Phases: s.loadPhases(w)})
	}
	fr := regs.faults
	for _, f := range s.Faults {
		// A fault that runs a workload of its own (a spike) needs its processors too.
		if k, err := fr.Get(f.Kind); err == nil && k.Workload != "" {
			if wl, err := reg.Get(k.Workload); err == nil {
				specs = append(specs, loadgen.Spec{Workload: wl})
			}
		}
	}
	return max(1, min(limit, loadgen.Procs(specs, limit)+1))
}
