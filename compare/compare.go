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
// their directory, except that the runs of one repeat directory (htapchaos run
// --repeat N) are one group, labelled by the repeat directory.
//
// A group's finding is aggregated as a repeat's is (experiments.AggregateFindings):
// the median with min..max over the runs that judged it, the verdict taken on the
// median, unstable when the runs' verdicts differ; an interrupted run's findings are
// not counted.
package compare

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/results"
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
	Metric   string `json:"metric"` // "value" for a finding; p50_ms, p99_ms, p999_ms, max_ms, rate, errors, memory_p50_mib, ...
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
	// Verdict of a finding taken on the median, and Unstable when the group's runs
	// did not all give the same verdict (experiments.AggregateFindings, as a repeat
	// directory's repeat.json has them).
	Verdict  string `json:"verdict,omitempty"`
	Unstable bool   `json:"unstable,omitempty"`
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

// Load reads the run.json of run directories (experiments.ReadRunFile). A repeat
// directory (repeat.json, experiments.Repeat) gives each of its runs, marked with
// RunDir.Repeat. A directory that is missing, holds neither file, or one that is
// not htapchaos's or was written by a newer htapchaos is bad input (a usage error
// naming it); every such problem is reported at once.
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
		if experiments.IsRepeatDir(d) {
			rs, err := loadRepeat(d)
			if err != nil {
				errs = append(errs, err)
			}
			out = append(out, rs...)
			continue
		}
		rd, err := loadRun(d)
		if err != nil {
			if errors.Is(err, experiments.ErrNotRunDir) {
				err = &usage.Error{Field: d, Msg: "not a run directory (no run.json) nor a repeat directory (no repeat.json)"}
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, rd)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// loadRun reads dir/run.json and dir/summary.json: the findings and the
// per-phase figures are in the first, the gaps of reads and writes in the
// second. Not the intervals and indicators: a long run's would only take
// memory.
func loadRun(dir string) (*experiments.RunDir, error) {
	rf, err := experiments.ReadRunFile(filepath.Join(dir, "run.json"))
	switch {
	case errors.Is(err, experiments.ErrNotRunDir):
		return nil, err
	case errors.Is(err, experiments.ErrNewerVersion), errors.Is(err, experiments.ErrBadRunFile):
		path := filepath.Join(dir, "run.json")
		return nil, &usage.Error{Field: path, Msg: strings.TrimPrefix(err.Error(), "read "+path+": ")}
	case err != nil:
		// Failing to read it, as opposed to what it holds.
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	rd := &experiments.RunDir{Dir: dir, Run: rf}
	path := filepath.Join(dir, "summary.json")
	switch s, err := results.ReadSummary(path); {
	case err == nil:
		rd.Summary = s
	case !errors.Is(err, os.ErrNotExist): // none: the run ended before the load wrote one
		return nil, &usage.Error{Field: path, Msg: err.Error()}
	}
	return rd, nil
}

// loadRepeat reads the runs of a repeat directory (its repeat.json names them),
// each marked as the repeat's. Runs that wrote no run.json measured nothing and
// are left out; a repeat with none is bad input.
func loadRepeat(dir string) ([]*experiments.RunDir, error) {
	rf, err := experiments.ReadRepeatFile(dir)
	if err != nil {
		path := filepath.Join(dir, experiments.RepeatFileName)
		if errors.Is(err, experiments.ErrNewerVersion) || errors.Is(err, experiments.ErrBadRunFile) {
			return nil, &usage.Error{Field: path, Msg: strings.TrimPrefix(err.Error(), "read "+path+": ")}
		}
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var out []*experiments.RunDir
	var errs []error
	for _, d := range rf.RunDirs(dir) {
		rd, err := loadRun(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rd.Repeat = dir
		out = append(out, rd)
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, &usage.Error{Field: dir, Msg: "a repeat directory with no run that wrote run.json"})
	}
	return out, errors.Join(errs...)
}

// source is where a run was given: its repeat directory, or its own.
func source(r *experiments.RunDir) string {
	if r.Repeat != "" {
		return r.Repeat
	}
	return r.Dir
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
	c.Workloads = append(workloadRows(groups), gapRows(groups)...)
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
		key := experiments.SettingsKey(flat)
		g, ok := byKey[key]
		if !ok {
			g = &grp{flat: flat}
			byKey[key] = g
			gs = append(gs, g)
		}
		g.runs = append(g.runs, r)
	}
	if len(gs) == 1 {
		// Nothing differs but the seed: each run is its own group, and the runs of
		// a repeat directory are one.
		gs = gs[:0]
		bySource := map[string]*grp{}
		for _, r := range runs {
			g, ok := bySource[source(r)]
			if !ok {
				g = &grp{flat: Settings(r.Run)}
				bySource[source(r)] = g
				gs = append(gs, g)
			}
			g.runs = append(g.runs, r)
		}
	}
	diff := differing(gs)
	var sources []string
	for _, r := range runs {
		sources = append(sources, source(r))
	}
	names := dirNames(sources)
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
			g.Label = names[source(g.runs[0])]
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

// dirNames are short names for directories: the base name, or the path as given
// where base names collide.
func dirNames(dirs []string) map[string]string {
	count := map[string]int{}
	seen := map[string]bool{}
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			count[filepath.Base(filepath.Clean(d))]++
		}
	}
	out := map[string]string{}
	for _, d := range dirs {
		b := filepath.Base(filepath.Clean(d))
		if count[b] > 1 {
			b = d
		}
		out[d] = b
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
	// The experiment's name first: when it differs it says the most; then the
	// topology (the spec's, or that of the cluster used), which tells two engines
	// apart before any of their sizes.
	rank := func(p string) int {
		switch {
		case p == "name":
			return 0
		case strings.HasSuffix(p, ".topology"):
			return 1
		}
		return 2
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i]), rank(out[j]); ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}

// Settings is experiments.Settings: what makes a run's configuration, flattened
// to the paths --set takes. Runs with equal Settings form one group.
func Settings(rf *experiments.RunFile) map[string]string { return experiments.Settings(rf) }

// findingRows: one row per finding (mode and name), in order of first appearance;
// each group's cell is the finding aggregated over the group's runs
// (experiments.AggregateFindings: median, min..max, the verdict on the median,
// unstable). An interrupted run's findings are not counted, as in a repeat.
func findingRows(gs []*grp) []Row {
	type key struct{ mode, name string }
	var order []key
	rows := map[key]*Row{}
	for gi, g := range gs {
		per := make([][]experiments.Finding, len(g.runs))
		for i, r := range g.runs {
			if r.Run.Interrupted {
				continue
			}
			per[i] = r.Run.Findings
			if per[i] == nil && r.Run.Verdict != "" {
				per[i] = []experiments.Finding{} // scored, nothing found
			}
		}
		for _, a := range experiments.AggregateFindings(per) {
			k := key{a.Mode, a.Name}
			row, ok := rows[k]
			if !ok {
				row = &Row{Kind: "finding", Mode: a.Mode, Name: a.Name, Metric: "value", Unit: a.Unit, Cells: make([]Cell, len(gs))}
				rows[k] = row
				order = append(order, k)
			}
			if row.Direction == "" {
				row.Direction = opDirection(a.Op)
			}
			c := &row.Cells[gi]
			c.N, c.Median, c.Min, c.Max = a.N, a.Median, a.Min, a.Max
			c.Verdict, c.Unstable = string(a.Verdict), a.Unstable
			c.Verdicts = map[string]int{}
			for v, n := range a.Counts() {
				c.Verdicts[string(v)] = n
			}
		}
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		row := rows[k]
		for gi := range gs {
			row.Cells[gi].Group = gs[gi].ID
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

// Gap metrics: the longest window without a successful read or write, over the
// whole run, on a workload's streams (the longest of its nodes) or on every
// node together (Workload ClusterWide).
const (
	MetricReadGap  = "longest_read_gap_s"
	MetricWriteGap = "longest_write_gap_s"
	// ClusterWide is the Workload of the rows of the cluster-wide streams.
	ClusterWide = "every node"
	// PhaseRun is the Phase of the rows over the whole run.
	PhaseRun = "run"
)

// gapRows: per workload, and cluster-wide, the longest read gap and the longest
// write gap of each run (from summary.json), median over a group's runs. A run
// whose summary predates access kinds gives none.
func gapRows(gs []*grp) []Row {
	type key struct {
		workload string
		access   results.Access
	}
	var order []key
	vals := map[key][][]float64{}
	add := func(k key, gi int, v float64) {
		if vals[k] == nil {
			vals[k] = make([][]float64, len(gs))
			order = append(order, k)
		}
		vals[k][gi] = append(vals[k][gi], v)
	}
	for gi, g := range gs {
		for _, r := range g.runs {
			if r.Summary == nil {
				continue
			}
			longest := map[key]float64{}
			var keys []key
			for _, sg := range r.Summary.Gaps {
				if sg.Access == "" {
					continue
				}
				k := key{sg.Workload, sg.Access}
				if _, ok := longest[k]; !ok {
					keys = append(keys, k)
				}
				longest[k] = max(longest[k], sg.Longest)
			}
			for _, sg := range r.Summary.Cluster {
				k := key{ClusterWide, sg.Access}
				keys = append(keys, k)
				longest[k] = sg.Longest
			}
			for _, k := range keys {
				add(k, gi, longest[k])
			}
		}
	}
	var out []Row
	for _, k := range order {
		m := MetricReadGap
		if k.access == results.Write {
			m = MetricWriteGap
		}
		row := Row{Kind: "workload", Workload: k.workload, Phase: PhaseRun, Metric: m, Unit: "s", Direction: Lower, Cells: make([]Cell, len(gs))}
		for gi := range gs {
			fill(&row.Cells[gi], gs[gi].ID, vals[k][gi])
		}
		out = append(out, row)
	}
	return out
}

// Memory metrics: the per-query peak memory of the ops that measure it
// (loadgen's Op.Memory; PhaseStats.Memory), in MiB, per phase.
const (
	MetricMemoryP50 = "memory_p50_mib"
	MetricMemoryP99 = "memory_p99_mib"
	MetricMemoryMax = "memory_max_mib"
)

// workloadMetrics are the figures compared per workload, op and phase. get says
// whether a run's stats have the figure at all: latency needs an operation,
// memory a measurement. A measured metric's row appears only where some run
// has it (memory: the ops and phases a run measured).
var workloadMetrics = []struct {
	name, unit, dir string
	measured        bool
	get             func(experiments.PhaseStats) (float64, bool)
}{
	{"p50_ms", "ms", Lower, false, latency(func(l results.Percentiles) float64 { return l.P50 })},
	{"p99_ms", "ms", Lower, false, latency(func(l results.Percentiles) float64 { return l.P99 })},
	{"p999_ms", "ms", Lower, false, latency(func(l results.Percentiles) float64 { return l.P999 })},
	{"max_ms", "ms", Lower, false, latency(func(l results.Percentiles) float64 { return l.Max })},
	{"rate", "ops/s", Higher, false, func(p experiments.PhaseStats) (float64, bool) { return p.Rate, true }},
	{"errors", "count", Lower, false, func(p experiments.PhaseStats) (float64, bool) { return float64(p.Errors), true }},
	{MetricMemoryP50, "MiB", Lower, true, memory(func(m *results.BytePercentiles) float64 { return m.P50 })},
	{MetricMemoryP99, "MiB", Lower, true, memory(func(m *results.BytePercentiles) float64 { return m.P99 })},
	{MetricMemoryMax, "MiB", Lower, true, memory(func(m *results.BytePercentiles) float64 { return m.Max })},
}

// latency reads a latency figure: none without an operation.
func latency(f func(results.Percentiles) float64) func(experiments.PhaseStats) (float64, bool) {
	return func(p experiments.PhaseStats) (float64, bool) { return f(p.Latency), p.Count > 0 }
}

// memory reads a per-query memory figure (bytes) in MiB: none where the run did
// not measure it.
func memory(f func(*results.BytePercentiles) float64) func(experiments.PhaseStats) (float64, bool) {
	return func(p experiments.PhaseStats) (float64, bool) {
		if p.Memory == nil {
			return 0, false
		}
		return f(p.Memory) / (1 << 20), true
	}
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
				if !slices.Contains(phases, p.Window) {
					phases = append(phases, p.Window)
				}
				if !slices.Contains(ops[p.Workload], p.Op) {
					ops[p.Workload] = append(ops[p.Workload], p.Op)
				}
				k := key{p.Workload, p.Window, p.Op}
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
					has := false
					for gi := range gs {
						var vs []float64
						for _, p := range stats[k][gi] {
							if v, ok := m.get(p); ok {
								vs = append(vs, v)
							}
						}
						has = has || len(vs) > 0
						fill(&row.Cells[gi], gs[gi].ID, vs)
					}
					if m.measured && !has {
						continue
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
	med, lo, hi := experiments.Median(vs), slices.Min(vs), slices.Max(vs)
	c.Median, c.Min, c.Max = &med, &lo, &hi
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
