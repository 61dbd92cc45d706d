package faults

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/go-sql-driver/mysql"
)

// Measurements of network-latency, network-bandwidth and slow-node.
const (
	MeasureRoundTripBefore  = "round trip before"        // ms, SELECT 1 through the proxy before the delay
	MeasureAddedRoundTrip   = "added round trip"         // ms, what the delay added to it
	MeasureBytesUnderCap    = "bytes sent under the cap" // network-bandwidth: bytes through the filter
	MeasurePacketsOverLimit = "packets over the limit"   // packets held back
	MeasurePacketsDropped   = "packets dropped"
	MeasureThrottledPeriods = "throttled periods" // slow-node: CFS periods throttled
	MeasureThrottledTime    = "throttled time"    // s throttled
)

func networkKinds() []*Kind {
	return []*Kind{
		{
			Name:        "network-latency",
			Description: "delay (and optionally reset) client connections to the node through a latency proxy (Toxiproxy) in front of it; on a leaf of a sharded cluster with a leaf proxy, the aggregators' connections to it",
			Class:       ClassSlowdown,
			ClientPath:  true,
			Measures:    []string{MeasureRoundTripBefore, MeasureAddedRoundTrip},
			Params: []ParamSpec{
				{Name: "delay", Type: Duration, Default: "100ms", Help: "added to every response"},
				{Name: "jitter", Type: Duration, Help: "random extra delay, up to this much either way"},
				{Name: "reset", Type: Percent, Help: "percent of connections reset (dropped) while the fault holds"},
			},
			Needs:    needsAll(capability[Addresser](), capability[SQLNode]()),
			Harmless: true,
			New: func(p Params) Fault {
				return &netLatency{delay: p.Duration("delay"), jitter: p.Duration("jitter"), reset: p.Int("reset")}
			},
		},
		{
			Name:        "network-bandwidth",
			Description: "cap the node's egress on the cluster network with tc tbf (a congested link: replication lags)",
			Class:       ClassSlowdown,
			Measures:    []string{MeasureBytesUnderCap, MeasurePacketsOverLimit, MeasurePacketsDropped},
			Params: []ParamSpec{
				{Name: "rate", Type: String, Default: "1mbit", Help: "tc rate: 512kbit, 1mbit, 10mbit"},
				{Name: "burst", Type: String, Default: "32kbit", Help: "tc bucket size"},
				{Name: "iface", Type: String, Default: "cluster", Help: "interface inside the node; cluster: the one its peers reach it on"},
			},
			Needs: needsAll(capability[Execer](), capability[Readier]()),
			Validate: func(p Params) error {
				var errs []string
				for _, k := range []string{"rate", "burst"} {
					if !tcRate.MatchString(p[k]) {
						errs = append(errs, fmt.Sprintf("%s=%s", k, p[k]))
					}
				}
				if len(errs) > 0 {
					return usageErr("--param", "%s: want a tc rate such as 512kbit, 1mbit or 100mbit", strings.Join(errs, ", "))
				}
				if !ifaceName.MatchString(p["iface"]) {
					return usageErr("--param", "iface=%s: not an interface name", p["iface"])
				}
				return nil
			},
			New: func(p Params) Fault { return &netBandwidth{rate: p["rate"], burst: p["burst"], iface: p["iface"]} },
		},
		{
			Name:        "slow-node",
			Description: "throttle the node's CPU to a percentage of one core (a gray failure: on Galera it spreads through flow control)",
			Class:       ClassSlowdown,
			Measures:    []string{MeasureThrottledPeriods, MeasureThrottledTime},
			Params:      []ParamSpec{{Name: "percent", Type: Percent, Default: "10", Help: "CPU left to the node, in percent of one core"}},
			Needs:       needsAll(capability[CPULimiter](), capability[Readier]()),
			New:         func(p Params) Fault { return &slowNode{cores: float64(p.Int("percent")) / 100} },
		},
	}
}

var (
	tcRate    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$`)
	ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)
)

// measurements is a goroutine-safe list of what a fault measured.
type measurements struct {
	mu   sync.Mutex
	list []Measurement
}

func (m *measurements) add(ms ...Measurement) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, ms...)
}

func (m *measurements) Measurements() []Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.list)
}

// netLatency adds toxics to the proxies in front of the targets. Only load routed
// through the proxies feels them: the experiment runner routes it there, and the
// fault command prints each proxy's address.
type netLatency struct {
	measurements
	delay, jitter time.Duration
	reset         int

	px   *Proxies
	own  bool
	base map[int]time.Duration
	// peer are the nodes whose peers reach them through a proxy of their own
	// (PeerProxied): the delay goes there, on the peers' path, not on the
	// clients'.
	peer map[int]peerProxy
}

type peerProxy struct {
	px     *toxiclient.Proxy
	listen string
}

const (
	toxicDelay = "htapchaos-delay"
	toxicReset = "htapchaos-reset"
)

func (f *netLatency) Setup(ctx context.Context, env *Env) error {
	f.px, f.own = env.Proxies, env.Proxies == nil
	if f.own {
		f.px = NewProxies()
	}
	f.base, f.peer = map[int]time.Duration{}, map[int]peerProxy{}
	// each runs the targets one after the other: f.peer needs no lock.
	return each(env, func(n Node) error {
		if pp, ok := n.(PeerProxied); ok {
			if api, name, listen, ok := pp.LeafProxy(); ok {
				px, err := toxiclient.NewClient(api).Proxy(name)
				if err != nil {
					return fmt.Errorf("the leaf proxy's %s: %w", name, err)
				}
				f.peer[n.Index()] = peerProxy{px: px, listen: listen}
				env.Events.Add("network-latency", "proxy", []Node{n}, "its aggregators reach it through the leaf proxy "+name)
			}
		}
		_, peer := f.peer[n.Index()]
		if !peer && n.Role() == "leaf" {
			// No client talks to a leaf: a delay on its client path would take
			// effect where no load goes.
			return usageErr("--node", "%s is a leaf: its aggregators reach it directly; start the cluster with --leaf-proxy (spec: cluster.leaf_proxy) to delay that path", n.Label())
		}
		if !peer {
			addr, err := f.px.Start(n)
			if err != nil {
				return err
			}
			env.Events.Add("network-latency", "proxy", []Node{n}, "clients reach it through "+addr)
		}
		base, _, err := f.probe(ctx, n, 9)
		if err != nil {
			return fmt.Errorf("through the proxy before any delay: %w", err)
		}
		f.base[n.Index()] = base
		f.add(Measurement{Name: MeasureRoundTripBefore, Node: n.Label(), Value: ms(base), Unit: "ms", Note: "SELECT 1 through the proxy"})
		return nil
	})
}

func (f *netLatency) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		if pp, ok := f.peerOf(n); ok {
			if f.delay > 0 {
				if _, err := pp.px.AddToxic(toxicDelay, "latency", "downstream", 1, toxiclient.Attributes{
					"latency": f.delay.Milliseconds(), "jitter": f.jitter.Milliseconds()}); err != nil {
					return fmt.Errorf("add latency: %w", err)
				}
			}
			if f.reset > 0 {
				if _, err := pp.px.AddToxic(toxicReset, "reset_peer", "upstream", float32(f.reset)/100, toxiclient.Attributes{"timeout": 0}); err != nil {
					return fmt.Errorf("add reset: %w", err)
				}
			}
			return nil
		}
		px := f.px.proxy(n.Index())
		if f.delay > 0 {
			t := fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d,"jitter":%d}}`,
				toxicDelay, f.delay.Milliseconds(), f.jitter.Milliseconds())
			if _, err := px.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
				return fmt.Errorf("add latency: %w", err)
			}
		}
		if f.reset > 0 {
			t := fmt.Sprintf(`{"name":%q,"type":"reset_peer","stream":"upstream","toxicity":%g,"attributes":{"timeout":0}}`,
				toxicReset, float64(f.reset)/100)
			if _, err := px.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
				return fmt.Errorf("add reset: %w", err)
			}
		}
		return nil
	})
}

// WaitForEffect: a SELECT 1 through the proxy takes the delay longer than before
// (at least 90% of it; jitter averages out in the median). Resets alone cannot be
// seen reliably by a probe, so they are trusted once added.
func (f *netLatency) WaitForEffect(ctx context.Context, env *Env) error {
	if f.delay == 0 {
		return nil
	}
	return each(env, func(n Node) error {
		var added time.Duration
		err := poll(ctx, "the delay does not show through the proxy", func() (bool, error) {
			rtt, failed, err := f.probe(ctx, n, 5)
			if err != nil {
				if failed > 0 && f.reset > 0 {
					return false, nil // reset: try again
				}
				return false, err
			}
			added = rtt - f.base[n.Index()]
			return added >= f.delay*9/10, nil
		})
		if err == nil {
			f.add(Measurement{Name: MeasureAddedRoundTrip, Node: n.Label(), Value: ms(added), Unit: "ms",
				Note: fmt.Sprintf("delay %v", f.delay)})
		}
		return err
	})
}

func (f *netLatency) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		if pp, ok := f.peerOf(n); ok {
			ts, err := pp.px.Toxics()
			if err != nil {
				return fmt.Errorf("list the leaf proxy's toxics: %w", err)
			}
			for _, t := range ts {
				if t.Name == toxicDelay || t.Name == toxicReset {
					if err := pp.px.RemoveToxic(t.Name); err != nil {
						return fmt.Errorf("remove %s: %w", t.Name, err)
					}
				}
			}
			return nil
		}
		px := f.px.proxy(n.Index())
		if px == nil {
			return nil
		}
		for _, name := range []string{toxicDelay, toxicReset} {
			if px.Toxics.GetToxic(name) != nil {
				if err := px.Toxics.RemoveToxic(ctx, name); err != nil {
					return fmt.Errorf("remove %s: %w", name, err)
				}
			}
		}
		return nil
	})
}

// WaitForRecovery: the round trip through the proxy is back near where it was.
func (f *netLatency) WaitForRecovery(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		return poll(ctx, "the round trip through the proxy is still raised", func() (bool, error) {
			rtt, _, err := f.probe(ctx, n, 5)
			if err != nil {
				return false, err
			}
			return rtt-f.base[n.Index()] < max(f.delay/4, 10*time.Millisecond), nil
		})
	})
}

func (f *netLatency) Cleanup(context.Context, *Env) error {
	if f.own && f.px != nil {
		f.px.Close()
	}
	return nil
}

// peerOf is the node's proxy on its peers' path, if the fault uses one.
func (f *netLatency) peerOf(n Node) (peerProxy, bool) {
	pp, ok := f.peer[n.Index()]
	return pp, ok
}

// probe times SELECT 1 through the node's proxy k times on one connection and
// returns the median, and how many attempts failed.
func (f *netLatency) probe(ctx context.Context, n Node, k int) (time.Duration, int, error) {
	var dsn string
	var err error
	if pp, ok := f.peerOf(n); ok {
		// Through the leaf proxy's published listener: the aggregators' path.
		var cfg *mysql.Config
		if cfg, err = mysql.ParseDSN(n.(SQLNode).DSN()); err == nil {
			cfg.Net, cfg.Addr = "tcp", pp.listen
			dsn = cfg.FormatDSN()
		}
	} else {
		dsn, err = f.px.DSN(n.Index(), n.(SQLNode).DSN())
	}
	if err != nil {
		return 0, 0, err
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var rtts []time.Duration
	failed := 0
	var last error
	for range k {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second+2*f.delay)
		start := time.Now()
		var one int
		err := db.QueryRowContext(qctx, "SELECT 1").Scan(&one)
		cancel()
		if err != nil {
			failed++
			last = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		rtts = append(rtts, time.Since(start))
	}
	if len(rtts) == 0 {
		return 0, failed, fmt.Errorf("no SELECT 1 through the proxy answered: %v", last)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], failed, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// netBandwidth caps a node's egress with a token bucket filter on the interface its
// peers reach it on: the node's replication traffic, not its clients', slows down.
type netBandwidth struct {
	measurements
	rate, burst, iface string
	ifaces             map[int]string
}

func (f *netBandwidth) Setup(ctx context.Context, env *Env) error {
	f.ifaces = map[int]string{}
	return each(env, func(n Node) error {
		iface := f.iface
		if iface == "cluster" {
			h, ok := n.(ClusterHoster)
			if !ok {
				return fmt.Errorf("its controller does not say how its peers reach it: give iface=NAME")
			}
			// The interface holding the address the node's cluster alias resolves to.
			cmd := fmt.Sprintf(`ip=$(getent hosts %s | awk '{print $1; exit}') && [ -n "$ip" ] && ip -o -4 addr show | awk -v ip="$ip" '$4 ~ "^"ip"/" {print $2; exit}'`, h.ClusterHost())
			code, out, err := n.(Execer).Exec(ctx, "sh", "-c", cmd)
			iface = strings.TrimSpace(out)
			if err != nil || code != 0 || !ifaceName.MatchString(iface) {
				return fmt.Errorf("find the cluster interface (exit %d: %q): %v", code, out, err)
			}
		}
		if err := execOK(ctx, n, "tc", "qdisc", "show", "dev", iface); err != nil {
			return fmt.Errorf("tc on %s: %w", iface, err)
		}
		f.ifaces[n.Index()] = iface
		return nil
	})
}

func (f *netBandwidth) Inject(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		return execOK(ctx, n, "tc", "qdisc", "replace", "dev", f.ifaces[n.Index()], "root", "tbf",
			"rate", f.rate, "burst", f.burst, "latency", "400ms")
	})
}

func (f *netBandwidth) qdisc(ctx context.Context, n Node) (string, error) {
	code, out, err := n.(Execer).Exec(ctx, "tc", "-s", "qdisc", "show", "dev", f.ifaces[n.Index()])
	if err == nil && code != 0 {
		err = fmt.Errorf("tc exited %d: %s", code, out)
	}
	return out, err
}

func (f *netBandwidth) WaitForEffect(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		return poll(ctx, "no tbf on "+f.ifaces[n.Index()], func() (bool, error) {
			out, err := f.qdisc(ctx, n)
			return err == nil && strings.Contains(out, "qdisc tbf"), err
		})
	})
}

var tbfStats = regexp.MustCompile(`Sent ([0-9]+) bytes ([0-9]+) pkt \(dropped ([0-9]+), overlimits ([0-9]+)`)

// Recover records what the filter did (bytes through it, packets held back over
// the limit, drops), then removes it.
func (f *netBandwidth) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		if out, err := f.qdisc(ctx, n); err == nil {
			if m := tbfStats.FindStringSubmatch(out); m != nil && strings.Contains(out, "qdisc tbf") {
				v := func(i int) float64 { x, _ := strconv.ParseFloat(m[i], 64); return x }
				f.add(Measurement{Name: MeasureBytesUnderCap, Node: n.Label(), Value: v(1), Unit: "bytes", Note: f.rate},
					Measurement{Name: MeasurePacketsOverLimit, Node: n.Label(), Value: v(4), Unit: "pkt"},
					Measurement{Name: MeasurePacketsDropped, Node: n.Label(), Value: v(3), Unit: "pkt"})
			}
		}
		code, out, err := n.(Execer).Exec(ctx, "tc", "qdisc", "del", "dev", f.ifaces[n.Index()], "root")
		if err == nil && code != 0 && !strings.Contains(out, "No such file") && !strings.Contains(out, "Cannot delete qdisc with handle of zero") {
			err = fmt.Errorf("tc qdisc del exited %d: %s", code, out)
		}
		return err
	})
}

func (f *netBandwidth) WaitForRecovery(ctx context.Context, env *Env) error {
	if err := each(env, func(n Node) error {
		return poll(ctx, "tbf still on "+f.ifaces[n.Index()], func() (bool, error) {
			out, err := f.qdisc(ctx, n)
			return err == nil && !strings.Contains(out, "qdisc tbf"), err
		})
	}); err != nil {
		return err
	}
	return waitReady(ctx, env)
}

func (*netBandwidth) Cleanup(context.Context, *Env) error { return nil }

// slowNode caps the node's CPU through the engine's CPU quota.
type slowNode struct {
	noSetup
	measurements
	cores float64

	mu       sync.Mutex
	restores map[int]func(context.Context) error
	before   map[int]cpuStat
}

func (f *slowNode) Inject(ctx context.Context, env *Env) error {
	f.mu.Lock()
	if f.restores == nil {
		f.restores, f.before = map[int]func(context.Context) error{}, map[int]cpuStat{}
	}
	f.mu.Unlock()
	return each(env, func(n Node) error {
		restore, err := n.(CPULimiter).LimitCPU(ctx, f.cores)
		if restore != nil { // also after an error: the limit may be in force
			f.mu.Lock()
			f.restores[n.Index()] = restore
			f.mu.Unlock()
		}
		return err
	})
}

// WaitForEffect: where the node runs commands, its cgroup shows the quota.
func (f *slowNode) WaitForEffect(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		if _, ok := n.(Execer); !ok {
			return nil
		}
		return poll(ctx, "the node's CPU quota is not in force", func() (bool, error) {
			st, err := readCPUStat(ctx, n)
			if err != nil {
				return false, err
			}
			f.mu.Lock()
			f.before[n.Index()] = st
			f.mu.Unlock()
			return st.quota > 0 && st.quota < f.cores*1.05+0.001 && st.quota > f.cores*0.95-0.001, nil
		})
	})
}

// Recover records how often the node was throttled while the quota held, then lifts
// the quota.
func (f *slowNode) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		f.mu.Lock()
		restore := f.restores[n.Index()]
		before, hadBefore := f.before[n.Index()]
		f.mu.Unlock()
		if restore == nil {
			return nil // never limited
		}
		if hadBefore {
			if st, err := readCPUStat(ctx, n); err == nil {
				f.add(Measurement{Name: MeasureThrottledPeriods, Node: n.Label(), Value: float64(st.throttled - before.throttled),
					Note: fmt.Sprintf("quota %.0f%% of a core", f.cores*100)},
					Measurement{Name: MeasureThrottledTime, Node: n.Label(), Value: (st.throttledTime - before.throttledTime).Seconds(), Unit: "s"})
			}
		}
		if err := restore(ctx); err != nil {
			return err
		}
		f.mu.Lock()
		delete(f.restores, n.Index())
		f.mu.Unlock()
		return nil
	})
}

func (f *slowNode) WaitForRecovery(ctx context.Context, env *Env) error {
	if err := each(env, func(n Node) error {
		if _, ok := n.(Execer); !ok {
			return nil
		}
		return poll(ctx, "the node's CPU quota is still in force", func() (bool, error) {
			st, err := readCPUStat(ctx, n)
			return err == nil && (st.quota <= 0 || st.quota > f.cores*1.05+0.001), err
		})
	}); err != nil {
		return err
	}
	return waitReady(ctx, env)
}

// cpuStat is the node's CPU cgroup: the quota in cores (<= 0: none) and how often
// and how long it was throttled.
type cpuStat struct {
	quota         float64
	throttled     int64
	throttledTime time.Duration
}

// cpuStatScript prints "quota period nr_throttled throttled_ns" from cgroup v1 or v2.
const cpuStatScript = `if [ -f /sys/fs/cgroup/cpu.max ]; then
  read q p < /sys/fs/cgroup/cpu.max; [ "$q" = max ] && q=-1
  t=$(awk '$1=="nr_throttled"{print $2}' /sys/fs/cgroup/cpu.stat); tt=$(awk '$1=="throttled_usec"{print $2*1000}' /sys/fs/cgroup/cpu.stat)
else
  d=/sys/fs/cgroup/cpu; q=$(cat $d/cpu.cfs_quota_us); p=$(cat $d/cpu.cfs_period_us)
  t=$(awk '$1=="nr_throttled"{print $2}' $d/cpu.stat); tt=$(awk '$1=="throttled_time"{print $2}' $d/cpu.stat)
fi
echo "$q $p $t $tt"`

func readCPUStat(ctx context.Context, n Node) (cpuStat, error) {
	code, out, err := n.(Execer).Exec(ctx, "sh", "-c", cpuStatScript)
	if err != nil {
		return cpuStat{}, err
	}
	var q, p, t, tt float64
	if _, serr := fmt.Sscan(out, &q, &p, &t, &tt); code != 0 || serr != nil || p <= 0 {
		return cpuStat{}, fmt.Errorf("read the CPU cgroup (exit %d): %q", code, out)
	}
	st := cpuStat{quota: q / p, throttled: int64(t), throttledTime: time.Duration(tt)}
	if q < 0 {
		st.quota = -1
	}
	return st, nil
}
