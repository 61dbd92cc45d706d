package experiments

import (
	"fmt"
	"strconv"
	"strings"
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
			{Key: "staleness-p99", Type: BudgetDuration, Default: "0s", Help: "p99 staleness of the heartbeat on any node in any phase; 0: reported, not judged"},
		},
		score: scoreFreshness,
	}
}

// scoreFreshness: "staleness p99": the worst p99, over phases (warmup
// excluded) and nodes, of now minus the newest visible heartbeat, held to
// staleness-p99 when set.
func scoreFreshness(r *Recorded, b Budgets) []Finding {
	fd := Finding{Mode: ModeFreshness, Name: "staleness p99", Unit: UnitSeconds, Budget: b.Get("staleness-p99"), Reference: refFreshness}
	seen := false
	for _, s := range r.Indicators {
		if s.StalenessMs != nil {
			seen = true
			break
		}
	}
	if !seen {
		return []Finding{fd.inconclusive("no heartbeat samples: the spec has no heartbeat, or none was read")}
	}
	var worst float64
	var worstEv Evidence
	scored := false
	for _, p := range r.Phases {
		if p.Name == PhaseWarmup {
			continue
		}
		for _, n := range r.nodes() {
			var xs []float64
			for _, s := range r.samplesOf(n, p) {
				if s.StalenessMs != nil {
					xs = append(xs, *s.StalenessMs)
				}
			}
			if len(xs) == 0 {
				continue
			}
			p99 := quantile(xs, 0.99)
			if len(xs) < minStaleness {
				fd.note("%s node %d: %d samples, too few", p.Name, n, len(xs))
				continue
			}
			fd.note("%s node %d: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d samples)", p.Name, n, quantile(xs, 0.5), p99, quantile(xs, 1), len(xs))
			if !scored || p99/1000 > worst {
				worst, worstEv, scored = p99/1000, evidence("", "", n, p, fmt.Sprintf("p99 %.0f ms over %d samples", p99, len(xs))), true
			}
		}
	}
	if !scored {
		return []Finding{fd.inconclusive("too few heartbeat samples: no phase x node has %d", minStaleness)}
	}
	fd.Evidence = []Evidence{worstEv}
	fd.judge(worst, fd.Budget, true, "staleness-p99")
	if fd.Verdict == Fail {
		fd.Reason = fmt.Sprintf("staleness p99 %.2f s on node %d in %s (budget %.2f s)", worst, worstEv.Node, worstEv.Phase, fd.Budget)
	}
	return []Finding{fd}
}
