package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/testcontainers"
)

// bin is the htapchaos binary built for tests that need a real process (signals,
// environment).
var bin string

const testPrefix = "clitest-"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "htapchaos-test")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "htapchaos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	sweep()
	// The fault journals of the binary's runs go to a state directory of the
	// tests' own, not the user's.
	if os.Getenv("HTAPCHAOS_STATE_DIR") == "" {
		os.Setenv("HTAPCHAOS_STATE_DIR", filepath.Join(dir, "state"))
	}
	code := m.Run()
	if n := sweep(); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d test cluster(s) were left behind\n", n)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// sweep removes clusters these tests created and returns how many it found.
func sweep() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := testcontainers.Connect(ctx)
	if err != nil {
		return 0
	}
	list, err := testcontainers.List(ctx, eng)
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s.Name, testPrefix) {
			n++
			_, _ = testcontainers.Remove(ctx, eng, s.Name)
		}
	}
	return n
}

type result struct {
	code           int
	stdout, stderr string
}

// htapchaos runs the binary with extra environment.
func htapchaos(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// engineOrSkip returns the engine, skips where none runs (fails under CI).
func engineOrSkip(t *testing.T) *testcontainers.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	eng, err := testcontainers.Connect(ctx)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs the engine: %v", err)
		}
		t.Skipf("no container engine: %v", err)
	}
	if ok, _ := eng.ImageExists(ctx, testcontainers.DefaultImage); !ok {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs the node image %s", testcontainers.DefaultImage)
		}
		t.Skipf("node image %s not built (htapchaos image build)", testcontainers.DefaultImage)
	}
	return eng
}

func clusterCount(t *testing.T, eng *testcontainers.Engine, name string) int {
	t.Helper()
	list, err := testcontainers.List(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.Name == name {
			return s.Nodes
		}
	}
	return 0
}

func TestBadInputExitsTwoAndCreatesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	eng, _ := testcontainers.Connect(ctx) // nil without an engine: then only exit codes are checked
	before := listedClusters(t, eng)
	cases := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"cluster", "up", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"cluster", "up", "--topology", "ring"}, `--topology: unknown topology "ring"`},
		{[]string{"cluster", "up", "--nodes", "4"}, "--nodes: 4: an even galera node count"},
		{[]string{"cluster", "up", "--nodes", "x"}, `invalid argument "x" for "--nodes"`},
		{[]string{"cluster", "up", "--memory", "128MiB"}, "--memory: 128MiB is under the minimum of 256MiB"},
		{[]string{"cluster", "up", "--memory", "lots"}, `--memory: "lots": want a size such as 512MiB`},
		{[]string{"cluster", "up", "--set", "no-equals-sign"}, `--set: "no-equals-sign": want key=value`},
		{[]string{"cluster", "up", "--set", "9:x=1"}, "--set: node 9: out of range 1-3"},
		{[]string{"cluster", "up", "--name", "Bad_Name"}, `--name: "Bad_Name"`},
		{[]string{"cluster", "up", "--topology", "sharded", "--leaves", "1"}, "--leaves: 1: a sharded cluster needs at least 2 leaves"},
		{[]string{"cluster", "up", "--topology", "sharded", "--aggregators", "0"}, "--aggregators: 0: want at least 1"},
		{[]string{"cluster", "up", "--leaves", "3"}, "--leaves: only the sharded and vitess topologies take it"},
		{[]string{"cluster", "up", "--topology", "vitess", "--leaves", "9"}, "--leaves: 9: a vitess cluster needs 2-8 shards"},
		{[]string{"cluster", "up", "--topology", "vitess", "--leaf-proxy"}, "--leaf-proxy: only the sharded (Spider) topology has a leaf proxy"},
		{[]string{"cluster", "up", "--topology", "vitess", "--partitions-per-leaf", "2"}, "--partitions-per-leaf: 2: a vitess shard is one partition"},
		{[]string{"cluster", "up", "--topology", "sharded", "--orders", "0"}, "--users and --orders: want at least 1 each"},
		{[]string{"cluster", "down"}, "name one or more clusters, or pass --all"},
		{[]string{"cluster", "status"}, "accepts 1 arg(s), received 0"},
		{[]string{"cluster", "frob"}, `unknown command "frob"`},
		{[]string{"load", "--procs", "-1", "--workload", "noop", "--rate", "10", "--duration", "1s"}, "--procs -1: want a number of processors"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not name the problem (%q)", errb.String(), tc.want)
			}
		})
	}
	// Every problem is reported at once.
	var errb bytes.Buffer
	run([]string{"cluster", "up", "--topology", "galera", "--nodes", "2", "--memory", "1MiB", "--set", "9:a=b"}, &bytes.Buffer{}, &errb)
	for _, want := range []string{"--nodes", "--memory", "--set"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("combined error %q misses %s", errb.String(), want)
		}
	}
	if after := listedClusters(t, eng); after != before {
		t.Errorf("bad input changed the engine: %d clusters before, %d after", before, after)
	}
}

// listedClusters counts the clusters in the engine (-1 without an engine).
func listedClusters(t *testing.T, eng *testcontainers.Engine) int {
	t.Helper()
	if eng == nil {
		return -1
	}
	list, err := testcontainers.List(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestEngineNotRunningExitsThree(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")
	for _, args := range [][]string{{"cluster", "up", "--name", testPrefix + "noengine"}, {"cluster", "ls"}, {"cluster", "down", "--all"}, {"cluster", "status", "x"}, {"image", "build", "--tag", "htapchaos/never:built"}} {
		r := htapchaos(t, []string{"DOCKER_HOST=" + sock}, args...)
		if r.code != exitInfra || !strings.Contains(r.stderr, "container engine not reachable") || !strings.Contains(r.stderr, sock) {
			t.Errorf("%v: exit %d, stderr %q; want exit 3 naming the engine address", args, r.code, r.stderr)
		}
	}
}

func TestImageBuildWithoutMmdebstrapNamesIt(t *testing.T) {
	r := htapchaos(t, []string{"PATH=" + t.TempDir()}, "image", "build", "--tag", "htapchaos/never:built")
	if r.code != exitInfra || !strings.Contains(r.stderr, "mmdebstrap is not installed") {
		t.Fatalf("exit %d, stderr %q; want exit 3 naming mmdebstrap", r.code, r.stderr)
	}
}

func TestMissingImageExitsThreeAndCreatesNothing(t *testing.T) {
	eng := engineOrSkip(t)
	name := testPrefix + "noimage"
	r := htapchaos(t, nil, "cluster", "up", "--image", "htapchaos/none:0", "--name", name)
	if r.code != exitInfra || !strings.Contains(r.stderr, "htapchaos/none:0 is not in the engine") || !strings.Contains(r.stderr, "htapchaos image build") {
		t.Fatalf("exit %d, stderr %q; want exit 3 naming the image and how to build it", r.code, r.stderr)
	}
	if n := networksOf(t, eng, name); n != 0 {
		t.Fatalf("%d resources created for a cluster that could not start", n)
	}
}

func TestClusterUpJSONLsStatusDown(t *testing.T) {
	eng := engineOrSkip(t)
	name := testPrefix + "json"
	r := htapchaos(t, nil, "cluster", "up", "--topology", "single", "--memory", "512MiB", "--name", name, "--json")
	if r.code != 0 {
		t.Fatalf("up: exit %d: %s", r.code, r.stderr)
	}
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	var info struct {
		Name     string `json:"name"`
		Topology string `json:"topology"`
		Nodes    []struct {
			Name        string `json:"name"`
			DSN         string `json:"dsn"`
			Host        string `json:"host"`
			Port        int    `json:"port"`
			ContainerID string `json:"container_id"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("up --json printed %q: %v", r.stdout, err)
	}
	if info.Name != name || info.Topology != "single" || len(info.Nodes) != 1 {
		t.Fatalf("info %+v", info)
	}
	n := info.Nodes[0]
	if n.Host != "127.0.0.1" || n.Port == 0 || n.ContainerID == "" || !strings.Contains(n.DSN, fmt.Sprintf("tcp(127.0.0.1:%d)", n.Port)) {
		t.Fatalf("node %+v: want a loopback DSN", n)
	}

	r = htapchaos(t, nil, "cluster", "ls", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name":"`+name+`"`) {
		t.Fatalf("ls: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	r = htapchaos(t, nil, "cluster", "status", name)
	if r.code != 0 || !strings.Contains(r.stdout, "running") || !strings.Contains(r.stdout, "512MiB") {
		t.Fatalf("status: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	// A second cluster of the same name is refused, and the first one is untouched.
	r = htapchaos(t, nil, "cluster", "up", "--topology", "single", "--name", name)
	if r.code != exitUsage || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate name: exit %d, %s", r.code, r.stderr)
	}
	if clusterCount(t, eng, name) != 1 {
		t.Fatal("the duplicate attempt touched the existing cluster")
	}

	start := time.Now()
	r = htapchaos(t, nil, "cluster", "down", name)
	if r.code != 0 || !strings.Contains(r.stdout, "removed 1 container(s) and 2 network(s)") {
		t.Fatalf("down: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("cluster down took %v", time.Since(start))
	if clusterCount(t, eng, name) != 0 {
		t.Fatal("containers left after down")
	}
	// Down is idempotent: a script may run it twice.
	if r = htapchaos(t, nil, "cluster", "down", name); r.code != 0 || !strings.Contains(r.stderr, "no cluster named") {
		t.Fatalf("second down: exit %d, %q", r.code, r.stderr)
	}
}

// A sharded cluster comes up seeded: the rows of every partition it prints add up
// to what was asked, on the leaves themselves, and status shows the same.
func TestClusterUpShardedSeedsAndShowsSkew(t *testing.T) {
	engineOrSkip(t)
	name := testPrefix + "sharded"
	start := time.Now()
	r := htapchaos(t, nil, "cluster", "up", "--topology", "sharded", "--aggregators", "1", "--leaves", "2", "--partitions-per-leaf", "1",
		"--users", "300", "--orders", "3000", "--memory", "512MiB", "--name", name, "--json")
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	if r.code != 0 {
		t.Fatalf("up: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("sharded cluster up and seeded in %v", time.Since(start).Round(time.Millisecond))
	var info struct {
		Topology string `json:"topology"`
		Nodes    []struct {
			Name string `json:"name"`
			Role string `json:"role"`
		} `json:"nodes"`
		PartitionsPerLeaf int `json:"partitions_per_leaf"`
		Shards            []struct {
			Table     string `json:"table"`
			Partition int    `json:"partition"`
			Leaf      string `json:"leaf"`
			Rows      int64  `json:"rows"`
		} `json:"shards"`
		Skew map[string]float64 `json:"skew"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("up --json printed %q: %v", r.stdout, err)
	}
	var roles []string
	for _, n := range info.Nodes {
		roles = append(roles, strings.TrimPrefix(n.Name, name+"-")+":"+n.Role)
	}
	if got := strings.Join(roles, " "); info.Topology != "sharded" || got != "agg1:aggregator leaf1:leaf leaf2:leaf" || info.PartitionsPerLeaf != 1 {
		t.Fatalf("topology %s, nodes %s, partitions per leaf %d", info.Topology, got, info.PartitionsPerLeaf)
	}
	sums := map[string]int64{}
	for _, s := range info.Shards {
		sums[s.Table] += s.Rows
	}
	if sums["users"] != 300 || sums["orders"] != 3000 || sums["merchants"] != 500 || len(info.Shards) != 6 {
		t.Fatalf("rows over %d partitions: %v; want users 300, orders 3000, merchants 500 over 6", len(info.Shards), sums)
	}
	if info.Skew["orders"] < 1 {
		t.Errorf("skew %v", info.Skew)
	}
	r = htapchaos(t, nil, "cluster", "status", name)
	for _, want := range []string{"aggregator", "leaf", "direct_aggregate=", "skew of orders"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("status: exit %d, no %q in %s %s", r.code, want, r.stdout, r.stderr)
		}
	}
}

// A vitess cluster comes up seeded through its vtgate, its shards' rows add up to
// what was asked, cluster ls counts its database nodes (not etcd and vtctld), and
// down removes every container, etcd and vtctld too.
func TestClusterUpVitess(t *testing.T) {
	eng := engineOrSkip(t)
	name := testPrefix + "vitess"
	start := time.Now()
	r := htapchaos(t, nil, "cluster", "up", "--topology", "vitess", "--aggregators", "1",
		"--users", "300", "--orders", "3000", "--memory", "512MiB", "--name", name, "--json")
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	if r.code != 0 {
		t.Fatalf("up: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("vitess cluster up and seeded in %v", time.Since(start).Round(time.Millisecond))
	var info struct {
		Topology string `json:"topology"`
		Nodes    []struct {
			Name string `json:"name"`
			Role string `json:"role"`
			DSN  string `json:"dsn"`
		} `json:"nodes"`
		Shards []struct {
			Table string `json:"table"`
			Leaf  string `json:"leaf"`
			Rows  int64  `json:"rows"`
		} `json:"shards"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("up --json printed %q: %v", r.stdout, err)
	}
	var roles []string
	for _, n := range info.Nodes {
		roles = append(roles, strings.TrimPrefix(n.Name, name+"-")+":"+n.Role)
	}
	if got := strings.Join(roles, " "); info.Topology != "vitess" || got != "agg1:aggregator leaf1:leaf leaf2:leaf" {
		t.Fatalf("topology %s, nodes %s", info.Topology, got)
	}
	if !strings.HasSuffix(strings.Split(info.Nodes[0].DSN, "?")[0], "/htapchaos") || !strings.HasSuffix(strings.Split(info.Nodes[1].DSN, "?")[0], "/vt_htapchaos") {
		t.Errorf("DSNs: the vtgate's should name the keyspace, a shard's its database: %s, %s", info.Nodes[0].DSN, info.Nodes[1].DSN)
	}
	sums := map[string]int64{}
	for _, s := range info.Shards {
		sums[s.Table] += s.Rows
	}
	if sums["users"] != 300 || sums["orders"] != 3000 || sums["merchants"] != 500 || len(info.Shards) != 6 {
		t.Fatalf("rows over %d shards: %v; want users 300, orders 3000, merchants 500 over 2 shards each", len(info.Shards), sums)
	}
	r = htapchaos(t, nil, "cluster", "ls", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name":"`+name+`","topology":"vitess","nodes":3,"running":3`) {
		t.Errorf("ls: exit %d: %s", r.code, r.stdout)
	}
	r = htapchaos(t, nil, "cluster", "status", name)
	if r.code != 0 || !strings.Contains(r.stdout, "skew of orders") || strings.Contains(r.stdout, "direct_aggregate") {
		t.Errorf("status: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r = htapchaos(t, nil, "cluster", "down", name); r.code != 0 {
		t.Fatalf("down: exit %d: %s", r.code, r.stderr)
	}
	if n := networksOf(t, eng, name); n != 0 {
		t.Errorf("%d container(s) and network(s) left after down", n)
	}
}

// Ctrl-C while a cluster forms removes everything and exits 130.
func TestInterruptDuringUpCleansUp(t *testing.T) {
	eng := engineOrSkip(t)
	name := testPrefix + "sigint"
	cmd := exec.Command(bin, "cluster", "up", "--name", name, "--nodes", "3")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for clusterCount(t, eng, name) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no container appeared: %s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d; stderr %s", err, exitInterrupted, errb.String())
	}
	ctx := context.Background()
	if c, _ := testcontainers.List(ctx, eng); len(c) > 0 {
		for _, s := range c {
			if s.Name == name {
				t.Fatalf("cluster %s left behind after Ctrl-C: %+v\n%s", name, s, errb.String())
			}
		}
	}
	if n := networksOf(t, eng, name); n != 0 {
		t.Fatalf("%d network(s) left behind after Ctrl-C", n)
	}
	if !strings.Contains(errb.String(), "interrupted: removing cluster "+name) {
		t.Errorf("stderr does not say it cleaned up: %s", errb.String())
	}
}

func networksOf(t *testing.T, eng *testcontainers.Engine, name string) int {
	t.Helper()
	r, err := testcontainers.RemoveAll(context.Background(), eng, map[string]string{testcontainers.LabelCluster: name})
	if err != nil {
		t.Fatal(err)
	}
	return r.Networks + r.Containers
}

func TestUseProcsSetsWhatTheLoadNeedsAndRestores(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	prev := runtime.GOMAXPROCS(0)
	a := newApp(io.Discard, io.Discard)
	var limit int
	restore := a.useProcs(func(l int) int { limit = l; return 1 })
	if got := runtime.GOMAXPROCS(0); got != 1 || limit != prev {
		t.Errorf("GOMAXPROCS %d (want 1), limit passed %d (want %d)", got, limit, prev)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != prev {
		t.Errorf("not restored: %d, want %d", got, prev)
	}
	a.procs = 3
	restore = a.useProcs(func(int) int { return 1 })
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("--procs 3 gave GOMAXPROCS %d", got)
	}
	restore()
	a.procs = 0
	t.Setenv("GOMAXPROCS", "2")
	restore = a.useProcs(func(int) int { return 1 })
	if got := runtime.GOMAXPROCS(0); got != prev {
		t.Errorf("with GOMAXPROCS in the environment the setting changed to %d", got)
	}
	restore()
}
