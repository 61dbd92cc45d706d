package examples

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/loadgen"
)

// kvKeys is how many keys KV seeds; get reads one of them.
const kvKeys = 100

// KV is a workload of our own: a key-value table it creates and seeds itself
// (Setup), a point read (get) and an insert of new keys (put) that records each
// acknowledged key in the ledger, so that the durability audit reads kv.k back.
func KV() *loadgen.Workload {
	return &loadgen.Workload{
		Name:        "kv",
		Description: "key-value reads and inserts on a table of its own (example of a workload from another module)",
		Class:       "oltp",
		Audit:       &loadgen.AuditTable{Table: "kv", Column: "k"},
		Setup:       kvSetup,
		Ops: []loadgen.Op{
			{Name: "get", Weight: 80, Run: kvGet},
			{Name: "put", Weight: 20, Run: kvPut, ChangesData: true, Ledgered: true},
		},
	}
}

func kvSetup(ctx context.Context, db *sql.DB, logf func(string, ...any)) (loadgen.SeedReport, error) {
	start := time.Now()
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS kv (k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB"); err != nil {
		return loadgen.SeedReport{}, err
	}
	q := "INSERT IGNORE INTO kv (k, v) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?),", kvKeys), ",")
	args := make([]any, 0, 2*kvKeys)
	for k := 1; k <= kvKeys; k++ {
		args = append(args, k, fmt.Sprintf("value-%d", k))
	}
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		return loadgen.SeedReport{}, err
	}
	n, _ := res.RowsAffected()
	logf("kv: %d keys seeded", n)
	return loadgen.SeedReport{Rows: map[string]int64{"kv": n}, Elapsed: time.Since(start)}, nil
}

// kvGet makes one attempt to read a seeded key.
func kvGet(ctx context.Context, q loadgen.Querier, w *loadgen.Worker) error {
	rows, err := q.QueryContext(ctx, "SELECT v FROM kv WHERE k = ?", 1+w.Rand.Int64N(kvKeys))
	if err != nil {
		return err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		found = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !found {
		return errors.New("kv: a seeded key is missing")
	}
	return nil
}

// kvPut makes one attempt to insert a new key (an id of the run's own range).
// Acknowledged: in the ledger; failed: of unknown outcome (the audit then
// accepts the row present or absent).
func kvPut(ctx context.Context, q loadgen.Querier, w *loadgen.Worker) error {
	k := w.NextID()
	_, err := q.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES (?, 'put')", k)
	if err == nil {
		w.Ack(k)
	} else {
		w.Unknown(k)
	}
	return err
}
