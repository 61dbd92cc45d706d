package results

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// This file lets one Recorder be fed by others: an agent's Recorder exports
// the raw data of every interval it closes (Options.Export), and a
// coordinator's Recorder ingests the frames of all agents (Ingest) as if it
// had recorded their operations itself.

// How it stays exact. Histograms travel in their hlog encoding and are merged
// bucket by bucket (every histogram of a kind has the same geometry); counts
// add up. Gaps: a window of the gap threshold or more between two successes of
// all agents lies inside a window of the threshold or more of every agent, so
// an agent sends only its runs of successes (successes less than the threshold
// apart) and the failures outside them (see coverLog); a tracker fed every
// agent's runs (GapTracker.Cover) and failures in time order finds the gaps,
// with their failed and late counts, that one tracker fed every completion
// finds. A completion is noted by the tracker a little after it ended, so it
// can land in the frame after the one its time belongs to; Ingest therefore
// holds back the stream events of the last ingestHoldback before the frames'
// end until the next Ingest (or Close), which keeps the order exact unless a
// completion is noted more than that after it ended.
//
// Not exact: class-other errors fold numbers past the 20th per key into
// number 0 by first appearance (maxOtherNumbers); merged, the first appearance
// is the coordinator's, so the folding can differ from one process's when
// more than 20 distinct server errors occur (the counts stay exact).

// ingestHoldback is how long before the end of the ingested frames stream
// events wait for the next Ingest, so that a completion noted after its
// agent's tick still takes its place in time order. The live view's time
// since the last success reads up to this much more than one process's.
const ingestHoldback = 100 * time.Millisecond

// IntervalFrame is the raw data of one closed interval of a Recorder, for
// another Recorder to ingest (JSON on the wire). Nothing is rounded: the
// histograms travel in their hlog encoding and merge bucket by bucket.
type IntervalFrame struct {
	Seq     int64         `json:"seq"`             // round((end-start)/interval); the Close frame has Final
	Final   bool          `json:"final,omitempty"` // the frame of Close
	StartNs int64         `json:"start_ns"`        // the recorder's clock, unix ns
	EndNs   int64         `json:"end_ns"`
	Keys    []KeyFrame    `json:"keys"`    // only keys with activity or a non-empty histogram
	Streams []StreamFrame `json:"streams"` // per (workload, node, access), then the cluster-wide ones
	// MemoryUnavailable is the recorder's first reason, once given.
	MemoryUnavailable string `json:"memory_unavailable,omitempty"`
}

// KeyFrame is one key's interval in an IntervalFrame.
type KeyFrame struct {
	Workload string `json:"workload"`
	Op       string `json:"op"`
	Node     int    `json:"node"`
	Access   Access `json:"access"`
	// Histograms as the base64 V2 compressed text of an hlog line; "" = empty.
	Lat      string          `json:"lat,omitempty"`
	Svc      string          `json:"svc,omitempty"`
	Err      string          `json:"err,omitempty"`
	Mem      string          `json:"mem,omitempty"`
	Ret      string          `json:"ret,omitempty"`
	OK       int64           `json:"ok,omitempty"`
	Late     int64           `json:"late,omitempty"`
	Dropped  int64           `json:"dropped,omitempty"`
	Canceled int64           `json:"canceled,omitempty"`
	RetBytes int64           `json:"ret_bytes,omitempty"`
	Errors   map[Class]int64 `json:"errors,omitempty"` // canceled excluded
	Other    []OtherError    `json:"other,omitempty"`  // class-other counts new in this interval
}

// StreamFrame is what one stream's gap tracker saw in an interval: the runs
// of successes with no window of the threshold or more between them, and the
// failures that are not inside a run.
type StreamFrame struct {
	Cluster  bool       `json:"cluster,omitempty"` // the cluster-wide stream of Access
	Workload string     `json:"workload,omitempty"`
	Node     int        `json:"node,omitempty"`
	Access   Access     `json:"access"`
	Runs     []CoverRun `json:"runs,omitempty"`
	Fails    []FailMark `json:"fails,omitempty"`
}

// CoverRun is a run of successes: From and To are the ends of its first and
// last success (unix ns); Late says the first one started late.
type CoverRun struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
	Late bool  `json:"late,omitempty"`
}

// FailMark is a failure (not canceled) that completed at At (unix ns).
type FailMark struct {
	At   int64 `json:"at"`
	Late bool  `json:"late,omitempty"`
}

// AgentFrame is one agent's frame for Ingest: Tag names the agent in the
// interval logs ("a2": tags a2.lat/<op>/n<node>), Offset is the agent's clock
// minus this recorder's.
type AgentFrame struct {
	Tag    string
	Offset time.Duration
	Frame  *IntervalFrame
}

// Ingest adds agents' frames into the open interval (normally one frame of
// the interval per agent; an agent's late frames may come along, in order),
// as if their operations had been recorded here: histograms and
// counts into every key's open interval (each agent's part is also written to
// the interval logs, tagged "<tag>.lat/<op>/n<node>" and so on, which the
// readers of this package skip), stream events into the gap trackers in time
// order (those of the last ingestHoldback wait for the next Ingest, or Close;
// none waits when every frame given is Final). Frames are checked first: on an
// error nothing is added. Call it from the goroutine that calls Tick, between
// ticks.
func (r *Recorder) Ingest(frames []AgentFrame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	dec := make([][]decodedKey, len(frames))
	for i, af := range frames {
		d, err := decodeFrame(af)
		if err != nil {
			return err
		}
		dec[i] = d
	}

	final := len(frames) > 0
	horizon := int64(math.MaxInt64)
	for i, af := range frames {
		for _, dk := range dec[i] {
			r.ingestKey(af.Tag, dk)
		}
		f, off := af.Frame, int64(af.Offset)
		if f.MemoryUnavailable != "" {
			r.hmu.Lock()
			if r.memUnavailable == "" {
				r.memUnavailable = f.MemoryUnavailable
			}
			r.hmu.Unlock()
		}
		for _, sf := range f.Streams {
			tr := r.ingestStream(sf)
			for _, run := range sf.Runs {
				r.held = append(r.held, streamEvent{tr: tr, at: run.From - off, to: run.To - off, run: true, late: run.Late})
			}
			for _, fm := range sf.Fails {
				r.held = append(r.held, streamEvent{tr: tr, at: fm.At - off, late: fm.Late})
			}
		}
		final = final && f.Final
		horizon = min(horizon, f.EndNs-off-int64(ingestHoldback))
	}
	if final {
		r.applyHeld(nil)
	} else if len(frames) > 0 {
		r.applyHeld(&horizon)
	}
	return nil
}

// decodedKey is a KeyFrame with its histograms decoded.
type decodedKey struct {
	kf    *KeyFrame
	key   Key
	hists [5]*hdr.PackedHistogram // lat, svc, err, mem, ret; nil when empty
	errs  [numClasses]int64
}

// decodeFrame checks and decodes the keys of af.
func decodeFrame(af AgentFrame) ([]decodedKey, error) {
	if af.Frame == nil {
		return nil, fmt.Errorf("results: ingest: agent %q: no frame", af.Tag)
	}
	if !validAgentTag(af.Tag) {
		return nil, fmt.Errorf("results: ingest: agent tag %q: want letters, digits, - or _", af.Tag)
	}
	return af.Frame.decode(fmt.Sprintf("results: ingest: agent %q, ", af.Tag))
}

// Check says whether Ingest would take f: every histogram decodes, no count is
// negative, accesses and error classes are known. Ingest refuses a whole batch
// when one frame fails, so a coordinator checks each agent's frame as it
// arrives: one agent's bad frame then costs that agent alone.
func (f *IntervalFrame) Check() error {
	if f == nil {
		return fmt.Errorf("results: no frame")
	}
	_, err := f.decode("results: ")
	return err
}

// decode checks and decodes f's keys; the errors start with prefix.
func (f *IntervalFrame) decode(prefix string) ([]decodedKey, error) {
	out := make([]decodedKey, 0, len(f.Keys))
	for i := range f.Keys {
		kf := &f.Keys[i]
		where := fmt.Sprintf("%sframe %d, key %s/%s/n%d", prefix, f.Seq, kf.Workload, kf.Op, kf.Node)
		if kf.Access != "" && kf.Access != Read && kf.Access != Write {
			return nil, fmt.Errorf("%s: access %q: want read or write", where, kf.Access)
		}
		dk := decodedKey{kf: kf, key: Key{Workload: kf.Workload, Op: kf.Op, Node: kf.Node, Access: kf.Access.orRead()}}
		for j, enc := range [5]string{kf.Lat, kf.Svc, kf.Err, kf.Mem, kf.Ret} {
			if enc == "" {
				continue
			}
			p, err := hdr.DecodePacked([]byte(enc))
			if err != nil {
				return nil, fmt.Errorf("%s: %s histogram: %w", where, histKinds[j], err)
			}
			dk.hists[j] = p
		}
		if kf.OK < 0 || kf.Late < 0 || kf.Dropped < 0 || kf.Canceled < 0 || kf.RetBytes < 0 {
			return nil, fmt.Errorf("%s: a negative count", where)
		}
		dk.errs[idxCanceled] = kf.Canceled
		for c, n := range kf.Errors {
			i := slices.Index(Classes, c)
			if i < 0 || i == idxCanceled || n < 0 {
				return nil, fmt.Errorf("%s: errors of class %q: %d", where, c, n)
			}
			dk.errs[i] = n
		}
		for _, o := range kf.Other {
			if o.Count <= 0 {
				return nil, fmt.Errorf("%s: other error %d counted %d", where, o.Number, o.Count)
			}
		}
		out = append(out, dk)
	}
	for _, sf := range f.Streams {
		if sf.Access != "" && sf.Access != Read && sf.Access != Write {
			return nil, fmt.Errorf("%sframe %d, stream %s/n%d: access %q: want read or write", prefix, f.Seq, sf.Workload, sf.Node, sf.Access)
		}
	}
	return out, nil
}

// histKinds names the histograms of a key, in the order of Handle.tags.
var histKinds = [5]string{"lat", "svc", "err", "mem", "ret"}

// validAgentTag says whether tag can prefix interval log tags: the readers
// take what comes before the first "/" as the kind, which must stay unknown
// to them.
func validAgentTag(tag string) bool {
	if tag == "" {
		return false
	}
	for _, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ingestKey adds dk into its key's open interval and the agent's part of it.
// Called with r.mu held.
func (r *Recorder) ingestKey(tag string, dk decodedKey) {
	h := r.Handle(dk.key)
	h.mu.Lock()
	if !h.closed {
		dk.addTo(h.cur)
		for _, o := range dk.kf.Other {
			h.addOtherCount(o)
		}
	}
	h.mu.Unlock()
	ac := h.agents[tag]
	if ac == nil {
		if h.agents == nil {
			h.agents = map[string]*agentCounts{}
		}
		ac = &agentCounts{c: newCounts()}
		for i, t := range h.tags {
			ac.tags[i] = tag + "." + t
		}
		h.agents[tag] = ac
	}
	dk.addTo(ac.c)
}

// addTo adds dk's histograms and counts into c.
func (dk *decodedKey) addTo(c *counts) {
	for i, p := range dk.hists {
		if p == nil || p.TotalCount() == 0 {
			continue
		}
		dst := [5]**hdr.Histogram{&c.lat, &c.svc, &c.err, &c.mem, &c.ret}[i]
		if *dst == nil {
			if i == 4 {
				*dst = newByteHist()
			} else {
				*dst = newHist()
			}
		}
		mergePacked(*dst, p)
	}
	kf := dk.kf
	c.ok += kf.OK
	c.late += kf.Late
	c.dropped += kf.Dropped
	c.retBytes += kf.RetBytes
	for i, n := range dk.errs {
		c.errs[i] += n
	}
}

// addOtherCount adds e.Count errors of class other with e's number, folding
// numbers past the cap as addOther does. Called with h.mu held.
func (h *Handle) addOtherCount(e OtherError) {
	for i := range h.other {
		if h.other[i].Number == e.Number {
			h.other[i].Count += e.Count
			return
		}
	}
	if len(h.other) >= maxOtherNumbers {
		for i := range h.other {
			if h.other[i].Number == 0 {
				h.other[i].Count += e.Count
				return
			}
		}
		e.Number, e.Message = 0, "more"
	}
	h.other = append(h.other, e)
}

// agentCounts is one agent's part of a key's open interval, on a recorder
// that ingests, with the tags of its interval log lines.
type agentCounts struct {
	c    *counts
	tags [5]string
}

// writeAgentIntervals writes each agent's part of the interval of h that has
// just closed to the workload's interval log (with a Dir), and empties them.
// Called with r.mu held.
func (r *Recorder) writeAgentIntervals(h *Handle, startMs, endMs int64) error {
	if len(h.agents) == 0 {
		return nil
	}
	var errLog error
	for _, tag := range slices.Sorted(maps.Keys(h.agents)) {
		ac := h.agents[tag]
		if r.dir != "" && errLog == nil {
			hl, err := r.hlog(h.key.Workload)
			if err != nil {
				errLog = err
			}
			for i, hist := range [...]*hdr.Histogram{ac.c.lat, ac.c.svc, ac.c.err, ac.c.mem, ac.c.ret} {
				if hl == nil || hist == nil || hist.TotalCount() == 0 {
					continue
				}
				if err := r.enc.writeInterval(hl.w, hist, ac.tags[i], startMs, endMs, hl.lw.BaseTime()); err != nil {
					errLog = fmt.Errorf("results: write interval log of %q: %w", h.key.Workload, err)
					break
				}
			}
		}
		ac.c.reset()
	}
	return errLog
}

// streamEvent is an ingested run or failure, in this recorder's clock.
type streamEvent struct {
	tr     *GapTracker
	at, to int64 // unix ns: a failure's time, or a run's first and last success
	run    bool
	late   bool
}

// ingestStream returns the tracker of sf, creating it when needed (an
// agent's completion can reach its stream before its key's counts).
func (r *Recorder) ingestStream(sf StreamFrame) *GapTracker {
	a := sf.Access.orRead()
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if sf.Cluster {
		cs := r.cluster[a]
		if cs == nil {
			cs = r.newStream(streamKey{Access: a})
			r.cluster[a] = cs
		}
		return cs
	}
	sk := streamKey{Workload: sf.Workload, Node: sf.Node, Access: a}
	s := r.streams[sk]
	if s == nil {
		s = r.newStream(sk)
		r.streams[sk] = s
	}
	return s
}

// newStream returns a tracker for sk; with Options.Export, one that logs its
// runs for the frames.
func (r *Recorder) newStream(sk streamKey) *GapTracker {
	s := newStream(sk, r.gapThr)
	if r.export != nil {
		s.cov = &coverLog{}
	}
	return s
}

// applyHeld feeds the held stream events up to *horizon (all with nil) to
// their trackers in time order and keeps the rest. Called with r.mu held.
func (r *Recorder) applyHeld(horizon *int64) {
	slices.SortStableFunc(r.held, func(a, b streamEvent) int { return cmp.Compare(a.at, b.at) })
	n := 0
	for ; n < len(r.held); n++ {
		e := r.held[n]
		if horizon != nil && e.at > *horizon {
			break
		}
		if e.run {
			e.tr.Cover(time.Unix(0, e.at), time.Unix(0, e.to), e.late)
		} else {
			e.tr.Failure(time.Unix(0, e.at), e.late)
		}
	}
	r.held = append(r.held[:0], r.held[n:]...)
}

// otherDelta returns the class-other counts that grew since the last call, in
// order of first appearance. Called with h.mu and r.mu held.
func (h *Handle) otherDelta() []OtherError {
	var d []OtherError
	for i, e := range h.other {
		if i < len(h.otherSent) {
			e.Count -= h.otherSent[i].Count
		}
		if e.Count > 0 {
			d = append(d, e)
		}
	}
	if d != nil {
		h.otherSent = append(h.otherSent[:0], h.other...)
	}
	return d
}

// exportKey adds the closed interval c of h to the frame being built, when
// it has anything. Called by tick with r.mu held.
func (r *Recorder) exportKey(h *Handle, c *counts, other []OtherError) error {
	hists := [5]*hdr.Histogram{c.lat, c.svc, c.err, c.mem, c.ret}
	has := c.active() || len(other) > 0
	for _, hist := range hists {
		has = has || hist != nil && hist.TotalCount() > 0
	}
	if !has {
		return nil
	}
	kf := KeyFrame{
		Workload: h.key.Workload, Op: h.key.Op, Node: h.key.Node, Access: h.key.Access,
		OK: c.ok, Late: c.late, Dropped: c.dropped, Canceled: c.errs[idxCanceled], RetBytes: c.retBytes,
		Other: other,
	}
	for i, n := range c.errs {
		if n != 0 && i != idxCanceled {
			if kf.Errors == nil {
				kf.Errors = map[Class]int64{}
			}
			kf.Errors[Classes[i]] = n
		}
	}
	enc := [5]*string{&kf.Lat, &kf.Svc, &kf.Err, &kf.Mem, &kf.Ret}
	for i, hist := range hists {
		if hist == nil || hist.TotalCount() == 0 {
			continue
		}
		b, err := r.enc.appendEncoded(r.enc.line[:0], hist)
		r.enc.line = b
		if err != nil {
			return fmt.Errorf("results: export %s histogram of %s/%s/n%d: %w", histKinds[i], h.key.Workload, h.key.Op, h.key.Node, err)
		}
		*enc[i] = string(b)
	}
	r.expKeys = append(r.expKeys, kf)
	return nil
}

// exportFrame hands the frame of the interval closing at now to
// Options.Export: the keys exportKey added and what every stream noted.
// Called by tick with r.mu held.
func (r *Recorder) exportFrame(now time.Time) {
	f := &IntervalFrame{
		Seq:     int64(math.Round(float64(now.Sub(r.start)) / float64(r.interval))),
		Final:   r.closed,
		StartNs: r.lastTick.UnixNano(),
		EndNs:   now.UnixNano(),
		Keys:    r.expKeys,
		Streams: []StreamFrame{},
	}
	if f.Keys == nil {
		f.Keys = []KeyFrame{}
	}
	r.expKeys = nil // the frame keeps them
	streams, cluster := r.allStreams()
	for i, s := range append(streams, cluster...) {
		runs, fails := s.drain()
		if len(runs) == 0 && len(fails) == 0 {
			continue
		}
		sf := StreamFrame{Access: s.key.Access, Runs: runs, Fails: fails}
		if i >= len(streams) {
			sf.Cluster = true
		} else {
			sf.Workload, sf.Node = s.key.Workload, s.key.Node
		}
		f.Streams = append(f.Streams, sf)
	}
	r.hmu.RLock()
	f.MemoryUnavailable = r.memUnavailable
	r.hmu.RUnlock()
	r.export(f)
}

// SetStart moves the run's start (the hlog StartTime and BaseTime, the start
// of the first interval) to t. Call it before the first Tick and before
// anything is recorded.
func (r *Recorder) SetStart(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start, r.lastTick = t, t
	r.startMs = t.UnixMilli()
	r.baseMs = r.startMs - r.startMs%1000
}
