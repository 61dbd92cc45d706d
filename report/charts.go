package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

// Chart is one chart of the report.
type Chart struct {
	ID      string // file name without extension, unique in the report
	Title   string
	Caption string
	Section string // workload name, "indicators" or "gaps"
	// Points is the number of data points drawn (0: the chart was left out).
	Points int
	// Bands is the number of fault windows shaded on it.
	Bands int
	plot  *plot.Plot
	w, h  vg.Length
}

// Render draws the chart as "svg" or "png". A panic of the plotting library
// (it panics on some axis ranges) is returned as an error.
func (c *Chart) Render(format string) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("chart %s: %v", c.ID, r)
		}
	}()
	wt, err := c.plot.WriterTo(c.w, c.h, format)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", c.ID, err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("chart %s: %w", c.ID, err)
	}
	return b.Bytes(), nil
}

// BandColor is the fill of a fault window on the time charts: the one colour
// nothing else on a chart uses, so a reader (or a test) can find the bands.
var BandColor = color.NRGBA{R: 0xe8, G: 0x3a, B: 0x3a, A: 0x40}

// band is a shaded time span, drawn under the data across the whole height.
type band struct {
	from, to float64 // seconds from the run's start
}

// bands draws fault windows. It has no data range: the lines set the axes.
type bands []band

func (bs bands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, b := range bs {
		x0, x1 := trX(math.Max(b.from, p.X.Min)), trX(math.Min(b.to, p.X.Max))
		if x1 <= x0 {
			continue
		}
		c.FillPolygon(BandColor, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
	}
}

func (bands) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(BandColor, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// AbortColor is the line of the moment an abort condition stopped the run.
var AbortColor = color.NRGBA{R: 0x20, G: 0x20, B: 0x20, A: 0xff}

// abortLine marks the moment an abort condition stopped the run.
type abortLine struct{ x float64 }

func (a abortLine) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(a.x)
	c.StrokeLine2(draw.LineStyle{Color: AbortColor, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}, x, c.Min.Y, x, c.Max.Y)
}

func (abortLine) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(draw.LineStyle{Color: AbortColor, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}, c.Min.X, y, c.Max.X, y)
}

// timeline is what every time chart shares: the run's start and end, the
// fault windows, and when an abort condition stopped the run.
type timeline struct {
	start, end time.Time
	faults     bands
	faultNames []string
	abort      *abortLine
	abortWhy   string
}

// newTimeline is rf's timeline up to end (run.json's end, or the last thing
// measured when later).
func newTimeline(rf *experiments.RunFile, end time.Time) timeline {
	tl := timeline{start: rf.Start, end: end}
	if tl.end.IsZero() || tl.end.Before(tl.start) {
		tl.end = tl.start
	}
	for _, f := range rf.Faults {
		if !f.TookEffect() {
			continue
		}
		w := f.Window(tl.end)
		tl.faults = append(tl.faults, band{from: tl.x(w.Start), to: tl.x(w.End)})
		name := f.Name
		if len(f.NodeLabels) > 0 {
			name += " (" + strings.Join(f.NodeLabels, ",") + ")"
		}
		tl.faultNames = append(tl.faultNames, name)
	}
	if a := rf.Aborted; a != nil && !a.At.IsZero() {
		tl.abort, tl.abortWhy = &abortLine{x: tl.x(a.At)}, a.Condition
	}
	return tl
}

// x is t in seconds from the run's start.
func (tl timeline) x(t time.Time) float64 { return t.Sub(tl.start).Seconds() }

// timeChart is a chart over the run's time axis with the fault windows shaded;
// fix sets the axis once the data is added.
func (tl timeline) timeChart(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since the run started"
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	if len(tl.faults) > 0 {
		p.Add(tl.faults)
		p.Legend.Add("fault: "+strings.Join(tl.faultNames, ", "), tl.faults)
	}
	if tl.abort != nil {
		p.Add(*tl.abort)
		p.Legend.Add("aborted: "+tl.abortWhy, *tl.abort)
	}
	return p
}

// fix keeps an axis range set by hand: gonum widens it to the data when
// plotters are added.
func (tl timeline) fix(p *plot.Plot) {
	p.X.Min, p.X.Max = 0, math.Max(tl.x(tl.end), 1)
}

// addLines adds one line per series, split where a point is missing (NaN) so
// that a gap shows as a gap, not as a slope. It returns the points drawn.
func addLines(p *plot.Plot, names []string, series []plotter.XYs, logY bool) (int, error) {
	return addStyledLines(p, names, series, logY, func(i int) draw.LineStyle {
		style := draw.LineStyle{Color: plotutil.Color(i), Width: vg.Points(1.2)}
		if i < len(plotutil.DefaultDashes) {
			style.Dashes = plotutil.Dashes(i)
		}
		return style
	})
}

// addStyledLines is addLines with the i-th series drawn in styleOf(i).
func addStyledLines(p *plot.Plot, names []string, series []plotter.XYs, logY bool, styleOf func(i int) draw.LineStyle) (int, error) {
	n := 0
	for i, s := range series {
		style := styleOf(i)
		first := true
		var seg plotter.XYs
		flush := func() error {
			if len(seg) == 0 {
				return nil
			}
			var l plot.Plotter
			var thumb plot.Thumbnailer
			if len(seg) == 1 { // a lone point: a line needs two
				sc, err := plotter.NewScatter(seg)
				if err != nil {
					return err
				}
				sc.GlyphStyle.Color = style.Color
				sc.GlyphStyle.Radius = vg.Points(1.5)
				l, thumb = sc, sc
			} else {
				ln, err := plotter.NewLine(seg)
				if err != nil {
					return err
				}
				ln.LineStyle = style
				l, thumb = ln, ln
			}
			p.Add(l)
			if first {
				p.Legend.Add(names[i], thumb)
				first = false
			}
			n += len(seg)
			seg = nil
			return nil
		}
		for _, pt := range s {
			if math.IsNaN(pt.Y) || (logY && pt.Y <= 0) {
				if err := flush(); err != nil {
					return 0, err
				}
				continue
			}
			seg = append(seg, pt)
		}
		if err := flush(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// logY makes p's y axis logarithmic, with readable ticks.
func logY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
}

// logRange sets a log axis's range to cover the positive values of vals, and
// says whether there is any: the library panics on a log axis with no range (no
// data, or a single value), which a workload whose every operation failed, or
// that had one success, gives.
func logRange(a *plot.Axis, vals []float64) bool {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return false
	}
	if hi/lo < 2 {
		lo, hi = lo/1.5, hi*1.5
	}
	a.Min, a.Max = lo, hi
	return true
}

// ys returns the y values of series.
func ys(series []plotter.XYs) []float64 {
	var out []float64
	for _, s := range series {
		for _, p := range s {
			out = append(out, p.Y)
		}
	}
	return out
}

// workloadCharts are one workload's throughput, latency and error charts over
// time, and its latency distribution per phase.
func workloadCharts(tl timeline, wl string, pts []results.SeriesPoint, dists []results.Distribution) ([]*Chart, error) {
	var out []*Chart
	slug := slugify(wl)

	// Throughput.
	p := tl.timeChart(wl+": throughput", "operations per second")
	var ok, bad plotter.XYs
	for _, pt := range pts {
		x := tl.x(pt.T)
		ok = append(ok, plotter.XY{X: x, Y: pt.Rate()})
		bad = append(bad, plotter.XY{X: x, Y: float64(pt.Errors) / pt.Seconds})
	}
	n, err := addLines(p, []string{"successes/s", "errors/s"}, []plotter.XYs{ok, bad}, false)
	if err != nil {
		return nil, err
	}
	tl.fix(p)
	p.Y.Min = 0
	out = append(out, &Chart{ID: slug + "-throughput", Title: p.Title.Text, Section: wl, Points: n, Bands: len(tl.faults), plot: p, w: 9 * vg.Inch, h: 3 * vg.Inch,
		Caption: "Successful and failed operations per second; fault windows shaded."})

	// Latency over time.
	p = tl.timeChart(wl+": latency of successes, from the intended start", "milliseconds (log scale)")
	logY(p)
	names := []string{"p50", "p99", "p99.9", "max"}
	series := make([]plotter.XYs, 4)
	for _, pt := range pts {
		x := tl.x(pt.T)
		for i, v := range []float64{pt.Latency.P50, pt.Latency.P99, pt.Latency.P999, pt.Latency.Max} {
			if pt.Count == 0 {
				v = math.NaN()
			}
			series[i] = append(series[i], plotter.XY{X: x, Y: v})
		}
	}
	if n, err = addLines(p, names, series, true); err != nil {
		return nil, err
	}
	tl.fix(p)
	if logRange(&p.Y, ys(series)) { // else no success in the whole run: no latency to draw
		out = append(out, &Chart{ID: slug + "-latency", Title: p.Title.Text, Section: wl, Points: n, Bands: len(tl.faults), plot: p, w: 9 * vg.Inch, h: 3.2 * vg.Inch,
			Caption: "Per-second p50, p99, p99.9 and max of the successful operations, measured from each operation's intended start (no coordinated omission); a break in a line is a second without a success."})
	}

	// Errors by class over time.
	var classes []results.Class
	for _, pt := range pts {
		for c := range pt.ByClass {
			if !slices.Contains(classes, c) {
				classes = append(classes, c)
			}
		}
	}
	if len(classes) > 0 {
		slices.Sort(classes)
		p = tl.timeChart(wl+": errors by class", "errors per second")
		series = make([]plotter.XYs, len(classes))
		names = make([]string, len(classes))
		for i, c := range classes {
			names[i] = string(c)
			for _, pt := range pts {
				series[i] = append(series[i], plotter.XY{X: tl.x(pt.T), Y: float64(pt.ByClass[c]) / pt.Seconds})
			}
		}
		if n, err = addLines(p, names, series, false); err != nil {
			return nil, err
		}
		tl.fix(p)
		p.Y.Min = 0
		out = append(out, &Chart{ID: slug + "-errors", Title: p.Title.Text, Section: wl, Points: n, Bands: len(tl.faults), plot: p, w: 9 * vg.Inch, h: 3 * vg.Inch,
			Caption: "Failed operations per second by class (timeout, connection, not ready, conflict, ...)."})
	}

	// Distribution per phase.
	if len(dists) > 0 {
		p = plot.New()
		p.Title.Text = wl + ": latency by percentile, per phase"
		p.X.Label.Text = "percentile"
		p.Y.Label.Text = "milliseconds (log scale)"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = percentileTicks{}
		logY(p)
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		names = nil
		series = nil
		for _, d := range dists {
			var xy plotter.XYs
			for _, q := range d.Points {
				x := float64(d.Count) // the maximum sits at the count's resolution
				if q.Q < 1 {
					x = 1 / (1 - q.Q)
				}
				xy = append(xy, plotter.XY{X: x, Y: q.Ms})
			}
			names = append(names, fmt.Sprintf("%s (%d ops)", d.Window, d.Count))
			series = append(series, xy)
		}
		if n, err = addLines(p, names, series, true); err != nil {
			return nil, err
		}
		var xs []float64
		for _, s := range series {
			for _, pt := range s {
				xs = append(xs, pt.X)
			}
		}
		logRange(&p.Y, ys(series))
		logRange(&p.X, append(xs, 1, 10)) // at least 0% to 90%
		out = append(out, &Chart{ID: slug + "-percentiles", Title: p.Title.Text, Section: wl, Points: n, plot: p, w: 9 * vg.Inch, h: 3.5 * vg.Inch,
			Caption: "Latency at each percentile of each phase, as HdrHistogram plots it: the x axis is 1/(1-percentile) on a log scale, the last point of each line its maximum."})
	}
	return out, nil
}

// percentileTicks label a 1/(1-q) axis in percentiles.
type percentileTicks struct{}

func (percentileTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for _, t := range []struct {
		x float64
		l string
	}{{1, "0%"}, {2, "50%"}, {10, "90%"}, {100, "99%"}, {1e3, "99.9%"}, {1e4, "99.99%"}, {1e5, "99.999%"}, {1e6, "99.9999%"}, {1e7, "99.99999%"}} {
		if t.x >= min && t.x <= max {
			ts = append(ts, plot.Tick{Value: t.x, Label: t.l})
		}
	}
	return ts
}

// indicator is one per-node indicator the report charts.
type indicator struct {
	id, title, unit string
	val             func(experiments.Sample) (float64, bool)
}

var indicators = []indicator{
	{"up", "node answering queries", "1 = up", func(s experiments.Sample) (float64, bool) { return b2f(s.Up), true }},
	{"cluster-size", "cluster size each node sees", "nodes", func(s experiments.Sample) (float64, bool) {
		return float64(s.ClusterSize), s.ClusterSize > 0 || s.State != ""
	}},
	// Drawn by memoryChart when the samples have the server's or the hog's figures.
	{"memory", "memory used (of the container's limit)", "%", func(s experiments.Sample) (float64, bool) { return s.MemoryPct, s.MemoryPct > 0 }},
	{"cpu", "CPU", "% of one core", func(s experiments.Sample) (float64, bool) { return s.CPUPct, s.CPUPct > 0 }},
	{"threads-running", "threads running", "threads", func(s experiments.Sample) (float64, bool) { return float64(s.ThreadsRunning), s.Up }},
	{"flow-control", "flow control: time paused", "ms per second", func(s experiments.Sample) (float64, bool) { return s.FCPausedMs, s.Up }},
	{"recv-queue", "replication receive queue", "write sets", func(s experiments.Sample) (float64, bool) { return float64(s.RecvQueue), s.Up }},
	{"send-queue", "replication send queue", "write sets", func(s experiments.Sample) (float64, bool) { return float64(s.SendQueue), s.Up }},
	{"replica-lag", "replica lag", "seconds", func(s experiments.Sample) (float64, bool) {
		if s.ReplicaLagS == nil {
			return 0, false
		}
		return *s.ReplicaLagS, true
	}},
	{"staleness", "freshness: age of the newest heartbeat visible", "ms", func(s experiments.Sample) (float64, bool) {
		if s.StalenessMs == nil {
			return 0, false
		}
		return *s.StalenessMs, true
	}},
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// indicatorCharts are the per-node indicators on the run's time axis. An
// indicator no node gave, or that stayed at zero, is left out.
func indicatorCharts(tl timeline, samples []experiments.Sample, labels map[int]string) ([]*Chart, error) {
	var nodes []int
	for _, s := range samples {
		if !slices.Contains(nodes, s.Node) {
			nodes = append(nodes, s.Node)
		}
	}
	slices.Sort(nodes)
	var out []*Chart
	for _, ind := range indicators {
		if ind.id == "memory" {
			c, err := memoryChart(tl, samples, nodes, labels)
			if err != nil {
				return nil, err
			}
			if c != nil {
				out = append(out, c)
				continue
			}
		}
		series := make([]plotter.XYs, len(nodes))
		given, nonzero := false, false
		for _, s := range samples {
			i := slices.Index(nodes, s.Node)
			v, ok := ind.val(s)
			if !ok {
				v = math.NaN()
			} else {
				given = true
				nonzero = nonzero || v != 0
			}
			series[i] = append(series[i], plotter.XY{X: tl.x(s.T), Y: v})
		}
		if !given || (!nonzero && ind.id != "up") {
			continue
		}
		names := make([]string, len(nodes))
		for i, n := range nodes {
			names[i] = cmp.Or(labels[n], fmt.Sprintf("node %d", n))
		}
		p := tl.timeChart(ind.title, ind.unit)
		n, err := addLines(p, names, series, false)
		if err != nil {
			return nil, err
		}
		tl.fix(p)
		p.Y.Min = math.Min(p.Y.Min, 0)
		out = append(out, &Chart{ID: "indicator-" + ind.id, Title: ind.title, Section: "indicators", Points: n, Bands: len(tl.faults), plot: p,
			w: 9 * vg.Inch, h: 2.4 * vg.Inch, Caption: "Per node, sampled every second."})
	}
	return out, nil
}

// memoryChart draws, per node, three figures on one axis: the container's memory
// in use (as docker stats counts it), the server's own account of what it
// allocated (MariaDB's Memory_used) and what a memory-fill fault holds (the
// hog). The axis is percent of the node's container limit when every node with
// a figure reports its limit, else MiB (the container's line then only where the
// limit is known). A node's colour is the same on its three lines; the line's
// dash says which figure it is. Nil when no sample has the server's or the
// hog's figure (a run from before they were sampled): the plain % chart stays.
func memoryChart(tl timeline, samples []experiments.Sample, nodes []int, labels map[int]string) (*Chart, error) {
	limit := map[int]float64{}    // bytes, by node: the newest the engine reported
	server := map[int]bool{}      // the node has a Memory_used figure
	hog := map[int]bool{}         // the node had a hog
	hogInServer := map[int]bool{} // ... inside the server (method=sql)
	for _, s := range samples {
		if s.MemoryLimitBytes > 0 {
			limit[s.Node] = float64(s.MemoryLimitBytes)
		}
		server[s.Node] = server[s.Node] || s.ServerMemoryBytes > 0
		hog[s.Node] = hog[s.Node] || s.HogBytes > 0
		hogInServer[s.Node] = hogInServer[s.Node] || s.HogInServer
	}
	pct := true
	have := false
	for _, n := range nodes {
		if server[n] || hog[n] {
			have = true
			pct = pct && limit[n] > 0
		}
	}
	if !have {
		return nil, nil
	}
	const mib = 1 << 20
	unit := "MiB"
	if pct {
		unit = "% of the container's memory limit"
	}
	scale := func(node int, bytes float64) float64 {
		if pct {
			return bytes / limit[node] * 100
		}
		return bytes / mib
	}
	var names []string
	var series []plotter.XYs
	var styles []draw.LineStyle
	add := func(ni int, name string, dash int, val func(experiments.Sample) float64) {
		node := nodes[ni]
		var xy plotter.XYs
		for _, s := range samples {
			if s.Node == node {
				xy = append(xy, plotter.XY{X: tl.x(s.T), Y: val(s)})
			}
		}
		names = append(names, cmp.Or(labels[node], fmt.Sprintf("node %d", node))+": "+name)
		series = append(series, xy)
		styles = append(styles, draw.LineStyle{Color: plotutil.Color(ni), Width: vg.Points(1.2), Dashes: plotutil.Dashes(dash)})
	}
	for ni, n := range nodes {
		if pct || limit[n] > 0 {
			add(ni, "container", 0, func(s experiments.Sample) float64 {
				switch {
				case s.MemoryPct <= 0:
					return math.NaN()
				case pct:
					return s.MemoryPct
				}
				return s.MemoryPct / 100 * limit[n] / mib
			})
		}
		if server[n] {
			add(ni, "server (Memory_used)", 1, func(s experiments.Sample) float64 {
				if !s.Up || s.ServerMemoryBytes <= 0 {
					return math.NaN()
				}
				return scale(n, float64(s.ServerMemoryBytes))
			})
		}
		if hog[n] {
			name := "hog"
			if hogInServer[n] {
				name = "hog (MEMORY tables as the server accounts them, inside its line)"
			}
			add(ni, name, 2, func(s experiments.Sample) float64 { return scale(n, float64(s.HogBytes)) })
		}
	}
	title := "memory: the container's, the server's own account, the memory-fill hog's"
	p := tl.timeChart(title, unit)
	n, err := addStyledLines(p, names, series, false, func(i int) draw.LineStyle { return styles[i] })
	if err != nil {
		return nil, err
	}
	tl.fix(p)
	p.Y.Min = 0
	caption := "Per node, sampled every second: the container's memory in use as docker stats counts it (solid), " +
		"the server's own account of what it allocated, MariaDB's Memory_used (dashed), and what a memory-fill fault holds (dotted): " +
		"the exec hog's resident memory, or with method=sql its MEMORY tables as the server accounts them (whole blocks, more than the rows it wrote), which live inside the server and count in its line too. "
	if pct {
		caption += "All in percent of the node's container memory limit."
	} else {
		caption += "In MiB; the container's line only where the engine reports the limit."
	}
	return &Chart{ID: "indicator-memory", Title: title, Section: "indicators", Points: n, Bands: len(tl.faults), plot: p,
		w: 9 * vg.Inch, h: 3 * vg.Inch, Caption: caption}, nil
}

// streamLabel names a stream of gaps: "oltp writes n1", or "writes, every
// node" for a cluster-wide stream ("oltp n1" for a stream of a summary from
// before access kinds).
func streamLabel(g results.StreamGaps) string {
	kind := ""
	if g.Access != "" {
		kind = string(g.Access) + "s"
	}
	if g.ClusterWide() {
		return kind + ", every node"
	}
	return strings.Join(strings.Fields(fmt.Sprintf("%s %s n%d", g.Workload, kind, g.Node)), " ")
}

// gapChart draws each stream's unavailability gaps as bars on the time axis:
// the cluster-wide streams first, then each client stream.
func gapChart(tl timeline, s *results.Summary) (*Chart, error) {
	var streams []results.StreamGaps
	for _, g := range append(slices.Clone(s.Cluster), s.Gaps...) {
		if len(g.Gaps) > 0 {
			streams = append(streams, g)
		}
	}
	if len(streams) == 0 {
		return nil, nil
	}
	p := tl.timeChart("failover gaps: time without a successful read or write, per stream", "stream")
	var labels []plot.Tick
	var bars gapBars
	n := 0
	for i, s := range streams {
		y := float64(len(streams) - i)
		labels = append(labels, plot.Tick{Value: y, Label: streamLabel(s)})
		for _, g := range s.Gaps {
			bars = append(bars, gapBar{y: y, from: tl.x(g.Start), to: tl.x(g.End), color: plotutil.Color(i)})
			n++
		}
	}
	p.Add(bars)
	p.Y.Min, p.Y.Max = 0.4, float64(len(streams))+0.6
	p.Y.Tick.Marker = plot.ConstantTicks(labels)
	p.Y.Label.Text = ""
	tl.fix(p)
	return &Chart{ID: "gaps", Title: p.Title.Text, Section: "gaps", Points: n, Bands: len(tl.faults), plot: p, w: 9 * vg.Inch,
		h:       vg.Length(1.2+0.35*float64(len(streams))) * vg.Inch,
		Caption: "Each bar runs from the last success before trouble to the first success after, on one stream: a workload's reads or writes on one node, or the reads or writes of every node together (no write succeeded anywhere)."}, nil
}

type gapBar struct {
	y, from, to float64
	color       color.Color
}

type gapBars []gapBar

func (bs gapBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, b := range bs {
		x0, x1 := trX(b.from), trX(b.to)
		if x1-x0 < 1 {
			x1 = x0 + 1 // a short gap still shows
		}
		y0, y1 := trY(b.y-0.3), trY(b.y+0.3)
		c.FillPolygon(b.color, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
	}
}

func slugify(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}
