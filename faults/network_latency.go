package faults

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/go-sql-driver/mysql"
)

// Measurements of network-latency.
const (
	MeasureRoundTripBefore = "round trip before" // ms, SELECT 1 through the proxy before the delay
	MeasureAddedRoundTrip  = "added round trip"  // ms, what the delay added to it
)

// networkLatencyKind declares network-latency.
func networkLatencyKind() *Kind {
	return &Kind{
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
	}
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
