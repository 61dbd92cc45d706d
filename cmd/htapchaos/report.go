package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/report"
	"github.com/htapchaos/htapchaos/results"
)

func (a *app) reportCmd() *cobra.Command {
	var out, charts string
	var noCharts bool
	cmd := &cobra.Command{
		Use:   "report DIR",
		Short: "Write a run's report: one self-contained HTML page, and its charts as SVG and PNG",
		Long: `Write the report of a run directory (htapchaos run or suite): one HTML file that
works offline, with everything embedded: the verdict table with its evidence and its reference in the article the failure
modes come from (Shahid Moosa, "Lessons Learned Running SingleStore in Production";
docs/failure-modes.md); per workload, throughput and p50, p99, p99.9 and max over time with
the fault windows shaded, errors by class over time and the latency distribution per
phase; the failover gaps; and the per-node indicators on the same time axis. The charts
are also written as SVG and PNG files, for CI artifacts. The latency of each workload in
each phase is also written in HdrHistogram's percentile format, DIR/hgrm/WORKLOAD.PHASE.hgrm
(values in milliseconds), for HdrHistogram's plotFiles.html and other tools that read it.
run and suite write the report at the end of each run; this command writes it again, for
example after an upgrade.`,
		Example: `  htapchaos report runs/failover-kill-20261126-101500
  htapchaos report runs/today -o /tmp/today.html --charts /tmp/today-charts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if out != "" {
				if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
					return usagef("-o %s: directory %s does not exist", out, filepath.Dir(out))
				}
			}
			if charts == "" && !noCharts {
				charts = filepath.Join(dir, "charts")
			}
			if noCharts {
				charts = ""
			}
			path, err := a.writeReport(dir, out, charts)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the HTML file (default DIR/report.html)")
	cmd.Flags().StringVar(&charts, "charts", "", "directory for the charts as SVG and PNG files (default DIR/charts)")
	cmd.Flags().BoolVar(&noCharts, "no-charts", false, "write the HTML page only")
	return cmd
}

// writeReport writes dir's report (and charts, when chartsDir is set) and returns
// the page's path. A directory that is not a run, or a run written by a newer
// htapchaos, is bad input.
func (a *app) writeReport(dir, out, chartsDir string) (string, error) {
	if out == "" {
		out = filepath.Join(dir, "report.html")
	}
	_, err := report.Write(dir, report.Options{Out: out, ChartsDir: chartsDir})
	switch {
	case errors.Is(err, experiments.ErrNotRunDir), errors.Is(err, experiments.ErrNewerVersion), errors.Is(err, experiments.ErrBadRunFile):
		return "", usageError{err}
	case err != nil:
		return "", err
	}
	// The percentile files beside the page; without them the page still stands.
	if _, err := exportHGRM(dir); err != nil {
		a.progress("%s: no .hgrm files: %v", dir, err)
	}
	return out, nil
}

// exportHGRM writes the run's latency per workload and phase in HdrHistogram's
// percentile format, DIR/hgrm/<workload>.<phase>.hgrm (results.WriteHGRM), for
// HdrHistogram's own plotting tools.
func exportHGRM(dir string) ([]string, error) {
	rf, err := experiments.ReadRunFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, err
	}
	var ws []results.Window
	for _, p := range rf.Phases {
		if p.End.After(p.Start) {
			ws = append(ws, results.Window{Name: p.Name, Start: p.Start, End: p.End})
		}
	}
	paths, err := results.WriteHGRM(dir, ws)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // the run ended before its load: nothing to export
	}
	return paths, err
}
