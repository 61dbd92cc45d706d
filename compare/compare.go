// Package compare sets recorded runs side by side: per finding and per workload,
// phase and op, the value of each group of runs (median and spread over repeated
// runs of the same experiment and configuration), its ratio against the first
// group, and which side is better.
//
// Runs are grouped when their experiment and configuration are equal: the effective
// spec (after --quick and --set), the cluster they ran on and the target; not the
// seed, the time or the directory. Each group is labelled by what differs between
// the groups ("workloads.oltp.rate=400", "server: innodb_flush_log_at_trx_commit=2");
// runs that differ in nothing but the seed are each their own group, labelled by
// their directory.
package compare

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/internal/usage"
)

// Directions: which way is better.
const (
	Lower  = "lower"
	Higher = "higher"
)

// Better says which side of a pair is better. A group ID names the winner.
const (
	Same = "same" // equal values
)

// Comparison is the result: the groups, then one row per finding and per workload
// metric, each with a cell per group.
type Comparison struct {
	Experiments []string `json:"experiments"` // spec names, in order of first appearance
	Groups      []Group  `json:"groups"`
	Findings    []Row    `json:"findings"`
	Workloads   []Row    `json:"workloads"`
}

// Group is runs of one experiment and configuration.
type Group struct {
	ID    string `json:"id"`    // A, B, C, ...
	Label string `json:"label"` // what sets it apart from the other groups
	// Differs are the settings that differ between the groups, with this group's
	// value ("" where it has none: the default).
	Differs    map[string]string `json:"differs,omitempty"`
	Experiment string            `json:"experiment"`
	Dirs       []string          `json:"dirs"`
	Seeds      []uint64          `json:"seeds"`
	Verdicts   []string          `json:"verdicts"`        // each run's verdict
	Notes      []string          `json:"notes,omitempty"` // interrupted or failed runs
}

// Row is one finding, or one workload metric in one phase.
type Row struct {
	Kind string `json:"kind"` // "finding" or "workload"
	// A finding.
	Mode string `json:"mode,omitempty"`
	Name string `json:"name,omitempty"`
	// A workload metric: Op "" is every op of the workload, merged over nodes.
	Workload string `json:"workload,omitempty"`
	Op       string `json:"op,omitempty"`
	Phase    string `json:"phase,omitempty"`
	Metric   string `json:"metric"` // "value" for a finding; p50_ms, p99_ms, p999_ms, max_ms, rate, errors
	Unit     string `json:"unit,omitempty"`
	// Direction: Lower or Higher is better; "" for a finding reported but not judged.
	Direction string `json:"direction,omitempty"`
	Cells     []Cell `json:"cells"` // one per group, in group order
}

// Cell is one group's figure in a row.
type Cell struct {
	Group string `json:"group"`
	// Runs that gave a value (a finding judged inconclusive gives none, nor a phase
	// with no operations a latency).
	N      int      `json:"n"`
	Median *float64 `json:"median"` // nil: no value
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// Verdicts of a finding: verdict -> runs.
	Verdicts map[string]int `json:"verdicts,omitempty"`
	// Against the first group (nil in the first group's own cell): Median / first's
	// Median; nil when either is missing or the first's is 0.
	Ratio *float64 `json:"ratio,omitempty"`
	// Better is the ID of the better side against the first group, Same, or "" when
	// the row has no direction or a value is missing.
	Better string `json:"better,omitempty"`
	// Overlap: both groups have two or more runs and their min..max ranges overlap,
	// so the difference is within the run-to-run spread.
	Overlap bool `json:"overlap,omitempty"`
}

// Load reads the run.json of run directories (experiments.ReadRunFile). A directory that is
// missing, holds no run.json, or one that is not htapchaos's or was written by a
// newer htapchaos is bad input (a usage error naming it); every such problem is
// reported at once.
func Load(dirs []string) ([]*experiments.RunDir, error) {
	var out []*experiments.RunDir
	var errs []error
	for _, d := range dirs {
		st, err := os.Stat(d)
		switch {
		case err != nil && errors.Is(err, os.ErrNotExist):
			errs = append(errs, &usage.Error{Field: d, Msg: "no such directory"})
			continue
		case err != nil:
			errs = append(errs, &usage.Error{Field: d, Msg: err.Error()})
			continue
		case !st.IsDir():
			errs = append(errs, &usage.Error{Field: d, Msg: "not a directory: give a run directory (it holds run.json)"})
			continue
		}
		// Only run.json: the findings and the per-phase figures are in it, and a
		// long run's intervals and indicators would only take memory.
		rf, err := experiments.ReadRunFile(filepath.Join(d, "run.json"))
		switch {
		case errors.Is(err, experiments.ErrNotRunDir):
			errs = append(errs, &usage.Error{Field: d, Msg: "not a run directory (no run.json)"})
			continue
		case errors.Is(err, experiments.ErrNewerVersion), errors.Is(err, experiments.ErrBadRunFile):
			path := filepath.Join(d, "run.json")
			errs = append(errs, &usage.Error{Field: path, Msg: strings.TrimPrefix(err.Error(), "read "+path+": ")})
			continue
		case err != nil:
			// Failing to read it, as opposed to what it holds.
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
			continue
		}
		out = append(out, &experiments.RunDir{Dir: d, Run: rf})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Compare groups the runs and sets the groups side by side, the first group as the
// reference. It needs two runs or more.
func Compare(runs []*experiments.RunDir) (*Comparison, error) {
	if len(runs) < 2 {
		return nil, &usage.Error{Field: "compare", Msg: fmt.Sprintf("%d run directory given: give two or more", len(runs))}
	}
	for _, r := range runs {
		if r == nil || r.Run == nil {
			return nil, errors.New("compare: a run without run.json")
		}
	}
	c := &Comparison{}
	groups := group(runs)
	for _, r := range runs {
		if n := specName(r); !slices.Contains(c.Experiments, n) {
			c.Experiments = append(c.Experiments, n)
		}
	}
	c.Groups = make([]Group, len(groups))
	for i, g := range groups {
		c.Groups[i] = g.Group
	}
	c.Findings = findingRows(groups)
	c.Workloads = workloadRows(groups)
	for _, rows := range [][]Row{c.Findings, c.Workloads} {
		for i := range rows {
			judge(&rows[i])
		}
	}
	return c, nil
}

// grp is a group with its runs.
type grp struct {
	Group
	runs  []*experiments.RunDir
	flat  map[string]string
	dirNm string
}

func specName(r *experiments.RunDir) string {
	if r.Run.Spec == nil {
		return ""
	}
	return r.Run.Spec.Name
}

// group puts runs of equal configuration together, in order of first appearance,
// and labels the groups.
func group(runs []*experiments.RunDir) []*grp {
	var gs []*grp
	byKey := map[string]*grp{}
	for _, r := range runs {
		flat := Settings(r.Run)
		key := settingsKey(flat)
		g, ok := byKey[key]
		if !ok {
			g = &grp{flat: flat}
			byKey[key] = g
			gs = append(gs, g)
		}
		g.runs = append(g.runs, r)
	}
	if len(gs) == 1 {
		// Nothing differs but the seed: each run is its own group.
		gs = gs[:0]
		for _, r := range runs {
			gs = append(gs, &grp{flat: Settings(r.Run), runs: []*experiments.RunDir{r}})
		}
	}
	diff := differing(gs)
	names := dirNames(runs)
	for i, g := range gs {
		g.ID = groupID(i)
		g.Experiment = specName(g.runs[0])
		for _, r := range g.runs {
			g.Dirs = append(g.Dirs, r.Dir)
			g.Seeds = append(g.Seeds, r.Run.Seed)
			v := string(r.Run.Verdict)
			if v == "" {
				v = "none"
			}
			g.Verdicts = append(g.Verdicts, v)
			if r.Run.Interrupted {
				g.Notes = append(g.Notes, r.Dir+": interrupted")
			}
			if r.Run.Error != "" {
				g.Notes = append(g.Notes, r.Dir+": "+r.Run.Error)
			}
		}
		if len(diff) == 0 {
			g.Label = names[g.runs[0].Dir]
			continue
		}
		g.Differs = map[string]string{}
		var parts []string
		for _, p := range diff {
			v := g.flat[p]
			g.Differs[p] = v
			parts = append(parts, labelPart(p, v))
		}
		const most = 4
		if len(parts) > most {
			parts = append(parts[:most-1], fmt.Sprintf("+%d more", len(parts)-(most-1)))
		}
		g.Label = strings.Join(parts, ", ")
	}
	return gs
}

// groupID is A..Z, then A2, B2, ...
func groupID(i int) string {
	id := string(rune('A' + i%26))
	if i >= 26 {
		id += strconv.Itoa(i/26 + 1)
	}
	return id
}

// dirNames are short names for the runs' directories: the base name, or the path
// as given where base names collide.
func dirNames(runs []*experiments.RunDir) map[string]string {
	count := map[string]int{}
	for _, r := range runs {
		count[filepath.Base(filepath.Clean(r.Dir))]++
	}
	out := map[string]string{}
	for _, r := range runs {
		b := filepath.Base(filepath.Clean(r.Dir))
		if count[b] > 1 {
			b = r.Dir
		}
		out[r.Dir] = b
	}
	return out
}

// labelPart words one differing setting: server settings as "server: key=value".
func labelPart(path, v string) string {
	shown := v
	if shown == "" {
		shown = "(unset)"
	}
	switch {
	case strings.HasPrefix(path, "cluster.settings."):
		return "server: " + strings.TrimPrefix(path, "cluster.settings.") + "=" + shown
	case strings.HasPrefix(path, "cluster.node_settings."):
		rest := strings.TrimPrefix(path, "cluster.node_settings.")
		node, key, _ := strings.Cut(rest, ".")
		return "server node " + node + ": " + key + "=" + shown
	}
	return path + "=" + shown
}

// differing lists the settings whose value is not the same in every group, sorted.
func differing(gs []*grp) []string {
	paths := map[string]bool{}
	for _, g := range gs {
		for p := range g.flat {
			paths[p] = true
		}
	}
	var out []string
	for p := range paths {
		v, ok := gs[0].flat[p]
		for _, g := range gs[1:] {
			w, ok2 := g.flat[p]
			if ok != ok2 || v != w {
				out = append(out, p)
				break
			}
		}
	}
	// The experiment's name first: when it differs it says the most.
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == "name") != (out[j] == "name") {
			return out[i] == "name"
		}
		return out[i] < out[j]
	})
	return out
}

// Settings flattens what makes a run's experiment and configuration to path ->
// value, with the paths --set takes (workloads.oltp.rate, phases.baseline.duration,
// cluster.settings.KEY); list items are keyed by their name. The spec's description
// and its quick profile (already applied) are left out; so are the seed, the times
// and where the run wrote. The cluster the run ran on adds cluster_used.topology,
// cluster_used.nodes and cluster_used.lb; an exec target adds target.
func Settings(rf *experiments.RunFile) map[string]string {
	out := map[string]string{}
	if rf.Spec != nil {
		b, err := json.Marshal(rf.Spec)
		if err == nil {
			var v map[string]any
			if json.Unmarshal(b, &v) == nil {
				delete(v, "description")
				delete(v, "quick")
				flatten("", v, out)
			}
		}
		if rf.Spec.Cluster != nil && rf.Spec.Cluster.Memory > 0 {
			out["cluster.memory"] = sizeText(int64(rf.Spec.Cluster.Memory))
		}
	}
	if ci := rf.Cluster; ci != nil {
		out["cluster_used.topology"] = string(ci.Topology)
		out["cluster_used.nodes"] = strconv.Itoa(len(ci.Nodes))
		if ci.LB != nil {
			out["cluster_used.lb"] = "true"
		}
	}
	if rf.Target != "" {
		out["target"] = rf.Target
	}
	if rf.ServerVersion != "" {
		out["server_version"] = rf.ServerVersion
	}
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, out)
		}
	case []any:
		scalars := true
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				scalars = false
			}
		}
		if scalars {
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = scalarText(e)
			}
			out[prefix] = strings.Join(parts, ",")
			return
		}
		var names []string
		for i, e := range x {
			key := strconv.Itoa(i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok && n != "" {
					key = n
				}
				delete(m, "name") // the key says it
			}
			names = append(names, key)
			flatten(join(key), e, out)
		}
		out[prefix] = strings.Join(names, ",") // the items and their order
	default:
		out[prefix] = scalarText(x)
	}
}

func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// sizeText is a byte size as the spec takes it: 512MiB.
func sizeText(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

func settingsKey(flat map[string]string) string {
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(flat[k]))
		b.WriteByte('\n')
	}
	return b.String()
}

// findingRows: one row per finding (mode and name), in order of first appearance.
func findingRows(gs []*grp) []Row {
	type key struct{ mode, name string }
	var order []key
	rows := map[key]*Row{}
	vals := map[key][][]float64{}
	for gi, g := range gs {
		for _, r := range g.runs {
			for _, f := range r.Run.Findings {
				k := key{f.Mode, f.Name}
				row, ok := rows[k]
				if !ok {
					row = &Row{Kind: "finding", Mode: f.Mode, Name: f.Name, Metric: "value", Unit: f.Unit, Direction: opDirection(f.Op)}
					row.Cells = make([]Cell, len(gs))
					rows[k] = row
					vals[k] = make([][]float64, len(gs))
					order = append(order, k)
				}
				if row.Direction == "" {
					row.Direction = opDirection(f.Op)
				}
				c := &row.Cells[gi]
				if c.Verdicts == nil {
					c.Verdicts = map[string]int{}
				}
				c.Verdicts[string(f.Verdict)]++
				if f.Verdict != experiments.Inconclusive {
					vals[k][gi] = append(vals[k][gi], f.Value)
				}
			}
		}
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		row := rows[k]
		for gi := range gs {
			fill(&row.Cells[gi], gs[gi].ID, vals[k][gi])
		}
		out = append(out, *row)
	}
	return out
}

func opDirection(op string) string {
	switch op {
	case "<=":
		return Lower
	case ">=":
		return Higher
	}
	return ""
}

// workloadMetrics are the figures compared per workload, op and phase.
var workloadMetrics = []struct {
	name, unit, dir string
	latency         bool
	get             func(experiments.PhaseStats) float64
}{
	{"p50_ms", "ms", Lower, true, func(p experiments.PhaseStats) float64 { return p.Latency.P50 }},
	{"p99_ms", "ms", Lower, true, func(p experiments.PhaseStats) float64 { return p.Latency.P99 }},
	{"p999_ms", "ms", Lower, true, func(p experiments.PhaseStats) float64 { return p.Latency.P999 }},
	{"max_ms", "ms", Lower, true, func(p experiments.PhaseStats) float64 { return p.Latency.Max }},
	{"rate", "ops/s", Higher, false, func(p experiments.PhaseStats) float64 { return p.Rate }},
	{"errors", "count", Lower, false, func(p experiments.PhaseStats) float64 { return float64(p.Errors) }},
}

// workloadRows: per workload, phase and op (merged over nodes: node 0), each metric.
// Workloads, phases and ops keep their order of first appearance; op "" (every op)
// comes first.
func workloadRows(gs []*grp) []Row {
	type key struct{ workload, phase, op string }
	var wls, phases []string
	ops := map[string][]string{} // workload -> ops
	stats := map[key][][]experiments.PhaseStats{}
	for gi, g := range gs {
		for _, r := range g.runs {
			for _, p := range r.Run.PhaseStats {
				if p.Node != 0 {
					continue
				}
				if !slices.Contains(wls, p.Workload) {
					wls = append(wls, p.Workload)
				}
				if !slices.Contains(phases, p.Phase) {
					phases = append(phases, p.Phase)
				}
				if !slices.Contains(ops[p.Workload], p.Op) {
					ops[p.Workload] = append(ops[p.Workload], p.Op)
				}
				k := key{p.Workload, p.Phase, p.Op}
				if stats[k] == nil {
					stats[k] = make([][]experiments.PhaseStats, len(gs))
				}
				stats[k][gi] = append(stats[k][gi], p)
			}
		}
	}
	var out []Row
	for _, w := range wls {
		wops := ops[w]
		slices.SortStableFunc(wops, func(a, b string) int {
			return cmp.Compare(boolInt(a != ""), boolInt(b != ""))
		})
		for _, op := range wops {
			for _, ph := range phases {
				k := key{w, ph, op}
				if stats[k] == nil {
					continue
				}
				for _, m := range workloadMetrics {
					row := Row{Kind: "workload", Workload: w, Op: op, Phase: ph, Metric: m.name, Unit: m.unit, Direction: m.dir, Cells: make([]Cell, len(gs))}
					for gi := range gs {
						var vs []float64
						for _, p := range stats[k][gi] {
							if m.latency && p.Count == 0 {
								continue // no operation: no latency
							}
							vs = append(vs, m.get(p))
						}
						fill(&row.Cells[gi], gs[gi].ID, vs)
					}
					out = append(out, row)
				}
			}
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fill sets a cell's median and spread from its runs' values.
func fill(c *Cell, id string, vs []float64) {
	c.Group = id
	c.N = len(vs)
	if len(vs) == 0 {
		return
	}
	med, lo, hi := Median(vs), slices.Min(vs), slices.Max(vs)
	c.Median, c.Min, c.Max = &med, &lo, &hi
}

// Median of vs (the mean of the two middle values for an even count); vs is not
// changed. NaN for none.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// judge sets each cell's ratio against the first group's and the better side.
func judge(row *Row) {
	if len(row.Cells) == 0 {
		return
	}
	ref := row.Cells[0]
	for i := 1; i < len(row.Cells); i++ {
		c := &row.Cells[i]
		c.Ratio, c.Better, c.Overlap = nil, "", false
		if ref.Median == nil || c.Median == nil {
			continue
		}
		a, b := *ref.Median, *c.Median
		if a != 0 {
			r := b / a
			c.Ratio = &r
		}
		c.Better = BetterSide(row.Direction, a, b, ref.Group, c.Group)
		c.Overlap = ref.N >= 2 && c.N >= 2 && *ref.Min <= *c.Max && *c.Min <= *ref.Max
	}
}

// BetterSide names the better of a (side idA) and b (side idB) given the direction:
// Same when equal, "" when the direction is unknown.
func BetterSide(direction string, a, b float64, idA, idB string) string {
	switch {
	case direction != Lower && direction != Higher:
		return ""
	case a == b:
		return Same
	case (direction == Lower) == (b < a):
		return idB
	default:
		return idA
	}
}
