package loadgen

import (
	"errors"
	"fmt"
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
		"tables: {t: {rows: -1}}", "name: [", "\t"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A parser that loops forever hangs the fuzzer without a word: fail
		// with the input instead.
		watch := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("parsing %q took over 5s", data)) })
		wl, err := ParseWorkloadFile("fuzz.yaml", data)
		watch.Stop()
		if err != nil {
			var ue *usage.Error
			if !errors.As(err, &ue) || !strings.HasPrefix(ue.Field, "fuzz.yaml") {
				t.Fatalf("refused with %T %q: want a usage error naming fuzz.yaml", err, err)
			}
			return
		}
		if wl.Name == "" || len(wl.Ops) == 0 {
			t.Fatalf("accepted a workload without a name or ops: %+v", wl)
		}
		if _, err := NewMix(wl, nil); err != nil {
			t.Fatalf("accepted a workload whose default mix fails: %v", err)
		}
	})
}
