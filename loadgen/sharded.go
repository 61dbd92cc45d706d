package loadgen

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A sharded schema, the article's shape: users and orders sharded on user_id (so
// a join on user_id is co-located), merchants sharded on merchant_id (a join of
// orders to merchants is not), and merchants_ref, a reference table copied in full
// to every leaf. The aggregators hold MariaDB Spider tables whose partitions are
// tables on the leaves: partition pN of orders is the table orders_pN on one leaf.
//
// Every unique key of a partitioned table must contain the partition column, so
// orders' primary key is (order_id, user_id); order ids stay unique because the
// writers make them (IDs), and the audit still reads by order_id.

// Leaf is one leaf as the aggregators know it.
type Leaf struct {
	// Server is the aggregators' server entry for the leaf (CREATE SERVER name).
	Server string
	DB     *sql.DB
}

// ShardEngine is what shards the schema: MariaDB's Spider or Vitess.
type ShardEngine string

const (
	// Spider: the aggregators hold Spider tables partitioned over the leaves'
	// tables (orders_p1, ...), and join at the aggregator whatever the keys.
	Spider ShardEngine = "spider"
	// VitessEngine: vtgates route by the VSchema (VitessVSchema) over shards that
	// each hold the whole table definitions and their rows of them; a join on the
	// shard key runs on the shards.
	VitessEngine ShardEngine = "vitess"
)

// Sharded is a sharded cluster's schema layout: the aggregators clients talk to,
// the leaves that hold the partitions, and how many partitions of each sharded
// table a leaf holds.
type Sharded struct {
	// Engine is Spider when empty.
	Engine            ShardEngine
	Aggregators       []*sql.DB
	Leaves            []Leaf
	PartitionsPerLeaf int
	// ApplyVSchema, on Vitess, sets the keyspace's VSchema (vtctld's
	// ApplyVSchema). Nil: the VSchema is the operator's to set (a target).
	ApplyVSchema func(ctx context.Context, vschema string) error
}

// VitessVSchema is the sharded schema's VSchema on Vitess: users and orders on a
// hash vindex of user_id (co-located: a join on user_id runs on the shards),
// merchants on merchant_id (a join of orders to merchants runs at vtgate), and
// merchants_ref a reference table, whole on every shard.
const VitessVSchema = `{
  "sharded": true,
  "vindexes": {"hash": {"type": "hash"}},
  "tables": {
    "users": {"column_vindexes": [{"column": "user_id", "name": "hash"}]},
    "orders": {"column_vindexes": [{"column": "user_id", "name": "hash"}]},
    "merchants": {"column_vindexes": [{"column": "merchant_id", "name": "hash"}]},
    "merchants_ref": {"type": "reference"}
  }
}`

func (s Sharded) vitess() bool { return s.Engine == VitessEngine }

// partitionTable is the table holding partition p of t on its leaf.
func (s Sharded) partitionTable(t ShardedTable, p int) string {
	if s.vitess() {
		return t.Name // a Vitess shard holds its rows under the table's own name
	}
	return fmt.Sprintf("%s_p%d", t.Name, p)
}

// DefaultMerchants is the merchants seeded on a sharded schema when Data.Merchants is 0.
const DefaultMerchants = 500

// ShardedTable is one table of the sharded schema.
type ShardedTable struct {
	Name string
	// ShardKey is the partition column; "" for a reference table (a full copy on
	// every leaf, read through the first leaf's copy).
	ShardKey string
	columns  string // column list and keys, shared by the leaves and the aggregators
}

// ShardedTables are the sharded schema's tables, in creation and seeding order.
var ShardedTables = []ShardedTable{
	{Name: "users", ShardKey: "user_id", columns: usersColumns + `  PRIMARY KEY (user_id),
  KEY idx_users_status (status)`},
	{Name: "orders", ShardKey: "user_id", columns: ordersColumns + `  merchant_id BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (order_id, user_id),
  KEY idx_orders_created_at (created_at),
  KEY idx_orders_user_id (user_id),
  KEY idx_orders_merchant_id (merchant_id)`},
	{Name: "merchants", ShardKey: "merchant_id", columns: merchantsColumns},
	{Name: "merchants_ref", columns: merchantsColumns},
}

const merchantsColumns = `  merchant_id BIGINT NOT NULL,
  name VARCHAR(64) NOT NULL,
  category VARCHAR(16) NOT NULL,
  PRIMARY KEY (merchant_id)`

// Partitions is how many partitions each sharded table has.
func (s Sharded) Partitions() int { return s.PartitionsPerLeaf * len(s.Leaves) }

// PartitionLeaf is the index in Leaves of the leaf holding partition p (1-based):
// partitions go round the leaves, so leaf 1 holds p1, p(L+1), ...
func (s Sharded) PartitionLeaf(p int) int { return (p - 1) % len(s.Leaves) }

// LeafDDL is what one leaf holds: for each sharded table one InnoDB table per
// partition it holds (orders_p1, ...), and the reference tables whole.
func (s Sharded) LeafDDL(leaf int) []string {
	var out []string
	for _, t := range ShardedTables {
		if t.ShardKey == "" {
			out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n) ENGINE=InnoDB COMMENT='%s'", t.Name, t.columns, TableMark))
			continue
		}
		for p := 1; p <= s.Partitions(); p++ {
			if s.PartitionLeaf(p) == leaf {
				out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n) ENGINE=InnoDB COMMENT='%s'", s.partitionTable(t, p), t.columns, TableMark))
			}
		}
	}
	return out
}

// leafTables names the tables LeafDDL(leaf) creates.
func (s Sharded) leafTables(leaf int) []string {
	var out []string
	for _, stmt := range s.LeafDDL(leaf) {
		name, _, _ := strings.Cut(strings.TrimPrefix(stmt, "CREATE TABLE IF NOT EXISTS "), " ")
		out = append(out, name)
	}
	return out
}

// AggregatorDDL is what every aggregator holds: a Spider table per table of the
// schema, partitioned by the shard key over the leaves' partition tables, or, for
// a reference table, reading the first leaf's copy.
func (s Sharded) AggregatorDDL() []string {
	if s.vitess() {
		return nil // vtgate holds no tables: the VSchema routes to the shards'
	}
	var out []string
	for _, t := range ShardedTables {
		if t.ShardKey == "" {
			out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n) ENGINE=SPIDER COMMENT='wrapper \"mysql\", srv \"%s\", table \"%s\"'",
				t.Name, t.columns, s.Leaves[0].Server, t.Name))
			continue
		}
		parts := make([]string, s.Partitions())
		for p := 1; p <= s.Partitions(); p++ {
			parts[p-1] = fmt.Sprintf("  PARTITION p%d COMMENT='srv \"%s\", table \"%s_p%d\"'", p, s.Leaves[s.PartitionLeaf(p)].Server, t.Name, p)
		}
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n) ENGINE=SPIDER COMMENT='wrapper \"mysql\"'\nPARTITION BY KEY (%s) (\n%s\n)",
			t.Name, t.columns, t.ShardKey, strings.Join(parts, ",\n")))
	}
	return out
}

func (s Sharded) check() error {
	switch {
	case len(s.Aggregators) == 0:
		return errors.New("sharded schema: no aggregator")
	case len(s.Leaves) < 2:
		return fmt.Errorf("sharded schema: %d leaves, want at least 2", len(s.Leaves))
	case s.PartitionsPerLeaf < 1:
		return fmt.Errorf("sharded schema: %d partitions per leaf, want at least 1", s.PartitionsPerLeaf)
	case s.vitess() && s.PartitionsPerLeaf != 1:
		return fmt.Errorf("sharded schema: %d partitions per leaf, but a Vitess shard is one partition", s.PartitionsPerLeaf)
	case s.Engine != "" && s.Engine != Spider && !s.vitess():
		return fmt.Errorf("sharded schema: unknown engine %q", s.Engine)
	}
	return nil
}

// SetupSharded creates the sharded schema on both sides (the leaves' tables, then
// every aggregator's Spider tables) if missing, and seeds it through the first
// aggregator up to the requested sizes, the reference table on every leaf. Like
// Setup it can be re-run. Seeded orders belong to ShardedOrderUser(id) and
// ShardedOrderMerchant(id), so a query can name an order's shard.
func SetupSharded(ctx context.Context, s Sharded, data Data) (SeedReport, error) {
	if err := s.check(); err != nil {
		return SeedReport{}, err
	}
	data = data.withDefaults()
	if data.Merchants == 0 {
		data.Merchants = DefaultMerchants
	}
	// The leaves hold the rows: never seed a table htapchaos did not create
	// there. (An aggregator's Spider tables keep their COMMENT for Spider.)
	for i, l := range s.Leaves {
		if err := CheckOwnTables(ctx, l.DB, s.leafTables(i)...); err != nil {
			return SeedReport{}, fmt.Errorf("leaf %s: %w", l.Server, err)
		}
	}
	for i, l := range s.Leaves {
		for _, stmt := range s.LeafDDL(i) {
			if _, err := l.DB.ExecContext(ctx, stmt); err != nil {
				return SeedReport{}, fmt.Errorf("create schema on leaf %s: %w", l.Server, err)
			}
		}
	}
	for i, a := range s.Aggregators {
		for _, stmt := range s.AggregatorDDL() {
			if _, err := a.ExecContext(ctx, stmt); err != nil {
				return SeedReport{}, fmt.Errorf("create schema on aggregator %d: %w", i+1, err)
			}
		}
	}
	if s.vitess() && s.ApplyVSchema != nil {
		if err := s.ApplyVSchema(ctx, VitessVSchema); err != nil {
			return SeedReport{}, fmt.Errorf("apply the VSchema: %w", err)
		}
		if err := waitVSchema(ctx, s.Aggregators); err != nil {
			return SeedReport{}, err
		}
	}
	start := time.Now()
	var rep SeedReport
	var err error
	head := s.Aggregators[0]
	if rep.UsersAdded, err = seed(ctx, head, data, "users", data.Users, userRows); err != nil {
		return rep, err
	}
	if rep.OrdersAdded, err = seed(ctx, head, data, "orders", data.Orders, shardedOrderRows(data)); err != nil {
		return rep, err
	}
	if _, err = seed(ctx, head, data, "merchants", data.Merchants, merchantRows("merchants")); err != nil {
		return rep, err
	}
	for _, l := range s.Leaves {
		if _, err = seed(ctx, l.DB, data, "merchants_ref", data.Merchants, merchantRows("merchants_ref")); err != nil {
			return rep, fmt.Errorf("leaf %s: %w", l.Server, err)
		}
	}
	// The leaves plan their part of every query: give them statistics (see Setup).
	for i, l := range s.Leaves {
		tables := s.leafTables(i)
		if _, err := l.DB.ExecContext(ctx, "ANALYZE TABLE "+strings.Join(tables, ", ")); err != nil {
			return rep, fmt.Errorf("analyze on leaf %s: %w", l.Server, err)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// waitVSchema waits until every vtgate routes by the VSchema: a vtgate learns a
// new VSchema from the topology server a moment after it is applied. It asks for
// orders' vindex (hash on user_id).
func waitVSchema(ctx context.Context, gates []*sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, g := range gates {
		for {
			ok, err := routesOrdersByUser(ctx, g)
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("vtgate %d does not route by the VSchema after 30s (last: %v)", i+1, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// IsVtgate says whether a server is a Vitess vtgate (its version says so). A
// vtgate passes SHOW STATUS and SHOW VARIABLES to a shard: nothing they show is
// its own.
func IsVtgate(ctx context.Context, db *sql.DB) (bool, error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return false, err
	}
	return strings.Contains(version, "Vitess"), nil
}

// routesOrdersByUser says whether a vtgate has orders on the hash vindex of user_id.
func routesOrdersByUser(ctx context.Context, g *sql.DB) (bool, error) {
	rows, err := g.QueryContext(ctx, "SHOW VSCHEMA VINDEXES ON orders")
	if err != nil {
		return false, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return false, err
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return false, err
		}
		row := map[string]string{}
		for i, c := range cols {
			row[strings.ToLower(c)] = vals[i].String
		}
		if row["name"] == "hash" && row["columns"] == "user_id" {
			return true, nil
		}
	}
	return false, rows.Err()
}

// mix64 is SplitMix64's finaliser: a seeded order's owner and merchant are a
// function of its id, spread evenly and without pattern.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ShardedOrderUser is the user a seeded order of the sharded schema belongs to
// (1..users): the single-shard point read names it beside the order id.
func ShardedOrderUser(order, users int64) int64 {
	return 1 + int64(mix64(uint64(order))%uint64(max(users, 1)))
}

// ShardedOrderMerchant is the merchant of a seeded order of the sharded schema.
func ShardedOrderMerchant(order, merchants int64) int64 {
	return 1 + int64(mix64(uint64(order)^0x5bd1e995)%uint64(max(merchants, 1)))
}

func shardedOrderRows(d Data) rowsFunc {
	return func(b *strings.Builder, args *[]any, lo, hi int64) {
		b.WriteString("INSERT IGNORE INTO orders (order_id, user_id, merchant_id, amount, status, created_at) VALUES ")
		now := time.Now().UTC()
		for id := lo; id <= hi; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?)")
			h := mix64(uint64(id) ^ 0x2545f4914f6cdd1d)
			age := time.Duration(h % uint64(d.Spread))
			*args = append(*args, id, ShardedOrderUser(id, d.Users), ShardedOrderMerchant(id, d.Merchants),
				float64(h>>40%100000)/100, orderStatuses[h>>20%uint64(len(orderStatuses))], now.Add(-age))
		}
	}
}

var merchantCategories = []string{"grocery", "travel", "fashion", "electronics", "games", "books", "health", "home"}

func merchantRows(table string) rowsFunc {
	return func(b *strings.Builder, args *[]any, lo, hi int64) {
		b.WriteString("INSERT IGNORE INTO " + table + " (merchant_id, name, category) VALUES ")
		for id := lo; id <= hi; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?)")
			*args = append(*args, id, fmt.Sprintf("merchant %d", id), merchantCategories[id%int64(len(merchantCategories))])
		}
	}
}

// PartitionRows is the row count of one partition of a sharded table on its leaf.
type PartitionRows struct {
	Table     string `json:"table"`
	Partition int    `json:"partition"`
	Leaf      string `json:"leaf"`
	Rows      int64  `json:"rows"`
}

// ShardRows counts the rows of every partition of every sharded table, on the
// leaves themselves (exact counts, not the optimizer's estimates): the skew.
func ShardRows(ctx context.Context, s Sharded) ([]PartitionRows, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []PartitionRows
	for _, t := range ShardedTables {
		if t.ShardKey == "" {
			continue
		}
		for p := 1; p <= s.Partitions(); p++ {
			l := s.Leaves[s.PartitionLeaf(p)]
			r := PartitionRows{Table: t.Name, Partition: p, Leaf: l.Server}
			name := s.partitionTable(t, p)
			if err := l.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+name).Scan(&r.Rows); err != nil {
				return out, fmt.Errorf("count %s on leaf %s: %w", name, l.Server, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Skew is the largest partition's rows over the mean partition's, per table: 1
// is even.
func Skew(rows []PartitionRows) map[string]float64 {
	sum, top, n := map[string]int64{}, map[string]int64{}, map[string]int{}
	for _, r := range rows {
		sum[r.Table] += r.Rows
		top[r.Table] = max(top[r.Table], r.Rows)
		n[r.Table]++
	}
	out := map[string]float64{}
	for t, s := range sum {
		if s > 0 {
			out[t] = float64(top[t]) * float64(n[t]) / float64(s)
		}
	}
	return out
}

// batchedJoins is MariaDB's batched key access, set for one statement: the
// aggregator looks the inner side up in batches (multi-range reads) instead of a
// row at a time. Spider sends each batch to the leaves as one query.
const batchedJoins = "SET STATEMENT join_cache_level=8, optimizer_switch='mrr=on,mrr_sort_keys=on,join_cache_bka=on' FOR "

// The sharded analytics queries, one per shape. Each op runs its join strategy for
// its own statement only (SET STATEMENT), so ops sharing a connection never
// inherit another's. The joins drive from orders (STRAIGHT_JOIN): the
// aggregator pulls every order from the leaves and looks the other side up, a row
// at a time or, with batched key access, in batches. Left to the optimizer, the
// join order follows Spider's row estimates, which change as its statistics
// refresh, and the same query would move several times more or less from one
// run to the next.
const (
	qPushedAggregate = "SELECT COUNT(*), SUM(amount) FROM orders"
	qHighCardGroupBy = "SELECT user_id, COUNT(*), SUM(amount) FROM orders GROUP BY user_id"
	qColocatedJoin   = `SELECT STRAIGHT_JOIN o.status, COUNT(*), SUM(o.amount) FROM orders o JOIN users u ON u.user_id = o.user_id
WHERE u.status = 'active' GROUP BY o.status`
	qNonColocatedJoin = `SELECT STRAIGHT_JOIN m.category, COUNT(*), SUM(o.amount) FROM orders o JOIN merchants m ON m.merchant_id = o.merchant_id
GROUP BY m.category`
	qReferenceJoin = `SELECT STRAIGHT_JOIN m.category, COUNT(*), SUM(o.amount) FROM orders o JOIN merchants_ref m ON m.merchant_id = o.merchant_id
GROUP BY m.category`
	// The default strategy, named so that a connection's earlier settings never leak in.
	defaultJoins = "SET STATEMENT join_cache_level=2, optimizer_switch='join_cache_bka=off' FOR "
)

// shardedQueries are the sharded analytics ops' statements, by op.
var shardedQueries = map[string]string{
	"pushed-aggregate":      qPushedAggregate,
	"high-card-groupby":     qHighCardGroupBy,
	"colocated-join":        defaultJoins + qColocatedJoin,
	"noncolocated-join":     defaultJoins + qNonColocatedJoin,
	"reference-join":        defaultJoins + qReferenceJoin,
	"colocated-join-bka":    batchedJoins + qColocatedJoin,
	"noncolocated-join-bka": batchedJoins + qNonColocatedJoin,
}

// vitessQueries are the same shapes as vtgate takes them: it plans the join
// order itself and has no batched key access (the -bka ops run their plain
// twins' statements there).
var vitessQueries = map[string]string{
	"pushed-aggregate":      qPushedAggregate,
	"high-card-groupby":     qHighCardGroupBy,
	"colocated-join":        vitessJoin(qColocatedJoin),
	"noncolocated-join":     vitessJoin(qNonColocatedJoin),
	"reference-join":        vitessJoin(qReferenceJoin),
	"colocated-join-bka":    vitessJoin(qColocatedJoin),
	"noncolocated-join-bka": vitessJoin(qNonColocatedJoin),
}

func vitessJoin(q string) string { return strings.Replace(q, "SELECT STRAIGHT_JOIN ", "SELECT ", 1) }

// ShardedQuery is the statement a sharded-analytics op runs on Spider ("" for
// no such op).
func ShardedQuery(op string) string { return ShardedQueryOn(Spider, op) }

// ShardedQueryOn is the statement a sharded-analytics op runs on the engine.
func ShardedQueryOn(e ShardEngine, op string) string {
	if e == VitessEngine {
		return vitessQueries[op]
	}
	return shardedQueries[op]
}

// ShardedOps are the sharded-analytics ops, in the workload's order.
func ShardedOps() []string {
	var out []string
	for _, o := range ShardedAnalytics().Ops {
		out = append(out, o.Name)
	}
	return out
}

// QueryPlan is how vtgate plans one sharded-analytics op (VEXPLAIN PLAN).
type QueryPlan struct {
	// Shape is "join at vtgate" when a Join operator runs on vtgate, else
	// "pushed down": every shard runs the query's join and vtgate merges.
	Shape string `json:"shape"`
	// Routes are the plan's Route operators by variant (Scatter, EqualUnique, ...).
	Routes map[string]int `json:"routes"`
	// Plan is the plan as vtgate printed it (JSON).
	Plan json.RawMessage `json:"plan"`
}

// Plan shapes.
const (
	ShapeJoinAtGate = "join at vtgate"
	ShapePushedDown = "pushed down"
)

// VitessPlans asks a vtgate for the plan of every sharded-analytics op.
func VitessPlans(ctx context.Context, gate *sql.DB) (map[string]QueryPlan, error) {
	out := map[string]QueryPlan{}
	for _, op := range ShardedOps() {
		var plan string
		if err := gate.QueryRowContext(ctx, "VEXPLAIN PLAN "+vitessQueries[op]).Scan(&plan); err != nil {
			return out, fmt.Errorf("VEXPLAIN PLAN of %s: %w", op, err)
		}
		p, err := ParsePlan(plan)
		if err != nil {
			return out, fmt.Errorf("plan of %s: %w", op, err)
		}
		out[op] = p
	}
	return out, nil
}

// ParsePlan reads a VEXPLAIN PLAN result.
func ParsePlan(plan string) (QueryPlan, error) {
	type node struct {
		OperatorType string `json:"OperatorType"`
		Variant      string `json:"Variant"`
		Inputs       []node `json:"Inputs"`
	}
	var root node
	if err := json.Unmarshal([]byte(plan), &root); err != nil {
		return QueryPlan{}, fmt.Errorf("not a vtgate plan: %w", err)
	}
	p := QueryPlan{Shape: ShapePushedDown, Routes: map[string]int{}, Plan: json.RawMessage(plan)}
	var walk func(n node)
	walk = func(n node) {
		switch n.OperatorType {
		case "Join", "HashJoin":
			p.Shape = ShapeJoinAtGate
		case "Route":
			p.Routes[n.Variant]++
		}
		for _, in := range n.Inputs {
			walk(in)
		}
	}
	walk(root)
	if len(p.Routes) == 0 {
		return p, errors.New("no Route operator in the plan")
	}
	return p, nil
}

// ShardedAnalytics is the analytical workload of the sharded schema: one op per
// query shape, so that each shape's data movement can be measured on its own
// (run one op per phase). The joins come with the default join strategy and with
// batched key access (the -bka ops).
func ShardedAnalytics() *Workload {
	op := func(name string, weight int) Op {
		return Op{Name: name, Memory: true, Weight: weight, Run: func(ctx context.Context, db Querier, w *Worker) error {
			_, err := drain(ctx, db, ShardedQueryOn(w.Params.ShardEngine, name))
			return err
		}}
	}
	return &Workload{
		Name:        "sharded-analytics",
		Heavy:       true,
		Class:       "analytics",
		Description: "analytics on the sharded schema, one op per shape: pushed-down aggregate, high-cardinality GROUP BY, co-located, non-co-located and reference-table joins (with and without batched key access)",
		Ops: []Op{
			op("pushed-aggregate", 1), op("high-card-groupby", 1), op("colocated-join", 1), op("noncolocated-join", 1),
			op("reference-join", 0), op("colocated-join-bka", 0), op("noncolocated-join-bka", 0),
		},
	}
}

// shardPointRead reads one seeded order by (user_id, order_id): on the sharded
// schema the user names the shard, so one leaf answers (the scatter point-read
// asks every leaf). The user is the order's seeded owner (ShardedOrderUser); on
// another schema the read finds nothing.
func shardPointRead(ctx context.Context, q Querier, w *Worker) error {
	var (
		id, user      int64
		amount        float64
		status, ctime string
	)
	order := w.RandomOrder()
	rows, err := q.QueryContext(ctx, "SELECT order_id, user_id, amount, status, created_at FROM orders WHERE user_id = ? AND order_id = ?",
		ShardedOrderUser(order, w.Params.Data.Users), order)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errNotOwner
	}
	if err := rows.Scan(&id, &user, &amount, &status, &ctime); err != nil {
		return err
	}
	return rows.Close()
}

// errNotOwner: a seeded order was not found under the user the sharded seeding
// gives it, so the read measured nothing.
var errNotOwner = errors.New("shard-point-read: the order is not under its seeded owner: the sharded schema was seeded with another user count than this run's (seed it with the same --users)")
