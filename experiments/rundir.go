package experiments

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/results"
)

// RunVersion is the version of run.json (and so of the run directory's layout) this
// program writes and the newest it reads.
const RunVersion = runVersion

// RunDir is a run directory read back: run.json and what sits beside it.
type RunDir struct {
	Dir        string
	Run        *RunFile
	Summary    *results.Summary // nil: the run ended before the load wrote one
	Indicators []Sample
	Events     []faults.Event
	// Repeat is the repeat directory the run is one of ("": a run of its own).
	Repeat string
}

// Errors of ReadRunFile about its input (as opposed to failing to read it).
var (
	ErrNotRunDir    = errors.New("not a run directory (no run.json)")
	ErrNewerVersion = errors.New("written by a newer htapchaos")
	ErrBadRunFile   = errors.New("not a run.json written by htapchaos")
)

// ReadRunFile reads run.json. It refuses a file with no version, or a version newer
// than this program reads, naming the file.
func ReadRunFile(path string) (*RunFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", filepath.Dir(path), ErrNotRunDir)
		}
		return nil, err
	}
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", path, ErrBadRunFile, err)
	}
	if v.Version == nil || *v.Version < 1 {
		return nil, fmt.Errorf("read %s: no version: %w", path, ErrBadRunFile)
	}
	if *v.Version > runVersion {
		return nil, fmt.Errorf("read %s: version %d: %w (this one reads up to version %d): upgrade htapchaos", path, *v.Version, ErrNewerVersion, runVersion)
	}
	var rf RunFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", path, ErrBadRunFile, err)
	}
	legacyPhaseStats(b, rf.PhaseStats)
	return &rf, nil
}

// MarshalJSON writes run.json: each phase_stats entry also names its window
// "phase", as run.json did before the entries were results.WindowStat, so that
// readers of that name keep working.
func (rf RunFile) MarshalJSON() ([]byte, error) {
	type plain RunFile
	type stat struct {
		PhaseStats
		Phase string `json:"phase"`
	}
	ps := make([]stat, len(rf.PhaseStats))
	for i, p := range rf.PhaseStats {
		ps[i] = stat{p, p.Window}
	}
	return json.Marshal(struct {
		plain
		PhaseStats []stat `json:"phase_stats"`
	}{plain(rf), ps})
}

// legacyPhaseStats names the windows of phase_stats entries written before
// they were results.WindowStat, which named the window "phase".
func legacyPhaseStats(b []byte, ps []PhaseStats) {
	if !slices.ContainsFunc(ps, func(p PhaseStats) bool { return p.Window == "" }) {
		return
	}
	var old struct {
		PhaseStats []struct {
			Phase string `json:"phase"`
		} `json:"phase_stats"`
	}
	if json.Unmarshal(b, &old) != nil || len(old.PhaseStats) != len(ps) {
		return
	}
	for i := range ps {
		if ps[i].Window == "" {
			ps[i].Window = old.PhaseStats[i].Phase
		}
	}
}

// ReadRunDir reads a run directory: run.json (version checked), summary.json,
// indicators.jsonl and events.jsonl (the interval logs are read by those who
// chart them: results.SeriesAndDistributions). A file the run never wrote
// (it failed before the load started) is left empty; a last line cut short by a
// crash is skipped; any other damage is an error naming the file and line.
func ReadRunDir(dir string) (*RunDir, error) {
	rf, err := ReadRunFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, err
	}
	rd := &RunDir{Dir: dir, Run: rf}
	if s, err := results.ReadSummary(filepath.Join(dir, "summary.json")); err == nil {
		rd.Summary = s
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if rd.Indicators, err = optional(results.ReadJSONLines[Sample](filepath.Join(dir, "indicators.jsonl"))); err != nil {
		return nil, err
	}
	if rd.Events, err = optional(results.ReadJSONLines[faults.Event](filepath.Join(dir, "events.jsonl"))); err != nil {
		return nil, err
	}
	return rd, nil
}

// optional is a file's lines, none when the run never wrote the file.
func optional[T any](v []T, err error) ([]T, error) {
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return v, err
}
