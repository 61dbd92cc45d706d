package experiments

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// The abort guard: conditions checked every second against the live figures of
// a run. When one holds (for as long as it asks), the run stops as on a signal:
// the load stops, the faults are recovered, what was measured is scored, and the
// run is marked aborted (exit 4). A game day's way to say "not this much damage".

// Abort metrics and their units.
const (
	AbortErrors    = "errors"     // % of the last second's attempts that failed, over every workload
	AbortWriteGap  = "write_gap"  // s: the cluster-wide write gap open now (no write succeeded anywhere)
	AbortReadGap   = "read_gap"   // s: the cluster-wide read gap open now
	AbortP99       = "p99"        // ms: the largest p99 of the last second, over every workload and op
	AbortMemory    = "memory"     // %: the fullest node's memory, of its limit
	AbortNodesDown = "nodes_down" // nodes that did not answer in the last sample
)

var abortUnits = map[string]string{AbortErrors: "%", AbortWriteGap: "s", AbortReadGap: "s", AbortP99: "ms", AbortMemory: "%", AbortNodesDown: ""}

// abortNeedsSampler are the metrics only the indicator sampler gives (a load
// alone has none).
var abortNeedsSampler = map[string]bool{AbortMemory: true, AbortNodesDown: true}

// AbortNeedsSampler says whether a metric comes from the indicator sampler (a
// run has one, a load alone does not).
func AbortNeedsSampler(metric string) bool { return abortNeedsSampler[metric] }

// AbortCondition is one condition: [SCOPE:] Metric Op Value [for For]. The
// scope is the cluster (none), a workload ("oltp:") or a node ("node 2:").
type AbortCondition struct {
	Workload string        `json:"workload,omitempty"`
	Node     int           `json:"node,omitempty"`
	Metric   string        `json:"metric"`
	Op       string        `json:"op"`
	Value    float64       `json:"value"`
	For      time.Duration `json:"for,omitempty"`
	Text     string        `json:"text"`
}

var abortRE = regexp.MustCompile(`^\s*(?:(?:node\s+([0-9]+)|([a-z][a-z0-9_-]*))\s*:\s*)?([a-z_0-9]+)\s*(>=|<=|>|<)\s*([0-9.]+)\s*(%|ms|s)?\s*(?:for\s+(\S+))?\s*$`)

// ParseAbortCondition parses "errors > 5% for 10s", "write_gap > 30s",
// "nodes_down >= 2", "memory > 97%", "p99 > 500ms", and the same for one
// workload ("oltp: errors > 5%") or one node ("node 2: memory > 97%").
func ParseAbortCondition(s string) (AbortCondition, error) {
	m := abortRE.FindStringSubmatch(s)
	if m == nil {
		return AbortCondition{}, fmt.Errorf("%q: want [WORKLOAD: | node N:] METRIC OP VALUE [for DURATION], e.g. \"errors > 5%% for 10s\" (metrics: %s)", s, abortMetricList())
	}
	c := AbortCondition{Workload: m[2], Metric: m[3], Op: m[4], Text: strings.TrimSpace(s)}
	if m[1] != "" {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 {
			return c, fmt.Errorf("%q: node %q: want a node index from 1", s, m[1])
		}
		c.Node = n
	}
	m = append([]string{m[0]}, m[3:]...) // the metric's groups from 1, as before the scope
	unit, ok := abortUnits[c.Metric]
	if !ok {
		return c, fmt.Errorf("%q: unknown metric %q (known: %s)", s, c.Metric, abortMetricList())
	}
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil {
		return c, fmt.Errorf("%q: %q is not a number", s, m[3])
	}
	switch got := m[4]; {
	case got == "ms" && unit == "s":
		v /= 1000
	case got == "s" && unit == "ms":
		v *= 1000
	case got != "" && got != unit && !(got == "s" && unit == "s"):
		return c, fmt.Errorf("%q: %s is in %s, not %s", s, c.Metric, orNone(unit), got)
	}
	c.Value = v
	if m[5] != "" {
		d, err := time.ParseDuration(m[5])
		if err != nil || d < 0 {
			return c, fmt.Errorf("%q: for %q: want a duration such as 10s", s, m[5])
		}
		c.For = d
	}
	switch {
	case c.Metric == AbortNodesDown && c.Workload != "":
		return c, fmt.Errorf("%q: nodes_down is the cluster's or a node's, not a workload's", s)
	case c.Metric == AbortMemory && c.Workload != "":
		return c, fmt.Errorf("%q: memory is the cluster's or a node's, not a workload's", s)
	}
	return c, nil
}

// key names the figure a condition reads: the metric in its scope.
func (c AbortCondition) key() string { return figureKey(c.Metric, c.Workload, c.Node) }

func figureKey(metric, workload string, node int) string {
	return fmt.Sprintf("%s|%s|%d", metric, workload, node)
}

func orNone(u string) string {
	if u == "" {
		return "a count"
	}
	return u
}

func abortMetricList() string {
	return strings.Join([]string{AbortErrors + " (%)", AbortWriteGap + " (s)", AbortReadGap + " (s)", AbortP99 + " (ms)", AbortMemory + " (%)", AbortNodesDown}, ", ")
}

func (c AbortCondition) holds(v float64) bool {
	switch c.Op {
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "<":
		return v < c.Value
	default:
		return v <= c.Value
	}
}

// Aborted says why a run was aborted.
type Aborted struct {
	Condition string    `json:"condition"`
	Value     float64   `json:"value"` // the figure that breached, in the metric's unit
	Unit      string    `json:"unit,omitempty"`
	At        time.Time `json:"at"`
	// FaultsRecoveredIn is how long after the breach the last fault was
	// recovered and its nodes served again (0: none was in place).
	FaultsRecoveredIn float64 `json:"faults_recovered_in_s,omitempty"`
}

func (a *Aborted) Error() string {
	return fmt.Sprintf("aborted: %s (it was %.4g%s)", a.Condition, a.Value, a.Unit)
}

// AbortObserver is an Observer that is also told when an abort condition stopped
// the run (the Prometheus endpoint's run_aborted).
type AbortObserver interface {
	Aborted(condition string)
}

// Guard watches a run's live figures and cancels it when a condition holds. It
// is an Observer (and a results.StreamObserver) that passes everything on to
// next.
type Guard struct {
	conds  []AbortCondition
	cancel context.CancelCauseFunc
	next   Observer
	now    func() time.Time

	mu      sync.Mutex
	figures map[string]float64
	since   []time.Time // when each condition started to hold; zero: it does not
	tripped *Aborted
}

// NewGuard makes a guard over conds that calls cancel with an *Aborted as the
// cause when one holds; next (may be nil) gets every observation too.
func NewGuard(conds []AbortCondition, cancel context.CancelCauseFunc, next Observer) *Guard {
	return &Guard{conds: conds, cancel: cancel, next: next, now: time.Now, figures: map[string]float64{}, since: make([]time.Time, len(conds))}
}

// Tripped is why the guard stopped the run, nil if it did not.
func (g *Guard) Tripped() *Aborted {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tripped
}

// ObserveInterval takes the last second's error share and p99.
func (g *Guard) ObserveInterval(ivs []results.KeyInterval) {
	type agg struct {
		ok, failed int64
		p99        time.Duration
	}
	by := map[[2]any]*agg{} // (workload, node): the cluster, each workload, each node
	for _, iv := range ivs {
		var failed int64
		for _, n := range iv.Errors {
			failed += n
		}
		for _, scope := range [][2]any{{"", 0}, {iv.Key.Workload, 0}, {"", iv.Key.Node}} {
			a := by[scope]
			if a == nil {
				a = &agg{}
				by[scope] = a
			}
			a.ok += iv.Count
			a.failed += failed
			a.p99 = max(a.p99, iv.P99)
		}
	}
	g.mu.Lock()
	for scope, a := range by {
		w, n := scope[0].(string), scope[1].(int)
		if a.ok+a.failed > 0 {
			g.figures[figureKey(AbortErrors, w, n)] = 100 * float64(a.failed) / float64(a.ok+a.failed)
		}
		g.figures[figureKey(AbortP99, w, n)] = float64(a.p99) / float64(time.Millisecond)
	}
	g.mu.Unlock()
	if g.next != nil {
		g.next.ObserveInterval(ivs)
	}
	g.check()
}

// ObserveStreams takes the cluster-wide gaps open now.
func (g *Guard) ObserveStreams(now time.Time, streams []results.StreamState) {
	// A workload's gap: no success on any node (the least of its nodes'); a
	// node's: no success of any workload there; the cluster's: its own stream.
	gaps := map[string]float64{}
	least := func(k string, v float64) {
		if old, ok := gaps[k]; !ok || v < old {
			gaps[k] = v
		}
	}
	for _, st := range streams {
		metric := AbortReadGap
		if st.Access == results.Write {
			metric = AbortWriteGap
		}
		v := st.SinceSuccess.Seconds()
		if st.ClusterWide() {
			gaps[figureKey(metric, "", 0)] = v
			continue
		}
		least(figureKey(metric, st.Workload, 0), v)
		least(figureKey(metric, "", st.Node), v)
	}
	g.mu.Lock()
	maps.Copy(g.figures, gaps)
	g.mu.Unlock()
	if so, ok := g.next.(results.StreamObserver); ok && g.next != nil {
		so.ObserveStreams(now, streams)
	}
	g.check()
}

// Samples takes the nodes down and the fullest node's memory.
func (g *Guard) Samples(s []Sample) {
	down, mem := 0, 0.0
	g.mu.Lock()
	for _, smp := range s {
		d := 0.0
		if !smp.Up {
			down++
			d = 1
		}
		mem = max(mem, smp.MemoryPct)
		g.figures[figureKey(AbortNodesDown, "", smp.Node)] = d
		g.figures[figureKey(AbortMemory, "", smp.Node)] = smp.MemoryPct
	}
	g.figures[figureKey(AbortNodesDown, "", 0)], g.figures[figureKey(AbortMemory, "", 0)] = float64(down), mem
	g.mu.Unlock()
	if g.next != nil {
		g.next.Samples(s)
	}
	g.check()
}

func (g *Guard) RunStarted(name string) {
	if g.next != nil {
		g.next.RunStarted(name)
	}
}

func (g *Guard) Phase(name string) {
	if g.next != nil {
		g.next.Phase(name)
	}
}

func (g *Guard) Fault(name, kind string, active bool) {
	if g.next != nil {
		g.next.Fault(name, kind, active)
	}
}

// check trips on the first condition that has held long enough.
func (g *Guard) check() {
	g.mu.Lock()
	if g.tripped != nil {
		g.mu.Unlock()
		return
	}
	now := g.now()
	var trip *Aborted
	for i, c := range g.conds {
		v, ok := g.figures[c.key()]
		if !ok || !c.holds(v) {
			g.since[i] = time.Time{}
			continue
		}
		if g.since[i].IsZero() {
			g.since[i] = now
		}
		if now.Sub(g.since[i]) >= c.For {
			trip = &Aborted{Condition: c.Text, Value: v, Unit: abortUnits[c.Metric], At: now}
			break
		}
	}
	g.tripped = trip
	g.mu.Unlock()
	if trip != nil {
		g.cancel(trip)
		if ao, ok := g.next.(AbortObserver); ok && g.next != nil {
			ao.Aborted(trip.Condition) // at once: a scraper sees it before the recovery ends
		}
	}
}

// DefaultTargetGuard is the guard a run on a target gets unless told otherwise:
// no more nodes down than the experiment's own faults take down, and no write
// gap far beyond the failover budget (10 times it).
func DefaultTargetGuard(spec *Spec) []AbortCondition {
	nodes := map[string]bool{}
	for _, f := range spec.Faults {
		for _, n := range strings.Split(f.Node, ",") {
			nodes[strings.TrimSpace(n)] = true
		}
	}
	gap := 5.0
	if b, err := spec.registries().scorers.Budgets(ModeFailover, spec.Budgets[ModeFailover]); err == nil && b.Get("gap") > 0 {
		gap = b.Get("gap")
	}
	return []AbortCondition{
		{Metric: AbortNodesDown, Op: ">", Value: float64(len(nodes)), For: 2 * time.Second,
			Text: fmt.Sprintf("nodes_down > %d for 2s (the default guard of a target: more than the experiment's faults take down)", len(nodes))},
		{Metric: AbortWriteGap, Op: ">", Value: 10 * gap,
			Text: fmt.Sprintf("write_gap > %gs (the default guard of a target: 10 times the failover budget)", 10*gap)},
	}
}
