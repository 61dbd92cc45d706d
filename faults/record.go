package faults

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// Record is what one fault run leaves in a directory: events.jsonl, each step as
// it happens (NewEvents(rec.Events())), and fault.json, the summary written once
// the run is over (WriteResult). "htapchaos fault --out DIR" keeps one.
type Record struct {
	dir    string
	events *os.File
}

// NewRecord makes dir if need be and creates its events.jsonl.
func NewRecord(dir string) (*Record, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	return &Record{dir: dir, events: f}, nil
}

// Events is where the run's events go; nil (no file) for a nil Record.
func (r *Record) Events() io.Writer {
	if r == nil {
		return nil
	}
	return r.events
}

// Close closes events.jsonl.
func (r *Record) Close() error { return r.events.Close() }

// ResultVersion is the version of fault.json's format.
const ResultVersion = 1

// Result is fault.json: the run's kind, targets, parameters, final state, the
// times its steps ended, what it measured, and the error Run returned.
type Result struct {
	Version      int               `json:"version"`
	Fault        string            `json:"fault"`
	Nodes        []string          `json:"nodes"`
	Params       map[string]string `json:"params"`
	State        string            `json:"state"`
	Injected     *time.Time        `json:"injected,omitempty"`
	Effective    *time.Time        `json:"effective,omitempty"`
	Recovered    *time.Time        `json:"recovered,omitempty"`
	Healthy      *time.Time        `json:"healthy,omitempty"`
	Measurements []Measurement     `json:"measurements"`
	Error        string            `json:"error,omitempty"`
}

// ResultOf sums a run up; runErr is what its Run returned.
func ResultOf(run *Runner, runErr error) Result {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	res := Result{Version: ResultVersion, Fault: run.Kind, State: string(run.State()),
		Injected: at(run.Injected), Effective: at(run.Effective), Recovered: at(run.Recovered), Healthy: at(run.Healthy),
		Measurements: run.Measurements()}
	if run.Env != nil {
		res.Params = run.Env.Params
		for _, n := range run.Env.Targets {
			res.Nodes = append(res.Nodes, n.Label())
		}
	}
	if res.Measurements == nil {
		res.Measurements = []Measurement{}
	}
	if runErr != nil {
		res.Error = runErr.Error()
	}
	return res
}

// WriteResult writes the run's fault.json, atomically: a reader sees none or all
// of it.
func (r *Record) WriteResult(run *Runner, runErr error) error {
	b, err := json.MarshalIndent(ResultOf(run, runErr), "", "  ")
	if err != nil {
		return err
	}
	return results.WriteFileAtomic(filepath.Join(r.dir, "fault.json"), append(b, '\n'))
}
