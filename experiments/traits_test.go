package experiments

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/faults"
)

// traitProblems checks scorers against a fault registry: every mode has a
// scorer; every fault kind is of a class some scorer claims, or declares why it
// is unscored (and then no scorer claims it); every class a scorer claims has a
// kind; every measurement a scorer reads is one some kind declares.
func traitProblems(reg *faults.Registry, scorers []Scorer, modes []string) []string {
	var out []string
	claimedBy := map[faults.Class][]string{}
	for _, s := range scorers {
		c, ok := s.(FaultClaimer)
		if !ok {
			continue
		}
		for _, class := range c.Claims() {
			claimedBy[class] = append(claimedBy[class], s.Mode())
		}
		for _, m := range c.Reads() {
			if !slices.ContainsFunc(reg.Kinds(), func(k *faults.Kind) bool { return k.Makes(m) }) {
				out = append(out, "scorer "+s.Mode()+" reads the fault measurement "+strconv.Quote(m)+", which no fault kind declares in Measures")
			}
		}
	}
	for _, m := range modes {
		if !slices.ContainsFunc(scorers, func(s Scorer) bool { return s.Mode() == m }) {
			out = append(out, "failure mode "+m+" has no scorer")
		}
	}
	for _, k := range reg.Kinds() {
		by := claimedBy[k.Class]
		switch {
		case len(by) == 0 && k.Unscored == "":
			out = append(out, "fault kind "+k.Name+" (class "+string(k.Class)+") is claimed by no scorer and not declared unscored (faults.Kind.Unscored)")
		case len(by) > 0 && k.Unscored != "":
			out = append(out, "fault kind "+k.Name+" is declared unscored ("+k.Unscored+") but "+strings.Join(by, ", ")+" claims its class "+string(k.Class))
		}
	}
	for class, by := range claimedBy {
		if !slices.ContainsFunc(reg.Kinds(), func(k *faults.Kind) bool { return k.Class == class }) {
			out = append(out, strings.Join(by, ", ")+" claims the class "+string(class)+", which no fault kind is of")
		}
	}
	slices.Sort(out)
	return out
}

// TestTraits walks every registered fault kind and every failure mode: each
// kind is claimed by a scorer (through its class) or declared unscored, each
// measurement a scorer reads is declared by a kind, each mode has a scorer. A
// new kind of a class no scorer claims, or a measurement a kind no longer
// declares, fails here instead of leaving a verdict silently inconclusive.
func TestTraits(t *testing.T) {
	if ps := traitProblems(faults.NewRegistry(), builtinScorers(), Modes); len(ps) > 0 {
		t.Errorf("the builtin scorers and fault kinds do not fit:\n%s", strings.Join(ps, "\n"))
	}

	// The check itself: it sees what it is there to see.
	without := func(mode string) []Scorer {
		return slices.DeleteFunc(builtinScorers(), func(s Scorer) bool { return s.Mode() == mode })
	}
	reading := func(m string) []Scorer {
		return append(without(ModeDataMovement), claim(dataMovementScorer(), spikeClasses, m))
	}
	tool := faults.NewRegistry()
	tool.Register(&faults.Kind{Name: "tool", Class: faults.ClassSlowdown, Unscored: "a tool for the fault command only"})
	for _, c := range []struct {
		name    string
		reg     *faults.Registry
		scorers []Scorer
		modes   []string
		want    []string // each in some problem
		notWant []string // in none
	}{
		{"no scorer for the slowdowns", faults.NewRegistry(), without(ModeFailSideways), nil,
			[]string{"fault kind cpu-hog (class slowdown) is claimed by no scorer", "fault kind slow-node", "fault kind network-latency"}, nil},
		{"declared unscored", tool, without(ModeFailSideways), nil,
			[]string{"fault kind slow-node"}, []string{"kind tool"}},
		{"declared unscored but claimed", tool, builtinScorers(), nil,
			[]string{"fault kind tool is declared unscored (a tool for the fault command only) but fail-sideways claims its class slowdown"}, nil},
		{"a measurement no kind makes", faults.NewRegistry(), reading("alter begin"), nil,
			[]string{`scorer data-movement reads the fault measurement "alter begin", which no fault kind declares`}, nil},
		{"a mode without a scorer", faults.NewRegistry(), without(ModeFreshness), Modes,
			[]string{"failure mode freshness has no scorer"}, []string{"claimed by no scorer"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := traitProblems(c.reg, c.scorers, c.modes)
			for _, w := range c.want {
				if !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, w) }) {
					t.Errorf("no problem says %q; got:\n%s", w, strings.Join(ps, "\n"))
				}
			}
			for _, w := range c.notWant {
				if slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, w) }) {
					t.Errorf("a problem says %q:\n%s", w, strings.Join(ps, "\n"))
				}
			}
		})
	}
}

// TestScorersSelectWhatTheyClaim: a claim is what the scorer selects. For each
// scorer and each kind of a class it claims, a run with a fault of that kind
// (which never took effect) and one of a kind the scorer does not claim gets an
// inconclusive finding for the first, naming it (in its reason, or in its notes
// for a scorer like data-movement whose verdict no fault decides), and nothing
// for the other. A scorer that reads fault measurements claims the faults it
// reads them from, so none escapes this test.
func TestScorersSelectWhatTheyClaim(t *testing.T) {
	reg := NewScorers()
	kinds := faults.NewRegistry().Kinds()
	for _, s := range builtinScorers() {
		c, ok := s.(FaultClaimer)
		if ok && len(c.Reads()) > 0 && len(c.Claims()) == 0 {
			t.Errorf("%s reads fault measurements %v but claims no fault class: what it selects is not checked", s.Mode(), c.Reads())
		}
		if !ok || len(c.Claims()) == 0 {
			continue
		}
		i := slices.IndexFunc(kinds, func(k *faults.Kind) bool { return !slices.Contains(c.Claims(), k.Class) })
		if i < 0 {
			t.Fatalf("%s claims every class", s.Mode())
		}
		other := kinds[i]
		for _, k := range kinds {
			if !slices.Contains(c.Claims(), k.Class) {
				continue
			}
			t.Run(s.Mode()+"/"+k.Name, func(t *testing.T) {
				r := run("middle",
					FaultSpec{Name: "probe", Kind: k.Name, Phase: "middle", Node: "1"},
					FaultSpec{Name: "bystander", Kind: other.Name, Phase: "middle", Node: "1"})
				r.Faults = []FaultRecord{
					{Name: "probe", Kind: k.Name, Nodes: []int{1}, Injected: at(30), State: "failed", Error: "refused"},
					{Name: "bystander", Kind: other.Name, Nodes: []int{1}, Injected: at(30), State: "failed", Error: "refused"},
				}
				b, err := reg.Budgets(s.Mode(), nil)
				if err != nil {
					t.Fatal(err)
				}
				fs := s.Score(r, b)
				probed := false
				for _, f := range fs {
					says := func(s string) bool {
						return strings.Contains(f.Reason, s) || slices.ContainsFunc(f.Notes, func(n string) bool { return strings.Contains(n, s) })
					}
					if f.Verdict == Inconclusive && says("the fault probe never took effect") {
						probed = true
					}
					if says("bystander") || strings.Contains(f.Name, "bystander") {
						t.Errorf("%s scored %s, a fault of class %s it does not claim: %s: %s %v", s.Mode(), other.Name, other.Class, f.Name, f.Reason, f.Notes)
					}
				}
				if !probed {
					t.Errorf("%s did not score a %s fault (class %s, which it claims): %+v", s.Mode(), k.Name, k.Class, fs)
				}
			})
		}
	}
}

// TestScorersNameNoFault reads the scorers' source: no scorer names a fault
// kind (it selects faults by class or another trait), and every fault
// measurement it reads is a faults.Measure* constant that a builtin scorer
// declares in Reads.
func TestScorersNameNoFault(t *testing.T) {
	measures := measureConsts(t)
	var reads []string
	for _, s := range builtinScorers() {
		if c, ok := s.(FaultClaimer); ok {
			reads = append(reads, c.Reads()...)
		}
	}
	kinds := faults.NewRegistry().Names()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		scorerFile := strings.HasPrefix(name, "scorers")
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if v, err := strconv.Unquote(n.Value); scorerFile && n.Kind == token.STRING && err == nil && slices.Contains(kinds, v) {
					t.Errorf("%s: the scorers name the fault kind %q: select faults by class or trait (faults.Kind)", fset.Position(n.Pos()), v)
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "measurement" || len(n.Args) != 1 {
					return true
				}
				calls++
				arg, _ := n.Args[0].(*ast.SelectorExpr)
				pkg := ""
				if arg != nil {
					if id, ok := arg.X.(*ast.Ident); ok {
						pkg = id.Name
					}
				}
				if pkg != "faults" || measures[arg.Sel.Name] == "" {
					t.Errorf("%s: a fault measurement read by something else than a faults.Measure* constant", fset.Position(n.Pos()))
					return true
				}
				if v := measures[arg.Sel.Name]; !slices.Contains(reads, v) {
					t.Errorf("%s: faults.%s (%q) is read, but no builtin scorer declares it in Reads (see builtinScorers)", fset.Position(n.Pos()), arg.Sel.Name, v)
				}
			}
			return true
		})
	}
	if calls == 0 {
		t.Fatal("no measurement read found: the test reads nothing")
	}
}

// measureConsts reads the faults package's Measure* constants and their values.
func measureConsts(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "faults", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, id := range vs.Names {
					if i < len(vs.Values) && strings.HasPrefix(id.Name, "Measure") {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							out[id.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("no faults.Measure* constant found")
	}
	return out
}

// The scorers select faults by the traits the run recorded with them
// (FaultRecord.Class, StopsServer, Workload): a kind a user registers is
// selected like a builtin one, though the builtin registry does not know it. A
// run.json from before the traits were recorded (no Class) is selected by its
// builtin kind's, so it scores again as it did.
func TestScorersSelectByRecordedTraits(t *testing.T) {
	user := faults.NewRegistry()
	user.Register(&faults.Kind{Name: "oom-storm", Class: faults.ClassMemory})
	user.Register(&faults.Kind{Name: "reboot", Class: faults.ClassFailover, StopsServer: true})
	user.Register(&faults.Kind{Name: "report-burst", Class: faults.ClassSpike, Workload: "analytics"})
	rec := func(name, kind string) FaultRecord {
		k, err := user.Get(kind)
		if err != nil {
			t.Fatal(err)
		}
		return newFaultRecord(name, k)
	}
	if _, err := faults.NewRegistry().Get("oom-storm"); err == nil {
		t.Fatal("the builtin registry knows oom-storm: pick a name it does not")
	}
	r := &Recorded{Faults: []FaultRecord{
		rec("storm", "oom-storm"), rec("boot", "reboot"), rec("burst", "report-burst"),
		{Name: "old-kill", Kind: "node-kill"}, // a run.json from before: the builtin kind's traits
		{Name: "old-mine", Kind: "oom-storm"}, // from before, of a kind the builtins lack: none
		{Name: "lost", Kind: "gone"},          // neither
	}}
	names := func(fs []FaultRecord) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	for _, c := range []struct {
		what string
		got  []FaultRecord
		want []string
	}{
		{"class memory", r.faultsOfClass(faults.ClassMemory), []string{"storm"}},
		{"class failover", r.faultsOfClass(faults.ClassFailover), []string{"boot", "old-kill"}},
		{"stops the server", r.faultsWhere(func(k *faults.Kind) bool { return k.StopsServer }), []string{"boot", "old-kill"}},
		{"runs analytics", r.faultsWhere(func(k *faults.Kind) bool { return k.Workload == "analytics" }), []string{"burst"}},
	} {
		if got := names(c.got); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.what, got, c.want)
		}
	}

	// What run.json holds: the traits, and nothing for a run.json from before.
	b, err := json.Marshal(rec("boot", "reboot"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"class":"failover"`, `"stops_server":true`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("%s lacks %s", b, w)
		}
	}
	var old FaultRecord
	if err := json.Unmarshal([]byte(`{"name": "k", "kind": "node-kill", "nodes": [1]}`), &old); err != nil {
		t.Fatal(err)
	}
	if k, ok := old.traits(); !ok || k.Class != faults.ClassFailover || !k.StopsServer {
		t.Errorf("a record from before the traits: %+v, %v; want the builtin node-kill's", k, ok)
	}

	// A whole scorer: memory-headroom judges the user's memory fault, which never
	// took effect.
	mr := run("fill", FaultSpec{Name: "storm", Kind: "oom-storm", Phase: "fill", Node: "1"})
	f := rec("storm", "oom-storm")
	f.Nodes, f.Injected, f.State, f.Error = []int{1}, at(30), "failed", "refused"
	mr.Faults = []FaultRecord{f}
	fs := score(t, ModeMemoryHeadroom, mr, nil)
	want(t, fs, "oltp error rate", Inconclusive, -1, "the fault storm never took effect")
	want(t, fs, "nodes killed or restarted", Inconclusive, -1, "the fault storm never took effect")
}
