package results_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/htapchaos/htapchaos/results"
)

// A load generator takes one handle per key and reports every operation;
// the runner ticks every second and closes the recorder at the end. With an
// empty Dir nothing is written to disk.
func Example() {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rec, err := results.NewRecorder(results.Options{Start: start})
	if err != nil {
		panic(err)
	}
	h := rec.Handle(results.Key{Workload: "oltp", Op: "point-read", Node: 2})
	for i := 0; i < 100; i++ {
		intended := start.Add(time.Duration(i) * 10 * time.Millisecond)
		h.Record(intended, intended, intended.Add(2*time.Millisecond), nil)
	}
	at := start.Add(time.Second)
	h.Record(at, at, at.Add(5*time.Millisecond), &mysql.MySQLError{Number: 1047, Message: "WSREP has not yet prepared node for application use"})
	h.Record(at, at, at.Add(time.Millisecond), context.Canceled) // our own shutdown: not a failure
	h.Dropped(at)

	iv, _ := rec.Tick(start.Add(time.Second))
	fmt.Printf("interval: %d ops, %d errors, %d dropped, p99 %.1f ms\n", iv.Ops, iv.Errors, iv.Dropped, float64(iv.P99)/1e6)

	sum, _ := rec.Close(start.Add(2 * time.Second))
	op := sum.Ops[0]
	fmt.Printf("%s/%s/n%d: %d ok (%.0f/s), %d not-ready, %d canceled, p50 %.1f ms\n",
		op.Workload, op.Op, op.Node, op.Count, op.Rate, op.Errors[results.ClassNotReady], op.Canceled, op.Latency.P50)
	// Output:
	// interval: 100 ops, 1 errors, 1 dropped, p99 2.0 ms
	// oltp/point-read/n2: 100 ok (50/s), 1 not-ready, 1 canceled, p50 2.0 ms
}

func ExampleClassify() {
	for _, err := range []error{
		fmt.Errorf("commit: %w", &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}),
		context.DeadlineExceeded,
		mysql.ErrInvalidConn,
		&mysql.MySQLError{Number: 1146, Message: "Table 'db.t' doesn't exist"},
	} {
		info := results.Classify(err)
		fmt.Println(info.Class, info.Number)
	}
	// Output:
	// conflict 1213
	// timeout 0
	// connection 0
	// other 1146
}
