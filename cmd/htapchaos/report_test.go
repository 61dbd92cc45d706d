package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/internal/testtool"
)

// A report made by `run` from a real run renders in headless Chromium: no console
// errors, no request for anything outside the page, every chart drawn with data,
// the fault window shaded on every time chart, one verdict row per finding.
func TestReportOfARealRunRendersInChromium(t *testing.T) {
	engineOrSkip(t)
	browser := testtool.Find(t, "chromium", "chromium", "chromium-browser", "google-chrome")
	dir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "run", "failover-pause", "--quick", "--seed", "3", "--out", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != exitVerdictFail) {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	page := filepath.Join(dir, "report.html")
	if !strings.Contains(out.String(), "report "+page) {
		t.Errorf("run did not name its report:\n%s", out.String())
	}
	rf, err := experiments.ReadRunFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rf.ServerVersion, "MariaDB") {
		t.Errorf("run.json server version %q", rf.ServerVersion)
	}
	if len(rf.Faults) != 1 || !rf.Faults[0].TookEffect() {
		t.Fatalf("the pause did not take effect: %+v", rf.Faults)
	}
	for _, f := range []string{"oltp-throughput.svg", "oltp-latency.png", "oltp-percentiles.svg", "indicator-up.png"} {
		if st, err := os.Stat(filepath.Join(dir, "charts", f)); err != nil || st.Size() < 1000 {
			t.Errorf("chart file %s: %v", f, err)
		}
	}

	// HdrHistogram's percentile files: one per workload and phase, the last line
	// at percentile 1 with every success of the phase.
	for _, p := range rf.Phases {
		hgrm := filepath.Join(dir, "hgrm", "oltp."+p.Name+".hgrm")
		b, err := os.ReadFile(hgrm)
		if err != nil || !strings.HasPrefix(string(b), " Value\tPercentile\tTotalCount") || !strings.Contains(string(b), "#[Max     =") {
			t.Errorf("%s: %v\n%.300s", hgrm, err, b)
		}
	}

	got := renderInChromium(t, browser, page)
	for _, p := range got.problems {
		t.Errorf("chromium: %s", p)
	}
	if got.Findings != len(rf.Findings) || got.Findings == 0 {
		t.Errorf("%d verdict rows, run.json has %d findings", got.Findings, len(rf.Findings))
	}
	if got.Verdict != string(rf.Verdict) {
		t.Errorf("page verdict %q, run.json %q", got.Verdict, rf.Verdict)
	}
	ids := map[string]bool{}
	for _, c := range got.Charts {
		ids[c.ID] = true
		if c.Width < 300 || c.Height < 100 {
			t.Errorf("%s: drawn %gx%g px", c.ID, c.Width, c.Height)
		}
		if c.Points < 2 || c.Lines == 0 {
			t.Errorf("%s: empty (%d points, %d data paths)", c.ID, c.Points, c.Lines)
		}
		if c.WantBands > 0 && (c.BandPaths < c.WantBands+1 || c.WidestBand < 20) {
			// A band on the chart and one in its legend, the band wider than the legend's swatch.
			t.Errorf("%s: fault band missing: %d band-coloured paths (want %d and a legend), widest %g px", c.ID, c.BandPaths, c.WantBands, c.WidestBand)
		}
	}
	for _, id := range []string{"chart-oltp-throughput", "chart-oltp-latency", "chart-oltp-percentiles", "chart-gaps", "chart-indicator-up", "chart-indicator-memory"} {
		if !ids[id] {
			t.Errorf("no chart %s; charts: %v", id, ids)
		}
	}
	if t.Failed() {
		t.Logf("run output:\n%s", out.String())
	}
}

type renderedChart struct {
	ID                string
	Width, Height     float64
	Points, WantBands int
	Lines, BandPaths  int
	WidestBand        float64
}

type rendered struct {
	Verdict  string
	Findings int
	Charts   []renderedChart
	problems []string
}

// renderInChromium opens page in headless Chromium and reads what was drawn,
// collecting console errors and warnings, uncaught exceptions, browser log errors,
// and any request other than the page itself.
func renderInChromium(t *testing.T, browser, page string) rendered {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // start the browser and open the tab
		t.Fatalf("start chromium: %v", err)
	}

	url := "file://" + page
	var mu sync.Mutex
	var problems []string
	problem := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	sub, unsubscribe := context.WithCancel(ctx)
	console := chromedp.Console(sub)
	requests := chromedp.Events(sub, network.RequestWillBeSent)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				problem("console: " + m.String())
			}
		}
	})
	wg.Go(func() {
		for e, err := range requests {
			if err != nil {
				return
			}
			if e.Request.URL != url && !strings.HasPrefix(e.Request.URL, "data:") {
				problem("request for " + e.Request.URL + ": the page must work offline")
			}
		}
	})

	const js = `(() => {
  const band = "rgb(231, 57, 57)";
  const charts = [...document.querySelectorAll("figure.chart")].map(f => {
    const svg = f.querySelector("svg");
    const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const paths = svg ? [...svg.querySelectorAll("path")] : [];
    const style = p => getComputedStyle(p);
    const bands = paths.filter(p => style(p).fill === band);
    return {
      ID: f.id, Width: r.width, Height: r.height,
      Points: +f.dataset.points, WantBands: +f.dataset.bands,
      // Data: lines drawn 1.2 wide, filled marks other than the page, the bands and black.
      Lines: paths.filter(p => style(p).stroke !== "none" && style(p).strokeWidth === "1.2px").length +
             paths.filter(p => !["none", band, "rgb(255, 255, 255)", "rgb(0, 0, 0)"].includes(style(p).fill)).length,
      BandPaths: bands.length,
      WidestBand: Math.max(0, ...bands.map(p => p.getBoundingClientRect().width)),
    };
  });
  return {Verdict: document.getElementById("verdict").textContent, Findings: document.querySelectorAll("tr.finding").length, Charts: charts};
})()`
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("chromium: open %s: %v", page, err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[rendered](js))
	if err != nil {
		t.Fatalf("chromium: read %s: %v", page, err)
	}
	time.Sleep(500 * time.Millisecond) // messages still in flight
	unsubscribe()
	wg.Wait()
	v.problems = problems
	return v
}

// report on what is not a run, or a run of a newer htapchaos: exit 2, nothing written.
func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer")
	os.Mkdir(newer, 0o755)
	os.WriteFile(filepath.Join(newer, "run.json"), []byte(`{"version": 9}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", dir}, "not a run directory"},
		{[]string{"report", newer}, "version 9: written by a newer htapchaos"},
		{[]string{"report", newer, "-o", filepath.Join(dir, "no", "such.html")}, "does not exist"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 with %q", tc.args, code, errb.String(), tc.want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*", "report.html")); len(m) > 0 {
		t.Errorf("written: %v", m)
	}
}
