package testcontainers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// StartForTest starts a cluster for a Go test and removes it when the test ends.
// Where no engine or no node image is present it skips the test with the reason,
// except under CI (CI set in the environment), where it fails: CI must not skip.
func StartForTest(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if cfg.Progress == nil {
		cfg.Progress = t.Logf
	}
	c, err := Run(ctx, cfg)
	if c != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Terminate(ctx); err != nil {
				t.Errorf("terminate cluster %s: %v", c.Name, err)
			}
		})
	}
	if err != nil {
		if (errors.Is(err, ErrEngineUnavailable) || errors.Is(err, ErrImageMissing)) && os.Getenv("CI") == "" {
			t.Skipf("needs a container engine and the node image (bash .ci/run sets both up): %v", err)
		}
		t.Fatalf("start cluster: %v", err)
	}
	return c
}

// RunTests is a TestMain for packages whose tests start clusters labelled with
// labels: it quiets the libraries' own logging, removes what a crashed earlier run
// left, runs the tests, and fails the run if anything labelled remains after them (a
// cleanup bug), removing it. Use: func TestMain(m *testing.M) { os.Exit(RunTests(m, labels)) }
func RunTests(m *testing.M, labels map[string]string) int {
	tclog.SetDefault(tclog.NewNoopLogger())
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	eng, err := Connect(ctx)
	if err == nil {
		if r, err := RemoveAll(ctx, eng, labels); err == nil && r.Containers+r.Networks > 0 {
			fmt.Fprintf(os.Stderr, "swept %d container(s), %d network(s) left by an earlier run\n", r.Containers, r.Networks)
		}
	}
	cancel()
	code := m.Run()
	if eng != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if left, err := countLabelled(ctx, eng, labels); err != nil || left > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d labelled container(s)/network(s) remain after the tests (err=%v)\n", left, err)
			_, _ = RemoveAll(ctx, eng, labels)
			code = 1
		}
	}
	return code
}
