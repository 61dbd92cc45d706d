package report

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// syntheticRun writes a run directory of 10 seconds: oltp at 100 successes a
// second of 2 ms, except seconds 4 and 5 (the fault window), with 50 successes
// of 200 ms and 10 timeouts each; node 2 has no success in the window (a gap).
func syntheticRun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rec, err := results.NewRecorder(results.Options{Dir: dir, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	n1 := rec.Handle(results.Key{Workload: "oltp", Op: "point-read", Node: 1, Access: results.Read})
	n2 := rec.Handle(results.Key{Workload: "oltp", Op: "point-read", Node: 2, Access: results.Read})
	for s := range 10 {
		sec := t0.Add(time.Duration(s) * time.Second)
		fault := s == 4 || s == 5
		for i := range 100 {
			at := sec.Add(time.Duration(i) * 10 * time.Millisecond)
			switch {
			case !fault:
				[]*results.Handle{n1, n2}[i%2].Record(at, at, at.Add(2*time.Millisecond), nil)
			case i%2 == 0:
				n1.Record(at, at, at.Add(200*time.Millisecond), nil)
			case i%10 == 1:
				n2.Record(at, at, at.Add(300*time.Millisecond), &mysql.MySQLError{Number: 1047, Message: "WSREP has not yet prepared node for application use"})
			}
		}
		n1.RecordMemory(10 << 20) // one query a second that peaked at 10 MiB
		if _, err := rec.Tick(sec.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.Close(t0.Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	rf := experiments.RunFile{
		Version: experiments.RunVersion, Tool: "htapchaos test", Spec: &experiments.Spec{Name: "synthetic", Description: "a <made-up> run & its fault"},
		Start: t0, End: t0.Add(10 * time.Second), Verdict: experiments.Fail,
		Phases: []experiments.Window{{Name: "baseline", Start: t0, End: t0.Add(4 * time.Second)}, {Name: "fault", Start: t0.Add(4 * time.Second), End: t0.Add(6 * time.Second)},
			{Name: "recovery", Start: t0.Add(6 * time.Second), End: t0.Add(10 * time.Second)}},
		Faults: []experiments.FaultRecord{{Name: "pause", Kind: "pause", Nodes: []int{2}, NodeLabels: []string{"n2"}, State: "cleaned",
			Injected: t0.Add(4 * time.Second), Effective: t0.Add(4 * time.Second), Recovered: t0.Add(6 * time.Second), Healthy: t0.Add(6 * time.Second)}},
		Findings: []experiments.Finding{
			{Mode: "failover", Name: "oltp p99 inflation", Verdict: experiments.Fail, Value: 100, Unit: "x", Budget: 5, Op: "<=",
				Evidence: []experiments.Evidence{{Workload: "oltp", Node: 2, Phase: "fault", Detail: "p99 200 ms <against> 2 ms"}}, Reference: "the article: clients hung"},
			{Mode: "durability", Name: "acknowledged writes lost", Verdict: experiments.Pass, Value: 0, Unit: "count", Budget: 0, Op: "<="},
		},
	}
	b, err := json.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReportOfASyntheticRun(t *testing.T) {
	dir := syntheticRun(t)
	charts := filepath.Join(t.TempDir(), "charts")
	r, err := Write(dir, Options{ChartsDir: charts})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Chart{}
	for _, c := range r.Charts {
		byID[c.ID] = c
		for _, f := range []string{c.ID + ".svg", c.ID + ".png"} {
			if st, err := os.Stat(filepath.Join(charts, f)); err != nil || st.Size() == 0 {
				t.Errorf("chart file %s: %v", f, err)
			}
		}
	}
	for _, id := range []string{"oltp-throughput", "oltp-latency", "oltp-errors", "oltp-percentiles", "gaps"} {
		if byID[id] == nil {
			t.Fatalf("no chart %s (have %v)", id, byID)
		}
	}
	if c := byID["oltp-throughput"]; c.Points != 20 || c.Bands != 1 {
		t.Errorf("throughput: %d points, %d bands; want 10 per line and one band", c.Points, c.Bands)
	}
	// Each of the 4 latency lines has 10 points.
	if c := byID["oltp-latency"]; c.Points != 40 {
		t.Errorf("latency: %d points", c.Points)
	}
	if c := byID["oltp-percentiles"]; c.Bands != 0 || c.Points == 0 {
		t.Errorf("percentiles: %+v", c)
	}

	// The fault band sits where the fault was, on the same axis as the data: the
	// throughput line's points are at seconds 1..10.
	svg, err := byID["oltp-throughput"].Render("svg")
	if err != nil {
		t.Fatal(err)
	}
	line := pathPoints(t, string(svg), "stroke:#F15A60")
	if len(line) != 10 {
		t.Fatalf("successes line has %d points, want 10", len(line))
	}
	xAt := func(sec float64) float64 { return line[0][0] + (sec-1)/9*(line[9][0]-line[0][0]) }
	band := pathPoints(t, string(svg), "fill:#E73939")
	if len(band) < 4 || math.Abs(band[0][0]-xAt(4)) > 0.5 || math.Abs(band[1][0]-xAt(6)) > 0.5 {
		t.Errorf("band %v, want x from %.1f to %.1f", band, xAt(4), xAt(6))
	}
	// Successes per second as drawn: 100, and 50 in the fault window (seconds 4 and
	// 5, the points at x = 5 and 6).
	for i, p := range line {
		if i == 4 || i == 5 {
			if p[1] >= line[0][1]-10 || p[1] != line[4][1] {
				t.Errorf("point %d at y %.1f: 50/s should sit level with point 4 (%.1f), well below 100/s (%.1f)", i, p[1], line[4][1], line[0][1])
			}
		} else if p[1] != line[0][1] {
			t.Errorf("point %d at y %.1f, want 100/s at %.1f", i, p[1], line[0][1])
		}
	}

	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`a &lt;made-up&gt; run &amp; its fault`, // escaped
		`p99 200 ms &lt;against&gt; 2 ms`,
		`<span class="verdict fail" id="verdict">fail</span>`,
		`the article: clients hung`,
		`id="chart-oltp-latency" data-points="40" data-bands="1"`,
		`<td>oltp reads n2</td>`, // a gap row, with its access kind
		`<th>query memory p50 / p99 / max MiB</th>`,
		`<td class="num">10.0 / 10.0 / 10.0</td>`, // the ops' per-query memory
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(string(page), `<tr class="finding">`); n != 2 {
		t.Errorf("%d finding rows, want 2", n)
	}
	if strings.Contains(string(page), "<script") || strings.Contains(string(page), "http://") && !strings.Contains(string(page), "http://www.w3.org/") {
		t.Error("the page has a script or a link out")
	}
}

var pathRE = regexp.MustCompile(`<path d="([^"]*)" style="([^"]*)"`)

// pathPoints returns the points of the first path whose style contains style.
func pathPoints(t *testing.T, svg, style string) [][2]float64 {
	t.Helper()
	for _, m := range pathRE.FindAllStringSubmatch(svg, -1) {
		if !strings.Contains(m[2], style) {
			continue
		}
		var pts [][2]float64
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == 'M' || r == 'L' || r == 'Z' }) {
			xs, ys, ok := strings.Cut(p, ",")
			x, err1 := strconv.ParseFloat(xs, 64)
			y, err2 := strconv.ParseFloat(ys, 64)
			if !ok || err1 != nil || err2 != nil {
				t.Fatalf("path point %q", p)
			}
			pts = append(pts, [2]float64{x, y})
		}
		return pts
	}
	t.Fatalf("no path with style %q", style)
	return nil
}

func TestWriteRefusesWhatIsNotARun(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, Options{}); !errors.Is(err, experiments.ErrNotRunDir) {
		t.Errorf("empty directory: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "run.json"), []byte(`{"version": 99, "findings": []}`), 0o644)
	if _, err := Write(dir, Options{}); !errors.Is(err, experiments.ErrNewerVersion) || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("newer version: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err == nil {
		t.Error("a report was written for a run it could not read")
	}
}

func TestWriteIndex(t *testing.T) {
	base := t.TempDir()
	page := filepath.Join(base, "index.html")
	for _, d := range []string{"failover-kill", "htap-contention"} {
		os.MkdirAll(filepath.Join(base, d), 0o755)
		os.WriteFile(filepath.Join(base, d, "report.html"), nil, 0o644)
	}
	err := WriteIndex(page, "htapchaos suite quick", []IndexRun{
		{Name: "partition", Dir: filepath.Join(base, "partition"), Verdict: experiments.Pass, Error: "cluster did not start: <timeout>"},
		{Name: "failover-kill", Dir: filepath.Join(base, "failover-kill"), Verdict: experiments.Pass},
		{Name: "htap-contention", Dir: filepath.Join(base, "htap-contention"), Verdict: experiments.Fail, Findings: []experiments.Finding{
			{Mode: "htap-contention", Name: "oltp p99 <inflation>", Verdict: experiments.Fail},
			{Mode: "data-movement", Name: "bytes", Verdict: experiments.Inconclusive},
			{Mode: "durability", Name: "lost", Verdict: experiments.Pass},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<a href="failover-kill/report.html">failover-kill</a>`,
		`<a href="htap-contention/report.html">htap-contention</a>`,
		`<span class="verdict fail">fail</span></td><td>htap-contention: oltp p99 &lt;inflation&gt;</td><td>data-movement: bytes</td>`,
		`<td>partition</td>`, // no report: no link
		`<td>cluster did not start: &lt;timeout&gt;</td>`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("index lacks %q:\n%s", want, b)
		}
	}
	if n := strings.Count(string(b), `<tr class="run">`); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
}

// A workload whose every operation failed, and one with a single success: the
// log-scale charts have nothing, or one value, to span (the plotting library
// panics on such a range); the report is still written.
func TestReportOfFailuresOnly(t *testing.T) {
	dir := t.TempDir()
	rec, err := results.NewRecorder(results.Options{Dir: dir, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	broken := rec.Handle(results.Key{Workload: "broken", Op: "point-read", Node: 1})
	single := rec.Handle(results.Key{Workload: "single", Op: "dashboard", Node: 1})
	for s := range 3 {
		sec := t0.Add(time.Duration(s) * time.Second)
		for i := range 10 {
			at := sec.Add(time.Duration(i) * 50 * time.Millisecond)
			broken.Record(at, at, at.Add(time.Millisecond), &mysql.MySQLError{Number: 1047, Message: "not ready"})
		}
		if s == 1 {
			single.Record(sec, sec, sec.Add(5*time.Millisecond), nil)
		}
		if _, err := rec.Tick(sec.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.Close(t0.Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(experiments.RunFile{Version: experiments.RunVersion, Start: t0, End: t0.Add(3 * time.Second),
		Phases: []experiments.Window{{Name: "baseline", Start: t0, End: t0.Add(3 * time.Second)}}})
	os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644)
	r, err := Write(dir, Options{ChartsDir: filepath.Join(dir, "charts")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range r.Charts {
		ids = append(ids, c.ID)
	}
	want := []string{"broken-throughput", "broken-errors", "single-throughput", "single-latency", "single-percentiles", "gaps"}
	if !slices.Equal(ids, want) {
		t.Errorf("charts %v, want %v", ids, want)
	}
}

// A run that died: run.json has no end and its fault never recovered. The time
// axis runs to the last thing measured and the fault is shaded up to it.
func TestReportOfARunThatDied(t *testing.T) {
	dir := syntheticRun(t)
	rf, err := experiments.ReadRunFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	rf.End, rf.Faults[0].Recovered, rf.Faults[0].Healthy = time.Time{}, time.Time{}, time.Time{}
	b, _ := json.Marshal(rf)
	os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644)
	r, err := Write(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	svg, err := r.Charts[0].Render("svg")
	if err != nil {
		t.Fatal(err)
	}
	line := pathPoints(t, string(svg), "stroke:#F15A60")
	band := pathPoints(t, string(svg), "fill:#E73939")
	xAt := func(sec float64) float64 { return line[0][0] + (sec-1)/9*(line[9][0]-line[0][0]) }
	if len(line) != 10 || len(band) < 4 || math.Abs(band[0][0]-xAt(4)) > 0.5 || math.Abs(band[1][0]-xAt(10)) > 0.5 {
		t.Errorf("band %v, want x from %.1f to %.1f (the last point, %v)", band, xAt(4), xAt(10), line[len(line)-1])
	}
}

// A run that failed before its load (no interval logs, no summary) still gets a
// page: its verdicts and error, no charts.
func TestReportOfARunWithoutLoad(t *testing.T) {
	dir := t.TempDir()
	b, _ := json.Marshal(experiments.RunFile{Version: experiments.RunVersion, Start: t0, Error: "cluster did not start"})
	os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644)
	r, err := Write(dir, Options{})
	if err != nil || len(r.Charts) != 0 {
		t.Fatalf("report: %v, %d charts", err, len(r.Charts))
	}
	page, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !strings.Contains(string(page), "The run ended with an error: cluster did not start") {
		t.Error("the page does not give the run's error")
	}
}

// An aborted run says so on its page: the condition, the figure, when, and how
// soon the faults were recovered.
func TestReportOfAnAbortedRun(t *testing.T) {
	dir := syntheticRun(t)
	path := filepath.Join(dir, "run.json")
	rf, err := experiments.ReadRunFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rf.Aborted = &experiments.Aborted{Condition: "nodes_down >= 1 for 1s", Value: 1, At: t0.Add(5 * time.Second), FaultsRecoveredIn: 0.03}
	b, _ := json.Marshal(rf)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Write(dir, Options{ChartsDir: filepath.Join(t.TempDir(), "charts")})
	if err != nil {
		t.Fatal(err)
	}
	// The time charts mark the moment, in their legend.
	marked := 0
	for _, c := range r.Charts {
		if c.ID != "oltp-throughput" && c.ID != "gaps" {
			continue
		}
		svg, err := c.Render("svg")
		if err != nil || !strings.Contains(string(svg), "aborted: nodes_down &gt;= 1 for 1s") {
			t.Errorf("%s chart: no abort marked (%v)", c.ID, err)
		}
		marked++
	}
	if marked != 2 {
		t.Errorf("%d of the throughput and gaps charts found", marked)
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	want := `The run was aborted: nodes_down &gt;= 1 for 1s held (1) at ` + t0.Add(5*time.Second).UTC().Format("2006-01-02 15:04:05 UTC") + `; the faults were recovered 0.03 s after.`
	if !strings.Contains(string(page), want) {
		t.Errorf("no %q in the page", want)
	}
}
