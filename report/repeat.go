package report

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

// writeRepeat writes the report of a repeat directory (experiments.Repeat): each
// run's report again (unless o.PageOnly), then the repeat's page at o.Out
// (default DIR/report.html). A run's charts go to its own charts/ directory when
// o.ChartsDir is DIR/charts (what `htapchaos report DIR` gives by default), else
// to o.ChartsDir/<run>; none when o.ChartsDir is "". A run whose report fails is
// said in the error; the page is written all the same.
func writeRepeat(dir string, o Options) error {
	rf, err := experiments.ReadRepeatFile(dir)
	if err != nil {
		return err
	}
	var errs []error
	if !o.PageOnly {
		for _, rd := range rf.RunDirs(dir) {
			charts := ""
			switch {
			case o.ChartsDir == "":
			case filepath.Clean(o.ChartsDir) == filepath.Join(dir, "charts"):
				charts = filepath.Join(rd, "charts")
			default:
				charts = filepath.Join(o.ChartsDir, filepath.Base(rd))
			}
			if _, err := Write(rd, Options{ChartsDir: charts}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	out := o.Out
	if out == "" {
		out = filepath.Join(dir, "report.html")
	}
	var page bytes.Buffer
	if err := repeatPage.Execute(&page, repeatData(dir, out, rf)); err != nil {
		return errors.Join(append(errs, fmt.Errorf("report %s: %w", dir, err))...)
	}
	if err := results.WriteFileAtomic(out, page.Bytes()); err != nil {
		errs = append(errs, fmt.Errorf("report: write %s: %w", out, err))
	}
	return errors.Join(errs...)
}

type repeatRunRow struct {
	experiments.RepeatRun
	Name, Link string
}

type repeatCell struct {
	Value   string
	Verdict experiments.Verdict
}

type repeatFindingRow struct {
	experiments.RepeatFinding
	Spread, Budget, Counts string
	Cells                  []repeatCell
}

type repeatPageData struct {
	Title, Description string
	File               *experiments.RepeatFile
	Seeds, Duration    string
	Runs               []repeatRunRow
	Findings           []repeatFindingRow
	Unstable           int
	Dir                string
}

func repeatData(dir, page string, rf *experiments.RepeatFile) repeatPageData {
	d := repeatPageData{Title: rf.Experiment, File: rf, Dir: dir}
	if rf.Spec != nil {
		d.Description = rf.Spec.Description
	}
	if d.Title == "" {
		d.Title = "htapchaos repeat"
	}
	var seeds []string
	for _, s := range rf.Seeds() {
		seeds = append(seeds, strconv.FormatUint(s, 10))
	}
	d.Seeds = strings.Join(seeds, ", ")
	if !rf.End.IsZero() {
		d.Duration = rf.End.Sub(rf.Start).Round(time.Second).String()
	}
	for _, r := range rf.Runs {
		row := repeatRunRow{RepeatRun: r, Name: r.Dir}
		report := filepath.Join(dir, r.Dir, "report.html")
		if _, err := os.Stat(report); err == nil { // no link to a report that was not written
			if rel, err := filepath.Rel(filepath.Dir(page), report); err == nil {
				row.Link = filepath.ToSlash(rel)
			}
		}
		d.Runs = append(d.Runs, row)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	for _, f := range rf.Findings {
		row := repeatFindingRow{RepeatFinding: f, Spread: f.SpreadText(), Counts: f.CountsText()}
		if f.Median != nil && f.Unit != "" {
			row.Spread += " " + f.Unit
		}
		row.Budget = strings.TrimSpace(fmt.Sprintf("%s %s %s", f.Op, num(f.Budget), f.Unit))
		if f.Op == "" {
			row.Budget = "report only"
		}
		for i := range rf.Runs {
			c := repeatCell{Value: "-"}
			if i < len(f.Values) && f.Values[i] != nil {
				c.Value = num(*f.Values[i])
			}
			if i < len(f.Verdicts) {
				c.Verdict = f.Verdicts[i]
			}
			row.Cells = append(row.Cells, c)
		}
		if f.Unstable {
			d.Unstable++
		}
		d.Findings = append(d.Findings, row)
	}
	return d
}

var repeatPage = template.Must(template.New("repeat").Funcs(template.FuncMap{
	"lower": func(v experiments.Verdict) string { return strings.ToLower(string(v)) },
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}: {{.File.Verdict}} over {{len .Runs}} runs - htapchaos</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #1d1d1f; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { font-weight: bold; text-transform: uppercase; padding: 1px 6px; border-radius: 3px; }
.pass { background: #d7f5dd; color: #11621f; } .fail { background: #fbd9d9; color: #9b1111; } .inconclusive { background: #fdf0c8; color: #7a5a00; }
.unstable { font-weight: bold; text-transform: uppercase; padding: 1px 6px; border-radius: 3px; background: #e9dcfb; color: #4b1d8f; }
.meta { color: #555; } ul.ev { margin: 0; padding-left: 1.1em; } small { color: #555; }
</style>
</head>
<body>
<h1>{{.Title}} <span class="verdict {{lower .File.Verdict}}" id="verdict">{{.File.Verdict}}</span>{{if .Unstable}} <span class="unstable" id="unstable">{{.Unstable}} unstable</span>{{end}}</h1>
{{if .Description}}<p>{{.Description}}</p>{{end}}
<p class="meta">{{len .Runs}} of {{.File.Repeats}} runs with seeds {{.Seeds}}; started {{when .File.Start}}{{if .Duration}}, ran {{.Duration}} in all{{end}}; {{.File.Tool}}.
{{if .File.Interrupted}}<strong>The repeat was interrupted: the runs that completed are aggregated.</strong>{{end}}
{{if .File.Error}}<strong>The repeat ended with an error: {{.File.Error}}</strong>{{end}}</p>
<p class="meta">Each finding is the median over the runs that judged it, with min..max; its verdict is taken on the median, and the experiment's verdict (and the exit code) follows those. A finding is <span class="unstable">unstable</span> when its runs did not all give the same verdict: it is printed, and does not change the exit code by itself.</p>

<h2 id="findings">Verdicts on the medians</h2>
<table class="findings">
<tr><th>failure mode</th><th>finding</th><th>verdict</th><th>median (min..max)</th><th>budget</th><th>runs</th>{{range .Runs}}<th>{{.Name}}</th>{{end}}</tr>
{{range .Findings}}<tr class="finding{{if .Unstable}} is-unstable{{end}}">
<td>{{.Mode}}</td><td>{{.Name}}</td><td><span class="verdict {{lower .Verdict}}">{{.Verdict}}</span>{{if .Unstable}} <span class="unstable">unstable</span>{{end}}</td>
<td class="num">{{.Spread}}</td><td>{{.Budget}}{{if .Reason}}<br><em>{{.Reason}}</em>{{end}}</td><td>{{.Counts}}</td>
{{range .Cells}}<td class="num">{{.Value}}{{if .Verdict}} <small>{{.Verdict}}</small>{{end}}</td>{{end}}</tr>
{{else}}<tr><td colspan="6">No findings were scored.</td></tr>{{end}}
</table>

<h2 id="runs">Runs</h2>
<table>
<tr><th>run</th><th>seed</th><th>verdict</th><th>in the medians</th><th>error</th></tr>
{{range .Runs}}<tr class="run"><td>{{if .Link}}<a href="{{.Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</td><td class="num">{{.Seed}}</td>
<td>{{if .Verdict}}<span class="verdict {{lower .Verdict}}">{{.Verdict}}</span>{{else}}-{{end}}</td><td>{{if .Counted}}yes{{else}}no{{if .Interrupted}} (interrupted){{end}}{{end}}</td><td>{{.Error}}</td></tr>
{{end}}</table>

<p class="meta">From the repeat directory {{.Dir}}: repeat.json, and one run directory per run.</p>
</body>
</html>
`))
