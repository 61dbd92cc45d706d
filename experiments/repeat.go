package experiments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hooks let a caller act around each run of a repeat or a suite (print its
// verdicts, write its report) without the library knowing how. Every hook is
// optional.
type Hooks struct {
	// Start is called before each run with its options, which it may change
	// (Progress, Log); the func it returns, if any, is called when the run returns.
	Start func(spec *Spec, o *Options) (end func())
	// Done is called after each run with what Run returned (res nil: it measured
	// nothing).
	Done func(spec *Spec, o Options, res *Result, err error)
	// RepeatDone is called after the runs of a repeat, once repeat.json holds their
	// aggregate (rr is never nil).
	RepeatDone func(spec *Spec, rr *RepeatResult, err error)
}

// RepeatOptions say how Repeat runs.
type RepeatOptions struct {
	// Options of every run: Out is the repeat directory (created; must be empty or
	// absent), run i writing into Out/r<i>; Seed is the first run's seed, run i's
	// is Seed+i-1. With no Cluster and no Target, a spec that names a cluster gets
	// one, started once for all the runs.
	Options
	Hooks
}

// repeatVersion is the version of repeat.json.
const repeatVersion = 1

// RepeatFileName is the file a repeat directory holds its aggregate in.
const RepeatFileName = "repeat.json"

// RepeatFile is repeat.json: the runs of one experiment repeated with seeds
// Seed, Seed+1, ..., and each finding aggregated over them.
type RepeatFile struct {
	Version    int    `json:"version"`
	Tool       string `json:"tool"`
	Experiment string `json:"experiment"`
	Spec       *Spec  `json:"spec"`
	// Repeats is the number of runs asked for; Runs are those that ran.
	Repeats int         `json:"repeats"`
	Runs    []RepeatRun `json:"runs"`
	// Findings are aggregated over the runs that count (neither interrupted nor
	// without findings); Findings[k].Values[i] and .Verdicts[i] are Runs[i]'s.
	Findings []RepeatFinding `json:"findings"`
	// Verdict is the worst of the aggregated verdicts (on the medians, or the worst
	// run for a strict finding): what the exit code follows.
	Verdict     Verdict   `json:"verdict"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Interrupted bool      `json:"interrupted,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// RepeatRun is one run of a repeat.
type RepeatRun struct {
	Dir         string  `json:"dir"` // relative to the repeat directory: r1, r2, ...
	Seed        uint64  `json:"seed"`
	Verdict     Verdict `json:"verdict,omitempty"` // "": it measured nothing
	Counted     bool    `json:"counted"`           // its findings are in the aggregate
	Interrupted bool    `json:"interrupted,omitempty"`
	Error       string  `json:"error,omitempty"`
}

// Seeds are the runs' seeds, in order.
func (f *RepeatFile) Seeds() []uint64 {
	out := make([]uint64, len(f.Runs))
	for i, r := range f.Runs {
		out[i] = r.Seed
	}
	return out
}

// Measured says whether a run counts in the aggregate (it was scored and not
// interrupted).
func (f *RepeatFile) Measured() bool {
	return slices.ContainsFunc(f.Runs, func(r RepeatRun) bool { return r.Counted })
}

// Unstable are the aggregated findings whose runs disagreed.
func (f *RepeatFile) Unstable() []RepeatFinding {
	var out []RepeatFinding
	for _, rf := range f.Findings {
		if rf.Unstable {
			out = append(out, rf)
		}
	}
	return out
}

// MedianFindings are the aggregated findings as findings (RepeatFinding.Finding).
func (f *RepeatFile) MedianFindings() []Finding {
	out := make([]Finding, len(f.Findings))
	for i, rf := range f.Findings {
		out[i] = rf.Finding()
	}
	return out
}

// RepeatResult is what Repeat produced.
type RepeatResult struct {
	Dir  string
	File *RepeatFile
	// Results are each run's (nil where a run measured nothing), in order.
	Results []*Result
}

// Verdict is the worst of the aggregated verdicts (on the medians; the worst run for a strict finding).
func (r *RepeatResult) Verdict() Verdict { return r.File.Verdict }

// Repeat runs spec n times with seeds o.Seed, o.Seed+1, ..., each in its own
// directory under o.Out (r1, r2, ...), and writes repeat.json there: every finding
// as its median with min..max over the runs, its verdict taken on the median, and
// marked unstable where the runs disagreed (AggregateFindings). repeat.json is
// rewritten after each run, so an interrupted repeat keeps what ran.
//
// A spec that starts its own cluster gets one, started once and shared by the
// runs. A run that returns an error ends the repeat (a fault that did not recover
// leaves the cluster hurt; an interruption stops it): the result holds the runs
// so far, with the error. The result is never nil.
func Repeat(ctx context.Context, spec *Spec, n int, o RepeatOptions) (rr *RepeatResult, err error) {
	rr = &RepeatResult{Dir: o.Out, File: &RepeatFile{Version: repeatVersion, Tool: toolVersion(), Experiment: spec.Name, Spec: spec, Repeats: n, Verdict: Inconclusive}}
	if err := CheckRepeat(n); err != nil {
		return rr, err
	}
	if err := checkNewDir(o.Out); err != nil {
		return rr, err
	}
	if err := checkWhere(o.Options); err != nil {
		return rr, err
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.On == nil && o.Cluster == nil && o.Target == nil && spec.Target == "" && spec.Cluster != nil {
		// One cluster for every run: Run would start and remove one per run.
		logf("%s: one cluster for its %d runs", spec.Name, n)
		c, remove, cerr := startSpecCluster(ctx, spec, o.Labels, prefixLog(logf, spec.Name+": "))
		defer func() { err = errors.Join(err, remove(ctx)) }()
		if cerr != nil {
			return rr, cerr
		}
		o.Cluster = c
	}
	return repeatOn(ctx, spec, n, o)
}

// CheckRepeat is the one check of a repeat count: Repeat's n, SuiteOptions.Repeat
// and the CLI's --repeat all want 1 or more runs (1: a single run).
func CheckRepeat(n int) error {
	if n < 1 {
		return &UsageError{Field: "--repeat", Msg: fmt.Sprintf("%d: want 1 or more runs of each experiment", n)}
	}
	return nil
}

// repeatOn runs the repeat on the cluster or target o gives (or the spec's own
// target).
func repeatOn(ctx context.Context, spec *Spec, n int, o RepeatOptions) (*RepeatResult, error) {
	rr := &RepeatResult{Dir: o.Out, File: &RepeatFile{Version: repeatVersion, Tool: toolVersion(), Experiment: spec.Name, Spec: spec, Repeats: n, Start: time.Now()}}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return rr, fmt.Errorf("repeat directory: %w", err)
	}
	var counted [][]Finding
	var runErr error
	for i := range n {
		ro := o.Options
		name := "r" + strconv.Itoa(i+1)
		ro.Out = filepath.Join(o.Out, name)
		ro.Seed = o.Seed + uint64(i)
		if ro.Log != nil {
			ro.Log("%s: run %d of %d, seed %d", spec.Name, i+1, n, ro.Seed)
		}
		res, err := runHooked(ctx, spec, ro, o.Hooks)
		run := RepeatRun{Dir: name, Seed: ro.Seed}
		var fs []Finding
		if res != nil {
			run.Verdict, run.Interrupted = res.Verdict(), res.Interrupted
			if !res.Interrupted {
				// Scored: at least durability. An interrupted run's findings are of
				// a shorter run; they are in its run.json, not in the aggregate.
				fs = res.Findings
				if fs == nil {
					fs = []Finding{}
				}
				run.Counted = true
			}
		}
		if err != nil {
			run.Error = err.Error()
		}
		rr.File.Runs = append(rr.File.Runs, run)
		rr.Results = append(rr.Results, res)
		counted = append(counted, fs)
		rr.File.aggregate(counted)
		if err != nil {
			runErr = fmt.Errorf("run %d of %d (seed %d): %w", i+1, n, ro.Seed, err)
			rr.File.Error = runErr.Error()
			rr.File.Interrupted = ctx.Err() != nil
		}
		rr.File.End = time.Now()
		if werr := writeJSON(filepath.Join(o.Out, RepeatFileName), rr.File); werr != nil {
			runErr = errors.Join(runErr, fmt.Errorf("write %s: %w", RepeatFileName, werr))
		}
		if runErr != nil {
			break
		}
	}
	if o.RepeatDone != nil {
		o.RepeatDone(spec, rr, runErr)
	}
	return rr, runErr
}

// aggregate sets the findings and the verdict from the runs' findings so far.
func (f *RepeatFile) aggregate(runs [][]Finding) {
	f.Findings = AggregateFindings(runs)
	f.Verdict = Pass
	some := false
	for _, fs := range runs {
		some = some || fs != nil
	}
	if !some {
		f.Verdict = Inconclusive // nothing measured
		return
	}
	for _, rf := range f.Findings {
		switch rf.Verdict {
		case Fail:
			f.Verdict = Fail
			return
		case Inconclusive:
			f.Verdict = Inconclusive
		}
	}
}

// checkNewDir refuses an output directory that is a file or not empty.
func checkNewDir(dir string) error {
	if dir == "" {
		return &UsageError{Field: "--out", Msg: "no run directory"}
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return &UsageError{Field: "--out", Msg: fmt.Sprintf("%s is a file: give a new directory", dir)}
	} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return &UsageError{Field: "--out", Msg: fmt.Sprintf("%s is not empty: give a new directory", dir)}
	} else if err != nil && !os.IsNotExist(err) {
		return &UsageError{Field: "--out", Msg: err.Error()}
	}
	return nil
}

// ErrBadRepeatFile: a repeat.json this program did not write. errors.Is holds for
// ErrBadRunFile too, so whoever refuses a bad run directory refuses it alike.
var ErrBadRepeatFile error = &kindOf{msg: "not a repeat.json written by htapchaos", kind: ErrBadRunFile}

// kindOf is an error that is also another.
type kindOf struct {
	msg  string
	kind error
}

func (e *kindOf) Error() string        { return e.msg }
func (e *kindOf) Is(target error) bool { return target == e.kind }

// IsRepeatDir says whether dir is a repeat directory: it holds repeat.json and
// no run.json.
func IsRepeatDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "run.json")); err == nil {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, RepeatFileName))
	return err == nil && st.Mode().IsRegular()
}

// ReadRepeatFile reads a repeat directory's repeat.json. Like ReadRunFile, it
// refuses a file with no version or a newer one (ErrNewerVersion), naming the
// file; a missing file is ErrNotRunDir.
func ReadRepeatFile(dir string) (*RepeatFile, error) {
	path := filepath.Join(dir, RepeatFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s: %w", dir, RepeatFileName, ErrNotRunDir)
		}
		return nil, err
	}
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", path, ErrBadRepeatFile, err)
	}
	if v.Version == nil || *v.Version < 1 {
		return nil, fmt.Errorf("read %s: no version: %w", path, ErrBadRepeatFile)
	}
	if *v.Version > repeatVersion {
		return nil, fmt.Errorf("read %s: version %d: %w (this one reads up to version %d): upgrade htapchaos", path, *v.Version, ErrNewerVersion, repeatVersion)
	}
	var rf RepeatFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", path, ErrBadRepeatFile, err)
	}
	for _, r := range rf.Runs {
		if r.Dir == "" || filepath.IsAbs(r.Dir) || strings.Contains(filepath.ToSlash(r.Dir), "..") {
			return nil, fmt.Errorf("read %s: run directory %q: %w", path, r.Dir, ErrBadRepeatFile)
		}
	}
	return &rf, nil
}

// RunDirs are the directories of a repeat's runs under dir (the repeat
// directory), in order; runs that wrote no run.json are left out.
func (f *RepeatFile) RunDirs(dir string) []string {
	var out []string
	for _, r := range f.Runs {
		d := filepath.Join(dir, r.Dir)
		if _, err := os.Stat(filepath.Join(d, "run.json")); err == nil {
			out = append(out, d)
		}
	}
	return out
}
