package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// genKind is what a workload file's value generator makes (see wfile.go for the
// YAML that declares one).
type genKind string

const (
	genSequence  genKind = "sequence"  // start, start+1, ...: a seeded table's key
	genUniform   genKind = "uniform"   // integers (or decimals) uniform over [min, max]
	genZipf      genKind = "zipf"      // integers over [min, max], min the most frequent (math/rand/v2 Zipf)
	genFK        genKind = "fk"        // a seeded id of another table (uniform, or zipf with skew)
	genString    genKind = "string"    // random letters and digits of a length in [min, max]
	genTimestamp genKind = "timestamp" // a time in the window before now (UTC)
	genChoice    genKind = "choice"    // one of a list
	genFrom      genKind = "from"      // a value sampled at Setup from an existing table's column
	genNextID    genKind = "next-id"   // the worker's fresh run-tagged id (Worker.NextID), ops only
)

// gen is one value generator. It is immutable once parsed, except for the
// sequence counter of an op's argument and the sample a from generator holds.
type gen struct {
	kind     genKind
	line     int
	lo, hi   int64   // sequence: start (hi unused); uniform, zipf: the range; fk: the parent's seeded ids
	skew     float64 // zipf (and fk with skew): the exponent s > 1
	decimals int     // uniform: digits after the point (the range is in whole units)
	strMin   int
	strMax   int
	window   time.Duration
	choices  []string
	nullFrac float64
	fkTable  string
	from     *sample
	next     *atomic.Int64 // an op's sequence: shared by its workers
}

// value makes one value. row is the seeded row's index from 0 (seeding) or -1 (an
// op). now anchors timestamps.
func (g *gen) value(r *rand.Rand, row int64, now time.Time) any {
	if g.nullFrac > 0 && r.Float64() < g.nullFrac {
		return nil
	}
	switch g.kind {
	case genSequence:
		if row >= 0 {
			return g.lo + row
		}
		return g.lo + g.next.Add(1) - 1
	case genUniform:
		if g.decimals > 0 {
			scale := int64(math.Pow10(g.decimals))
			v := g.lo*scale + r.Int64N((g.hi-g.lo)*scale+1)
			return decimalString(v, g.decimals)
		}
		return g.lo + r.Int64N(g.hi-g.lo+1)
	case genZipf:
		return g.lo + int64(rand.NewZipf(r, g.skew, 1, uint64(g.hi-g.lo)).Uint64())
	case genFK:
		if g.skew > 1 {
			return g.lo + int64(rand.NewZipf(r, g.skew, 1, uint64(g.hi-g.lo)).Uint64())
		}
		return g.lo + r.Int64N(g.hi-g.lo+1)
	case genString:
		n := g.strMin
		if g.strMax > g.strMin {
			n += r.IntN(g.strMax - g.strMin + 1)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = alnum[r.IntN(len(alnum))]
		}
		return string(b)
	case genTimestamp:
		return now.Add(-time.Duration(r.Int64N(int64(g.window) + 1))).UTC()
	case genChoice:
		return g.choices[r.IntN(len(g.choices))]
	case genFrom:
		vals := g.from.values()
		if len(vals) == 0 {
			return nil
		}
		return vals[r.IntN(len(vals))]
	}
	panic("loadgen: generator " + string(g.kind) + " has no value")
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// decimalString writes v / 10^d with d digits after the point.
func decimalString(v int64, d int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	s := strconv.FormatInt(v, 10)
	for len(s) <= d {
		s = "0" + s
	}
	return sign + s[:len(s)-d] + "." + s[len(s)-d:]
}

// sampleSize is how many values a from generator samples at Setup.
const sampleSize = 10_000

// sample holds the values of one table's column sampled at Setup (shared by every
// from generator naming that column).
type sample struct {
	table, column string
	// lock is a one-slot channel: who holds its token loads; the others wait
	// for it or for their own context, whichever ends first.
	lock chan struct{}
	once sync.Once
	vals atomic.Pointer[[]any]
}

func (s *sample) values() []any {
	if p := s.vals.Load(); p != nil {
		return *p
	}
	return nil
}

// load samples up to sampleSize values spread over the table: each row is taken
// with a probability that makes about twice the sample from the table's estimated
// size, so no full sort of a large table is needed.
// It runs on q: the Setup's database, or an op's connection when the run skipped
// Setup (then the first op that needs the sample takes it, and the others wait,
// each no longer than its ctx).
func (s *sample) load(ctx context.Context, q Querier, again bool) error {
	s.once.Do(func() { s.lock = make(chan struct{}, 1) })
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sample %s.%s: waiting for another worker's sample: %w", s.table, s.column, ctx.Err())
	}
	defer func() { <-s.lock }()
	if !again && s.vals.Load() != nil {
		return nil
	}
	var est sql.NullInt64
	_ = queryRow(ctx, q, []any{&est}, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", s.table)
	frac := 1.0
	if est.Int64 > 2*sampleSize {
		frac = 2 * sampleSize / float64(est.Int64)
	}
	query := fmt.Sprintf("SELECT %s FROM %s WHERE %s IS NOT NULL", quoteIdent(s.column), quoteIdent(s.table), quoteIdent(s.column))
	if frac < 1 {
		query += fmt.Sprintf(" AND RAND() < %g", frac)
	}
	query += fmt.Sprintf(" LIMIT %d", sampleSize)
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("sample %s.%s: %w", s.table, s.column, err)
	}
	defer rows.Close()
	var vals []any
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("sample %s.%s: %w", s.table, s.column, err)
		}
		vals = append(vals, string(v))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sample %s.%s: %w", s.table, s.column, err)
	}
	if len(vals) == 0 {
		return fmt.Errorf("sample %s.%s: the table holds no value to draw from", s.table, s.column)
	}
	s.vals.Store(&vals)
	return nil
}

// quoteIdent quotes an SQL identifier in backticks, doubling any backtick in it:
// every name loadgen writes into SQL goes through it.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
