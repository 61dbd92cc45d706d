package results

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
)

// ledgerVersion is the version of the ledger file written and the newest read.
const ledgerVersion = 1

// Range is an inclusive range of ids.
type Range struct{ Lo, Hi int64 }

// Ledger keeps the ids of the writes the database acknowledged, and of those
// whose outcome is unknown, per writer, for a durability audit. It is safe
// for concurrent use. Acknowledged ids are kept as sorted, disjoint,
// non-adjacent ranges: a writer's run of consecutive ids is one range.
type Ledger struct {
	mu      sync.Mutex
	writers map[int]*writerLedger
}

type writerLedger struct {
	acked   []Range // sorted, disjoint, non-adjacent
	unknown []int64
	sorted  bool // unknown is sorted and free of duplicates
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{writers: map[int]*writerLedger{}} }

func (l *Ledger) writer(w int) *writerLedger {
	wl := l.writers[w]
	if wl == nil {
		wl = &writerLedger{sorted: true}
		l.writers[w] = wl
	}
	return wl
}

// Ack records that the database acknowledged the insert of id by writer.
func (l *Ledger) Ack(writer int, id int64) {
	l.mu.Lock()
	l.writer(writer).ack(id)
	l.mu.Unlock()
}

// Unknown records that the insert of id by writer failed or that its outcome
// is unknown (timeout, connection lost).
func (l *Ledger) Unknown(writer int, id int64) {
	l.mu.Lock()
	wl := l.writer(writer)
	if n := len(wl.unknown); n > 0 && wl.unknown[n-1] >= id {
		wl.sorted = false
	}
	wl.unknown = append(wl.unknown, id)
	l.mu.Unlock()
}

// ack adds id to the acked ranges.
func (wl *writerLedger) ack(id int64) {
	rs := wl.acked
	n := len(rs)
	// Fast path: the next id of the last range, or already in it.
	if n > 0 {
		last := &rs[n-1]
		if id > last.Hi {
			if id-1 == last.Hi {
				last.Hi = id
			} else {
				wl.acked = append(rs, Range{id, id})
			}
			return
		}
		if id >= last.Lo {
			return
		}
	} else {
		wl.acked = append(rs, Range{id, id})
		return
	}
	wl.acked = addRange(rs, Range{id, id})
}

// addRange inserts r into rs (sorted, disjoint, non-adjacent), merging it with
// the ranges it overlaps or touches.
func addRange(rs []Range, r Range) []Range {
	// i: first range that ends at or after r.Lo-1 (could touch or overlap r).
	i := sort.Search(len(rs), func(k int) bool { h := rs[k].Hi; return h == math.MaxInt64 || h+1 >= r.Lo })
	// j: first range that starts after r.Hi+1 (cannot touch r).
	j := i
	for j < len(rs) && (r.Hi == math.MaxInt64 || rs[j].Lo <= r.Hi+1) {
		j++
	}
	if i == j {
		return slices.Insert(rs, i, r)
	}
	merged := Range{Lo: min(r.Lo, rs[i].Lo), Hi: max(r.Hi, rs[j-1].Hi)}
	rs[i] = merged
	return slices.Delete(rs, i+1, j)
}

func (wl *writerLedger) sortUnknown() {
	if wl.sorted {
		return
	}
	slices.Sort(wl.unknown)
	wl.unknown = slices.Compact(wl.unknown)
	wl.sorted = true
}

// Acked returns the acknowledged ids of all writers as sorted, merged ranges.
func (l *Ledger) Acked() []Range {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []Range
	for _, wl := range l.writers {
		all = append(all, wl.acked...)
	}
	return MergeRanges(all)
}

// MergeRanges returns rs sorted and with the ranges that overlap or touch merged
// into one (never nil); rs is not changed. A range ending at math.MaxInt64 takes
// every range after it.
func MergeRanges(rs []Range) []Range {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Range) int { return cmp.Compare(a.Lo, b.Lo) })
	out := []Range{}
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].Hi == math.MaxInt64 || r.Lo <= out[n-1].Hi+1) {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Unknowns returns the ids of every writer whose outcome is unknown, sorted and
// without duplicates: a durability audit tells the rows that landed from writes
// of unknown outcome (legal) from rows no writer sent (an anomaly). The ledger
// holds them anyway; they are few next to the acknowledged ranges.
func (l *Ledger) Unknowns() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []int64
	for _, wl := range l.writers {
		wl.sortUnknown()
		all = append(all, wl.unknown...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// Count returns the number of acknowledged and of unknown ids, summed over
// writers (an id is counted once per writer).
func (l *Ledger) Count() (acked, unknown int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, wl := range l.writers {
		for _, r := range wl.acked {
			acked += r.Hi - r.Lo + 1
		}
		wl.sortUnknown()
		unknown += int64(len(wl.unknown))
	}
	return acked, unknown
}

// ledgerFile is the JSON form of a ledger.
type ledgerFile struct {
	Version int               `json:"version"`
	Writers []ledgerFileEntry `json:"writers"`
}

type ledgerFileEntry struct {
	Writer  int        `json:"writer"`
	Acked   [][2]int64 `json:"acked"`
	Unknown []int64    `json:"unknown"`
}

// file returns the JSON form of the ledger, writers sorted.
func (l *Ledger) file() ledgerFile {
	l.mu.Lock()
	lf := ledgerFile{Version: ledgerVersion, Writers: []ledgerFileEntry{}}
	for w, wl := range l.writers {
		wl.sortUnknown()
		e := ledgerFileEntry{Writer: w, Acked: make([][2]int64, len(wl.acked)), Unknown: slices.Clone(wl.unknown)}
		if e.Unknown == nil {
			e.Unknown = []int64{}
		}
		for i, r := range wl.acked {
			e.Acked[i] = [2]int64{r.Lo, r.Hi}
		}
		lf.Writers = append(lf.Writers, e)
	}
	l.mu.Unlock()
	slices.SortFunc(lf.Writers, func(a, b ledgerFileEntry) int { return cmp.Compare(a.Writer, b.Writer) })
	return lf
}

// MarshalJSON returns the ledger in the form WriteFile writes (without its
// final newline).
func (l *Ledger) MarshalJSON() ([]byte, error) { return json.Marshal(l.file()) }

// WriteFile writes the ledger as JSON, {version, writers: [{writer, acked:
// [[lo,hi],...], unknown: [ids...]}]}, through a temporary file renamed into
// place.
func (l *Ledger) WriteFile(path string) error {
	b, err := json.Marshal(l.file())
	if err != nil {
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	return nil
}

// ReadLedger reads a ledger written by WriteFile. It refuses a newer version
// and ranges with lo > hi.
func ReadLedger(path string) (*Ledger, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l, err := DecodeLedger(b)
	if err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", path, err)
	}
	return l, nil
}

// DecodeLedger decodes a ledger in the form WriteFile writes (MarshalJSON's).
// It refuses a newer version and ranges with lo > hi.
func DecodeLedger(b []byte) (*Ledger, error) {
	var lf ledgerFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, err
	}
	if lf.Version < 1 {
		return nil, fmt.Errorf("no version: not a ledger written by this package")
	}
	if lf.Version > ledgerVersion {
		return nil, fmt.Errorf("version %d is newer than this program reads (version %d): upgrade it", lf.Version, ledgerVersion)
	}
	l := NewLedger()
	for _, e := range lf.Writers {
		for _, r := range e.Acked {
			if r[0] > r[1] {
				return nil, fmt.Errorf("writer %d: range [%d,%d] has lo > hi", e.Writer, r[0], r[1])
			}
		}
		l.writer(e.Writer).add(e)
	}
	return l, nil
}

// add adds the ranges and unknown ids of e.
func (wl *writerLedger) add(e ledgerFileEntry) {
	for _, r := range e.Acked {
		wl.acked = addRange(wl.acked, Range{r[0], r[1]})
	}
	wl.unknown = append(wl.unknown, e.Unknown...)
	wl.sorted = false
	wl.sortUnknown()
}

// Merge adds the writers of o into l: their acknowledged ranges and unknown
// ids. A writer in both is an error (writer ids are given out so that no two
// ledgers share one: a shared one means ids collided); l is then unchanged.
func (l *Ledger) Merge(o *Ledger) error {
	if l == o {
		return fmt.Errorf("merge ledger: a ledger merged into itself")
	}
	of := o.file()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range of.Writers {
		if _, ok := l.writers[e.Writer]; ok {
			return fmt.Errorf("merge ledger: writer %d is in both ledgers: writer ids collided", e.Writer)
		}
	}
	for _, e := range of.Writers {
		l.writer(e.Writer).add(e)
	}
	return nil
}
