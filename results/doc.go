// Package results will own recording (HDR histograms, interval logs) and the run
// directory. Not built yet: see the load generator issue.
package results
