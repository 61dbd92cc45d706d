package results

import (
	"sync"
	"time"
)

// maxGapsPerStream bounds the gaps kept per stream; the rest are counted.
const maxGapsPerStream = 1000

// streamKey identifies a stream: the operations of one workload routed to one
// node, whatever the operation.
type streamKey struct {
	Workload string
	Node     int
}

// stream finds the unavailability windows of one stream. A window runs from
// the end of the latest success seen so far to the end of the next success
// that ends later; it is a gap when it lasts at least the threshold.
type stream struct {
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
}

// success notes a successful completion at ended. Called with s.mu held.
func (s *stream) success(ended time.Time, late bool) {
	if !s.have {
		s.have, s.last = true, ended
		return
	}
	if !ended.After(s.last) {
		return // completed out of order, inside the known-good past
	}
	if d := ended.Sub(s.last); d >= s.threshold {
		if late {
			s.late++
		}
		s.add(Gap{Start: s.last, End: ended, Duration: d.Seconds(), Failed: s.failed, Late: s.late}, d)
	}
	s.last, s.failed, s.late = ended, 0, 0
}

// failure notes a failed (not canceled) completion at ended. Called with s.mu
// held.
func (s *stream) failure(ended time.Time, late bool) {
	if !s.have || !ended.After(s.last) {
		return
	}
	s.failed++
	if late {
		s.late++
	}
}

func (s *stream) add(g Gap, d time.Duration) {
	if d > s.longest {
		s.longest = d
	}
	if len(s.gaps) >= maxGapsPerStream {
		s.more++
		return
	}
	s.gaps = append(s.gaps, g)
}

// snapshot returns the stream's gaps as of now, with the window still open at
// now reported as an ongoing gap when it is long enough.
func (s *stream) snapshot(now time.Time) StreamGaps {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := StreamGaps{
		Workload: s.key.Workload,
		Node:     s.key.Node,
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
