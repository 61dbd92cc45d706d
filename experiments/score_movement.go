package experiments

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// Data movement on a sharded cluster, measured where the nodes account for it:
// the leaves' own Bytes_sent and Com_select (what they sent their aggregators and
// the SELECTs they ran for them), set against the bytes each analytical query
// returned to the client (counted on the load generator's connection). Each
// analytical class runs in a phase of its own, so a window's movement belongs to
// one class; the baseline (steady OLTP and the sampler's own queries, no
// analytics) is subtracted at its per-second rate.

// nodesWithRole lists the run's nodes of a role, 1-based.
func (r *Recorded) nodesWithRole(role htc.Role) []int {
	var out []int
	for n, ro := range r.Roles {
		if ro == string(role) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// movementClass is one analytical class measured in its own window.
type movementClass struct {
	op       string
	workload string
	phase    string // the class's phase
	w        Window // that phase, and the quiet phase after it when there is one
	queries  int64
	errors   int64
	returned int64
	p50, p99 time.Duration
	// Over the leaves, baseline subtracted.
	moved, selects float64
	// On the cluster network: what the leaves sent, what the aggregators received.
	leafNetTx, aggNetRx int64
	// Queries of an earlier class that finished in this class's phase.
	spilled []string
	// samples of the leaves' counters in the window; baselined: the baseline's
	// rates were subtracted.
	samples   int
	baselined bool
}

// movementClasses finds the windows in which exactly one analytical op ran, with
// its figures. A quiet phase right after (no analytical workload active) joins
// the window: a query still running at the phase's end finishes there.
func (r *Recorded) movementClasses(leaves []int) (out []movementClass, mixed []string) {
	analytics := r.workloadsOfKind("analytics")
	active := func(p Window) bool {
		return slices.ContainsFunc(analytics, func(w string) bool {
			ws, ok := r.workloadSpec(w)
			return ok && len(ws.During) > 0 && r.activeIn(w, p)
		})
	}
	for i, p := range r.Phases {
		if p.Name == PhaseWarmup || p.Name == PhaseBaseline || strings.HasPrefix(p.Name, FaultPrefix) || !active(p) {
			continue
		}
		w := p
		var phases = []string{p.Name}
		if i+1 < len(r.Phases) && !active(r.Phases[i+1]) && r.Phases[i+1].Name != PhaseBaseline {
			w.End = r.Phases[i+1].End
			phases = append(phases, r.Phases[i+1].Name)
		}
		// The ops of the workloads that run in p; a query of an earlier class
		// still finishing in p is named, its bytes cannot be told apart.
		byOp := map[string]*movementClass{}
		var spilled []string
		for _, st := range r.Phase {
			if !slices.Contains(phases, st.Window) || !slices.Contains(analytics, st.Workload) || st.Op == "" || st.Node != 0 || st.Count+st.Errors == 0 {
				continue
			}
			if !r.activeIn(st.Workload, p) {
				if st.Window == p.Name {
					spilled = append(spilled, fmt.Sprintf("%d %s", st.Count+st.Errors, st.Op))
				}
				continue
			}
			c := byOp[st.Op]
			if c == nil {
				c = &movementClass{op: st.Op, workload: st.Workload, phase: p.Name, w: w}
				byOp[st.Op] = c
			}
			c.queries += st.Count
			c.errors += st.Errors
			c.returned += st.ReturnedTotal
			if st.Window == p.Name {
				// Latency of the class's own phase (the spill-over is a tail).
				c.p50, c.p99 = ms(st.Latency.P50), ms(st.Latency.P99)
			}
		}
		for _, c := range byOp {
			c.spilled = spilled
		}
		switch len(byOp) {
		case 0:
		case 1:
			for _, c := range byOp {
				out = append(out, *c)
			}
		default:
			var ops []string
			for op := range byOp {
				ops = append(ops, op)
			}
			slices.Sort(ops)
			mixed = append(mixed, fmt.Sprintf("%s: %s ran together; each class needs a phase of its own", p.Name, strings.Join(ops, ", ")))
		}
	}
	bRate, sRate, haveBase := r.leafRates(leaves)
	aggs := r.nodesWithRole(htc.RoleAggregator)
	for i := range out {
		c := &out[i]
		var sent, sel int64
		for _, n := range leaves {
			for _, smp := range r.samplesOf(n, c.w) {
				sent += smp.BytesSent
				sel += smp.ComSelect
				c.leafNetTx += smp.ClusterNetTxBytes
				c.samples++
			}
		}
		for _, n := range aggs {
			for _, smp := range r.samplesOf(n, c.w) {
				c.aggNetRx += smp.ClusterNetRxBytes
			}
		}
		c.moved, c.selects = float64(sent), float64(sel)
		if haveBase && c.samples > 0 {
			// Per leaf sample: the baseline rates are summed over the leaves.
			perLeaf := float64(c.samples) / float64(len(leaves))
			c.moved = max(0, c.moved-bRate*perLeaf)
			c.selects = max(0, c.selects-sRate*perLeaf)
			c.baselined = true
		}
	}
	return out, mixed
}

// leafRates are the leaves' Bytes_sent and Com_select per sample in the
// baseline, summed over the leaves: what flows without analytics.
func (r *Recorded) leafRates(leaves []int) (bytes, selects float64, ok bool) {
	base, ok := r.phase(PhaseBaseline)
	if !ok {
		return 0, 0, false
	}
	for _, n := range leaves {
		ss := r.samplesOf(n, base)
		if len(ss) == 0 {
			return 0, 0, false
		}
		var b, s int64
		for _, smp := range ss {
			b += smp.BytesSent
			s += smp.ComSelect
		}
		bytes += float64(b) / float64(len(ss))
		selects += float64(s) / float64(len(ss))
	}
	return bytes, selects, true
}

// scoreShardedMovement scores data movement on a sharded cluster: per analytical
// class, bytes moved over bytes returned, leaf round trips per query and latency;
// what batched key access changes; and OLTP's p99 while the unbatched
// non-co-located join runs.
func scoreShardedMovement(r *Recorded, b Budgets, leaves []int) []Finding {
	base := Finding{Mode: ModeDataMovement, Name: "bytes moved / bytes returned", Unit: UnitRatio, Budget: b.Get("movement-ratio"), Reference: refMovement}
	classes, mixed := r.movementClasses(leaves)
	if len(classes) == 0 {
		fd := base
		for _, m := range mixed {
			fd.note("%s", m)
		}
		return []Finding{fd.inconclusive("no analytical class ran in a phase of its own (give each analytics workload a mix of one op and `during: [its phase]`)")}
	}
	var out []Finding
	perQuery := map[string]float64{}
	for i := range classes {
		c := &classes[i]
		fd := base
		fd.Name = named(base.Name, c.op)
		if c.samples == 0 {
			out = append(out, fd.inconclusive("no sample of the leaves' counters in %s", c.w.Name))
			continue
		}
		if !c.baselined {
			fd.note("no baseline phase: the OLTP's and the sampler's own traffic is not subtracted")
		}
		ev := evidence("", c.op, 0, c.w, fmt.Sprintf("%d queries (%d failed); leaves sent %s beyond the baseline, %s returned to the client; %.0f leaf selects per query; p50 %v, p99 %v",
			c.queries, c.errors, bytesStr(c.moved), bytesStr(float64(c.returned)), ratio(c.selects, float64(c.queries)), c.p50.Round(time.Millisecond), c.p99.Round(time.Millisecond)))
		fd.Evidence = append(fd.Evidence, ev)
		if len(c.spilled) > 0 {
			fd.note("queries of an earlier class finished in %s (%s): their bytes count here too", c.w.Name, strings.Join(c.spilled, ", "))
		}
		if r.ShardEngine == loadgen.VitessEngine && strings.HasSuffix(c.op, "-bka") {
			fd.note("vtgate has no batched key access: %s runs the plain join's statement", c.op)
		}
		if c.leafNetTx > 0 || c.aggNetRx > 0 {
			fd.note("cluster network: the leaves sent %s, the aggregators received %s (TCP/IP framing included, baseline not subtracted)", bytesStr(float64(c.leafNetTx)), bytesStr(float64(c.aggNetRx)))
		}
		if c.queries == 0 || c.returned == 0 {
			out = append(out, fd.inconclusive("%s: no successful query returned bytes in %s (%d failed)", c.op, c.w.Name, c.errors))
			continue
		}
		perQuery[c.op] = c.moved / float64(c.queries)
		fd.judge(c.moved/float64(c.returned), base.Budget, false, "movement-ratio")
		fd.note("per query: %s moved for %s returned, %.0f leaf round trips, p99 %v",
			bytesStr(perQuery[c.op]), bytesStr(float64(c.returned)/float64(c.queries)), c.selects/float64(c.queries), c.p99.Round(time.Millisecond))
		if fd.Verdict == Fail {
			fd.Reason = fmt.Sprintf("%s moved %.0fx the bytes it returned (budget %.0fx): the aggregator pulled rows from the leaves to answer", c.op, fd.Value, fd.Budget)
		}
		out = append(out, fd)
	}
	out = append(out, scoreColocation(r, classes)...)
	// Batched key access against the same join unbatched (Spider's; vtgate has
	// no batched key access, its -bka ops run the plain statements).
	for _, op := range slices.Sorted(maps.Keys(perQuery)) {
		if r.ShardEngine == loadgen.VitessEngine {
			break
		}
		unb, ok := strings.CutSuffix(op, "-bka")
		if !ok {
			continue
		}
		u, ok := perQuery[unb]
		if !ok || perQuery[op] <= 0 {
			continue
		}
		fd := Finding{Mode: ModeDataMovement, Name: named("join strategy: bytes moved unbatched / batched", unb), Unit: UnitRatio}
		fd.judge(u/perQuery[op], 0, true, "")
		fd.Reason = fmt.Sprintf("batched key access moved %.1fx fewer bytes per query (%s against %s)", fd.Value, bytesStr(perQuery[op]), bytesStr(u))
		out = append(out, fd)
	}
	// OLTP while the unbatched non-co-located join runs.
	for _, c := range classes {
		if c.op != "noncolocated-join" {
			continue
		}
		for _, w := range r.workloadsOfKind("oltp") {
			bs, ok1 := r.stat(PhaseBaseline, w, "", 0)
			js, ok2 := r.stat(c.phase, w, "", 0)
			if !ok1 || !ok2 || ms(bs.Latency.P99) <= 0 {
				continue
			}
			fd := Finding{Mode: ModeDataMovement, Name: named("oltp p99 inflation during the non-co-located join", ifMany(len(r.workloadsOfKind("oltp")), w)), Unit: UnitRatio}
			fd.judge(float64(ms(js.Latency.P99))/float64(ms(bs.Latency.P99)), 0, true, "")
			fd.Evidence = append(fd.Evidence, evidence(w, "", 0, c.w, fmt.Sprintf("p99 %v against %v in the baseline", ms(js.Latency.P99).Round(time.Millisecond), ms(bs.Latency.P99).Round(time.Millisecond))))
			out = append(out, fd)
		}
	}
	if len(mixed) > 0 {
		out[0].Notes = append(out[0].Notes, mixed...)
	}
	return out
}

// scoreColocation sets the non-co-located join, and the same join against the
// reference table, beside the co-located join: the article's fix (shard by the
// join key, or replicate the small table) measured as bytes moved and latency per
// query. With the plans recorded (Vitess) each says where its join ran.
func scoreColocation(r *Recorded, classes []movementClass) []Finding {
	by := map[string]movementClass{}
	for _, c := range classes {
		if c.queries > 0 && c.samples > 0 {
			by[c.op] = c
		}
	}
	co, ok := by["colocated-join"]
	if !ok {
		return nil
	}
	perQuery := func(c movementClass) float64 { return c.moved / float64(c.queries) }
	var out []Finding
	for _, twin := range []struct{ op, name, what string }{
		{"noncolocated-join", "co-location: bytes moved non-co-located / co-located join", "the join on merchant_id (not the shard key)"},
		{"reference-join", "co-location: bytes moved reference-table / co-located join", "the join against the reference table"},
	} {
		c, ok := by[twin.op]
		if !ok {
			continue
		}
		fd := Finding{Mode: ModeDataMovement, Name: twin.name, Unit: UnitRatio, Reference: refMovement}
		// The co-located join can move next to nothing: a floor of one byte per
		// query keeps the ratio finite.
		fd.judge(perQuery(c)/max(perQuery(co), 1), 0, true, "")
		fd.Reason = fmt.Sprintf("%s moved %s per query and took p50 %v; the co-located join %s and p50 %v",
			twin.what, bytesStr(perQuery(c)), c.p50.Round(time.Millisecond), bytesStr(perQuery(co)), co.p50.Round(time.Millisecond))
		for _, x := range []movementClass{co, c} {
			detail := fmt.Sprintf("%s per query, %.0f shard selects per query, p50 %v, p99 %v",
				bytesStr(perQuery(x)), x.selects/float64(x.queries), x.p50.Round(time.Millisecond), x.p99.Round(time.Millisecond))
			if p, ok := r.Plans[x.op]; ok {
				detail += "; vtgate plan: " + p.Shape
			}
			fd.Evidence = append(fd.Evidence, evidence("", x.op, 0, x.w, detail))
		}
		if r.ShardEngine != loadgen.VitessEngine {
			fd.note("Spider joins at the aggregator whatever the keys: co-location does not change where the join runs")
		}
		out = append(out, fd)
	}
	return out
}

// ms turns a figure in milliseconds into a duration.
func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
