package results

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math"
	"os"
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
	Latency  Percentiles // of successes, from the intended start, merged exactly
}

// Rate is successes per second of the interval.
func (p SeriesPoint) Rate() float64 {
	if p.Seconds <= 0 {
		return 0
	}
	return float64(p.Count) / p.Seconds
}

// Series reads the run directory dir as one point per workload and interval,
// sorted by workload and time. The first interval runs from the start in
// summary.json (one second when there is none). Counts come from intervals.jsonl; latency from
// the interval logs, merged one interval at a time (memory stays at one
// histogram however long the run).
func Series(dir string) ([]SeriesPoint, error) {
	lines, err := ReadIntervals(dir)
	if err != nil {
		return nil, err
	}
	type key struct {
		wl string
		t  int64
	}
	points := map[key]*SeriesPoint{}
	ticks := map[int64]bool{}
	var allTicks []int64
	for _, l := range lines {
		if !ticks[l.T] {
			ticks[l.T] = true
			allTicks = append(allTicks, l.T)
		}
		k := key{l.Workload, l.T}
		p := points[k]
		if p == nil {
			p = &SeriesPoint{T: time.UnixMilli(l.T), Workload: l.Workload}
			points[k] = p
		}
		p.Count += l.Count
		p.Late += l.Late
		p.Dropped += l.Dropped
		for cl, n := range l.Errors {
			if n == 0 {
				continue
			}
			if p.ByClass == nil {
				p.ByClass = map[Class]int64{}
			}
			p.ByClass[cl] += n
			p.Errors += n
		}
	}
	slices.Sort(allTicks)
	// An interval's length: from the tick before it (of any workload).
	prev := map[int64]int64{}
	for i, t := range allTicks {
		if i > 0 {
			prev[t] = allTicks[i-1]
		}
	}

	err = eachLatencyLog(dir, ticks, func(wl string, end int64, h *hdr.Histogram) {
		k := key{wl, end}
		p := points[k]
		if p == nil { // latency without a line in intervals.jsonl: a crash between the two writes
			p = &SeriesPoint{T: time.UnixMilli(end), Workload: wl}
			points[k] = p
		}
		p.Latency = percentilesOf(h)
	})
	if err != nil {
		return nil, err
	}

	var start int64
	if s, err := ReadSummary(filepath.Join(dir, "summary.json")); err == nil {
		start = s.Start.UnixMilli()
	}
	out := make([]SeriesPoint, 0, len(points))
	for _, p := range points {
		t := p.T.UnixMilli()
		switch pt, ok := prev[t]; {
		case ok:
			p.Seconds = float64(t-pt) / 1000
		case start > 0 && start < t:
			p.Seconds = float64(t-start) / 1000 // the first interval, from the run's start
		default:
			p.Seconds = 1 // no summary: the recorder's interval
		}
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b SeriesPoint) int {
		return cmp.Or(cmp.Compare(a.Workload, b.Workload), a.T.Compare(b.T))
	})
	return out, nil
}

// eachLatencyLog calls f with each workload's latency histogram of each
// interval, merged over the interval's operations and nodes, interval by
// interval, reading the interval logs of dir in name order.
func eachLatencyLog(dir string, ticks map[int64]bool, f func(workload string, end int64, h *hdr.Histogram)) error {
	logs, err := filepath.Glob(filepath.Join(dir, "*.hlog"))
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	slices.Sort(logs)
	cur := newHist()
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
		wl := hlogWorkload(path, b)
		rd := hdr.NewHistogramLogReader(bytes.NewReader(latencyLines(b)))
		curEnd := int64(-1)
		flush := func() {
			if curEnd >= 0 && cur.TotalCount() > 0 {
				f(wl, curEnd, cur)
			}
			cur.Reset()
		}
		for {
			h, err := rd.NextIntervalHistogram()
			if err != nil {
				return fmt.Errorf("results: read %s: %w", path, err)
			}
			if h == nil {
				break
			}
			kind, _, _, ok := parseTag(h.Tag())
			if !ok || kind != "lat" {
				continue
			}
			end := h.EndTimeMs()
			if !ticks[end] && ticks[end+1] {
				end++ // the reader's float sum can fall a millisecond short of the tick
			}
			if end != curEnd {
				flush()
				curEnd = end
			}
			merge(cur, h)
		}
		flush()
	}
	return nil
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

// Distributions reads the interval logs of dir and returns, for each window
// (in the order given) and each workload, the latency distribution of the
// successes merged over operations and nodes. Intervals belong to windows as
// in WindowStats. Empty distributions are left out.
func Distributions(dir string, windows []Window) ([]Distribution, error) {
	lines, err := ReadIntervals(dir)
	if err != nil {
		return nil, err
	}
	ticks := map[int64]bool{}
	for _, l := range lines {
		ticks[l.T] = true
	}
	acc := newWindowAcc(windows)
	type key struct {
		wi int
		wl string
	}
	hists := map[key]*hdr.Histogram{}
	err = eachLatencyLog(dir, ticks, func(wl string, end int64, h *hdr.Histogram) {
		for _, wi := range acc.in(end) {
			k := key{wi, wl}
			d := hists[k]
			if d == nil {
				d = newHist()
				hists[k] = d
			}
			merge(d, h)
		}
	})
	if err != nil {
		return nil, err
	}
	keys := slices.SortedFunc(maps.Keys(hists), func(a, b key) int { return cmp.Or(cmp.Compare(a.wi, b.wi), cmp.Compare(a.wl, b.wl)) })
	out := make([]Distribution, 0, len(keys))
	for _, k := range keys {
		h := hists[k]
		out = append(out, Distribution{Window: windows[k.wi].Name, Workload: k.wl, Count: h.TotalCount(), Points: distributionOf(h)})
	}
	return out, nil
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

// latencyLines drops the service-time and error histograms from an interval
// log's text before it is decoded: the reader decodes every line into a
// histogram of its own, and two thirds of them would be thrown away.
func latencyLines(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		if !bytes.HasPrefix(line, []byte("Tag=svc/")) && !bytes.HasPrefix(line, []byte("Tag=err/")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
		b = rest
	}
	return out
}
