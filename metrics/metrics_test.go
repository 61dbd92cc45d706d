package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/results"
)

// scrape reads url and returns every sample as "name{l1="v1",...}" (labels
// sorted) -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				out[sampleKey(name, m)] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[sampleKey(name, m)] = m.Gauge.GetValue()
			case m.Summary != nil:
				for _, q := range m.Summary.GetQuantile() {
					out[sampleKey(name, m, fmt.Sprintf("quantile=%q", fmt.Sprint(q.GetQuantile())))] = q.GetValue()
				}
				out[sampleKey(name+"_count", m)] = float64(m.Summary.GetSampleCount())
				out[sampleKey(name+"_sum", m)] = m.Summary.GetSampleSum()
			}
		}
	}
	return out
}

func sampleKey(name string, m *dto.Metric, extra ...string) string {
	ls := extra
	for _, l := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	slices.Sort(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func startTest(t *testing.T) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

func want(t *testing.T, got map[string]float64, key string, v float64) {
	t.Helper()
	g, ok := got[key]
	switch {
	case !ok:
		t.Errorf("%s: missing", key)
	case math.IsNaN(v) && !math.IsNaN(g), !math.IsNaN(v) && math.Abs(g-v) > 1e-9*math.Max(1, math.Abs(v)):
		t.Errorf("%s = %v, want %v", key, g, v)
	}
}

func absent(t *testing.T, got map[string]float64, key string) {
	t.Helper()
	if v, ok := got[key]; ok {
		t.Errorf("%s = %v, want no such series", key, v)
	}
}

const (
	pr1 = `{node="1",op="point-read",workload="oltp"}`
	in2 = `{node="2",op="insert",workload="oltp"}`
)

// lat is the latency series of a key's label set at quantile q.
func lat(key, q string) string {
	ls := strings.Split(strings.Trim(key, "{}"), ",")
	ls = append(ls, fmt.Sprintf("quantile=%q", q))
	slices.Sort(ls)
	return "htapchaos_latency_seconds{" + strings.Join(ls, ",") + "}"
}

// Known intervals in, their sums and the last interval's latency out.
func TestIntervalsAddUpAndLatencyIsTheLastInterval(t *testing.T) {
	s := startTest(t)
	k1 := results.Key{Workload: "oltp", Op: "point-read", Node: 1}
	k2 := results.Key{Workload: "oltp", Op: "insert", Node: 2}
	t0 := time.Unix(1_700_000_000, 0)
	s.ObserveInterval([]results.KeyInterval{
		{Key: k1, Start: t0, End: t0.Add(time.Second), Count: 100, Errors: map[results.Class]int64{results.ClassTimeout: 3},
			Late: 5, Dropped: 2, P50: 2 * time.Millisecond, P99: 10 * time.Millisecond, P999: 20 * time.Millisecond, Max: 30 * time.Millisecond},
		{Key: k2, Start: t0, End: t0.Add(time.Second), Count: 7, P50: time.Millisecond, P99: 4 * time.Millisecond, P999: 4 * time.Millisecond, Max: 5 * time.Millisecond},
	})
	s.ObserveInterval([]results.KeyInterval{
		{Key: k1, Start: t0.Add(time.Second), End: t0.Add(2 * time.Second), Count: 50,
			Errors: map[results.Class]int64{results.ClassTimeout: 1, results.ClassConnection: 2}, Canceled: 4,
			P50: 3 * time.Millisecond, P99: 7 * time.Millisecond, P999: 8 * time.Millisecond, Max: 9 * time.Millisecond},
		{Key: k2, Start: t0.Add(time.Second), End: t0.Add(2 * time.Second), Errors: map[results.Class]int64{results.ClassNotReady: 6}},
	})
	got := scrape(t, s.URL())
	want(t, got, "htapchaos_operations_total"+pr1, 150)
	want(t, got, "htapchaos_operations_total"+in2, 7)
	want(t, got, `htapchaos_errors_total{class="timeout",node="1",op="point-read",workload="oltp"}`, 4)
	want(t, got, `htapchaos_errors_total{class="connection",node="1",op="point-read",workload="oltp"}`, 2)
	want(t, got, `htapchaos_errors_total{class="not-ready",node="2",op="insert",workload="oltp"}`, 6)
	absent(t, got, `htapchaos_errors_total{class="canceled",node="1",op="point-read",workload="oltp"}`)
	want(t, got, "htapchaos_canceled_total"+pr1, 4)
	want(t, got, "htapchaos_late_total"+pr1, 5)
	want(t, got, "htapchaos_dropped_total"+pr1, 2)
	for q, v := range map[string]float64{"0.5": 0.003, "0.99": 0.007, "0.999": 0.008, "1": 0.009} {
		want(t, got, lat(pr1, q), v)
	}
	// No success in the last interval of k2: no latency, not the old one.
	want(t, got, lat(in2, "0.99"), math.NaN())
	want(t, got, "htapchaos_interval_end_timestamp_seconds{}", 1_700_000_002)

	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// The recorder's observer hook feeds real measurements: the counts and the
// latency quantiles of what was recorded.
func TestRecorderFeedsTheMetrics(t *testing.T) {
	s := startTest(t)
	t0 := time.Now()
	rec, err := results.NewRecorder(results.Options{Start: t0, Observer: s})
	if err != nil {
		t.Fatal(err)
	}
	h := rec.Handle(results.Key{Workload: "oltp", Op: "point-read", Node: 1})
	idle := rec.Handle(results.Key{Workload: "oltp", Op: "insert", Node: 2})
	_ = idle
	// 1000 successes of 1..1000 ms; 1 timeout; 2 late (started 50 ms after intended).
	for i := 1; i <= 1000; i++ {
		st := t0.Add(time.Duration(i) * time.Millisecond)
		h.Record(st, st, st.Add(time.Duration(i)*time.Millisecond), nil)
	}
	h.Record(t0, t0.Add(50*time.Millisecond), t0.Add(time.Second), context.DeadlineExceeded)
	h.Record(t0, t0.Add(50*time.Millisecond), t0.Add(time.Second), nil)
	h.Dropped(t0)
	if _, err := rec.Tick(t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, s.URL())
	want(t, got, "htapchaos_operations_total"+pr1, 1001)
	want(t, got, `htapchaos_errors_total{class="timeout",node="1",op="point-read",workload="oltp"}`, 1)
	want(t, got, "htapchaos_late_total"+pr1, 2)
	want(t, got, "htapchaos_dropped_total"+pr1, 1)
	want(t, got, "htapchaos_operations_total"+in2, 0) // an idle key is served from the start
	// HDR histograms with 3 significant digits: within 0.1%.
	for k, v := range map[string]float64{lat(pr1, "0.5"): 0.5005, lat(pr1, "0.99"): 0.990, lat(pr1, "1"): 1.0,
		"htapchaos_latency_seconds_sum" + pr1: 500.5 + 1} {
		if g := got[k]; math.Abs(g-v)/v > 0.002 {
			t.Errorf("%s = %v, want about %v", k, g, v)
		}
	}
	want(t, got, "htapchaos_latency_seconds_count"+pr1, 1001)
	want(t, got, lat(in2, "0.5"), math.NaN())

	// The next interval: only its own operations count for latency.
	h.Record(t0, t0, t0.Add(3*time.Millisecond), nil)
	if _, err := rec.Close(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got = scrape(t, s.URL())
	want(t, got, "htapchaos_operations_total"+pr1, 1002)
	want(t, got, "htapchaos_latency_seconds_count"+pr1, 1002)
	if g := got[lat(pr1, "1")]; math.Abs(g-0.003) > 0.00001 {
		t.Errorf("max of the last interval = %v, want 0.003", g)
	}
}

// Gaps of reads and writes, per stream and cluster-wide, from a recorder fed
// writes that stop on one node while reads go on.
func TestGapGauges(t *testing.T) {
	s := startTest(t)
	t0 := time.Now()
	rec, err := results.NewRecorder(results.Options{Start: t0, Observer: s})
	if err != nil {
		t.Fatal(err)
	}
	read := rec.Handle(results.Key{Workload: "oltp", Op: "point-read", Node: 1, Access: results.Read})
	write1 := rec.Handle(results.Key{Workload: "oltp", Op: "insert", Node: 1, Access: results.Write})
	write2 := rec.Handle(results.Key{Workload: "oltp", Op: "insert", Node: 2, Access: results.Write})
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms <= 3000; ms += 10 {
		read.Record(at(ms), at(ms), at(ms), nil)
	}
	// Node 1 writes until 0.5 s and from 2.5 s; node 2 until 1 s, then never again.
	for ms := 0; ms <= 3000; ms += 100 {
		if ms <= 500 || ms >= 2500 {
			write1.Record(at(ms), at(ms), at(ms), nil)
		}
		if ms <= 1000 {
			write2.Record(at(ms), at(ms), at(ms), nil)
		}
	}
	if _, err := rec.Tick(at(3000)); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, s.URL())
	for k, v := range map[string]float64{
		`htapchaos_stream_longest_gap_seconds{access="write",node="1",workload="oltp"}`:   2,
		`htapchaos_stream_seconds_since_success{access="write",node="1",workload="oltp"}`: 0,
		`htapchaos_stream_longest_gap_seconds{access="write",node="2",workload="oltp"}`:   2, // open since 1 s
		`htapchaos_stream_seconds_since_success{access="write",node="2",workload="oltp"}`: 2,
		`htapchaos_stream_longest_gap_seconds{access="read",node="1",workload="oltp"}`:    0,
		`htapchaos_cluster_longest_gap_seconds{access="write"}`:                           1.5, // 1 s to 2.5 s
		`htapchaos_cluster_seconds_since_success{access="write"}`:                         0,
		`htapchaos_cluster_longest_gap_seconds{access="read"}`:                            0,
	} {
		want(t, got, k, v)
	}
}

func TestPhaseFaultsAndRuns(t *testing.T) {
	s := startTest(t)
	s.RunStarted("failover-pause")
	s.Phase("setup")
	s.Phase("steady")
	s.Phase("steady")
	s.Fault("pause", "pause", false)
	got := scrape(t, s.URL())
	want(t, got, `htapchaos_run_info{run="failover-pause"}`, 1)
	want(t, got, `htapchaos_phase_info{phase="setup"}`, 0)
	want(t, got, `htapchaos_phase_info{phase="steady"}`, 1)
	want(t, got, `htapchaos_fault_active{fault="pause",kind="pause"}`, 0)
	s.Phase("fault")
	s.Fault("pause", "pause", true)
	got = scrape(t, s.URL())
	want(t, got, `htapchaos_phase_info{phase="steady"}`, 0)
	want(t, got, `htapchaos_phase_info{phase="fault"}`, 1)
	want(t, got, `htapchaos_fault_active{fault="pause",kind="pause"}`, 1)
	s.Fault("pause", "pause", false)
	s.Aborted("nodes_down >= 1 for 1s")
	want(t, scrape(t, s.URL()), `htapchaos_run_aborted{condition="nodes_down >= 1 for 1s",run="failover-pause"}`, 1)
	s.ObserveInterval([]results.KeyInterval{{Key: results.Key{Workload: "oltp", Op: "point-read", Node: 1}, Count: 9, P99: time.Millisecond}})
	s.Samples([]experiments.Sample{{Node: 1, Up: true}})
	want(t, scrape(t, s.URL()), `htapchaos_fault_active{fault="pause",kind="pause"}`, 0)

	// The next run of a suite: its own gauges; the counters go on.
	s.RunStarted("partition")
	s.Phase("setup")
	got = scrape(t, s.URL())
	want(t, got, `htapchaos_run_info{run="failover-pause"}`, 0)
	want(t, got, `htapchaos_run_info{run="partition"}`, 1)
	want(t, got, `htapchaos_phase_info{phase="setup"}`, 1)
	absent(t, got, `htapchaos_phase_info{phase="fault"}`)
	absent(t, got, `htapchaos_fault_active{fault="pause",kind="pause"}`)
	want(t, got, lat(pr1, "0.99"), math.NaN()) // not news any more
	want(t, got, "htapchaos_latency_seconds_count"+pr1, 9)
	absent(t, got, `htapchaos_node_up{node="1"}`)
	want(t, got, "htapchaos_operations_total"+pr1, 9)
}

func TestSamples(t *testing.T) {
	s := startTest(t)
	stale := 1500.0
	s.Samples([]experiments.Sample{
		{T: time.Unix(1_700_000_000, 0), Node: 1, Up: true, ClusterSize: 3, Primary: true, Ready: true, FCPausedMs: 250, RecvQueue: 4, SendQueue: 1,
			ThreadsRunning: 7, ThreadsConnected: 40, MemoryPct: 61.5, CPUPct: 120, Running: true},
		{T: time.Unix(1_700_000_000, 0), Node: 2, Up: true, ClusterSize: 3, Primary: true, Ready: true, ThreadsRunning: 1, StalenessMs: &stale,
			MemoryPct: 40, Running: true},
		{T: time.Unix(1_700_000_000, 0), Node: 3, Up: false, MemoryPct: 55, Running: true, Paused: true},
	})
	got := scrape(t, s.URL())
	want(t, got, `htapchaos_node_up{node="1"}`, 1)
	want(t, got, `htapchaos_node_cluster_size{node="1"}`, 3)
	want(t, got, `htapchaos_node_ready{node="1"}`, 1)
	want(t, got, `htapchaos_node_primary{node="1"}`, 1)
	want(t, got, `htapchaos_node_flow_control_paused_seconds{node="1"}`, 0.25)
	want(t, got, `htapchaos_node_recv_queue{node="1"}`, 4)
	want(t, got, `htapchaos_node_send_queue{node="1"}`, 1)
	want(t, got, `htapchaos_node_threads_running{node="1"}`, 7)
	want(t, got, `htapchaos_node_threads_connected{node="1"}`, 40)
	want(t, got, `htapchaos_node_memory_percent{node="1"}`, 61.5)
	want(t, got, `htapchaos_node_cpu_percent{node="1"}`, 120)
	want(t, got, `htapchaos_node_paused{node="1"}`, 0)
	absent(t, got, `htapchaos_node_staleness_seconds{node="1"}`)
	want(t, got, `htapchaos_node_staleness_seconds{node="2"}`, 1.5)
	// A frozen node: down, paused, no SQL figures.
	want(t, got, `htapchaos_node_up{node="3"}`, 0)
	want(t, got, `htapchaos_node_paused{node="3"}`, 1)
	want(t, got, `htapchaos_node_memory_percent{node="3"}`, 55)
	absent(t, got, `htapchaos_node_cluster_size{node="3"}`)
	absent(t, got, `htapchaos_node_threads_running{node="3"}`)
	want(t, got, "htapchaos_indicators_timestamp_seconds{}", 1_700_000_000)

	// Node 1 stops answering: its Galera figures go, they do not freeze.
	s.Samples([]experiments.Sample{{Node: 1, Up: false, Running: true}})
	got = scrape(t, s.URL())
	want(t, got, `htapchaos_node_up{node="1"}`, 0)
	absent(t, got, `htapchaos_node_cluster_size{node="1"}`)
	absent(t, got, `htapchaos_node_memory_percent{node="1"}`)
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		bad  string // "" = good
	}{
		{"127.0.0.1:9464", ""},
		{"127.0.0.1:0", ""},
		{":9464", ""},
		{"[::1]:9464", ""},
		{"localhost:9464", ""},
		{"9464", "want HOST:PORT"},
		{"127.0.0.1", "want HOST:PORT"},
		{"127.0.0.1:", `port "": want a number`},
		{"127.0.0.1:http", `port "http": want a number`},
		{"127.0.0.1:70000", `port "70000": want a number`},
		{"127.0.0.1:-1", `port "-1": want a number`},
		{"bad host:9464", `host "bad host"`},
		{"http://127.0.0.1:9464", "want HOST:PORT"},
	} {
		err := CheckAddr(tc.addr)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%q: %v, want an error with %q", tc.addr, err, tc.bad)
		}
	}
}

func TestStartOnATakenPortFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := Start(l.Addr().String())
	if err == nil {
		s.Close(context.Background())
		t.Fatal("started on a taken port")
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("error %q: want address in use, naming the address", err)
	}
	if _, err := Start("nonsense"); err == nil || !strings.Contains(err.Error(), `"nonsense"`) {
		t.Errorf("bad address: %v", err)
	}
}

func TestCloseStopsServing(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Errorf("URL %s", url)
	}
	scrape(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Error("still serving after Close")
	}
}

// An address with no host (":PORT") binds loopback, not every interface.
func TestStartWithoutAHostBindsLoopback(t *testing.T) {
	s, err := Start(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if a, ok := s.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		t.Errorf("listening on %v, want loopback", s.Addr())
	}
}
