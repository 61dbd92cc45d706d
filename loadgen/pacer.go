package loadgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Phase is a stretch of a run at one rate (open loop) or one concurrency (closed loop).
type Phase struct {
	Name        string
	Duration    time.Duration
	Rate        float64 // operations per second (open loop); 0 = none in this phase
	Concurrency int     // workers (closed loop)
}

// Schedule is the open-loop plan: when each operation is meant to start. It is pure
// (no clock), so it can be tested with tables: operation n of phase p starts at
// phaseStart + k/rate. A slow database never moves these times; the runner starts
// operations late and counts them instead.
type Schedule struct {
	start  time.Time
	phases []Phase
	// firstOp[i] is the index of phase i's first operation; firstOp[len] = total.
	firstOp []int64
	begins  []time.Duration
}

// NewSchedule plans the phases from start.
func NewSchedule(start time.Time, phases []Phase) *Schedule {
	s := &Schedule{start: start, phases: phases}
	var n int64
	var at time.Duration
	for _, p := range phases {
		s.firstOp = append(s.firstOp, n)
		s.begins = append(s.begins, at)
		n += opsIn(p)
		at += p.Duration
	}
	s.firstOp = append(s.firstOp, n)
	s.begins = append(s.begins, at)
	return s
}

// opsIn is the number of operations of a phase: those whose start lies in
// [0, Duration).
func opsIn(p Phase) int64 {
	if p.Rate <= 0 || p.Duration <= 0 {
		return 0
	}
	return int64(math.Ceil(p.Duration.Seconds()*p.Rate - 1e-9))
}

// Total is the number of operations in the schedule.
func (s *Schedule) Total() int64 { return s.firstOp[len(s.phases)] }

// End is when the schedule ends.
func (s *Schedule) End() time.Time { return s.start.Add(s.begins[len(s.phases)]) }

// At returns the intended start of operation n (0-based) and its phase; ok is false
// past the end.
func (s *Schedule) At(n int64) (t time.Time, phase int, ok bool) {
	if n < 0 || n >= s.Total() {
		return time.Time{}, 0, false
	}
	// Phases are few: a linear search is fine and branch-predictable.
	p := 0
	for n >= s.firstOp[p+1] {
		p++
	}
	k := n - s.firstOp[p]
	off := time.Duration(float64(k) / s.phases[p].Rate * float64(time.Second))
	return s.start.Add(s.begins[p] + off), p, true
}

// PhaseAt returns the phase running at time t (-1 before the start or after the end).
func (s *Schedule) PhaseAt(t time.Time) int {
	d := t.Sub(s.start)
	if d < 0 {
		return -1
	}
	for i := range s.phases {
		if d < s.begins[i+1] {
			return i
		}
	}
	return -1
}

// ParsePhases parses "30s@2000,10s@5000" (open loop: duration@rate) or, with closed
// true, "30s@8,30s@32" (duration@concurrency).
func ParsePhases(spec string, closed bool) ([]Phase, error) {
	var out []Phase
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		d, v, ok := strings.Cut(part, "@")
		if !ok {
			return nil, usageErr("--phases", "%q: want DURATION@RATE (e.g. 30s@2000)", part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return nil, usageErr("--phases", "%q: %q is not a positive duration", part, d)
		}
		p := Phase{Name: "phase-" + strconv.Itoa(i+1), Duration: dur}
		if closed {
			c, err := strconv.Atoi(v)
			if err != nil || c < 0 {
				return nil, usageErr("--phases", "%q: concurrency %q is not a whole number >= 0", part, v)
			}
			p.Concurrency = c
		} else {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
				return nil, usageErr("--phases", "%q: rate %q is not a number >= 0", part, v)
			}
			p.Rate = r
		}
		out = append(out, p)
	}
	return out, nil
}

func (p Phase) String() string {
	if p.Concurrency > 0 {
		return fmt.Sprintf("%s %v at concurrency %d", p.Name, p.Duration, p.Concurrency)
	}
	return fmt.Sprintf("%s %v at %g ops/s", p.Name, p.Duration, p.Rate)
}
