// Package metrics serves a run's live figures to Prometheus: operations, errors by
// class, latency of the last interval, fault state, the run's phase and every node's
// indicators, updated each second while a load, an experiment or a suite runs.
//
// A *Metrics is fed through the hooks of the other packages (results.Observer,
// experiments.Observer), so that only this package and the command line import the
// Prometheus client. Start serves it over HTTP at /metrics.
package metrics

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

// Quantiles are the latency quantiles served (1: the maximum).
var Quantiles = []float64{0.5, 0.99, 0.999, 1}

// Metrics holds the collectors of one registry (not the global one). Its methods
// are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	ops, errs, late, dropped, canceled *prometheus.CounterVec
	latency                            *latency
	intervalEnd                        *prometheus.GaugeVec // no labels: absent until set

	run, phase, fault, aborted *prometheus.GaugeVec

	sinceSuccess, longestGap               *prometheus.GaugeVec // per workload, node, access
	clusterSinceSuccess, clusterLongestGap *prometheus.GaugeVec // per access

	up, ready, primary, paused, clusterSize     *prometheus.GaugeVec
	memory, cpu, fcPaused, recvQ, sendQ         *prometheus.GaugeVec
	threadsRunning, threadsConnected, staleness *prometheus.GaugeVec
	replicaLag                                  *prometheus.GaugeVec
	sampleTime                                  *prometheus.GaugeVec // no labels: absent until set
	mu                                          sync.Mutex           // the fields below
	curRun, curPhase                            string
}

var (
	_ experiments.Observer   = (*Metrics)(nil)
	_ results.StreamObserver = (*Metrics)(nil)
)

// New returns the collectors, registered on a registry of their own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	key := []string{"workload", "op", "node"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "htapchaos_" + name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "htapchaos_" + name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	m.ops = counter("operations_total", "Operations that succeeded.", key...)
	m.errs = counter("errors_total", "Operations that failed, by error class (our own shutdown excluded).", append(key, "class")...)
	m.late = counter("late_total", "Operations that started later than the late threshold after their intended start.", key...)
	m.dropped = counter("dropped_total", "Operations never started: the in-flight bound was reached.", key...)
	m.canceled = counter("canceled_total", "Operations cut short by the run's own shutdown.", key...)
	m.latency = newLatency(key)
	m.reg.MustRegister(m.latency)
	m.intervalEnd = gauge("interval_end_timestamp_seconds", "End of the last interval the load figures cover, unix seconds.")

	m.run = gauge("run_info", "1 for the experiment (or load) running now, 0 for one that ran before.", "run")
	m.phase = gauge("phase_info", "1 for the run's phase now, 0 for the others seen.", "phase")
	m.fault = gauge("fault_active", "1 while a fault of the experiment holds (from injection to recovery), 0 before and after.", "fault", "kind")
	m.aborted = gauge("run_aborted", "1 once an abort condition stopped the run (the condition in its label).", "run", "condition")

	stream := []string{"workload", "node", "access"}
	m.sinceSuccess = gauge("stream_seconds_since_success", "Time since the last successful operation of the stream (workload, node, access read or write): the gap open now.", stream...)
	m.longestGap = gauge("stream_longest_gap_seconds", "Longest gap (window without a successful operation) of the stream so far, the open one included.", stream...)
	m.clusterSinceSuccess = gauge("cluster_seconds_since_success", "Time since the last successful operation of the access kind (read or write) on any node.", "access")
	m.clusterLongestGap = gauge("cluster_longest_gap_seconds", "Longest window so far in which no operation of the access kind (read or write) succeeded on any node.", "access")

	n := "node"
	m.up = gauge("node_up", "1 if the node answered a query in its last sample.", n)
	m.ready = gauge("node_ready", "Galera: 1 if wsrep_ready is ON.", n)
	m.primary = gauge("node_primary", "Galera: 1 if the node is in the primary component.", n)
	m.clusterSize = gauge("node_cluster_size", "Galera: wsrep_cluster_size.", n)
	m.fcPaused = gauge("node_flow_control_paused_seconds", "Galera: time paused by flow control during the last sample interval.", n)
	m.recvQ = gauge("node_recv_queue", "Galera: wsrep_local_recv_queue.", n)
	m.sendQ = gauge("node_send_queue", "Galera: wsrep_local_send_queue.", n)
	m.threadsRunning = gauge("node_threads_running", "Threads_running.", n)
	m.threadsConnected = gauge("node_threads_connected", "Threads_connected.", n)
	m.staleness = gauge("node_staleness_seconds", "Age of the newest heartbeat row visible on the node.", n)
	m.replicaLag = gauge("node_replica_lag_seconds", "Replica: Seconds_Behind_Master.", n)
	m.memory = gauge("node_memory_percent", "Container memory use, percent of its limit.", n)
	m.cpu = gauge("node_cpu_percent", "Container CPU use, percent of one core.", n)
	m.paused = gauge("node_paused", "1 if the node's container is paused.", n)
	m.sampleTime = gauge("indicators_timestamp_seconds", "Time of the last indicator sample, unix seconds.")
	return m
}

// Registry is the registry the collectors are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveInterval adds one closed interval of the load (results.Observer).
func (m *Metrics) ObserveInterval(ivs []results.KeyInterval) {
	for _, iv := range ivs {
		k := []string{iv.Key.Workload, iv.Key.Op, strconv.Itoa(iv.Key.Node)}
		m.ops.WithLabelValues(k...).Add(float64(iv.Count))
		m.late.WithLabelValues(k...).Add(float64(iv.Late))
		m.dropped.WithLabelValues(k...).Add(float64(iv.Dropped))
		m.canceled.WithLabelValues(k...).Add(float64(iv.Canceled))
		for c, n := range iv.Errors {
			m.errs.WithLabelValues(k[0], k[1], k[2], string(c)).Add(float64(n))
		}
		m.latency.observe(k, iv)
	}
	if len(ivs) > 0 {
		m.intervalEnd.WithLabelValues().Set(float64(ivs[0].End.UnixNano()) / 1e9)
	}
}

// ObserveStreams sets the gap gauges from the streams' state after an interval
// (results.StreamObserver).
func (m *Metrics) ObserveStreams(_ time.Time, ss []results.StreamState) {
	for _, st := range ss {
		a := string(st.Access)
		if st.ClusterWide() {
			m.clusterSinceSuccess.WithLabelValues(a).Set(st.SinceSuccess.Seconds())
			m.clusterLongestGap.WithLabelValues(a).Set(st.Longest.Seconds())
			continue
		}
		k := []string{st.Workload, strconv.Itoa(st.Node), a}
		m.sinceSuccess.WithLabelValues(k...).Set(st.SinceSuccess.Seconds())
		m.longestGap.WithLabelValues(k...).Set(st.Longest.Seconds())
	}
}

// RunStarted marks name as the run now. The gauges of the run before (latency,
// phases, faults, indicators) are cleared; the counters go on.
func (m *Metrics) RunStarted(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.curRun != "" {
		m.run.WithLabelValues(m.curRun).Set(0)
	}
	m.curRun, m.curPhase = name, ""
	m.run.WithLabelValues(name).Set(1)
	m.latency.forget()
	for _, g := range []*prometheus.GaugeVec{m.phase, m.fault, m.sampleTime, m.sinceSuccess, m.longestGap, m.clusterSinceSuccess, m.clusterLongestGap, m.up, m.ready, m.primary, m.paused, m.clusterSize,
		m.memory, m.cpu, m.fcPaused, m.recvQ, m.sendQ, m.threadsRunning, m.threadsConnected, m.staleness, m.replicaLag} {
		g.Reset()
	}
}

// Aborted marks the run now as stopped by an abort condition.
func (m *Metrics) Aborted(condition string) {
	m.mu.Lock()
	run := m.curRun
	m.mu.Unlock()
	m.aborted.WithLabelValues(run, condition).Set(1)
}

// Phase marks name as the run's phase now.
func (m *Metrics) Phase(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == m.curPhase {
		return
	}
	if m.curPhase != "" {
		m.phase.WithLabelValues(m.curPhase).Set(0)
	}
	m.curPhase = name
	m.phase.WithLabelValues(name).Set(1)
}

// Fault sets a fault's state: 1 while it holds, else 0.
func (m *Metrics) Fault(name, kind string, active bool) {
	v := 0.0
	if active {
		v = 1
	}
	m.fault.WithLabelValues(name, kind).Set(v)
}

// Samples sets the node indicators from one tick of the sampler. What a sample
// does not hold (a node that did not answer has no Galera figures; a node that is
// not Galera has none ever) is removed rather than shown as zero.
func (m *Metrics) Samples(ss []experiments.Sample) {
	for _, s := range ss {
		n := strconv.Itoa(s.Node)
		m.up.WithLabelValues(n).Set(b2f(s.Up))
		galera := s.Up && s.ClusterSize > 0
		set := func(g *prometheus.GaugeVec, ok bool, v float64) {
			if ok {
				g.WithLabelValues(n).Set(v)
			} else {
				g.DeleteLabelValues(n)
			}
		}
		set(m.ready, galera, b2f(s.Ready))
		set(m.primary, galera, b2f(s.Primary))
		set(m.clusterSize, galera, float64(s.ClusterSize))
		set(m.fcPaused, galera, s.FCPausedMs/1e3)
		set(m.recvQ, galera, float64(s.RecvQueue))
		set(m.sendQ, galera, float64(s.SendQueue))
		set(m.threadsRunning, s.Up, float64(s.ThreadsRunning))
		set(m.threadsConnected, s.Up, float64(s.ThreadsConnected))
		set(m.staleness, s.Up && s.StalenessMs != nil, ptr(s.StalenessMs)/1e3)
		set(m.replicaLag, s.Up && s.ReplicaLagS != nil, ptr(s.ReplicaLagS))
		// Container figures: zero when not read (not a container, or no fresh reading).
		set(m.memory, s.MemoryPct > 0, s.MemoryPct)
		set(m.cpu, s.MemoryPct > 0, s.CPUPct)
		set(m.paused, s.Running || s.Paused, b2f(s.Paused))
	}
	if len(ss) > 0 {
		m.sampleTime.WithLabelValues().Set(float64(ss[0].T.UnixNano()) / 1e9)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func ptr(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// latency is a summary per key: the quantiles of the last interval (the window of
// a Prometheus summary is one interval here), the count and sum since the start.
type latency struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	keys map[[3]string]*latencyOf
}

type latencyOf struct {
	count uint64
	sum   float64
	q     [4]float64 // by Quantiles; NaN: nothing succeeded in the last interval
}

func newLatency(labels []string) *latency {
	return &latency{
		desc: prometheus.NewDesc("htapchaos_latency_seconds",
			"Latency of successful operations from their intended start: quantiles of the last interval (1: the maximum; NaN when none succeeded in it), count and sum since the start.",
			labels, nil),
		keys: map[[3]string]*latencyOf{},
	}
}

func (l *latency) observe(k []string, iv results.KeyInterval) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := [3]string{k[0], k[1], k[2]}
	lo := l.keys[key]
	if lo == nil {
		lo = &latencyOf{}
		l.keys[key] = lo
	}
	lo.count += uint64(iv.Count)
	lo.sum += iv.Sum.Seconds()
	lo.q = [4]float64{iv.P50.Seconds(), iv.P99.Seconds(), iv.P999.Seconds(), iv.Max.Seconds()}
	if iv.Count == 0 {
		lo.q = [4]float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
}

// forget sets every quantile to NaN (a new run: the old keys' last intervals are
// not news); counts and sums go on.
func (l *latency) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lo := range l.keys {
		lo.q = [4]float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
}

func (l *latency) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

func (l *latency) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, lo := range l.keys {
		qs := make(map[float64]float64, len(Quantiles))
		for i, q := range Quantiles {
			qs[q] = lo.q[i]
		}
		ch <- prometheus.MustNewConstSummary(l.desc, lo.count, lo.sum, qs, k[0], k[1], k[2])
	}
}
