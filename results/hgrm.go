package results

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// HGRM export: a run's latency distributions in HdrHistogram's own percentile
// output format (the .hgrm files HdrHistogram's plotFiles.html and
// HistogramLogProcessor's percentile output read), for people who compare runs
// with HdrHistogram's tools rather than htapchaos's report.

const (
	// hgrmTicks is the percentile lines per halving of the distance to 100%, as
	// HdrHistogram's Java outputPercentileDistribution prints by default.
	hgrmTicks = 5
	// hgrmScale divides the recorded nanoseconds: the files are in milliseconds,
	// the unit of htapchaos's reports and of the interval logs' max column.
	hgrmScale = 1e6
)

// HGRMDir is the folder of a run directory that WriteHGRM writes into.
const HGRMDir = "hgrm"

// WriteHGRM writes, for each workload and each window (a phase, a fault window),
// the latency of the window's successes from their intended start, every op and
// node of the workload merged exactly from the interval logs (see WindowStats
// for which intervals a window takes), in HdrHistogram's percentile format with
// values in milliseconds: <runDir>/hgrm/<workload>.<window>.hgrm, names made
// safe for a file as the interval logs' are (<workload>.hlog). A workload with no
// success in a window gets no file. It returns the paths
// written, in window order, then by workload.
func WriteHGRM(runDir string, windows []Window) ([]string, error) {
	acc, err := readWindows(runDir, windows)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(runDir, HGRMDir)
	var paths []string
	for wi, w := range windows {
		byWorkload := map[string]*hdr.Histogram{}
		for k, c := range acc.cells[wi] {
			if c.lat == nil || c.lat.TotalCount() == 0 {
				continue
			}
			h := byWorkload[k.Workload]
			if h == nil {
				h = newHist()
				byWorkload[k.Workload] = h
			}
			merge(h, c.lat)
		}
		workloads := make([]string, 0, len(byWorkload))
		for wl := range byWorkload {
			workloads = append(workloads, wl)
		}
		slices.Sort(workloads)
		for _, wl := range workloads {
			var b bytes.Buffer
			if _, err := byWorkload[wl].PercentilesPrint(&b, hgrmTicks, hgrmScale); err != nil {
				return paths, fmt.Errorf("results: hgrm %s %s: %w", wl, w.Name, err)
			}
			if len(paths) == 0 {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, fmt.Errorf("results: %w", err)
				}
			}
			p := filepath.Join(dir, fileSafe(wl)+"."+fileSafe(w.Name)+".hgrm")
			if err := WriteFileAtomic(p, b.Bytes()); err != nil {
				return paths, err
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}
