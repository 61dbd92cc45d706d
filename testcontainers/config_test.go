package testcontainers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestParseSetting(t *testing.T) {
	cases := []struct {
		in      string
		node    int
		key     string
		value   string
		wantErr string
	}{
		{in: "innodb_buffer_pool_size=256M", key: "innodb_buffer_pool_size", value: "256M"},
		{in: "2:wsrep_slave_threads=4", node: 2, key: "wsrep_slave_threads", value: "4"},
		{in: "wsrep_provider_options=gcache.size=1G;evs.suspect_timeout=PT3S", key: "wsrep_provider_options", value: "gcache.size=1G;evs.suspect_timeout=PT3S"},
		{in: "wsrep_cluster_address=gcomm://a:4567", key: "wsrep_cluster_address", value: "gcomm://a:4567"},
		{in: "sql_mode=", key: "sql_mode", value: ""},
		{in: "novalue", wantErr: "want key=value"},
		{in: "=1", wantErr: "want key=value"},
		{in: "0:a=1", wantErr: "node before ':' must be a number from 1"},
		{in: "x:a=1", wantErr: "node before ':' must be a number from 1"},
		{in: "bad key=1", wantErr: "not a server setting name"},
		{in: "a;rm -rf=1", wantErr: "not a server setting name"},
		{in: "a=line\nbreak", wantErr: "newline"},
	}
	for _, tc := range cases {
		node, k, v, err := ParseSetting(tc.in)
		if tc.wantErr != "" {
			var ce *ConfigError
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ce) || ce.Field != "--set" {
				t.Errorf("ParseSetting(%q) error %v, want a --set error with %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || node != tc.node || k != tc.key || v != tc.value {
			t.Errorf("ParseSetting(%q) = %d %q %q %v", tc.in, node, k, v, err)
		}
	}
}

func TestSettingsForMergesNodeOverCluster(t *testing.T) {
	var c Config
	for _, s := range []string{"a=1", "b=2", "2:b=3", "2:c=4"} {
		if err := c.AddSetting(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(settingArgs(c.settingsFor(1)), " "); got != "--a=1 --b=2" {
		t.Errorf("node 1: %s", got)
	}
	if got := strings.Join(settingArgs(c.settingsFor(2)), " "); got != "--a=1 --b=3 --c=4" {
		t.Errorf("node 2: %s", got)
	}
}

func TestParseAndFormatBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"1GiB": 1 << 30, "1G": 1 << 30, "1g": 1 << 30, "512MiB": 512 << 20, "512M": 512 << 20,
		"256mb": 256 << 20, "1.5GiB": 3 << 29, "1048576": 1 << 20, "64KiB": 64 << 10, " 2 GiB ": 2 << 30,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "1XB", "-1G", "G"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
	for n, want := range map[int64]string{1 << 30: "1GiB", 512 << 20: "512MiB", 3 << 29: "1.5GiB", 100: "100B", 1536: "1.5KiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{Topology: Galera, Nodes: 4, Memory: 100 << 20, Name: "UPPER", CPUs: -1,
		NodeSettings: map[int]map[string]string{7: {"a": "1"}}}.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"--nodes: 4: an even galera node count", "--memory: 100MiB is under the minimum", `--name: "UPPER"`, "--cpus", "--set: node 7: out of range 1-4"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nmisses %q", err, want)
		}
	}
	if err := (Config{Topology: Vitess, Aggregators: -1, Leaves: 1, LB: true}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "--aggregators: -1: a vitess cluster needs at least 1 vtgate") ||
		!strings.Contains(err.Error(), "--leaves: 1: a vitess cluster needs 2-8 shards") ||
		!strings.Contains(err.Error(), "--lb: the vtgates are the vitess cluster's entry points") {
		t.Errorf("bad vitess config: %v", err)
	}
	if c := (Config{Topology: Vitess}).withDefaults(); c.Aggregators != 2 || c.Leaves != 2 || c.Nodes != 4 || c.PartitionsPerLeaf != 1 || c.Image != DefaultVitessImage {
		t.Errorf("vitess defaults: %+v", c)
	}
	if got := VitessShards(3); strings.Join(got, " ") != "-55 55-aa aa-" {
		t.Errorf("3 shards: %v", got)
	}
	if got := VitessShards(2); strings.Join(got, " ") != "-80 80-" {
		t.Errorf("2 shards: %v", got)
	}
	if err := (Config{Topology: Galera, Nodes: 4, Force: true}).Validate(); err != nil {
		t.Errorf("even count with Force: %v", err)
	}
	if err := (Config{Topology: "ring"}).Validate(); err == nil || !strings.Contains(err.Error(), `unknown topology "ring" (known: galera, primary-replica, sharded, single, vitess)`) {
		t.Errorf("unknown topology: %v", err)
	}
	if err := (Config{Topology: Sharded, Aggregators: -1, Leaves: 1, PartitionsPerLeaf: 17}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "--aggregators: -1") || !strings.Contains(err.Error(), "--leaves: 1: a sharded cluster needs at least 2 leaves") ||
		!strings.Contains(err.Error(), "--partitions-per-leaf: 17") {
		t.Errorf("bad sharded sizes: %v", err)
	}
	if err := (Config{Topology: Sharded, Aggregators: 3, Leaves: 7}).Validate(); err == nil || !strings.Contains(err.Error(), "at most 9 nodes") {
		t.Errorf("10 sharded nodes: %v", err)
	}
	sh := Config{Topology: Sharded}.withDefaults()
	if sh.Aggregators != 2 || sh.Leaves != 3 || sh.PartitionsPerLeaf != 2 || sh.Nodes != 5 || sh.Validate() != nil {
		t.Errorf("sharded defaults: %+v", sh)
	}
	if err := (Config{Password: "it's"}).Validate(); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("quote in password: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// memoryOf must match `docker stats`: usage minus inactive file cache.
func TestMemoryOfMatchesDockerStats(t *testing.T) {
	v1 := memoryOf(container.MemoryStats{Usage: 600 << 20, Limit: 1 << 30, Stats: map[string]uint64{"total_inactive_file": 88 << 20, "inactive_file": 1}})
	if v1.Usage != 512<<20 || v1.Limit != 1<<30 || v1.Percent != 50 {
		t.Errorf("cgroup v1: %+v", v1)
	}
	v2 := memoryOf(container.MemoryStats{Usage: 300 << 20, Limit: 1 << 30, Stats: map[string]uint64{"inactive_file": 44 << 20}})
	if v2.Usage != 256<<20 || v2.Percent != 25 {
		t.Errorf("cgroup v2: %+v", v2)
	}
	odd := memoryOf(container.MemoryStats{Usage: 10, Limit: 0, Stats: map[string]uint64{"total_inactive_file": 20}})
	if odd.Usage != 10 || odd.Percent != 0 {
		t.Errorf("cache above usage, no limit: %+v", odd)
	}
}

// CPUPercentSince must match docker stats: 100 is one core busy.
func TestCPUPercentSince(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := func(cpu time.Duration, at time.Duration) ResourceStats {
		return ResourceStats{CPU: cpu, Read: t0.Add(at)}
	}
	for _, tc := range []struct {
		name       string
		now, early ResourceStats
		want       float64
	}{
		{"one and a half cores for 2 s", r(5*time.Second, 3*time.Second), r(2*time.Second, time.Second), 150},
		{"idle", r(time.Second, 2*time.Second), r(time.Second, time.Second), 0},
		{"same reading", r(time.Second, time.Second), r(time.Second, time.Second), 0},
		{"counter went back (restarted)", r(time.Second, 2*time.Second), r(3*time.Second, time.Second), 0},
		{"no earlier reading", r(time.Second, 2*time.Second), ResourceStats{}, 0},
	} {
		if got := tc.now.CPUPercentSince(tc.early); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHAProxyConfigListsEveryNode(t *testing.T) {
	cfg := haproxyConfig([]string{"n1", "n2", "n3"})
	for _, want := range []string{"balance roundrobin", "server n1 n1:3306", "server n3 n3:3306", "resolvers engine", "bind :3306"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy config misses %q:\n%s", want, cfg)
		}
	}
}

func TestHostSuite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "os-release")
	os.WriteFile(p, []byte("PRETTY_NAME=\"Debian GNU/Linux 12\"\nVERSION_CODENAME=bookworm\nID=debian\n"), 0o644)
	if s, err := hostSuite(p); err != nil || s != "bookworm" {
		t.Errorf("hostSuite = %q, %v", s, err)
	}
	os.WriteFile(p, []byte("ID=alpine\n"), 0o644)
	if _, err := hostSuite(p); err == nil || !strings.Contains(err.Error(), "--suite") {
		t.Errorf("no codename: %v", err)
	}
}

func TestGaleraArgsUseTheClusterNetworkAddress(t *testing.T) {
	args := strings.Join(galeraArgs("c1", "n2", []string{"n1", "n2", "n3"}), " ")
	for _, want := range []string{"--wsrep-cluster-address=gcomm://n1,n2,n3", "--wsrep-node-address=n2", "--wsrep-cluster-name=c1", "--wsrep-sst-method=rsync"} {
		if !strings.Contains(args, want) {
			t.Errorf("%s misses %s", args, want)
		}
	}
}

// A remote engine publishes only on an address the user names: refused before
// anything connects when none is given; a bad address is bad input.
func TestRemoteEngineNeedsAPublishAddress(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://192.0.2.1:2375") // TEST-NET: never reached
	_, err := Run(context.Background(), Config{Topology: Single})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "--publish-address" || !strings.Contains(err.Error(), "never publishes on every interface") {
		t.Errorf("remote engine without --publish-address: %v", err)
	}
	if err := (Config{Topology: Single, PublishAddress: "not-an-ip"}).Validate(); err == nil || !strings.Contains(err.Error(), `--publish-address: "not-an-ip": not an IP address`) {
		t.Errorf("bad publish address: %v", err)
	}
}
