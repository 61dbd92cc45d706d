package experiments

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// KindFile is the workload kind of a workload file: a workload of the user's
// own schema and queries, read from file: (relative to the spec) or written
// inline under workload:.
const KindFile = "file"

// InlineWorkload is a workload file written in the spec, under workload:, as
// its YAML node (read by loadgen.ParseWorkloadFile with the spec's lines).
type InlineWorkload struct{ Node *yaml.Node }

func (w *InlineWorkload) UnmarshalYAML(n *yaml.Node) error {
	w.Node = n
	return nil
}

// readWorkloadFiles reads every file workload of the spec: the file its file:
// names, or the text of its inline workload: in src (the spec's own bytes, so
// that errors name the spec's lines). An inline workload changed by --set or the
// quick profile is read from its changed form, its lines counted from its start.
func (s *Spec) readWorkloadFiles(src []byte, overridden bool) []error {
	var errs []error
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.File == "" && w.Inline == nil {
			continue
		}
		if w.Kind == "" {
			w.Kind = KindFile
		}
		path := fmt.Sprintf("workloads[%d]", i)
		switch {
		case w.Kind != KindFile:
			errs = append(errs, &UsageError{Field: "experiment", Msg: fmt.Sprintf("%s: file and workload are for kind: file, not %q", s.at(path+".kind"), w.Kind)})
			continue
		case w.File != "" && w.Inline != nil:
			errs = append(errs, &UsageError{Field: "experiment", Msg: fmt.Sprintf("%s: give a workload file or an inline workload, not both", s.at(path))})
			continue
		}
		var err error
		if w.File != "" {
			w.wl, err = loadgen.LoadWorkloadFile(s.rel(w.File))
		} else {
			w.wl, err = loadgen.ParseWorkloadFile(s.file, inlineText(src, w.Inline.Node, overridden))
		}
		if err != nil {
			for _, e := range unjoin(err) {
				if w.File != "" {
					// The file's own errors name its lines; say which spec line named it.
					e = &UsageError{Field: "experiment", Msg: fmt.Sprintf("%s: file %s: %v", s.at(path+".file"), w.File, e)}
				}
				errs = append(errs, e)
			}
			continue
		}
		if w.Name == "" {
			w.Name = w.wl.Name
		}
	}
	return errs
}

// routeGiven says whether the spec's i-th workload names its route (in the file
// or by --set); one that does not goes where the cluster's default sends it.
func (s *Spec) routeGiven(i int) bool {
	if _, ok := s.lines[fmt.Sprintf("workloads[%d].route", i)]; ok {
		return true
	}
	return s.lines == nil && s.Workloads[i].Route != "" && s.Workloads[i].Route != "all"
}

// rel is path relative to the spec's directory (as it is when absolute, or when
// the spec has no file).
func (s *Spec) rel(path string) string {
	if filepath.IsAbs(path) || s.file == "" {
		return path
	}
	return filepath.Join(filepath.Dir(s.file), path)
}

// inlineText is an inline workload as a workload file whose lines are the spec's:
// as many empty lines as come before it in src, then its own text, with what
// precedes it on its first line blanked. A block mapping runs while lines are
// indented at least as far as its first key; a flow mapping to its closing
// brace. When it was changed (overridden), it is written out from the node.
func inlineText(src []byte, n *yaml.Node, overridden bool) []byte {
	lines := strings.Split(string(src), "\n")
	if overridden || n.Line < 1 || n.Line > len(lines) || n.Column < 1 {
		b, _ := yaml.Marshal(n)
		return b
	}
	start, col := n.Line-1, n.Column-1
	if col > len(lines[start]) {
		col = len(lines[start])
	}
	var out strings.Builder
	out.WriteString(strings.Repeat("\n", start))
	first := strings.Repeat(" ", col) + lines[start][col:]
	if n.Style&yaml.FlowStyle != 0 {
		// To the brace that closes the mapping, outside quotes.
		text := first + "\n" + strings.Join(lines[start+1:], "\n")
		depth, quote := 0, byte(0)
		for i := col; i < len(text); i++ {
			c := text[i]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					out.WriteString(text[:i+1])
					return []byte(out.String())
				}
			}
		}
		out.WriteString(text)
		return []byte(out.String())
	}
	out.WriteString(first)
	for _, l := range lines[start+1:] {
		t := strings.TrimLeft(l, " ")
		if t != "" && !strings.HasPrefix(t, "#") && len(l)-len(t) < col {
			break
		}
		out.WriteString("\n" + l)
	}
	return []byte(out.String())
}

// workload is the workload of the spec's i-th stream: its file's, or its kind's
// in reg.
func (s *Spec) workload(i int, reg *loadgen.Registry) (*loadgen.Workload, error) {
	w := s.Workloads[i]
	if w.wl != nil {
		return w.wl, nil
	}
	if w.Kind == KindFile {
		// A spec made in Go, not read by ParseSpec: read its file now.
		if w.File == "" {
			return nil, &UsageError{Field: "experiment", Msg: fmt.Sprintf("%s: kind file: give file: or workload:", s.at(fmt.Sprintf("workloads[%d]", i)))}
		}
		wl, err := loadgen.LoadWorkloadFile(s.rel(w.File))
		if err != nil {
			return nil, err
		}
		s.Workloads[i].wl = wl
		return wl, nil
	}
	return reg.Get(w.Kind)
}

// checkWorkloadFiles checks what file workloads need of the rest of the spec:
// a topology they run on, and one audited table for the run's acknowledged
// inserts (the load keeps one ledger, read back from one table).
func (s *Spec) checkWorkloadFiles(reg *loadgen.Registry, bad func(path, format string, a ...any)) {
	audited := map[loadgen.AuditTable][]string{}
	for i, w := range s.Workloads {
		wl, err := s.workload(i, reg)
		if err != nil {
			continue // reported with the workload's kind
		}
		if wl.Setup != nil {
			if c := s.Cluster; c != nil && (c.Topology == string(htc.Sharded) || c.Topology == string(htc.Vitess)) {
				bad(fmt.Sprintf("workloads[%d]", i), "%s: a workload with a schema of its own does not run on the %s topology: its tables would need a sharding of their own (run it on galera, primary-replica or single)", w.Name, c.Topology)
			}
		}
		if mix, err := loadgen.NewMix(wl, w.Mix); err == nil && slices.ContainsFunc(mix.Ops(), func(o *loadgen.Op) bool { return o.Ledgered }) {
			t := wl.AuditTarget()
			audited[t] = append(audited[t], w.Name)
		}
	}
	if len(audited) > 1 {
		var parts []string
		for _, t := range sortedAuditTables(audited) {
			parts = append(parts, fmt.Sprintf("%s into %s.%s", strings.Join(audited[t], ", "), t.Table, t.Column))
		}
		bad("workloads", "the durability audit reads one table per run: %s; give the others no ledgered op in their mix", strings.Join(parts, "; "))
	}
}

func sortedAuditTables(m map[loadgen.AuditTable][]string) []loadgen.AuditTable {
	var out []loadgen.AuditTable
	for t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b loadgen.AuditTable) int { return strings.Compare(a.Table+"."+a.Column, b.Table+"."+b.Column) })
	return out
}

// ownSchemas are the spec's workloads that bring a schema of their own
// (workload files), each once.
func (s *Spec) ownSchemas(reg *loadgen.Registry) []*loadgen.Workload {
	var out []*loadgen.Workload
	for i := range s.Workloads {
		if wl, err := s.workload(i, reg); err == nil && wl.Setup != nil && !slices.Contains(out, wl) {
			out = append(out, wl)
		}
	}
	return out
}

// needsBuiltinSchema says whether the run needs htapchaos's own tables (users,
// orders) seeded: a workload that brings no schema of its own and uses a
// connection, or a fault that acts on those tables (a spike runs a builtin
// workload; a schema change alters orders).
func (s *Spec) needsBuiltinSchema(reg *loadgen.Registry, fr *faults.Registry) bool {
	for i := range s.Workloads {
		if wl, err := s.workload(i, reg); err == nil && wl.Setup == nil && !wl.NoDB {
			return true
		}
	}
	for _, f := range s.Faults {
		if k, err := fr.Get(f.Kind); err == nil && (k.Class == faults.ClassSpike || k.Class == faults.ClassSchema) {
			return true
		}
	}
	return false
}
