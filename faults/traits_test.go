package faults

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestKindsDeclareTheirMeasurements reads the package's source: every Measurement
// a fault makes is named by a Measure* constant (so that a consumer can name it
// too), and every Measure* constant is declared by a kind's Measures, and the
// other way round. A measurement named by a string literal, or a constant no kind
// declares, fails here rather than leaving a scorer that looks for it inconclusive.
func TestKindsDeclareTheirMeasurements(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	consts := map[string]string{} // Measure* constant -> its value
	used := map[string]bool{}     // constants that name a Measurement
	literals := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if !strings.HasPrefix(id.Name, "Measure") || i >= len(n.Values) {
						continue
					}
					lit, ok := n.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("%s: %s is not a string constant", fset.Position(id.Pos()), id.Name)
						continue
					}
					consts[id.Name], _ = strconv.Unquote(lit.Value)
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); !ok || id.Name != "Measurement" {
					return true
				}
				literals++
				var nameExpr ast.Expr
				for _, e := range n.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
							nameExpr = kv.Value
						}
					}
				}
				// A constant, or a constant with a suffix (per operation).
				for {
					b, ok := nameExpr.(*ast.BinaryExpr)
					if !ok || b.Op != token.ADD {
						break
					}
					nameExpr = b.X
				}
				id, ok := nameExpr.(*ast.Ident)
				if !ok || !strings.HasPrefix(id.Name, "Measure") {
					t.Errorf("%s: a Measurement named by %s: name it by a Measure* constant that its kind declares in Measures",
						fset.Position(n.Pos()), exprString(nameExpr))
					return true
				}
				used[id.Name] = true
			}
			return true
		})
	}
	if literals == 0 || len(consts) == 0 {
		t.Fatalf("found %d Measurement literals and %d Measure* constants: the test reads nothing", literals, len(consts))
	}

	declared := map[string][]string{} // value -> kinds that declare it
	for _, k := range NewRegistry().Kinds() {
		for _, m := range k.Measures {
			declared[m] = append(declared[m], k.Name)
		}
	}
	values := map[string]bool{}
	for c, v := range consts {
		values[v] = true
		if len(declared[v]) == 0 {
			t.Errorf("%s (%q): no kind declares it in Measures", c, v)
		}
		if !used[c] {
			t.Errorf("%s (%q): declared but no Measurement is named by it", c, v)
		}
	}
	for v, kinds := range declared {
		if !values[v] {
			t.Errorf("%v declare the measurement %q, which is no Measure* constant", kinds, v)
		}
	}
	for c := range used {
		if _, ok := consts[c]; !ok {
			t.Errorf("a Measurement is named by %s, which is not a Measure* string constant of this package", c)
		}
	}
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case nil:
		return "nothing"
	case *ast.BasicLit:
		return e.Value
	case *ast.Ident:
		return e.Name
	}
	return "an expression"
}

// Every builtin kind says what it is; Register refuses a kind that does not, or
// that declares a measurement twice.
func TestKindsDeclareAClass(t *testing.T) {
	for _, k := range NewRegistry().Kinds() {
		if !slices.Contains(Classes(), k.Class) {
			t.Errorf("%s: class %q", k.Name, k.Class)
		}
		if k.Workload != "" && k.Class != ClassSpike {
			t.Errorf("%s: a workload (%s) on a kind of class %s: only spikes run one", k.Name, k.Workload, k.Class)
		}
	}
	for name, k := range map[string]*Kind{
		"no class":     {Name: "x"},
		"bad class":    {Name: "x", Class: "weather"},
		"measure dup":  {Name: "x", Class: ClassSlowdown, Measures: []string{MeasureStop, MeasureStop}},
		"registered 2": {Name: "pause", Class: ClassFailover},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register took %+v", k)
				}
			}()
			NewRegistry().Register(k)
		})
	}
}
