package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/report"
	"github.com/htapchaos/htapchaos/testcontainers"
)

// verdictError is a run whose findings include a failed verdict: exit 1.
type verdictError struct{ failed []string }

func (e verdictError) Error() string {
	return "failed verdicts: " + strings.Join(e.failed, ", ")
}

// loadSpec reads NAME (a builtin) or FILE.
func loadSpec(arg string, o experiments.ParseOptions) (*experiments.Spec, error) {
	if st, err := os.Stat(arg); (err == nil && st.Mode().IsRegular()) || strings.ContainsAny(arg, "/.") {
		return experiments.LoadSpec(arg, o)
	}
	return experiments.Builtin(arg, o)
}

type runFlags struct {
	cluster, target, out string
	seed                 uint64
	quick, allow         bool
	set                  []string
	metricsAddr          string
	observer             experiments.Observer // the --metrics-addr endpoint; nil: off
	junit                string               // --junit FILE; "": no report
}

func (f *runFlags) parseOptions() experiments.ParseOptions {
	return experiments.ParseOptions{Quick: f.quick, Set: f.set}
}

func (a *app) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the builtin experiments with their failure modes",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EXPERIMENT\tFAILURE MODES\tTOTAL (QUICK)\tDESCRIPTION")
			for _, n := range experiments.BuiltinNames() {
				s, err := experiments.Builtin(n, experiments.ParseOptions{})
				if err != nil {
					return err
				}
				q, _ := experiments.Builtin(n, experiments.ParseOptions{Quick: true})
				fmt.Fprintf(tw, "%s\t%s\t%v (%v)\t%s\n", n, strings.Join(s.Modes, ","), s.Total(), q.Total(), s.Description)
			}
			return tw.Flush()
		},
	}
}

func (a *app) validateCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "validate FILE|NAME",
		Short: "Check an experiment file and say what it would run",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := loadSpec(args[0], f.parseOptions())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: ok: %s, %d workload(s), %d fault(s), %v in all; scores %s\n",
				args[0], s.Name, len(s.Workloads), len(s.Faults), s.Total(), strings.Join(s.Modes, ", "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&f.quick, "quick", false, "apply the quick profile")
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "override path=value (repeatable)")
	return cmd
}

func (a *app) runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run NAME|FILE",
		Short: "Run one experiment and score it against its failure modes",
		Long: `Run an experiment: a builtin (htapchaos list) or a file. It starts the cluster the
experiment names (or uses --cluster, or --target for a cluster htapchaos did not
create), seeds the data, runs workloads and faults on one clock while it samples
every node's indicators each second, audits durability, and scores each failure
mode with a verdict and its evidence. Results go to --out as the run goes: run.json,
summary.json, one .hlog per workload, intervals.jsonl, indicators.jsonl, events.jsonl.

Exit codes: 0 no verdict failed, 1 a verdict failed, 2 bad input, 3 infrastructure
error, 130 interrupted (what was measured is kept and scored).`,
		Example: `  htapchaos run failover-kill --quick
  htapchaos run my-experiment.yaml --out runs/today --set workloads.oltp.rate=1000
  htapchaos run partition --cluster demo --seed 7`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := experiments.CheckJUnitPath("--junit", f.junit); err != nil {
				return err
			}
			spec, err := loadSpec(args[0], f.parseOptions())
			if err != nil {
				return err
			}
			defer a.useProcs(spec.Procs)()
			stopMetrics, err := a.runMetrics(&f)
			if err != nil {
				return err
			}
			defer stopMetrics()
			o, cleanup, err := a.runOptions(ctx, &f, spec.Name)
			if err != nil {
				return err
			}
			defer cleanup()
			t0 := time.Now()
			res, err := a.runOne(ctx, spec, o)
			if jerr := a.writeJUnit(f.junit, []experiments.JUnitRun{experiments.NewJUnitRun(spec.Name, o, t0, res, err)}); jerr != nil {
				err = errors.Join(err, jerr)
			}
			return a.finish([]*experiments.Result{res}, err)
		},
	}
	a.runFlags(cmd, &f)
	return cmd
}

func (a *app) suiteCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "suite",
		Short: "Run every builtin experiment, one after the other",
		Long: `Run every builtin experiment in turn, each in its own directory under --out. Those
that ask for the same cluster share one, started once. Exit codes as for run.`,
		Example: `  htapchaos suite --quick --out runs/suite`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (rerr error) {
			ctx := cmd.Context()
			if err := experiments.CheckJUnitPath("--junit", f.junit); err != nil {
				return err
			}
			var junit []experiments.JUnitRun // what ran, written last however the suite ends
			defer func() {
				if len(junit) > 0 || rerr == nil {
					rerr = errors.Join(rerr, a.writeJUnit(f.junit, junit))
				}
			}()
			var specs []*experiments.Spec
			for _, n := range experiments.BuiltinNames() {
				s, err := experiments.Builtin(n, f.parseOptions())
				if err != nil {
					return err
				}
				specs = append(specs, s)
			}
			defer a.useProcs(func(limit int) int {
				n := 1
				for _, s := range specs {
					n = max(n, s.Procs(limit))
				}
				return n
			})()
			stopMetrics, err := a.runMetrics(&f) // one endpoint for the whole suite
			if err != nil {
				return err
			}
			defer stopMetrics()
			if f.out == "" {
				f.out = filepath.Join("runs", "suite-"+time.Now().Format("20060102-150405"))
			}
			base := f.out
			var all []*experiments.Result
			defer func() { a.writeSuiteIndex(base, junit) }()
			shared := map[string]*testcontainers.Cluster{}
			defer func() {
				cctx, cancel := cleanupContext(ctx)
				defer cancel()
				for _, c := range shared {
					if err := c.Terminate(cctx); err != nil {
						fmt.Fprintf(a.stderr, "remove cluster %s: %v\n", c.Name, err)
					}
				}
			}()
			var errs []error
			for _, s := range specs {
				f.out = filepath.Join(base, s.Name)
				o, cleanup, err := a.runOptions(ctx, &f, s.Name)
				if err != nil {
					return err
				}
				t0 := time.Now()
				if o.Cluster == nil && o.Target == nil && s.Cluster != nil {
					// The same cluster and the same data: the seeding adds rows, so
					// experiments asking for other sizes get a cluster of their own.
					key := fmt.Sprintf("%+v %+v", s.ClusterConfig(), s.Data)
					c, ok := shared[key]
					if !ok {
						a.progress("suite: starting a %s cluster of %d node(s) for the experiments that ask for it", s.Cluster.Topology, s.Cluster.Nodes)
						cfg := s.ClusterConfig()
						cfg.Progress = a.progress
						c, err = testcontainers.Run(ctx, cfg)
						if c != nil {
							shared[key] = c
						}
						if err != nil {
							cleanup()
							junit = append(junit, experiments.NewJUnitRun(s.Name, o, t0, nil, err))
							return err
						}
					}
					o.Cluster = c
				}
				a.progress("suite: %s", s.Name)
				res, err := a.runOne(ctx, s, o)
				cleanup()
				junit = append(junit, experiments.NewJUnitRun(s.Name, o, t0, res, err))
				if res != nil {
					all = append(all, res)
				}
				if errors.Is(err, experiments.ErrNotRecovered) {
					// A hurt cluster must not host the next experiment.
					for k, c := range shared {
						if c == o.Cluster {
							cctx, cancel := cleanupContext(ctx)
							if terr := c.Terminate(cctx); terr != nil {
								fmt.Fprintf(a.stderr, "remove cluster %s: %v\n", c.Name, terr)
							}
							cancel()
							delete(shared, k)
						}
					}
				}
				if err != nil {
					if ctx.Err() != nil {
						return errors.Join(a.finish(all, nil), err)
					}
					errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
				}
			}
			a.progress("suite: results in %s", base)
			return a.finish(all, errors.Join(errs...))
		},
	}
	a.runFlags(cmd, &f)
	cmd.Flags().Lookup("out").Usage = "directory for the runs, one subdirectory each (default runs/suite-TIME)"
	return cmd
}

func (a *app) runFlags(cmd *cobra.Command, f *runFlags) {
	fl := cmd.Flags()
	if cmd.Name() == "run" {
		fl.StringVar(&f.cluster, "cluster", "", "use this running cluster (htapchaos cluster ls)")
		fl.StringVar(&f.target, "target", "", "exec target file: a cluster htapchaos did not create")
		fl.BoolVar(&f.allow, "allow-destructive", false, "allow faults that can hurt a --target cluster")
	}
	fl.StringVar(&f.out, "out", "", "run directory (default runs/NAME-TIME)")
	fl.Uint64Var(&f.seed, "seed", uint64(time.Now().UnixNano()), "seed for every random choice")
	fl.BoolVar(&f.quick, "quick", false, "the quick profile: short enough for CI")
	fl.StringArrayVar(&f.set, "set", nil, "override path=value, e.g. workloads.oltp.rate=1000 (repeatable)")
	metricsFlag(cmd, &f.metricsAddr)
	fl.StringVar(&f.junit, "junit", "", "write a JUnit XML report to FILE at the end: a test case per finding, failures with their evidence")
}

// writeSuiteIndex writes the suite's index page: every experiment that ran or
// tried to, with its verdict or error, linking its report. A failure is said, not
// fatal: the runs and their reports are written already.
func (a *app) writeSuiteIndex(base string, ran []experiments.JUnitRun) {
	if len(ran) == 0 {
		return
	}
	var runs []report.IndexRun
	for _, r := range ran {
		ir := report.IndexRun{Name: r.Experiment, Dir: r.Dir, Verdict: experiments.Worst(r.Findings), Findings: r.Findings}
		if r.Err != nil {
			ir.Error = r.Err.Error()
			if len(r.Findings) == 0 {
				ir.Verdict = "error" // nothing was scored
			}
		}
		runs = append(runs, ir)
	}
	page := filepath.Join(base, "index.html")
	if err := report.WriteIndex(page, "htapchaos suite "+filepath.Base(base), runs); err != nil {
		a.progress("suite: no index page: %v", err)
		return
	}
	a.progress("suite: reports indexed in %s", page)
}

// writeJUnit writes the --junit report, if one was asked for.
func (a *app) writeJUnit(path string, runs []experiments.JUnitRun) error {
	if path == "" {
		return nil
	}
	if err := experiments.WriteJUnitFile(path, runs); err != nil {
		return err
	}
	a.progress("JUnit report in %s", path)
	return nil
}

// runOptions turns flags into run options; cleanup closes what they opened.
func (a *app) runOptions(ctx context.Context, f *runFlags, name string) (experiments.Options, func(), error) {
	o := experiments.Options{Seed: f.seed, Out: f.out, AllowDestructive: f.allow, Observer: f.observer}
	if o.Out == "" {
		o.Out = filepath.Join("runs", name+"-"+time.Now().Format("20060102-150405"))
	}
	if f.cluster != "" && f.target != "" {
		return o, func() {}, usagef("--cluster and --target: give one")
	}
	if f.cluster != "" {
		c, err := attach(ctx, f.cluster)
		if err != nil {
			return o, func() {}, err
		}
		o.Cluster = c
	}
	if f.target != "" {
		t, err := faults.LoadExecTarget(f.target)
		if err != nil {
			return o, func() {}, err
		}
		o.Target = t
	}
	prog := newProgressPrinter(a.stderr)
	o.Progress = func(p experiments.Progress) {
		line := fmt.Sprintf("%-12s %4.0fs/%.0fs  %7.0f ops/s  p99 %8s  errors %d", p.Phase, p.Elapsed.Seconds(), p.Total.Seconds(), p.OpsPerSec, fmtDur(p.P99), p.Errors)
		if len(p.ActiveFaults) > 0 {
			line += "  faults " + strings.Join(p.ActiveFaults, ",")
		}
		prog.show(line)
	}
	o.Log = func(format string, args ...any) { prog.log(func() { a.progress(format, args...) }) }
	return o, prog.done, nil
}

func (a *app) runOne(ctx context.Context, s *experiments.Spec, o experiments.Options) (*experiments.Result, error) {
	a.progress("%s: writing %s", s.Name, o.Out)
	res, err := experiments.Run(ctx, s, o)
	if res != nil {
		printFindings(a.stdout, s.Name, res)
		// The report comes from what the run wrote, so a failed report never costs
		// the run its results: it is said, and `htapchaos report DIR` can try again.
		page, rerr := a.writeReport(res.Dir, "", filepath.Join(res.Dir, "charts"))
		if rerr != nil {
			a.progress("%s: no report: %v", s.Name, rerr)
			page = "(none)"
		}
		fmt.Fprintf(a.stdout, "results in %s (run.json, summary.json, indicators.jsonl, events.jsonl); report %s\n\n", res.Dir, page)
	}
	return res, err
}

// finish maps the runs' verdicts and error to the exit code's error.
func (a *app) finish(rs []*experiments.Result, err error) error {
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range rs {
		if r != nil && r.Verdict() == experiments.Fail {
			failed = append(failed, r.Recorded.Spec.Name)
		}
	}
	if len(failed) > 0 {
		return verdictError{failed}
	}
	return nil
}

// printFindings is the verdict table.
func printFindings(w io.Writer, name string, r *experiments.Result) {
	fmt.Fprintf(w, "\n%s: %s\n", name, strings.ToUpper(string(r.Verdict())))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tFINDING\tVERDICT\tVALUE\tBUDGET\tEVIDENCE\tARTICLE")
	for _, f := range r.Findings {
		ev := ""
		if len(f.Evidence) > 0 {
			e := f.Evidence[0]
			var parts []string
			for _, p := range []string{e.Workload, e.Op, nodeText(e.Node), e.Phase, e.Detail} {
				if p != "" {
					parts = append(parts, p)
				}
			}
			ev = strings.Join(parts, " ")
		}
		val := fmt.Sprintf("%.4g %s", f.Value, f.Unit)
		budget := fmt.Sprintf("%s %.4g %s", f.Op, f.Budget, f.Unit)
		if f.Op == "" {
			budget = "report only"
		}
		if f.Verdict == experiments.Inconclusive && f.Reason != "" {
			val, budget = "-", f.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Mode, f.Name, f.Verdict, val, budget, ev, f.Reference)
	}
	tw.Flush()
}

func nodeText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("n%d", n)
}
