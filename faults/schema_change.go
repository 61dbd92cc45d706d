package faults

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/internal/safego"
	"github.com/htapchaos/htapchaos/loadgen"
)

// What schema-change adds. The names are fixed, so that a run that died before it
// could drop them is recognised by the next one (which refuses to start until they
// are gone, rather than drop what it did not add).
const (
	schemaColumn = "htapchaos_sc"
	schemaIndex  = "htapchaos_sc_idx"
)

// The schema-change variants.
const (
	variantAddNullable = "add-nullable"
	variantAddNotNull  = "add-not-null-default"
	variantAddIndex    = "add-index"
)

var schemaVariants = []string{variantAddNullable, variantAddNotNull, variantAddIndex}

// schemaTableRE is a table name schema-change puts into its statements (quoted).
var schemaTableRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// Measurements of schema-change. The ALTER's start and end are Unix seconds (the
// note has them in RFC 3339), so that a consumer can find the writes it stalled.
const (
	MeasureTableRows     = "table rows"     // the altered table's rows before the ALTER, the server's estimate
	MeasureTableSize     = "table size"     // its bytes, data and indexes
	MeasureAlterStart    = "alter start"    // unix-s
	MeasureAlterEnd      = "alter end"      // unix-s; absent while it runs
	MeasureAlterDuration = "alter duration" // s; the note has the variant, method, algorithm and outcome
)

// schemaChangeKind declares schema-change.
func schemaChangeKind() *Kind {
	return &Kind{
		Name: "schema-change",
		Description: "ALTER TABLE under load: add-nullable (instant), add-not-null-default (ALGORITHM=COPY rebuild) " +
			"or add-index; on recover, wait for it to finish and drop what it added",
		Class:    ClassSchema,
		Measures: []string{MeasureTableRows, MeasureTableSize, MeasureAlterStart, MeasureAlterEnd, MeasureAlterDuration},
		Params: []ParamSpec{
			{Name: "variant", Type: String, Default: variantAddNullable, Help: "add-nullable (ADD COLUMN ... NULL, ALGORITHM=INSTANT where the server has it), " +
				"add-not-null-default (ADD COLUMN ... NOT NULL DEFAULT 0, ALGORITHM=COPY: a rebuild that blocks writes), add-index (ADD INDEX, the server's default algorithm)"},
			{Name: "table", Type: String, Default: "orders", Help: "the table to alter, in the database the node's DSN names"},
			{Name: "method", Type: String, Default: "TOI", Help: "Galera online schema upgrade method: TOI (total order: every node runs it, the cluster waits) " +
				"or RSU (this node only, desynced while it runs; Galera nodes only)"},
		},
		Needs:    capability[SQLNode](),
		Validate: func(p Params) error { return newSchemaChange(p).err },
		New:      func(p Params) Fault { return newSchemaChange(p) },
	}
}

// schemaChange runs one ALTER TABLE on one node, on a connection of its own, and
// measures how long it ran. Recover waits for it to finish (a cancelled run, or the
// recovery deadline, kills it instead: KILL QUERY) and drops what it added, on the
// same node with the same method: with TOI the drop replicates like the ALTER did,
// with RSU it stays on the node, where the ALTER stayed.
type schemaChange struct {
	variant, table, method string
	err                    error // bad parameters: Validate (at Parse) and Setup return it

	// Set by Setup.
	node      Node
	dsn       string
	ctl       *sql.DB // checks, KILL QUERY, the drop
	galera    bool
	alterSQL  string
	dropSQL   string
	what      string // "column htapchaos_sc", "index htapchaos_sc_idx (amount)"
	algorithm string

	// Set by Inject.
	runDone     <-chan struct{} // the run's context: cancelled means kill, do not wait
	alterDB     *sql.DB
	connID      int64
	cancelAlter context.CancelFunc
	done        chan struct{} // closed when the ALTER returned

	mu         sync.Mutex
	ms         []Measurement // from Setup
	start, end time.Time
	alterErr   error
	killed     string // why Recover or Cleanup killed the ALTER

	// A sharded cluster's change (schema_sharded.go): the target aggregator's
	// fault runs parts, one ALTER each, and current is the one running. part
	// marks a part; spider a part on an aggregator's Spider table.
	parts        []schemaPart
	current      int
	part, spider bool
}

func newSchemaChange(p Params) *schemaChange {
	f := &schemaChange{
		variant: strings.ToLower(strings.TrimSpace(p["variant"])),
		table:   strings.TrimSpace(p["table"]),
		method:  strings.ToUpper(strings.TrimSpace(p["method"])),
	}
	var errs []error
	if !slices.Contains(schemaVariants, f.variant) {
		errs = append(errs, usageErr("--param", "variant=%s: unknown variant (known: %s)", p["variant"], strings.Join(schemaVariants, ", ")))
	}
	if !schemaTableRE.MatchString(f.table) {
		errs = append(errs, usageErr("--param", "table=%s: want a table name of 1-64 letters, digits, _ and $", p["table"]))
	}
	if f.method != "TOI" && f.method != "RSU" {
		errs = append(errs, usageErr("--param", "method=%s: want TOI or RSU", p["method"]))
	}
	f.err = errors.Join(errs...)
	return f
}

// Setup checks the parameters, that the node can run the ALTER (RSU only on Galera),
// that the table exists (its size becomes a measurement), and that what the ALTER
// adds is not there yet.
func (f *schemaChange) Setup(ctx context.Context, env *Env) error {
	if f.err != nil {
		return f.err
	}
	if len(env.Targets) != 1 {
		return usageErr("--node", "schema-change runs one ALTER TABLE on one node (with TOI it reaches every Galera node from there): choose one node, not %d", len(env.Targets))
	}
	f.node = env.Targets[0]
	switch {
	case f.part:
	case f.node.Role() == "aggregator":
		return f.setupSharded(ctx, env)
	case f.node.Role() == "leaf":
		// One leaf altered alone leaves its partitions unlike the others' and
		// the aggregators' definitions behind.
		return usageErr("--node", "%s is a leaf of a sharded cluster: target an aggregator, and schema-change alters every leaf, then every aggregator", f.node.Label())
	}
	sn, ok := f.node.(SQLNode)
	if !ok {
		return fmt.Errorf("%s gives no SQL connection", f.node.Label())
	}
	f.dsn = sn.DSN()
	db, err := sql.Open("mysql", f.dsn)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", f.node.Label(), loadgen.Redact(f.dsn), err)
	}
	db.SetMaxOpenConns(2)
	f.ctl = db

	var version string
	var schema sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), DATABASE()").Scan(&version, &schema); err != nil {
		return fmt.Errorf("%s: %w", f.node.Label(), err)
	}
	if !schema.Valid {
		return usageErr("--node", "%s: its DSN names no database, so table %s cannot be found", f.node.Label(), f.table)
	}
	if f.galera, err = schemaWsrepOn(ctx, db); err != nil {
		return fmt.Errorf("%s: %w", f.node.Label(), err)
	}
	if f.method == "RSU" && !f.galera {
		return usageErr("--param", "method=RSU: %s is not a Galera node (wsrep_on is not ON); RSU desyncs one Galera node and exists only there: use method=TOI", f.node.Label())
	}

	var rows, size sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'`, f.table).Scan(&rows, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return usageErr("--param", "table=%s: no such table in database %s on %s", f.table, schema.String, f.node.Label())
	}
	if err != nil {
		return fmt.Errorf("%s: table %s: %w", f.node.Label(), f.table, err)
	}

	if err := f.statements(ctx, version); err != nil {
		return err
	}
	present, err := f.present(ctx)
	if err != nil {
		return err
	}
	if present {
		return fmt.Errorf("%s: table %s already has %s, left by an earlier run that did not recover: once no ALTER on it still runs, drop it (%s) and run again",
			f.node.Label(), f.table, f.what, f.dropSQL)
	}
	f.mu.Lock()
	f.ms = append(f.ms,
		Measurement{Name: MeasureTableRows, Node: f.node.Label(), Value: float64(rows.Int64), Unit: "rows", Note: f.table + ", the server's estimate"},
		Measurement{Name: MeasureTableSize, Node: f.node.Label(), Value: float64(size.Int64), Unit: "bytes", Note: f.table + ", data and indexes"})
	f.mu.Unlock()
	return nil
}

// schemaWsrepOn says whether the server is a Galera node.
func schemaWsrepOn(ctx context.Context, db *sql.DB) (bool, error) {
	var name, value string
	err := db.QueryRowContext(ctx, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'").Scan(&name, &value)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return strings.EqualFold(value, "ON"), err
}

// statements builds the ALTER and the drop that undoes it.
func (f *schemaChange) statements(ctx context.Context, version string) error {
	t := schemaQuote(f.table)
	col := schemaQuote(schemaColumn)
	if f.spider && f.variant != variantAddIndex {
		// A Spider table holds no rows: its ALTER changes the definition only,
		// and forcing a copy would copy the leaves' rows through it.
		f.alterSQL = "ALTER TABLE " + t + " ADD COLUMN " + col + " INT NULL"
		if f.variant == variantAddNotNull {
			f.alterSQL = "ALTER TABLE " + t + " ADD COLUMN " + col + " INT NOT NULL DEFAULT 0"
		}
		f.algorithm = "definition only (Spider)"
		f.dropSQL = "ALTER TABLE " + t + " DROP COLUMN " + col
		f.what = "column " + schemaColumn
		return nil
	}
	switch f.variant {
	case variantAddNullable:
		f.alterSQL = "ALTER TABLE " + t + " ADD COLUMN " + col + " INT NULL"
		if schemaInstantAddColumn(version) {
			f.alterSQL += ", ALGORITHM=INSTANT"
			f.algorithm = "INSTANT"
		} else {
			f.algorithm = "server default (no instant ADD COLUMN in " + version + ")"
		}
	case variantAddNotNull:
		// MariaDB 10.3+ adds even a NOT NULL column with a default instantly: the
		// rebuild a server without that would do is forced.
		f.alterSQL = "ALTER TABLE " + t + " ADD COLUMN " + col + " INT NOT NULL DEFAULT 0, ALGORITHM=COPY, LOCK=SHARED"
		f.algorithm = "COPY"
	case variantAddIndex:
		c, err := f.indexColumn(ctx)
		if err != nil {
			return err
		}
		f.alterSQL = "ALTER TABLE " + t + " ADD INDEX " + schemaQuote(schemaIndex) + " (" + schemaQuote(c) + ")"
		f.dropSQL = "ALTER TABLE " + t + " DROP INDEX " + schemaQuote(schemaIndex)
		f.what = "index " + schemaIndex + " (" + c + ")"
		f.algorithm = "server default"
		return nil
	}
	f.dropSQL = "ALTER TABLE " + t + " DROP COLUMN " + col
	f.what = "column " + schemaColumn
	return nil
}

// schemaInstantAddColumn says whether a server version has ALGORITHM=INSTANT for ADD
// COLUMN: MariaDB from 10.3, MySQL from 8.0.12.
func schemaInstantAddColumn(version string) bool {
	var major, minor, patch int
	_, _ = fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch)
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return major > 10 || major == 10 && minor >= 3
	}
	return major > 8 || major == 8 && (minor > 0 || patch >= 12)
}

// indexColumn picks the column add-index indexes: the first one of a plain type that
// no index starts with (orders: amount), or else the first of a plain type.
func (f *schemaChange) indexColumn(ctx context.Context) (string, error) {
	rows, err := f.ctl.QueryContext(ctx, `SELECT c.COLUMN_NAME,
  EXISTS (SELECT 1 FROM information_schema.STATISTICS s WHERE s.TABLE_SCHEMA = c.TABLE_SCHEMA
    AND s.TABLE_NAME = c.TABLE_NAME AND s.COLUMN_NAME = c.COLUMN_NAME AND s.SEQ_IN_INDEX = 1)
FROM information_schema.COLUMNS c
WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = ? AND c.COLUMN_NAME <> ?
  AND c.DATA_TYPE IN ('tinyint','smallint','mediumint','int','bigint','decimal','float','double',
    'date','datetime','timestamp','time','year','char','varchar','binary','varbinary')
ORDER BY c.ORDINAL_POSITION`, f.table, schemaColumn)
	if err != nil {
		return "", fmt.Errorf("%s: columns of %s: %w", f.node.Label(), f.table, err)
	}
	defer rows.Close()
	var first, free string
	for rows.Next() {
		var name string
		var indexed bool
		if err := rows.Scan(&name, &indexed); err != nil {
			return "", err
		}
		if first == "" {
			first = name
		}
		if !indexed && free == "" {
			free = name
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	switch {
	case free != "":
		return free, nil
	case first != "":
		return first, nil
	}
	return "", usageErr("--param", "variant=add-index: table %s has no column of a plain type (number, date, short string) to index", f.table)
}

func schemaQuote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// present says whether what the ALTER adds is on the node.
func (f *schemaChange) present(ctx context.Context) (bool, error) {
	if len(f.parts) > 0 {
		return f.presentSharded(ctx)
	}
	q := "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?"
	name := schemaColumn
	if f.variant == variantAddIndex {
		q = "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?"
		name = schemaIndex
	}
	var n int
	if err := f.ctl.QueryRowContext(ctx, q, f.table, name).Scan(&n); err != nil {
		return false, fmt.Errorf("%s: is %s there: %w", f.node.Label(), f.what, err)
	}
	return n > 0, nil
}

// session prepares a connection for DDL: the Galera method, and a metadata-lock wait
// that ends with ctx.
func (f *schemaChange) session(ctx context.Context, c *sql.Conn, lockWait bool) error {
	if f.galera {
		if _, err := c.ExecContext(ctx, "SET SESSION wsrep_OSU_method = '"+f.method+"'"); err != nil {
			return fmt.Errorf("set wsrep_OSU_method=%s: %w", f.method, err)
		}
	}
	if d, ok := ctx.Deadline(); ok && lockWait {
		secs := max(1, int(time.Until(d).Seconds()))
		if _, err := c.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+strconv.Itoa(secs)); err != nil {
			return err
		}
	}
	return nil
}

// Inject starts the ALTER on a connection of its own, in the background. The
// connection has no read timeout: an ALTER runs as long as it runs, and Recover
// bounds it (KILL QUERY).
func (f *schemaChange) Inject(ctx context.Context, env *Env) error {
	if len(f.parts) > 0 {
		return f.injectSharded(ctx)
	}
	f.runDone = ctx.Done()
	cfg, err := mysql.ParseDSN(f.dsn)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", f.node.Label(), loadgen.Redact(f.dsn), err)
	}
	cfg.ReadTimeout = 0
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	f.alterDB = sql.OpenDB(connector)
	f.alterDB.SetMaxOpenConns(1)
	conn, err := f.alterDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", f.node.Label(), err)
	}
	if err := f.session(ctx, conn, false); err != nil {
		conn.Close()
		return fmt.Errorf("%s: %w", f.node.Label(), err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&f.connID); err != nil {
		conn.Close()
		return fmt.Errorf("%s: %w", f.node.Label(), err)
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancelAlter = cancel
	f.done = make(chan struct{})
	f.mu.Lock()
	f.start = time.Now()
	f.mu.Unlock()
	go func() {
		defer close(f.done)
		defer conn.Close()
		defer safego.Recover("schema-change on "+f.node.Label(), func(err error) {
			f.mu.Lock()
			f.end, f.alterErr = time.Now(), err
			f.mu.Unlock()
		})
		_, err := conn.ExecContext(actx, f.alterSQL)
		f.mu.Lock()
		f.end, f.alterErr = time.Now(), err
		f.mu.Unlock()
	}()
	return nil
}

// finished says whether the ALTER returned, and its error.
func (f *schemaChange) finished() (bool, error) {
	select {
	case <-f.done:
		f.mu.Lock()
		defer f.mu.Unlock()
		return true, f.alterErr
	default:
		return false, nil
	}
}

// WaitForEffect returns once the ALTER runs on the server (in the process list,
// executing or waiting for its metadata lock) or has finished: an instant ALTER
// may be done before it is seen. An ALTER that failed did not take effect.
func (f *schemaChange) WaitForEffect(ctx context.Context, env *Env) error {
	if len(f.parts) > 0 {
		// The first leaf's ALTER runs (injectSharded returned once it started).
		return f.parts[0].f.WaitForEffect(ctx, f.parts[0].env)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if done, err := f.finished(); done {
			if err != nil {
				return fmt.Errorf("%s: %s: %w", f.node.Label(), f.alterSQL, err)
			}
			return nil
		}
		running, err := f.running(ctx)
		if running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ALTER not seen running on %s: %w (last: %v)", f.node.Label(), context.Cause(ctx), err)
		case <-f.done:
		case <-tick.C:
		}
	}
}

// running says whether the ALTER's connection runs a statement on the server.
func (f *schemaChange) running(ctx context.Context) (bool, error) {
	var n int
	err := f.ctl.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND COMMAND = 'Query' AND INFO IS NOT NULL", f.connID).Scan(&n)
	return n > 0, err
}

// Recover waits for the ALTER to finish and drops what it added. A cancelled run,
// or the end of ctx, kills the ALTER instead of waiting.
func (f *schemaChange) Recover(ctx context.Context, env *Env) error {
	if f.done != nil {
		if done, _ := f.finished(); !done {
			select {
			case <-f.done:
			case <-f.runDone:
				if err := f.kill("the run was cancelled"); err != nil {
					return err
				}
			case <-ctx.Done():
				err := f.kill("the ALTER outlasted the recovery time")
				return errors.Join(fmt.Errorf("%s: the ALTER did not finish within the recovery time: %w", f.node.Label(), context.Cause(ctx)), err)
			}
		}
	}
	return f.drop(ctx)
}

// kill ends the ALTER with KILL QUERY from another connection and waits (30 s at
// most) for it to return; past that, the client gives up on its connection.
func (f *schemaChange) kill(why string) error {
	if len(f.parts) > 0 {
		return f.killSharded(why)
	}
	if done, _ := f.finished(); done {
		return nil
	}
	f.mu.Lock()
	f.killed = why
	f.mu.Unlock()
	kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := f.ctl.ExecContext(kctx, "KILL QUERY "+strconv.FormatInt(f.connID, 10))
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1094 { // unknown thread: it just ended
		err = nil
	}
	select {
	case <-f.done:
		return nil
	case <-kctx.Done():
		f.cancelAlter()
		return errors.Join(fmt.Errorf("%s: the ALTER (connection %d) still runs 30s after KILL QUERY", f.node.Label(), f.connID), err)
	}
}

// drop removes what the ALTER added, if it is there, with the ALTER's method.
func (f *schemaChange) drop(ctx context.Context) error {
	if len(f.parts) > 0 {
		return f.dropSharded(ctx)
	}
	present, err := f.present(ctx)
	if err != nil || !present {
		return err
	}
	c, err := f.ctl.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", f.node.Label(), err)
	}
	defer c.Close()
	if err := f.session(ctx, c, true); err != nil {
		return fmt.Errorf("%s: %w", f.node.Label(), err)
	}
	if _, err := c.ExecContext(ctx, f.dropSQL); err != nil {
		return fmt.Errorf("%s: %s: %w", f.node.Label(), f.dropSQL, err)
	}
	return nil
}

// WaitForRecovery checks that the ALTER ended, that what it added is gone, and that
// the node serves again (an RSU node resyncs after its DDL).
func (f *schemaChange) WaitForRecovery(ctx context.Context, env *Env) error {
	if f.done != nil {
		if err := poll(ctx, "the ALTER still runs", func() (bool, error) {
			done, _ := f.finished()
			if !done {
				return false, nil
			}
			if len(f.parts) > 0 {
				return true, nil // each part returned (f.done closes after the last)
			}
			running, err := f.running(ctx)
			return err == nil && !running, err
		}); err != nil {
			return err
		}
	}
	if err := poll(ctx, f.what+" still there", func() (bool, error) {
		present, err := f.present(ctx)
		return err == nil && !present, err
	}); err != nil {
		return err
	}
	if r, ok := f.node.(Readier); ok {
		return r.WaitReady(ctx)
	}
	return nil
}

// Cleanup makes sure no ALTER of this run still runs and nothing it added is left
// (Recover may have failed half-way), and closes the connections.
func (f *schemaChange) Cleanup(ctx context.Context, env *Env) error {
	var errs []error
	if f.done != nil {
		if done, _ := f.finished(); !done {
			errs = append(errs, f.kill("cleanup after a failed recovery"))
		}
		if done, _ := f.finished(); done {
			errs = append(errs, f.drop(ctx))
		}
	}
	if f.cancelAlter != nil {
		f.cancelAlter()
	}
	if f.alterDB != nil {
		f.alterDB.Close()
	}
	if f.ctl != nil {
		f.ctl.Close()
	}
	for _, p := range f.parts {
		errs = append(errs, p.f.Cleanup(ctx, p.env))
	}
	return errors.Join(errs...)
}

// Measurements: the table's size (Setup), and the ALTER's start, end and duration,
// with the variant, method, algorithm and outcome in the note.
func (f *schemaChange) Measurements() []Measurement {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]Measurement(nil), f.ms...)
	if f.start.IsZero() {
		return out
	}
	label := f.node.Label()
	note := fmt.Sprintf("variant=%s method=%s algorithm=%s table=%s", f.variant, f.method, f.algorithm, f.table)
	end := f.end
	if end.IsZero() {
		end = time.Now()
		note += ", still running"
	}
	if f.killed != "" {
		note += ", killed: " + f.killed
	}
	if f.alterErr != nil {
		note += ", error: " + f.alterErr.Error()
	}
	if len(f.parts) > 0 {
		note += "; every leaf, then every aggregator: " + f.partsNote()
	}
	out = append(out, Measurement{Name: MeasureAlterStart, Node: label, Value: schemaUnixSeconds(f.start), Unit: "unix-s", Note: f.start.UTC().Format(time.RFC3339Nano)})
	if !f.end.IsZero() {
		out = append(out, Measurement{Name: MeasureAlterEnd, Node: label, Value: schemaUnixSeconds(f.end), Unit: "unix-s", Note: f.end.UTC().Format(time.RFC3339Nano)})
	}
	out = append(out, Measurement{Name: MeasureAlterDuration, Node: label, Value: end.Sub(f.start).Seconds(), Unit: "s", Note: note})
	return out
}

func schemaUnixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
