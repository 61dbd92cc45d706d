package faults

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Measurements of network-bandwidth.
const (
	MeasureBytesUnderCap    = "bytes sent under the cap" // network-bandwidth: bytes through the filter
	MeasurePacketsOverLimit = "packets over the limit"   // packets held back
	MeasurePacketsDropped   = "packets dropped"
)

// networkBandwidthKind declares network-bandwidth.
func networkBandwidthKind() *Kind {
	return &Kind{
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
	}
}

var (
	tcRate    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$`)
	ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)
)

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
