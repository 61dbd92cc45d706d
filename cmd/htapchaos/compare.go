package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/compare"
)

func (a *app) compareCmd() *cobra.Command {
	var (
		htmlPath string
		asJSON   bool
		allOps   bool
	)
	cmd := &cobra.Command{
		Use:   "compare DIR_A DIR_B [DIR...]",
		Short: "Set recorded runs side by side: findings and workload percentiles, with ratios",
		Long: `Compare run directories (htapchaos run --out). Runs of the same experiment and
configuration are grouped (median and min..max over them); each group is labelled by
what differs between the groups (workloads.oltp.rate=400, server: KEY=VALUE), or by
its directory when the runs differ in nothing but the seed. For each finding, and
for each workload, op and phase (p50, p99, p99.9, max latency, rate, errors), it
shows each group's figure, its ratio against the first group and the better side.

Output: a table (every op merged; --ops for each op), --json for JSON on stdout,
--html FILE for a self-contained page.`,
		Example: `  htapchaos compare runs/rate200 runs/rate400
  htapchaos compare runs/a1 runs/a2 runs/b1 runs/b2 --html compare.html
  htapchaos compare runs/a runs/b --json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("compare: give two or more run directories (got %d)", len(args))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			if htmlPath != "" {
				if st, err := os.Stat(filepath.Dir(htmlPath)); err != nil || !st.IsDir() {
					return usagef("--html %s: directory %s does not exist", htmlPath, filepath.Dir(htmlPath))
				}
			}
			runs, err := compare.Load(args)
			if err != nil {
				return err
			}
			c, err := compare.Compare(runs)
			if err != nil {
				return err
			}
			if htmlPath != "" {
				if err := compare.WriteFile(htmlPath, c.WriteHTML); err != nil {
					return fmt.Errorf("--html %s: %w", htmlPath, err) // the directory exists: a failure to write
				}
				a.progress("compare: wrote %s", htmlPath)
			}
			var out bytes.Buffer
			if asJSON {
				err = c.WriteJSON(&out)
			} else {
				err = c.WriteText(&out, compare.TextOptions{AllOps: allOps})
			}
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&htmlPath, "html", "", "also write a self-contained HTML page to FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of the table")
	cmd.Flags().BoolVar(&allOps, "ops", false, "in the table, show each op of a workload, not only every op merged")
	return cmd
}
