package results

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// This file reads a run directory back: the per-second interval logs
// (<workload>.hlog) and intervals.jsonl, merged by time window, so that a
// run's latency, errors and schedule slips can be split by phase after the
// fact.

// Window is a named span of a run (a phase, a fault window) to merge the
// intervals of.
type Window struct {
	Name  string
	Start time.Time
	End   time.Time
}

// IntervalLine is one line of intervals.jsonl: one key's figures over one
// interval (normally a second). T is the end of the interval in unix ms;
// Count the successes; Errors the failures by class (canceled excluded,
// counted in Canceled); Late and Dropped the schedule slips; P50Ms, P99Ms
// and MaxMs the latency of the successes, from the intended start. A line is
// written for every key that saw anything in the interval.
type IntervalLine = intervalLine

// Time is the end of the interval.
func (l intervalLine) Time() time.Time { return time.UnixMilli(l.T) }

// ErrorsTotal is the number of failures of the interval (canceled excluded).
func (l intervalLine) ErrorsTotal() int64 {
	var n int64
	for _, e := range l.Errors {
		n += e
	}
	return n
}

// WindowStat is one workload x op x node's figures over one window, merged
// from the intervals that belong to the window. Op "" is every op of the
// workload; Node 0 with any Op is every node of the workload merged (a
// workload whose only node is 0, a load balancer, has the same figures
// either way; one that mixes node 0 with real nodes has no separate figures
// for node 0 at Op "").
type WindowStat struct {
	Window    string          `json:"window"`
	Workload  string          `json:"workload"`
	Op        string          `json:"op"`
	Node      int             `json:"node"`
	Seconds   float64         `json:"seconds"` // the window's length
	Count     int64           `json:"count"`   // successes
	Rate      float64         `json:"rate"`    // successes per second of the window
	Errors    int64           `json:"errors"`  // failures, canceled excluded
	ByClass   map[Class]int64 `json:"by_class,omitempty"`
	Canceled  int64           `json:"canceled,omitempty"`
	Late      int64           `json:"late"`
	Dropped   int64           `json:"dropped"`
	Intervals int             `json:"intervals"` // intervals of the key(s) merged in
	Latency   Percentiles     `json:"latency"`   // of successes, from the intended start
	Service   Percentiles     `json:"service"`   // of successes, from the actual start
	// Memory is the per-query peak memory of the window's successes, in bytes,
	// from the mem/<op>/n<node> histograms; nil when none was measured.
	Memory *BytePercentiles `json:"memory,omitempty"`
	// Returned is the bytes each of the window's successes returned to the
	// client, from the ret/<op>/n<node> histograms, and ReturnedTotal their sum,
	// from intervals.jsonl; nil and 0 when none was measured.
	Returned      *BytePercentiles `json:"returned,omitempty"`
	ReturnedTotal int64            `json:"returned_total_bytes,omitempty"`
}

// WindowStats reads the interval logs and intervals.jsonl of the run
// directory dir and merges them by window.
//
// An interval belongs to a window when its end falls in (Start, End]: the
// recorder closes an interval at each tick, and an interval that ends exactly
// at a window's end belongs to it, not to the window that starts there. With
// windows that do not start on a tick, an interval that straddles the start
// is counted whole in the window it ends in (up to one interval of smear).
// Windows may overlap (a fault window inside a phase): an interval then
// belongs to each.
//
// The result has, for every window (in the order given) and every key the
// run recorded (whether or not it saw anything in that window): the key
// (workload, op, node), the op merged over nodes (node 0), the stream
// (workload, op "", node) and the workload (op "", node 0); sorted by
// window, workload, op, node. Counts, errors, late and dropped come from
// intervals.jsonl; latency from the histograms of the interval logs, merged
// exactly.
func WindowStats(dir string, windows []Window) ([]WindowStat, error) {
	acc, err := readWindows(dir, windows)
	if err != nil {
		return nil, err
	}
	return acc.stats(), nil
}

// readWindows reads the run directory dir's intervals.jsonl and interval logs
// into their windows: what WindowStats and WriteHGRM merge.
func readWindows(dir string, windows []Window) (*windowAcc, error) {
	for _, w := range windows {
		if w.End.Before(w.Start) {
			return nil, fmt.Errorf("results: window %q ends (%s) before it starts (%s)", w.Name, w.End.Format(time.RFC3339Nano), w.Start.Format(time.RFC3339Nano))
		}
	}
	lines, err := ReadIntervals(dir)
	if err != nil {
		return nil, err
	}
	acc := newWindowAcc(windows)
	ticks := map[int64]bool{} // the end of every interval, exact (ms)
	opOf := map[[2]string]string{}
	for _, l := range lines {
		ticks[l.T] = true
		opOf[[2]string{l.Workload, tagSafe(l.Op)}] = l.Op
		k := Key{Workload: l.Workload, Op: l.Op, Node: l.Node}
		acc.keys[k] = true
		for _, wi := range acc.in(l.T) {
			c := acc.cell(wi, k)
			c.count += l.Count
			c.late += l.Late
			c.dropped += l.Dropped
			c.canceled += l.Canceled
			c.returned += l.ReturnedTotal
			c.intervals++
			c.errors += AddCounts(&c.byClass, l.Errors)
		}
	}

	logs, err := filepath.Glob(filepath.Join(dir, "*.hlog"))
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	slices.Sort(logs)
	for _, path := range logs {
		if err := acc.readLog(path, ticks, opOf); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// ReadIntervals reads <dir>/intervals.jsonl, in the order written (see
// ReadJSONLines).
func ReadIntervals(dir string) ([]IntervalLine, error) {
	return ReadJSONLines[IntervalLine](filepath.Join(dir, "intervals.jsonl"))
}

// ReadJSONLines reads a file of one JSON value per line, as the run's .jsonl
// files are written. A last line cut short (a run that died mid-write) is
// ignored; any other bad line is an error naming the file and line. A missing
// file is an error that is os.ErrNotExist to errors.Is.
func ReadJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	defer f.Close()
	var out []T
	br := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("results: read %s: %w", path, err)
		}
		last := err == io.EOF
		if len(bytes.TrimSpace(b)) > 0 {
			var v T
			if jerr := json.Unmarshal(b, &v); jerr != nil {
				if last {
					break // cut short by a crash
				}
				return nil, fmt.Errorf("results: %s line %d: %w", path, n, jerr)
			}
			out = append(out, v)
		}
		if last {
			break
		}
	}
	return out, nil
}

// hlogWorkloadRE finds the workload's name in the comment the recorder writes
// at the top of an interval log.
var hlogWorkloadRE = regexp.MustCompile(`^#\[htapchaos interval log: workload ("(?:[^"\\]|\\.)*")`)

// hlogWorkload returns the workload an interval log belongs to: the name in
// its header comment, or the file's name without .hlog.
func hlogWorkload(path string, b []byte) string {
	for len(b) > 0 && b[0] == '#' {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		if m := hlogWorkloadRE.FindSubmatch(line); m != nil {
			if w, err := strconv.Unquote(string(m[1])); err == nil {
				return w
			}
		}
		b = rest
	}
	return strings.TrimSuffix(filepath.Base(path), ".hlog")
}

// windowAcc accumulates the intervals of every key by window.
type windowAcc struct {
	windows []Window
	startMs []int64
	endMs   []int64
	keys    map[Key]bool
	cells   []map[Key]*windowCell // by window
}

// windowCell is one key's figures in one window.
type windowCell struct {
	count, errors, canceled, late, dropped int64
	returned                               int64 // bytes returned, summed
	intervals                              int
	byClass                                map[Class]int64
	lat, svc, mem, ret                     *hdr.Histogram // nil until a histogram comes
}

func newWindowAcc(windows []Window) *windowAcc {
	a := &windowAcc{windows: windows, keys: map[Key]bool{}}
	for _, w := range windows {
		a.startMs = append(a.startMs, w.Start.UnixMilli())
		a.endMs = append(a.endMs, w.End.UnixMilli())
		a.cells = append(a.cells, map[Key]*windowCell{})
	}
	return a
}

// in returns the windows an interval ending at endMs belongs to.
func (a *windowAcc) in(endMs int64) []int {
	var out []int
	for i := range a.windows {
		if endMs > a.startMs[i] && endMs <= a.endMs[i] {
			out = append(out, i)
		}
	}
	return out
}

func (a *windowAcc) cell(wi int, k Key) *windowCell {
	c := a.cells[wi][k]
	if c == nil {
		c = &windowCell{}
		a.cells[wi][k] = c
	}
	return c
}

// readLog merges the latency, service-time, memory and returned-bytes
// histograms of one interval log into the windows. Interval times, read as the library's reader reads them,
// are truncated to the millisecond from a float sum, which can be one
// millisecond short of the tick; ticks, the exact ends of intervals.jsonl, put
// them back.
func (a *windowAcc) readLog(path string, ticks map[int64]bool, opOf map[[2]string]string) error {
	return eachLogInterval(path, []string{"lat", "svc", "mem", "ret"}, func(wl string, iv hlogInterval) error {
		if iv.Hist == nil {
			return nil
		}
		kind, op, node, _ := parseTag(iv.Tag)
		if o, ok := opOf[[2]string{wl, op}]; ok {
			op = o
		}
		k := Key{Workload: wl, Op: op, Node: node}
		a.keys[k] = true
		for _, wi := range a.in(snap(ticks, iv.EndMs)) {
			c := a.cell(wi, k)
			dst, mk := &c.lat, newHist
			switch kind {
			case "svc":
				dst = &c.svc
			case "mem":
				dst = &c.mem
			case "ret":
				dst, mk = &c.ret, newByteHist
			}
			if *dst == nil {
				*dst = mk()
			}
			mergePacked(*dst, iv.Hist)
		}
		return nil
	})
}

// parseTag splits an interval log tag, <kind>/<op>/n<node>.
func parseTag(tag string) (kind, op string, node int, ok bool) {
	kind, rest, ok1 := strings.Cut(tag, "/")
	i := strings.LastIndex(rest, "/")
	if !ok1 || i < 0 || !strings.HasPrefix(rest[i+1:], "n") {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(rest[i+2:])
	if err != nil {
		return "", "", 0, false
	}
	return kind, rest[:i], n, true
}

// stats builds the result: every key in every window, then the merged
// levels.
func (a *windowAcc) stats() []WindowStat {
	keys := make([]Key, 0, len(a.keys))
	for k := range a.keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)

	var out []WindowStat
	for wi, w := range a.windows {
		groups := map[Key]*windowCell{} // merged levels
		var order []Key
		add := func(g Key, c *windowCell) {
			m := groups[g]
			if m == nil {
				m = &windowCell{}
				groups[g] = m
				order = append(order, g)
			}
			if c != nil {
				m.add(c)
			}
		}
		for _, k := range keys {
			c := a.cells[wi][k]
			if k.Node != 0 {
				add(k, c)
			}
			add(Key{Workload: k.Workload, Op: k.Op}, c)
			if k.Node != 0 {
				add(Key{Workload: k.Workload, Node: k.Node}, c)
			}
			add(Key{Workload: k.Workload}, c)
		}
		secs := w.End.Sub(w.Start).Seconds()
		for _, g := range order {
			out = append(out, groups[g].stat(w.Name, g, secs))
		}
		start := len(out) - len(order)
		slices.SortFunc(out[start:], func(x, y WindowStat) int {
			return cmp.Or(cmp.Compare(x.Workload, y.Workload), cmp.Compare(x.Op, y.Op), cmp.Compare(x.Node, y.Node))
		})
	}
	return out
}

// add merges o into c.
func (c *windowCell) add(o *windowCell) {
	c.count += o.count
	c.errors += o.errors
	c.canceled += o.canceled
	c.late += o.late
	c.dropped += o.dropped
	c.returned += o.returned
	c.intervals += o.intervals
	AddCounts(&c.byClass, o.byClass)
	for _, p := range [...]struct {
		dst **hdr.Histogram
		src *hdr.Histogram
		mk  func() *hdr.Histogram
	}{{&c.lat, o.lat, newHist}, {&c.svc, o.svc, newHist}, {&c.mem, o.mem, newHist}, {&c.ret, o.ret, newByteHist}} {
		if p.src == nil {
			continue
		}
		if *p.dst == nil {
			*p.dst = p.mk()
		}
		merge(*p.dst, p.src)
	}
}

func (c *windowCell) stat(window string, k Key, secs float64) WindowStat {
	s := WindowStat{
		Window:    window,
		Workload:  k.Workload,
		Op:        k.Op,
		Node:      k.Node,
		Seconds:   secs,
		Count:     c.count,
		Errors:    c.errors,
		ByClass:   c.byClass,
		Canceled:  c.canceled,
		Late:      c.late,
		Dropped:   c.dropped,
		Intervals: c.intervals,
		Latency:   percentilesOf(c.lat),
		Service:   percentilesOf(c.svc),
		Memory:    bytePercentilesOf(c.mem),
		Returned:  bytePercentilesOf(c.ret),
	}
	if s.Returned != nil {
		s.ReturnedTotal = c.returned
	}
	if secs > 0 {
		s.Rate = float64(c.count) / secs
	}
	return s
}
