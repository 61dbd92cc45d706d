package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
)

// syntheticRepeat writes a repeat directory of two synthetic runs whose p99
// inflation is 100 (fail) and 2 (pass): an unstable finding.
func syntheticRepeat(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rep")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := experiments.RepeatFile{Version: 1, Tool: "htapchaos test", Experiment: "synthetic", Repeats: 2, Start: t0, End: t0.Add(25e9),
		Spec: &experiments.Spec{Name: "synthetic", Description: "two <made-up> runs"}}
	var per [][]experiments.Finding
	for i, value := range []float64{100, 2} {
		name := "r" + string(rune('1'+i))
		run := filepath.Join(dir, name)
		if err := os.Rename(syntheticRun(t), run); err != nil {
			t.Fatal(err)
		}
		rf, err := experiments.ReadRunFile(filepath.Join(run, "run.json"))
		if err != nil {
			t.Fatal(err)
		}
		rf.Seed = uint64(7 + i)
		if value < rf.Findings[0].Budget {
			rf.Findings[0].Value, rf.Findings[0].Verdict = value, experiments.Pass
			rf.Verdict = experiments.Pass
		}
		b, _ := json.Marshal(rf)
		os.WriteFile(filepath.Join(run, "run.json"), b, 0o644)
		f.Runs = append(f.Runs, experiments.RepeatRun{Dir: name, Seed: rf.Seed, Verdict: rf.Verdict, Counted: true})
		per = append(per, rf.Findings)
	}
	f.Findings = experiments.AggregateFindings(per)
	f.Verdict = experiments.Fail
	b, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(dir, experiments.RepeatFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The report of a repeat directory: each run's report again, with its charts in
// its own directory, and the repeat's page with the medians, the unstable
// finding, each run's value and a link to each run's report.
func TestReportOfARepeat(t *testing.T) {
	dir := syntheticRepeat(t)
	r, err := Write(dir, Options{ChartsDir: filepath.Join(dir, "charts")})
	if err != nil || r != nil {
		t.Fatalf("%v %v", r, err)
	}
	for _, run := range []string{"r1", "r2"} {
		for _, f := range []string{"report.html", "charts/oltp-latency.svg"} {
			if _, err := os.Stat(filepath.Join(dir, run, f)); err != nil {
				t.Errorf("%s: %v", run, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "charts")); err == nil {
		t.Error("the runs' charts went to the repeat's charts/, not their own")
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		`<span class="verdict fail" id="verdict">fail</span> <span class="unstable" id="unstable">1 unstable</span>`,
		`two &lt;made-up&gt; runs`,
		`2 of 2 runs with seeds 7, 8`,
		`<td class="num">51 (2..100) x</td>`, // the median of the p99 inflation, with its spread
		`<span class="verdict fail">fail</span> <span class="unstable">unstable</span>`, // 51 against a budget of 5
		`<td>fail 1, pass 1</td>`,
		`<td class="num">100 <small>fail</small></td><td class="num">2 <small>pass</small></td>`,
		`<a href="r1/report.html">r1</a>`, `<a href="r2/report.html">r2</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, `<tr class="finding`); n != 2 {
		t.Errorf("%d finding rows, want 2", n)
	}
	for _, bad := range []string{"<script", "https://", "<link", "src="} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}

	// The page alone, elsewhere: the runs' reports are not written again, and the
	// links still lead to them.
	os.Remove(filepath.Join(dir, "r2", "report.html"))
	out := filepath.Join(t.TempDir(), "repeat.html")
	if _, err := Write(dir, Options{Out: out, PageOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "r2", "report.html")); err == nil {
		t.Error("PageOnly wrote a run's report")
	}
	b, _ = os.ReadFile(out)
	rel, _ := filepath.Rel(filepath.Dir(out), filepath.Join(dir, "r1", "report.html"))
	if !strings.Contains(string(b), `<a href="`+filepath.ToSlash(rel)+`">r1</a>`) || strings.Contains(string(b), `r2/report.html`) {
		t.Errorf("links from elsewhere: want r1's as %s, none to r2's (not written)", rel)
	}
}

func TestWriteRefusesABadRepeat(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, experiments.RepeatFileName), []byte(`{"version": 99}`), 0o644)
	if _, err := Write(dir, Options{}); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("newer repeat.json: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err == nil {
		t.Error("a page was written for a repeat it could not read")
	}
}

func TestWriteIndexOfRepeats(t *testing.T) {
	base := t.TempDir()
	page := filepath.Join(base, "index.html")
	err := WriteIndex(page, "nightly", []IndexRun{{Name: "htap-contention", Dir: filepath.Join(base, "htap-contention"), Verdict: experiments.Pass,
		Runs: 3, Unstable: []string{"htap-contention: oltp p99 inflation"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(page)
	for _, want := range []string{"(3 runs)", "<td>htap-contention: oltp p99 inflation</td>", "unstable findings are those whose runs disagreed"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("index lacks %q:\n%s", want, b)
		}
	}
}
