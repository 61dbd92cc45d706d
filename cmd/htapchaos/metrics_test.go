package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetricsAddrBadInputExitsTwoAndCreatesNothing(t *testing.T) {
	for _, tc := range []struct {
		args []string
		addr string
		want string
	}{
		{[]string{"load", "--workload", "noop"}, "9464", `--metrics-addr "9464": want HOST:PORT`},
		{[]string{"load", "--workload", "noop"}, "127.0.0.1:http", `--metrics-addr "127.0.0.1:http": port "http"`},
		{[]string{"run", "failover-pause", "--quick"}, "127.0.0.1:99999", `--metrics-addr "127.0.0.1:99999": port "99999"`},
		{[]string{"suite", "--quick"}, "bad host:1", `--metrics-addr "bad host:1": host "bad host"`},
	} {
		t.Run(tc.args[0]+" "+tc.addr, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			var out, errb bytes.Buffer
			code := run(append(tc.args, "--metrics-addr", tc.addr, "--out", dir), &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 with %q", code, errb.String(), tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("bad input left a run directory behind")
			}
		})
	}
}

func TestMetricsAddrTakenExitsThree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := filepath.Join(t.TempDir(), "run")
	var out, errb bytes.Buffer
	code := run([]string{"load", "--workload", "noop", "--duration", "1s", "--metrics-addr", l.Addr().String(), "--out", dir}, &out, &errb)
	if code != exitInfra || !strings.Contains(errb.String(), "--metrics-addr "+l.Addr().String()) || !strings.Contains(errb.String(), "address already in use") {
		t.Errorf("exit %d, stderr %q; want exit 3 naming the address in use", code, errb.String())
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a failed endpoint left a run directory behind")
	}
}

// The noop workload needs no database: the endpoint is scraped during the run, its
// counters grow between two scrapes, and it is gone when the command ends.
func TestLoadMetricsNoop(t *testing.T) {
	p := startCLI(t, "load", "--workload", "noop", "--rate", "500", "--duration", "4s", "--out", filepath.Join(t.TempDir(), "run"),
		"--metrics-addr", "127.0.0.1:0")
	url := p.metricsURL(t)
	p.waitFor(t, "load: noop against", 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	a := scrapeCLI(t, url)
	time.Sleep(1500 * time.Millisecond)
	b := scrapeCLI(t, url)
	key := `htapchaos_operations_total{node="0",op="noop",workload="noop"}`
	if !(a[key] > 0 && b[key] > a[key]) {
		t.Errorf("%s: %v then %v, want growing", key, a[key], b[key])
	}
	if v := b[`htapchaos_latency_seconds{node="0",op="noop",quantile="0.99",workload="noop"}`]; !(v > 0 && v < 1) {
		t.Errorf("noop p99 latency %v, want set", v)
	}
	if b[`htapchaos_phase_info{phase="run"}`] != 1 || b[`htapchaos_run_info{run="load"}`] != 1 {
		t.Errorf("phase and run: %v %v", b[`htapchaos_phase_info{phase="run"}`], b[`htapchaos_run_info{run="load"}`])
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.text())
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Error("the endpoint still serves after the command ended")
	}
}

// Against a real node: operations, errors and latency per op and node, live.
func TestLoadMetricsAgainstANode(t *testing.T) {
	engineOrSkip(t)
	name := testPrefix + "metrics"
	if r := htapchaos(t, nil, "cluster", "up", "--topology", "single", "--name", name); r.code != 0 {
		t.Fatalf("cluster up: %s", r.stderr)
	}
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	p := startCLI(t, "load", "--cluster", name, "--workload", "oltp", "--rate", "200", "--duration", "6s",
		"--users", "500", "--orders", "5000", "--out", filepath.Join(t.TempDir(), "run"), "--metrics-addr", "127.0.0.1:0")
	url := p.metricsURL(t)
	p.waitFor(t, "load: oltp against", time.Minute)
	time.Sleep(2 * time.Second)
	a := scrapeCLI(t, url)
	time.Sleep(2 * time.Second)
	b := scrapeCLI(t, url)
	opsA, opsB := sum(a, "htapchaos_operations_total"), sum(b, "htapchaos_operations_total")
	t.Logf("operations %v then %v; point-read p99 %v s", opsA, opsB, b[`htapchaos_latency_seconds{node="1",op="point-read",quantile="0.99",workload="oltp"}`])
	if !(opsA > 100 && opsB >= opsA+300) {
		t.Errorf("operations: %v then %v, want about 200/s more", opsA, opsB)
	}
	for _, op := range []string{"point-read", "insert"} {
		k := fmt.Sprintf(`htapchaos_latency_seconds{node="1",op=%q,quantile="0.5",workload="oltp"}`, op)
		if v := b[k]; !(v > 0 && v < 1) {
			t.Errorf("%s = %v, want a latency", k, v)
		}
	}
	if v, ok := b[`htapchaos_errors_total{class="timeout",node="1",op="point-read",workload="oltp"}`]; ok && v > 0 {
		t.Logf("timeouts: %v", v) // may happen; the series is only there when one did
	}
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.text())
	}
}

// An experiment: the pause fault shows as active while it holds, with the frozen
// node's indicators, and as inactive before and after.
func TestRunMetricsShowTheFault(t *testing.T) {
	engineOrSkip(t)
	p := startCLI(t, "run", "failover-pause", "--quick", "--set", "phases.recovery.duration=6s",
		"--out", filepath.Join(t.TempDir(), "run"), "--metrics-addr", "127.0.0.1:0")
	url := p.metricsURL(t)
	const active = `htapchaos_fault_active{fault="pause",kind="pause"}`
	var seen []string // the fault's state over time, one letter a scrape: 0, 1 or - (absent)
	var during map[string]float64
	deadline := time.Now().Add(3 * time.Minute)
	for !p.exited() && time.Now().Before(deadline) {
		m, err := scrape(url)
		if err != nil {
			break // the run ended between two checks
		}
		st := "-"
		if v, ok := m[active]; ok {
			st = fmt.Sprint(v)
		}
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		if st == "1" && m[`htapchaos_phase_info{phase="fault"}`] == 1 && m[`htapchaos_node_up{node="3"}`] == 0 {
			during = m
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code := p.wait(t, 3*time.Minute); code != 0 && code != exitVerdictFail {
		t.Fatalf("exit %d:\n%s", code, p.text())
	}
	t.Logf("fault_active over the run: %v; during the pause: n3 up %v paused %v, n1 cluster size %v, memory %v%%", seen,
		during[`htapchaos_node_up{node="3"}`], during[`htapchaos_node_paused{node="3"}`], during[`htapchaos_node_cluster_size{node="1"}`],
		during[`htapchaos_node_memory_percent{node="1"}`])
	if got := strings.Join(seen, ""); !strings.Contains(got, "010") {
		t.Errorf("fault_active over the run: %q, want 0 then 1 then 0", got)
	}
	if during == nil {
		t.Fatalf("no scrape saw the fault active in phase fault with node 3 down:\n%s", p.text())
	}
	if during[`htapchaos_node_paused{node="3"}`] != 1 {
		t.Errorf("node 3 not shown paused during the pause")
	}
	for _, n := range []string{"1", "2"} {
		if during[`htapchaos_node_up{node="`+n+`"}`] != 1 {
			t.Errorf("node %s not up during the pause", n)
		}
		if _, ok := during[`htapchaos_node_cluster_size{node="`+n+`"}`]; !ok {
			t.Errorf("no cluster size of node %s", n)
		}
		if _, ok := during[`htapchaos_node_memory_percent{node="`+n+`"}`]; !ok {
			t.Errorf("no memory of node %s", n)
		}
	}
	if sum(during, "htapchaos_operations_total") == 0 {
		t.Error("no operations counted during the fault")
	}
}

// cliProcess is the binary running in the background, its stderr collected.
type cliProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func startCLI(t *testing.T, args ...string) *cliProcess {
	t.Helper()
	return startCLIWith(t, nil, args...)
}

// startCLIWith starts the binary with its stdout going to stdout (nil: kept
// with its stderr).
func startCLIWith(t *testing.T, stdout io.Writer, args ...string) *cliProcess {
	t.Helper()
	p := &cliProcess{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout = &lockedWriter{p}
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	r, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.buf.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type lockedWriter struct{ p *cliProcess }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.buf.Write(b)
}

func (p *cliProcess) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func (p *cliProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor waits for a line with s in the output and returns it.
func (p *cliProcess) waitFor(t *testing.T, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		txt := p.text()
		if i := strings.Index(txt, s); i >= 0 {
			line, _, _ := strings.Cut(txt[i:], "\n")
			return line
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", s, txt)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var metricsURLRe = regexp.MustCompile(`metrics: serving (http://\S+/metrics)`)

func (p *cliProcess) metricsURL(t *testing.T) string {
	t.Helper()
	line := p.waitFor(t, "metrics: serving", 30*time.Second)
	m := metricsURLRe.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("progress line %q has no URL", line)
	}
	return m[1]
}

func (p *cliProcess) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		t.Fatalf("no exit within %v:\n%s", timeout, p.text())
		return -1
	}
}

// scrape reads a metrics page: every sample as name{sorted labels} -> value
// (summary quantiles with their quantile label, and name_count, name_sum).
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := func(name string, extra ...string) string {
				all := append(slices.Clone(ls), extra...)
				slices.Sort(all)
				return name + "{" + strings.Join(all, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key(name)] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key(name)] = m.Gauge.GetValue()
			case m.Summary != nil:
				for _, q := range m.Summary.GetQuantile() {
					out[key(name, fmt.Sprintf("quantile=%q", fmt.Sprint(q.GetQuantile())))] = q.GetValue()
				}
				out[key(name+"_count")] = float64(m.Summary.GetSampleCount())
				out[key(name+"_sum")] = m.Summary.GetSampleSum()
			}
		}
	}
	return out, nil
}

func scrapeCLI(t *testing.T, url string) map[string]float64 {
	t.Helper()
	m, err := scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sum adds up every series of a metric.
func sum(m map[string]float64, name string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, name+"{") && !math.IsNaN(v) {
			s += v
		}
	}
	return s
}
