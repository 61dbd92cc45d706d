package loadgen

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// A workload file declares a workload of the user's own in YAML: its schema, how
// to seed it, and its operations. The README's "Your own schema and queries:
// workload files" is the reference; examples/workloads/ has complete files.
//
//	name: shop
//	class: oltp                      # oltp | analytics | batch (what the scorers count it as)
//	schema:                          # SQL, or file: shop.sql; per dialect where they differ
//	  sql: CREATE TABLE IF NOT EXISTS customers (id BIGINT PRIMARY KEY, ...); ...
//	  singlestore: {file: shop-singlestore.sql}
//	tables:                          # seeding, in this order
//	  - name: customers
//	    rows: 1000
//	    columns: {id: {sequence: 1}, email: {string: 16}, tier: {choice: [a, b], null: 0.1}}
//	ops:
//	  - name: lookup
//	    sql: SELECT * FROM customers WHERE id = ?
//	    args: [{zipf: {min: 1, max: 1000, s: 1.1}}]
//	    weight: 70
//	    rows: 1
//	  - name: order
//	    sql: INSERT INTO orders (id, customer_id) VALUES (?, ?)
//	    args: [next-id, {fk: customers}]
//	    ledger: {table: orders, column: id}

// LoadWorkloadFile reads a workload file (see ParseWorkloadFile).
func LoadWorkloadFile(path string) (*Workload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{Field: "workload file", Msg: err.Error()}
	}
	return ParseWorkloadFile(path, b)
}

// ParseWorkloadFile parses a workload file. file names it in errors and locates
// the .sql files it names (relative to its directory). Every problem is reported
// at once, each as a *UsageError naming file:line. The workload's Source holds
// the text and the .sql files read, so that an agent can rebuild it.
func ParseWorkloadFile(file string, data []byte) (*Workload, error) {
	return parseWorkloadFile(file, data, nil)
}

// parseWorkloadFile is ParseWorkloadFile; files, when not nil, are the .sql
// files by path, read instead of the disk (WorkloadSource.Build).
func parseWorkloadFile(file string, data []byte, files map[string][]byte) (*Workload, error) {
	p := &wparser{file: file, dir: filepath.Dir(file), files: files, read: map[string][]byte{}}
	wf, err := p.parse(data)
	if err != nil {
		return nil, err
	}
	wl := wf.workload()
	wl.Source = &WorkloadSource{File: file, Data: slices.Clone(data)}
	if len(p.read) > 0 {
		wl.Source.Files = p.read
	}
	return wl, nil
}

func parseWFile(file string, data []byte) (*wfile, error) {
	return (&wparser{file: file, dir: filepath.Dir(file)}).parse(data)
}

func (p *wparser) parse(data []byte) (*wfile, error) {
	file := p.file
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			return nil, &UsageError{Field: file + ":" + m[1], Msg: m[2]}
		}
		return nil, &UsageError{Field: file, Msg: msg}
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		line := 1
		if len(root.Content) > 0 {
			line = root.Content[0].Line
		}
		return nil, &UsageError{Field: fmt.Sprintf("%s:%d", file, line), Msg: "want a mapping of name, description, class, schema, tables, ops"}
	}
	wf := p.file0(root.Content[0])
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return wf, nil
}

// wparser collects every error of a file.
type wparser struct {
	file, dir string
	errs      []error
	files     map[string][]byte // not nil: the .sql files by path, instead of the disk
	read      map[string][]byte // not nil: collects the .sql files read, by path
}

// readFile reads a file the workload file names (see wparser.files, read).
func (p *wparser) readFile(path string) ([]byte, error) {
	var b []byte
	var err error
	if p.files != nil {
		var ok bool
		if b, ok = p.files[path]; !ok {
			return nil, fmt.Errorf("open %s: not sent with the workload file", path)
		}
	} else if b, err = os.ReadFile(path); err != nil {
		return nil, err
	}
	if p.read != nil {
		p.read[path] = b
	}
	return b, nil
}

func (p *wparser) errf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &UsageError{Field: fmt.Sprintf("%s:%d", p.file, n.Line), Msg: fmt.Sprintf(format, args...)})
}

// fields checks a mapping's keys against the known ones and returns the values by
// key; unknown and repeated keys are errors at their lines.
func (p *wparser) fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s: want a mapping of %s", what, strings.Join(known, ", "))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch {
		case !slices.Contains(known, k.Value):
			p.errf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(known, ", "))
		case out[k.Value] != nil:
			p.errf(k, "%s: %s given twice", what, k.Value)
		default:
			out[k.Value] = n.Content[i+1]
		}
	}
	return out
}

func (p *wparser) decode(n *yaml.Node, what string, v any) bool {
	if n.Kind != yaml.ScalarNode {
		p.errf(n, "%s: want a single value", what)
		return false
	}
	if err := n.Decode(v); err != nil {
		p.errf(n, "%s: %q is not %s", what, n.Value, typeWord(v))
		return false
	}
	return true
}

func typeWord(v any) string {
	switch v.(type) {
	case *int, *int64:
		return "a whole number"
	case *float64:
		return "a number"
	case *bool:
		return "true or false"
	default:
		return "a string"
	}
}

func (p *wparser) str(n *yaml.Node, what string) string {
	var s string
	p.decode(n, what, &s)
	return s
}

func (p *wparser) int64v(n *yaml.Node, what string) int64 {
	var v int64
	p.decode(n, what, &v)
	return v
}

func (p *wparser) dur(n *yaml.Node, what string) time.Duration {
	s := p.str(n, what)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.errf(n, "%s: %q is not a positive duration (e.g. 500ms, 24h)", what, s)
		return 0
	}
	return d
}

// wfile is a parsed workload file.
type wfile struct {
	name, description, class string
	schema                   map[Dialect][]sqlStmt // "" is every dialect without its own
	tables                   []*wtable
	ops                      []*wop
	samples                  []*sample
	audit                    *AuditTable
}

// sqlStmt is one schema statement and where it was written.
type sqlStmt struct {
	sql, at string
}

type wtable struct {
	name    string
	rows    int64
	cols    []wcol
	key     int // index of the sequence column
	line    int
	startID int64
}

type wcol struct {
	name string
	g    *gen
}

type wop struct {
	name    string
	sql     string
	args    []*gen
	weight  int
	writes  bool
	rows    int64 // -1: not checked
	timeout time.Duration
	ledger  *AuditTable
	keyArg  int // the next-id argument (-1: none)
}

var (
	yamlLineRe = regexp.MustCompile(`^line (\d+): (.*)$`)
	nameRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	identRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
)

func (p *wparser) file0(doc *yaml.Node) *wfile {
	f := p.fields(doc, "workload file", "name", "description", "class", "schema", "tables", "ops")
	wf := &wfile{class: "oltp", schema: map[Dialect][]sqlStmt{}}
	if n := f["name"]; n == nil {
		p.errf(doc, "name: missing (a short name in lower case, e.g. shop)")
	} else if wf.name = p.str(n, "name"); !nameRe.MatchString(wf.name) {
		p.errf(n, "name: %q: want lower-case letters, digits, - and _", wf.name)
	}
	if n := f["description"]; n != nil {
		wf.description = p.str(n, "description")
	}
	if n := f["class"]; n != nil {
		if wf.class = p.str(n, "class"); !slices.Contains([]string{"oltp", "analytics", "batch"}, wf.class) {
			p.errf(n, "class: %q: want oltp, analytics or batch", wf.class)
		}
	}
	if n := f["schema"]; n != nil {
		p.schema(wf, n)
	}
	if n := f["tables"]; n != nil {
		if n.Kind != yaml.SequenceNode {
			p.errf(n, "tables: want a list of tables to seed")
		} else {
			for _, it := range n.Content {
				if t := p.table(wf, it); t != nil {
					wf.tables = append(wf.tables, t)
				}
			}
		}
	}
	switch n := f["ops"]; {
	case n == nil:
		p.errf(doc, "ops: missing (the workload's operations)")
	case n.Kind != yaml.SequenceNode || len(n.Content) == 0:
		p.errf(n, "ops: want a list of operations")
	default:
		weighted := false
		for _, it := range n.Content {
			if op := p.op(wf, it); op != nil {
				weighted = weighted || op.weight > 0
				wf.ops = append(wf.ops, op)
			}
		}
		if !weighted && len(p.errs) == 0 {
			p.errf(n, "ops: no operation has a weight")
		}
	}
	return wf
}

// schema: SQL (a string), or a mapping of sql or file, and per dialect the same.
func (p *wparser) schema(wf *wfile, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		wf.schema[""] = p.stmts(n, n.Value, "")
		return
	}
	keys := []string{"sql", "file"}
	for _, d := range Dialects {
		keys = append(keys, string(d))
	}
	f := p.fields(n, "schema", keys...)
	if s := p.sqlOrFile(f, n, "schema", false); s != nil {
		wf.schema[""] = s
	}
	for _, d := range Dialects {
		dn := f[string(d)]
		switch {
		case dn == nil:
		case dn.Kind == yaml.ScalarNode:
			wf.schema[d] = p.stmts(dn, dn.Value, "")
		default:
			if s := p.sqlOrFile(p.fields(dn, "schema."+string(d), "sql", "file"), dn, "schema."+string(d), true); s != nil {
				wf.schema[d] = s
			}
		}
	}
}

// sqlOrFile reads the statements of a mapping that has sql or file (one of them;
// need: one is required).
func (p *wparser) sqlOrFile(f map[string]*yaml.Node, n *yaml.Node, what string, need bool) []sqlStmt {
	sn, fn := f["sql"], f["file"]
	switch {
	case sn != nil && fn != nil:
		p.errf(fn, "%s: give sql or file, not both", what)
	case sn != nil:
		return p.stmts(sn, p.str(sn, what+".sql"), "")
	case fn != nil:
		name := p.str(fn, what+".file")
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.dir, name)
		}
		b, err := p.readFile(path)
		if err != nil {
			p.errf(fn, "%s.file: %v", what, err)
			return nil
		}
		return p.stmts(fn, string(b), path)
	case need:
		p.errf(n, "%s: give sql or file", what)
	}
	return nil
}

var (
	createTableRe = regexp.MustCompile(`(?is)^\s*CREATE\s+(?:ROWSTORE\s+|COLUMNSTORE\s+|REFERENCE\s+|TEMPORARY\s+)*TABLE\s+(IF\s+NOT\s+EXISTS\s+)?`)
	// rerunRe: the statements a second run leaves as the first left them. The
	// schema runs again on every run, so no other is accepted.
	rerunRe = regexp.MustCompile(`(?is)^\s*(?:` +
		`CREATE\s+(?:ROWSTORE\s+|COLUMNSTORE\s+|REFERENCE\s+|TEMPORARY\s+)*TABLE\s+IF\s+NOT\s+EXISTS\b` +
		`|CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+IF\s+NOT\s+EXISTS\b` +
		`|CREATE\s+OR\s+REPLACE\s+(?:\w+\s*=\s*\S+\s+)*VIEW\b` +
		`|CREATE\s+(?:\w+\s*=\s*\S+\s+)*VIEW\s+IF\s+NOT\s+EXISTS\b` +
		`|INSERT\s+IGNORE\b|REPLACE\b|SET\b` +
		`|DROP\s+(?:TEMPORARY\s+)?(?:TABLE|VIEW|INDEX)\s+IF\s+EXISTS\b)`)
)

// leadingBlockRe: /* comments */ before a statement.
var leadingBlockRe = regexp.MustCompile(`^(?s:\s*/\*.*?\*/)*`)

// rerunForms lists what rerunRe accepts, for its error.
const rerunForms = "CREATE TABLE IF NOT EXISTS (indexes inside it), CREATE INDEX IF NOT EXISTS, CREATE OR REPLACE VIEW, CREATE VIEW IF NOT EXISTS, INSERT IGNORE, REPLACE, SET, DROP ... IF EXISTS"

// stmts splits SQL into statements and names where each begins: the .sql file's
// line, or the YAML file's.
func (p *wparser) stmts(n *yaml.Node, text, sqlFile string) []sqlStmt {
	var out []sqlStmt
	for _, s := range splitSQL(text) {
		var at string
		if sqlFile != "" {
			at = fmt.Sprintf("%s:%d", sqlFile, s.line)
		} else {
			line := n.Line + s.line - 1
			if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				line++ // the text begins on the line after | or >
			}
			at = fmt.Sprintf("%s:%d", p.file, line)
		}
		if m := createTableRe.FindStringSubmatch(s.text); m != nil && m[1] == "" {
			p.errs = append(p.errs, &UsageError{Field: at, Msg: "CREATE TABLE without IF NOT EXISTS: a second run on the same database would fail"})
		} else if m == nil && !rerunRe.MatchString(leadingBlockRe.ReplaceAllString(stripComments(s.text), "")) {
			p.errs = append(p.errs, &UsageError{Field: at, Msg: fmt.Sprintf("%q: the schema runs again on every run, and a second run would fail or change what the first made: want %s", firstWords(s.text, 4), rerunForms)})
		}
		out = append(out, sqlStmt{sql: s.text, at: at})
	}
	if len(out) == 0 {
		p.errf(n, "schema: no SQL statement")
	}
	return out
}

// firstWords is the first n words of a statement (comments skipped), to name it.
func firstWords(sql string, n int) string {
	w := strings.Fields(stripComments(sql))
	if len(w) > n {
		w = append(w[:n], "...")
	}
	return strings.Join(w, " ")
}

type splitStmt struct {
	text string
	line int // 1-based line of its first non-blank character in the text
}

// splitSQL splits statements at semicolons outside quotes and comments.
func splitSQL(text string) []splitStmt {
	var out []splitStmt
	start := 0
	emit := func(end int) {
		s := text[start:end]
		trimmed := strings.TrimSpace(stripComments(s))
		if trimmed != "" {
			lead := len(s) - len(strings.TrimLeft(s, " \t\r\n"))
			out = append(out, splitStmt{text: strings.TrimSpace(s), line: 1 + strings.Count(text[:start+lead], "\n")})
		}
		start = end + 1
	}
	sqlCode(text, func(i int) {
		if text[i] == ';' {
			emit(i)
		}
	})
	if start < len(text) {
		emit(len(text))
	}
	return out
}

// stripComments removes whole-line comments (to tell an empty statement).
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "--") || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// named reads the name of a table or an op: present, of the form re asks for,
// and not taken by an earlier one.
func (p *wparser) named(f map[string]*yaml.Node, n *yaml.Node, what string, re *regexp.Regexp, form, twice string, taken func(string) bool) string {
	nn := f["name"]
	if nn == nil {
		p.errf(n, "%s: name missing", what)
		return ""
	}
	name := p.str(nn, what+" name")
	switch {
	case !re.MatchString(name):
		p.errf(nn, "%s name %q: want %s", what, name, form)
	case taken(name):
		p.errf(nn, "%s %s: %s", what, name, twice)
	}
	return name
}

func (p *wparser) table(wf *wfile, n *yaml.Node) *wtable {
	f := p.fields(n, "table", "name", "rows", "columns")
	t := &wtable{line: n.Line, key: -1}
	t.name = p.named(f, n, "table", identRe, "a plain SQL name (letters, digits, _)", "seeded twice",
		func(s string) bool {
			return slices.ContainsFunc(wf.tables, func(o *wtable) bool { return o.name == s })
		})
	if rn := f["rows"]; rn == nil {
		p.errf(n, "table %s: rows missing (how many rows to seed)", t.name)
	} else if t.rows = p.int64v(rn, "rows"); t.rows < 1 || t.rows > maxSeedRows {
		p.errf(rn, "table %s: rows %d: want 1 to %d", t.name, t.rows, int64(maxSeedRows))
		t.rows = 1
	}
	cn := f["columns"]
	if cn == nil || cn.Kind != yaml.MappingNode || len(cn.Content) == 0 {
		at := n
		if cn != nil {
			at = cn
		}
		p.errf(at, "table %s: columns: want a mapping of column: generator", t.name)
		return nil
	}
	for i := 0; i+1 < len(cn.Content); i += 2 {
		k, v := cn.Content[i], cn.Content[i+1]
		if !identRe.MatchString(k.Value) {
			p.errf(k, "column %q: want a plain SQL name", k.Value)
			continue
		}
		if slices.ContainsFunc(t.cols, func(c wcol) bool { return c.name == k.Value }) {
			p.errf(k, "column %s given twice", k.Value)
			continue
		}
		g := p.gen(wf, v, t.name+"."+k.Value, false)
		if g == nil {
			continue
		}
		if g.kind == genSequence {
			if t.key >= 0 {
				p.errf(v, "table %s: a second sequence column (%s): one is the table's key", t.name, k.Value)
			}
			t.key, t.startID = len(t.cols), g.lo
			if g.lo < -maxSeqID || g.lo > maxSeqID-(t.rows-1) {
				p.errf(v, "table %s: sequence start %d with %d rows: the keys must stay within -2^62..2^62", t.name, g.lo, t.rows)
				t.startID = 1
			}
			if g.nullFrac > 0 {
				p.errf(v, "table %s: the sequence column %s cannot be NULL", t.name, k.Value)
			}
		}
		if g.kind == genFK && g.fkTable == t.name {
			p.errf(v, "%s.%s: fk into its own table", t.name, k.Value)
		}
		t.cols = append(t.cols, wcol{name: k.Value, g: g})
	}
	if t.key < 0 {
		p.errf(cn, "table %s: no sequence column: seeding needs one as the table's key, to skip the rows already there on a second run", t.name)
	}
	return t
}

// Bounds of what a file may ask for, so no generator or seed overflows 64 bits
// or loops for ever.
const (
	maxSeedRows = 1e10           // rows of a seeded table
	maxSeqID    = int64(1) << 62 // a sequence's keys stay within ±2^62
	maxSkew     = 100.0          // zipf's s (math/rand's Zipf loops for ever at +Inf)
	maxWeight   = 1_000_000      // an op's weight (the mix's total must not overflow)
	maxWindow   = 100 * 365 * 24 * time.Hour
)

// gen parses a generator: a mapping of one kind (plus null), or the word next-id
// (ops only).
func (p *wparser) gen(wf *wfile, n *yaml.Node, what string, op bool) *gen {
	kinds := []string{"sequence", "uniform", "zipf", "fk", "string", "timestamp", "choice", "from"}
	if n.Kind == yaml.ScalarNode {
		if n.Value == string(genNextID) {
			if !op {
				p.errf(n, "%s: next-id is for an op's arguments (an insert's key), not for seeding", what)
				return nil
			}
			return &gen{kind: genNextID, line: n.Line}
		}
		p.errf(n, "%s: %q: want a generator: {%s: ...}, or next-id", what, n.Value, strings.Join(kinds, "|"))
		return nil
	}
	f := p.fields(n, what, append(slices.Clone(kinds), "null")...)
	g := &gen{line: n.Line}
	var kn *yaml.Node
	for _, k := range kinds {
		if v := f[k]; v != nil {
			if kn != nil {
				p.errf(v, "%s: one generator kind per value (%s and %s given)", what, g.kind, k)
				return nil
			}
			g.kind, kn = genKind(k), v
		}
	}
	if kn == nil {
		if n.Kind == yaml.MappingNode {
			p.errf(n, "%s: no generator kind (one of %s)", what, strings.Join(kinds, ", "))
		}
		return nil
	}
	if nn := f["null"]; nn != nil {
		var v float64
		if p.decode(nn, what+": null", &v) && !(v >= 0 && v < 1) {
			p.errf(nn, "%s: null %g: want a fraction in [0, 1)", what, v)
		}
		g.nullFrac = v
	}
	switch g.kind {
	case genSequence:
		g.lo = 1
		if kn.Kind == yaml.ScalarNode {
			g.lo = p.int64v(kn, what+": sequence (its start)")
		} else {
			if s := p.fields(kn, what+": sequence", "start")["start"]; s != nil {
				g.lo = p.int64v(s, what+": sequence start")
			}
		}
		if g.lo < -maxSeqID || g.lo > maxSeqID {
			p.errf(kn, "%s: sequence start %d: want -2^62..2^62", what, g.lo)
			g.lo = 1
		}
		if op {
			g.next = new(atomic.Int64)
		}
	case genUniform, genZipf:
		keys := []string{"min", "max", "decimals"}
		if g.kind == genZipf {
			keys = []string{"min", "max", "s"}
		}
		f := p.fields(kn, what+": "+string(g.kind), keys...)
		if f["min"] == nil || f["max"] == nil {
			p.errf(kn, "%s: %s: give min and max", what, g.kind)
			return nil
		}
		g.lo, g.hi = p.int64v(f["min"], what+": min"), p.int64v(f["max"], what+": max")
		if g.hi < g.lo {
			p.errf(f["max"], "%s: max %d is below min %d", what, g.hi, g.lo)
		}
		if d := f["decimals"]; d != nil {
			if g.decimals = int(p.int64v(d, what+": decimals")); g.decimals < 0 || g.decimals > 6 {
				p.errf(d, "%s: decimals %d: want 0-6", what, g.decimals)
				g.decimals = 0
			}
		}
		if span := uint64(g.hi - g.lo); g.hi >= g.lo && (span >= math.MaxInt64/uint64(math.Pow10(g.decimals)) || g.lo < math.MinInt64/int64(math.Pow10(g.decimals)) || g.hi > math.MaxInt64/int64(math.Pow10(g.decimals))) {
			p.errf(kn, "%s: %d..%d: too wide a range for 64-bit integers", what, g.lo, g.hi)
		}
		if g.kind == genZipf {
			g.skew = 1.1
			if s := f["s"]; s != nil && p.decode(s, what+": s", &g.skew) && !(g.skew > 1 && g.skew <= maxSkew) {
				p.errf(s, "%s: s %g: the zipf exponent must be above 1 and at most %g", what, g.skew, maxSkew)
				g.skew = 1.1
			}
		}
	case genFK:
		tn := kn
		if kn.Kind == yaml.MappingNode {
			f := p.fields(kn, what+": fk", "table", "s")
			if tn = f["table"]; tn == nil {
				p.errf(kn, "%s: fk: table missing", what)
				return nil
			}
			if s := f["s"]; s != nil && p.decode(s, what+": fk s", &g.skew) && !(g.skew > 1 && g.skew <= maxSkew) {
				p.errf(s, "%s: fk s %g: the zipf exponent must be above 1 and at most %g", what, g.skew, maxSkew)
				g.skew = 0
			}
		}
		g.fkTable = p.str(tn, what+": fk")
		i := slices.IndexFunc(wf.tables, func(t *wtable) bool { return t.name == g.fkTable })
		if i < 0 {
			p.errf(tn, "%s: fk %q: no table of that name is seeded before it (list the parent table first)", what, g.fkTable)
			return nil
		}
		parent := wf.tables[i]
		g.lo, g.hi = parent.startID, parent.startID+parent.rows-1
	case genString:
		if kn.Kind == yaml.ScalarNode {
			g.strMin = int(p.int64v(kn, what+": string (its length)"))
			g.strMax = g.strMin
		} else {
			f := p.fields(kn, what+": string", "length", "min", "max")
			if l := f["length"]; l != nil {
				g.strMin = int(p.int64v(l, what+": length"))
				g.strMax = g.strMin
			} else if f["min"] != nil && f["max"] != nil {
				g.strMin, g.strMax = int(p.int64v(f["min"], what+": min")), int(p.int64v(f["max"], what+": max"))
			} else {
				p.errf(kn, "%s: string: give length, or min and max", what)
			}
		}
		if g.strMin < 0 || g.strMax < g.strMin || g.strMax > 65535 {
			p.errf(kn, "%s: string length %d-%d: want 0-65535, min not above max", what, g.strMin, g.strMax)
		}
	case genTimestamp:
		wn := kn
		if kn.Kind == yaml.MappingNode {
			if wn = p.fields(kn, what+": timestamp", "window")["window"]; wn == nil {
				p.errf(kn, "%s: timestamp: window missing (e.g. 24h: times in the last day)", what)
				return nil
			}
		}
		if g.window = p.dur(wn, what+": timestamp window"); g.window > maxWindow {
			p.errf(wn, "%s: timestamp window %v: want at most 100 years (%v)", what, g.window, maxWindow)
			g.window = time.Hour
		}
	case genChoice:
		if kn.Kind != yaml.SequenceNode || len(kn.Content) == 0 {
			p.errf(kn, "%s: choice: want a list of values", what)
			return nil
		}
		for _, c := range kn.Content {
			g.choices = append(g.choices, p.str(c, what+": choice"))
		}
	case genFrom:
		f := p.fields(kn, what+": from", "table", "column")
		if f["table"] == nil || f["column"] == nil {
			p.errf(kn, "%s: from: give table and column", what)
			return nil
		}
		t, c := p.str(f["table"], what+": from table"), p.str(f["column"], what+": from column")
		for _, x := range []struct {
			n *yaml.Node
			v string
		}{{f["table"], t}, {f["column"], c}} {
			if !identRe.MatchString(x.v) {
				p.errf(x.n, "%s: from: %q: want a plain SQL name", what, x.v)
				return nil
			}
		}
		i := slices.IndexFunc(wf.samples, func(s *sample) bool { return s.table == t && s.column == c })
		if i < 0 {
			wf.samples = append(wf.samples, &sample{table: t, column: c})
			i = len(wf.samples) - 1
		}
		g.from = wf.samples[i]
	}
	return g
}

var readRe = regexp.MustCompile(`(?is)^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|VALUES|TABLE)\b`)

func (p *wparser) op(wf *wfile, n *yaml.Node) *wop {
	f := p.fields(n, "op", "name", "sql", "args", "weight", "writes", "rows", "timeout", "ledger")
	op := &wop{weight: 1, rows: -1, keyArg: -1}
	op.name = p.named(f, n, "op", nameRe, "lower-case letters, digits, - and _", "given twice",
		func(s string) bool { return slices.ContainsFunc(wf.ops, func(o *wop) bool { return o.name == s }) })
	sn := f["sql"]
	if sn == nil {
		p.errf(n, "op %s: sql missing", op.name)
		return nil
	}
	op.sql = strings.TrimSpace(p.str(sn, "op sql"))
	if len(splitSQL(op.sql)) != 1 {
		p.errf(sn, "op %s: want exactly one SQL statement", op.name)
	}
	read := readRe.MatchString(op.sql)
	op.writes = !read
	if wn := f["writes"]; wn != nil {
		var w bool
		if p.decode(wn, "writes", &w) {
			if !w && !read {
				p.errf(wn, "op %s: writes: false, but the statement is not a read (SELECT, WITH, SHOW ...): say writes: true", op.name)
			}
			op.writes = w
		}
	}
	if wn := f["weight"]; wn != nil {
		if w := p.int64v(wn, "weight"); w < 0 || w > maxWeight {
			p.errf(wn, "op %s: weight %d: want 0 (only when asked for by a mix) to %d", op.name, w, maxWeight)
		} else {
			op.weight = int(w)
		}
	}
	if tn := f["timeout"]; tn != nil {
		op.timeout = p.dur(tn, "timeout")
	}
	if an := f["args"]; an != nil {
		if an.Kind != yaml.SequenceNode {
			p.errf(an, "op %s: args: want a list, one generator per ? placeholder", op.name)
		} else {
			for i, it := range an.Content {
				g := p.gen(wf, it, fmt.Sprintf("op %s: argument %d", op.name, i+1), true)
				if g != nil && g.kind == genNextID {
					if op.keyArg >= 0 {
						p.errf(it, "op %s: next-id twice: one fresh key per insert", op.name)
					}
					op.keyArg = i
				}
				op.args = append(op.args, g)
			}
		}
	}
	if want := placeholders(op.sql); want != len(op.args) {
		at := sn
		if an := f["args"]; an != nil {
			at = an
		}
		p.errf(at, "op %s: %d ? placeholders but %d args (one generator per placeholder)", op.name, want, len(op.args))
	}
	if rn := f["rows"]; rn != nil {
		if op.rows = p.int64v(rn, "rows"); op.rows < 0 {
			p.errf(rn, "op %s: rows %d: want a count of 0 or more", op.name, op.rows)
		}
	}
	if ln := f["ledger"]; ln != nil {
		lf := p.fields(ln, "ledger", "table", "column")
		if lf["table"] == nil || lf["column"] == nil {
			p.errf(ln, "op %s: ledger: give table and column (where the insert's key lands)", op.name)
			return op
		}
		at := AuditTable{Table: p.str(lf["table"], "ledger table"), Column: p.str(lf["column"], "ledger column")}
		if !identRe.MatchString(at.Table) || !identRe.MatchString(at.Column) {
			p.errf(ln, "op %s: ledger: %s.%s: want plain SQL names", op.name, at.Table, at.Column)
		}
		switch {
		case !op.writes:
			p.errf(ln, "op %s: a ledgered op inserts: it cannot be a read", op.name)
		case op.keyArg < 0:
			p.errf(ln, "op %s: ledger: one argument must be next-id, the insert's fresh key (%s.%s)", op.name, at.Table, at.Column)
		case op.rows >= 0 && op.rows != 1:
			p.errf(f["rows"], "op %s: a ledgered insert writes one row per key: rows must be 1 or absent", op.name)
		case wf.audit != nil && *wf.audit != at:
			p.errf(ln, "op %s: ledger %s.%s: this workload's audited table is already %s.%s (one per workload)", op.name, at.Table, at.Column, wf.audit.Table, wf.audit.Column)
		default:
			wf.audit = &at
			op.ledger = &at
		}
		if t := slices.IndexFunc(wf.tables, func(t *wtable) bool { return t.name == at.Table }); t >= 0 {
			if tb := wf.tables[t]; tb.startID+tb.rows > 1<<40 {
				p.errf(ln, "op %s: the seeded ids of %s reach 2^40, where run-tagged keys begin: seed fewer or start lower", op.name, at.Table)
			}
		}
	}
	return op
}
