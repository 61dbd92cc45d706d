package results

import (
	"cmp"
	"sync"
	"time"
)

// maxGapsPerStream bounds the gaps kept per stream; the rest are counted.
const maxGapsPerStream = 1000

// streamKey identifies a stream: the operations of one workload routed to one
// node with one access kind, whatever the operation. The cluster-wide stream of
// an access kind has no workload and node 0.
type streamKey struct {
	Workload string
	Node     int
	Access   Access
}

func compareStreams(a, b streamKey) int {
	return cmp.Or(cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Node, b.Node), cmp.Compare(a.Access, b.Access))
}

// GapTracker finds the unavailability windows of one stream of completions: a
// window runs from the end of the latest success seen so far to the end of the
// next success that ends later; it is a gap when it lasts at least the
// threshold. It is the one way htapchaos measures a stall: the recorder's
// streams (per workload, node and access, and cluster-wide per access), the
// schema-change write stall (which reads the write streams) and the freshness
// heartbeat's writer all use it. Safe for concurrent use.
type GapTracker struct {
	key       streamKey
	threshold time.Duration

	mu      sync.Mutex
	have    bool      // a success has been seen
	last    time.Time // latest end of a success
	failed  int64     // failures completed after last
	late    int64     // late operations completed after last
	gaps    []Gap
	more    int
	longest time.Duration
	// cov, when set (a recorder with Options.Export), logs the tracker's
	// success runs and the failures outside them for another recorder.
	cov *coverLog
}

// NewGapTracker returns a tracker reporting windows of at least threshold
// (<= 0: every window between two successes; the first 1000 are listed).
func NewGapTracker(threshold time.Duration) *GapTracker { return newStream(streamKey{}, threshold) }

func newStream(k streamKey, threshold time.Duration) *GapTracker {
	return &GapTracker{key: k, threshold: threshold}
}

// Success notes a successful completion at ended; late says it started late.
func (s *GapTracker) Success(ended time.Time, late bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.have {
		s.have, s.last = true, ended
		if s.cov != nil {
			s.cov.success(ended, late, true)
		}
		return
	}
	if !ended.After(s.last) {
		return // completed out of order, inside the known-good past
	}
	d := ended.Sub(s.last)
	if s.cov != nil {
		s.cov.success(ended, late, d >= s.threshold)
	}
	if d >= s.threshold {
		if late {
			s.late++
		}
		s.add(Gap{Start: s.last, End: ended, Duration: d.Seconds(), Failed: s.failed, Late: s.late}, d)
	}
	s.last, s.failed, s.late = ended, 0, 0
}

// Failure notes a failed (not canceled) completion at ended.
func (s *GapTracker) Failure(ended time.Time, late bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cov != nil && (!s.have || ended.After(s.last)) {
		// Before the first success too: another recorder's tracker may
		// have one.
		s.cov.fails = append(s.cov.fails, FailMark{At: ended.UnixNano(), Late: late})
	}
	if !s.have || !ended.After(s.last) {
		return
	}
	s.failed++
	if late {
		s.late++
	}
}

// Cover notes successes from from to to with no window of the threshold or
// more between them (a run another tracker saw): Success(from, late), then to
// as the latest success when it is later. Fed the runs and failures of
// several trackers in time order, a tracker finds the gaps and counts one
// tracker fed every completion would: a window of the threshold or more
// between two successes of all of them lies outside every tracker's runs, and
// a failure inside a run can never fall in such a window.
func (s *GapTracker) Cover(from, to time.Time, late bool) {
	s.Success(from, late)
	s.mu.Lock()
	defer s.mu.Unlock()
	if to.After(s.last) {
		s.last, s.failed, s.late = to, 0, 0
	}
}

// coverLog is what a tracker noted since it was last drained: its runs of
// successes (consecutive successes less than the threshold apart) and the
// failures outside them. Guarded by the tracker's mutex.
type coverLog struct {
	piece    bool       // the open run has a piece in this interval: [from, to]
	from, to int64      // unix ns of its first and latest success
	late     bool       // its first success started late
	runs     []CoverRun // pieces closed in this interval
	fails    []FailMark // failures; fails[:kept] are outside every run
	kept     int
}

// success notes an accepted success at ended; brk says it ends a window of
// the threshold or more (or is the first success): it closes the open run.
func (c *coverLog) success(ended time.Time, late, brk bool) {
	t := ended.UnixNano()
	if brk {
		if c.piece {
			c.runs = append(c.runs, CoverRun{From: c.from, To: c.to, Late: c.late})
		}
		c.kept = len(c.fails) // the failures since the last success lie between runs
		c.piece, c.from, c.to, c.late = true, t, t, late
		return
	}
	c.fails = c.fails[:c.kept] // inside the run: never in a gap
	if !c.piece {              // the open run's next piece starts here
		c.piece, c.from, c.late = true, t, late
	}
	c.to = t
}

// drain returns the pieces of runs and the failures noted since the last
// drain and forgets them; the open run stays open.
func (s *GapTracker) drain() (runs []CoverRun, fails []FailMark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cov
	if c == nil {
		return nil, nil
	}
	runs, fails = c.runs, c.fails
	if c.piece {
		runs = append(runs, CoverRun{From: c.from, To: c.to, Late: c.late})
	}
	c.runs, c.fails, c.kept, c.piece = nil, nil, 0, false
	return runs, fails
}

// add keeps a gap. Called with s.mu held.
func (s *GapTracker) add(g Gap, d time.Duration) {
	if d > s.longest {
		s.longest = d
	}
	if len(s.gaps) >= maxGapsPerStream {
		s.more++
		return
	}
	s.gaps = append(s.gaps, g)
}

// Longest is the longest closed gap so far (the window still open is not
// counted: see Snapshot).
func (s *GapTracker) Longest() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.longest
}

// Snapshot returns the stream's gaps as of now, with the window still open at
// now reported as an ongoing gap when it is long enough.
func (s *GapTracker) Snapshot(now time.Time) StreamGaps {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := StreamGaps{
		Workload: s.key.Workload,
		Node:     s.key.Node,
		Access:   s.key.Access,
		Gaps:     append([]Gap{}, s.gaps...),
		MoreGaps: s.more,
	}
	longest := s.longest
	if s.have && now.After(s.last) {
		if d := now.Sub(s.last); d >= s.threshold {
			if d > longest {
				longest = d
			}
			g := Gap{Start: s.last, End: now, Duration: d.Seconds(), Failed: s.failed, Late: s.late, Ongoing: true}
			if len(sg.Gaps) < maxGapsPerStream {
				sg.Gaps = append(sg.Gaps, g)
			} else {
				sg.MoreGaps++
			}
		}
	}
	sg.Longest = longest.Seconds()
	return sg
}

// ClusterWide says whether g is a cluster-wide stream (no workload, node 0).
func (g StreamGaps) ClusterWide() bool { return g.Workload == "" && g.Node == 0 }

// StreamState is a stream's availability at one instant, for a live view.
type StreamState struct {
	Workload string // "" for a cluster-wide stream
	Node     int    // 0 for a cluster-wide stream
	Access   Access
	// SinceSuccess is the time from the stream's latest success to now: the gap
	// open now (0 before the first success).
	SinceSuccess time.Duration
	// Longest is the longest gap so far, the open one included when it is over
	// the threshold.
	Longest time.Duration
}

// ClusterWide says whether st is a cluster-wide stream (no workload, node 0).
func (st StreamState) ClusterWide() bool { return st.Workload == "" && st.Node == 0 }

// state is the stream's StreamState at now.
func (s *GapTracker) state(now time.Time) StreamState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StreamState{Workload: s.key.Workload, Node: s.key.Node, Access: s.key.Access, Longest: s.longest}
	if s.have && now.After(s.last) {
		st.SinceSuccess = now.Sub(s.last)
		if st.SinceSuccess >= s.threshold {
			st.Longest = max(st.Longest, st.SinceSuccess)
		}
	}
	return st
}
