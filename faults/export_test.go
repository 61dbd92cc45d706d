package faults

import (
	"context"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// What the tests on containers (package faults_test: see containers_test.go) reach
// inside package faults.

const (
	MemfillBand   = memfillBand
	MemfillMargin = memfillMargin
	MemfillRow    = memfillRow
	SchemaColumn  = schemaColumn
	SchemaIndex   = schemaIndex
)

var (
	Hogs            = hogs
	MemfillStatus   = memfillStatus
	ReadCPUStat     = readCPUStat
	FindMeasurement = measurement
)

// NetLatency is network-latency's fault, for a test to look at its proxies.
type NetLatency = netLatency

func (f *netLatency) Proxies() *Proxies { return f.px }

func (f *netLatency) Probe(ctx context.Context, n Node, k int) (time.Duration, int, error) {
	return f.probe(ctx, n, k)
}

func (p *Proxies) Proxy(index int) *toxiproxy.Proxy { return p.proxy(index) }

func (s cpuStat) Quota() float64 { return s.quota }
