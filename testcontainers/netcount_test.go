package testcontainers

import (
	"net/netip"
	"testing"
)

func TestClusterInterfaceFromProc(t *testing.T) {
	// /proc/net/route and /proc/net/dev of a node on two networks: eth0 a client
	// network with the default route, eth1 the cluster network 172.19.0.0/16.
	route := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010012AC	0003	0	0	0	00000000	0	0	0
eth0	000012AC	00000000	0001	0	0	0	0000FFFF	0	0	0
eth1	000013AC	00000000	0001	0	0	0	0000FFFF	0	0	0
`
	dev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0: 5000000    4000    0    0    0     0          0         0  9000000    5000    0    0    0     0       0          0
  eth1:  123456     789    0    0    0     0          0         0   654321     987    0    0    0     0       0          0
`
	iface, err := routeInterface(route+dev, netip.MustParseAddr("172.19.0.3"))
	if err != nil || iface != "eth1" {
		t.Fatalf("interface %q, %v; want eth1", iface, err)
	}
	c, err := devCounters(route+dev, iface)
	if err != nil || c.RxBytes != 123456 || c.TxBytes != 654321 {
		t.Fatalf("counters %+v, %v", c, err)
	}
	if _, err := routeInterface(route, netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("an address on no connected route found an interface")
	}
}
