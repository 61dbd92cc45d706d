package faults

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// checkParams checks what a kind makes of raw parameters. With want, a usage error
// that says each of want, from Parse and again from Setup (a fault built without
// Parse), before anything touches a node. Without, Parse takes them and Setup, given
// no targets, refuses only for the node: a usage error that says noNode.
func checkParams(t *testing.T, k *Kind, raw map[string]string, want []string, noNode string) {
	t.Helper()
	p, perr := k.Parse(raw)
	if want == nil && perr != nil {
		t.Fatalf("valid parameters refused: %v", perr)
	}
	if want != nil {
		checkParamError(t, "Parse", perr, want)
		p = Params(raw)
	}
	// No targets: valid parameters get as far as the node check.
	err := k.New(p).Setup(context.Background(), &Env{})
	if want == nil {
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), noNode) {
			t.Errorf("valid parameters: Setup error %v, want a usage error saying %q", err, noNode)
		}
		return
	}
	checkParamError(t, "Setup", err, want)
}

// checkParamError checks that err is a usage error that says each of want.
func checkParamError(t *testing.T, step string, err error, want []string) {
	t.Helper()
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("%s: error %v, want a usage error", step, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", step, err, w)
		}
	}
}

// startSingle starts a single node with the memory limit for the test and opens a
// database on it, closed when the test ends (before the node goes).
func startSingle(t *testing.T, memory int64) (Cluster, *htc.Node, *sql.DB) {
	t.Helper()
	hc := htc.StartForTest(t, htc.Config{Topology: htc.Single, Memory: memory, Labels: testLabels})
	n := hc.Nodes[0]
	db, err := sql.Open("mysql", n.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return Containers(hc), n, db
}

// opSample is one operation of a client run by sampleOps.
type opSample struct {
	start time.Time
	took  time.Duration
	err   error
}

// sampleOps runs op one call after another, pause between calls, on a connection of
// its own until stop is called, at most maxOps calls and maxTime (an op still running
// then is cancelled through its context); i counts the calls from 0. stop returns
// each call's start, latency and error; a test that ends before calling it stops the
// client all the same.
func sampleOps(t *testing.T, dsn string, maxOps int64, maxTime, pause time.Duration, op func(ctx context.Context, conn *sql.Conn, i int64) error) (stop func() []opSample) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	quit := make(chan struct{})
	var samples []opSample
	var wg sync.WaitGroup
	wg.Go(func() {
		defer db.Close()
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), maxTime)
		defer cancel()
		for i := int64(0); i < maxOps && ctx.Err() == nil; i++ {
			start := time.Now()
			err := op(ctx, conn, i)
			samples = append(samples, opSample{start, time.Since(start), err})
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
		}
	})
	var once sync.Once
	stop = func() []opSample {
		once.Do(func() { close(quit) })
		wg.Wait()
		return samples
	}
	t.Cleanup(func() { stop() })
	return stop
}

// queryCount runs a query that answers one number (a COUNT(*)) and returns it.
func queryCount(t *testing.T, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// measurement finds the first measurement of the name.
func measurement(ms []Measurement, name string) (Measurement, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return Measurement{}, false
}

// cancelAndWait cancels a run (its context's cancel) and waits for it to return, at
// most a minute; an error it returns fails the test.
func cancelAndWait(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("recovery after cancel did not finish")
	}
}
