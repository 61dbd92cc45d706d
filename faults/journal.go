package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The fault journal: before a fault acts, what it is about to do and what undoing
// it needs is written and synced to disk; once the fault is recovered, that is
// written too. A process killed in between (kill -9, a crash, a host reboot) leaves
// an entry with no recovery, and `htapchaos heal` undoes it from the entry alone.
// One journal file is kept per cluster or target in the user's state directory,
// where heal finds it by name, and a copy in the run directory when there is one.
// Container labels cannot hold it: they cannot be changed after creation.

// Journal events.
const (
	JournalInject    = "inject"    // the fault is about to act
	JournalRecovered = "recovered" // the fault's recovery completed and the nodes serve
	JournalHealed    = "healed"    // heal undid it after its process was gone
)

// JournalEntry is one line of a journal.
type JournalEntry struct {
	ID    string    `json:"id"` // one fault's injection
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
	// Inject entries: what and where.
	Kind   string            `json:"kind,omitempty"`
	Nodes  []int             `json:"nodes,omitempty"`  // indexes in the cluster or target
	Labels []string          `json:"labels,omitempty"` // for people
	Params map[string]string `json:"params,omitempty"`
	// Undo is the state a heal needs that lives only in the injecting process's
	// memory otherwise (the interface a filter sits on, the CPU limits to put
	// back, the tables an ALTER touched), per kind.
	Undo json.RawMessage `json:"undo,omitempty"`
	// Cluster or Target is what the fault acted on (the journal's key).
	Cluster string `json:"cluster,omitempty"`
	Target  string `json:"target,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Boot    string `json:"boot,omitempty"` // the machine's boot the process ran in
	Command string `json:"command,omitempty"`
	Note    string `json:"note,omitempty"`
}

// JournalKey names what a journal is about: a cluster htapchaos started, or a
// target file.
type JournalKey struct {
	Cluster string
	Target  string // the target file's path
}

func (k JournalKey) fileName() string {
	if k.Cluster != "" {
		return "cluster-" + safeName(k.Cluster) + ".jsonl"
	}
	abs, err := filepath.Abs(k.Target)
	if err != nil {
		abs = k.Target
	}
	return "target-" + safeName(strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))) + "-" + strconv.FormatUint(uint64(fnv32(abs)), 16) + ".jsonl"
}

// HealCommand is the command that heals what the journal shows as not recovered.
func (k JournalKey) HealCommand() string {
	if k.Cluster != "" {
		return "htapchaos heal --cluster " + k.Cluster
	}
	return "htapchaos heal --target " + k.Target
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// StateDir is the per-user directory of htapchaos's journals and locks:
// $HTAPCHAOS_STATE_DIR, else $XDG_STATE_HOME/htapchaos, else
// ~/.local/state/htapchaos.
func StateDir() (string, error) {
	if d := os.Getenv("HTAPCHAOS_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "htapchaos"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory for the fault journal: %w", err)
	}
	return filepath.Join(home, ".local", "state", "htapchaos"), nil
}

// JournalPath is the state directory's journal of a cluster or target.
func JournalPath(k JournalKey) (string, error) {
	dir, err := StateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "journal", k.fileName()), nil
}

// Journal appends entries to the state directory's journal of one cluster or
// target, and to a copy in a run directory.
type Journal struct {
	Key   JournalKey
	paths []string
	mu    sync.Mutex
}

// OpenJournal opens (creating) the journal of a cluster or target, with a copy
// in runDir when it is not "".
func OpenJournal(k JournalKey, runDir string) (*Journal, error) {
	// A target by its absolute path: a heal from another directory, or from the
	// run directory's copy, finds the same journal and the same file.
	if k.Target != "" {
		if abs, err := filepath.Abs(k.Target); err == nil {
			k.Target = abs
		}
	}
	p, err := JournalPath(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("fault journal: %w", err)
	}
	j := &Journal{Key: k, paths: []string{p}}
	if runDir != "" {
		j.paths = append(j.paths, filepath.Join(runDir, "faults.journal.jsonl"))
	}
	return j, nil
}

// HealCommand is the command that heals what this journal shows as not recovered.
func (j *Journal) HealCommand() string { return j.Key.HealCommand() }

// Append writes one entry to every copy and syncs it before returning.
func (j *Journal) Append(e JournalEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.Cluster, e.Target = j.Key.Cluster, j.Key.Target
	if e.Event == JournalInject && e.Boot == "" {
		e.Boot = bootID()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	for _, p := range j.paths {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, werr := f.Write(line)
		serr := f.Sync()
		cerr := f.Close()
		errs = append(errs, werr, serr, cerr)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fault journal: %w", err)
	}
	return nil
}

var journalSeq atomic.Int64

// newJournalID names one injection, unique across processes.
func newJournalID() string {
	return fmt.Sprintf("%d-%d-%d", time.Now().UnixNano(), os.Getpid(), journalSeq.Add(1))
}

// Undoer is a fault that knows, once set up and just before Inject, what a heal
// will need to undo it without this process (kept in the journal entry).
type Undoer interface {
	UndoState(ctx context.Context, env *Env) (any, error)
}

// ReadJournal reads a journal file; a missing file is an empty journal. A torn
// last line (the process died while writing it) is skipped.
func ReadJournal(path string) ([]JournalEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []JournalEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		var e JournalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // torn write
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%s:%d: %w", path, line, err)
	}
	return out, nil
}

// Unrecovered are the inject entries with no recovery or heal after them.
func Unrecovered(entries []JournalEntry) []JournalEntry {
	done := map[string]bool{}
	for _, e := range entries {
		if e.Event == JournalRecovered || e.Event == JournalHealed {
			done[e.ID] = true
		}
	}
	var out []JournalEntry
	for _, e := range entries {
		if e.Event == JournalInject && !done[e.ID] {
			out = append(out, e)
		}
	}
	return out
}
