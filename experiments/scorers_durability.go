package experiments

import (
	"fmt"
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

// scoreDurability: "acknowledged writes lost", from the audit: any lost fails;
// writes present but never acknowledged are reported.
func scoreDurability(r *Recorded, _ Budgets) []Finding {
	fd := Finding{Mode: ModeDurability, Name: "acknowledged writes lost", Unit: UnitCount, Reference: refDurability}
	a := r.Audit
	switch {
	case a == nil:
		return []Finding{fd.inconclusive("no durability audit: nothing was read back")}
	case a.Error != "":
		return []Finding{fd.inconclusive("the audit failed: %s", a.Error)}
	case a.Acked == 0:
		return []Finding{fd.inconclusive("no acknowledged write to read back")}
	}
	fd.Evidence = []Evidence{{Node: a.Node, Detail: fmt.Sprintf("read back on node %d", a.Node)}}
	fd.judge(float64(a.Lost), 0, false, "")
	fd.note("%d acknowledged writes read back on node %d; %d lost; %d with an unknown outcome", a.Acked, a.Node, a.Lost, a.Unknown)
	if a.Lost > 0 {
		fd.Reason = fmt.Sprintf("%d of %d acknowledged writes are missing", a.Lost, a.Acked)
		fd.note("first lost ids: %s", ids(a.FirstLost))
	}
	if a.Unexpected > 0 {
		fd.note("%d writes present but never acknowledged (legal: a retry policy must handle them); first ids: %s", a.Unexpected, ids(a.FirstExtra))
	}
	return []Finding{fd}
}

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
