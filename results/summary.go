package results

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// summaryVersion is the version of summary.json this package writes and the
// newest it reads.
// Version 2 keeps gaps per access kind (StreamGaps.Access) and adds the
// cluster-wide streams; a version 1 file reads with Access "" (every op).
// Per-query memory (OpSummary.Memory, Summary.MemoryUnavailable) came within
// version 2: both are optional, a file without them reads as "not measured",
// and a reader from before them ignores them, so no bump was needed (a bump
// would make that older reader refuse the file for nothing). The bytes
// returned (OpSummary.Returned and ReturnedTotal) came within version 2 the
// same way.
const summaryVersion = 2

// Summary is the cumulative result of a run, written to summary.json.
type Summary struct {
	Version  int       `json:"version"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration_s"`
	// GapThreshold is the shortest window without a success kept as a gap, in
	// seconds (0 in a version 1 summary).
	GapThreshold float64      `json:"gap_threshold_s,omitempty"`
	Ops          []OpSummary  `json:"ops"`       // one per Key, sorted by workload, op, node
	Workloads    []OpSummary  `json:"workloads"` // per workload x op, merged over nodes (Node = 0)
	Gaps         []StreamGaps `json:"gaps"`      // one per stream (workload, node, access), sorted
	// Cluster holds one stream per access kind over every workload and node: a
	// gap there is a window in which no write (or no read) succeeded anywhere,
	// what an application sees as "the database was down".
	Cluster []StreamGaps `json:"cluster_gaps"`
	// MemoryUnavailable says why per-query memory (OpSummary.Memory) was not
	// measured for ops that ask for it (loadgen's Op.Memory): the server has no
	// such accounting (not MariaDB), or reading it failed. "" when it was
	// measured or nothing asked for it. The first reason of the run.
	MemoryUnavailable string `json:"memory_unavailable,omitempty"`
}

// ClusterGaps returns the cluster-wide stream of an access kind (zero when
// the run had no op of that kind).
func (s *Summary) ClusterGaps(a Access) (StreamGaps, bool) {
	for _, g := range s.Cluster {
		if g.Access == a {
			return g, true
		}
	}
	return StreamGaps{}, false
}

// OpSummary is the cumulative result of one Key, or of one workload and
// operation merged over nodes.
type OpSummary struct {
	Workload string `json:"workload"`
	Op       string `json:"op"`
	Node     int    `json:"node"`
	Access   Access `json:"access,omitempty"`

	Count       int64           `json:"count"` // successes
	Rate        float64         `json:"rate"`  // successes per second over the run duration
	Errors      map[Class]int64 `json:"errors"`
	ErrorsTotal int64           `json:"errors_total"` // sum of Errors (canceled excluded)
	Canceled    int64           `json:"canceled"`
	Late        int64           `json:"late"`
	Dropped     int64           `json:"dropped"`
	Other       []OtherError    `json:"other,omitempty"`

	Latency      Percentiles  `json:"latency"` // of successes, from the intended start
	Service      Percentiles  `json:"service"` // of successes, from the actual start
	ErrorLatency *Percentiles `json:"error_latency,omitempty"`
	// Memory is the peak memory of each successful query, in bytes, as the
	// server accounted for it (MariaDB's PROCESSLIST MAX_MEMORY_USED on a fresh
	// connection per query); nil when the op's memory was not measured. (Files
	// from before BytePercentiles held it under "memory_bytes" with _ms names:
	// they read as not measured.)
	Memory *BytePercentiles `json:"memory,omitempty"`
	// Returned is the bytes each successful operation read from its
	// connection: its result as the server sent it to the client, as the wire
	// carried it (protocol framing included; TLS or compression, when the DSN
	// asks for them, too). loadgen counts them on the worker's own connection;
	// ReturnedTotal is their sum. Nil and 0 when not measured (no connection:
	// the noop workload; a file from before they were recorded). Set against
	// the bytes the nodes moved between them, the total says how much of that
	// traffic the client asked for.
	Returned      *BytePercentiles `json:"returned,omitempty"`
	ReturnedTotal int64            `json:"returned_total_bytes,omitempty"`
}

// OtherError counts the errors of class other with one server error number
// (0: not a server error, or a number beyond the per-key cap).
type OtherError struct {
	Number  uint16 `json:"number"`
	Count   int64  `json:"count"`
	Message string `json:"message"` // the first message seen
}

// StreamGaps holds the gaps of one stream (workload, node, access), or of a
// cluster-wide stream (no workload, node 0).
type StreamGaps struct {
	Workload string  `json:"workload,omitempty"`
	Node     int     `json:"node"`
	Access   Access  `json:"access,omitempty"` // "" in a version 1 summary: every op of the stream
	Gaps     []Gap   `json:"gaps"`
	MoreGaps int     `json:"more_gaps"` // gaps beyond the first 1000, not listed
	Longest  float64 `json:"longest_s"` // longest gap, listed or not
}

// Gap is a window without a successful completion on a stream, from the end
// of the last success before it to the end of the first success after it.
type Gap struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration_s"`
	Failed   int64     `json:"failed"`  // failures (not canceled) completed inside
	Late     int64     `json:"late"`    // late operations completed inside
	Ongoing  bool      `json:"ongoing"` // no success came before the end of the run
}

// ReadSummary reads a summary.json. It refuses a file without a version or
// with a version newer than the one this package writes.
func ReadSummary(path string) (*Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("read summary %s: %w", path, err)
	}
	if v.Version == nil || *v.Version < 1 {
		return nil, fmt.Errorf("read summary %s: no version: not a summary written by this package", path)
	}
	if *v.Version > summaryVersion {
		return nil, fmt.Errorf("read summary %s: version %d is newer than this program reads (version %d): upgrade it", path, *v.Version, summaryVersion)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read summary %s: %w", path, err)
	}
	return &s, nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed, then syncs the directory: readers see the old
// file or the whole new one, never half of it, and a crash after it returns
// keeps the new one.
func WriteFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeJSONAtomic marshals v (indented) and writes it with WriteFileAtomic.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(b, '\n'))
}
