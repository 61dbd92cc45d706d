package testcontainers

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	_ "github.com/Shopify/toxiproxy/v2/toxics" // registers the latency and reset_peer toxics
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	tc "github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// The leaf proxy: a Toxiproxy server in a container of its own on the cluster
// network, between the aggregators and the leaves. Each leaf gets a proxy there,
// and the aggregators' server entry for the leaf points at it, so a delay added to
// a leaf's proxy slows the aggregator -> leaf path alone (the kernel here has no
// netem). The server is htapchaos's own executable (Toxiproxy is a Go library it
// links), copied into a container of the node image and started with
// EnvProxyServer set: nothing is pulled and no image is built.

// EnvProxyServer, when set to host:port, makes ServeProxyIfAsked serve
// Toxiproxy's API there instead of returning.
const EnvProxyServer = "HTAPCHAOS_PROXY_SERVER"

const (
	proxyAlias    = "proxy"
	proxyAPIPort  = 8474
	proxyLeafBase = 13306 // leaf N listens on proxyLeafBase+N
	proxyBinary   = "/usr/local/bin/htapchaos-proxy"
)

// ServeProxyIfAsked serves Toxiproxy's API, and never returns, when the process
// was started with EnvProxyServer set (the leaf proxy container). main and the
// tests' TestMain call it first.
func ServeProxyIfAsked() {
	addr := os.Getenv(EnvProxyServer)
	if addr == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%s: %v\n", EnvProxyServer, addr, err)
		os.Exit(2)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.New(os.Stderr))
	srv.Listen(host, port)
	os.Exit(1)
}

// LeafProxy is a sharded cluster's leaf proxy.
type LeafProxy struct {
	ID string // container ID
	// API is host:port of its Toxiproxy API, published on the engine's host.
	API string
	// Listen maps a leaf's alias to host:port of its proxy listener, published
	// on the engine's host: a probe through it takes the aggregators' path.
	Listen map[string]string
}

func leafPort(i int) string { return strconv.Itoa(proxyLeafBase + i) }

// startLeafProxy starts the leaf proxy container and a proxy per leaf in it.
func (c *Cluster) startLeafProxy(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		return &ConfigError{Field: "--leaf-proxy", Msg: fmt.Sprintf("the leaf proxy runs this executable inside a Linux container: build htapchaos for linux/%s to use it (this one is %s)", runtime.GOARCH, runtime.GOOS)}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("leaf proxy: find htapchaos's executable: %w", err)
	}
	clientNet, err := c.newNetwork(ctx, kindClientNet, proxyAlias)
	if err != nil {
		return err
	}
	clusterNetName, err := c.networkName(ctx)
	if err != nil {
		return err
	}
	leaves := c.Leaves()
	ports := []string{strconv.Itoa(proxyAPIPort) + "/tcp"}
	for i := range leaves {
		ports = append(ports, leafPort(i+1)+"/tcp")
	}
	hostIP := c.publishIP()
	labels := c.labels(kindProxy)
	labels[LabelAlias] = proxyAlias
	req := tc.ContainerRequest{
		Image:          c.cfg.Image,
		Name:           c.Name + "-" + proxyAlias,
		Entrypoint:     []string{proxyBinary},
		Env:            map[string]string{EnvProxyServer: "0.0.0.0:" + strconv.Itoa(proxyAPIPort)},
		Labels:         labels,
		ExposedPorts:   ports,
		Networks:       []string{clientNet.Name, clusterNetName},
		NetworkAliases: map[string][]string{clusterNetName: {proxyAlias}},
		Files:          []tc.ContainerFile{{HostFilePath: exe, ContainerFilePath: proxyBinary, FileMode: 0o755}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Memory, hc.MemorySwap = 256<<20, 256<<20
			pm := network.PortMap{}
			for _, p := range ports {
				pm[network.MustParsePort(p)] = []network.PortBinding{{HostIP: hostIP, HostPort: "0"}}
			}
			hc.PortBindings = pm
		},
	}
	ctr, err := tc.GenericContainer(ctx, tc.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: tclog.NewNoopLogger()})
	if ctr == nil {
		return fmt.Errorf("start the leaf proxy: %w", err)
	}
	c.Proxy = &LeafProxy{ID: ctr.GetContainerID(), Listen: map[string]string{}}
	if err != nil {
		return fmt.Errorf("start the leaf proxy: %w", err)
	}
	if err := c.readProxyPorts(ctx); err != nil {
		return err
	}
	api := toxiclient.NewClient(c.Proxy.API)
	if err := poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		_, err := api.Proxies()
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	}, "leaf proxy API"); err != nil {
		return err
	}
	for i, l := range leaves {
		// Each leaf's proxy is named after the leaf's alias.
		if _, err := api.CreateProxy(l.Alias, "0.0.0.0:"+leafPort(i+1), l.Alias+":3306"); err != nil {
			return fmt.Errorf("leaf proxy for %s: %w", l.Alias, err)
		}
	}
	return nil
}

// readProxyPorts reads where the leaf proxy's ports are published.
func (c *Cluster) readProxyPorts(ctx context.Context) error {
	res, err := c.engine.Client.ContainerInspect(ctx, c.Proxy.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect the leaf proxy: %w", err)
	}
	published := func(port string) string {
		if res.Container.NetworkSettings == nil {
			return ""
		}
		for _, b := range res.Container.NetworkSettings.Ports[network.MustParsePort(port+"/tcp")] {
			if b.HostPort != "" {
				return net.JoinHostPort(c.engine.Host, b.HostPort)
			}
		}
		return ""
	}
	c.Proxy.API = published(strconv.Itoa(proxyAPIPort))
	if c.Proxy.API == "" {
		return fmt.Errorf("the leaf proxy's API port is not published")
	}
	for i, l := range c.Leaves() {
		c.Proxy.Listen[l.Alias] = published(leafPort(i + 1))
	}
	return nil
}

// leafServerAddr is where aggregators reach leaf i (1-based) of the leaves: the
// leaf itself, or its proxy.
func (c *Cluster) leafServerAddr(i int, alias string) (host string, port int) {
	if c.cfg.LeafProxy {
		return proxyAlias, proxyLeafBase + i
	}
	return alias, 3306
}

// LeafProxy says how the aggregators reach a leaf through the leaf proxy: the
// proxy's API, the leaf's proxy in it, and where its listener is published. ok is
// false for a node that is not a leaf of a cluster with a leaf proxy.
func (n *Node) LeafProxy() (api, name, listen string, ok bool) {
	p := n.c.Proxy
	if n.Role != RoleLeaf || p == nil || p.Listen[n.Alias] == "" {
		return "", "", "", false
	}
	return p.API, n.Alias, p.Listen[n.Alias], true
}
