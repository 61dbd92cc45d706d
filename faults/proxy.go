package faults

import (
	"fmt"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	_ "github.com/Shopify/toxiproxy/v2/toxics" // registers the latency and reset_peer toxics
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxies are Toxiproxy proxies, run in this process, in front of nodes' client
// ports: load routed through a node's proxy gets the delays and resets that
// network-latency adds. The kernel here has no netem, so the client path is where
// latency can be added.
type Proxies struct {
	mu  sync.Mutex
	srv *toxiproxy.ApiServer
	m   map[int]*toxiproxy.Proxy
}

// NewProxies returns an empty set.
func NewProxies() *Proxies {
	return &Proxies{
		srv: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop()),
		m:   map[int]*toxiproxy.Proxy{},
	}
}

// Start starts a proxy for the node on a free loopback port, if it has none yet, and
// returns the address clients should use.
func (p *Proxies) Start(n Node) (string, error) {
	a, ok := n.(Addresser)
	if !ok {
		return "", fmt.Errorf("%s: its controller does not say where clients reach it", n.Label())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if px, ok := p.m[n.Index()]; ok {
		return px.Listen, nil
	}
	px := toxiproxy.NewProxy(p.srv, n.Label(), "127.0.0.1:0", a.Addr())
	if err := px.Start(); err != nil {
		return "", fmt.Errorf("proxy for %s: %w", n.Label(), err)
	}
	p.m[n.Index()] = px
	return px.Listen, nil
}

// Addr is the proxy address for a node ("" when it has none).
func (p *Proxies) Addr(index int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if px, ok := p.m[index]; ok {
		return px.Listen
	}
	return ""
}

// DSN rewrites a node's DSN to go through its proxy.
func (p *Proxies) DSN(index int, dsn string) (string, error) {
	addr := p.Addr(index)
	if addr == "" {
		return "", fmt.Errorf("node %d has no proxy", index)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	cfg.Net, cfg.Addr = "tcp", addr
	return cfg.FormatDSN(), nil
}

func (p *Proxies) proxy(index int) *toxiproxy.Proxy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[index]
}

// Close stops every proxy; connections through them are closed.
func (p *Proxies) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, px := range p.m {
		px.Stop()
		delete(p.m, i)
	}
}
