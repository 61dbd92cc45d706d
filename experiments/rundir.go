package experiments

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	Intervals  []results.IntervalLine
	Indicators []Sample
	Events     []faults.Event
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
	return &rf, nil
}

// ReadRunDir reads a run directory: run.json (version checked), summary.json,
// intervals.jsonl, indicators.jsonl and events.jsonl. A file the run never wrote
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
	if ivs, err := results.ReadIntervals(dir); err == nil {
		rd.Intervals = ivs
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if rd.Indicators, err = readJSONLines[Sample](filepath.Join(dir, "indicators.jsonl")); err != nil {
		return nil, err
	}
	if rd.Events, err = readJSONLines[faults.Event](filepath.Join(dir, "events.jsonl")); err != nil {
		return nil, err
	}
	return rd, nil
}

// readJSONLines reads one JSON value per line. A missing file reads as none.
func readJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	br := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		last := err == io.EOF
		if len(bytes.TrimSpace(b)) > 0 {
			var v T
			if jerr := json.Unmarshal(b, &v); jerr != nil {
				if last {
					break // cut short by a crash
				}
				return nil, fmt.Errorf("read %s line %d: %w", path, n, jerr)
			}
			out = append(out, v)
		}
		if last {
			break
		}
	}
	return out, nil
}
