package loadgen

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/internal/usage"
)

func mustParse(t *testing.T, src string) *wfile {
	t.Helper()
	wf, err := parseWFile("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

// draws makes n values of g: seeded rows 0..n-1, or n op arguments.
func draws(t *testing.T, g *gen, n int, seeding bool) []any {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	out := make([]any, n)
	for i := range out {
		row := int64(-1)
		if seeding {
			row = int64(i)
		}
		out[i] = g.value(r, row, now)
	}
	return out
}

func TestWorkloadFileGenerators(t *testing.T) {
	const n = 20000
	src := `name: gens
tables:
  - name: parent
    rows: 50
    columns:
      id: {sequence: 100}
  - name: child
    rows: 10
    columns:
      id: {sequence: 1}
      uniform: {uniform: {min: 5, max: 9}}
      zipf: {zipf: {min: 1, max: 1000, s: 1.2}}
      fk: {fk: parent}
      fkzipf: {fk: {table: parent, s: 2}}
      str: {string: {min: 3, max: 6}}
      fixed: {string: 10}
      ts: {timestamp: 1h}
      choice: {choice: [a, b, c], null: 0.3}
      money: {uniform: {min: 1, max: 2, decimals: 2}}
ops:
  - name: seq
    sql: SELECT ?
    args: [{sequence: {start: 7}}]
`
	wf := mustParse(t, src)
	gens := map[string]*gen{}
	for _, c := range wf.tables[1].cols {
		gens[c.name] = c.g
	}
	count := func(vals []any) map[any]int {
		m := map[any]int{}
		for _, v := range vals {
			m[v]++
		}
		return m
	}
	within := func(t *testing.T, m map[any]int, lo, hi int64) {
		t.Helper()
		for v := range m {
			if x := v.(int64); x < lo || x > hi {
				t.Fatalf("value %d outside %d..%d", x, lo, hi)
			}
		}
	}
	t.Run("sequence", func(t *testing.T) {
		vals := draws(t, wf.tables[0].cols[0].g, 50, true)
		if vals[0] != int64(100) || vals[49] != int64(149) {
			t.Errorf("seeded sequence %v..%v, want 100..149", vals[0], vals[49])
		}
		op := draws(t, wf.ops[0].args[0], 3, false)
		if !slices.Equal(op, []any{int64(7), int64(8), int64(9)}) {
			t.Errorf("an op's sequence: %v, want 7 8 9", op)
		}
	})
	t.Run("uniform", func(t *testing.T) {
		m := count(draws(t, gens["uniform"], n, false))
		for v := int64(5); v <= 9; v++ {
			if f := float64(m[v]) / n; math.Abs(f-0.2) > 0.02 {
				t.Errorf("value %d: %.3f of draws, want 0.2", v, f)
			}
		}
		within(t, m, 5, 9)
	})
	t.Run("zipf", func(t *testing.T) {
		m := count(draws(t, gens["zipf"], n, false))
		within(t, m, 1, 1000)
		// P(k) is proportional to k^-1.2 over 1..1000: P(1) = 1/sum = 0.23,
		// P(1)/P(10) = 10^1.2 = 15.8.
		if f := float64(m[int64(1)]) / n; f < 0.19 || f > 0.27 {
			t.Errorf("the hottest value drew %.3f, want about 0.23", f)
		}
		if r := float64(m[int64(1)]) / float64(max(m[int64(10)], 1)); r < 10 || r > 25 {
			t.Errorf("P(1)/P(10) = %.1f, want about 15.8 (zipf s=1.2)", r)
		}
	})
	t.Run("fk", func(t *testing.T) {
		m := count(draws(t, gens["fk"], n, true))
		within(t, m, 100, 149) // the parent's seeded ids
		if len(m) != 50 {
			t.Errorf("fk drew %d distinct parents, want all 50", len(m))
		}
		z := count(draws(t, gens["fkzipf"], n, true))
		if f := float64(z[int64(100)]) / n; f < 0.5 {
			t.Errorf("fk with s=2: the first parent drew %.2f, want most (about 0.6)", f)
		}
	})
	t.Run("string", func(t *testing.T) {
		lens := map[int]int{}
		for _, v := range draws(t, gens["str"], n, false) {
			s := v.(string)
			lens[len(s)]++
			if strings.Trim(s, alnum) != "" {
				t.Fatalf("%q: not letters and digits", s)
			}
		}
		if len(lens) != 4 || lens[2] > 0 || lens[7] > 0 {
			t.Errorf("lengths %v, want 3..6", lens)
		}
		if s := draws(t, gens["fixed"], 1, false)[0].(string); len(s) != 10 {
			t.Errorf("%q: want 10 characters", s)
		}
	})
	t.Run("timestamp", func(t *testing.T) {
		before := time.Now()
		var oldest time.Time = before
		for _, v := range draws(t, gens["ts"], n, false) {
			ts := v.(time.Time)
			if ts.After(time.Now()) || ts.Before(before.Add(-time.Hour)) {
				t.Fatalf("%v outside the last hour", ts)
			}
			if ts.Before(oldest) {
				oldest = ts
			}
		}
		if before.Sub(oldest) < 55*time.Minute {
			t.Errorf("oldest %v ago: not spread over the hour", before.Sub(oldest))
		}
	})
	t.Run("choice-with-nulls", func(t *testing.T) {
		m := count(draws(t, gens["choice"], n, false))
		if f := float64(m[nil]) / n; math.Abs(f-0.3) > 0.02 {
			t.Errorf("NULL fraction %.3f, want 0.3", f)
		}
		for _, c := range []string{"a", "b", "c"} {
			if f := float64(m[c]) / n; math.Abs(f-0.7/3) > 0.02 {
				t.Errorf("%s: %.3f, want %.3f", c, f, 0.7/3)
			}
		}
		if len(m) != 4 {
			t.Errorf("values %v: want a, b, c and NULL", m)
		}
	})
	t.Run("decimals", func(t *testing.T) {
		for _, v := range draws(t, gens["money"], 2000, false) {
			s := v.(string)
			if len(s) != 4 || s < "1.00" || s > "2.00" || s[1] != '.' {
				t.Fatalf("%q: want 1.00..2.00", s)
			}
		}
		if got := decimalString(-5, 2); got != "-0.05" {
			t.Errorf("decimalString(-5, 2) = %q", got)
		}
	})
}

// Every malformed file is refused with the file and line of the fault.
func TestWorkloadFileMalformed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.sql"), []byte("-- two statements\nCREATE TABLE IF NOT EXISTS a (id INT);\n\nCREATE TABLE b (id INT);\n"), 0o644)
	ok := "ops:\n  - name: r\n    sql: SELECT 1\n"
	cases := []struct{ name, src, want string }{
		{"not yaml", "name: [x\n", "w.yaml:1: did not find expected"},
		{"not a mapping", "- a\n", "w.yaml:1: want a mapping"},
		{"unknown top key", "name: x\nfoo: 1\n" + ok, `w.yaml:2: workload file: unknown key "foo"`},
		{"no name", ok, "w.yaml:1: name: missing"},
		{"bad name", "name: Shop Floor\n" + ok, `w.yaml:1: name: "Shop Floor"`},
		{"bad class", "name: x\nclass: olap\n" + ok, `w.yaml:2: class: "olap": want oltp, analytics or batch`},
		{"no ops", "name: x\n", "w.yaml:1: ops: missing"},
		{"empty ops", "name: x\nops: []\n", "w.yaml:2: ops: want a list"},
		{"create without if not exists", "name: x\nschema: |\n  CREATE TABLE IF NOT EXISTS a (id INT);\n  CREATE TABLE b (id INT);\n" + ok, "w.yaml:4: CREATE TABLE without IF NOT EXISTS"},
		{"sql file line", "name: x\nschema: {file: bad.sql}\n" + ok, "bad.sql:4: CREATE TABLE without IF NOT EXISTS"},
		{"missing sql file", "name: x\nschema: {file: nope.sql}\n" + ok, "w.yaml:2: schema.file: open"},
		{"sql and file", "name: x\nschema:\n  sql: SELECT 1\n  file: bad.sql\n" + ok, "w.yaml:4: schema: give sql or file, not both"},
		{"unknown dialect", "name: x\nschema:\n  oracle: {sql: SELECT 1}\n" + ok, `w.yaml:3: schema: unknown key "oracle"`},
		{"dialect without sql", "name: x\nschema:\n  singlestore: {}\n" + ok, "w.yaml:3: schema.singlestore: give sql or file"},
		{"table without rows", "name: x\ntables:\n  - name: t\n    columns: {id: {sequence: 1}}\n" + ok, "w.yaml:3: table t: rows missing"},
		{"rows not a number", "name: x\ntables:\n  - name: t\n    rows: many\n    columns: {id: {sequence: 1}}\n" + ok, `w.yaml:4: rows: "many" is not a whole number`},
		{"zero rows", "name: x\ntables:\n  - name: t\n    rows: 0\n    columns: {id: {sequence: 1}}\n" + ok, "w.yaml:4: table t: rows 0: want 1 to 10000000000"},
		{"too many rows", "name: x\ntables:\n  - name: t\n    rows: 100000000000\n    columns: {id: {sequence: 1}}\n" + ok, "w.yaml:4: table t: rows 100000000000: want 1 to 10000000000"},
		{"sequence start near the top", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns: {id: {sequence: 9223372036854775800}}\n" + ok, "w.yaml:5: t.id: sequence start 9223372036854775800: want -2^62..2^62"},
		{"sequence keys past 2^62", "name: x\ntables:\n  - name: t\n    rows: 10\n    columns: {id: {sequence: 4611686018427387900}}\n" + ok, "w.yaml:5: table t: sequence start 4611686018427387900 with 10 rows"},
		{"op sequence start near the top", "name: x\nops:\n  - name: r\n    sql: SELECT ?\n    args: [{sequence: -9223372036854775808}]\n", "w.yaml:5: op r: argument 1: sequence start -9223372036854775808"},
		{"zipf s infinite", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {zipf: {min: 1, max: 9, s: .inf}}\n" + ok, "w.yaml:7: t.a: s +Inf: the zipf exponent must be above 1 and at most 100"},
		{"zipf s not a number", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {zipf: {min: 1, max: 9, s: .nan}}\n" + ok, "w.yaml:7: t.a: s NaN: the zipf exponent"},
		{"zipf s huge", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {zipf: {min: 1, max: 9, s: 1e300}}\n" + ok, "w.yaml:7: t.a: s 1e+300: the zipf exponent"},
		{"fk s infinite", "name: x\ntables:\n  - name: p\n    rows: 5\n    columns: {id: {sequence: 1}}\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {fk: {table: p, s: .inf}}\n" + ok, "w.yaml:10: t.a: fk s +Inf: the zipf exponent must be above 1 and at most 100"},
		{"window past 100 years", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {timestamp: 2562047h47m16.854775807s}\n" + ok, "w.yaml:7: t.a: timestamp window 2562047h47m16.854775807s: want at most 100 years"},
		{"weight too big", "name: x\nops:\n  - name: r\n    sql: SELECT 1\n    weight: 9223372036854775807\n  - name: s\n    sql: SELECT 2\n    weight: 9223372036854775807\n", "w.yaml:5: op r: weight 9223372036854775807: want 0 (only when asked for by a mix) to 1000000"},
		{"create index", "name: x\nschema: |\n  CREATE TABLE IF NOT EXISTS a (id INT);\n  CREATE INDEX ai ON a (id);\n" + ok, `w.yaml:4: "CREATE INDEX ai ON ...": the schema runs again on every run`},
		{"alter table", "name: x\nschema: |\n  CREATE TABLE IF NOT EXISTS a (id INT);\n  -- add a column\n  ALTER TABLE a ADD b INT;\n" + ok, `w.yaml:4: "ALTER TABLE a ADD ...": the schema runs again`},
		{"plain insert", "name: x\nschema:\n  mariadb: {sql: 'INSERT INTO a VALUES (1)'}\n" + ok, `w.yaml:3: "INSERT INTO a VALUES ...": the schema runs again on every run`},
		{"no key column", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      a: {uniform: {min: 1, max: 2}}\n" + ok, "w.yaml:6: table t: no sequence column"},
		{"two key columns", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      a: {sequence: 1}\n      b: {sequence: 1}\n" + ok, "w.yaml:7: table t: a second sequence column (b)"},
		{"unknown generator", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {gauss: 3}\n" + ok, `w.yaml:7: t.a: unknown key "gauss"`},
		{"two kinds", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {string: 3, choice: [x]}\n" + ok, "w.yaml:7: t.a: one generator kind per value"},
		{"null only", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {null: 0.5}\n" + ok, "w.yaml:7: t.a: no generator kind"},
		{"max below min", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {uniform: {min: 9, max: 1}}\n" + ok, "w.yaml:7: t.a: max 1 is below min 9"},
		{"range too wide", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {uniform: {min: -9000000000000000000, max: 9000000000000000000}}\n" + ok, "w.yaml:7: t.a: -9000000000000000000..9000000000000000000: too wide a range"},
		{"decimals range too wide", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {uniform: {min: 0, max: 100000000000000000, decimals: 2}}\n" + ok, "w.yaml:7: t.a: 0..100000000000000000: too wide a range"},
		{"uniform without max", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {uniform: {min: 9}}\n" + ok, "w.yaml:7: t.a: uniform: give min and max"},
		{"zipf s too low", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {zipf: {min: 1, max: 9, s: 0.8}}\n" + ok, "w.yaml:7: t.a: s 0.8: the zipf exponent must be above 1"},
		{"null out of range", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {string: 3, null: 1.5}\n" + ok, "w.yaml:7: t.a: null 1.5: want a fraction in [0, 1)"},
		{"fk to an unknown table", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {fk: nope}\n" + ok, `w.yaml:7: t.a: fk "nope": no table of that name is seeded before it`},
		{"fk into itself", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {fk: t}\n" + ok, `w.yaml:7: t.a: fk "t"`},
		{"bad window", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {timestamp: soon}\n" + ok, `w.yaml:7: t.a: timestamp window: "soon" is not a positive duration`},
		{"empty choice", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {choice: []}\n" + ok, "w.yaml:7: t.a: choice: want a list of values"},
		{"string without length", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: {string: {min: 3}}\n" + ok, "w.yaml:7: t.a: string: give length, or min and max"},
		{"next-id in seeding", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a: next-id\n" + ok, "w.yaml:7: t.a: next-id is for an op's arguments"},
		{"bad column name", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns:\n      id: {sequence: 1}\n      a b: {string: 3}\n" + ok, `w.yaml:7: column "a b"`},
		{"table twice", "name: x\ntables:\n  - name: t\n    rows: 5\n    columns: {id: {sequence: 1}}\n  - name: t\n    rows: 5\n    columns: {id: {sequence: 1}}\n" + ok, "w.yaml:6: table t: seeded twice"},
		{"unknown op key", "name: x\nops:\n  - name: r\n    sql: SELECT 1\n    retries: 3\n", `w.yaml:5: op: unknown key "retries"`},
		{"op without sql", "name: x\nops:\n  - name: r\n", "w.yaml:3: op r: sql missing"},
		{"op twice", "name: x\nops:\n  - name: r\n    sql: SELECT 1\n  - name: r\n    sql: SELECT 2\n", "w.yaml:5: op r: given twice"},
		{"two statements", "name: x\nops:\n  - name: r\n    sql: SELECT 1; SELECT 2\n", "w.yaml:4: op r: want exactly one SQL statement"},
		{"placeholders and args", "name: x\nops:\n  - name: r\n    sql: SELECT ? + ?\n    args: [{uniform: {min: 1, max: 2}}]\n", "w.yaml:5: op r: 2 ? placeholders but 1 args"},
		{"placeholders without args", "name: x\nops:\n  - name: r\n    sql: SELECT ?\n", "w.yaml:4: op r: 1 ? placeholders but 0 args"},
		{"args not a list", "name: x\nops:\n  - name: r\n    sql: SELECT ?\n    args: {uniform: {min: 1, max: 2}}\n", "w.yaml:5: op r: args: want a list"},
		{"bad arg word", "name: x\nops:\n  - name: r\n    sql: SELECT ?\n    args: [random]\n", `w.yaml:5: op r: argument 1: "random": want a generator`},
		{"write declared a read", "name: x\nops:\n  - name: w\n    sql: DELETE FROM t\n    writes: false\n", "w.yaml:5: op w: writes: false, but the statement is not a read"},
		{"writes not a bool", "name: x\nops:\n  - name: w\n    sql: SELECT 1\n    writes: maybe\n", `w.yaml:5: writes: "maybe" is not true or false`},
		{"negative weight", "name: x\nops:\n  - name: r\n    sql: SELECT 1\n    weight: -1\n", "w.yaml:5: op r: weight -1"},
		{"no weight", "name: x\nops:\n  - name: r\n    sql: SELECT 1\n    weight: 0\n", "w.yaml:3: ops: no operation has a weight"},
		{"bad timeout", "name: x\nops:\n  - name: r\n    sql: SELECT 1\n    timeout: -2s\n", `w.yaml:5: timeout: "-2s" is not a positive duration`},
		{"negative rows", "name: x\nops:\n  - name: r\n    sql: SELECT 1\n    rows: -1\n", "w.yaml:5: op r: rows -1"},
		{"ledger without next-id", "name: x\nops:\n  - name: i\n    sql: INSERT INTO t (id) VALUES (?)\n    args: [{sequence: 1}]\n    ledger: {table: t, column: id}\n", "w.yaml:6: op i: ledger: one argument must be next-id"},
		{"ledger on a read", "name: x\nops:\n  - name: i\n    sql: SELECT ?\n    args: [next-id]\n    ledger: {table: t, column: id}\n", "w.yaml:6: op i: a ledgered op inserts"},
		{"ledger without column", "name: x\nops:\n  - name: i\n    sql: INSERT INTO t (id) VALUES (?)\n    args: [next-id]\n    ledger: {table: t}\n", "w.yaml:6: op i: ledger: give table and column"},
		{"two next-ids", "name: x\nops:\n  - name: i\n    sql: INSERT INTO t (id, b) VALUES (?, ?)\n    args: [next-id, next-id]\n    ledger: {table: t, column: id}\n", "w.yaml:5: op i: next-id twice"},
		{"two audited tables", "name: x\nops:\n  - name: i\n    sql: INSERT INTO t (id) VALUES (?)\n    args: [next-id]\n    ledger: {table: t, column: id}\n  - name: j\n    sql: INSERT INTO u (id) VALUES (?)\n    args: [next-id]\n    ledger: {table: u, column: id}\n",
			"w.yaml:10: op j: ledger u.id: this workload's audited table is already t.id"},
		{"ledgered rows", "name: x\nops:\n  - name: i\n    sql: INSERT INTO t (id) VALUES (?)\n    args: [next-id]\n    rows: 2\n    ledger: {table: t, column: id}\n", "w.yaml:6: op i: a ledgered insert writes one row per key"},
		{"from without column", "name: x\nops:\n  - name: r\n    sql: SELECT ?\n    args: [{from: {table: t}}]\n", "w.yaml:5: op r: argument 1: from: give table and column"},
		{"key given twice", "name: x\nname: y\n" + ok, "w.yaml:2: workload file: name given twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWorkloadFile(filepath.Join(dir, "w.yaml"), []byte(tc.src))
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q; want %q", msg, tc.want)
			}
			var ue *usage.Error
			if !errors.As(err, &ue) {
				t.Errorf("%T is not a usage error", err)
			}
		})
	}
	// All errors at once.
	_, err := ParseWorkloadFile("w.yaml", []byte("name: X\nclass: y\nops:\n  - name: r\n    sql: SELECT ?\n"))
	if n := strings.Count(err.Error(), "w.yaml:"); n != 3 {
		t.Errorf("%d errors reported, want 3 at once: %v", n, err)
	}
}

// Every shipped example parses, with the traits its ops declare.
func TestWorkloadFileExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/workloads/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		wl, err := LoadWorkloadFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, err := NewMix(wl, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		NewRegistry().Register(wl) // panics on a ledgered op that does not change data
	}
	wl, err := LoadWorkloadFile("../examples/workloads/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if wl.Audit == nil || *wl.Audit != (AuditTable{Table: "purchases", Column: "id"}) || !wl.Ledgered() || wl.Setup == nil {
		t.Errorf("shop: audit %+v, ledgered %v", wl.Audit, wl.Ledgered())
	}
	for name, want := range map[string][2]bool{"customer": {false, false}, "purchase": {true, true}, "ship": {true, false}, "customer-purchases": {false, false}} {
		op, ok := wl.Op(name)
		if !ok || op.ChangesData != want[0] || op.Ledgered != want[1] {
			t.Errorf("op %s: %+v, want changes data %v, ledgered %v", name, op, want[0], want[1])
		}
	}
	if wl.AuditTarget() != (AuditTable{"purchases", "id"}) || OLTP().AuditTarget() != DefaultAudit {
		t.Error("AuditTarget")
	}
}

// Schema statements per dialect, split where SQL ends them, and named by line.
func TestWorkloadFileSchema(t *testing.T) {
	src := "name: x\nschema:\n  sql: |\n    CREATE TABLE IF NOT EXISTS a (s VARCHAR(3) DEFAULT ';');\n    -- a comment; with a semicolon\n    CREATE TABLE IF NOT EXISTS b (id INT);\n  singlestore: CREATE ROWSTORE TABLE IF NOT EXISTS a (id INT)\nops:\n  - name: r\n    sql: SELECT 1\n"
	wf, err := parseWFile("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	// What a rerun leaves as it was is accepted.
	rerun := "name: x\nschema: |\n  CREATE TABLE IF NOT EXISTS a (id INT);\n  CREATE UNIQUE INDEX IF NOT EXISTS ai ON a (id);\n  create or replace view v as select 1;\n  CREATE VIEW IF NOT EXISTS w AS SELECT 1;\n  INSERT IGNORE INTO a VALUES (1);\n  REPLACE INTO a VALUES (2);\n  SET @x = 1;\n  DROP TABLE IF EXISTS old;\n  /* a note */ /* and another */ INSERT IGNORE INTO a VALUES (3);\nops:\n  - name: r\n    sql: SELECT 1\n"
	if _, err := parseWFile("x.yaml", []byte(rerun)); err != nil {
		t.Errorf("statements a rerun repeats harmlessly refused: %v", err)
	}
	got := wf.schemaFor(MariaDB)
	if len(got) != 2 || got[0].at != "x.yaml:4" || got[1].at != "x.yaml:5" || !strings.HasSuffix(got[1].sql, "b (id INT)") {
		t.Errorf("mariadb: %+v", got)
	}
	if got := wf.schemaFor(SingleStore); len(got) != 1 || !strings.Contains(got[0].sql, "ROWSTORE") {
		t.Errorf("singlestore: %+v", got)
	}
	if got := wf.schemaFor(MySQL); len(got) != 2 {
		t.Errorf("mysql: %+v", got)
	}
}

func TestDefaultRoute(t *testing.T) {
	cases := []struct {
		roles []string
		want  []int
		why   string
	}{
		{[]string{"galera", "galera", "galera"}, []int{1, 2, 3}, ""},
		{[]string{"single"}, []int{1}, ""},
		{[]string{"primary", "replica", "replica"}, []int{1}, "primary-replica: sending everything to the primary (node 1)"},
		{[]string{"aggregator", "aggregator", "leaf", "leaf"}, []int{1, 2}, "sharded: sending everything to the aggregators (nodes 1,2)"},
	}
	for _, tc := range cases {
		r, why := DefaultRoute(tc.roles)
		if !slices.Equal(r.Nodes, tc.want) || !strings.HasPrefix(why, tc.why) || (tc.why == "") != (why == "") {
			t.Errorf("%v: %v %q, want %v %q", tc.roles, r.Nodes, why, tc.want, tc.why)
		}
	}
}

// A seed reports rows done, rows/s and an ETA once it runs long enough.
func TestSeedProgress(t *testing.T) {
	var sent atomic.Int64
	sent.Store(250)
	lines := make(chan string, 10)
	stop := make(chan struct{})
	go seedProgress(context.Background(), stop, func(f string, a ...any) { lines <- fmt.Sprintf(f, a...) }, "t", 1000, &sent, 20*time.Millisecond, time.Hour)
	first := <-lines
	close(stop)
	if !strings.HasPrefix(first, "seed t: 250/1000 rows (25%), ") || !strings.Contains(first, " rows/s, ETA ") {
		t.Errorf("progress line %q", first)
	}
}

// seedServer is a database/sql connector for seedRange without a server: the
// count query finds no row, and each INSERT takes a little while.
type seedServer struct{ execs atomic.Int64 }

func (s *seedServer) Connect(context.Context) (driver.Conn, error) { return &seedConn{s}, nil }
func (s *seedServer) Driver() driver.Driver                        { return nil }

type seedConn struct{ s *seedServer }

func (c *seedConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (c *seedConn) Close() error                        { return nil }
func (c *seedConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }
func (c *seedConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return &seedRows{}, nil
}
func (c *seedConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	c.s.execs.Add(1)
	time.Sleep(2 * time.Millisecond)
	return driver.RowsAffected(1), nil
}

type seedRows struct{ done bool }

func (r *seedRows) Columns() []string { return []string{"n", "top"} }
func (r *seedRows) Close() error      { return nil }
func (r *seedRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0], dest[1] = int64(0), nil
	return nil
}

// seedRange's progress reports end before it returns: a report after (t.Logf
// after its test ended) panics.
func TestSeedProgressEndsWithTheSeed(t *testing.T) {
	defer func(a, e time.Duration) { progressAfter, progressEvery = a, e }(progressAfter, progressEvery)
	progressAfter, progressEvery = time.Millisecond, time.Millisecond
	var returned atomic.Bool
	var reports, late atomic.Int64
	logf := func(string, ...any) {
		reports.Add(1)
		if returned.Load() {
			late.Add(1)
		}
		time.Sleep(20 * time.Millisecond) // a slow log: still in it when the seed ends
		if returned.Load() {
			late.Add(1)
		}
	}
	srv := &seedServer{}
	db := sql.OpenDB(srv)
	defer db.Close()
	rows := func(b *strings.Builder, _ *[]any, lo, hi int64) { fmt.Fprintf(b, "INSERT %d-%d", lo, hi) }
	n, err := seedRange(context.Background(), db, Data{Workers: 1, BatchRows: 1, Logf: logf}, "t", "id", 1, 30, rows)
	returned.Store(true)
	if err != nil || n != 30 || srv.execs.Load() != 30 {
		t.Fatalf("seeded %d rows in %d inserts (%v), want 30 in 30", n, srv.execs.Load(), err)
	}
	time.Sleep(60 * time.Millisecond)
	if reports.Load() == 0 {
		t.Fatal("no progress report: the test proves nothing")
	}
	if late.Load() > 0 {
		t.Errorf("%d progress reports ran after seedRange returned", late.Load())
	}
}

// Two ops whose weights add up past the largest int make no mix (Pick would
// panic on a wrapped total).
func TestMixRefusesAnOverflowingTotal(t *testing.T) {
	op := func(ctx context.Context, q Querier, w *Worker) error { return nil }
	wl := &Workload{Name: "big", Ops: []Op{{Name: "a", Weight: math.MaxInt, Run: op}, {Name: "b", Weight: math.MaxInt, Run: op}}}
	for _, weights := range []map[string]int{nil, {"a": math.MaxInt - 1, "b": 2}} {
		_, err := NewMix(wl, weights)
		var ue *usage.Error
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "add up to more than") {
			t.Errorf("weights %v: %v, want a usage error on the total", weights, err)
		}
	}
	if m, err := NewMix(wl, map[string]int{"a": math.MaxInt - 2, "b": 2}); err != nil {
		t.Errorf("a total of MaxInt refused: %v", err)
	} else if m.Pick(rand.New(rand.NewPCG(1, 2))) == nil {
		t.Error("no pick")
	}
}

// blockingQuerier's first query waits until release closes; it writes down the
// queries it is sent.
type blockingQuerier struct {
	entered, release chan struct{}
	mu               sync.Mutex
	queries          []string
}

func (q *blockingQuerier) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return nil, errors.New("no exec")
}

func (q *blockingQuerier) QueryContext(ctx context.Context, query string, _ ...any) (*sql.Rows, error) {
	q.mu.Lock()
	q.queries = append(q.queries, query)
	first := len(q.queries) == 1
	q.mu.Unlock()
	if first {
		close(q.entered)
		<-q.release
	}
	return nil, errors.New("no server")
}

// A worker waiting for another's sample (the run skipped Setup) waits no longer
// than its own context; names are quoted with their backticks doubled.
func TestWorkloadFileSampleWaitsWithinItsContext(t *testing.T) {
	s := &sample{table: "t", column: "a`b"}
	q := &blockingQuerier{entered: make(chan struct{}), release: make(chan struct{})}
	first := make(chan error, 1)
	go func() { first <- s.load(context.Background(), q, false) }()
	<-q.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	second := make(chan error, 1)
	go func() { second <- s.load(ctx, q, false) }()
	select {
	case err := <-second:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the waiting worker: %v, want its deadline", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("the waiting worker still waits 2s after its 50ms deadline")
	}
	close(q.release)
	if err := <-first; err == nil {
		t.Error("the first load succeeded without a server")
	}
	// The first query is the size estimate; the sample's own follows it.
	want := "SELECT `a``b` FROM `t` WHERE `a``b` IS NOT NULL"
	if len(q.queries) != 2 || !strings.HasPrefix(q.queries[1], want) {
		t.Errorf("queries %q: want the second to begin %q", q.queries, want)
	}
	if got := quoteIdent("x` ; DROP TABLE y; --"); got != "`x`` ; DROP TABLE y; --`" {
		t.Errorf("quoteIdent: %s", got)
	}
}

// Register refuses a workload whose audited table has no name (a library
// caller's mistake); any other name is quoted where it meets SQL.
func TestWorkloadFileAuditNames(t *testing.T) {
	for _, a := range []AuditTable{{"", "id"}, {"t", ""}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("audit %+v registered", a)
				}
			}()
			NewRegistry().Register(&Workload{Name: "w", Audit: &a})
		}()
	}
	NewRegistry().Register(&Workload{Name: "w", Audit: &AuditTable{"t`x", "id"}})
}
