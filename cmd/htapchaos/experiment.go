package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/report"
	"github.com/htapchaos/htapchaos/units"
)

// verdictError is a run whose findings include a failed verdict: exit 1.
type verdictError struct{ failed []string }

func (e verdictError) Error() string {
	return "failed verdicts: " + strings.Join(e.failed, ", ")
}

type runFlags struct {
	cluster, target, out string
	seed                 uint64
	quick, allow         bool
	skipHealth, writes   bool
	noGuard, dryRun      bool
	set, abortOn         []string
	metricsAddr          string
	observer             experiments.Observer // the --metrics-addr endpoint; nil: off
	junit                string               // --junit FILE; "": no report
	repeat               int                  // --repeat N: runs of each experiment
}

func (f *runFlags) parseOptions() experiments.ParseOptions {
	return experiments.ParseOptions{Quick: f.quick, Set: f.set}
}

func (a *app) listCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the builtin experiments with their failure modes",
		Long: `List the builtin experiments with their failure modes and timeline (with --quick in
brackets). --json prints an array of objects with the fields name, description,
modes, topology, nodes, workloads, faults, total and quick_total (durations as
"3m30s").`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var infos []specInfo
			for _, n := range experiments.BuiltinNames() {
				s, err := experiments.Builtin(n, experiments.ParseOptions{})
				if err != nil {
					return err
				}
				in := newSpecInfo(s)
				if q, err := experiments.Builtin(n, experiments.ParseOptions{Quick: true}); err == nil {
					in.QuickTotal = units.Duration(q.Total())
				}
				infos = append(infos, in)
			}
			if asJSON {
				return writeJSON(a.stdout, infos)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EXPERIMENT\tFAILURE MODES\tTOTAL (QUICK)\tDESCRIPTION")
			for _, in := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%v (%v)\t%s\n", in.Name, strings.Join(in.Modes, ","), in.Total.D(), in.QuickTotal.D(), in.Description)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: an array of experiments")
	return cmd
}

func (a *app) validateCmd() *cobra.Command {
	var f runFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate FILE|NAME",
		Short: "Check an experiment file and say what it would run",
		Long: `Check an experiment file (or a builtin, with --quick and --set applied) and say what
it would run. Every problem is reported at once with its file and line; exit code 2
when there is one. --json prints {"arg", "ok", "experiment": {name, modes, topology,
nodes, workloads, faults, total}} or {"arg", "ok": false, "errors": [{"file", "line",
"field", "message"}]}, still with exit code 2 on a bad spec.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := experiments.LoadSpecArg(args[0], f.parseOptions())
			if asJSON {
				v := validation{Arg: args[0], OK: err == nil}
				if err != nil {
					v.Errors = inputErrors(err)
				} else {
					in := newSpecInfo(s)
					v.Experiment = &in
				}
				// The errors also go to stderr as text; the exit code is 2 all the same.
				return errors.Join(err, writeJSON(a.stdout, v))
			}
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON, errors included (exit code 2 still on a bad spec)")
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

--repeat N runs it N times with seeds --seed, --seed+1, ... on one cluster, each run
in --out/r1, r2, ...; --out/repeat.json holds every finding's median with min..max,
its verdict taken on the median, and "unstable" where the runs' verdicts differ.

Exit codes: 0 no verdict failed, 1 a verdict failed (with --repeat: a verdict on a
median; unstable findings alone do not change it), 2 bad input, 3 infrastructure
error, 130 interrupted (what was measured is kept and scored).`,
		Example: `  htapchaos run failover-kill --quick
  htapchaos run my-experiment.yaml --out runs/today --set workloads.oltp.rate=1000
  htapchaos run partition --cluster demo --seed 7
  htapchaos run htap-contention --quick --repeat 3 --out runs/htap3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := experiments.CheckRepeat(f.repeat); err != nil { // a usage error: exit 2
				return err
			}
			if err := experiments.CheckJUnitPath("--junit", f.junit); err != nil {
				return err
			}
			spec, err := experiments.LoadSpecArg(args[0], f.parseOptions())
			if err != nil {
				return err
			}
			if f.dryRun {
				return a.dryRun(spec, &f)
			}
			defer a.useProcs(spec.Procs)()
			stopMetrics, err := a.runMetrics(&f)
			if err != nil {
				return err
			}
			defer stopMetrics()
			o, err := a.runOptions(ctx, &f, spec.Name)
			if err != nil {
				return err
			}
			t0 := time.Now()
			var (
				jr     experiments.JUnitRun
				failed []string
			)
			if f.repeat > 1 {
				var rr *experiments.RepeatResult
				rr, err = experiments.Repeat(ctx, spec, f.repeat, experiments.RepeatOptions{Options: o, Hooks: a.runHooks()})
				jr = experiments.NewJUnitRepeat(spec.Name, o, t0, rr, err)
				if rr.File.Measured() && rr.Verdict() == experiments.Fail {
					failed = append(failed, spec.Name)
				}
			} else {
				var res *experiments.Result
				res, err = a.runOne(ctx, spec, o)
				jr = experiments.NewJUnitRun(spec.Name, o, t0, res, err)
				if res != nil && res.Verdict() == experiments.Fail {
					failed = append(failed, spec.Name)
				}
			}
			if jerr := a.writeJUnit(f.junit, []experiments.JUnitRun{jr}); jerr != nil {
				err = errors.Join(err, jerr)
			}
			return a.finish(failed, err)
		},
	}
	a.runFlags(cmd, &f)
	return cmd
}

func (a *app) suiteCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "suite [NAME|FILE...]",
		Short: "Run a set of experiments one after the other (every builtin by default)",
		Long: `Run experiments in turn, each in its own directory under --out: the builtins
and spec files named (mixed, in the order given), or every builtin when none is
named. "[i/N] NAME" is printed as each starts. Those that ask for the same cluster
share one, started once; with --cluster or --target every experiment runs on that
cluster. With --repeat N each runs N times (seeds --seed, --seed+1, ...) and its
directory is a repeat directory: r1, r2, ... and repeat.json with each finding's
median, min..max, verdict on the median and whether it is unstable. --out gets an
index.html linking every report. Exit codes as for run.`,
		Example: `  htapchaos suite --quick --out runs/suite
  htapchaos suite failover-kill partition my-experiment.yaml --quick
  htapchaos suite --cluster demo --quick
  htapchaos suite --quick --repeat 3 --out runs/nightly --junit junit.xml`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := experiments.CheckRepeat(f.repeat); err != nil { // a usage error: exit 2
				return err
			}
			if err := experiments.CheckJUnitPath("--junit", f.junit); err != nil {
				return err
			}
			specs, err := experiments.LoadSpecs(args, f.parseOptions())
			if err != nil {
				return err
			}
			defer a.useProcs(func(limit int) int { return experiments.SuiteProcs(specs, limit) })()
			stopMetrics, err := a.runMetrics(&f) // one endpoint for the whole suite
			if err != nil {
				return err
			}
			defer stopMetrics()
			if f.out == "" {
				f.out = filepath.Join("runs", "suite-"+time.Now().Format("20060102-150405"))
			}
			o, err := a.runOptions(ctx, &f, "suite")
			if err != nil {
				return err
			}
			res, err := experiments.Suite(ctx, specs, experiments.SuiteOptions{Options: o, Repeat: f.repeat, Hooks: a.runHooks()})
			// The report and the index hold what ran, however the suite ended.
			junit := res.JUnit()
			if len(junit) > 0 || err == nil {
				err = errors.Join(err, a.writeJUnit(f.junit, junit))
			}
			a.writeSuiteIndex(res.Dir, junit)
			return a.finish(res.Failed(), err)
		},
	}
	a.runFlags(cmd, &f)
	cmd.Flags().Lookup("out").Usage = "directory for the runs, one subdirectory each (default runs/suite-TIME)"
	return cmd
}

func (a *app) runFlags(cmd *cobra.Command, f *runFlags) {
	fl := cmd.Flags()
	if cmd.Name() == "run" {
		fl.BoolVar(&f.dryRun, "dry-run", false, "print what the run would do (cluster, timeline, workloads, each fault's node and a target's commands, abort conditions) and do nothing")
	}
	if cmd.Name() == "run" || cmd.Name() == "suite" {
		fl.StringVar(&f.cluster, "cluster", "", "use this running cluster (htapchaos cluster ls)")
		fl.StringVar(&f.target, "target", "", "exec target file: a cluster htapchaos did not create")
		fl.BoolVar(&f.allow, "allow-destructive", false, "allow faults that can hurt a --target cluster")
		fl.BoolVar(&f.writes, "allow-writes", false, "consent to a --target run creating, seeding and writing htapchaos's tables in the database its DSNs name")
		fl.BoolVar(&f.noGuard, "no-abort-guard", false, "drop a --target run's default abort guard (more nodes down than the faults take down, a write gap 10 times the failover budget)")
		fl.BoolVar(&f.skipHealth, "skip-health-check", false, "run on --cluster or --target even when a node is not healthy or holds a fault's leftovers")
	}
	fl.StringVar(&f.out, "out", "", "run directory (default runs/NAME-TIME)")
	seedVar(cmd, &f.seed, "seed for every random choice")
	fl.BoolVar(&f.quick, "quick", false, "the quick profile: short enough for CI")
	fl.StringArrayVar(&f.set, "set", nil, "override path=value, e.g. workloads.oltp.rate=1000 (repeatable)")
	fl.StringArrayVar(&f.abortOn, "abort-on", nil, `stop a run when a condition holds, beside the spec's abort: list, e.g. "errors > 5% for 10s", "write_gap > 30s", "nodes_down >= 2", "memory > 97%" (repeatable; exit 4)`)
	metricsFlag(cmd, &f.metricsAddr)
	fl.StringVar(&f.junit, "junit", "", "write a JUnit XML report to FILE at the end: a test case per finding, failures with their evidence")
	fl.IntVar(&f.repeat, "repeat", 1, "run each experiment N times with seeds seed, seed+1, ... on one cluster: every finding's median and min..max, its verdict on the median, unstable where the runs disagree")
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
		if r.Repeats > 0 {
			ir.Runs = len(r.Seeds)
			for _, u := range r.Unstable {
				ir.Unstable = append(ir.Unstable, u.Mode+": "+u.Name)
			}
		}
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

// runOptions turns flags into run options: the cluster or target attached, the
// command's own lines (a repeat's, a suite's) to stderr. The hooks (runHooks) give
// each run its live line.
func (a *app) runOptions(ctx context.Context, f *runFlags, name string) (experiments.Options, error) {
	o := experiments.Options{Seed: f.seed, Out: f.out, AllowDestructive: f.allow, SkipHealthCheck: f.skipHealth, AllowWrites: f.writes,
		NoAbortGuard: f.noGuard, Observer: f.observer, Log: a.progress}
	conds, err := parseAbortOn(f.abortOn, true)
	if err != nil {
		return o, err
	}
	o.Abort = conds
	if o.Out == "" {
		o.Out = filepath.Join("runs", name+"-"+time.Now().Format("20060102-150405"))
	}
	if f.cluster != "" && f.target != "" {
		return o, usagef("--cluster and --target: give one")
	}
	if f.cluster != "" {
		c, err := attach(ctx, f.cluster)
		if err != nil {
			return o, err
		}
		o.Cluster = c
	}
	if f.target != "" {
		t, err := faults.LoadExecTarget(f.target)
		if err != nil {
			return o, err
		}
		o.Target = t
	}
	return o, nil
}

// runHooks print around each run: its live line while it runs, then its verdict
// table and report; after a repeat, the table of the medians and the repeat's page.
func (a *app) runHooks() experiments.Hooks {
	return experiments.Hooks{
		Start: func(s *experiments.Spec, o *experiments.Options) func() {
			a.progress("%s: writing %s", s.Name, o.Out)
			prog := newProgressPrinter(a.stderr)
			o.Progress = func(p experiments.Progress) {
				line := fmt.Sprintf("%-12s %4.0fs/%.0fs  %7.0f ops/s  p99 %8s  errors %d", p.Phase, p.Elapsed.Seconds(), p.Total.Seconds(), p.OpsPerSec, fmtDur(p.P99), p.Errors)
				if len(p.ActiveFaults) > 0 {
					line += "  faults " + strings.Join(p.ActiveFaults, ",")
				}
				prog.show(line)
			}
			o.Log = func(format string, args ...any) { prog.log(func() { a.progress(format, args...) }) }
			return prog.done
		},
		Done: func(s *experiments.Spec, _ experiments.Options, res *experiments.Result, _ error) {
			if res == nil {
				return
			}
			printFindings(a.stdout, s.Name, res)
			// The report comes from what the run wrote, so a failed report never costs
			// the run its results: it is said, and `htapchaos report DIR` can try again.
			page, rerr := a.writeReport(res.Dir, "", filepath.Join(res.Dir, "charts"))
			if rerr != nil {
				a.progress("%s: no report: %v", s.Name, rerr)
				page = "(none)"
			}
			fmt.Fprintf(a.stdout, "results in %s (run.json, summary.json, indicators.jsonl, events.jsonl); report %s\n\n", res.Dir, page)
		},
		RepeatDone: func(s *experiments.Spec, rr *experiments.RepeatResult, _ error) {
			if len(rr.File.Runs) == 0 {
				return
			}
			if rr.File.Measured() {
				printRepeat(a.stdout, s.Name, rr.File)
			}
			page := filepath.Join(rr.Dir, "report.html")
			if _, err := report.Write(rr.Dir, report.Options{PageOnly: true}); err != nil {
				a.progress("%s: no report of the repeat: %v", s.Name, err)
				page = "(none)"
			}
			fmt.Fprintf(a.stdout, "results in %s (repeat.json, and a run directory per run); report %s\n\n", rr.Dir, page)
		},
	}
}

// runOne runs one experiment between the hooks.
func (a *app) runOne(ctx context.Context, s *experiments.Spec, o experiments.Options) (*experiments.Result, error) {
	h := a.runHooks()
	end := h.Start(s, &o)
	res, err := experiments.Run(ctx, s, o)
	end()
	h.Done(s, o, res, err)
	return res, err
}

// finish maps the verdicts (failed: the experiments whose verdict, on the medians
// when repeated, failed) and the error to the exit code's error.
func (a *app) finish(failed []string, err error) error {
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return verdictError{failed}
	}
	return nil
}

// printRepeat is the verdict table of a repeat: each finding's median with
// min..max, its verdict on the median, marked UNSTABLE where the runs disagree.
func printRepeat(w io.Writer, name string, f *experiments.RepeatFile) {
	seeds := f.Seeds()
	fmt.Fprintf(w, "\n%s: %s on the medians of %d run(s), seeds %s\n", name, strings.ToUpper(string(f.Verdict)), len(f.Runs), seedsText(seeds))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tFINDING\tVERDICT\tMEDIAN (MIN..MAX)\tBUDGET\tRUNS\tEVIDENCE (MEDIAN RUN)")
	unstable := 0
	for _, rf := range f.Findings {
		verdict := string(rf.Verdict)
		if rf.Unstable {
			verdict += " UNSTABLE"
			unstable++
		}
		val := rf.SpreadText()
		if rf.Median != nil && rf.Unit != "" {
			val += " " + rf.Unit
		}
		budget := fmt.Sprintf("%s %.4g %s", rf.Op, rf.Budget, rf.Unit)
		if rf.Op == "" {
			budget = "report only"
		}
		if rf.Verdict == experiments.Inconclusive && rf.Reason != "" {
			budget = rf.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rf.Mode, rf.Name, verdict, val, budget, rf.CountsText(), evidenceText(rf.Evidence))
	}
	tw.Flush()
	if unstable > 0 {
		fmt.Fprintf(w, "%d finding(s) UNSTABLE: their runs gave different verdicts, so one run's verdict is not to be relied on; the exit code follows the verdicts on the medians\n", unstable)
	}
}

// seedsText is "7, 8, 9".
func seedsText(seeds []uint64) string {
	parts := make([]string, len(seeds))
	for i, s := range seeds {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ", ")
}

// evidenceText is the first item of the evidence, in a few words.
func evidenceText(ev []experiments.Evidence) string {
	if len(ev) == 0 {
		return ""
	}
	e := ev[0]
	var parts []string
	for _, p := range []string{e.Workload, e.Op, nodeText(e.Node), e.Phase, e.Detail} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " ")
}

// printFindings is the verdict table.
func printFindings(w io.Writer, name string, r *experiments.Result) {
	fmt.Fprintf(w, "\n%s: %s\n", name, strings.ToUpper(string(r.Verdict())))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tFINDING\tVERDICT\tVALUE\tBUDGET\tEVIDENCE\tARTICLE")
	for _, f := range r.Findings {
		ev := evidenceText(f.Evidence)
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
	fmt.Fprintln(w, articleNote)
}

// articleNote names the article the ARTICLE column cites.
const articleNote = `ARTICLE: Shahid Moosa, "Lessons Learned Running SingleStore in Production (The Painful Ones)"; catalog in docs/failure-modes.md`

func nodeText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("n%d", n)
}

// dryRun prints what a run would do and does nothing: no cluster is started or
// attached, no target command runs.
func (a *app) dryRun(spec *experiments.Spec, f *runFlags) error {
	conds, err := parseAbortOn(f.abortOn, true)
	if err != nil {
		return err
	}
	var target *faults.ExecTarget
	if f.target != "" {
		if target, err = faults.LoadExecTarget(f.target); err != nil {
			return err
		}
	}
	plan := spec.Plan(target, conds)
	if f.cluster != "" {
		plan = strings.Replace(plan, "\ncluster: ", "\ncluster: "+f.cluster+" (running; not removed) instead of ", 1)
	}
	fmt.Fprint(a.stdout, plan)
	return nil
}
