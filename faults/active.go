package faults

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ActiveFault is a fault of this process that was injected and is not yet
// recovered (or whose recovery failed): what a second signal prints, and what a
// third one leaves behind.
type ActiveFault struct {
	Kind  string
	Nodes []string // labels
	State State
	// Heal is the command that heals it if htapchaos stops now ("" when the
	// fault leaves nothing behind when the process dies, or has no journal).
	Heal string
	// LeavesNothing: the fault dies with the process (network-latency's proxy).
	LeavesNothing bool
}

func (a ActiveFault) String() string {
	s := fmt.Sprintf("%s on %s (%s)", a.Kind, strings.Join(a.Nodes, ", "), a.State)
	if a.Heal != "" {
		s += "; heal with: " + a.Heal
	}
	return s
}

var active = struct {
	sync.Mutex
	m map[*Runner]time.Time // runner -> when it was marked active
}{m: map[*Runner]time.Time{}}

// Active lists the faults of this process injected and not yet healthy again,
// oldest first.
func Active() []ActiveFault {
	active.Lock()
	runners := make([]*Runner, 0, len(active.m))
	since := make(map[*Runner]time.Time, len(active.m))
	for r, t := range active.m {
		runners = append(runners, r)
		since[r] = t
	}
	active.Unlock()
	slices.SortFunc(runners, func(a, b *Runner) int { return since[a].Compare(since[b]) })
	var out []ActiveFault
	for _, r := range runners {
		a := ActiveFault{Kind: r.Kind, State: r.State()}
		r.mu.Lock()
		if r.failed {
			a.State = StateFailed // cleaned up after, but the fault may be in place
		}
		r.mu.Unlock()
		for _, n := range r.Env.Targets {
			a.Nodes = append(a.Nodes, n.Label())
		}
		a.LeavesNothing = LeavesNothing(r.Kind)
		if r.Env.Journal != nil && !a.LeavesNothing {
			a.Heal = r.Env.Journal.HealCommand()
		}
		out = append(out, a)
	}
	return out
}

func markActive(r *Runner, on bool) {
	active.Lock()
	defer active.Unlock()
	if on {
		active.m[r] = time.Now()
	} else {
		delete(active.m, r)
	}
}
