package experiments

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	refDurability = "beyond the article: nothing the database acknowledged may be lost"
	refFreshness  = "beyond the article, which advises accepting seconds of lag for analytics"
)

// minStaleness is the fewest heartbeat samples a phase x node needs for its
// staleness p99 to be scored (one sample a second per node).
const minStaleness = 5

func durabilityScorer() Scorer {
	return scorer{mode: ModeDurability, score: scoreDurability}
}

// Names of the durability findings.
const (
	findLost      = "acknowledged writes lost"
	findDiverge   = "divergence between nodes"
	findUnsent    = "rows no writer sent"
	refDivergence = "beyond the article: every copy of the data must hold what the cluster acknowledged"
)

// scoreDurability judges the audit (see AuditCluster), read back on every node
// once each had applied everything:
//   - acknowledged writes lost: acknowledged rows missing on any node read (on
//     every node, or on some: then divergence says which); any fails;
//   - divergence between nodes: rows some nodes have and others lack, per node
//     with ids; any fails (a cluster of more than one node only);
//   - rows no writer sent: rows in the run's ids that no writer of the run sent;
//     any fails. Rows from writes of unknown outcome are legal and noted.
//
// With no audit, or nothing acknowledged, one inconclusive finding says so. All
// are inconclusive when the audit failed or a node did not apply everything within
// the settle timeout: a slow node is never "lost". Loss and divergence are
// inconclusive, too, when a node that answered as the audit began was not read
// (its status or its read failed): the nodes read settled to a target it may not
// have given, and what it holds is unknown. Only a node that did not answer at all
// (down) is left out, and the notes say so.
//
// All three are strict: none tolerates a failing run in a repeat.
func scoreDurability(r *Recorded, _ Budgets) []Finding {
	lost := Finding{Mode: ModeDurability, Name: findLost, Unit: UnitCount, Reference: refDurability, Strict: true}
	div := Finding{Mode: ModeDurability, Name: findDiverge, Unit: UnitCount, Reference: refDivergence, Strict: true}
	unsent := Finding{Mode: ModeDurability, Name: findUnsent, Unit: UnitCount, Reference: refDurability, Strict: true}
	a := r.Audit
	nodes := r.Nodes
	if a != nil && len(a.Nodes) > 0 {
		nodes = len(a.Nodes)
	}
	all := func(fs ...Finding) []Finding {
		if nodes <= 1 {
			return []Finding{fs[0], fs[2]}
		}
		return fs
	}
	// Nothing to audit: one finding says so.
	switch {
	case a == nil:
		return []Finding{lost.inconclusive("no durability audit: nothing was read back")}
	case a.Acked == 0 && a.Error == "" && !a.Settle.TimedOut:
		return []Finding{lost.inconclusive("no acknowledged write to read back")}
	}
	// An audit that could not judge: every check says why.
	whyNot := ""
	switch {
	case a.Error != "":
		whyNot = "the audit failed: " + a.Error
	case a.Settle.TimedOut:
		whyNot = fmt.Sprintf("the nodes did not all apply everything within %s (the audit's settle timeout): %s; a node that is behind is not judged", fmtSeconds(a.Settle.Timeout), a.Settle.Behind)
		if a.Settle.Capped != "" {
			whyNot += " (" + a.Settle.Capped + ")"
		}
	}
	if whyNot != "" {
		out := all(lost.inconclusive("%s", whyNot), div.inconclusive("%s", whyNot), unsent.inconclusive("%s", whyNot))
		for i := range out {
			noteNodes(&out[i], a)
		}
		return out
	}

	// Which nodes were read; which answered and were not (they leave loss and
	// divergence unjudged); which were down (left out).
	var read, unread, down []string
	for _, n := range a.Nodes {
		switch {
		case n.Read:
			read = append(read, n.Label)
		case n.Down:
			down = append(down, n.Label)
		default:
			unread = append(unread, fmt.Sprintf("%s (%s)", n.Label, n.Skipped))
		}
	}
	unjudged := ""
	if len(unread) > 0 {
		unjudged = fmt.Sprintf("not every node that answered was read back: %s; without it, loss and divergence cannot be judged (only a node that was down is left out)",
			strings.Join(unread, "; "))
	}
	// notJudged makes f inconclusive for the unread nodes, keeping the figures of
	// the nodes read in its notes.
	notJudged := func(f *Finding) {
		if unjudged == "" {
			return
		}
		if f.Verdict != Inconclusive {
			f.note("on the nodes read (%s): %s, %g", strings.Join(read, ", "), f.Verdict, f.Value)
			if f.Reason != "" {
				f.note("on the nodes read: %s", f.Reason)
			}
		}
		*f = f.inconclusive("%s", unjudged)
	}
	leftOut := func(f *Finding) {
		if len(down) > 0 {
			f.note("left out: %s, down (did not answer when the audit began)", strings.Join(down, ", "))
		}
	}
	where := strings.Join(read, ", ")
	switch {
	case len(a.Nodes) == 0 && a.Node != 0:
		where = fmt.Sprintf("node %d", a.Node)
		lost.Evidence = []Evidence{{Node: a.Node, Detail: "read back on node " + strconv.Itoa(a.Node)}}
	case len(a.Nodes) == 0:
		where = "one node"
	}

	// Lost: on every node read, or on some.
	missing := a.Lost + a.DivergentAcked
	lost.judge(float64(missing), 0, false, "")
	lost.note("%d acknowledged writes%s read back on %s after %s settling%s; %d lost on every node; %d with an unknown outcome",
		a.Acked, sourcesText(a.Sources), where, fmtSeconds(a.Settle.Seconds), targetText(a.Settle), a.Lost, a.Unknown)
	noteNodes(&lost, a)
	for _, n := range a.Nodes {
		if n.Read && n.Lost > 0 {
			lost.Evidence = append(lost.Evidence, Evidence{Node: n.Node, Detail: fmt.Sprintf("%s lacks %d acknowledged rows: ids %s", n.Label, n.Lost, ids(n.FirstLost))})
		}
	}
	if missing > 0 {
		var parts []string
		if a.Lost > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d acknowledged writes are missing", a.Lost, a.Acked))
			if len(read) > 0 {
				parts[0] += " on every node read (" + where + ")"
			}
			lost.note("first lost ids: %s", ids(a.FirstLost))
		}
		if a.DivergentAcked > 0 {
			what := fmt.Sprintf("%d of %d acknowledged writes are", a.DivergentAcked, a.Acked)
			if a.Lost > 0 {
				what = fmt.Sprintf("%d more are", a.DivergentAcked)
			}
			parts = append(parts, fmt.Sprintf("%s missing on some nodes only: %s", what, strings.Join(lacksTexts(a, true), "; ")))
		}
		lost.Reason = strings.Join(parts, "; ")
	}
	if a.Unexpected > 0 {
		lost.note("%d writes present but never acknowledged (first ids: %s)%s", a.Unexpected, ids(a.FirstExtra), splitText(a))
	}
	leftOut(&lost)
	notJudged(&lost)

	// Divergence.
	if len(read) < 2 {
		div = div.inconclusive("only %d node(s) of %d could be read back: nothing to compare", len(read), nodes)
		noteNodes(&div, a)
	} else {
		div.judge(float64(a.Divergent), 0, false, "")
		div.note("compared on %s: %d rows some nodes have and others lack, %d of them acknowledged", where, a.Divergent, a.DivergentAcked)
		for _, n := range a.Nodes {
			if n.Read && n.Lacks > 0 {
				div.Evidence = append(div.Evidence, Evidence{Node: n.Node, Detail: lacksText(a, n)})
			}
		}
		if a.Divergent > 0 {
			div.Reason = strings.Join(lacksTexts(a, false), "; ")
			div.note("first divergent ids: %s", ids(a.FirstDivergent))
		}
		leftOut(&div)
	}
	notJudged(&div)

	// Rows nobody sent.
	unsent.judge(float64(a.Unsent), 0, false, "")
	unsent.note("%d rows present but never acknowledged%s", a.Unexpected, splitText(a))
	if a.Unsent > 0 {
		unsent.Reason = fmt.Sprintf("%d row(s) in the run's ids that no writer of the run sent: ids %s", a.Unsent, ids(a.FirstUnsent))
	}
	if len(unread) > 0 || len(down) > 0 {
		unsent.note("judged on the nodes read only (%s)", where)
	}
	leftOut(&unsent)
	return all(lost, div, unsent)
}

// noteNodes adds a note per node: what was read there, or why it was not.
func noteNodes(f *Finding, a *Audit) {
	for _, n := range a.Nodes {
		if !n.Read {
			f.note("%s not read back: %s", n.Label, n.Skipped)
			continue
		}
		s := fmt.Sprintf("%s: %d rows, %d acknowledged lost, %d lacked that other nodes have, %d never acknowledged", n.Label, n.Rows, n.Lost, n.Lacks, n.Unexpected)
		if n.Applied != "" {
			s += "; at " + n.Applied
		}
		if n.Behind > 0 {
			s += fmt.Sprintf(", %d seqnos behind when the audit began", n.Behind)
		}
		f.note("%s", s)
	}
}

// lacksTexts says, for each node that lacks rows others have, what and which.
func lacksTexts(a *Audit, ackedOnly bool) []string {
	var out []string
	for _, n := range a.Nodes {
		if n.Read && n.Lacks > 0 && (!ackedOnly || n.LacksAcked > 0) {
			out = append(out, lacksText(a, n))
		}
	}
	return out
}

// lacksText: "n2 lacks 12 acknowledged rows that n1 and n3 have: ids ...".
func lacksText(a *Audit, n NodeAudit) string {
	what := fmt.Sprintf("%d acknowledged rows", n.LacksAcked)
	switch {
	case n.LacksAcked == 0:
		what = fmt.Sprintf("%d rows never acknowledged", n.Lacks)
	case n.Lacks > n.LacksAcked:
		what += fmt.Sprintf(" (and %d never acknowledged)", n.Lacks-n.LacksAcked)
	}
	var others []string
	for _, o := range a.Nodes {
		if o.Read && o.Node != n.Node {
			others = append(others, o.Label)
		}
	}
	who := "that another node has"
	if n.LacksAlone == n.Lacks {
		who = "that " + andList(others) + " ha" + map[bool]string{true: "s", false: "ve"}[len(others) == 1]
	}
	return fmt.Sprintf("%s lacks %s %s: ids %s", n.Label, what, who, ids(n.FirstLacks))
}

func andList(xs []string) string {
	if len(xs) <= 1 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// splitText splits the unexpected rows, when the audit did.
func splitText(a *Audit) string {
	if a.FromUnknown+a.Unsent != a.Unexpected {
		return "" // an audit that did not split them
	}
	s := fmt.Sprintf(": %d from writes of unknown outcome (legal: a retry policy must handle them)", a.FromUnknown)
	if a.FromUnknown > 0 {
		s += ", first ids " + ids(a.FirstFromUnknown)
	}
	s += fmt.Sprintf("; %d that no writer of the run sent (an anomaly)", a.Unsent)
	if a.Unsent > 0 {
		s += ", first ids " + ids(a.FirstUnsent)
	}
	return s
}

func sourcesText(ss []AuditSourceCount) string {
	if len(ss) < 2 {
		return ""
	}
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s %d", s.Name, s.Acked))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func targetText(s AuditSettle) string {
	if s.Target == "" {
		return ""
	}
	return " (every node at " + s.Target + ")"
}

func fmtSeconds(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) + " s" }

func ids(xs []int64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	if len(s) == 0 {
		return "not listed"
	}
	return strings.Join(s, ", ")
}

func freshnessScorer() Scorer {
	return scorer{
		mode: ModeFreshness,
		budgets: []BudgetSpec{
			{Key: "staleness-p99", Type: BudgetDuration, Default: "0s", Help: "p99 staleness of the heartbeat on any node that reads it (not its writer), in any phase; 0: reported, not judged"},
			{Key: "data-age-p99", Type: BudgetDuration, Default: "0s", Help: "p99 age of the data the analytics queries saw (the staleness of their node when they started), in any phase; 0: reported, not judged"},
		},
		score: scoreFreshness,
	}
}

// Names of the freshness findings.
const (
	findStaleness = "staleness p99"
	findDataAge   = "analytics data age p99"
)

// scoreFreshness:
//   - "staleness p99": the worst p99, over phases (warmup excluded) and the
//     nodes that read the heartbeat (every node but its writer: on a
//     primary-replica cluster whose heartbeat is written on the primary, the
//     replicas), of now minus the newest visible heartbeat, held to
//     staleness-p99 when set. Every phase x node is in the notes; the evidence
//     and the reason name the worst.
//   - "analytics data age p99", when the spec has an analytics workload: the
//     age of the data its queries saw (see dataAge), the worst p99 over
//     phases, held to data-age-p99 when set.
func scoreFreshness(r *Recorded, b Budgets) []Finding {
	fd := Finding{Mode: ModeFreshness, Name: findStaleness, Unit: UnitSeconds, Budget: b.Get("staleness-p99"), Reference: refFreshness}
	age := Finding{Mode: ModeFreshness, Name: findDataAge, Unit: UnitSeconds, Budget: b.Get("data-age-p99"), Reference: refFreshness}
	analytics := r.workloadsOfKind("analytics")
	out := func(fs ...Finding) []Finding {
		if len(analytics) == 0 {
			return fs[:1]
		}
		return fs
	}
	seen := false
	for _, s := range r.Indicators {
		if s.StalenessMs != nil {
			seen = true
			break
		}
	}
	if !seen {
		why := "no heartbeat samples: the spec has no heartbeat, or none was read"
		return out(fd.inconclusive("%s", why), age.inconclusive("%s", why))
	}
	writer, readers := r.heartbeatReaders()
	if writer != 0 && len(readers) < len(r.nodes()) {
		fd.note("heartbeat written on node %d, judged on the nodes that read it: %s", writer, nodeList(readers))
	}
	var worst float64
	var worstEv Evidence
	scored := false
	scoredOn := map[int]bool{}
	for _, p := range r.Phases {
		if p.Name == PhaseWarmup {
			continue
		}
		for _, n := range readers {
			var xs []float64
			for _, s := range r.samplesOf(n, p) {
				if s.StalenessMs != nil {
					xs = append(xs, *s.StalenessMs)
				}
			}
			if len(xs) == 0 {
				// A reader that gave no figure (a replica down, or not read):
				// said, so a verdict on the others alone does not pass unseen.
				fd.note("%s node %d: no heartbeat samples (the node was down or its heartbeat was not read)", p.Name, n)
				continue
			}
			p99 := quantile(xs, 0.99)
			if len(xs) < minStaleness {
				fd.note("%s node %d: %d samples, too few", p.Name, n, len(xs))
				continue
			}
			fd.note("%s node %d: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d samples)", p.Name, n, quantile(xs, 0.5), p99, quantile(xs, 1), len(xs))
			scoredOn[n] = true
			if !scored || p99/1000 > worst {
				worst, worstEv, scored = p99/1000, evidence("", "", n, p, fmt.Sprintf("p99 %.0f ms over %d samples", p99, len(xs))), true
			}
		}
	}
	if !scored {
		return out(fd.inconclusive("too few heartbeat samples: no phase x node has %d", minStaleness), r.dataAge(age, writer))
	}
	fd.Evidence = []Evidence{worstEv}
	fd.note("worst: node %d in %s, p99 %.2f s", worstEv.Node, worstEv.Phase, worst)
	fd.judge(worst, fd.Budget, true, "staleness-p99")
	// A reader with no scored phase (down all run, or never read) was not
	// measured: the others alone fail the cluster, but cannot pass it.
	if missing := slices.DeleteFunc(slices.Clone(readers), func(n int) bool { return scoredOn[n] }); len(missing) > 0 && fd.Verdict != Fail {
		return out(fd.inconclusive("no phase of node %s has %d heartbeat samples: the other readers alone cannot pass the cluster",
			nodeList(missing), minStaleness), r.dataAge(age, writer))
	}
	if fd.Verdict == Fail {
		fd.Reason = fmt.Sprintf("staleness p99 %.2f s on node %d in %s (budget %.2f s)", worst, worstEv.Node, worstEv.Phase, fd.Budget)
	}
	return out(fd, r.dataAge(age, writer))
}

// heartbeatReaders returns the heartbeat's writer node (0: not known, the run
// has no spec with a heartbeat) and the nodes that read it: every node but the
// writer, or the writer alone on a one-node cluster (as the sampler reads it,
// see WithHeartbeat). A staleness the writer showed would be that of its own
// writes: it is never judged.
func (r *Recorded) heartbeatReaders() (writer int, readers []int) {
	nodes := r.nodes()
	if r.Spec != nil && r.Spec.Heartbeat != nil {
		writer = r.Spec.Heartbeat.Node
	}
	if writer == 0 || len(nodes) <= 1 {
		return writer, nodes
	}
	return writer, slices.DeleteFunc(nodes, func(n int) bool { return n == writer })
}

// minAgeQueries is the fewest analytics queries a phase needs for the data
// age they saw to be scored.
const minAgeQueries = 5

// ageMatch bounds how far from a query's estimated start the heartbeat sample
// read for it may be: 1.5 sampling intervals (one a second), so that a second
// whose sample is missing (the node did not answer) borrows no figure from
// further away.
const ageMatch = 1500 * time.Millisecond

// queries is "1 query", "3 queries".
func queries(n int64) string {
	if n == 1 {
		return "1 query"
	}
	return fmt.Sprintf("%d queries", n)
}

// weighted is a value seen by weight queries.
type weighted struct {
	v float64 // ms
	w int64
}

// weightedQuantile is the nearest-rank q-quantile (0 < q <= 1) of xs, each
// value counted as often as its weight; 0 when empty.
func weightedQuantile(xs []weighted, q float64) float64 {
	s := slices.Clone(xs)
	slices.SortFunc(s, func(a, b weighted) int { return cmp.Compare(a.v, b.v) })
	var total int64
	for _, x := range s {
		total += x.w
	}
	if total == 0 {
		return 0
	}
	rank := max(int64(math.Ceil(q*float64(total))), 1)
	var c int64
	for _, x := range s {
		if c += x.w; c >= rank {
			return x.v
		}
	}
	return s[len(s)-1].v
}

// dataAge is "analytics data age p99": how old the data was that the
// analytics queries read, the staleness of their node when they started.
//
// The method, from what a run records (no query's own start time is kept):
// each per-second line of an analytics workload (Recorded.Seconds, per op and
// node) counts the queries that succeeded in the second ending at its time T.
// They started at about T - 0.5 s - their median latency (from the intended
// start: the line's p50), the middle of the second less the time they took.
// The heartbeat sample of the same node nearest to that start (one a second,
// Sample.StalenessMs; at most ageMatch away) is the age of the data they saw,
// counted once per query of the line. The distribution is per phase (the one
// the estimated start falls in; warmup left out): p50, p99 and max over the
// queries, with each node's p99 and count in the notes. Queries on the
// heartbeat's writer read its newest writes and have no staleness figure:
// they are counted apart, as are queries with no sample near their start. So
// the figure is good to about a second, the sampling interval: a query sees
// its node's data as of its start, and a replica's staleness moves by at most
// the time between two samples.
func (r *Recorded) dataAge(fd Finding, writer int) Finding {
	aw := r.workloadsOfKind("analytics")
	if len(r.Seconds) == 0 {
		return fd.inconclusive("no per-second figures of %s (intervals.jsonl): the queries' starts are not known", strings.Join(aw, ", "))
	}
	// The staleness samples per node, in time order.
	stale := map[int][]Sample{}
	for _, s := range r.Indicators {
		if s.StalenessMs != nil {
			stale[s.Node] = append(stale[s.Node], s)
		}
	}
	for n := range stale {
		slices.SortFunc(stale[n], func(a, b Sample) int { return a.T.Compare(b.T) })
	}
	nearest := func(node int, t time.Time) (float64, bool) {
		ss := stale[node]
		i, _ := slices.BinarySearchFunc(ss, t, func(s Sample, t time.Time) int { return s.T.Compare(t) })
		best, found := time.Duration(0), false
		var v float64
		for _, j := range []int{i - 1, i} {
			if j < 0 || j >= len(ss) {
				continue
			}
			d := ss[j].T.Sub(t).Abs()
			if !found || d < best {
				best, v, found = d, *ss[j].StalenessMs, true
			}
		}
		return v, found && best <= ageMatch
	}
	type bucket struct {
		all    []weighted
		byNode map[int][]weighted
	}
	phases := map[string]*bucket{}
	var onWriter, unmatched, outside int64
	for _, l := range r.Seconds {
		if l.Count == 0 || !slices.Contains(aw, l.Workload) {
			continue
		}
		if writer != 0 && l.Node == writer && len(r.nodes()) > 1 {
			onWriter += l.Count
			continue
		}
		started := l.Time().Add(-500*time.Millisecond - time.Duration(l.P50Ms*float64(time.Millisecond)))
		i := slices.IndexFunc(r.Phases, func(w Window) bool { return w.Contains(started) })
		if i < 0 {
			outside += l.Count
			continue
		}
		p := r.Phases[i]
		if p.Name == PhaseWarmup {
			continue
		}
		v, ok := nearest(l.Node, started)
		if !ok {
			unmatched += l.Count
			continue
		}
		b := phases[p.Name]
		if b == nil {
			b = &bucket{byNode: map[int][]weighted{}}
			phases[p.Name] = b
		}
		b.all = append(b.all, weighted{v, l.Count})
		b.byNode[l.Node] = append(b.byNode[l.Node], weighted{v, l.Count})
	}
	count := func(xs []weighted) int64 {
		var n int64
		for _, x := range xs {
			n += x.w
		}
		return n
	}
	var worst float64
	var worstEv Evidence
	scored := false
	for _, p := range r.Phases {
		b := phases[p.Name]
		if b == nil {
			continue
		}
		n := count(b.all)
		if n < minAgeQueries {
			fd.note("%s: %d analytics queries, too few", p.Name, n)
			continue
		}
		p99 := weightedQuantile(b.all, 0.99)
		var per []string
		for _, node := range slices.Sorted(maps.Keys(b.byNode)) {
			xs := b.byNode[node]
			per = append(per, fmt.Sprintf("node %d p99 %.0f ms over %d", node, weightedQuantile(xs, 0.99), count(xs)))
		}
		fd.note("%s: data age p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d analytics queries (%s)", p.Name,
			weightedQuantile(b.all, 0.5), p99, weightedQuantile(b.all, 1), n, strings.Join(per, "; "))
		if !scored || p99/1000 > worst {
			worst, scored = p99/1000, true
			worstEv = evidence(strings.Join(aw, ","), "", 0, p, fmt.Sprintf("p99 %.0f ms over %d queries", p99, n))
		}
	}
	if onWriter > 0 {
		fd.note("%s ran on the heartbeat's writer (node %d), which reads its own newest writes: left out", queries(onWriter), writer)
	}
	if unmatched > 0 {
		fd.note("%s had no heartbeat sample of their node within %v of their start: left out", queries(unmatched), ageMatch)
	}
	if outside > 0 {
		fd.note("%s started outside the phases: left out", queries(outside))
	}
	if !scored {
		return fd.inconclusive("too few analytics queries with a heartbeat sample of their node: no phase has %d (warmup left out)", minAgeQueries)
	}
	fd.Evidence = []Evidence{worstEv}
	fd.judge(worst, fd.Budget, true, "data-age-p99")
	fd.note("method: each second's successful queries of a node, started about half a second plus their median latency before the second's end, take the staleness of the heartbeat sample of that node nearest to that start (one sample a second)")
	if fd.Verdict == Fail {
		fd.Reason = fmt.Sprintf("analytics queries read data %.2f s old at p99 in %s (budget %.2f s)", worst, worstEv.Phase, fd.Budget)
	}
	return fd
}
