package report

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

// IndexRun is one run of a suite, for its index page.
type IndexRun struct {
	Name     string
	Dir      string // the run directory
	Verdict  experiments.Verdict
	Findings []experiments.Finding
	Error    string // the run's error, if it ended with one
	// A repeated experiment: Dir is its repeat directory (its page is the
	// repeat's), Findings are aggregated (verdict on the median), Runs how many ran,
	// Unstable the findings whose runs disagreed ("mode: finding").
	Runs     int
	Unstable []string
}

// WriteIndex writes a suite's index page at path: one row per run with its
// verdict, its failed and inconclusive findings, its error, and a link to its
// report where there is one (relative to the page, so the directory can be moved
// or archived whole).
func WriteIndex(path, title string, runs []IndexRun) error {
	type row struct {
		IndexRun
		Link                 string
		Failed, Inconclusive []string
	}
	var rows []row
	for _, r := range runs {
		rw := row{IndexRun: r}
		page := filepath.Join(r.Dir, "report.html")
		if _, err := os.Stat(page); err == nil { // no link to a report that was not written
			if rel, err := filepath.Rel(filepath.Dir(path), page); err == nil {
				rw.Link = filepath.ToSlash(rel)
			}
		}
		for _, f := range r.Findings {
			switch f.Verdict {
			case experiments.Fail:
				rw.Failed = append(rw.Failed, f.Mode+": "+f.Name)
			case experiments.Inconclusive:
				rw.Inconclusive = append(rw.Inconclusive, f.Mode+": "+f.Name)
			}
		}
		rows = append(rows, rw)
	}
	var b bytes.Buffer
	repeated := slices.ContainsFunc(runs, func(r IndexRun) bool { return r.Runs > 0 })
	if err := indexPage.Execute(&b, map[string]any{"Title": title, "Rows": rows, "Repeated": repeated}); err != nil {
		return fmt.Errorf("report: index: %w", err)
	}
	if err := results.WriteFileAtomic(path, b.Bytes()); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}

var indexPage = template.Must(template.New("index").Funcs(template.FuncMap{
	"lower": func(v experiments.Verdict) string { return strings.ToLower(string(v)) },
	"join":  func(s []string) string { return strings.Join(s, "; ") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}} - htapchaos</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #1d1d1f; }
table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; } th { background: #f4f4f6; }
.verdict { font-weight: bold; text-transform: uppercase; padding: 1px 6px; border-radius: 3px; }
.pass { background: #d7f5dd; color: #11621f; } .fail, .error { background: #fbd9d9; color: #9b1111; } .inconclusive { background: #fdf0c8; color: #7a5a00; }
.meta { color: #555; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{if .Repeated}}<p class="meta">Repeated experiments: the verdict is taken on each finding's median over the runs; unstable findings are those whose runs disagreed (they do not change the exit code).</p>{{end}}
<table>
<tr><th>experiment</th><th>verdict</th><th>failed</th><th>inconclusive</th><th>unstable</th><th>error</th></tr>
{{range .Rows}}<tr class="run"><td>{{if .Link}}<a href="{{.Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}{{if .Runs}} <span class="meta">({{.Runs}} runs)</span>{{end}}</td>
<td><span class="verdict {{lower .Verdict}}">{{.Verdict}}</span></td><td>{{join .Failed}}</td><td>{{join .Inconclusive}}</td><td>{{join .Unstable}}</td><td>{{.Error}}</td></tr>
{{end}}</table>
</body>
</html>
`))
