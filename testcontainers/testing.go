package testcontainers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

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

// shared holds the clusters SharedForTest started, by key.
var shared = struct {
	sync.Mutex
	m map[string]*Cluster
}{m: map[string]*Cluster{}}

// SharedForTest returns a cluster that every test of the package asking for the same
// key shares: started on first use (skipped or failed as StartForTest is), removed by
// RunTests after the last test. Starting a 3-node Galera cluster takes about 20 s on
// a 2-core machine; tests that share one save that each. A test that hurts a shared
// cluster must heal it before it ends (the fault life cycle does), and tests that
// would see each other's load must not share one: the package's tests run one after
// the other (no t.Parallel), so they do not.
func SharedForTest(t testing.TB, key string, cfg Config) *Cluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if c := shared.m[key]; c != nil {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if cfg.Progress == nil {
		cfg.Progress = t.Logf
	}
	c, err := Run(ctx, cfg)
	if err != nil {
		if c != nil {
			tctx, tcancel := context.WithTimeout(context.Background(), time.Minute)
			_ = c.Terminate(tctx)
			tcancel()
		}
		if (errors.Is(err, ErrEngineUnavailable) || errors.Is(err, ErrImageMissing)) && os.Getenv("CI") == "" {
			t.Skipf("needs a container engine and the node image (bash .ci/run sets both up): %v", err)
		}
		t.Fatalf("start shared cluster %s: %v", key, err)
	}
	shared.m[key] = c
	return c
}

// terminateShared removes the clusters SharedForTest started.
func terminateShared() error {
	shared.Lock()
	defer shared.Unlock()
	var errs []error
	for key, c := range shared.m {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := c.Terminate(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		cancel()
		delete(shared.m, key)
	}
	return errors.Join(errs...)
}

// LabelOwner marks the clusters a test process started: "pid@host".
const LabelOwner = "org.htapchaos.owner"

// RunTests is a TestMain for packages whose tests start clusters labelled with
// labels: it quiets the libraries' own logging, removes what a crashed earlier run
// left, runs the tests, and fails the run if anything it started remains after them
// (a cleanup bug), removing it. It adds an owner label to labels, so the clusters
// its tests start carry it: test runs side by side on one engine leave each other's
// clusters alone, and only those of a process that is gone are swept.
// Use: func TestMain(m *testing.M) { os.Exit(RunTests(m, labels)) }
func RunTests(m *testing.M, labels map[string]string) int {
	// A test binary copied into a leaf proxy container serves the proxy.
	ServeProxyIfAsked()
	tclog.SetDefault(tclog.NewNoopLogger())
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	purpose := maps.Clone(labels)
	labels[LabelOwner] = owner()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	eng, err := Connect(ctx)
	if err == nil {
		if r, err := sweepOrphans(ctx, eng, purpose); err == nil && r.Containers+r.Networks > 0 {
			fmt.Fprintf(os.Stderr, "swept %d container(s), %d network(s) left by an earlier run\n", r.Containers, r.Networks)
		}
	}
	cancel()
	// The tests' fault journals go to a state directory of their own, not the user's.
	if os.Getenv("HTAPCHAOS_STATE_DIR") == "" {
		if dir, err := os.MkdirTemp("", "htapchaos-state-"); err == nil {
			os.Setenv("HTAPCHAOS_STATE_DIR", dir)
			defer os.RemoveAll(dir)
		}
	}
	code := m.Run()
	if err := terminateShared(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: remove the shared test clusters: %v\n", err)
		code = 1
	}
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

func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}

// ownerAlive says whether the process named by an owner label still runs. An owner
// on another host, or one that cannot be read, counts as alive: never sweep what may
// be in use.
func ownerAlive(o string) bool {
	pidText, host, ok := strings.Cut(o, "@")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil {
		return false // no owner: left by a run from before owner labels
	}
	if me, _ := os.Hostname(); host != me {
		return true
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// sweepOrphans removes the clusters with the labels whose owner is gone.
func sweepOrphans(ctx context.Context, e *Engine, labels map[string]string) (RemoveResult, error) {
	var total RemoveResult
	ctrs, err := listContainers(ctx, e, labels)
	if err != nil {
		return total, err
	}
	nets, err := e.Client.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return total, err
	}
	orphans := map[string]bool{}
	for _, l := range append(labelsOf(ctrs), labelsOfNets(nets.Items)...) {
		if !ownerAlive(l[LabelOwner]) {
			orphans[l[LabelCluster]] = true
		}
	}
	var errs []error
	for name := range orphans {
		r, err := Remove(ctx, e, name)
		errs = append(errs, err)
		total.Clusters = append(total.Clusters, r.Clusters...)
		total.Containers += r.Containers
		total.Networks += r.Networks
	}
	return total, errors.Join(errs...)
}

func labelsOf(ctrs []container.Summary) []map[string]string {
	out := make([]map[string]string, len(ctrs))
	for i, c := range ctrs {
		out[i] = c.Labels
	}
	return out
}

func labelsOfNets(nets []network.Summary) []map[string]string {
	out := make([]map[string]string, len(nets))
	for i, n := range nets {
		out[i] = n.Labels
	}
	return out
}
