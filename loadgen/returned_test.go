package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// A tracked connection counts every byte read and written through it, apart.
func TestTrackedConnCountsEachWay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const sent, asked = 300_000, 1_234
	served := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer s.Close()
		if _, err := io.ReadFull(s, make([]byte, asked)); err != nil {
			served <- err
			return
		}
		_, err = s.Write(bytes.Repeat([]byte{'x'}, sent))
		served <- err
	}()
	c, err := newConnTracker().dial(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := c.(*trackedConn)
	if _, err := c.Write(make([]byte, asked)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || len(got) != sent || <-served != nil {
		t.Fatalf("read %d bytes (%v), want %d", len(got), err, sent)
	}
	if r, w := tc.read.Load(), tc.written.Load(); r != sent || w != asked {
		t.Errorf("counted %d read and %d written, want %d and %d", r, w, sent, asked)
	}
}

// On a connection whose counts are not known (not dialled through the run's
// tracker: here a fake driver), an op records no bytes returned rather than a
// figure of another connection.
func TestReturnedUnknownConnectionRecordsNothing(t *testing.T) {
	ctx := context.Background()
	for _, measure := range []bool{false, true} {
		w, _ := memoryRunOn(t, measure)
		wk := w.newWorker(1)
		for _, op := range []string{"p", "q"} {
			if res := w.attempt(ctx, 1, opIndex(t, w, op), wk); res.err != nil || res.counted {
				t.Errorf("measure memory %v, op %s on a fake driver: err %v, counted %v (%d bytes); want nothing counted", measure, op, res.err, res.counted, res.returned)
			}
		}
		wk.closeAll()
	}
}

// The bytes an op's result sends to the client, counted on a real MariaDB: a
// query's known payload plus a little framing, each op on its own (not the
// connection's running total), the bytes sent to the server left out, and the
// same figure when the op measures its memory (its PROCESSLIST reading on the
// same connection left out).
func TestReturnedBytesOnMariaDB(t *testing.T) {
	c := htc.SharedForTest(t, "single", htc.Config{Topology: htc.Single, Memory: 512 << 20, Labels: testLabels})
	targets := targetsOf(t, c)
	data := Data{Users: 100, Orders: 1000}
	setup(t, targets[0], data)

	// run makes ops operations of the workload's op one after the other on one
	// connection (closed loop, one worker) and returns the op's summary.
	run := func(t *testing.T, wl *Workload, op, query string, ops int64, measure bool) results.OpSummary {
		t.Helper()
		res, err := Run(context.Background(), Config{Targets: targets, Params: Params{Data: data, Query: query},
			Workloads: []Spec{{Workload: wl, Mix: map[string]int{op: 1}, Closed: true, MaxOps: ops, MeasureMemory: measure,
				Phases: []Phase{{Duration: 20 * time.Second, Concurrency: 1}}}}})
		if err != nil {
			t.Fatal(err)
		}
		o := opSummary(t, res.Summary, op)
		if o.Count != ops || o.ErrorsTotal != 0 || o.Returned == nil {
			t.Fatalf("%s: %d ok, %d errors %v, returned %+v; want %d ok, bytes returned", op, o.Count, o.ErrorsTotal, o.Other, o.Returned, ops)
		}
		t.Logf("%s %.40q: %d ops, returned p50 %.0f max %.0f total %d bytes", op, query, o.Count, o.Returned.P50, o.Returned.Max, o.ReturnedTotal)
		return o
	}
	// perOp is the exact mean: the total over the ops.
	perOp := func(o results.OpSummary) float64 { return float64(o.ReturnedTotal) / float64(o.Count) }
	// framing: the column count, the column's definition (name included), the
	// row's header and length prefix, and the closing packet.
	const framing = 200

	for _, tc := range []struct {
		name    string
		payload int
	}{{"100-kB-result", 100_000}, {"1-kB-result", 1_000}} {
		t.Run(tc.name, func(t *testing.T) {
			q := "SELECT REPEAT('x', " + strconv.Itoa(tc.payload) + ")"
			o := run(t, Analytics(), "sql", q, 5, false)
			lo, hi := float64(tc.payload), float64(tc.payload+framing)
			// Counted across ops, the fifth would be five payloads.
			if m := perOp(o); m < lo || m >= hi || o.Returned.Max >= hi*1.001 {
				t.Errorf("%s: %.0f bytes an op, max %.0f: want at least the %d-byte payload and under %d bytes of framing more", q, m, o.Returned.Max, tc.payload, framing)
			}
			if tc.payload < 2048 && o.Returned.P50 != o.Returned.Max {
				t.Errorf("the same query five times: p50 %.0f, max %.0f; want one figure", o.Returned.P50, o.Returned.Max)
			}
			if tc.payload >= 2048 {
				return
			}
			// Measured for memory, the op runs on a fresh connection that then
			// reads its PROCESSLIST row: the query's own figure, to the byte.
			m := run(t, Analytics(), "sql", q, 3, true)
			if m.Memory == nil || m.Returned.P50 != o.Returned.P50 || m.Returned.Max != o.Returned.Max || perOp(m) != perOp(o) {
				t.Errorf("measuring memory: returned %+v (memory %+v), want %+v as without", m.Returned, m.Memory, o.Returned)
			}
		})
	}

	t.Run("bytes-sent-are-not-returned", func(t *testing.T) {
		// A 100 kB statement with a 6-digit answer.
		o := run(t, Analytics(), "sql", "SELECT LENGTH('"+strings.Repeat("x", 100_000)+"') AS n", 3, false)
		if o.Returned.Max >= framing {
			t.Errorf("a 100 kB query answered with one number: %.0f bytes returned, want under %d", o.Returned.Max, framing)
		}
	})

	t.Run("point-read", func(t *testing.T) {
		// Prepared on the first read: the preparation's answer (the statement's
		// column and parameter definitions, some 350 bytes) is no read's result.
		o := run(t, OLTP(), "point-read", "", 30, false)
		if o.Returned.P50 < 50 || o.Returned.Max > 1000 || o.Returned.Max > o.Returned.P50+50 {
			t.Errorf("point read: p50 %.0f max %.0f bytes; want tens of bytes each (one row, metadata cached), the first like the others", o.Returned.P50, o.Returned.Max)
		}
	})
}
