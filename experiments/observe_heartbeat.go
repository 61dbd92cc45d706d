package experiments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/htapchaos/htapchaos/results"
)

// HeartbeatTable is the freshness heartbeat's table: one row per writer node, its
// ts the client's clock (Unix microseconds) when the write was sent.
const HeartbeatTable = "htapchaos_heartbeat"

// DefaultHeartbeatEvery is the heartbeat's default write interval.
const DefaultHeartbeatEvery = 100 * time.Millisecond

// heartbeatWriteTimeout bounds one heartbeat write.
const heartbeatWriteTimeout = time.Second

// Heartbeat is the freshness heartbeat (failure mode "freshness"): Run updates one
// row on the writer node every interval; the sampler (WithHeartbeat) reads it on
// the other nodes each tick, and staleness is now minus the newest heartbeat that
// node shows. Both ends use this process's clock, so clock skew between the
// database hosts does not enter the figure. Staleness is measured once the first
// write was acknowledged; a row older than that (an earlier run's) counts as
// written when this heartbeat started.
//
// On Galera the read is a dirty read (the sampler's connections set
// wsrep_dirty_reads): a node cut off from the primary component refuses its
// clients' reads, and the figure then says how old the data it holds is.
type Heartbeat struct {
	writer IndicatorNode
	every  time.Duration

	mu      sync.Mutex
	dsn     string
	db      *sql.DB
	ready   bool      // the table exists
	started time.Time // Run began
	stats   HeartbeatStats
	gaps    *results.GapTracker // the writer's acknowledged writes
}

// HeartbeatStats are what the writer did.
type HeartbeatStats struct {
	Node      int           `json:"node"`
	Every     time.Duration `json:"every"`
	Writes    int64         `json:"writes"` // acknowledged
	Failed    int64         `json:"failed"`
	LastError string        `json:"last_error,omitempty"`
	FirstOK   time.Time     `json:"first_ok,omitzero"`
	LastOK    time.Time     `json:"last_ok,omitzero"`
	// LongestGap is the longest time between the completions of two consecutive
	// acknowledged writes (results.GapTracker), when over two intervals; 0: none was.
	LongestGap time.Duration `json:"longest_gap"`
}

// NewHeartbeat returns a heartbeat written on writer every interval (0:
// DefaultHeartbeatEvery).
func NewHeartbeat(writer IndicatorNode, every time.Duration) *Heartbeat {
	if every <= 0 {
		every = DefaultHeartbeatEvery
	}
	return &Heartbeat{writer: writer, every: every, stats: HeartbeatStats{Node: writer.Index, Every: every}, gaps: results.NewGapTracker(2 * every)}
}

// Node is the writer node's index.
func (h *Heartbeat) Node() int { return h.writer.Index }

// Stats returns the writer's counts so far.
func (h *Heartbeat) Stats() HeartbeatStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	s.LongestGap = h.gaps.Longest()
	return s
}

// Setup creates the heartbeat table on the writer node if it is missing.
func (h *Heartbeat) Setup(ctx context.Context) error {
	db, err := h.conn()
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+HeartbeatTable+
		" (id INT NOT NULL PRIMARY KEY, ts BIGINT NOT NULL) ENGINE=InnoDB")
	if err != nil {
		return fmt.Errorf("create %s on node %d: %w", HeartbeatTable, h.writer.Index, err)
	}
	h.mu.Lock()
	h.ready = true
	h.mu.Unlock()
	return nil
}

// Run writes the heartbeat every interval until ctx ends (creating the table first
// if Setup was not called). Failed writes are counted, not fatal; a write is
// bounded by 1 s and the schedule skips the beats a slow write overran. It returns
// an error only when the writer's DSN is unusable.
func (h *Heartbeat) Run(ctx context.Context) error {
	if _, err := h.conn(); err != nil {
		return err
	}
	h.mu.Lock()
	h.started = time.Now()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.db != nil {
			h.db.Close()
			h.db = nil
		}
	}()
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.beat(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (h *Heartbeat) beat(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, heartbeatWriteTimeout)
	defer cancel()
	h.mu.Lock()
	ready := h.ready
	h.mu.Unlock()
	var err error
	if !ready {
		err = h.Setup(wctx)
	}
	sent := time.Now()
	if err == nil {
		var db *sql.DB
		if db, err = h.conn(); err == nil {
			// Values inline (integers): one round trip, no prepared statement. GREATEST
			// keeps ts from going back when a timed-out write lands after a newer one.
			_, err = db.ExecContext(wctx, fmt.Sprintf("INSERT INTO %s (id, ts) VALUES (%d, %d) ON DUPLICATE KEY UPDATE ts = GREATEST(ts, VALUES(ts))",
				HeartbeatTable, h.writer.Index, sent.UnixMicro()))
		}
	}
	if ctx.Err() != nil {
		return // our own shutdown, not a failed write
	}
	done := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &h.stats
	if err != nil {
		s.Failed++
		s.LastError = err.Error()
		h.gaps.Failure(done, false)
		return
	}
	s.Writes++
	h.gaps.Success(done, false)
	if s.FirstOK.IsZero() {
		s.FirstOK = sent
	}
	s.LastOK = sent
}

// conn returns the writer's pool (one connection), reopened when the DSN changed.
func (h *Heartbeat) conn() (*sql.DB, error) {
	dsn := h.writer.DSN
	if h.writer.Container != nil {
		dsn = h.writer.Container.DSN()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.db != nil && dsn == h.dsn {
		return h.db, nil
	}
	if h.db != nil {
		h.db.Close()
		h.db = nil
	}
	sdsn, err := shortTimeoutDSN(dsn, time.Second, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("heartbeat on node %d: %w", h.writer.Index, err)
	}
	db, err := sql.Open("mysql", sdsn)
	if err != nil {
		return nil, fmt.Errorf("heartbeat on node %d: %w", h.writer.Index, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	h.db, h.dsn = db, dsn
	return db, nil
}

// staleness reads the newest heartbeat visible through db: now minus its ts, in
// ms (a node without the row or the table counts from the heartbeat's start); nil
// before the first write was acknowledged.
func (h *Heartbeat) staleness(ctx context.Context, db *sql.DB) (*float64, error) {
	h.mu.Lock()
	first, started := h.stats.FirstOK, h.started
	h.mu.Unlock()
	if first.IsZero() {
		return nil, nil
	}
	q := fmt.Sprintf("SELECT ts FROM %s WHERE id = %d", HeartbeatTable, h.writer.Index)
	var ts int64
	err := db.QueryRowContext(ctx, q).Scan(&ts)
	now := time.Now()
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146:
		// No row or no table: the node has seen nothing since this heartbeat began.
		ts = 0
	case err != nil:
		return nil, err
	}
	seen := time.UnixMicro(ts)
	if seen.Before(started) {
		seen = started
	}
	ms := max(float64(now.Sub(seen))/1e6, 0)
	return &ms, nil
}
