package results

import (
	"github.com/go-sql-driver/mysql"
	"testing"
	"time"
)

// BenchmarkRecord: one successful Record from one goroutine (target: under
// 100 ns and 0 allocations).
func BenchmarkRecord(b *testing.B) {
	r, err := NewRecorder(Options{Start: t0})
	if err != nil {
		b.Fatal(err)
	}
	h := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	t0 := time.Now() // with a monotonic reading, as the runner's clock gives
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		intended := t0.Add(time.Duration(i) * time.Microsecond)
		started := intended.Add(time.Duration(i%50) * time.Microsecond)
		h.Record(intended, started, started.Add(time.Duration(200+i%5000)*time.Microsecond), nil)
	}
}

// BenchmarkRecordParallel: successful Records from GOMAXPROCS goroutines on
// the same Key, as the workers of one operation share its Handle.
func BenchmarkRecordParallel(b *testing.B) {
	r, err := NewRecorder(Options{Start: t0})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		h := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
		for i := 0; pb.Next(); i++ {
			intended := t0.Add(time.Duration(i) * time.Microsecond)
			started := intended.Add(time.Duration(i%50) * time.Microsecond)
			h.Record(intended, started, started.Add(time.Duration(200+i%5000)*time.Microsecond), nil)
		}
	})
}

// BenchmarkRecordError: the error path (classification included); it may
// allocate.
func BenchmarkRecordError(b *testing.B) {
	r, err := NewRecorder(Options{Start: t0})
	if err != nil {
		b.Fatal(err)
	}
	h := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	e := &mysqlErr1213
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(i) * time.Microsecond)
		h.Record(at, at, at.Add(time.Millisecond), e)
	}
}

// BenchmarkTick: one Tick over 30 keys holding 1000 latencies each (0.1 to
// 37 ms), in memory and with files.
func BenchmarkTick(b *testing.B) {
	for _, files := range []bool{false, true} {
		name := "memory"
		if files {
			name = "files"
		}
		b.Run(name, func(b *testing.B) {
			o := Options{Start: t0}
			if files {
				o.Dir = b.TempDir()
			}
			r, err := NewRecorder(o)
			if err != nil {
				b.Fatal(err)
			}
			var hs []*Handle
			for _, op := range []string{"point-read", "insert", "update", "scan", "delete"} {
				for node := 1; node <= 3; node++ {
					hs = append(hs, r.Handle(Key{Workload: "oltp", Op: op, Node: node}), r.Handle(Key{Workload: "olap", Op: op, Node: node}))
				}
			}
			b.ReportAllocs()
			now := t0
			for b.Loop() {
				b.StopTimer()
				for _, h := range hs {
					for i := 0; i < 1000; i++ {
						at := now.Add(time.Duration(i) * time.Microsecond)
						h.Record(at, at, at.Add(time.Duration(100+i*37)*time.Microsecond), nil)
					}
				}
				now = now.Add(time.Second)
				b.StartTimer()
				if _, err := r.Tick(now); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if _, err := r.Close(now); err != nil {
				b.Fatal(err)
			}
		})
	}
}

var mysqlErr1213 = mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}
