package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/results"
)

// UsageError is bad input (an unknown workload or operation, a rate that is not
// positive, ...). The CLI maps it to exit code 2.
type UsageError = usage.Error

var usageErr = usage.Errorf

// Querier is what an operation runs on: the worker's own connection to the node, so
// an operation is exactly one attempt (database/sql retries silently on a *sql.DB).
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Worker is the per-goroutine state an operation may use. It is not shared.
type Worker struct {
	ID     int        // writer id, unique in the run
	Rand   *rand.Rand // private random source
	Params *Params
	ids    *IDs
	seq    uint64
	ledger *results.Ledger
	conns  conns
	fresh  conns // measured queries' connections (Op.Memory): at most one per node, never used yet
	home   int   // the node whose queue the worker serves (open loop); 0: every node (closed loop)
	qargs  []any // the user's query's arguments, one per placeholder (nil: not counted yet)
}

// QueryArgs returns the arguments of the user's query (Params.Query): a random
// order id for each of its ? placeholders, which are counted once per worker.
func (w *Worker) QueryArgs() []any {
	if w.qargs == nil {
		w.qargs = make([]any, placeholders(w.Params.Query))
	}
	for i := range w.qargs {
		w.qargs[i] = w.RandomOrder()
	}
	return w.qargs
}

// closeAll closes the worker's connections.
func (w *Worker) closeAll() {
	w.conns.closeAll()
	w.fresh.closeAll()
}

// NextID returns a fresh order id owned by this worker (see IDs).
func (w *Worker) NextID() int64 {
	w.seq++
	return w.ids.ID(w.ID, w.seq)
}

// Ack and Unknown record an insert's outcome in the acknowledged-write ledger.
func (w *Worker) Ack(id int64) {
	if w.ledger != nil {
		w.ledger.Ack(w.ID, id)
	}
}

// Unknown records an insert whose outcome the client cannot know.
func (w *Worker) Unknown(id int64) {
	if w.ledger != nil {
		w.ledger.Unknown(w.ID, id)
	}
}

// RandomUser picks a seeded user id.
func (w *Worker) RandomUser() int64 { return 1 + w.Rand.Int64N(max(w.Params.Data.Users, 1)) }

// RandomOrder picks a seeded order id.
func (w *Worker) RandomOrder() int64 { return 1 + w.Rand.Int64N(max(w.Params.Data.Orders, 1)) }

// Params are the knobs operations read.
type Params struct {
	Dialect Dialect
	// ShardEngine is the sharded schema's engine when the target is sharded
	// (Spider when empty): the sharded ops speak its SQL.
	ShardEngine ShardEngine
	Data        Data
	BatchRows   int    // rows per statement of batch operations (default 500)
	Query       string // the user's own query for analytics "sql"; each ? is bound to a random order id
}

// placeholders counts the ? placeholders of a query, outside quoted strings,
// quoted names and comments.
func placeholders(query string) int {
	n := 0
	sqlCode(query, func(i int) {
		if query[i] == '?' {
			n++
		}
	})
	return n
}

// sqlCode calls code with the index of each byte of SQL text that is outside
// quoted strings, quoted names and comments.
func sqlCode(text string, code func(i int)) {
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\'', c == '"', c == '`':
			for i++; i < len(text) && text[i] != c; i++ {
				if text[i] == '\\' && c != '`' {
					i++
				}
			}
		case c == '#', c == '-' && strings.HasPrefix(text[i:], "-- "):
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				return
			}
			i += end + 3
		default:
			code(i)
		}
	}
}

// Op is one kind of operation. Run makes exactly one attempt and returns its error.
type Op struct {
	Name   string
	Weight int // default weight in the mix; 0 = only when asked for
	Run    func(ctx context.Context, q Querier, w *Worker) error
	// ChangesData says the op writes (insert, update, delete, DDL): its
	// availability is measured apart from the reads' (results.Write).
	ChangesData bool
	// Ledgered says the op inserts rows whose ids it records in the
	// acknowledged-write ledger (Worker.Ack, Worker.Unknown), which the
	// durability audit reads back. A ledgered op changes data.
	Ledgered bool
	// Memory says: measure this op's peak memory from the server's own
	// accounting, when the run asks (Spec.MeasureMemory; otherwise the op runs
	// like any other). Each successful query runs on a fresh connection, and
	// MariaDB's information_schema.PROCESSLIST MAX_MEMORY_USED of that
	// connection, read after the query's end time, is recorded
	// (results.Handle.RecordMemory). For the analytics queries: the memory a
	// node must be sized for is theirs.
	Memory bool
}

// Access is the access kind the op declares: results.Write when it changes
// data, else results.Read.
func (o *Op) Access() results.Access {
	if o.ChangesData {
		return results.Write
	}
	return results.Read
}

// Workload is a named set of operations with a default mix.
type Workload struct {
	Name        string
	Description string
	Ops         []Op
	// NoDB workloads run without a connection (their ops get a nil Querier).
	NoDB bool
	// Heavy workloads move many rows or bytes through the client per operation
	// (scans, bulk loads): handling one can hold a processor for milliseconds.
	Heavy bool
	// Class is what the workload is to the scorers: oltp, analytics or batch; ""
	// means its name.
	Class string
	// Setup creates and seeds the workload's own tables (a workload file) on
	// the node that takes writes, and prepares what its ops draw from (values
	// sampled from existing tables). nil: the workload runs on htapchaos's
	// schema (users, orders), which Setup (the package function) seeds. logf
	// receives progress lines.
	Setup func(ctx context.Context, db *sql.DB, logf func(format string, args ...any)) (SeedReport, error)
	// Audit is the table and key column its ledgered ops insert into, which the
	// durability audit reads back; nil: orders.order_id.
	Audit *AuditTable
	// Source says how another process (an agent) rebuilds this workload: a
	// builtin's name, or a workload file's text. nil: it cannot travel (a
	// workload made in Go code).
	Source *WorkloadSource
}

// WorkloadSource is where a workload comes from, enough to rebuild it in another
// process (Build).
type WorkloadSource struct {
	// Builtin names a workload of NewRegistry.
	Builtin string `json:"builtin,omitempty"`
	// File is a workload file's name (for its errors and as the base of the
	// files it names); Data is its text.
	File string `json:"file,omitempty"`
	Data []byte `json:"data,omitempty"`
	// Files are the other files the workload file read (its .sql files), by
	// the path it read them at, with their text: the rebuild reads them from
	// here, not from the disk.
	Files map[string][]byte `json:"files,omitempty"`
}

// AuditTable is where a workload's ledgered inserts land: the durability audit
// reads Column of Table back for every acknowledged id.
type AuditTable struct {
	Table  string `json:"table"`
	Column string `json:"column"`
}

// ClassOf is the class of the registered workload kind: what the scorers count
// it as (a sharded-analytics workload is analytics); an unknown kind is its own.
func ClassOf(kind string) string {
	if c := builtinClasses()[kind]; c != "" {
		return c
	}
	return kind
}

// builtinClasses are the registered workloads' classes, by name (made once: the
// scorers ask for every workload of a run).
var builtinClasses = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for _, wl := range NewRegistry().m {
		if wl.Class != "" {
			m[wl.Name] = wl.Class
		}
	}
	return m
})

// Ledgered says whether the workload has an op that records its inserts in the
// acknowledged-write ledger (Op.Ledgered): only such a workload's rows need a run
// tag of their own and a durability audit.
func (wl *Workload) Ledgered() bool {
	return slices.ContainsFunc(wl.Ops, func(o Op) bool { return o.Ledgered })
}

// Op finds an operation by name.
func (wl *Workload) Op(name string) (*Op, bool) {
	for i := range wl.Ops {
		if wl.Ops[i].Name == name {
			return &wl.Ops[i], true
		}
	}
	return nil, false
}

func (wl *Workload) opNames() string {
	names := make([]string, len(wl.Ops))
	for i, o := range wl.Ops {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}

// Registry holds workloads by name. Register panics on a duplicate: that is a
// programming error found at start-up.
type Registry struct{ m map[string]*Workload }

// NewRegistry returns the builtin workloads: oltp, analytics, batch and noop.
func NewRegistry() *Registry {
	r := &Registry{m: map[string]*Workload{}}
	r.Register(OLTP())
	r.Register(Analytics())
	r.Register(Batch())
	r.Register(ShardedAnalytics())
	r.Register(Noop())
	for name, w := range r.m {
		w.Source = &WorkloadSource{Builtin: name}
	}
	return r
}

// Build rebuilds the workload in this process: the builtin of that name, or the
// workload file parsed from its text (and its .sql files' text). Exactly one of
// Builtin and Data must be given.
func (s WorkloadSource) Build() (*Workload, error) {
	switch {
	case s.Builtin != "" && (s.File != "" || len(s.Data) > 0):
		return nil, usageErr("workload source", "both a builtin (%s) and a file (%s)", s.Builtin, s.File)
	case s.Builtin != "":
		return NewRegistry().Get(s.Builtin)
	case len(s.Data) > 0:
		files := s.Files
		if files == nil {
			files = map[string][]byte{}
		}
		return parseWorkloadFile(s.File, s.Data, files)
	}
	return nil, usageErr("workload source", "empty: neither a builtin nor a workload file")
}

// Register adds a workload. It panics on a duplicate name, and on an op that is
// ledgered but does not declare that it changes data.
func (r *Registry) Register(w *Workload) {
	if _, dup := r.m[w.Name]; dup {
		panic("loadgen: workload registered twice: " + w.Name)
	}
	if a := w.Audit; a != nil && (a.Table == "" || a.Column == "") {
		// (Any other name is quoted where it meets SQL, backticks doubled.)
		panic("loadgen: workload " + w.Name + ": Audit names no table or no column")
	}
	for _, op := range w.Ops {
		if op.Ledgered && !op.ChangesData {
			panic("loadgen: workload " + w.Name + ": op " + op.Name + " is ledgered but does not declare ChangesData")
		}
	}
	r.m[w.Name] = w
}

// Get finds a workload.
func (r *Registry) Get(name string) (*Workload, error) {
	if w, ok := r.m[name]; ok {
		return w, nil
	}
	return nil, usageErr("--workload", "unknown workload %q (known: %s)", name, strings.Join(r.Names(), ", "))
}

// Names lists the workloads, sorted.
func (r *Registry) Names() []string { return slices.Sorted(maps.Keys(r.m)) }

// Mix is a weighted choice of operations.
type Mix struct {
	ops     []*Op
	cum     []int // cumulative weights
	total   int
	weights map[string]int
}

// NewMix builds the mix: the workload's default weights, or the given weights, which
// replace them (ops not named get weight 0).
func NewMix(wl *Workload, weights map[string]int) (*Mix, error) {
	m := &Mix{weights: map[string]int{}}
	if len(weights) == 0 {
		weights = map[string]int{}
		for _, op := range wl.Ops {
			if op.Weight > 0 {
				weights[op.Name] = op.Weight
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		op, ok := wl.Op(name)
		if !ok {
			return nil, usageErr("--mix", "workload %s has no operation %q (it has: %s)", wl.Name, name, wl.opNames())
		}
		w := weights[name]
		if w <= 0 {
			return nil, usageErr("--mix", "%s=%d: weights must be positive", name, w)
		}
		if w > math.MaxInt-m.total {
			return nil, usageErr("--mix", "%s=%d: the weights add up to more than %d", name, w, math.MaxInt)
		}
		m.ops = append(m.ops, op)
		m.total += w
		m.cum = append(m.cum, m.total)
		m.weights[name] = w
	}
	if m.total == 0 {
		return nil, usageErr("--mix", "workload %s: no operation has a weight", wl.Name)
	}
	return m, nil
}

// Pick chooses an operation.
func (m *Mix) Pick(r *rand.Rand) *Op { return m.ops[m.pickIndex(r)] }

func (m *Mix) pickIndex(r *rand.Rand) int {
	if len(m.ops) == 1 {
		return 0
	}
	return sort.SearchInts(m.cum, r.IntN(m.total)+1)
}

// Ops lists the operations in the mix.
func (m *Mix) Ops() []*Op { return m.ops }

// Weights returns the weights by operation name.
func (m *Mix) Weights() map[string]int { return maps.Clone(m.weights) }

// ParseMix parses "point-read=70,insert=30" (also accepts repeated values joined by commas).
func ParseMix(specs []string) (map[string]int, error) {
	out := map[string]int{}
	for _, spec := range specs {
		for _, part := range strings.Split(spec, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, v, ok := strings.Cut(part, "=")
			if !ok {
				return nil, usageErr("--mix", "%q: want op=weight", part)
			}
			w, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return nil, usageErr("--mix", "%q: weight %q is not a whole number", part, v)
			}
			if w <= 0 {
				return nil, usageErr("--mix", "%q: weights must be positive", part)
			}
			out[strings.TrimSpace(name)] = w
		}
	}
	return out, nil
}

// IDs hands out order ids that no other writer and no earlier run uses:
// run<<40 | writer<<24 | seq. Seeded rows use ids below 1<<40.
type IDs struct{ run int64 }

// NewIDs uses the given run tag (1 .. 1<<22).
func NewIDs(run int64) *IDs { return &IDs{run: run} }

// ID builds the id of a writer's seq-th insert.
func (x *IDs) ID(writer int, seq uint64) int64 {
	return x.run<<40 | int64(writer&0xffff)<<24 | int64(seq&0xffffff)
}

// Range returns the ids this run can produce.
func (x *IDs) Range() (lo, hi int64) { return x.run << 40, (x.run+1)<<40 - 1 }

// PickRunTag chooses a run tag whose id range holds no row of orders yet (the
// builtin workloads' audited table). Tags in avoid are never picked (those of
// writers that may not have written yet, such as the load a spike disturbs).
func PickRunTag(ctx context.Context, db *sql.DB, r *rand.Rand, avoid ...int64) (int64, error) {
	return PickRunTagIn(ctx, db, r, []AuditTable{DefaultAudit}, avoid...)
}

// DefaultAudit is where the builtin workloads' ledgered inserts land.
var DefaultAudit = AuditTable{Table: "orders", Column: "order_id"}

// AuditTarget is the table and column the workload's ledgered inserts land in:
// Audit, else orders.order_id.
func (wl *Workload) AuditTarget() AuditTable {
	if wl.Audit != nil {
		return *wl.Audit
	}
	return DefaultAudit
}

// PickRunTagIn chooses a run tag whose id range holds no row yet in any of the
// tables' columns (the audited tables of a run's ledgered workloads, see
// Workload.AuditTarget). A table that does not exist yet holds none.
func PickRunTagIn(ctx context.Context, db *sql.DB, r *rand.Rand, tables []AuditTable, avoid ...int64) (int64, error) {
	for range 16 {
		tag := 1 + r.Int64N(1<<22-1)
		if slices.Contains(avoid, tag) {
			continue
		}
		lo, hi := NewIDs(tag).Range()
		used := false
		for _, t := range tables {
			var one int
			q := fmt.Sprintf("SELECT 1 FROM %s WHERE %s BETWEEN ? AND ? LIMIT 1", quoteIdent(t.Table), quoteIdent(t.Column))
			err := db.QueryRowContext(ctx, q, lo, hi).Scan(&one)
			var me *mysql.MySQLError
			switch {
			case err == nil:
				used = true
			case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146: // no such table
			default:
				return 0, fmt.Errorf("pick run tag (%s.%s): %w", t.Table, t.Column, err)
			}
		}
		if !used {
			return tag, nil
		}
	}
	return 0, fmt.Errorf("pick run tag: 16 tries found used id ranges")
}

// DefaultRoute is where a workload's operations go on a cluster whose nodes have
// these roles (testcontainers' node roles, in node order) when the user names no
// route: on primary-replica only to the primary (writes on an asynchronous
// replica would fork its data from the primary's), on a sharded cluster only to
// the aggregators (a leaf holds only its partitions), elsewhere to every node.
// why says the choice in a sentence, "" for every node.
func DefaultRoute(roles []string) (r Route, why string) {
	pick := func(role string) []int {
		var out []int
		for i, x := range roles {
			if x == role {
				out = append(out, i+1)
			}
		}
		return out
	}
	if p := pick("primary"); len(p) > 0 && len(pick("replica")) > 0 {
		return Route{Nodes: p}, fmt.Sprintf("primary-replica: sending everything to the primary (node %s); a route of your own reads from replicas", joinInts(p))
	}
	if a := pick("aggregator"); len(a) > 0 {
		return Route{Nodes: a}, fmt.Sprintf("sharded: sending everything to the aggregators (nodes %s)", joinInts(a))
	}
	r, _ = ParseRoute("all", len(roles))
	return r, ""
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }
