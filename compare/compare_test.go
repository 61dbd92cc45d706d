package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/results"
)

// fakeRun is a hand-built run: pure logic, no database.
type fakeRun struct {
	dir      string
	seed     uint64
	rate     float64
	settings map[string]string
	findings []experiments.Finding
	stats    []experiments.PhaseStats
}

func (f fakeRun) rd() *experiments.RunDir {
	spec := &experiments.Spec{
		Name:        "exp",
		Description: "seed " + f.dir, // descriptions do not split groups
		Modes:       []string{"failover"},
		Cluster:     &experiments.ClusterSpec{Topology: "galera", Nodes: 3, Memory: 512 << 20, Settings: f.settings},
		Phases:      []experiments.PhaseSpec{{Name: "baseline", Duration: experiments.Dur(8e9)}, {Name: "fault", Duration: experiments.Dur(8e9)}},
		Workloads:   []experiments.WorkloadSpec{{Name: "oltp", Kind: "oltp", Rate: f.rate}},
		Faults:      []experiments.FaultSpec{{Name: "pause", Kind: "pause", Phase: "fault", Node: "3"}},
	}
	return &experiments.RunDir{Dir: f.dir, Run: &experiments.RunFile{
		Version: 1, Spec: spec, Seed: f.seed, Verdict: experiments.Pass,
		Findings: f.findings, PhaseStats: f.stats,
	}}
}

func finding(mode, name, op string, v experiments.Verdict, value float64) experiments.Finding {
	return experiments.Finding{Mode: mode, Name: name, Op: op, Verdict: v, Value: value, Unit: "s"}
}

func stat(phase, op string, node int, count int64, p99, rate float64, errs int64) experiments.PhaseStats {
	return experiments.PhaseStats{Window: phase, Workload: "oltp", Op: op, Node: node, Count: count, Rate: rate, Errors: errs,
		Latency: results.Percentiles{P50: p99 / 4, P99: p99, P999: p99 * 2, Max: p99 * 3}}
}

func ptr(v float64) *float64 { return &v }

func TestGroupingAndLabels(t *testing.T) {
	rate := func(dir string, seed uint64, r float64) *experiments.RunDir {
		return fakeRun{dir: dir, seed: seed, rate: r}.rd()
	}
	server := func(dir string, seed uint64, s map[string]string) *experiments.RunDir {
		return fakeRun{dir: dir, seed: seed, rate: 200, settings: s}.rd()
	}
	for _, tc := range []struct {
		name   string
		runs   []*experiments.RunDir
		labels []string
		dirs   [][]string
	}{
		{"rates, repeated", []*experiments.RunDir{rate("r/a1", 1, 200), rate("r/b1", 2, 400), rate("r/a2", 3, 200), rate("r/b2", 4, 400)},
			[]string{"workloads.oltp.rate=200", "workloads.oltp.rate=400"}, [][]string{{"r/a1", "r/a2"}, {"r/b1", "r/b2"}}},
		{"server setting", []*experiments.RunDir{server("x", 1, nil), server("y", 2, map[string]string{"innodb_flush_log_at_trx_commit": "2"})},
			[]string{"server: innodb_flush_log_at_trx_commit=(unset)", "server: innodb_flush_log_at_trx_commit=2"}, [][]string{{"x"}, {"y"}}},
		{"two settings", []*experiments.RunDir{server("x", 1, map[string]string{"sync_binlog": "1", "k": "v"}), server("y", 2, map[string]string{"sync_binlog": "0", "k": "w"})},
			[]string{"server: k=v, server: sync_binlog=1", "server: k=w, server: sync_binlog=0"}, [][]string{{"x"}, {"y"}}},
		{"only the seed differs", []*experiments.RunDir{rate("runs/one", 1, 200), rate("runs/two", 2, 200), rate("runs/three", 3, 200)},
			[]string{"one", "two", "three"}, [][]string{{"runs/one"}, {"runs/two"}, {"runs/three"}}},
		{"server versions", func() []*experiments.RunDir {
			a, b := rate("x", 1, 200), rate("y", 2, 200)
			a.Run.ServerVersion, b.Run.ServerVersion = "10.11.14-MariaDB-0+deb12u2", "11.4.5-MariaDB"
			return []*experiments.RunDir{a, b}
		}(), []string{"server_version=10.11.14-MariaDB-0+deb12u2", "server_version=11.4.5-MariaDB"}, [][]string{{"x"}, {"y"}}},
		{"two engines: the topology leads the label", func() []*experiments.RunDir {
			a, b := rate("spider", 1, 200), rate("vitess", 2, 200)
			a.Run.Spec.Cluster = &experiments.ClusterSpec{Topology: "sharded", Aggregators: 2, Leaves: 3, PartitionsPerLeaf: 2, Nodes: 5, Memory: 512 << 20}
			b.Run.Spec.Cluster = &experiments.ClusterSpec{Topology: "vitess", Aggregators: 2, Leaves: 2, PartitionsPerLeaf: 1, Nodes: 4, Memory: 512 << 20}
			return []*experiments.RunDir{a, b}
		}(), []string{"cluster.topology=sharded, cluster.leaves=3, cluster.nodes=5, cluster.partitions_per_leaf=2", "cluster.topology=vitess, cluster.leaves=2, cluster.nodes=4, cluster.partitions_per_leaf=1"}, [][]string{{"spider"}, {"vitess"}}},
		{"same base names", []*experiments.RunDir{rate("monday/run", 1, 200), rate("tuesday/run", 2, 200)},
			[]string{"monday/run", "tuesday/run"}, [][]string{{"monday/run"}, {"tuesday/run"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compare(tc.runs)
			if err != nil {
				t.Fatal(err)
			}
			var labels []string
			var dirs [][]string
			for i, g := range c.Groups {
				labels = append(labels, g.Label)
				dirs = append(dirs, g.Dirs)
				if want := string(rune('A' + i)); g.ID != want {
					t.Errorf("group %d id %q, want %q", i, g.ID, want)
				}
			}
			if !reflect.DeepEqual(labels, tc.labels) || !reflect.DeepEqual(dirs, tc.dirs) {
				t.Errorf("labels %q dirs %q; want %q %q", labels, dirs, tc.labels, tc.dirs)
			}
		})
	}
}

func TestSettingsFlattenLikeSet(t *testing.T) {
	r := fakeRun{dir: "d", rate: 250, settings: map[string]string{"sync_binlog": "0"}}.rd()
	s := Settings(r.Run)
	for k, want := range map[string]string{
		"name": "exp", "workloads.oltp.rate": "250", "workloads.oltp.kind": "oltp", "phases.baseline.duration": "8s",
		"phases": "baseline,fault", "faults.pause.node": "3", "cluster.settings.sync_binlog": "0", "cluster.memory": "512MiB",
		"modes": "failover",
	} {
		if s[k] != want {
			t.Errorf("%s = %q, want %q", k, s[k], want)
		}
	}
	if _, ok := s["description"]; ok {
		t.Error("the description is part of the configuration")
	}
}

func TestMedianAndSpread(t *testing.T) {
	for _, tc := range []struct {
		in  []float64
		med float64
	}{{[]float64{5}, 5}, {[]float64{3, 1, 2}, 2}, {[]float64{10, 1, 3, 2}, 2.5}, {[]float64{4, 4}, 4}} {
		in := append([]float64{}, tc.in...)
		if got := experiments.Median(tc.in); got != tc.med {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.med)
		}
		if !reflect.DeepEqual(in, tc.in) {
			t.Errorf("Median changed its input: %v", tc.in)
		}
	}
	if !math.IsNaN(experiments.Median(nil)) {
		t.Error("Median of nothing is not NaN")
	}

	// Three runs against two, one inconclusive (its value is no measurement).
	gap := func(v experiments.Verdict, x float64) []experiments.Finding {
		return []experiments.Finding{finding("failover", "gap", "<=", v, x)}
	}
	runs := []*experiments.RunDir{
		fakeRun{dir: "a1", rate: 200, findings: gap(experiments.Pass, 1)}.rd(),
		fakeRun{dir: "a2", rate: 200, findings: gap(experiments.Pass, 3)}.rd(),
		fakeRun{dir: "a3", rate: 200, findings: gap(experiments.Fail, 8)}.rd(),
		fakeRun{dir: "b1", rate: 400, findings: gap(experiments.Pass, 2)}.rd(),
		fakeRun{dir: "b2", rate: 400, findings: gap(experiments.Inconclusive, 0)}.rd(),
	}
	c, err := Compare(runs)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Findings) != 1 {
		t.Fatalf("%d finding rows", len(c.Findings))
	}
	a, b := c.Findings[0].Cells[0], c.Findings[0].Cells[1]
	if a.N != 3 || *a.Median != 3 || *a.Min != 1 || *a.Max != 8 || !reflect.DeepEqual(a.Verdicts, map[string]int{"pass": 2, "fail": 1}) {
		t.Errorf("A cell %+v", a)
	}
	if b.N != 1 || *b.Median != 2 || !reflect.DeepEqual(b.Verdicts, map[string]int{"pass": 1, "inconclusive": 1}) {
		t.Errorf("B cell %+v", b)
	}
	if b.Ratio == nil || *b.Ratio != 2.0/3 || b.Better != "B" || b.Overlap {
		t.Errorf("B against A: ratio %v better %q overlap %v; want 0.667, B, no overlap (B has one run)", b.Ratio, b.Better, b.Overlap)
	}
	var txt bytes.Buffer
	if err := c.WriteText(&txt, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 (1..8) pass unstable (fail 1, pass 2)", "2 pass unstable (inconclusive 1, pass 1)", "0.67", "3 runs: a1 (seed 0, pass)"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, txt.String())
		}
	}
}

func TestRatiosAndBetterSide(t *testing.T) {
	a := fakeRun{dir: "a", rate: 200,
		findings: []experiments.Finding{
			finding("failover", "gap", "<=", experiments.Pass, 2),
			finding("htap-contention", "throughput kept", ">=", experiments.Pass, 0.9),
			finding("failover", "back to baseline", "", experiments.Pass, 10),
			finding("durability", "lost", "<=", experiments.Pass, 0),
			finding("failover", "only in A", "<=", experiments.Pass, 1),
		},
		stats: []experiments.PhaseStats{
			stat("baseline", "", 0, 1600, 4, 200, 0),
			stat("baseline", "", 1, 800, 99, 100, 0), // a node's own: not compared
			stat("baseline", "point-read", 0, 800, 2, 100, 0),
			stat("fault", "", 0, 0, 0, 0, 5), // no operation succeeded: no latency
		}}.rd()
	b := fakeRun{dir: "b", rate: 400,
		findings: []experiments.Finding{
			finding("failover", "gap", "<=", experiments.Pass, 3),
			finding("htap-contention", "throughput kept", ">=", experiments.Pass, 0.99),
			finding("failover", "back to baseline", "", experiments.Pass, 5),
			finding("durability", "lost", "<=", experiments.Pass, 0),
		},
		stats: []experiments.PhaseStats{
			stat("baseline", "", 0, 3200, 3, 400, 2),
			stat("baseline", "point-read", 0, 1600, 2, 200, 0),
			stat("fault", "", 0, 100, 50, 12.5, 10),
		}}.rd()
	c, err := Compare([]*experiments.RunDir{a, b})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		ratio  *float64
		better string
	}
	findings := map[string]want{
		"gap":              {ptr(3.0 / 2), "A"},
		"throughput kept":  {ptr(div(0.99, 0.9)), "B"},
		"back to baseline": {ptr(0.5), ""}, // reported, not judged
		"lost":             {nil, Same},    // 0 against 0
		"only in A":        {nil, ""},
	}
	if len(c.Findings) != len(findings) {
		t.Errorf("%d finding rows, want %d", len(c.Findings), len(findings))
	}
	for _, r := range c.Findings {
		w, ok := findings[r.Name]
		cell := r.Cells[1]
		if !ok || !reflect.DeepEqual(cell.Ratio, w.ratio) || cell.Better != w.better {
			t.Errorf("finding %q: ratio %v better %q; want %v %q", r.Name, fmtPtr(cell.Ratio), cell.Better, fmtPtr(w.ratio), w.better)
		}
		if r.Cells[0].Ratio != nil || r.Cells[0].Better != "" {
			t.Errorf("finding %q: the reference has a ratio", r.Name)
		}
	}
	rows := map[string]want{
		"baseline//p99_ms":           {ptr(3.0 / 4), "B"},
		"baseline//p50_ms":           {ptr(0.75 / 1), "B"},
		"baseline//max_ms":           {ptr(9.0 / 12), "B"},
		"baseline//rate":             {ptr(2), "B"},
		"baseline//errors":           {nil, "A"}, // 0 against 2: no ratio, A better
		"baseline/point-read/p99_ms": {ptr(1), Same},
		"baseline/point-read/rate":   {ptr(2), "B"},
		"fault//p99_ms":              {nil, ""}, // A had no latency
		"fault//rate":                {nil, "B"},
		"fault//errors":              {ptr(2), "A"},
	}
	seen := 0
	for _, r := range c.Workloads {
		k := r.Phase + "/" + r.Op + "/" + r.Metric
		w, ok := rows[k]
		if !ok {
			continue
		}
		seen++
		cell := r.Cells[1]
		if !reflect.DeepEqual(cell.Ratio, w.ratio) || cell.Better != w.better {
			t.Errorf("%s: ratio %v better %q; want %v %q", k, fmtPtr(cell.Ratio), cell.Better, fmtPtr(w.ratio), w.better)
		}
	}
	if seen != len(rows) {
		t.Errorf("%d of %d workload rows found", seen, len(rows))
	}
	// Op "" comes first, and node rows are not compared.
	// No run measured memory: only the always-present metrics have rows.
	always := 0
	for _, m := range workloadMetrics {
		if !m.measured {
			always++
		}
	}
	if c.Workloads[0].Op != "" || len(c.Workloads) != 3*always {
		t.Errorf("workload rows: first op %q, %d rows (want %d)", c.Workloads[0].Op, len(c.Workloads), 3*always)
	}
	for _, r := range c.Workloads {
		if r.Phase == "baseline" && r.Op == "" && r.Metric == "p99_ms" && *r.Cells[0].Median != 4 {
			t.Errorf("baseline p99 of A %v: node 1's figure leaked in", *r.Cells[0].Median)
		}
	}
}

func TestOverlappingSpreads(t *testing.T) {
	run := func(dir string, rate, p99 float64) *experiments.RunDir {
		return fakeRun{dir: dir, rate: rate, stats: []experiments.PhaseStats{stat("baseline", "", 0, 10, p99, rate, 0)}}.rd()
	}
	p99 := func(c *Comparison) Cell {
		for _, r := range c.Workloads {
			if r.Metric == "p99_ms" {
				return r.Cells[1]
			}
		}
		t.Fatal("no p99 row")
		return Cell{}
	}
	c, _ := Compare([]*experiments.RunDir{run("a1", 1, 4), run("a2", 1, 6), run("b1", 2, 5), run("b2", 2, 9)})
	if cell := p99(c); cell.Better != "A" || !cell.Overlap || *cell.Ratio != 7.0/5 {
		t.Errorf("overlapping: %+v", cell)
	}
	c, _ = Compare([]*experiments.RunDir{run("a1", 1, 4), run("a2", 1, 6), run("b1", 2, 7), run("b2", 2, 9)})
	if cell := p99(c); cell.Better != "A" || cell.Overlap {
		t.Errorf("apart: %+v", cell)
	}
}

func TestBetterSide(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		a, b float64
		want string
	}{{Lower, 1, 2, "A"}, {Lower, 2, 1, "B"}, {Higher, 1, 2, "B"}, {Higher, 2, 1, "A"}, {Lower, 3, 3, Same}, {"", 1, 2, ""}} {
		if got := BetterSide(tc.dir, tc.a, tc.b, "A", "B"); got != tc.want {
			t.Errorf("BetterSide(%q, %v, %v) = %q, want %q", tc.dir, tc.a, tc.b, got, tc.want)
		}
	}
}

func TestRatioText(t *testing.T) {
	for _, tc := range []struct {
		r    *float64
		want string
	}{{nil, "-"}, {ptr(1.4443), "1.44"}, {ptr(2), "2.00"}, {ptr(0.0031), "0.0031"}, {ptr(123.4), "123"}, {ptr(0), "0.00"}} {
		if got := RatioText(tc.r); got != tc.want {
			t.Errorf("RatioText(%v) = %q, want %q", fmtPtr(tc.r), got, tc.want)
		}
	}
}

func TestFewerThanTwoRuns(t *testing.T) {
	_, err := Compare([]*experiments.RunDir{fakeRun{dir: "a"}.rd()})
	var ue *usage.Error
	if !errors.As(err, &ue) {
		t.Fatalf("one run: %v, want a usage error", err)
	}
}

func TestLoadRefusesWhatIsNotARun(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	newer := filepath.Join(tmp, "newer")
	os.Mkdir(newer, 0o755)
	os.WriteFile(filepath.Join(newer, "run.json"), []byte(`{"version": 99}`), 0o644)
	notOurs := filepath.Join(tmp, "notours")
	os.Mkdir(notOurs, 0o755)
	os.WriteFile(filepath.Join(notOurs, "run.json"), []byte(`{"name": "x"}`), 0o644)
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	good := filepath.Join(tmp, "good")
	os.Mkdir(good, 0o755)
	b, _ := json.Marshal(fakeRun{dir: good, rate: 200}.rd().Run)
	os.WriteFile(filepath.Join(good, "run.json"), b, 0o644)

	for _, tc := range []struct{ dir, want string }{
		{empty, "not a run directory (no run.json)"},
		{newer, "version 99: written by a newer htapchaos"},
		{notOurs, "not a run.json written by htapchaos"},
		{file, "not a directory"},
		{filepath.Join(tmp, "missing"), "no such directory"},
	} {
		_, err := Load([]string{good, tc.dir})
		var ue *usage.Error
		if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), tc.dir) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want a usage error naming it with %q", tc.dir, err, tc.want)
		}
	}
	runs, err := Load([]string{good, good})
	if err != nil || len(runs) != 2 || runs[0].Run.Spec.Workloads[0].Rate != 200 || runs[0].Summary != nil {
		t.Fatalf("good dirs: %v", err)
	}
	// With a summary, its gaps are read; a damaged one is bad input naming it.
	os.WriteFile(filepath.Join(good, "summary.json"), []byte(`{"version": 2, "cluster_gaps": [{"node": 0, "access": "write", "longest_s": 6.5}]}`), 0o644)
	runs, err = Load([]string{good})
	if err != nil || runs[0].Summary == nil || len(runs[0].Summary.Cluster) != 1 || runs[0].Summary.Cluster[0].Longest != 6.5 {
		t.Fatalf("summary not read: %v", err)
	}
	os.WriteFile(filepath.Join(good, "summary.json"), []byte(`{"version": 9}`), 0o644)
	if _, err := Load([]string{good}); err == nil || !strings.Contains(err.Error(), "summary.json") {
		t.Errorf("a summary from a newer htapchaos: %v", err)
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	a := fakeRun{dir: "a", rate: 200, stats: []experiments.PhaseStats{stat("baseline", "", 0, 10, 4, 200, 0)}}.rd()
	b := fakeRun{dir: "b", rate: 400, settings: map[string]string{"x": "<y>"}, stats: []experiments.PhaseStats{stat("baseline", "", 0, 10, 5, 400, 0)}}.rd()
	c, err := Compare([]*experiments.RunDir{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var h bytes.Buffer
	if err := c.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	s := h.String()
	for _, want := range []string{"workloads.oltp.rate=200", "server: x=&lt;y&gt;", `<td class="num ratio worse">1.25</td>`, `<td class="num ratio better">2.00</td>`} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "<script", "<link", "src=", "<y>"} {
		if strings.Contains(s, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
}

func TestWriteFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.html")
	os.WriteFile(path, []byte("old"), 0o644)
	boom := errors.New("boom")
	if err := WriteFile(path, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("a failed write changed the file: %q", b)
	}
	if err := WriteFile(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("file %q, want new", b)
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.html"), func(w io.Writer) error { return nil }); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// div divides at run time, as the code under test does (a constant expression is
// exact).
func div(a, b float64) float64 { return a / b }

func fmtPtr(p *float64) any {
	if p == nil {
		return "nil"
	}
	return *p
}

// writeRepeat writes a repeat directory as experiments.Repeat leaves it: a run
// directory per run and repeat.json with the findings aggregated.
func writeRepeat(t *testing.T, dir string, runs []fakeRun) {
	t.Helper()
	f := experiments.RepeatFile{Version: 1, Experiment: "exp", Repeats: len(runs)}
	var per [][]experiments.Finding
	for i, r := range runs {
		name := "r" + string(rune('1'+i))
		r.dir = filepath.Join(dir, name)
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r.rd().Run)
		if err := os.WriteFile(filepath.Join(r.dir, "run.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		f.Runs = append(f.Runs, experiments.RepeatRun{Dir: name, Seed: r.seed, Counted: true})
		per = append(per, r.findings)
	}
	f.Findings = experiments.AggregateFindings(per)
	b, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(dir, experiments.RepeatFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compare OUT_A OUT_B with repeat directories: each is its N runs, one group
// labelled by its directory, whose figures are those of its repeat.json.
func TestCompareRepeatDirectories(t *testing.T) {
	tmp := t.TempDir()
	gap := func(v experiments.Verdict, x float64) []experiments.Finding {
		return []experiments.Finding{{Mode: "failover", Name: "gap", Op: "<=", Budget: 5, Verdict: v, Value: x, Unit: "s"}}
	}
	a, b := filepath.Join(tmp, "monday"), filepath.Join(tmp, "tuesday")
	writeRepeat(t, a, []fakeRun{{seed: 1, rate: 200, findings: gap(experiments.Pass, 1)}, {seed: 2, rate: 200, findings: gap(experiments.Fail, 8)},
		{seed: 3, rate: 200, findings: gap(experiments.Pass, 3)}})
	writeRepeat(t, b, []fakeRun{{seed: 1, rate: 200, findings: gap(experiments.Pass, 2)}, {seed: 2, rate: 200, findings: gap(experiments.Pass, 4)}})
	runs, err := Load([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 5 || runs[0].Repeat != a || runs[4].Repeat != b || runs[4].Dir != filepath.Join(b, "r2") {
		t.Fatalf("loaded %d runs: %+v", len(runs), runs)
	}
	c, err := Compare(runs)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Groups) != 2 || c.Groups[0].Label != "monday" || c.Groups[1].Label != "tuesday" || len(c.Groups[0].Dirs) != 3 || !reflect.DeepEqual(c.Groups[1].Seeds, []uint64{1, 2}) {
		t.Fatalf("groups %+v, want one per repeat directory", c.Groups)
	}
	for i, dir := range []string{a, b} {
		rf, err := experiments.ReadRepeatFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		want, cell := rf.Findings[0], c.Findings[0].Cells[i]
		if *cell.Median != *want.Median || *cell.Min != *want.Min || *cell.Max != *want.Max || cell.N != want.N ||
			cell.Verdict != string(want.Verdict) || cell.Unstable != want.Unstable {
			t.Errorf("%s: cell %+v, repeat.json %+v", dir, cell, want)
		}
	}
	if cell := c.Findings[0].Cells[0]; *cell.Median != 3 || cell.Verdict != "pass" || !cell.Unstable {
		t.Errorf("monday: %+v, want the median 3 passing, unstable", cell)
	}
	var txt bytes.Buffer
	c.WriteText(&txt, TextOptions{})
	for _, want := range []string{"A  monday", "3 runs:", "3 (1..8) pass unstable (fail 1, pass 2)", "3 (2..4) pass"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, txt.String())
		}
	}

	// A repeat beside a run of another configuration: grouped by configuration.
	other := filepath.Join(tmp, "rate400")
	os.Mkdir(other, 0o755)
	bb, _ := json.Marshal(fakeRun{dir: other, seed: 4, rate: 400, findings: gap(experiments.Pass, 2)}.rd().Run)
	os.WriteFile(filepath.Join(other, "run.json"), bb, 0o644)
	runs, err = Load([]string{a, other})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = Compare(runs); err != nil || len(c.Groups) != 2 || len(c.Groups[0].Dirs) != 3 || c.Groups[1].Label != "workloads.oltp.rate=400" {
		t.Errorf("a repeat against another rate: %v %+v", err, c.Groups)
	}

	// A repeat.json from a newer htapchaos is bad input naming it.
	newer := filepath.Join(tmp, "newer")
	os.Mkdir(newer, 0o755)
	os.WriteFile(filepath.Join(newer, experiments.RepeatFileName), []byte(`{"version": 99}`), 0o644)
	_, err = Load([]string{a, newer})
	var ue *usage.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), filepath.Join(newer, "repeat.json")+": version 99") {
		t.Errorf("newer repeat.json: %v", err)
	}
}

// Gap rows: per workload the longest of its nodes' read and write gaps, and the
// cluster-wide ones, as medians over a group's runs.
func TestGapRows(t *testing.T) {
	withGaps := func(dir string, seed uint64, rate, w1, w2, r1, cw float64) *experiments.RunDir {
		rd := fakeRun{dir: dir, seed: seed, rate: rate}.rd()
		rd.Summary = &results.Summary{
			Gaps: []results.StreamGaps{
				{Workload: "oltp", Node: 1, Access: results.Read, Longest: r1},
				{Workload: "oltp", Node: 1, Access: results.Write, Longest: w1},
				{Workload: "oltp", Node: 2, Access: results.Write, Longest: w2},
				{Workload: "oltp", Node: 3, Longest: 99}, // a stream from before access kinds: left out
			},
			Cluster: []results.StreamGaps{{Access: results.Read}, {Access: results.Write, Longest: cw}},
		}
		return rd
	}
	c, err := Compare([]*experiments.RunDir{
		withGaps("a1", 1, 200, 6, 6.5, 1, 6), withGaps("a2", 2, 200, 2, 1, 0, 0.5), withGaps("a3", 3, 200, 7, 3, 0.5, 3),
		withGaps("b1", 1, 400, 0.6, 0.7, 0, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]float64{}
	for _, r := range c.Workloads {
		if r.Phase != PhaseRun {
			continue
		}
		if r.Direction != Lower || r.Unit != "s" || len(r.Cells) != 2 || r.Cells[0].Median == nil || r.Cells[1].Median == nil {
			t.Fatalf("row %+v", r)
		}
		got[r.Workload+" "+r.Metric] = [2]float64{*r.Cells[0].Median, *r.Cells[1].Median}
	}
	want := map[string][2]float64{
		"oltp " + MetricReadGap:            {0.5, 0},   // medians of 1, 0, 0.5 and of 0
		"oltp " + MetricWriteGap:           {6.5, 0.7}, // each run's longest node: 6.5, 2, 7
		ClusterWide + " " + MetricReadGap:  {0, 0},
		ClusterWide + " " + MetricWriteGap: {3, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("gap rows %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
}
