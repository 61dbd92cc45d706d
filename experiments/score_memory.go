package experiments

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

const (
	refMemoryKills = "the article: sized on data (2 TB on 3 x 128 GB) and OOM within 48 h; 10 concurrent copies of a ~12 GB " +
		"dashboard query: OOM kills, node restarts, cluster instability"
	refMemoryErrors = "the article: sized for data, not workload; memory = data x 0.3 + peak query concurrency x max query memory " +
		"+ write buffer x 2 + 20-30% safety called for ~1 TB against 384 GB provisioned: off by 3x"
	refMovement = "the article: a join on mismatched shard keys broadcast a 200 MB table and moved 2.8 GB for a 50 KB answer (12 s); " +
		"co-located by the join key: under 1 MB moved, 200 ms"
)

// memoryClasses are the faults memory-headroom scores (and claims): memory
// pressure on the nodes.
var memoryClasses = []faults.Class{faults.ClassMemory}

// UnitMiB is a memory figure in MiB (2^20 bytes).
const UnitMiB = "MiB"

// Inputs of the article's sizing formula that a run does not measure, and how
// much the memory figures need.
const (
	sizingSafety      = 0.25     // the article's 20-30%
	defaultLogBufSize = 16 << 20 // MariaDB's innodb_log_buffer_size default
	// minMemorySamples is the fewest memory samples (one a second) a node needs
	// in a phase for its median there to count.
	minMemorySamples = 3
)

// The memory-headroom findings.
const (
	findMemKills   = "nodes killed or restarted"
	findMemErrors  = "oltp error rate"
	findMemPerExtr = "memory per extra concurrent query"
	findMemQuery   = "max query memory"
	findMemSizing  = "sizing formula, per node"
)

const (
	refMemoryQuery = "the article: one dashboard query (GROUP BY user_id over the last hour) needed ~12 GB; " +
		"10 concurrent copies of it killed nodes"
	refMemorySizing = "the article: memory = data x 0.3 + peak query concurrency x max query memory + write buffer x 2 + 20% safety; " +
		"2 TB, 20 queries x 8 GB, a 50 GB write buffer: ~1 TB, against 384 GB provisioned (off by 3x)"
)

func memoryHeadroomScorer() Scorer {
	return scorer{
		mode: ModeMemoryHeadroom,
		budgets: []BudgetSpec{
			{Key: "oltp-error-rate", Type: BudgetPercent, Default: "0.1%", Help: "OLTP errors over OLTP operations from the memory fill (or the baseline's end) to the run's end"},
		},
		score: scoreMemory,
	}
}

// scoreMemory: "nodes killed or restarted" (nodes with an OOM kill, a restart
// or a stop that no fault asked for; any fails), with memory per node in the
// notes; "oltp error rate" under memory pressure, held to oltp-error-rate; and
// three figures reported, not judged: the memory each extra concurrent
// analytics query adds (from the server's own accounting, extraQueryMemory),
// the largest per-query peak (queryPeaks), and the article's sizing formula
// on those figures (sizingFormula).
func scoreMemory(r *Recorded, b Budgets) []Finding {
	kills := Finding{Mode: ModeMemoryHeadroom, Name: findMemKills, Unit: UnitCount, Reference: refMemoryKills}
	errs := Finding{Mode: ModeMemoryHeadroom, Name: findMemErrors, Unit: UnitFraction, Budget: b.Get("oltp-error-rate"), Reference: refMemoryErrors}
	extra := Finding{Mode: ModeMemoryHeadroom, Name: findMemPerExtr, Unit: UnitMiB, Reference: refMemoryQuery}
	query := Finding{Mode: ModeMemoryHeadroom, Name: findMemQuery, Unit: UnitMiB, Reference: refMemoryQuery}
	sizing := Finding{Mode: ModeMemoryHeadroom, Name: findMemSizing, Unit: UnitMiB, Reference: refMemorySizing}
	fills := r.faultsOfClass(memoryClasses...)
	for _, f := range fills {
		if !f.TookEffect() {
			// The per-query peaks are each query's own: they need no hog.
			why := notEffective(r, f)
			return []Finding{kills.inconclusive("%s", why), errs.inconclusive("%s", why),
				extra.inconclusive("%s", why), r.queryPeaks().finding(query), sizing.inconclusive("%s", why)}
		}
	}
	stress := Window{Name: "after-baseline", Start: r.Start, End: r.End}
	if base, ok := r.phase(PhaseBaseline); ok {
		stress.Start = base.End
	}
	for i, f := range fills {
		if i == 0 || f.Effective.Before(stress.Start) {
			stress.Start, stress.Name = f.Effective, f.Window(r.End).Name // to the run's end
		}
	}
	ex := r.extraQueryMemory()
	qp := r.queryPeaks()
	return []Finding{r.memoryKills(kills, stress), r.memoryErrors(errs, stress),
		ex.finding(extra), qp.finding(query), r.sizingFormula(sizing, ex, qp)}
}

// serverMemory is a sample's server memory of its own: Memory_used, less what
// the memory-fill hog holds inside the server (method=sql: its MEMORY tables
// count in Memory_used). ok is false when the node gave no Memory_used.
func serverMemory(s Sample) (float64, bool) {
	if !s.Up || s.ServerMemoryBytes <= 0 {
		return 0, false
	}
	v := float64(s.ServerMemoryBytes)
	if s.HogInServer {
		v -= float64(s.HogBytes)
	}
	return v, true
}

// memoryLimit is a node's memory limit in bytes: as the engine reported it,
// else the spec's; 0 when neither says.
func (r *Recorded) memoryLimit(s Sample) float64 {
	if s.MemoryLimitBytes > 0 {
		return float64(s.MemoryLimitBytes)
	}
	if r.Spec != nil && r.Spec.Cluster != nil {
		return float64(r.Spec.Cluster.Memory)
	}
	return 0
}

func (r *Recorded) memoryKills(fd Finding, stress Window) Finding {
	have := false
	for _, s := range r.Indicators {
		if s.MemoryPct > 0 || s.Running || s.Restarts > 0 || s.OOMKilled {
			have = true
			break
		}
	}
	if !have {
		return fd.inconclusive("no container indicators (memory, OOM kills, restarts) were sampled")
	}
	// Windows in which a fault stopped or restarted a node on purpose.
	excused := map[int][]Window{}
	for _, f := range r.faultsWhere(func(k *faults.Kind) bool { return k.StopsServer }) {
		if !f.TookEffect() {
			continue
		}
		end := f.Healthy
		if end.IsZero() {
			end = r.End
		}
		for _, n := range f.Nodes {
			excused[n] = append(excused[n], Window{Start: f.Injected, End: end.Add(time.Second)})
		}
	}
	inExcused := func(n int, t time.Time) bool {
		for _, w := range excused[n] {
			if !t.Before(w.Start) && !t.After(w.End) {
				return true
			}
		}
		return false
	}
	all := Window{Start: r.Start, End: r.End.Add(time.Nanosecond)}
	base, _ := r.phase(PhaseBaseline)
	var affected []int
	var events []string
	for _, n := range r.nodes() {
		ss := r.samplesOf(n, all)
		if len(ss) == 0 {
			continue
		}
		everRunning := slices.ContainsFunc(ss, func(s Sample) bool { return s.Running })
		var evs []string
		maxMem, maxAt := 0.0, time.Time{}
		maxSrv, srvAt, maxHog, hogIn := 0.0, time.Time{}, int64(0), false
		for i, s := range ss {
			if s.MemoryPct > maxMem {
				maxMem, maxAt = s.MemoryPct, s.T
			}
			if v, ok := serverMemory(s); ok && v > maxSrv {
				maxSrv, srvAt = v, s.T
			}
			if s.HogBytes > maxHog {
				maxHog, hogIn = s.HogBytes, s.HogInServer
			}
			var prev Sample
			if i > 0 {
				prev = ss[i-1]
			}
			switch {
			case s.OOMKilled && (i == 0 || !prev.OOMKilled):
				evs = append(evs, "OOM killed at "+r.at(s.T))
			case i > 0 && s.Restarts > prev.Restarts && !inExcused(n, s.T):
				evs = append(evs, fmt.Sprintf("restarted at %s (restart count %d -> %d)", r.at(s.T), prev.Restarts, s.Restarts))
			case i > 0 && everRunning && prev.Running && !s.Running && !inExcused(n, s.T):
				evs = append(evs, "stopped running at "+r.at(s.T))
			}
		}
		if maxMem > 0 {
			var bm []float64
			for _, s := range r.samplesOf(n, base) {
				if s.MemoryPct > 0 {
					bm = append(bm, s.MemoryPct)
				}
			}
			m, _ := meanSD(bm)
			fd.note("node %d: memory max %.1f%% of its limit at %s (baseline mean %.1f%%)", n, maxMem, r.at(maxAt), m)
		}
		if maxSrv > 0 {
			less := ""
			if hogIn {
				less = ", less the hog's MEMORY tables"
			}
			fd.note("node %d: the server's own memory (Memory_used%s) max %s at %s", n, less, bytesStr(maxSrv), r.at(srvAt))
		}
		if maxHog > 0 {
			where := "beside the server (method=exec)"
			if hogIn {
				where = "inside the server (method=sql)"
			}
			fd.note("node %d: the memory-fill hog held up to %s, %s", n, bytesStr(float64(maxHog)), where)
		}
		if len(evs) > 0 {
			affected = append(affected, n)
			events = append(events, fmt.Sprintf("node %d: %s", n, strings.Join(evs, ", ")))
			fd.Evidence = append(fd.Evidence, evidence("", "", n, stress, strings.Join(evs, ", ")))
		}
	}
	fd.judge(float64(len(affected)), 0, false, "")
	if fd.Verdict == Fail {
		fd.Reason = strings.Join(events, "; ")
	}
	return fd
}

func (r *Recorded) memoryErrors(fd Finding, stress Window) Finding {
	oltp := r.workloadsOfKind("oltp")
	if len(oltp) == 0 {
		return fd.inconclusive("the run has no OLTP workload")
	}
	var sum PhaseStats
	how := ""
	for _, w := range oltp {
		if s, ok := r.tally(stress, func(l results.IntervalLine) bool { return l.Workload == w }); ok {
			sum, how = addStats(sum, s), fmt.Sprintf("%s to %s", r.at(stress.Start), r.at(stress.End))
			continue
		}
		// Without per-second lines: the phases from the stress start on.
		var names []string
		for _, p := range r.Phases {
			if p.Name == PhaseWarmup || p.Name == PhaseBaseline || p.End.Before(stress.Start) || p.End.Equal(stress.Start) {
				continue
			}
			if s, ok := r.stat(p.Name, w, "", 0); ok {
				sum = addStats(sum, s)
				names = append(names, p.Name)
			}
		}
		how = "phases " + strings.Join(names, ", ")
	}
	if sum.Count+sum.Errors < minOps {
		return fd.inconclusive("too few samples: %d OLTP operations under memory pressure (fewer than %d)", sum.Count+sum.Errors, minOps)
	}
	fd.Evidence = append(fd.Evidence, evidence(strings.Join(oltp, ","), "", 0, stress, how))
	fd.judge(errorRate(sum), fd.Budget, false, "oltp-error-rate")
	fd.note("OLTP under memory pressure (%s): %d errors in %d operations: %s", how, sum.Errors, sum.Count+sum.Errors, classes(sum.ByClass))
	if r.Summary != nil {
		res := map[string]int64{}
		for _, s := range r.Summary.Workloads {
			res[s.Workload] += s.Errors[results.ClassResource]
		}
		var parts []string
		for _, k := range []string{"oltp", "analytics", "batch"} {
			for _, w := range r.workloadsOfKind(k) {
				parts = append(parts, fmt.Sprintf("%s %d", w, res[w]))
			}
		}
		if len(parts) > 0 {
			fd.note("out-of-memory / resource errors over the run (MariaDB 1037, 1038, 1041, 1114, ...): %s", strings.Join(parts, ", "))
		}
	}
	for _, w := range oltp {
		var parts []string
		for _, p := range r.Phases {
			if p.Name == PhaseWarmup {
				continue
			}
			if s, ok := r.stat(p.Name, w, "", 0); ok && s.Count > 0 {
				parts = append(parts, fmt.Sprintf("%s %.2f ms", p.Name, s.Latency.P99))
			}
		}
		if len(parts) > 0 {
			fd.note("%s p99 by phase: %s", w, strings.Join(parts, ", "))
		}
	}
	for _, w := range r.workloadsOfKind("analytics") {
		var parts []string
		for _, p := range r.Phases {
			if s, ok := r.stat(p.Name, w, "", 0); ok && s.Count+s.Errors > 0 {
				parts = append(parts, fmt.Sprintf("%s %d ok, %d failed (%s), p99 %.0f ms", p.Name, s.Count, s.Errors, classes(s.ByClass), s.Latency.P99))
			}
		}
		if len(parts) > 0 {
			fd.note("%s by phase: %s", w, strings.Join(parts, "; "))
		}
	}
	return fd
}

// concurrencyIn is the analytics concurrency of a workload in a phase: its
// configured concurrency (closed loop; phase_rates change it), or the mean in
// flight from the rate and the mean latency (open loop, Little's law). The
// latency is from the intended start, so the open-loop figure counts queries
// queued in the client as well as those running: a derived figure, not a
// count of queries the server held at once.
func (r *Recorded) concurrencyIn(ws WorkloadSpec, p Window) float64 {
	if ws.Closed() {
		c := float64(ws.Concurrency)
		if v, ok := ws.PhaseRates[p.Name]; ok {
			c = v
		}
		return c
	}
	s, ok := r.stat(p.Name, ws.Name, "", 0)
	if !ok {
		return 0
	}
	return s.Rate * s.Latency.Mean / 1000
}

// concPhase is a phase in which analytics queries ran: how many were in flight
// (over every analytics workload of the spec), and of which workloads.
type concPhase struct {
	w    Window
	conc float64
	how  string
}

// analyticsPhases are the phases (the warmup and fault windows left out) in
// which the spec's analytics workloads run, with their concurrency.
func (r *Recorded) analyticsPhases() []concPhase {
	if r.Spec == nil {
		return nil
	}
	var out []concPhase
	for _, p := range r.Phases {
		if p.Name == PhaseWarmup {
			continue
		}
		var c float64
		var how []string
		for _, ws := range r.Spec.Workloads {
			if loadgen.ClassOf(ws.Kind) != "analytics" || !r.activeIn(ws.Name, p) {
				continue
			}
			if x := r.concurrencyIn(ws, p); x > 0 {
				loop := "configured concurrency, closed loop"
				if !ws.Closed() {
					loop = "mean in flight from the rate and the mean latency, open loop: latency from the intended start, queueing included"
				}
				c += x
				how = append(how, fmt.Sprintf("%s %.3g (%s)", ws.Name, x, loop))
			}
		}
		if c > 0 {
			out = append(out, concPhase{w: p, conc: c, how: strings.Join(how, ", ")})
		}
	}
	return out
}

// extraMemory is the memory each extra concurrent analytics query adds.
type extraMemory struct {
	ok       bool
	perQuery float64 // bytes
	source   string  // what the memory figures are
	why      string  // when not ok
	notes    []string
	// The run's peak analytics concurrency and where, measured whether or not
	// the memory was.
	peak      float64
	peakPhase concPhase
}

func (e extraMemory) finding(fd Finding) Finding {
	fd.Notes = append(fd.Notes, e.notes...)
	if !e.ok {
		return fd.inconclusive("%s", e.why)
	}
	fd.judge(e.perQuery/(1<<20), 0, true, "")
	return fd
}

// memorySource is where memory figures are read from a sample.
type memorySource struct {
	name string
	val  func(s Sample) (float64, bool)
}

// extraQueryMemory: the memory each extra concurrent analytics query adds, from
// the server's own accounting. Per node, the median of Memory_used (less the
// hog's MEMORY tables when the hog lives in the server) in each phase that
// runs analytics, summed over the nodes (a query adds memory on the node it
// runs on, wherever the route sends it); the least-squares slope of that sum
// over the phases' analytics concurrency (fitMemory: the baseline cancels in
// the slope and is in the notes only). A query that builds its working set quickly and holds it adds
// about its peak; one that grows until it ends adds less than its peak, its
// memory averaged over its life (queryPeaks has the peaks). Only where the
// target gives no Memory_used, and no memory-fill hog ran, the container's
// memory as the engine reports it stands in: a hog holds that figure at its
// target by construction, whatever the queries use.
func (r *Recorded) extraQueryMemory() extraMemory {
	var e extraMemory
	phases := r.analyticsPhases()
	for _, p := range phases {
		if p.conc > e.peak {
			e.peak, e.peakPhase = p.conc, p
		}
	}
	if len(phases) == 0 {
		e.why = "no phase ran analytics queries (no analytics workload, or none ran)"
		return e
	}
	base, haveBase := r.phase(PhaseBaseline)
	var span Window
	for i, p := range phases {
		if i == 0 || p.w.Start.Before(span.Start) {
			span.Start = p.w.Start
		}
		if p.w.End.After(span.End) {
			span.End = p.w.End
		}
	}
	if haveBase {
		span.Start = minTime(span.Start, base.Start)
		span.End = maxTime(span.End, base.End)
	}
	server := memorySource{name: "the server's own accounting (Memory_used)", val: serverMemory}
	if r.anySample(span, server.val) {
		var hogIn, hogOut bool
		for _, s := range r.Indicators {
			if span.Contains(s.T) && s.HogBytes > 0 {
				hogIn, hogOut = hogIn || s.HogInServer, hogOut || !s.HogInServer
			}
		}
		if hogIn {
			server.name = "the server's own accounting (Memory_used, less the memory-fill hog's MEMORY tables)"
		}
		if hogOut {
			e.notes = append(e.notes, "the memory-fill hog ran beside the server (method=exec): Memory_used does not count it")
		}
		return r.fitMemory(e, phases, base, haveBase, server)
	}
	e.notes = append(e.notes, "the target reports no Memory_used (SHOW GLOBAL STATUS): the server's own accounting is not available")
	if hog := r.hogIn(span); hog != "" {
		e.why = "the target reports no Memory_used, and the container's total cannot stand in: " + hog +
			" held it at its target whatever the queries used"
		return e
	}
	container := memorySource{name: "the container's memory as the engine reports it (fallback: no Memory_used; no hog ran)", val: func(s Sample) (float64, bool) {
		lim := r.memoryLimit(s)
		if s.MemoryPct <= 0 || lim <= 0 {
			return 0, false
		}
		return s.MemoryPct / 100 * lim, true
	}}
	if !r.anySample(span, container.val) {
		e.why = "the target reports no Memory_used, and no container memory (with a known limit) was sampled either"
		return e
	}
	return r.fitMemory(e, phases, base, haveBase, container)
}

// anySample says whether any node gave a figure of val in w.
func (r *Recorded) anySample(w Window, val func(Sample) (float64, bool)) bool {
	for _, s := range r.Indicators {
		if _, ok := val(s); ok && w.Contains(s.T) {
			return true
		}
	}
	return false
}

// hogIn names the memory-fill hog that held memory during w ("" when none
// did): a memory fault whose window overlaps w, or a sample in w that counts
// hog bytes.
func (r *Recorded) hogIn(w Window) string {
	for _, f := range r.faultsOfClass(memoryClasses...) {
		if fw := f.Window(r.End); f.TookEffect() && fw.Start.Before(w.End) && fw.End.After(w.Start) {
			return "the fault " + f.Name + " (" + f.Kind + ")"
		}
	}
	for _, s := range r.Indicators {
		if s.HogBytes > 0 && w.Contains(s.T) {
			return "a memory-fill hog"
		}
	}
	return ""
}

// fitMemory fits the memory of src over the phases' concurrency (see
// extraQueryMemory): the least-squares slope of the sum, over the nodes, of
// each node's median in each phase. A node's fixed memory (its baseline) is
// the same in every phase and cancels in the slope: the baseline is in the
// notes only, and a node needs no baseline samples to count. A node short of
// samples in a phase that is kept is left out; the queries it served there
// added memory the sum no longer has, so the slope is scaled by the queries
// of the kept phases over those the kept nodes served (PhaseStats per node),
// and without per-node counts the figure is inconclusive.
func (r *Recorded) fitMemory(e extraMemory, phases []concPhase, base Window, haveBase bool, src memorySource) extraMemory {
	nodes := r.nodes()
	// med[n][phase]: node n's median of src in the phase, with enough samples.
	med := map[int]map[string]float64{}
	windows := make([]Window, 0, len(phases)+1)
	for _, p := range phases {
		windows = append(windows, p.w)
	}
	if haveBase {
		windows = append(windows, base)
	}
	for _, n := range nodes {
		med[n] = map[string]float64{}
		for _, w := range windows {
			if _, done := med[n][w.Name]; done {
				continue
			}
			var xs []float64
			for _, s := range r.samplesOf(n, w) {
				if v, ok := src.val(s); ok {
					xs = append(xs, v)
				}
			}
			if len(xs) >= minMemorySamples {
				med[n][w.Name] = median(xs)
			}
		}
	}
	has := func(n int, w Window) bool { _, ok := med[n][w.Name]; return ok }
	all := phases
	var kept []concPhase
	for _, p := range phases {
		if slices.ContainsFunc(nodes, func(n int) bool { return has(n, p.w) }) {
			kept = append(kept, p)
		} else {
			e.notes = append(e.notes, fmt.Sprintf("%s left out: no node has %d samples of %s in it", p.w.Name, minMemorySamples, src.name))
		}
	}
	phases = kept
	var in, out []int
	for _, n := range nodes {
		var short []string
		for _, p := range phases {
			if !has(n, p.w) {
				short = append(short, p.w.Name)
			}
		}
		if len(short) == 0 {
			in = append(in, n)
			continue
		}
		out = append(out, n)
		e.notes = append(e.notes, fmt.Sprintf("node %d left out: fewer than %d samples in %s", n, minMemorySamples, strings.Join(short, ", ")))
	}
	if len(in) == 0 {
		e.why = fmt.Sprintf("too few samples of %s: no node has %d in every phase that runs analytics", src.name, minMemorySamples)
		return e
	}
	// The share of the kept phases' queries that the nodes left out served.
	scale := 1.0
	if len(out) > 0 {
		var all, served int64
		perNode := false
		for _, p := range phases {
			for _, ws := range r.Spec.Workloads {
				if loadgen.ClassOf(ws.Kind) != "analytics" {
					continue
				}
				for _, n := range nodes {
					if s, ok := r.stat(p.w.Name, ws.Name, "", n); ok {
						perNode = true
						all += s.Count
						if slices.Contains(in, n) {
							served += s.Count
						}
					}
				}
			}
		}
		switch {
		case !perNode || served == 0 && all > 0:
			e.why = fmt.Sprintf("node %s left out, and the analytics queries it served are not recorded per node: the sum over the other nodes misses its share",
				nodeList(out))
			return e
		case all > served:
			scale = float64(all) / float64(served)
			e.notes = append(e.notes, fmt.Sprintf("the nodes kept (%s) served %d of the %d analytics queries of those phases: the slope is scaled by %.3g",
				nodeList(in), served, all, scale))
		default:
			e.notes = append(e.notes, fmt.Sprintf("node %s served no analytics query in those phases: nothing to scale", nodeList(out)))
		}
	}
	var baseOf map[int]float64 // every kept node's baseline median, or nil
	if haveBase && !slices.ContainsFunc(in, func(n int) bool { return !has(n, base) }) {
		baseOf = map[int]float64{}
		var parts []string
		for _, n := range in {
			baseOf[n] = med[n][base.Name]
			parts = append(parts, fmt.Sprintf("n%d %s", n, bytesStr(baseOf[n])))
		}
		e.notes = append(e.notes, fmt.Sprintf("baseline (%s), median per node: %s", base.Name, strings.Join(parts, ", ")))
		if slices.ContainsFunc(phases, func(p concPhase) bool { return p.w.Name == base.Name }) {
			e.notes = append(e.notes, "analytics ran in the baseline too: the figures are over the baseline's")
		}
	}
	var xs, ys []float64
	var pts []string
	for _, p := range phases {
		var sum float64
		var per []string
		for _, n := range in {
			v := med[n][p.w.Name]
			sum += v
			if baseOf != nil {
				per = append(per, fmt.Sprintf("n%d %s", n, signedBytes(v-baseOf[n])))
			} else {
				per = append(per, fmt.Sprintf("n%d %s", n, bytesStr(v)))
			}
		}
		xs, ys = append(xs, p.conc), append(ys, sum)
		fig := bytesStr(sum)
		if baseOf != nil {
			var b float64
			for _, n := range in {
				b += baseOf[n]
			}
			fig = signedBytes(sum - b)
		}
		pts = append(pts, fmt.Sprintf("%s: %.3g concurrent, %s (%s)", p.w.Name, p.conc, fig, strings.Join(per, ", ")))
	}
	k, ok := fitSlope(xs, ys) // the one check for two distinct concurrencies
	if !ok {
		e.why = fmt.Sprintf("too few samples of %s: fewer than two phases of different analytics concurrency have %d on a node", src.name, minMemorySamples)
		if !slices.ContainsFunc(all, func(p concPhase) bool { return p.conc != all[0].conc }) {
			e.why = fmt.Sprintf("no phases of rising analytics concurrency: every phase that runs analytics runs %.3g at a time (phase_rates set one per phase)", all[0].conc)
		}
		return e
	}
	what := "median per node"
	if baseOf != nil {
		what += ", less the baseline's"
	}
	e.notes = append(e.notes, fmt.Sprintf("%s, %s, summed over the nodes: %s", src.name, what, strings.Join(pts, "; ")))
	k *= scale
	e.notes = append(e.notes, fmt.Sprintf("memory per extra concurrent query: %s, the least-squares slope over %d phases", signedBytes(k), len(xs)))
	e.ok, e.perQuery, e.source = true, k, src.name
	return e
}

// signedBytes formats a byte count with its sign.
func signedBytes(b float64) string {
	if b < 0 {
		return "-" + bytesStr(-b)
	}
	return "+" + bytesStr(b)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// queryPeak is the per-query peak memory of the analytics queries.
type queryPeak struct {
	ok    bool
	max   float64 // bytes: the largest query's peak
	where string  // its workload, op and phase
	why   string  // when not ok
	notes []string
}

func (q queryPeak) finding(fd Finding) Finding {
	fd.Notes = append(fd.Notes, q.notes...)
	if !q.ok {
		return fd.inconclusive("%s", q.why)
	}
	fd.judge(q.max/(1<<20), 0, true, "")
	return fd
}

// queryPeaks: the per-query peak memory (PhaseStats.Memory: each query's own
// high-water mark, as the server accounts for it) of every op that measured it
// (loadgen's Op.Memory trait: whatever its workload's kind), per phase (the
// warmup left out), as p50, p99 and max; the largest is the formula's max
// query memory.
func (r *Recorded) queryPeaks() queryPeak {
	var q queryPeak
	type wop struct{ w, op string }
	var ops []wop
	for _, s := range r.Phase {
		if k := (wop{s.Workload, s.Op}); s.Memory != nil && s.Op != "" && s.Node == 0 && !slices.Contains(ops, k) {
			ops = append(ops, k)
		}
	}
	slices.SortFunc(ops, func(a, b wop) int { return strings.Compare(a.w+"\x00"+a.op, b.w+"\x00"+b.op) })
	var queries, unmeasured int64
	for _, o := range ops {
		var parts []string
		for _, p := range r.Phases {
			if p.Name == PhaseWarmup {
				continue
			}
			s, ok := r.stat(p.Name, o.w, o.op, 0)
			if !ok || s.Count == 0 {
				continue
			}
			queries += s.Count
			if s.Memory == nil {
				unmeasured += s.Count
				continue
			}
			m := s.Memory
			parts = append(parts, fmt.Sprintf("%s p50 %s, p99 %s, max %s (%d queries)", p.Name, bytesStr(m.P50), bytesStr(m.P99), bytesStr(m.Max), s.Count))
			if !q.ok || m.Max > q.max {
				q.ok, q.max, q.where = true, m.Max, fmt.Sprintf("%s %s in %s", o.w, o.op, p.Name)
			}
		}
		if len(parts) > 0 {
			q.notes = append(q.notes, fmt.Sprintf("per-query peak memory, %s %s: %s", o.w, o.op, strings.Join(parts, "; ")))
		}
	}
	if q.ok {
		if unmeasured > 0 {
			q.notes = append(q.notes, fmt.Sprintf("%d of %d queries of the ops that measure their memory have no per-query figure", unmeasured, queries))
		}
		return q
	}
	// No op measured its memory: what the analytics queries were, for the reason.
	for _, w := range r.workloadsOfKind("analytics") {
		for _, p := range r.Phases {
			if s, ok := r.stat(p.Name, w, "", 0); ok && p.Name != PhaseWarmup {
				queries += s.Count
			}
		}
	}
	if queries == 0 {
		q.why = "no query that measures its memory ran outside the warmup (no analytics query succeeded)"
		return q
	}
	why := "an engine without MariaDB's per-connection accounting, information_schema.PROCESSLIST MAX_MEMORY_USED"
	if r.Summary != nil && r.Summary.MemoryUnavailable != "" {
		why = r.Summary.MemoryUnavailable
	}
	q.why = fmt.Sprintf("the target reported no per-query memory for %d analytics queries: %s", queries, why)
	return q
}

// sizingFormula: the article's formula on what the run measured, per node
// (every node of a replicated cluster holds all the data): the data size from
// information_schema, the run's peak analytics concurrency, the largest
// per-query peak, the write buffer; each input with where it came from.
func (r *Recorded) sizingFormula(fd Finding, ex extraMemory, qp queryPeak) Finding {
	var missing []string
	data, dataHow := float64(r.DataBytes), "information_schema: data_length + index_length of the run's database, after seeding"
	if data <= 0 {
		data, dataHow = 0, "not measured (the run did not record the database's size)"
		missing = append(missing, "the data size")
	}
	conc, concHow := ex.peak, "not known: no analytics ran"
	if conc > 0 {
		concHow = fmt.Sprintf("the highest over the phases, in %s: %s", ex.peakPhase.w.Name, ex.peakPhase.how)
	} else {
		missing = append(missing, "the query concurrency")
	}
	qmem, qmemHow := 0.0, ""
	switch {
	case qp.ok:
		qmem, qmemHow = qp.max, "the largest per-query peak: "+qp.where
	case ex.ok && ex.perQuery > 0:
		qmem, qmemHow = ex.perQuery, "no per-query figures: the memory per extra concurrent query, from "+ex.source
	default:
		qmemHow = "not measured"
		missing = append(missing, "the query memory")
	}
	wb, wbHow := float64(defaultLogBufSize), "not measured: MariaDB's default innodb_log_buffer_size"
	var limit float64
	if c := r.Spec; c != nil && c.Cluster != nil {
		limit = float64(c.Cluster.Memory)
		if v, ok := c.Cluster.Settings["innodb_log_buffer_size"]; ok {
			if n, err := ParseSize(v); err == nil {
				wb, wbHow = float64(n), "the spec's innodb_log_buffer_size"
			}
		}
	}
	for _, s := range r.Indicators {
		if s.MemoryLimitBytes > 0 {
			limit = float64(s.MemoryLimitBytes)
			break
		}
	}
	if len(missing) > 0 {
		// A missing term would make the formula pass on what was not measured.
		fd.note("data size: %s; analytics concurrency: %s; max query memory: %s", dataHow, concHow, qmemHow)
		return fd.inconclusive("%s not measured: the formula needs every term", strings.Join(missing, ", "))
	}
	need := (data*0.3 + conc*qmem + wb*2) * (1 + sizingSafety)
	fd.note("data %s x 0.3 + analytics concurrency %.3g x max query memory %s + write buffer %s x 2, + %.0f%% safety = %s per node",
		bytesStr(data), conc, bytesStr(qmem), bytesStr(wb), sizingSafety*100, bytesStr(need))
	fd.note("data %s: %s", bytesStr(data), dataHow)
	fd.note("analytics concurrency %.3g (for the article's peak query concurrency; configured or derived, not a count of queries in flight): %s; "+
		"taken on one node, which a route may send every query to", conc, concHow)
	fd.note("max query memory %s: %s", bytesStr(qmem), qmemHow)
	fd.note("write buffer %s: %s", bytesStr(wb), wbHow)
	fd.note("per node: every node of a replicated cluster holds all the data")
	if limit > 0 {
		fd.note("provisioned %s per node: %.2gx the formula's", bytesStr(limit), limit/need)
	}
	if base, ok := r.phase(PhaseBaseline); ok {
		var parts []string
		for _, n := range r.nodes() {
			var xs []float64
			for _, s := range r.samplesOf(n, base) {
				if v, ok := serverMemory(s); ok {
					xs = append(xs, v)
				}
			}
			if len(xs) > 0 {
				parts = append(parts, fmt.Sprintf("n%d %s", n, bytesStr(median(xs))))
			}
		}
		if len(parts) > 0 {
			fd.note("the servers' own memory in the baseline (Memory_used, median): %s; the formula has no term for a server's fixed buffers (the InnoDB buffer pool, caches), which this counts",
				strings.Join(parts, ", "))
		}
	}
	fd.judge(need/(1<<20), 0, true, "")
	return fd
}

// fitSlope is the least-squares slope of ys over xs; ok is false with fewer
// than two distinct xs.
func fitSlope(xs, ys []float64) (float64, bool) {
	if len(xs) < 2 {
		return 0, false
	}
	mx, _ := meanSD(xs)
	my, _ := meanSD(ys)
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// shardedTopologies are the topologies that place rows on some nodes only.
var shardedTopologies = []string{"singlestore", "tidb", "vitess", "sharded"}

func dataMovementScorer() Scorer {
	return scorer{
		mode: ModeDataMovement,
		budgets: []BudgetSpec{
			{Key: "movement-ratio", Type: BudgetRatio, Default: "1000", Help: "bytes moved between nodes over bytes returned, per analytical query class (sharded targets)"},
		},
		score: scoreMovement,
	}
}

// scoreMovement: "bytes moved over bytes returned". Inconclusive on a target
// that is not sharded, and until bytes returned are recorded; the network
// bytes per analytical window and per spike (the faults it claims,
// spikeClasses) are reported in the notes either way, and a spike that never
// took effect is named.
func scoreMovement(r *Recorded, b Budgets) []Finding {
	if leaves := r.nodesWithRole(htc.RoleLeaf); len(leaves) > 0 {
		return scoreShardedMovement(r, b, leaves)
	}
	fd := Finding{Mode: ModeDataMovement, Name: "bytes moved / bytes returned", Unit: UnitRatio, Budget: b.Get("movement-ratio"), Reference: refMovement}
	type win struct {
		w   Window
		ops int64
		// of names the ops: "" for analytical queries, else the spike's workload.
		of string
	}
	var wins []win
	if base, ok := r.phase(PhaseBaseline); ok {
		wins = append(wins, win{w: base})
	}
	analytics := r.workloadsOfKind("analytics")
	for _, p := range r.Phases {
		if p.Name == PhaseWarmup || p.Name == PhaseBaseline {
			continue
		}
		var q int64
		active := false
		for _, w := range analytics {
			if ws, ok := r.workloadSpec(w); ok && len(ws.During) > 0 && r.activeIn(w, p) {
				active = true
				if s, ok := r.stat(p.Name, w, "", 0); ok {
					q += s.Count
				}
			}
		}
		if active {
			wins = append(wins, win{w: p, ops: q})
		}
	}
	// Every spike's window (the claim, spikeClasses): an analytics spike's moves
	// data to answer queries, a batch spike's to replicate its rows.
	var missed []string
	for _, f := range r.faultsOfClass(spikeClasses...) {
		if !f.TookEffect() {
			missed = append(missed, notEffective(r, f)+": its window is not measured")
			continue
		}
		ops, _, _ := f.measurement(faults.MeasureSpikeOps)
		of := "spike"
		if k, ok := f.traits(); ok && k.Workload == loadgen.Analytics().Name {
			of = ""
		} else if ok && k.Workload != "" {
			of = k.Workload
		}
		wins = append(wins, win{w: f.Window(r.End), ops: int64(ops), of: of})
	}
	for _, w := range wins {
		var rx, tx int64
		for _, n := range r.nodes() {
			for _, s := range r.samplesOf(n, w.w) {
				rx += s.NetRxBytes
				tx += s.NetTxBytes
			}
		}
		if rx == 0 && tx == 0 {
			continue
		}
		secs := w.w.Duration().Seconds()
		s := fmt.Sprintf("%s: nodes received %s and sent %s (%s/s)", w.w.Name, bytesStr(float64(rx)), bytesStr(float64(tx)), bytesStr(ratio(float64(rx+tx), secs)))
		switch {
		case w.ops > 0 && w.of == "":
			s += fmt.Sprintf(", %d analytical queries: ~%s per query", w.ops, bytesStr(float64(rx+tx)/float64(w.ops)))
		case w.ops > 0:
			s += fmt.Sprintf(", %d %s operations: ~%s per operation", w.ops, w.of, bytesStr(float64(rx+tx)/float64(w.ops)))
		}
		fd.note("%s", s)
	}
	if len(fd.Notes) == 0 {
		fd.note("no network counters were sampled")
	} else {
		fd.note("network bytes include replication and client traffic; the baseline shows them without analytics")
	}
	for _, m := range missed {
		fd.note("%s", m)
	}
	if !slices.Contains(shardedTopologies, r.Topology) {
		topo := r.Topology
		if topo == "" {
			topo = "unknown"
		}
		return []Finding{fd.inconclusive("the target is not sharded (MariaDB/Galera replicate everything): no shard key to mismatch (topology %s)", topo)}
	}
	return []Finding{fd.inconclusive("no node of the target is a leaf: the bytes the leaves send cannot be set against the bytes returned (name roles aggregator and leaf in the target file)")}
}
