package examples

import (
	"fmt"
	"strings"

	"github.com/htapchaos/htapchaos/experiments"
)

// ModeFreezeStall is a failure mode of our own: how long the slowest operation
// took in the phases a freeze fault ran in, against a budget.
const ModeFreezeStall = "freeze-stall"

// FreezeStallScorer scores ModeFreezeStall: the slowest successful operation
// of the phases any fault of kind freeze started in or ended in, and the
// phase after. It is inconclusive when no freeze took effect.
type FreezeStallScorer struct{}

func (FreezeStallScorer) Mode() string { return ModeFreezeStall }

func (FreezeStallScorer) Budgets() []experiments.BudgetSpec {
	return []experiments.BudgetSpec{{Key: "stall", Type: experiments.BudgetDuration, Default: "5s", Help: "the slowest operation around a freeze"}}
}

func (FreezeStallScorer) Score(r *experiments.Recorded, b experiments.Budgets) []experiments.Finding {
	f := experiments.Finding{Mode: ModeFreezeStall, Name: "slowest op around a freeze", Unit: experiments.UnitSeconds, Budget: b.Get("stall"), Op: "<="}
	var phases []string
	for _, fr := range r.Faults {
		if fr.Kind != "freeze" || !fr.TookEffect() {
			continue
		}
		for i, p := range r.Phases {
			if p.Contains(fr.Effective) || p.Contains(fr.Recovered) {
				phases = append(phases, p.Name)
				if i+1 < len(r.Phases) {
					phases = append(phases, r.Phases[i+1].Name)
				}
			}
		}
	}
	if len(phases) == 0 {
		f.Verdict, f.Reason = experiments.Inconclusive, "no freeze took effect"
		return []experiments.Finding{f}
	}
	for _, st := range r.Phase {
		for _, p := range phases {
			if st.Window == p && st.Node == 0 && st.Op != "" {
				f.Value = max(f.Value, st.Latency.Max/1000)
			}
		}
	}
	f.Verdict = experiments.Pass
	if f.Value > f.Budget {
		f.Verdict, f.Reason = experiments.Fail, fmt.Sprintf("an op waited %.2fs in %s", f.Value, strings.Join(phases, ", "))
	}
	return []experiments.Finding{f}
}
