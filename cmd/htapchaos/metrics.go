package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/metrics"
)

// metricsFlag adds --metrics-addr to a command that runs load.
func metricsFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "metrics-addr", "",
		"serve live Prometheus metrics at http://HOST:PORT/metrics while the command runs, e.g. 127.0.0.1:9464 (default: off)")
}

// checkMetricsAddr is the bad-input check of --metrics-addr ("" is off).
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if err := metrics.CheckAddr(addr); err != nil {
		return usagef("--metrics-addr %q: %v", addr, err)
	}
	return nil
}

// startMetrics serves --metrics-addr until stop is called; with "" it does
// nothing and returns a nil server. A malformed address is bad input (exit 2), a
// failure to listen an infrastructure error (exit 3).
func (a *app) startMetrics(addr string) (srv *metrics.Server, stop func(), err error) {
	if err := checkMetricsAddr(addr); err != nil || addr == "" {
		return nil, func() {}, err
	}
	srv, err = metrics.Start(addr)
	if err != nil {
		return nil, func() {}, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	a.progress("metrics: serving %s", srv.URL())
	return srv, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			a.progress("metrics: close: %v", err)
		}
	}, nil
}

// runMetrics starts the --metrics-addr endpoint of run or suite and makes it the
// observer of the runs.
func (a *app) runMetrics(f *runFlags) (stop func(), err error) {
	srv, stop, err := a.startMetrics(f.metricsAddr)
	if srv != nil {
		f.observer = srv
	}
	return stop, err
}
