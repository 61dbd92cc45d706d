package report

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/experiments"
)

// memorySamples: two nodes of a 512 MiB limit for 10 seconds. n1: the container at
// 90%, the server's Memory_used at 30% (153.6 MiB) and an exec hog of 60%
// (307.2 MiB); n2: container 40%, server 20%, no hog. limit false: the samples
// carry no limit (the engine's statistics were missing).
func memorySamples(limit bool) []experiments.Sample {
	const lim = 512 << 20
	var out []experiments.Sample
	for s := range 10 {
		at := t0.Add(time.Duration(s+1) * time.Second)
		for _, n := range []struct {
			node             int
			pct, server, hog float64
		}{{1, 90, 0.30, 0.60}, {2, 40, 0.20, 0}} {
			smp := experiments.Sample{T: at, Node: n.node, Up: true, MemoryPct: n.pct,
				ServerMemoryBytes: int64(n.server * lim), HogBytes: int64(n.hog * lim)}
			if limit {
				smp.MemoryLimitBytes = lim
			}
			out = append(out, smp)
		}
	}
	return out
}

var svgPathRE = regexp.MustCompile(`<path d="([^"]*)" style="([^"]*)"`)

// levels returns the y of the first point of every line of 10 points or more
// drawn in colour, in drawing order.
func levels(t *testing.T, svg, colour string) []float64 {
	t.Helper()
	var out []float64
	for _, m := range svgPathRE.FindAllStringSubmatch(svg, -1) {
		if !strings.Contains(m[2], "stroke:"+colour) || !strings.HasPrefix(m[1], "M") {
			continue
		}
		pts := strings.FieldsFunc(m[1], func(r rune) bool { return r == 'M' || r == 'L' })
		if len(pts) < 10 {
			continue // a legend's swatch
		}
		_, ys, _ := strings.Cut(pts[0], ",")
		y, err := strconv.ParseFloat(ys, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, y)
	}
	return out
}

func TestMemoryChart(t *testing.T) {
	tl := timeline{start: t0, end: t0.Add(10 * time.Second)}
	labels := map[int]string{1: "n1 a", 2: "n2 b"}
	find := func(cs []*Chart) *Chart {
		for _, c := range cs {
			if c.ID == "indicator-memory" {
				return c
			}
		}
		t.Fatalf("no memory chart among %d charts", len(cs))
		return nil
	}

	t.Run("percent-of-the-limit", func(t *testing.T) {
		cs, err := indicatorCharts(tl, memorySamples(true), labels)
		if err != nil {
			t.Fatal(err)
		}
		c := find(cs)
		// n1: container, server, hog; n2: container, server: 5 lines of 10 points.
		if c.Points != 50 || !strings.Contains(c.Caption, "percent of the node's container memory limit") {
			t.Errorf("%d points, caption %q", c.Points, c.Caption)
		}
		svg, err := c.Render("svg")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"n1 a: container", "n1 a: server (Memory_used)", "n1 a: hog", "n2 b: server (Memory_used)", "% of the container"} {
			if !strings.Contains(string(svg), want) {
				t.Errorf("the chart lacks %q", want)
			}
		}
		if strings.Contains(string(svg), "n2 b: hog") {
			t.Error("n2 had no hog but has a hog line")
		}
		// n1's three lines (one colour) at 90, 30 and 60 on one linear axis: the
		// hog's sits halfway between the server's and the container's.
		ys := levels(t, string(svg), "#F15A60")
		if len(ys) != 3 {
			t.Fatalf("n1: %d lines, want 3", len(ys))
		}
		if ys[0] <= ys[1] {
			t.Errorf("n1 lines at y %v: the container's (90%%) is not above the server's (30%%)", ys)
		}
		if f := (ys[1] - ys[2]) / (ys[1] - ys[0]); math.Abs(f-0.5) > 0.01 {
			t.Errorf("n1 lines at y %v: the hog is %.2f of the way from the server to the container, want 0.50", ys, f)
		}
	})

	t.Run("mib-without-a-limit", func(t *testing.T) {
		cs, err := indicatorCharts(tl, memorySamples(false), labels)
		if err != nil {
			t.Fatal(err)
		}
		c := find(cs)
		// No limit: no container line (its % cannot be put in MiB); 3 lines.
		if c.Points != 30 || !strings.Contains(c.Caption, "In MiB") {
			t.Errorf("%d points, caption %q", c.Points, c.Caption)
		}
		svg, err := c.Render("svg")
		if err != nil {
			t.Fatal(err)
		}
		ys := levels(t, string(svg), "#F15A60") // n1: server 153.6 MiB, hog 307.2 MiB
		if len(ys) != 2 || ys[1] <= ys[0] {     // the SVG's y axis points up
			t.Errorf("n1 lines at y %v: want the server's and, higher, the hog's", ys)
		}
	})

	t.Run("a-run-from-before", func(t *testing.T) {
		old := memorySamples(true)
		for i := range old {
			old[i].ServerMemoryBytes, old[i].HogBytes, old[i].MemoryLimitBytes = 0, 0, 0
		}
		cs, err := indicatorCharts(tl, old, labels)
		if err != nil {
			t.Fatal(err)
		}
		if c := find(cs); c.Title != "memory used (of the container's limit)" || c.Points != 20 {
			t.Errorf("old samples: %q with %d points, want the container's %% chart, 20 points", c.Title, c.Points)
		}
	})
}
