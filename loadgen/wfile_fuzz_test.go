package loadgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/internal/usage"
)

// FuzzParseWorkloadFile: whatever a user writes, ParseWorkloadFile neither
// panics nor refuses it with anything but a usage error naming the file, and
// what it accepts is a workload with ops whose weights can form a mix.
func FuzzParseWorkloadFile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "workloads", "*.yaml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"", "name: x", "ops: [{name: a, sql: 'SELECT ?', args: [{zipf: {min: 1, max: 0}}]}]",
		"tables: {t: {rows: -1}}", "name: [", "\t",
		// At the bounds: a mutated number past one of them must be refused.
		"name: b\ntables:\n  - name: p\n    rows: 10000000000\n    columns: {id: {sequence: 4611686008427387905}}\n  - name: c\n    rows: 3\n    columns: {id: {sequence: -4611686018427387904}, f: {fk: {table: p, s: 100}}, z: {zipf: {min: 1, max: 9, s: 100}}, w: {timestamp: 876000h}}\nops:\n  - name: a\n    sql: SELECT ?\n    args: [{zipf: {min: -4000000000000000000, max: 4000000000000000000, s: 1.0000001}}]\n    weight: 1000000\n  - name: b\n    sql: SELECT ?\n    args: [{sequence: 4611686018427387904}]\n    weight: 1000000\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A parser or generator that loops forever hangs the fuzzer without a
		// word: fail with the input instead.
		watch := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("parsing %q and drawing from it took over 5s", data)) })
		defer watch.Stop()
		wf, err := parseWFile("fuzz.yaml", data)
		if err != nil {
			var ue *usage.Error
			if !errors.As(err, &ue) || !strings.HasPrefix(ue.Field, "fuzz.yaml") {
				t.Fatalf("refused with %T %q: want a usage error naming fuzz.yaml", err, err)
			}
			return
		}
		wl := wf.workload()
		if wl.Name == "" || len(wl.Ops) == 0 {
			t.Fatalf("accepted a workload without a name or ops: %+v", wl)
		}
		m, err := NewMix(wl, nil)
		if err != nil {
			t.Fatalf("accepted a workload whose default mix fails: %v", err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range 8 {
			m.Pick(r)
		}
		// What a run draws: every seeded column at the table's first and last
		// row (and the INSERT of the last), every op argument.
		now := time.Now()
		for _, tb := range wf.tables {
			for _, c := range tb.cols {
				c.g.value(r, 0, now)
				c.g.value(r, tb.rows-1, now)
			}
			var b strings.Builder
			var args []any
			last := tb.startID + tb.rows - 1
			tb.rowsFunc(now)(&b, &args, last, last)
			if len(args) != len(tb.cols) || args[tb.key] != last {
				t.Fatalf("table %s: the last row's values %v, want %d with key %d", tb.name, args, len(tb.cols), last)
			}
		}
		for _, op := range wf.ops {
			for _, g := range op.args {
				if g != nil && g.kind != genNextID {
					g.value(r, -1, now)
				}
			}
		}
	})
}
