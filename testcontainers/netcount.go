package testcontainers

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// NetCounters are the bytes a node received and sent on one network interface
// since the interface was created.
type NetCounters struct {
	Interface string `json:"interface"`
	RxBytes   int64  `json:"rx_bytes"`
	TxBytes   int64  `json:"tx_bytes"`
}

// ClusterNetCounters reads the node's counters on the cluster network alone: the
// traffic between nodes (replication, an aggregator's queries to its leaves),
// without the clients' traffic, which rides on the node's own client network. The
// engine's statistics sum every interface; this finds the interface whose
// connected route holds the node's address on the cluster network, in the node's
// network namespace: from the host's /proc when the engine is local, else, when
// exec is set, by a command in the container. The sampler never execs (an exec
// racing a pause can wedge the engine): where /proc cannot be read it gets an error.
func (n *Node) ClusterNetCounters(ctx context.Context, exec bool) (NetCounters, error) {
	res, err := n.c.engine.Client.ContainerInspect(ctx, n.ID, client.ContainerInspectOptions{})
	if err != nil {
		return NetCounters{}, fmt.Errorf("inspect %s: %w", n.Name, err)
	}
	ctr := res.Container
	if ctr.State == nil || !ctr.State.Running || ctr.State.Paused {
		return NetCounters{}, fmt.Errorf("%s is not running", n.Name)
	}
	var addr netip.Addr
	if ctr.NetworkSettings != nil {
		for _, es := range ctr.NetworkSettings.Networks {
			if es != nil && es.NetworkID == n.c.clusterNet {
				addr = es.IPAddress
			}
		}
	}
	if !addr.Is4() {
		return NetCounters{}, fmt.Errorf("%s has no IPv4 address on the cluster network (cut off?)", n.Name)
	}
	var route, dev string
	if pid := ctr.State.Pid; n.c.engine.local && pid > 0 {
		r, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/net/route", pid))
		d, derr := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
		if rerr == nil && derr == nil {
			if _, err := routeInterface(string(r), addr); err == nil {
				route, dev = string(r), string(d)
			} // else: a process of another PID namespace, not the node's
		}
	}
	if route == "" && !exec {
		return NetCounters{}, fmt.Errorf("%s: its network namespace cannot be read from this host's /proc (the engine is not local?)", n.Name)
	}
	if route == "" {
		r, err := n.Exec(ctx, "cat", "/proc/net/route", "/proc/net/dev")
		if err != nil {
			return NetCounters{}, err
		}
		if r.ExitCode != 0 {
			return NetCounters{}, fmt.Errorf("%s: read /proc/net: %s", n.Name, strings.TrimSpace(r.Stderr))
		}
		route, dev = r.Stdout, r.Stdout // each parser skips the other's lines
	}
	iface, err := routeInterface(route, addr)
	if err != nil {
		return NetCounters{}, fmt.Errorf("%s: %w", n.Name, err)
	}
	c, err := devCounters(dev, iface)
	if err != nil {
		return NetCounters{}, fmt.Errorf("%s: %w", n.Name, err)
	}
	return c, nil
}

// routeInterface finds, in /proc/net/route, the interface of the connected route
// (no gateway) whose network holds addr.
func routeInterface(route string, addr netip.Addr) (string, error) {
	a := binary.LittleEndian.Uint32(addr.AsSlice()) // the kernel prints host-order words of network-order bytes
	sc := bufio.NewScanner(strings.NewReader(route))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "Iface" {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		gw, err2 := strconv.ParseUint(f[2], 16, 32)
		mask, err3 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || gw != 0 || mask == 0 {
			continue
		}
		if a&uint32(mask) == uint32(dst) {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("no connected route holds %s", addr)
}

// devCounters reads one interface's byte counters from /proc/net/dev.
func devCounters(dev, iface string) (NetCounters, error) {
	sc := bufio.NewScanner(strings.NewReader(dev))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != iface {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			break
		}
		rx, err1 := strconv.ParseInt(f[0], 10, 64)
		tx, err2 := strconv.ParseInt(f[8], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return NetCounters{}, fmt.Errorf("interface %s: %w", iface, err)
		}
		return NetCounters{Interface: iface, RxBytes: rx, TxBytes: tx}, nil
	}
	return NetCounters{}, fmt.Errorf("no counters for interface %s", iface)
}
