package results

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// This file reads a run directory back as time series and percentile
// distributions, for charts: per workload and interval, and per workload and
// window.

// SeriesPoint is one workload's figures over one interval, merged over its
// operations and nodes. T is the end of the interval.
type SeriesPoint struct {
	T        time.Time
	Workload string
	Seconds  float64 // the interval's length
	Count    int64   // successes
	Errors   int64   // failures, canceled excluded
	ByClass  map[Class]int64
	Late     int64
	Dropped  int64
	Latency  Percentiles // of successes, from the intended start, merged exactly; zero when Count is 0
}

// Rate is successes per second of the interval.
func (p SeriesPoint) Rate() float64 {
	if p.Seconds <= 0 {
		return 0
	}
	return float64(p.Count) / p.Seconds
}

// QuantilePoint is one point of a percentile distribution: the latency (ms)
// at quantile Q (0..1).
type QuantilePoint struct {
	Q  float64 `json:"q"`
	Ms float64 `json:"ms"`
}

// Distribution is one workload's latency distribution over one window, as
// HdrHistogram plots it: latency by percentile, ten points per decade of
// 1/(1-Q) up to the count's resolution, and the maximum last.
type Distribution struct {
	Window   string          `json:"window"`
	Workload string          `json:"workload"`
	Count    int64           `json:"count"`
	Points   []QuantilePoint `json:"points"`
}

// SeriesAndDistributions reads the run directory dir in one pass over its
// interval logs.
//
// The series has one point per workload and interval, sorted by workload and
// time: counts from intervals.jsonl, latency merged over the workload's ops
// and nodes from the interval logs. The recorder writes nothing for a key that
// saw nothing, so the intervals are put back on a grid: every tick any key
// wrote, the run's start and end from summary.json, and the ticks a stall of
// the whole run left out (at the run's interval, the median spacing of the
// ticks). From its first interval to the run's end, a workload has a point
// for every interval of the grid, with zeros where it completed nothing.
//
// The distributions are, per window (in the order given) and workload, the
// latency of the successes merged over the window's intervals (as in
// WindowStats: an interval belongs to a window when its end falls in
// (Start, End]); empty ones are left out.
//
// Memory: the interval logs are read line by line, each line decoded sparsely
// (see eachInterval); what is kept is one merged histogram per window and
// workload.
func SeriesAndDistributions(dir string, windows []Window) ([]SeriesPoint, []Distribution, error) {
	lines, err := ReadIntervals(dir)
	if err != nil {
		return nil, nil, err
	}
	type key struct {
		wl string
		t  int64
	}
	points := map[key]*SeriesPoint{}
	ticks := map[int64]bool{}
	for _, l := range lines {
		ticks[l.T] = true
		k := key{l.Workload, l.T}
		p := points[k]
		if p == nil {
			p = &SeriesPoint{T: time.UnixMilli(l.T), Workload: l.Workload}
			points[k] = p
		}
		p.Count += l.Count
		p.Late += l.Late
		p.Dropped += l.Dropped
		p.Errors += AddCounts(&p.ByClass, l.Errors)
	}

	acc := newWindowAcc(windows)
	type dkey struct {
		wi int
		wl string
	}
	dists := map[dkey]*hdr.Histogram{}
	startOf := map[int64]int64{} // an interval's start, by its end, from the logs' lines
	err = eachLatencyLog(dir, ticks, startOf, func(wl string, end int64, h *hdr.Histogram) {
		k := key{wl, end}
		p := points[k]
		if p == nil { // latency without a line in intervals.jsonl: a crash between the two writes
			p = &SeriesPoint{T: time.UnixMilli(end), Workload: wl}
			points[k] = p
			ticks[end] = true
		}
		p.Latency = percentilesOf(h)
		for _, wi := range acc.in(end) {
			dk := dkey{wi, wl}
			d := dists[dk]
			if d == nil {
				d = newHist()
				dists[dk] = d
			}
			merge(d, h)
		}
	})
	if err != nil {
		return nil, nil, err
	}

	var start, end int64
	if s, err := ReadSummary(filepath.Join(dir, "summary.json")); err == nil {
		start, end = s.Start.UnixMilli(), s.End.UnixMilli()
	}
	grid := intervalGrid(slices.Sorted(maps.Keys(ticks)), startOf, start, end)
	first := map[string]int64{} // each workload's first interval
	for k := range points {
		if f, ok := first[k.wl]; !ok || k.t < f {
			first[k.wl] = k.t
		}
	}
	var series []SeriesPoint
	for wl, f := range first {
		for _, iv := range grid {
			if iv.end < f {
				continue
			}
			p := points[key{wl, iv.end}]
			if p == nil {
				p = &SeriesPoint{T: time.UnixMilli(iv.end), Workload: wl}
			}
			p.Seconds = float64(iv.end-iv.start) / 1000
			series = append(series, *p)
		}
	}
	slices.SortFunc(series, func(a, b SeriesPoint) int {
		return cmp.Or(cmp.Compare(a.Workload, b.Workload), a.T.Compare(b.T))
	})

	keys := slices.SortedFunc(maps.Keys(dists), func(a, b dkey) int { return cmp.Or(cmp.Compare(a.wi, b.wi), cmp.Compare(a.wl, b.wl)) })
	out := make([]Distribution, 0, len(keys))
	for _, k := range keys {
		h := dists[k]
		out = append(out, Distribution{Window: windows[k.wi].Name, Workload: k.wl, Count: h.TotalCount(), Points: distributionOf(h)})
	}
	return series, out, nil
}

// span is one interval of the run, in unix ms.
type span struct{ start, end int64 }

// intervalGrid is the run's intervals: one per tick written (ends, sorted),
// starting where its log lines say (startOf) or else where the previous one
// ended, and the intervals a stall of the whole run left without a line put
// back in the holes between them, and between the run's start and end when
// known (0: unknown). A hole is split into intervals of the run's interval
// (the median length of those known), at least one.
func intervalGrid(ends []int64, startOf map[int64]int64, start, end int64) []span {
	if len(ends) == 0 {
		return nil
	}
	var lens []int64
	for _, e := range ends {
		if s, ok := startOf[e]; ok && s < e {
			lens = append(lens, e-s)
		}
	}
	iv := int64(1000) // the recorder's default
	if len(lens) > 0 {
		slices.Sort(lens)
		iv = lens[len(lens)/2]
	}
	var grid []span
	// fill puts intervals in [from, to) when it is a hole of half an interval or more.
	fill := func(from, to int64) {
		n := (to - from + iv/2) / iv
		for i := range n {
			grid = append(grid, span{from + (to-from)*i/n, from + (to-from)*(i+1)/n})
		}
	}
	prev := start
	if s, ok := startOf[ends[0]]; ok && (prev <= 0 || s < prev) {
		prev = s
	} else if prev <= 0 || prev >= ends[0] {
		prev = ends[0] - iv
	}
	for _, e := range ends {
		s, ok := startOf[e]
		if !ok || s < prev || s >= e {
			s = prev
		}
		fill(prev, s)
		grid = append(grid, span{s, e})
		prev = e
	}
	if end > prev {
		fill(prev, end) // the last intervals, closed with nothing in them
	}
	return grid
}

// eachLatencyLog calls f with each workload's latency histogram of each
// interval, merged over the interval's operations and nodes, interval by
// interval, reading the interval logs of dir in name order.
func eachLatencyLog(dir string, ticks map[int64]bool, startOf map[int64]int64, f func(workload string, end int64, h *hdr.Histogram)) error {
	logs, err := filepath.Glob(filepath.Join(dir, "*.hlog"))
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	slices.Sort(logs)
	cur := newHist()
	for _, path := range logs {
		if err := eachLatencyInterval(path, ticks, startOf, cur, f); err != nil {
			return err
		}
	}
	return nil
}

func eachLatencyInterval(path string, ticks map[int64]bool, startOf map[int64]int64, cur *hdr.Histogram, f func(workload string, end int64, h *hdr.Histogram)) error {
	var wl string
	curEnd := int64(-1)
	cur.Reset()
	flush := func() {
		if curEnd >= 0 && cur.TotalCount() > 0 {
			f(wl, curEnd, cur)
		}
		cur.Reset()
	}
	err := eachLogInterval(path, []string{"lat"}, func(w string, iv hlogInterval) error {
		wl = w
		end, start := snap(ticks, iv.EndMs), snap(ticks, iv.StartMs)
		startOf[end] = start
		if iv.Hist == nil {
			return nil
		}
		if end != curEnd {
			flush()
			curEnd = end
		}
		mergePacked(cur, iv.Hist)
		return nil
	})
	if err != nil {
		return err
	}
	flush()
	return nil
}

// distributionOf samples h at Q = 1 - 10^(-i/10), i = 0, 1, ..., while 1/(1-Q)
// stays within the count, then at the maximum (Q = 1).
func distributionOf(h *hdr.Histogram) []QuantilePoint {
	n := h.TotalCount()
	var pts []QuantilePoint
	for i := 0; ; i++ {
		q := 1 - math.Pow(10, -float64(i)/10)
		if 1/(1-q) > float64(n) {
			break
		}
		pts = append(pts, QuantilePoint{Q: q, Ms: nsToMs(float64(h.ValueAtQuantile(q * 100)))})
	}
	return append(pts, QuantilePoint{Q: 1, Ms: nsToMs(float64(h.Max()))})
}

// snap puts a time read from a log back on the tick it stands for: the float sum
// of the log's times can fall a millisecond short of it.
func snap(ticks map[int64]bool, ms int64) int64 {
	if !ticks[ms] && ticks[ms+1] {
		return ms + 1
	}
	return ms
}
