package faults_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"
	"time"

	. "github.com/htapchaos/htapchaos/faults"
	htc "github.com/htapchaos/htapchaos/testcontainers"
	"github.com/htapchaos/htapchaos/testcontainers/faulttarget"
)

// What the tests on containers share. They are tests of package faults_test:
// they reach a cluster through faulttarget, which imports faults, so a test of
// package faults itself cannot.

var testLabels = map[string]string{htc.LabelPurpose: "test-faults"}

func TestMain(m *testing.M) { os.Exit(htc.RunTests(m, testLabels)) }

// start runs a fault with its default parameters in the background and returns once
// it has taken effect.
func start(t *testing.T, ctx context.Context, c Cluster, kind, node string, hold time.Duration) (*Runner, chan error) {
	t.Helper()
	return startWith(t, ctx, c, kind, node, hold, nil)
}

// startWith is start with parameters (key: value, as --param takes them).
func startWith(t *testing.T, ctx context.Context, c Cluster, kind, node string, hold time.Duration, raw map[string]string) (*Runner, chan error) {
	t.Helper()
	k, err := NewRegistry().Get(kind)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := Resolve(c, node, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Check(targets); err != nil {
		t.Fatal(err)
	}
	params, err := k.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(kind, k.New(params), &Env{Targets: targets, Cluster: c, Events: NewEvents(nil), Params: params})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, hold, 3*time.Minute) }()
	deadline := time.Now().Add(90 * time.Second)
	for r.State() != StateEffective {
		if s := r.State(); s == StateRecovered || s == StateHealthy || s == StateCleaned || s == StateFailed || time.Now().After(deadline) {
			t.Fatalf("%s never took effect (state %s): %v", kind, s, <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r, done
}

func size(t *testing.T, n *htc.Node) (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	g, err := n.GaleraStatus(ctx)
	if err != nil {
		return 0, false
	}
	return g.Size, g.ClusterStatus == "Primary"
}

func eventually(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(200 * time.Millisecond)
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
	return faulttarget.Cluster(hc), n, db
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
