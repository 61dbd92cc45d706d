package experiments

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// LoadSpecArg reads one experiment named on a command line: a builtin NAME
// (BuiltinNames) or a spec FILE. An argument that is a file, or that has a "/" or
// a "." in it, is a file; anything else a builtin's name.
func LoadSpecArg(arg string, o ParseOptions) (*Spec, error) {
	if st, err := os.Stat(arg); (err == nil && st.Mode().IsRegular()) || strings.ContainsAny(arg, "/.") {
		return LoadSpec(arg, o)
	}
	return Builtin(arg, o)
}

// LoadSpecs reads the experiments of a suite: each argument a builtin NAME or a
// spec FILE (LoadSpecArg), mixed, in the order given; none: every builtin, in
// BuiltinNames' order. Every bad argument is reported at once. Two experiments of
// one name are refused: their results would share Out/NAME.
func LoadSpecs(args []string, o ParseOptions) ([]*Spec, error) {
	if len(args) == 0 {
		args = BuiltinNames()
	}
	var specs []*Spec
	var errs []error
	from := map[string]string{} // experiment name -> the argument that named it
	for _, a := range args {
		s, err := LoadSpecArg(a, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := from[s.Name]; ok {
			errs = append(errs, &UsageError{Field: a, Msg: fmt.Sprintf("experiment %q is also %s: a suite runs each name once (its results go to OUT/%s)", s.Name, prev, s.Name)})
			continue
		}
		from[s.Name] = a
		specs = append(specs, s)
	}
	return specs, errors.Join(errs...)
}

// SuiteProcs is the processors the suite's heaviest experiment needs (Spec.Procs),
// given the machine's limit: what a suite's process should run on.
func SuiteProcs(specs []*Spec, limit int) int {
	n := 1
	for _, s := range specs {
		n = max(n, s.Procs(limit))
	}
	return n
}

// SuiteOptions say how Suite runs.
type SuiteOptions struct {
	// Options of every run. Out is the suite's directory: experiment NAME writes
	// into Out/NAME. Seed is each experiment's seed (its first, when repeated).
	// With Cluster or Target, every experiment runs on it; else the experiments
	// that ask for the same cluster and data share one, started once. Log also
	// receives the suite's own lines.
	Options
	// Repeat runs each experiment this many times (see Repeat): Out/NAME is then a
	// repeat directory. 1: once, Out/NAME a run directory. Fewer than 1 is bad
	// input, as for Repeat (CheckRepeat).
	Repeat int
	Hooks
}

// SuiteRun is one experiment of a suite.
type SuiteRun struct {
	Spec     *Spec
	Dir      string // its run or repeat directory
	Seed     uint64 // its (first) seed
	Start    time.Time
	Duration time.Duration // from the start of its cluster, when it started one
	// Result is a single run's (nil when it measured nothing, or was repeated);
	// Repeat a repeated one's.
	Result *Result
	Repeat *RepeatResult
	Err    error
}

// Verdict is the run's verdict, or the repeat's on the medians; "" when nothing
// was measured.
func (r SuiteRun) Verdict() Verdict {
	switch {
	case r.Repeat != nil && r.Repeat.File.Measured():
		return r.Repeat.Verdict()
	case r.Result != nil:
		return r.Result.Verdict()
	}
	return ""
}

// JUnit is the run's entry of a JUnit report.
func (r SuiteRun) JUnit() JUnitRun {
	o := Options{Out: r.Dir, Seed: r.Seed}
	var jr JUnitRun
	if r.Repeat != nil {
		jr = NewJUnitRepeat(r.Spec.Name, o, r.Start, r.Repeat, r.Err)
	} else {
		jr = NewJUnitRun(r.Spec.Name, o, r.Start, r.Result, r.Err)
	}
	jr.Duration = r.Duration
	return jr
}

// SuiteResult is what Suite produced: one entry per experiment that ran or tried
// to, in order.
type SuiteResult struct {
	Dir  string
	Runs []SuiteRun
}

// JUnit is the suite's JUnit report entries.
func (s *SuiteResult) JUnit() []JUnitRun {
	out := make([]JUnitRun, len(s.Runs))
	for i, r := range s.Runs {
		out[i] = r.JUnit()
	}
	return out
}

// Failed names the experiments whose verdict (on the medians, when repeated)
// failed.
func (s *SuiteResult) Failed() []string {
	var out []string
	for _, r := range s.Runs {
		if r.Verdict() == Fail {
			out = append(out, r.Spec.Name)
		}
	}
	return out
}

// Suite runs specs one after the other, each in its own directory under o.Out,
// repeated o.Repeat times when asked. Experiments that ask for the same cluster
// and the same data share one, started when the first needs it and removed at the
// end; one that a fault left hurt (ErrNotRecovered) is removed at once, and the
// next experiment asking for it gets a new one. An experiment's error does not
// stop the suite, except an interruption or a cluster that could not start; the
// errors, and those of removing its clusters, are returned joined. The result is
// never nil and holds what ran.
func Suite(ctx context.Context, specs []*Spec, o SuiteOptions) (res *SuiteResult, err error) {
	res = &SuiteResult{Dir: o.Out}
	if o.Out == "" {
		return res, &UsageError{Field: "--out", Msg: "no suite directory"}
	}
	if err := CheckRepeat(o.Repeat); err != nil {
		return res, err
	}
	if err := checkWhere(o.Options); err != nil {
		return res, err
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	shared := map[string]suiteCluster{}
	var errs, removeErrs []error
	defer func() {
		for _, c := range shared {
			removeErrs = append(removeErrs, c.remove(ctx))
		}
		err = errors.Join(err, errors.Join(removeErrs...))
	}()
	for i, s := range specs {
		ro := o.Options
		ro.Out = filepath.Join(o.Out, s.Name)
		sr := SuiteRun{Spec: s, Dir: ro.Out, Seed: ro.Seed, Start: time.Now()}
		logf("[%d/%d] %s", i+1, len(specs), s.Name)
		if ro.On == nil && ro.Cluster == nil && ro.Target == nil && s.Target == "" && s.Cluster != nil {
			c, err := sharedCluster(ctx, shared, s, o.Labels, prefixLog(logf, "suite: "))
			if err != nil {
				sr.Err, sr.Duration = err, time.Since(sr.Start)
				res.Runs = append(res.Runs, sr)
				return res, err
			}
			ro.Cluster = c
		}
		var err error
		if o.Repeat > 1 {
			sr.Repeat, err = Repeat(ctx, s, o.Repeat, RepeatOptions{Options: ro, Hooks: o.Hooks})
		} else {
			sr.Result, err = runHooked(ctx, s, ro, o.Hooks)
		}
		sr.Err, sr.Duration = err, time.Since(sr.Start)
		res.Runs = append(res.Runs, sr)
		if errors.Is(err, ErrNotRecovered) {
			// A hurt cluster must not host the next experiment.
			for k, c := range shared {
				if c.c == ro.Cluster {
					removeErrs = append(removeErrs, c.remove(ctx))
					delete(shared, k)
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	logf("suite: results in %s", o.Out)
	return res, errors.Join(errs...)
}

// SuiteClusterKey is what experiments must have in common to share a suite's
// cluster: the cluster and the data (the seeding only adds rows, so an experiment
// asking for other sizes gets a cluster of its own).
func SuiteClusterKey(s *Spec) string {
	return fmt.Sprintf("%+v %+v", s.ClusterConfig(), s.Data)
}

// suiteCluster is a cluster the suite started, and how to remove it.
type suiteCluster struct {
	c      *htc.Cluster
	remove func(context.Context) error
}

// sharedCluster is the suite's cluster for s, started on first use (and kept
// in shared for the experiments that ask for the same).
func sharedCluster(ctx context.Context, shared map[string]suiteCluster, s *Spec, labels map[string]string, logf func(string, ...any)) (*htc.Cluster, error) {
	key := SuiteClusterKey(s)
	if c, ok := shared[key]; ok {
		return c.c, nil
	}
	c, remove, err := startSpecCluster(ctx, s, labels, logf)
	if c != nil {
		shared[key] = suiteCluster{c, remove} // removed at the end, also when it did not start whole
	}
	return c, err
}

// clusterRemoveTimeout bounds the removal of a cluster that a run, a repeat or
// a suite started.
const clusterRemoveTimeout = 2 * time.Minute

// startSpecCluster starts the cluster spec asks for (Spec.ClusterConfig)
// with labels, its progress lines to logf: what Run, Repeat and Suite do when
// given no cluster and no target. remove removes it (a no-op when nothing was
// started) on a context of its own, ctx's values without its cancellation and
// bounded by clusterRemoveTimeout, so that an interrupted run still cleans up.
// Like htc.Run, it returns what it started with the error: call remove
// whatever err is.
func startSpecCluster(ctx context.Context, spec *Spec, labels map[string]string, logf func(string, ...any)) (c *htc.Cluster, remove func(context.Context) error, err error) {
	cfg := spec.ClusterConfig()
	cfg.Labels = labels
	cfg.Progress = logf
	logf("starting a %s cluster of %d node(s)", cfg.Topology, cfg.Nodes)
	c, err = htc.Run(ctx, cfg)
	remove = func(ctx context.Context) error {
		if c == nil {
			return nil
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clusterRemoveTimeout)
		defer cancel()
		if err := c.Terminate(rctx); err != nil {
			return fmt.Errorf("remove cluster %s: %w", c.Name, err)
		}
		return nil
	}
	return c, remove, err
}

// prefixLog is logf with every line prefixed.
func prefixLog(logf func(string, ...any), prefix string) func(string, ...any) {
	return func(format string, args ...any) { logf(prefix+format, args...) }
}

// runHooked is one Run between the hooks.
func runHooked(ctx context.Context, s *Spec, o Options, h Hooks) (*Result, error) {
	var end func()
	if h.Start != nil {
		end = h.Start(s, &o)
	}
	res, err := Run(ctx, s, o)
	if end != nil {
		end()
	}
	if h.Done != nil {
		h.Done(s, o, res, err)
	}
	return res, err
}
