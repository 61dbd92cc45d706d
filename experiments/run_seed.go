package experiments

import (
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
)

// seed is the seed stage: it seeds htapchaos's schema on the node that takes
// writes (on a sharded cluster, over the leaves) when the run needs it, then each
// workload file's own schema (Workload.Setup), records the data's size and
// layout in run.json, waits for every node to have it, and picks the run's tag
// (the id range of the rows the load inserts, free in every audited table).
func (r *runState) seed() error {
	ctx := r.ctx
	r.data = loadgen.Data{Users: r.spec.Data.Users, Orders: r.spec.Data.Orders, Merchants: r.spec.Data.Merchants}
	db, err := sql.Open("mysql", r.nodes[0].dsn)
	if err != nil {
		return err
	}
	r.db = db
	r.later(db.Close)
	layout, closeLayout, err := shardedLayoutOf(r.nodes, r.hc)
	if err != nil {
		return err
	}
	r.layout = layout
	r.later(func() error { closeLayout(); return nil })
	own := r.ownSchemas()
	if layout != nil && len(own) > 0 {
		return &UsageError{Field: "experiment", Msg: fmt.Sprintf("%s: workload %s has a schema of its own, which does not run on a sharded cluster: its tables would need a sharding of their own", r.spec.File(), own[0].Name)}
	}
	builtin := r.spec.needsBuiltinSchema(r.regs.workloads, r.regs.faults)
	r.builtinSeeded = builtin
	if builtin {
		if err := r.seedBuiltin(); err != nil {
			return err
		}
	}
	for _, wl := range own {
		r.logf("seeding workload %s's own schema", wl.Name)
		rep, err := wl.Setup(ctx, db, r.logf)
		if err != nil {
			return fmt.Errorf("seed %s: %w", wl.Name, err)
		}
		if n := rep.Added(); n > 0 {
			r.logf("seeded %d rows of %s (%.0f rows/s)", n, wl.Name, rep.RowsPerSecond())
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&r.rf.ServerVersion); err != nil {
		r.logf("server version: %v", err) // a figure for the record, not a reason to stop
	}
	if layout != nil {
		r.recordLayout()
	} else {
		r.rf.DataBytes = dataSize(ctx, db, r.logf)
	}
	if err := loadgen.WaitSettled(ctx, r.targets, 5*time.Minute); err != nil {
		return fmt.Errorf("wait for the nodes to have the data: %w", err)
	}
	var tables []loadgen.AuditTable
	if builtin {
		tables = append(tables, loadgen.DefaultAudit)
	}
	if t, ok := r.auditTable(); ok && !slices.Contains(tables, t) {
		tables = append(tables, t)
	}
	r.runTag, err = loadgen.PickRunTagIn(ctx, db, rand.New(rand.NewPCG(r.o.Seed, 1)), tables)
	return err
}

// seedBuiltin seeds htapchaos's users and orders (and merchants, sharded).
func (r *runState) seedBuiltin() error {
	var rep loadgen.SeedReport
	var err error
	if r.layout != nil {
		r.logf("seeding the sharded schema over %d leaves: %d users and %d orders", len(r.layout.Leaves), r.data.Users, r.data.Orders)
		rep, err = loadgen.SetupSharded(r.ctx, *r.layout, r.data)
	} else {
		r.logf("seeding %d users and %d orders", r.data.Users, r.data.Orders)
		rep, err = loadgen.Setup(r.ctx, r.db, loadgen.MariaDB, r.data)
	}
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if rep.UsersAdded+rep.OrdersAdded > 0 {
		r.logf("seeded %d users and %d orders (%.0f rows/s)", rep.UsersAdded, rep.OrdersAdded, rep.RowsPerSecond())
	}
	return nil
}

// ownSchemas are the run's workloads that bring a schema of their own (workload
// files), each once.
func (r *runState) ownSchemas() []*loadgen.Workload { return r.spec.ownSchemas(r.regs.workloads) }

// auditTable is where the load's acknowledged inserts land: the audited table
// of the workloads whose mix has a ledgered op (the spec allows one), ok false
// when none has.
func (r *runState) auditTable() (t loadgen.AuditTable, ok bool) {
	for i, w := range r.spec.Workloads {
		wl, err := r.spec.workload(i, r.regs.workloads)
		if err != nil {
			continue
		}
		if mix, err := loadgen.NewMix(wl, w.Mix); err == nil && slices.ContainsFunc(mix.Ops(), func(o *loadgen.Op) bool { return o.Ledgered }) {
			return wl.AuditTarget(), true
		}
	}
	return loadgen.DefaultAudit, false
}

// recordLayout puts the sharded layout after seeding in run.json: the data's size
// on the leaves, the rows per partition, the engine and its settings or plans.
func (r *runState) recordLayout() {
	ctx, layout, rf := r.ctx, r.layout, r.rf
	var err error
	// The data lives on the leaves; the aggregators' Spider tables hold none.
	for _, l := range layout.Leaves {
		rf.DataBytes += dataSize(ctx, l.DB, r.logf)
	}
	if rf.Shards, err = loadgen.ShardRows(ctx, *layout); err != nil {
		r.logf("rows per partition: %v", err)
	}
	rf.ShardEngine = shardEngine(layout)
	if layout.Engine == loadgen.VitessEngine {
		// vtgate advertises a MySQL version of its own: name the shards' server too.
		var shard string
		if err := layout.Leaves[0].DB.QueryRowContext(ctx, "SELECT VERSION()").Scan(&shard); err == nil {
			rf.ServerVersion += " over " + shard
		}
		if r.hc != nil {
			if rf.VSchema, err = r.hc.VSchema(ctx); err != nil {
				r.logf("vschema: %v", err)
			}
		}
		if rf.Plans, err = loadgen.VitessPlans(ctx, layout.Aggregators[0]); err != nil {
			r.logf("vtgate plans: %v", err)
		}
		for _, op := range slices.Sorted(maps.Keys(rf.Plans)) {
			r.logf("vtgate plan of %s: %s", op, rf.Plans[op].Shape)
		}
	} else if rf.Spider, err = SpiderSettings(ctx, layout.Aggregators[0]); err != nil {
		r.logf("spider settings: %v", err)
	}
	r.logf("rows per partition: skew %s", skewText(loadgen.Skew(rf.Shards)))
}
