// Package report turns a run directory into one self-contained HTML page: the
// verdict table with its evidence, each workload's throughput, latency
// percentiles and errors over time with the fault windows shaded, the per-node
// indicators on the same time axis, latency distributions per phase, and the
// failover gaps. Nothing in the page is fetched from anywhere: the charts are
// inline SVG (drawn with gonum/plot), the style is inline, there is no script.
// The charts can also be written as SVG and PNG files, for CI artifacts.
//
// The verdict table's last column, "the article", is each finding's reference
// figure from the article the failure modes come from: "Lessons Learned Running
// SingleStore in Production (The Painful Ones)" by Shahid Moosa; the catalog is
// docs/failure-modes.md.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

// Report is a run directory read back and drawn.
type Report struct {
	Run    *experiments.RunDir
	Charts []*Chart
}

// Build reads the run's series and draws its charts.
func Build(rd *experiments.RunDir) (*Report, error) {
	r := &Report{Run: rd}
	rf := rd.Run

	var ws []results.Window
	for _, p := range rf.Phases {
		if p.End.After(p.Start) {
			ws = append(ws, results.Window{Name: p.Name, Start: p.Start, End: p.End})
		}
	}
	series, dists, err := results.SeriesAndDistributions(rd.Dir, ws)
	if err != nil && !errors.Is(err, os.ErrNotExist) { // none: the run ended before its load
		return nil, err
	}
	// A run.json without an end (a run that died) still shows all that was
	// measured, and a fault that never recovered holds to the last of it.
	last := rf.End
	for _, p := range series {
		if p.T.After(last) {
			last = p.T
		}
	}
	for _, s := range rd.Indicators {
		if s.T.After(last) {
			last = s.T
		}
	}
	tl := newTimeline(rf, last)
	var workloads []string
	for _, p := range series {
		if !slices.Contains(workloads, p.Workload) {
			workloads = append(workloads, p.Workload)
		}
	}
	for _, wl := range workloads {
		var pts []results.SeriesPoint
		for _, p := range series {
			if p.Workload == wl {
				pts = append(pts, p)
			}
		}
		var ds []results.Distribution
		for _, d := range dists {
			if d.Workload == wl {
				ds = append(ds, d)
			}
		}
		cs, err := workloadCharts(tl, wl, pts, ds)
		if err != nil {
			return nil, err
		}
		r.Charts = append(r.Charts, cs...)
	}
	if rd.Summary != nil {
		c, err := gapChart(tl, rd.Summary)
		if err != nil {
			return nil, err
		}
		if c != nil {
			r.Charts = append(r.Charts, c)
		}
	}
	labels := map[int]string{}
	if rf.Cluster != nil {
		for i, n := range rf.Cluster.Nodes {
			labels[i+1] = fmt.Sprintf("n%d %s", i+1, n.Name)
		}
	}
	cs, err := indicatorCharts(tl, rd.Indicators, labels)
	if err != nil {
		return nil, err
	}
	r.Charts = append(r.Charts, cs...)
	return r, nil
}

// Options say where Write puts what it writes.
type Options struct {
	// Out is the HTML file (default DIR/report.html).
	Out string
	// ChartsDir receives every chart as ID.svg and ID.png ("": none).
	ChartsDir string
	// PageOnly: for a repeat directory, write its page only, not each run's
	// report again.
	PageOnly bool
}

// Write reads the run directory dir and writes its report, and the charts
// when asked. The page is written through a temporary file and a rename: a
// failure leaves no half-written report.
//
// A repeat directory (experiments.Repeat: repeat.json and a run directory per
// run) gets each run's report again and a page of its own, the findings' medians
// and spread, linking each run's report (see writeRepeat); the returned Report is
// then nil.
func Write(dir string, o Options) (*Report, error) {
	if experiments.IsRepeatDir(dir) {
		return nil, writeRepeat(dir, o)
	}
	rd, err := experiments.ReadRunDir(dir)
	if err != nil {
		return nil, err
	}
	r, err := Build(rd)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", dir, err)
	}
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		return nil, fmt.Errorf("report %s: %w", dir, err)
	}
	if o.ChartsDir != "" {
		if err := r.WriteCharts(o.ChartsDir); err != nil {
			return nil, err
		}
	}
	out := o.Out
	if out == "" {
		out = filepath.Join(dir, "report.html")
	}
	if err := results.WriteFileAtomic(out, page.Bytes()); err != nil {
		return nil, fmt.Errorf("report: write %s: %w", out, err)
	}
	return r, nil
}

// WriteCharts writes every chart to dir as ID.svg and ID.png.
func (r *Report) WriteCharts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var errs []error
	for _, c := range r.Charts {
		for _, format := range []string{"svg", "png"} {
			b, err := c.Render(format)
			if err == nil {
				err = results.WriteFileAtomic(filepath.Join(dir, c.ID+"."+format), b)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("report: chart %s.%s: %w", c.ID, format, err))
			}
		}
	}
	return errors.Join(errs...)
}
