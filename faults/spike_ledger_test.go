package faults

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
	"github.com/htapchaos/htapchaos/results"
)

// A spike is a writer for the durability audit only when its workload has a
// ledgered op, whatever the workload is called: an analytics spike hands no ledger
// (loadgen.Run returns an empty one for it) and picks no run tag at Inject; a
// workload of another name with a ledgered op hands its ledger and reports rows.
func TestSpikeLedgerFollowsLedgeredOps(t *testing.T) {
	bulk := loadgen.Batch()
	bulk.Name = "bulk" // not "batch": the trait decides, not the name
	for _, tc := range []struct {
		name   string
		wl     *loadgen.Workload
		writer bool
	}{
		{"analytics", loadgen.Analytics(), false},
		{"batch", loadgen.Batch(), true},
		{"a ledgered workload of another name", bulk, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.wl.Ledgered(); got != tc.writer {
				t.Fatalf("%s: Ledgered() = %v, want %v", tc.wl.Name, got, tc.writer)
			}
			f := newSpike("spike", tc.wl, Params{"rate": "1", "times": "1", "rows": "10"})
			if f.err != nil {
				t.Fatal(f.err)
			}
			l := results.NewLedger()
			if tc.writer {
				l.Ack(1, 42)
			}
			now := time.Now()
			f.runTag = 7
			f.started = now
			f.res = &loadgen.Result{Ledger: l, Acked: 1, Summary: &results.Summary{Start: now, End: now.Add(time.Second)}}
			got, lo, hi := f.Ledger()
			if (got != nil) != tc.writer {
				t.Errorf("Ledger() = %v (%d-%d), want a ledger: %v", got, lo, hi, tc.writer)
			}
			if wlo, whi := loadgen.NewIDs(7).Range(); tc.writer && (lo != wlo || hi != whi) {
				t.Errorf("Ledger() range %d-%d, want the run tag's %d-%d", lo, hi, wlo, whi)
			}
			_, rows := measurement(f.Measurements(), MeasureSpikeRows)
			if rows != tc.writer {
				t.Errorf("measurement %q reported: %v, want %v", MeasureSpikeRows, rows, tc.writer)
			}
		})
	}
}

// Inject asks the database for a run tag only for a spike that writes: an
// analytics spike whose control connection cannot reach a server still starts.
func TestSpikeInjectPicksNoRunTagForReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: any query fails at once
	for _, tc := range []struct {
		wl      *loadgen.Workload
		injects bool
	}{{loadgen.Analytics(), true}, {loadgen.Batch(), false}} {
		db, err := sql.Open("mysql", fmt.Sprintf("u:p@tcp(%s)/db?timeout=2s", addr))
		if err != nil {
			t.Fatal(err)
		}
		f := newSpike("spike", tc.wl, Params{"rate": "1", "times": "1"})
		f.ctl, f.labels = []*sql.DB{db}, []string{"n1"}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = f.Inject(ctx, &Env{})
		if (err == nil) != tc.injects {
			t.Errorf("%s: Inject: %v; want it to start: %v", tc.wl.Name, err, tc.injects)
		}
		if err == nil && f.runTag != 0 {
			t.Errorf("%s: run tag %d picked", tc.wl.Name, f.runTag)
		}
		if err := f.Cleanup(ctx, &Env{}); err != nil { // stops what Inject started, closes db
			t.Error(err)
		}
		cancel()
	}
}
