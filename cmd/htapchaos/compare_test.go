package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestCompareBadInput(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	newer := filepath.Join(tmp, "newer")
	os.Mkdir(newer, 0o755)
	os.WriteFile(filepath.Join(newer, "run.json"), []byte(`{"version": 1000}`), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"compare"}, []string{"give two or more run directories (got 0)"}},
		{[]string{"compare", empty}, []string{"give two or more run directories (got 1)"}},
		{[]string{"compare", empty, newer}, []string{empty + ": not a run directory (no run.json)", newer + "/run.json: version 1000: written by a newer htapchaos"}},
		{[]string{"compare", empty, filepath.Join(tmp, "gone")}, []string{filepath.Join(tmp, "gone") + ": no such directory"}},
		{[]string{"compare", empty, empty, "--bogus"}, []string{"unknown flag: --bogus"}},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		for _, w := range tc.want {
			if code != exitUsage || !strings.Contains(errb.String(), w) {
				t.Errorf("%v: exit %d, stderr %q; want 2 with %q", tc.args, code, errb.String(), w)
			}
		}
		if out.Len() > 0 {
			t.Errorf("%v: printed %q on bad input", tc.args, out.String())
		}
	}

	// Two runs that differ in the seed only; the page cannot be written.
	var runs []string
	for _, n := range []string{"one", "two"} {
		d := filepath.Join(tmp, n)
		os.Mkdir(d, 0o755)
		os.WriteFile(filepath.Join(d, "run.json"), []byte(`{"version": 1, "spec": {"name": "x"}, "seed": `+strconv.Itoa(len(runs)+1)+`}`), 0o644)
		runs = append(runs, d)
	}
	var out, errb bytes.Buffer
	page := filepath.Join(tmp, "no", "such", "page.html")
	if code := run([]string{"compare", runs[0], runs[1], "--html", page}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--html "+page) {
		t.Errorf("--html into a missing directory: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"compare", runs[0], runs[1]}, &out, &errb); code != 0 || !strings.Contains(out.String(), "A  one") || !strings.Contains(out.String(), "B  two") {
		t.Errorf("seed-only runs: exit %d, want them labelled by directory:\n%s", code, out.String())
	}
}

// recordedRun is what the test reads straight from a run.json, apart from the
// compare package.
type recordedRun struct {
	Spec struct {
		Workloads []struct {
			Name string  `json:"name"`
			Rate float64 `json:"rate"`
		} `json:"workloads"`
	} `json:"spec"`
	PhaseStats []struct {
		Phase, Workload, Op string
		Node                int
		Count               int64
		Rate                float64
		Latency             struct {
			P99 float64 `json:"p99_ms"`
		}
	} `json:"phase_stats"`
	Findings []struct {
		Mode, Name, Op, Verdict string
		Value                   float64
	} `json:"findings"`
}

func readRecorded(t *testing.T, dir string) recordedRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r recordedRun
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// baseline returns the oltp workload's every-op, every-node figures in the baseline.
func (r recordedRun) baseline(t *testing.T) (p99, rate float64) {
	t.Helper()
	for _, p := range r.PhaseStats {
		if p.Phase == "baseline" && p.Workload == "oltp" && p.Op == "" && p.Node == 0 {
			return p.Latency.P99, p.Rate
		}
	}
	t.Fatal("no baseline figures for oltp in run.json")
	return 0, 0
}

// Two runs recorded by the tool at two rates, compared: the ratios printed (table,
// JSON, page) are the ratios of the figures in the two run.json files.
func TestCompareTwoRecordedRuns(t *testing.T) {
	engineOrSkip(t)
	tmp := t.TempDir()
	dirs := []string{filepath.Join(tmp, "rate200"), filepath.Join(tmp, "rate400")}
	for i, rate := range []string{"200", "400"} {
		r := htapchaos(t, nil, "run", "failover-pause", "--quick", "--set", "workloads.oltp.rate="+rate, "--seed", strconv.Itoa(i+1), "--out", dirs[i])
		if r.code != 0 && r.code != exitVerdictFail {
			t.Fatalf("run at rate %s: exit %d\n%s", rate, r.code, r.stderr)
		}
	}
	a, b := readRecorded(t, dirs[0]), readRecorded(t, dirs[1])
	if a.Spec.Workloads[0].Rate != 200 || b.Spec.Workloads[0].Rate != 400 {
		t.Fatalf("recorded rates %v and %v", a.Spec.Workloads[0].Rate, b.Spec.Workloads[0].Rate)
	}
	p99A, rateA := a.baseline(t)
	p99B, rateB := b.baseline(t)
	wantP99, wantRate := p99B/p99A, rateB/rateA
	// A finding with a value in both runs.
	var fname string
	var wantFinding float64
	for _, fa := range a.Findings {
		for _, fb := range b.Findings {
			if fa.Mode == fb.Mode && fa.Name == fb.Name && fa.Value != 0 && fa.Verdict != "inconclusive" && fb.Verdict != "inconclusive" && fname == "" {
				fname, wantFinding = fa.Name, fb.Value/fa.Value
			}
		}
	}
	if fname == "" {
		t.Fatal("no finding with a value in both runs")
	}
	t.Logf("baseline p99 %.3f -> %.3f ms (x%.3f), rate %.1f -> %.1f (x%.3f), %s x%.3f", p99A, p99B, wantP99, rateA, rateB, wantRate, fname, wantFinding)
	if wantRate < 1.8 || wantRate > 2.2 {
		t.Errorf("the runs' baseline rates %.1f and %.1f are not about 200 and 400", rateA, rateB)
	}

	// JSON.
	page := filepath.Join(tmp, "compare.html")
	r := htapchaos(t, nil, "compare", dirs[0], dirs[1], "--json", "--html", page)
	if r.code != 0 {
		t.Fatalf("compare --json: exit %d\n%s", r.code, r.stderr)
	}
	var got struct {
		Groups []struct {
			ID, Label string
			Dirs      []string
		}
		Findings, Workloads []struct {
			Name, Workload, Op, Phase, Metric string
			Cells                             []struct {
				Median *float64
				Ratio  *float64
				Better string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("compare --json printed %q: %v", r.stdout, err)
	}
	if len(got.Groups) != 2 || got.Groups[0].Label != "workloads.oltp.rate=200" || got.Groups[1].Label != "workloads.oltp.rate=400" {
		t.Fatalf("groups %+v: want two, labelled by the rate", got.Groups)
	}
	ratio := func(name, phase, op, metric string, want float64) {
		t.Helper()
		for _, row := range append(got.Findings, got.Workloads...) {
			if row.Name == name && row.Phase == phase && row.Op == op && row.Metric == metric {
				if c := row.Cells[1]; c.Ratio == nil || *c.Ratio != want {
					t.Errorf("%s %s %s %s: ratio %v, want %v from run.json", name, phase, op, metric, c.Ratio, want)
				}
				return
			}
		}
		t.Errorf("no row %s %s %s %s", name, phase, op, metric)
	}
	ratio("", "baseline", "", "p99_ms", wantP99)
	ratio("", "baseline", "", "rate", wantRate)
	ratio(fname, "", "", "value", wantFinding)
	for _, row := range got.Workloads {
		if row.Phase == "baseline" && row.Op == "" && row.Metric == "rate" && row.Cells[1].Better != "B" {
			t.Errorf("twice the rate is not better: %q", row.Cells[1].Better)
		}
	}

	// The table.
	r = htapchaos(t, nil, "compare", dirs[0], dirs[1])
	if r.code != 0 {
		t.Fatalf("compare: exit %d\n%s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		row  *regexp.Regexp
		want float64
	}{
		{regexp.MustCompile(`(?m)^oltp +all +baseline +p99 .*$`), wantP99},
		{regexp.MustCompile(`(?m)^oltp +all +baseline +rate .*$`), wantRate},
		{regexp.MustCompile(`(?m)^\S+ +` + regexp.QuoteMeta(fname) + ` .*$`), wantFinding},
	} {
		line := tc.row.FindString(r.stdout)
		if w := strconv.FormatFloat(tc.want, 'f', 2, 64); line == "" || !strings.Contains(line, "  "+w+"  ") {
			t.Errorf("table row %q does not show the ratio %s:\n%s", line, w, r.stdout)
		}
	}
	for _, l := range []string{"A  workloads.oltp.rate=200", "B  workloads.oltp.rate=400"} {
		if !strings.Contains(r.stdout, l) {
			t.Errorf("table lacks %q:\n%s", l, r.stdout)
		}
	}

	// The page.
	h, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(h)
	for _, l := range []string{`<td class="label">workloads.oltp.rate=200</td>`, `<td class="label">workloads.oltp.rate=400</td>`} {
		if !strings.Contains(html, l) {
			t.Errorf("page lacks %s", l)
		}
	}
	p99Row := regexp.MustCompile(`<tr><td>oltp</td><td>all</td><td>baseline</td><td>p99</td>.*</tr>`).FindString(html)
	if w := strconv.FormatFloat(wantP99, 'f', 2, 64); !regexp.MustCompile(`class="num ratio[^"]*">` + regexp.QuoteMeta(w) + `</td>`).MatchString(p99Row) {
		t.Errorf("page's baseline p99 row %q lacks the ratio %s", p99Row, w)
	}
	for _, bad := range []string{"http://", "https://", "<script", "<link"} {
		if strings.Contains(html, bad) {
			t.Errorf("page is not self-contained: holds %q", bad)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(tmp, ".compare.html.tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
