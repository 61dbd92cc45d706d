package faults

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Event is one step of a fault, for the run's event log.
type Event struct {
	Time    time.Time `json:"time"`
	Fault   string    `json:"fault"`
	Step    string    `json:"step"`
	Nodes   []string  `json:"nodes"`
	Details string    `json:"details,omitempty"`
}

// Events collects events, writes each as a JSON line when given a writer, and calls
// OnEvent (for a live display). Safe for concurrent use.
type Events struct {
	mu      sync.Mutex
	list    []Event
	w       io.Writer
	OnEvent func(Event)
}

// NewEvents returns an event log; w may be nil.
func NewEvents(w io.Writer) *Events { return &Events{w: w} }

// Add records one event.
func (e *Events) Add(fault, step string, nodes []Node, details string) {
	if e == nil {
		return
	}
	ev := Event{Time: time.Now(), Fault: fault, Step: step, Details: details}
	for _, n := range nodes {
		ev.Nodes = append(ev.Nodes, n.Label())
	}
	e.mu.Lock()
	e.list = append(e.list, ev)
	if e.w != nil {
		b, _ := json.Marshal(ev)
		_, _ = e.w.Write(append(b, '\n'))
	}
	on := e.OnEvent
	e.mu.Unlock()
	if on != nil {
		on(ev)
	}
}

// List returns the events so far.
func (e *Events) List() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.list...)
}
