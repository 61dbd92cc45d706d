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
	// A closed stdout or stderr (| head, a gone terminal) must not kill the
	// process with faults in place: writes fail with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code. SIGINT,
// SIGTERM and SIGHUP stop the command in order; see stopper.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	unhandle := handleSignals(stderr, cancel)
	defer unhandle()
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
