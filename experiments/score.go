package experiments

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scorer scores one failure mode on what a run recorded.
type Scorer interface {
	Mode() string
	// Budgets lists the budget keys the scorer reads, with defaults.
	Budgets() []BudgetSpec
	// Score returns the mode's findings. A fault that never took effect, too few
	// samples, or a cluster that never recovered give Inconclusive, never Pass.
	Score(r *Recorded, b Budgets) []Finding
}

// BudgetType is how a budget value is written.
type BudgetType string

const (
	BudgetDuration BudgetType = "duration" // 5s, 500ms
	BudgetRatio    BudgetType = "ratio"    // 3 (times), 1000
	BudgetPercent  BudgetType = "percent"  // 0.1% (stored as a fraction: 0.001)
)

// BudgetSpec is one budget key of a scorer.
type BudgetSpec struct {
	Key     string
	Type    BudgetType
	Default string
	Help    string
}

// Budgets are one mode's budget values, parsed: durations in seconds, percents as
// fractions, ratios as they are.
type Budgets map[string]float64

// Get returns a budget value.
func (b Budgets) Get(key string) float64 { return b[key] }

// ParseBudget parses a value of a budget type.
func ParseBudget(t BudgetType, v string) (float64, error) {
	v = strings.TrimSpace(v)
	switch t {
	case BudgetDuration:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q: want a duration such as 5s", v)
		}
		return d.Seconds(), nil
	case BudgetPercent:
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil || f < 0 || f > 100 {
			return 0, fmt.Errorf("%q: want a percentage such as 0.1%%", v)
		}
		return f / 100, nil
	default:
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "x"), 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("%q: want a number such as 3", v)
		}
		return f, nil
	}
}

// ScorerRegistry holds one scorer per failure mode. Register adds one of the
// caller's; a spec may then name its mode, and Options.Scorers brings it to a run.
type ScorerRegistry struct{ m map[string]Scorer }

// NewScorers returns the builtin scorers.
func NewScorers() *ScorerRegistry {
	r := &ScorerRegistry{m: map[string]Scorer{}}
	for _, s := range builtinScorers() {
		r.Register(s)
	}
	return r
}

// Register adds a scorer. It panics on a mode registered twice or a mode with
// no name: a programming error found at start-up.
func (r *ScorerRegistry) Register(s Scorer) {
	m := s.Mode()
	if strings.TrimSpace(m) == "" {
		panic("experiments: scorer without a mode")
	}
	if _, dup := r.m[m]; dup {
		panic("experiments: scorer registered twice: " + m)
	}
	r.m[m] = s
}

// Modes are the failure modes a spec may name: the catalog's (Modes), then
// those of the registry's other scorers, sorted.
func (r *ScorerRegistry) Modes() []string {
	out := slices.Clone(Modes)
	for _, m := range slices.Sorted(maps.Keys(r.m)) {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Get finds the scorer of a mode.
func (r *ScorerRegistry) Get(mode string) (Scorer, bool) {
	s, ok := r.m[mode]
	return s, ok
}

// Budgets resolves a mode's budgets: defaults, then the spec's overrides.
func (r *ScorerRegistry) Budgets(mode string, overrides BudgetSet) (Budgets, error) {
	s, ok := r.m[mode]
	if !ok {
		return nil, fmt.Errorf("unknown failure mode %q (known: %s)", mode, strings.Join(r.Modes(), ", "))
	}
	out := Budgets{}
	var errs []string
	specs := s.Budgets()
	for _, bs := range specs {
		v, err := ParseBudget(bs.Type, bs.Default)
		if err != nil {
			panic(fmt.Sprintf("experiments: scorer %s: default of %s: %v", mode, bs.Key, err))
		}
		out[bs.Key] = v
	}
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		i := slices.IndexFunc(specs, func(bs BudgetSpec) bool { return bs.Key == k })
		if i < 0 {
			var known []string
			for _, bs := range specs {
				known = append(known, bs.Key)
			}
			errs = append(errs, fmt.Sprintf("%s has no budget %q (it has: %s)", mode, k, strings.Join(known, ", ")))
			continue
		}
		v, err := ParseBudget(specs[i].Type, overrides[k])
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s.%s: %v", mode, k, err))
			continue
		}
		out[k] = v
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Score runs the scorers of the spec's modes (durability always) on r.
func (r *ScorerRegistry) Score(rec *Recorded) []Finding {
	modes := slices.Clone(rec.Spec.Modes)
	if !slices.Contains(modes, ModeDurability) {
		modes = append(modes, ModeDurability)
	}
	var out []Finding
	for _, m := range modes {
		s, ok := r.m[m]
		if !ok {
			continue // the spec was validated: cannot happen
		}
		b, err := r.Budgets(m, rec.Spec.Budgets[m])
		if err != nil {
			out = append(out, Finding{Mode: m, Name: "budgets", Verdict: Inconclusive, Reason: err.Error()})
			continue
		}
		out = append(out, s.Score(rec, b)...)
	}
	return out
}
