package results

import (
	"errors"
	"time"
)

// This file lets one Recorder be fed by others: an agent's Recorder exports
// the raw data of every interval it closes (Options.Export), and a
// coordinator's Recorder ingests the frames of all agents (Ingest) as if it
// had recorded their operations itself.

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

// Ingest adds the frames of one interval, one per agent, into the open
// interval, as if their operations had been recorded here.
func (r *Recorder) Ingest(frames []AgentFrame) error {
	return errors.New("results: Ingest: not implemented yet")
}

// SetStart moves the run's start (the hlog StartTime and BaseTime, the start
// of the first interval) to t. Call it before the first Tick.
func (r *Recorder) SetStart(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start, r.lastTick = t, t
	r.startMs = t.UnixMilli()
	r.baseMs = r.startMs - r.startMs%1000
}
