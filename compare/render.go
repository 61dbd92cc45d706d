package compare

import (
	"github.com/htapchaos/htapchaos/results"

	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// TextOptions change the terminal table.
type TextOptions struct {
	// AllOps shows every op of each workload; by default only "all" (every op
	// merged) is shown.
	AllOps bool
}

// WriteJSON writes the comparison as indented JSON.
func (c *Comparison) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the terminal table: the groups, then the findings and the
// workloads, one column per group, then each group's ratio against the first and
// the better side.
func (c *Comparison) WriteText(w io.Writer, o TextOptions) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %d groups of runs, compared against %s\n", strings.Join(c.Experiments, ", "), len(c.Groups), c.Groups[0].ID)
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	for _, g := range c.Groups {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", g.ID, g.Label, runsText(g))
	}
	tw.Flush()
	for _, g := range c.Groups {
		for _, n := range g.Notes {
			fmt.Fprintf(&b, "  %s: note: %s\n", g.ID, n)
		}
	}
	ref := c.Groups[0].ID
	fmt.Fprintf(&b, "  values are medians over a group's runs, (min..max) where it has several; X/%s is X's median over %s's;\n", ref, ref)
	fmt.Fprintf(&b, "  BETTER: lower latency and errors, higher rate, a finding by its budget (- not judged); \"in spread\": the ranges overlap\n")

	head := func(first ...string) string {
		cols := append([]string{}, first...)
		for _, g := range c.Groups {
			cols = append(cols, g.ID)
		}
		for _, g := range c.Groups[1:] {
			cols = append(cols, g.ID+"/"+ref, "BETTER")
		}
		return strings.Join(cols, "\t")
	}
	tail := func(r Row, finding bool) string {
		var cols []string
		for _, cell := range r.Cells {
			t := valueText(cell)
			if finding {
				t += " " + findingVerdictText(cell)
			}
			cols = append(cols, strings.TrimSpace(t))
		}
		for _, cell := range r.Cells[1:] {
			cols = append(cols, RatioText(cell.Ratio), betterText(cell))
		}
		return strings.Join(cols, "\t")
	}

	if len(c.Findings) > 0 {
		fmt.Fprintf(&b, "\nFINDINGS\n")
		tw = tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, head("MODE", "FINDING", "UNIT"))
		for _, r := range c.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Mode, r.Name, r.Unit, tail(r, true))
		}
		tw.Flush()
	}
	if len(c.Workloads) > 0 {
		fmt.Fprintf(&b, "\nWORKLOADS (merged over nodes; latency in ms from the intended start)\n")
		tw = tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, head("WORKLOAD", "OP", "PHASE", "METRIC"))
		hidden := 0
		for _, r := range c.Workloads {
			if r.Op != "" && !o.AllOps {
				hidden++
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Workload, OpText(r.Op), r.Phase, MetricText(r.Metric), tail(r, false))
		}
		tw.Flush()
		if hidden > 0 {
			fmt.Fprintf(&b, "(every op merged; each op: --ops, --json or --html)\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func runsText(g Group) string {
	n := len(g.Dirs)
	s := fmt.Sprintf("%d run", n)
	if n != 1 {
		s += "s"
	}
	var parts []string
	for i, d := range g.Dirs {
		parts = append(parts, fmt.Sprintf("%s (seed %d, %s)", d, g.Seeds[i], g.Verdicts[i]))
	}
	return s + ": " + strings.Join(parts, ", ")
}

// OpText shows op "" as "all".
func OpText(op string) string {
	if op == "" {
		return "all"
	}
	return op
}

// MetricText is a workload metric's short name: p50, p99, p99.9, max, rate, errors.
func MetricText(m string) string {
	switch m {
	case "p999_ms":
		return "p99.9"
	case "value":
		return "value"
	case MetricReadGap:
		return "longest read gap"
	case MetricWriteGap:
		return "longest write gap"
	}
	return strings.TrimSuffix(m, "_ms")
}

// num formats a figure with four significant digits.
func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// valueText is a cell's median, with (min..max) where it has several runs.
func valueText(c Cell) string {
	if c.Median == nil {
		return "-"
	}
	s := num(*c.Median)
	if c.N >= 2 {
		s += " (" + num(*c.Min) + ".." + num(*c.Max) + ")"
	}
	return s
}

// RatioText formats a ratio: two decimals (no decimals from 100 up, two
// significant digits under 0.01); "-" for none.
func RatioText(r *float64) string {
	if r == nil {
		return "-"
	}
	switch v := *r; {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 0.01 || v == 0:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

func betterText(c Cell) string {
	if c.Better == "" {
		return "-"
	}
	if c.Overlap && c.Better != Same {
		return c.Better + " (in spread)"
	}
	return c.Better
}

// findingVerdictText is a finding cell's verdict: "pass" when every run agrees,
// else the verdict on the median marked unstable, with the runs per verdict:
// "pass unstable (fail 1, pass 2)".
func findingVerdictText(c Cell) string {
	if len(c.Verdicts) == 0 {
		return ""
	}
	if !c.Unstable && c.Verdict != "" {
		return c.Verdict
	}
	v := c.Verdict
	if c.Unstable {
		v += " unstable"
	}
	return strings.TrimSpace(v + " (" + verdictText(c.Verdicts) + ")")
}

// verdictText: "pass" when every run agrees, else "fail 1, pass 2".
func verdictText(v map[string]int) string {
	if len(v) == 0 {
		return ""
	}
	if len(v) == 1 {
		for k := range v {
			return k
		}
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, v[k]))
	}
	return strings.Join(parts, ", ")
}

//go:embed compare.html
var pageSrc string

var page = template.Must(template.New("compare").Parse(pageSrc))

type htmlCell struct {
	Value, Spread, Verdict, Class string
}

type htmlRatio struct {
	Ratio, Better, Class string
}

type htmlRow struct {
	Key    []string
	Cells  []htmlCell
	Ratios []htmlRatio
}

type htmlGroup struct {
	ID, Label   string
	Runs, Notes []string
}

type htmlPage struct {
	Title     string
	Groups    []Group
	GroupRows []htmlGroup
	Ref       string
	Others    []string
	Findings  []htmlRow
	Workloads []htmlRow
}

// WriteHTML writes a self-contained page (inline CSS, no scripts, nothing fetched).
func (c *Comparison) WriteHTML(w io.Writer) error {
	p := htmlPage{Title: "htapchaos compare: " + strings.Join(c.Experiments, ", "), Groups: c.Groups, Ref: c.Groups[0].ID}
	for _, g := range c.Groups[1:] {
		p.Others = append(p.Others, g.ID)
	}
	for _, g := range c.Groups {
		hg := htmlGroup{ID: g.ID, Label: g.Label, Notes: g.Notes}
		for i, d := range g.Dirs {
			hg.Runs = append(hg.Runs, fmt.Sprintf("%s (seed %d, %s)", d, g.Seeds[i], g.Verdicts[i]))
		}
		p.GroupRows = append(p.GroupRows, hg)
	}
	row := func(r Row, key []string, finding bool) htmlRow {
		hr := htmlRow{Key: key}
		for i, cell := range r.Cells {
			hc := htmlCell{Value: "-"}
			if cell.Median != nil {
				hc.Value = num(*cell.Median)
				if cell.N >= 2 {
					hc.Spread = num(*cell.Min) + ".." + num(*cell.Max)
				}
			}
			if finding {
				hc.Verdict = findingVerdictText(cell)
			}
			if i > 0 && cell.Better != "" && cell.Better != Same {
				if cell.Better == cell.Group {
					hc.Class = "better"
				} else {
					hc.Class = "worse"
				}
			}
			hr.Cells = append(hr.Cells, hc)
		}
		for _, cell := range r.Cells[1:] {
			cls := ""
			switch {
			case cell.Better == Same:
				cls = "same"
			case cell.Better == "":
			case cell.Overlap:
				cls = "spread"
			case cell.Better == cell.Group:
				cls = "better"
			default:
				cls = "worse"
			}
			hr.Ratios = append(hr.Ratios, htmlRatio{Ratio: RatioText(cell.Ratio), Better: betterText(cell), Class: cls})
		}
		return hr
	}
	for _, r := range c.Findings {
		p.Findings = append(p.Findings, row(r, []string{r.Mode, r.Name, r.Unit}, true))
	}
	for _, r := range c.Workloads {
		p.Workloads = append(p.Workloads, row(r, []string{r.Workload, OpText(r.Op), r.Phase, MetricText(r.Metric)}, false))
	}
	var b bytes.Buffer
	if err := page.Execute(&b, p); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteFile writes what write produces to path atomically (results.WriteFileAtomic):
// on any error path is left as it was.
func WriteFile(path string, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	return results.WriteFileAtomic(path, b.Bytes())
}
