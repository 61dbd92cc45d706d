package results

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Key names what a Handle measures.
type Key struct {
	Workload string // e.g. "oltp"
	Op       string // e.g. "point-read"; short kebab-case
	Node     int    // 1-based node index the op was routed to; 0 = not a node (e.g. a load balancer)
	// Access is what the op declares it does: Read or Write (changes data). Its
	// gaps are kept per (workload, node, access) and cluster-wide per access. ""
	// counts as Read.
	Access Access
}

// Access is the kind of access an operation declares: a read, or a write (it
// changes data). Write availability is measured on its own: on Galera a frozen
// member stalls every commit of the cluster while reads go on, and a gap per
// stream of all ops would hide that behind the reads.
type Access string

const (
	Read  Access = "read"
	Write Access = "write"
)

// Accesses lists the access kinds, reads first.
var Accesses = []Access{Read, Write}

// orRead is a, or Read when a is unset.
func (a Access) orRead() Access {
	if a == "" {
		return Read
	}
	return a
}

// Options configures a Recorder. Zero values take the defaults.
type Options struct {
	Dir           string        // run directory; "" = keep everything in memory, write no files
	Start         time.Time     // run start; hlog StartTime/BaseTime; zero = time of NewRecorder
	Interval      time.Duration // informational (the caller ticks); default 1s
	GapThreshold  time.Duration // default 500ms: shortest window without success reported as a gap
	LateThreshold time.Duration // default 10ms: an op that started more than this after its intended time is "late"
	// Observer, when set, is given every closed interval's per-key figures (a
	// live metrics endpoint). Nil: nobody is told.
	Observer Observer
	// Export, when set, is given the raw data of every interval Tick and
	// Close close, for another Recorder to Ingest. It is called with the
	// recorder locked: it must only enqueue the frame, which it may keep.
	Export func(*IntervalFrame)
}

// Observer watches a Recorder's intervals as they close.
type Observer interface {
	// ObserveInterval gets the figures of every key over the interval just
	// closed, in key order. It is called by Tick and Close with the recorder
	// locked: it must be quick, must not keep ivs past the call, and must not
	// call the Recorder.
	ObserveInterval(ivs []KeyInterval)
}

// StreamObserver is an Observer that is also told, after each interval, the
// state of every stream: per (workload, node, access) and cluster-wide per
// access (a live gap gauge).
type StreamObserver interface {
	Observer
	// ObserveStreams gets the streams sorted by workload, node and access,
	// then the cluster-wide ones. Same rules as ObserveInterval.
	ObserveStreams(now time.Time, streams []StreamState)
}

// KeyInterval is one key's figures over one closed interval, for an Observer.
type KeyInterval struct {
	Key        Key
	Start, End time.Time
	Count      int64           // successes
	Errors     map[Class]int64 // by class, canceled excluded; nil when there were none
	Canceled   int64
	Late       int64
	Dropped    int64
	// Latency of the successes, from their intended start; zero when Count is 0.
	// Sum is their sum (from the histogram: within its 0.1%).
	P50, P99, P999, Max, Sum time.Duration
}

// Defaults.
const (
	defaultInterval      = time.Second
	defaultGapThreshold  = 500 * time.Millisecond
	defaultLateThreshold = 10 * time.Millisecond
)

// Interval is what Tick returns about the interval it closed: the figures for
// a live progress line.
type Interval struct {
	Start, End                 time.Time
	Ops, Errors, Late, Dropped int64         // summed over keys (Errors excludes canceled)
	P99                        time.Duration // p99 latency of successes over all keys in this interval
	ByWorkload                 map[string]IntervalStats
}

// IntervalStats are the figures of one workload in an Interval.
type IntervalStats struct {
	Ops, Errors, Late, Dropped int64
	P99                        time.Duration
}

// errClosed is returned by Tick after Close.
var errClosed = errors.New("results: recorder is closed")

// Recorder records the measurements of one run. Handle, and the Record and
// Dropped methods of the handles, are safe for concurrent use; Tick, Close and
// Summary are serialised with each other (they are meant to be called from
// the runner's clock).
type Recorder struct {
	dir      string
	start    time.Time
	interval time.Duration
	gapThr   time.Duration
	lateThr  time.Duration
	baseMs   int64 // start in ms, truncated to whole seconds (hlog BaseTime)
	startMs  int64

	hmu     sync.RWMutex // guards the fields below
	handles map[Key]*Handle
	sorted  []*Handle // handles sorted by key; nil when stale
	streams map[streamKey]*GapTracker
	cluster map[Access]*GapTracker // per access over every workload and node
	hclosed bool
	// memUnavailable: why per-query memory was not measured (first reason).
	memUnavailable string

	mu        sync.Mutex // serialises Tick, Close and Summary; guards the fields below
	closed    bool
	lastTick  time.Time
	final     *Summary
	finalErr  error
	all       *hdr.Histogram            // scratch: this interval's latency over all keys
	byWL      map[string]*hdr.Histogram // scratch: this interval's latency per workload
	jsonl     *os.File
	jsonlW    *bufio.Writer
	hlogs     map[string]*hlogFile // by workload
	hlogNames map[string]bool      // file names taken
	retired   []*counts            // scratch
	enc       hlogEncoder          // writes the interval log lines
	observer  Observer
	observed  []KeyInterval // scratch for the observer

	export  func(*IntervalFrame) // Options.Export
	expKeys []KeyFrame           // scratch: the keys of the frame being built
	others  [][]OtherError       // scratch: per retired handle, the class-other counts new in it
	held    []streamEvent        // ingested stream events not applied yet (see Ingest)
}

// hlogFile is the interval log of one workload.
type hlogFile struct {
	f  *os.File
	w  *bufio.Writer
	lw *hdr.HistogramLogWriter // writes the header; the intervals go through Recorder.enc
}

// Handle records the operations of one Key. Get it from Recorder.Handle.
type Handle struct {
	r       *Recorder
	key     Key
	s       *GapTracker // the handle's stream (workload, node, access)
	cs      *GapTracker // the cluster-wide stream of its access (shared by every handle)
	lateThr time.Duration
	tags    [5]string // lat, svc, err, mem, ret tags in the interval log

	mu     sync.Mutex // guards the fields below
	closed bool
	cur    *counts      // the open interval
	other  []OtherError // cumulative, class other, by first appearance

	// Touched only under r.mu.
	spare     *counts                 // the next interval, reset
	cum       counts                  // cumulative, up to the last Tick
	otherSent []OtherError            // h.other as of the last exported frame
	agents    map[string]*agentCounts // ingested: each agent's part of cur, by tag
}

// counts are the measurements of one key over an interval, or cumulative.
type counts struct {
	lat, svc, err *hdr.Histogram // err is allocated on the first error
	mem           *hdr.Histogram // per-query peak memory in bytes; allocated on the first RecordMemory
	ret           *hdr.Histogram // bytes returned per operation (newByteHist); allocated on the first RecordReturned
	retBytes      int64          // the sum of the bytes returned
	ok            int64
	late          int64
	dropped       int64
	errs          [numClasses]int64 // by classIndex; errs[idxCanceled] is the canceled count
}

func newCounts() *counts { return &counts{lat: newHist(), svc: newHist()} }

// errorsTotal is the number of errors, canceled excluded.
func (c *counts) errorsTotal() int64 {
	var n int64
	for i, e := range c.errs {
		if i != idxCanceled {
			n += e
		}
	}
	return n
}

func (c *counts) active() bool {
	if c.ok != 0 || c.late != 0 || c.dropped != 0 {
		return true
	}
	for _, e := range c.errs {
		if e != 0 {
			return true
		}
	}
	return false
}

// add adds o into c.
func (c *counts) add(o *counts) {
	merge(c.lat, o.lat)
	merge(c.svc, o.svc)
	if o.err != nil && o.err.TotalCount() > 0 {
		if c.err == nil {
			c.err = newHist()
		}
		merge(c.err, o.err)
	}
	if o.mem != nil && o.mem.TotalCount() > 0 {
		if c.mem == nil {
			c.mem = newHist()
		}
		merge(c.mem, o.mem)
	}
	if o.ret != nil && o.ret.TotalCount() > 0 {
		if c.ret == nil {
			c.ret = newByteHist()
		}
		merge(c.ret, o.ret)
	}
	c.retBytes += o.retBytes
	c.ok += o.ok
	c.late += o.late
	c.dropped += o.dropped
	for i := range c.errs {
		c.errs[i] += o.errs[i]
	}
}

// reset empties c, keeping its histograms for reuse.
func (c *counts) reset() {
	for _, h := range []*hdr.Histogram{c.lat, c.svc, c.err, c.mem, c.ret} {
		if h != nil && h.TotalCount() != 0 {
			h.Reset()
		}
	}
	c.ok, c.late, c.dropped, c.retBytes = 0, 0, 0, 0
	c.errs = [numClasses]int64{}
}

// NewRecorder returns a Recorder. With a Dir, it creates the directory if
// needed and opens intervals.jsonl in it (truncating an existing one).
func NewRecorder(o Options) (*Recorder, error) {
	if o.Interval < 0 || o.GapThreshold < 0 || o.LateThreshold < 0 {
		return nil, fmt.Errorf("results: negative Interval, GapThreshold or LateThreshold in %+v", o)
	}
	if o.Start.IsZero() {
		o.Start = time.Now()
	}
	if o.Interval == 0 {
		o.Interval = defaultInterval
	}
	if o.GapThreshold == 0 {
		o.GapThreshold = defaultGapThreshold
	}
	if o.LateThreshold == 0 {
		o.LateThreshold = defaultLateThreshold
	}
	startMs := o.Start.UnixMilli()
	r := &Recorder{
		dir:       o.Dir,
		start:     o.Start,
		interval:  o.Interval,
		gapThr:    o.GapThreshold,
		lateThr:   o.LateThreshold,
		startMs:   startMs,
		baseMs:    startMs - startMs%1000, // BaseTime is written in whole seconds
		handles:   map[Key]*Handle{},
		streams:   map[streamKey]*GapTracker{},
		cluster:   map[Access]*GapTracker{},
		lastTick:  o.Start,
		all:       newHist(),
		byWL:      map[string]*hdr.Histogram{},
		hlogs:     map[string]*hlogFile{},
		hlogNames: map[string]bool{},
		observer:  o.Observer,
		export:    o.Export,
	}
	if r.dir != "" {
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, fmt.Errorf("results: create run directory: %w", err)
		}
		f, err := os.Create(filepath.Join(r.dir, "intervals.jsonl"))
		if err != nil {
			return nil, fmt.Errorf("results: %w", err)
		}
		r.jsonl, r.jsonlW = f, bufio.NewWriterSize(f, 64<<10)
	}
	return r, nil
}

// Handle returns the handle of k, creating it on first use. The same Key
// always gives the same *Handle. Safe for concurrent use; cheap to call
// again. A handle obtained after Close records nothing.
func (r *Recorder) Handle(k Key) *Handle {
	k.Access = k.Access.orRead()
	r.hmu.RLock()
	h, ok := r.handles[k]
	r.hmu.RUnlock()
	if ok {
		return h
	}
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if h, ok := r.handles[k]; ok {
		return h
	}
	sk := streamKey{Workload: k.Workload, Node: k.Node, Access: k.Access}
	s := r.streams[sk]
	if s == nil {
		s = r.newStream(sk)
		r.streams[sk] = s
	}
	cs := r.cluster[k.Access]
	if cs == nil {
		cs = r.newStream(streamKey{Access: k.Access})
		r.cluster[k.Access] = cs
	}
	op := tagSafe(k.Op)
	h = &Handle{
		r:       r,
		key:     k,
		s:       s,
		cs:      cs,
		lateThr: r.lateThr,
		tags: [5]string{
			fmt.Sprintf("lat/%s/n%d", op, k.Node),
			fmt.Sprintf("svc/%s/n%d", op, k.Node),
			fmt.Sprintf("err/%s/n%d", op, k.Node),
			fmt.Sprintf("mem/%s/n%d", op, k.Node),
			fmt.Sprintf("ret/%s/n%d", op, k.Node),
		},
		closed: r.hclosed,
		cur:    newCounts(),
		spare:  newCounts(),
		cum:    counts{lat: newHist(), svc: newHist()},
	}
	r.handles[k] = h
	r.sorted = nil
	return h
}

// Record records one operation: intended is when the schedule wanted it to
// start, started when it did start, ended when it completed; err nil means
// success. The operation is late when it started more than
// Options.LateThreshold after intended, whether it succeeded or failed; a
// canceled operation (context.Canceled: our own shutdown) is only counted as
// canceled. Safe for concurrent use. After Close it does nothing.
func (h *Handle) Record(intended, started, ended time.Time, err error) {
	late := started.Sub(intended) > h.lateThr
	if err == nil {
		lat, svc := ended.Sub(intended), ended.Sub(started)
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		c := h.cur
		record(c.lat, lat)
		record(c.svc, svc)
		c.ok++
		if late {
			c.late++
		}
		h.mu.Unlock()
		// The streams have locks of their own; the cluster-wide one is shared by
		// every handle, so it is not taken under the handle's lock.
		h.s.Success(ended, late)
		h.cs.Success(ended, late)
		return
	}
	h.recordError(intended, ended, late, Classify(err))
}

// RecordMemory records the peak memory one successful query of the key used,
// in bytes, as the server accounts for it (see loadgen's Op.Memory). Values are
// kept in an HDR histogram of the same geometry as latency's, read as bytes (1
// kB to 3.6 TB, 3 significant digits); a value under 1 kB counts as 1 kB. Safe
// for concurrent use. After Close it does nothing.
func (h *Handle) RecordMemory(bytes int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	c := h.cur
	if c.mem == nil {
		c.mem = newHist()
	}
	recordBytes(c.mem, bytes)
}

// RecordReturned records the bytes one successful operation of the key read
// from its connection: the result the server sent to the client (see
// loadgen's workerConn). Values are kept in a histogram of bytes exact to the
// byte up to 2 kB and within 0.1% above (0 B to 1 TiB), and summed exactly.
// Safe for concurrent use. After Close it does nothing.
func (h *Handle) RecordReturned(bytes int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	c := h.cur
	if c.ret == nil {
		c.ret = newByteHist()
	}
	recordReturned(c.ret, bytes)
	c.retBytes += max(bytes, 0)
}

// MemoryUnavailable says why per-query memory could not be measured (the
// server has no such accounting, or reading it failed): the first reason given
// is kept for the summary (Summary.MemoryUnavailable); later ones are dropped.
// Safe for concurrent use.
func (r *Recorder) MemoryUnavailable(reason string) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if r.memUnavailable == "" {
		r.memUnavailable = reason
	}
}

func (h *Handle) recordError(intended, ended time.Time, late bool, info ErrorInfo) {
	i := classIndex(info.Class)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	c := h.cur
	c.errs[i]++
	if i == idxCanceled {
		h.mu.Unlock()
		return // our own shutdown: counted apart, nothing else
	}
	if c.err == nil {
		c.err = newHist()
	}
	record(c.err, ended.Sub(intended))
	if late {
		c.late++
	}
	if i == classIndex(ClassOther) {
		h.addOther(info)
	}
	h.mu.Unlock()
	h.s.Failure(ended, late)
	h.cs.Failure(ended, late)
}

// maxOtherNumbers caps the distinct server error numbers kept per key; the
// rest are folded into number 0.
const maxOtherNumbers = 20

// addOther counts an error of class other. Called with h.mu held.
func (h *Handle) addOther(info ErrorInfo) {
	for i := range h.other {
		if h.other[i].Number == info.Number {
			h.other[i].Count++
			return
		}
	}
	n, msg := info.Number, info.Message
	if len(h.other) >= maxOtherNumbers {
		n, msg = 0, "more"
		for i := range h.other {
			if h.other[i].Number == 0 {
				h.other[i].Count++
				return
			}
		}
	}
	h.other = append(h.other, OtherError{Number: n, Count: 1, Message: msg})
}

// Dropped records an operation that never started because the in-flight
// bound was reached. Safe for concurrent use. After Close it does nothing.
func (h *Handle) Dropped(intended time.Time) {
	h.mu.Lock()
	if !h.closed {
		h.cur.dropped++
	}
	h.mu.Unlock()
}

// list returns the handles sorted by key.
func (r *Recorder) list() []*Handle {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if r.sorted == nil {
		r.sorted = make([]*Handle, 0, len(r.handles))
		for _, h := range r.handles {
			r.sorted = append(r.sorted, h)
		}
		slices.SortFunc(r.sorted, func(a, b *Handle) int { return compareKeys(a.key, b.key) })
	}
	return r.sorted
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Op, b.Op), cmp.Compare(a.Node, b.Node), cmp.Compare(a.Access, b.Access))
}

// Tick closes the interval that ends at now: it returns the interval's
// figures, and with a Dir appends the interval to the logs and flushes them.
// Measurements are kept even when writing fails; the error is returned.
func (r *Recorder) Tick(now time.Time) (Interval, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Interval{}, errClosed
	}
	return r.tick(now)
}

func (r *Recorder) tick(now time.Time) (Interval, error) {
	hs := r.list()
	// Swap every handle's interval for its spare first, so that all keys
	// close the interval at (nearly) the same instant.
	r.retired = r.retired[:0]
	r.others = r.others[:0]
	for _, h := range hs {
		sp := h.spare
		if sp == nil {
			sp = newCounts()
		}
		h.mu.Lock()
		ret := h.cur
		h.cur = sp
		if r.export != nil {
			r.others = append(r.others, h.otherDelta())
		}
		h.mu.Unlock()
		h.spare = nil
		r.retired = append(r.retired, ret)
	}

	iv := Interval{Start: r.lastTick, End: now, ByWorkload: map[string]IntervalStats{}}
	if r.all.TotalCount() != 0 {
		r.all.Reset()
	}
	for _, wh := range r.byWL {
		if wh.TotalCount() != 0 {
			wh.Reset()
		}
	}
	var errs []error
	startMs, endMs := r.lastTick.UnixMilli(), now.UnixMilli()
	endMs = max(endMs, startMs) // a clock that went back must not write a negative interval
	for i, h := range hs {
		c := r.retired[i]
		w := h.key.Workload
		h.cum.add(c)
		wh := r.byWL[w]
		if wh == nil {
			wh = newHist()
			r.byWL[w] = wh
		}
		merge(wh, c.lat)
		et := c.errorsTotal()
		iv.Ops += c.ok
		iv.Errors += et
		iv.Late += c.late
		iv.Dropped += c.dropped
		ws := iv.ByWorkload[w]
		ws.Ops += c.ok
		ws.Errors += et
		ws.Late += c.late
		ws.Dropped += c.dropped
		iv.ByWorkload[w] = ws

		if r.dir != "" {
			if err := r.writeInterval(h, c, startMs, endMs); err != nil {
				errs = append(errs, err)
			}
		}
		if err := r.writeAgentIntervals(h, startMs, endMs); err != nil {
			errs = append(errs, err)
		}
		if r.export != nil {
			if err := r.exportKey(h, c, r.others[i]); err != nil {
				errs = append(errs, err)
			}
			r.others[i] = nil
		}
		if r.observer != nil {
			r.observed = append(r.observed, keyInterval(h.key, c, r.lastTick, now))
		}
		c.reset()
		h.spare = c
		r.retired[i] = nil
	}
	for w := range iv.ByWorkload {
		merge(r.all, r.byWL[w]) // over all keys: merged from the workloads
	}
	if r.observer != nil {
		r.observer.ObserveInterval(r.observed)
		clear(r.observed)
		r.observed = r.observed[:0]
		if so, ok := r.observer.(StreamObserver); ok {
			so.ObserveStreams(now, r.streamStates(now))
		}
	}
	iv.P99 = p99(r.all)
	for w, ws := range iv.ByWorkload {
		ws.P99 = p99(r.byWL[w])
		iv.ByWorkload[w] = ws
	}
	if r.export != nil {
		r.exportFrame(now)
	}
	if r.dir != "" {
		if err := r.flush(); err != nil {
			errs = append(errs, err)
		}
	}
	r.lastTick = now
	return iv, errors.Join(errs...)
}

// streamStates returns the state of every stream at now: the client streams
// in order, then the cluster-wide ones.
func (r *Recorder) streamStates(now time.Time) []StreamState {
	streams, cluster := r.allStreams()
	out := make([]StreamState, 0, len(streams)+len(cluster))
	for _, s := range append(streams, cluster...) {
		out = append(out, s.state(now))
	}
	return out
}

// allStreams returns the client streams sorted by workload, node and access,
// and the cluster-wide ones, reads first.
func (r *Recorder) allStreams() (streams, cluster []*GapTracker) {
	r.hmu.RLock()
	defer r.hmu.RUnlock()
	streams = make([]*GapTracker, 0, len(r.streams))
	for _, s := range r.streams {
		streams = append(streams, s)
	}
	slices.SortFunc(streams, func(a, b *GapTracker) int { return compareStreams(a.key, b.key) })
	for _, a := range Accesses {
		if s := r.cluster[a]; s != nil {
			cluster = append(cluster, s)
		}
	}
	return streams, cluster
}

// keyInterval is what an Observer is told about c, the interval of k.
func keyInterval(k Key, c *counts, start, end time.Time) KeyInterval {
	ki := KeyInterval{Key: k, Start: start, End: end, Count: c.ok, Canceled: c.errs[idxCanceled], Late: c.late, Dropped: c.dropped}
	for i, n := range c.errs {
		if n != 0 && i != idxCanceled {
			if ki.Errors == nil {
				ki.Errors = map[Class]int64{}
			}
			ki.Errors[Classes[i]] = n
		}
	}
	if c.lat.TotalCount() != 0 {
		ki.P50 = time.Duration(c.lat.ValueAtQuantile(50))
		ki.P99 = time.Duration(c.lat.ValueAtQuantile(99))
		ki.P999 = time.Duration(c.lat.ValueAtQuantile(99.9))
		ki.Max = time.Duration(c.lat.Max())
		ki.Sum = time.Duration(c.lat.Mean() * float64(c.lat.TotalCount()))
	}
	return ki
}

// intervalLine is one line of intervals.jsonl.
type intervalLine struct {
	T        int64           `json:"t"` // end of the interval, unix ms
	Workload string          `json:"workload"`
	Op       string          `json:"op"`
	Node     int             `json:"node"`
	Access   Access          `json:"access,omitempty"` // "" in files written before access kinds: read
	Count    int64           `json:"count"`
	Errors   map[Class]int64 `json:"errors"` // canceled excluded
	Canceled int64           `json:"canceled,omitempty"`
	Late     int64           `json:"late"`
	Dropped  int64           `json:"dropped"`
	P50Ms    float64         `json:"p50_ms"`
	P99Ms    float64         `json:"p99_ms"`
	MaxMs    float64         `json:"max_ms"`
	// ReturnedTotal is the bytes the interval's successes returned to the
	// client, summed (Handle.RecordReturned); 0 when none was measured.
	ReturnedTotal int64 `json:"returned_total_bytes,omitempty"`
}

// writeInterval appends the interval c of h to the workload's interval log
// and to intervals.jsonl.
func (r *Recorder) writeInterval(h *Handle, c *counts, startMs, endMs int64) error {
	hl, errLog := r.hlog(h.key.Workload)
	if hl != nil {
		for i, hist := range [...]*hdr.Histogram{c.lat, c.svc, c.err, c.mem, c.ret} {
			if hist == nil || hist.TotalCount() == 0 {
				continue
			}
			// The line hl.lw.OutputIntervalHistogram would write, without
			// its ~840 KB of garbage per histogram.
			if err := r.enc.writeInterval(hl.w, hist, h.tags[i], startMs, endMs, hl.lw.BaseTime()); err != nil {
				errLog = fmt.Errorf("results: write interval log of %q: %w", h.key.Workload, err)
				break
			}
		}
	}
	if !c.active() {
		return errLog
	}
	line := intervalLine{
		T:        endMs,
		Workload: h.key.Workload,
		Op:       h.key.Op,
		Node:     h.key.Node,
		Access:   h.key.Access,
		Count:    c.ok,
		Errors:   map[Class]int64{},
		Canceled: c.errs[idxCanceled],
		Late:     c.late,
		Dropped:  c.dropped,

		ReturnedTotal: c.retBytes,
	}
	for i, n := range c.errs {
		if n != 0 && i != idxCanceled {
			line.Errors[Classes[i]] = n
		}
	}
	if c.lat.TotalCount() != 0 {
		line.P50Ms = nsToMs(float64(c.lat.ValueAtQuantile(50)))
		line.P99Ms = nsToMs(float64(c.lat.ValueAtQuantile(99)))
		line.MaxMs = nsToMs(float64(c.lat.Max()))
	}
	b, err := json.Marshal(line)
	if err != nil {
		return errors.Join(errLog, fmt.Errorf("results: intervals.jsonl: %w", err))
	}
	b = append(b, '\n')
	if _, err := r.jsonlW.Write(b); err != nil {
		return errors.Join(errLog, fmt.Errorf("results: write intervals.jsonl: %w", err))
	}
	return errLog
}

// hlog returns the interval log of workload w, creating it on first use.
func (r *Recorder) hlog(w string) (*hlogFile, error) {
	if hl := r.hlogs[w]; hl != nil {
		return hl, nil
	}
	base := fileSafe(w)
	name := base
	for i := 2; r.hlogNames[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	path := filepath.Join(r.dir, name+".hlog")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	lw := hdr.NewHistogramLogWriter(bw)
	lw.SetBaseTime(r.baseMs)
	err = errors.Join(
		lw.OutputComment(fmt.Sprintf("[htapchaos interval log: workload %q, interval %v, values in nanoseconds, tags lat|svc|err/<op>/n<node>; tags mem|ret/<op>/n<node>: bytes]", w, r.interval)),
		lw.OutputLogFormatVersion(),
		lw.OutputStartTime(r.startMs),
		lw.OutputBaseTime(r.baseMs),
		lw.OutputLegend(),
	)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("results: write %s: %w", path, err)
	}
	hl := &hlogFile{f: f, w: bw, lw: lw}
	r.hlogs[w] = hl
	r.hlogNames[name] = true
	return hl, nil
}

// flush pushes everything written so far to the files, so that a crash loses
// at most the open interval.
func (r *Recorder) flush() error {
	var errs []error
	for _, hl := range r.hlogs {
		if err := hl.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("results: flush %s: %w", hl.f.Name(), err))
		}
	}
	if r.jsonlW != nil {
		if err := r.jsonlW.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("results: flush intervals.jsonl: %w", err))
		}
	}
	return errors.Join(errs...)
}

// closeFiles flushes, syncs and closes the logs.
func (r *Recorder) closeFiles() error {
	errs := []error{r.flush()}
	for _, hl := range r.hlogs {
		errs = append(errs, hl.f.Sync(), hl.f.Close())
	}
	if r.jsonl != nil {
		errs = append(errs, r.jsonl.Sync(), r.jsonl.Close())
	}
	return errors.Join(errs...)
}

// Close closes the last interval (ending at now), writes summary.json (with
// a Dir) and closes the files. It returns the summary, also when an error is
// returned with it. Close is idempotent: later calls return the same summary
// and error. After Close, Record and Dropped do nothing and Tick fails.
func (r *Recorder) Close(now time.Time) (*Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.final, r.finalErr
	}
	r.closed = true
	r.hmu.Lock()
	r.hclosed = true
	r.hmu.Unlock()
	for _, h := range r.list() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
	}
	r.applyHeld(nil) // every ingested stream event, before the last interval closes
	_, errTick := r.tick(now)
	sum := r.summary(now, false)
	var errSum, errFiles error
	if r.dir != "" {
		if err := writeJSONAtomic(filepath.Join(r.dir, "summary.json"), sum); err != nil {
			errSum = fmt.Errorf("results: write summary.json: %w", err)
		}
		errFiles = r.closeFiles()
	}
	r.final, r.finalErr = sum, errors.Join(errTick, errSum, errFiles)
	return r.final, r.finalErr
}

// Summary returns the cumulative view of the run so far, including the open
// interval, as if the run ended at now; the Recorder goes on. After Close it
// returns the final summary.
func (r *Recorder) Summary(now time.Time) *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.final
	}
	return r.summary(now, true)
}

// keyView is one key's cumulative figures at summary time.
type keyView struct {
	key   Key
	c     *counts
	other []OtherError
}

// summary builds the summary at now. With live, the open interval of every
// handle is added to (copies of) the cumulative figures; without, the
// cumulative figures are used as they are (Close has just ticked). Called
// with r.mu held.
func (r *Recorder) summary(now time.Time, live bool) *Summary {
	dur := now.Sub(r.start).Seconds()
	if dur < 0 {
		dur = 0
	}
	sum := &Summary{
		Version:      summaryVersion,
		Start:        r.start,
		End:          now,
		Duration:     dur,
		GapThreshold: r.gapThr.Seconds(),
		Ops:          []OpSummary{},
		Workloads:    []OpSummary{},
		Gaps:         []StreamGaps{},
		Cluster:      []StreamGaps{},
	}
	hs := r.list()
	views := make([]keyView, 0, len(hs))
	for _, h := range hs {
		v := keyView{key: h.key, c: &h.cum}
		if live {
			c := &counts{lat: h.cum.lat.Clone(), svc: h.cum.svc.Clone()}
			if h.cum.err != nil {
				c.err = h.cum.err.Clone()
			}
			if h.cum.mem != nil {
				c.mem = h.cum.mem.Clone()
			}
			if h.cum.ret != nil {
				c.ret = h.cum.ret.Clone()
			}
			c.ok, c.late, c.dropped, c.errs, c.retBytes = h.cum.ok, h.cum.late, h.cum.dropped, h.cum.errs, h.cum.retBytes
			h.mu.Lock()
			c.add(h.cur)
			v.other = slices.Clone(h.other)
			h.mu.Unlock()
			v.c = c
		} else {
			h.mu.Lock()
			v.other = slices.Clone(h.other)
			h.mu.Unlock()
		}
		views = append(views, v)
	}
	for _, v := range views {
		sum.Ops = append(sum.Ops, opSummary(v.key, v.c, v.other, dur))
	}

	// Per workload x op, merged over nodes. views are sorted by workload, op,
	// node, so the keys of one group are adjacent.
	for i := 0; i < len(views); {
		j := i
		k := Key{Workload: views[i].key.Workload, Op: views[i].key.Op, Access: views[i].key.Access}
		c := newCounts()
		var other []OtherError
		for ; j < len(views) && views[j].key.Workload == k.Workload && views[j].key.Op == k.Op; j++ {
			c.add(views[j].c)
			other = mergeOther(other, views[j].other)
		}
		sum.Workloads = append(sum.Workloads, opSummary(k, c, other, dur))
		i = j
	}

	streams, cluster := r.allStreams()
	for _, s := range streams {
		sum.Gaps = append(sum.Gaps, s.Snapshot(now))
	}
	r.hmu.RLock()
	sum.MemoryUnavailable = r.memUnavailable
	r.hmu.RUnlock()
	for _, s := range cluster {
		sum.Cluster = append(sum.Cluster, s.Snapshot(now))
	}
	return sum
}

func opSummary(k Key, c *counts, other []OtherError, dur float64) OpSummary {
	o := OpSummary{
		Workload:    k.Workload,
		Op:          k.Op,
		Node:        k.Node,
		Access:      k.Access,
		Count:       c.ok,
		Errors:      map[Class]int64{},
		ErrorsTotal: c.errorsTotal(),
		Canceled:    c.errs[idxCanceled],
		Late:        c.late,
		Dropped:     c.dropped,
		Latency:     percentilesOf(c.lat),
		Service:     percentilesOf(c.svc),
	}
	if dur > 0 {
		o.Rate = float64(c.ok) / dur
	}
	for i, cl := range Classes {
		if i != idxCanceled {
			o.Errors[cl] = c.errs[i]
		}
	}
	if len(other) > 0 {
		o.Other = slices.Clone(other)
		slices.SortFunc(o.Other, func(a, b OtherError) int { return cmp.Compare(a.Number, b.Number) })
	}
	if c.err != nil && c.err.TotalCount() > 0 {
		p := percentilesOf(c.err)
		o.ErrorLatency = &p
	}
	o.Memory = bytePercentilesOf(c.mem)
	o.Returned = bytePercentilesOf(c.ret)
	if o.Returned != nil {
		o.ReturnedTotal = c.retBytes
	}
	return o
}

// mergeOther adds the counts of src into dst, keeping the first message of
// each number.
func mergeOther(dst, src []OtherError) []OtherError {
next:
	for _, e := range src {
		for i := range dst {
			if dst[i].Number == e.Number {
				dst[i].Count += e.Count
				continue next
			}
		}
		dst = append(dst, e)
	}
	return dst
}

// tagSafe makes s usable inside an interval log tag (no commas, spaces or
// line breaks).
func tagSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ',', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// fileSafe makes a workload name usable as a file name.
func fileSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
	if s == "" || s[0] == '.' {
		s = "_" + s // no empty or hidden names, no "." or ".."
	}
	return s
}
