package report

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

type chartHTML struct {
	ID, Title, Caption string
	Points, Bands      int
	SVG                template.HTML
}

type section struct {
	Name   string
	Charts []chartHTML
	Ops    []results.OpSummary
	Memory bool // some op measured its queries' peak memory (OpSummary.Memory)
}

type findingRow struct {
	experiments.Finding
	Value, Budget string
	Evidence      []string
}

type timelineRow struct {
	What, Kind, Nodes, State string
	From, To                 string
	Details                  []string
}

type gapRow struct {
	Stream         string
	From, To       string
	Seconds        float64
	Failed, Late   int64
	Ongoing        bool
	FaultsInWindow string
}

type pageData struct {
	Title, Description string
	Run                *experiments.RunFile
	Verdict            string
	Duration           string
	Findings           []findingRow
	Timeline           []timelineRow
	Workloads          []section
	Gaps               *chartHTML
	GapRows            []gapRow
	MoreGaps           int
	Indicators         []chartHTML
	Missing            []string
	Dir                string
}

// HTML writes the report as one self-contained page.
func (r *Report) HTML(w io.Writer) error {
	rf := r.Run.Run
	d := pageData{Run: rf, Dir: r.Run.Dir, Verdict: string(rf.Verdict), Missing: rf.Missing}
	if rf.Spec != nil {
		d.Title, d.Description = rf.Spec.Name, rf.Spec.Description
	}
	if d.Title == "" {
		d.Title = "htapchaos run"
	}
	if !rf.End.IsZero() {
		d.Duration = rf.End.Sub(rf.Start).Round(time.Second).String()
	}
	for _, f := range rf.Findings {
		row := findingRow{Finding: f, Value: fmt.Sprintf("%.4g %s", f.Value, f.Unit), Budget: fmt.Sprintf("%s %.4g %s", f.Op, f.Budget, f.Unit)}
		if f.Op == "" {
			row.Budget = "report only"
		}
		if f.Verdict == experiments.Inconclusive {
			row.Value = "-"
		}
		for _, e := range f.Evidence {
			row.Evidence = append(row.Evidence, e.Text(rf.Start))
		}
		d.Findings = append(d.Findings, row)
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.1fs", t.Sub(rf.Start).Seconds())
	}
	for _, p := range rf.Phases {
		d.Timeline = append(d.Timeline, timelineRow{What: p.Name, Kind: "phase", From: at(p.Start), To: at(p.End)})
	}
	for _, f := range rf.Faults {
		row := timelineRow{What: f.Name, Kind: f.Kind, Nodes: strings.Join(f.NodeLabels, ", "), State: f.State,
			From: at(f.Effective), To: at(f.Recovered)}
		if !f.TookEffect() {
			row.From = "never took effect (planned " + at(f.Planned.Start) + ")"
		}
		if f.Error != "" {
			row.Details = append(row.Details, "error: "+f.Error)
		}
		if !f.Healthy.IsZero() {
			row.Details = append(row.Details, "nodes serving again at "+at(f.Healthy))
		}
		for _, m := range f.Measurements {
			s := fmt.Sprintf("%s: %.4g %s", m.Name, m.Value, m.Unit)
			if m.Node != "" {
				s = m.Node + " " + s
			}
			if m.Note != "" {
				s += " (" + m.Note + ")"
			}
			row.Details = append(row.Details, s)
		}
		d.Timeline = append(d.Timeline, row)
	}

	svgOf := func(c *Chart) (chartHTML, error) {
		b, err := c.Render("svg")
		if err != nil {
			return chartHTML{}, err
		}
		return chartHTML{ID: c.ID, Title: c.Title, Caption: c.Caption, Points: c.Points, Bands: c.Bands, SVG: template.HTML(inlineSVG(b))}, nil
	}
	for _, c := range r.Charts {
		h, err := svgOf(c)
		if err != nil {
			return err
		}
		switch c.Section {
		case "indicators":
			d.Indicators = append(d.Indicators, h)
		case "gaps":
			d.Gaps = &h
		default:
			i := slices.IndexFunc(d.Workloads, func(s section) bool { return s.Name == c.Section })
			if i < 0 {
				d.Workloads = append(d.Workloads, section{Name: c.Section})
				i = len(d.Workloads) - 1
			}
			d.Workloads[i].Charts = append(d.Workloads[i].Charts, h)
		}
	}
	if s := r.Run.Summary; s != nil {
		for i := range d.Workloads {
			for _, o := range s.Workloads {
				if o.Workload == d.Workloads[i].Name {
					d.Workloads[i].Ops = append(d.Workloads[i].Ops, o)
					d.Workloads[i].Memory = d.Workloads[i].Memory || o.Memory != nil
				}
			}
		}
		var rows []gapRow
		for _, sg := range append(slices.Clone(s.Cluster), s.Gaps...) {
			d.MoreGaps += sg.MoreGaps
			for _, g := range sg.Gaps {
				rows = append(rows, gapRow{Stream: streamLabel(sg), From: at(g.Start), To: at(g.End),
					Seconds: g.Duration, Failed: g.Failed, Late: g.Late, Ongoing: g.Ongoing, FaultsInWindow: faultsDuring(rf, g.Start, g.End)})
			}
		}
		slices.SortStableFunc(rows, func(a, b gapRow) int { return cmp.Compare(b.Seconds, a.Seconds) })
		if len(rows) > 25 {
			d.MoreGaps += len(rows) - 25
			rows = rows[:25]
		}
		d.GapRows = rows
	}
	return page.Execute(w, d)
}

// inlineSVG strips what comes before the <svg> element (the XML declaration
// and a comment) and lets the chart scale with the page.
func inlineSVG(b []byte) string {
	if i := bytes.Index(b, []byte("<svg")); i > 0 {
		b = b[i:]
	}
	return string(b)
}

// faultsDuring names the faults whose window overlaps [from, to].
func faultsDuring(rf *experiments.RunFile, from, to time.Time) string {
	var names []string
	for _, f := range rf.Faults {
		if !f.TookEffect() {
			continue
		}
		w := f.Window(rf.End)
		if w.Start.Before(to) && from.Before(w.End) {
			names = append(names, f.Name)
		}
	}
	return strings.Join(names, ", ")
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"lower": func(v experiments.Verdict) string { return strings.ToLower(string(v)) },
	"ms": func(v float64) string {
		if v >= 100 {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.3g", v)
	},
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"total": func(o results.OpSummary) int64 { return o.ErrorsTotal },
	// mib formats bytes (a per-query memory figure) in MiB.
	"mib": func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}: {{.Verdict}} - htapchaos</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #1d1d1f; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; } h3 { margin-top: 1.4em; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: bold; text-transform: uppercase; padding: 1px 6px; border-radius: 3px; }
.pass { background: #d7f5dd; color: #11621f; } .fail { background: #fbd9d9; color: #9b1111; } .inconclusive { background: #fdf0c8; color: #7a5a00; }
.meta { color: #555; } ul.ev { margin: 0; padding-left: 1.1em; } details { margin-top: 0.3em; }
figure.chart { margin: 1em 0; } figure.chart svg { width: 100%; height: auto; } figcaption { color: #555; font-size: 12px; }
.band { display: inline-block; width: 1.2em; height: 0.8em; background: rgba(232,58,58,0.25); vertical-align: middle; }
</style>
</head>
<body>
<h1>{{.Title}} <span class="verdict {{lower .Run.Verdict}}" id="verdict">{{.Verdict}}</span></h1>
{{if .Description}}<p>{{.Description}}</p>{{end}}
<p class="meta">Started {{when .Run.Start}}{{if .Duration}}, ran {{.Duration}}{{end}}; seed {{.Run.Seed}}; {{.Run.Tool}}{{if .Run.Cluster}}; cluster {{.Run.Cluster.Name}} ({{.Run.Cluster.Topology}}, {{len .Run.Cluster.Nodes}} nodes){{end}}{{if .Run.Target}}; target {{.Run.Target}}{{end}}{{if .Run.ServerVersion}}; server {{.Run.ServerVersion}}{{end}}.
{{if .Run.Interrupted}}<strong>The run was interrupted: what was measured is scored.</strong>{{end}}
{{if .Run.Aborted}}<strong id="aborted">The run was aborted: {{.Run.Aborted.Condition}} held ({{printf "%.4g" .Run.Aborted.Value}}{{.Run.Aborted.Unit}}) at {{when .Run.Aborted.At}}; the faults were recovered {{printf "%.2f" .Run.Aborted.FaultsRecoveredIn}} s after. What was measured is scored.</strong>{{end}}
{{if .Run.Error}}<strong>The run ended with an error: {{.Run.Error}}</strong>{{end}}</p>

<h2 id="findings">Verdicts</h2>
<table class="findings">
<tr><th>failure mode</th><th>finding</th><th>verdict</th><th>value</th><th>budget</th><th>evidence</th><th title="Shahid Moosa, Lessons Learned Running SingleStore in Production (The Painful Ones); the catalog: docs/failure-modes.md">the article</th></tr>
{{range .Findings}}<tr class="finding">
<td>{{.Mode}}</td><td>{{.Name}}</td><td><span class="verdict {{lower .Verdict}}">{{.Verdict}}</span></td>
<td class="num">{{.Value}}</td><td>{{.Budget}}{{if .Reason}}<br><em>{{.Reason}}</em>{{end}}</td>
<td>{{if .Evidence}}<ul class="ev">{{range .Evidence}}<li>{{.}}</li>{{end}}</ul>{{end}}{{if .Notes}}<details><summary>{{len .Notes}} note(s)</summary><ul class="ev">{{range .Notes}}<li>{{.}}</li>{{end}}</ul></details>{{end}}</td>
<td>{{.Reference}}</td></tr>
{{else}}<tr><td colspan="7">No findings were scored.</td></tr>{{end}}
</table>
<p class="note">The article: Shahid Moosa, “Lessons Learned Running SingleStore in Production (The Painful Ones)”, whose failure modes htapchaos's catalog (docs/failure-modes.md) turns into findings.</p>

<h2 id="timeline">Timeline</h2>
<p class="meta">Times in seconds since the run started. <span class="band"></span> marks a fault window on the charts: from the fault's verified effect to its recovery.</p>
<table>
<tr><th>phase or fault</th><th>kind</th><th>nodes</th><th>from</th><th>to</th><th>state</th><th>measured</th></tr>
{{range .Timeline}}<tr><td>{{.What}}</td><td>{{.Kind}}</td><td>{{.Nodes}}</td><td>{{.From}}</td><td>{{.To}}</td><td>{{.State}}</td><td>{{if .Details}}<ul class="ev">{{range .Details}}<li>{{.}}</li>{{end}}</ul>{{end}}</td></tr>
{{end}}</table>

{{range .Workloads}}
<h2 id="workload-{{.Name}}">Workload {{.Name}}</h2>
{{if .Ops}}{{$mem := .Memory}}<table>
<tr><th>op</th><th>successes</th><th>rate/s</th><th>errors</th><th>late</th><th>dropped</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th>{{if $mem}}<th>query memory p50 / p99 / max MiB</th>{{end}}</tr>
{{range .Ops}}<tr><td>{{.Op}}</td><td class="num">{{.Count}}</td><td class="num">{{printf "%.1f" .Rate}}</td><td class="num">{{total .}}</td><td class="num">{{.Late}}</td><td class="num">{{.Dropped}}</td><td class="num">{{ms .Latency.P50}}</td><td class="num">{{ms .Latency.P99}}</td><td class="num">{{ms .Latency.P999}}</td><td class="num">{{ms .Latency.Max}}</td>{{if $mem}}<td class="num">{{with .Memory}}{{mib .P50}} / {{mib .P99}} / {{mib .Max}}{{end}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{range .Charts}}<figure class="chart" id="chart-{{.ID}}" data-points="{{.Points}}" data-bands="{{.Bands}}">
{{.SVG}}
<figcaption>{{.Caption}}</figcaption></figure>
{{end}}{{end}}

<h2 id="gaps">Failover gaps</h2>
{{with .Gaps}}<figure class="chart" id="chart-{{.ID}}" data-points="{{.Points}}" data-bands="{{.Bands}}">
{{.SVG}}
<figcaption>{{.Caption}}</figcaption></figure>{{end}}
{{if .GapRows}}<table>
<tr><th>stream</th><th>from</th><th>to</th><th>seconds</th><th>failed inside</th><th>late inside</th><th>faults in the window</th></tr>
{{range .GapRows}}<tr><td>{{.Stream}}</td><td>{{.From}}</td><td>{{.To}}{{if .Ongoing}} (still ongoing at the end){{end}}</td><td class="num">{{printf "%.2f" .Seconds}}</td><td class="num">{{.Failed}}</td><td class="num">{{.Late}}</td><td>{{.FaultsInWindow}}</td></tr>
{{end}}</table>{{if .MoreGaps}}<p class="meta">{{.MoreGaps}} shorter gaps not listed.</p>{{end}}
{{else}}<p>No stream went without a success for longer than the gap threshold.</p>{{end}}

<h2 id="indicators">Indicators per node</h2>
{{range .Indicators}}<figure class="chart" id="chart-{{.ID}}" data-points="{{.Points}}" data-bands="{{.Bands}}">
{{.SVG}}
<figcaption>{{.Title}}. {{.Caption}}</figcaption></figure>
{{else}}<p>No indicators were sampled.</p>{{end}}
{{if .Missing}}<p class="meta">Not available from these nodes: {{range $i, $m := .Missing}}{{if $i}}, {{end}}{{$m}}{{end}}.</p>{{end}}

<p class="meta">From the run directory {{.Dir}}: run.json, summary.json, intervals.jsonl, indicators.jsonl, events.jsonl and one .hlog per workload.</p>
</body>
</html>
`))
