// Command htapchaos drives load and faults at MySQL-wire clusters and scores how they fail.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-sql-driver/mysql"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/htapchaos/htapchaos/testcontainers"
)

func main() {
	// In a sharded cluster's leaf proxy container, this executable is the proxy.
	testcontainers.ServeProxyIfAsked()
	// Libraries' own log lines (testcontainers' engine banner, the MySQL driver's
	// "unexpected EOF" while a node starts) would drown the tool's progress lines.
	tclog.SetDefault(tclog.NewNoopLogger())
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second signal kills at once: restore the default handling.
		stop()
	}()
	app := newApp(stdout, stderr)
	root := app.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := app.exitCode(ctx, err)
	if err != nil {
		fmt.Fprintf(stderr, "htapchaos: %v\n", err)
	}
	return code
}
