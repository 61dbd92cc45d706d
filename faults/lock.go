package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// One actor per cluster: a run, a fault or a heal takes the cluster's (or
// target's) lock in the state directory before it acts, so two of them never
// hurt and heal the same nodes at once. The lock is an flock on a file that also
// says who holds it: the kernel releases it when its process dies, however it
// dies, so a crashed holder never blocks the next run.

// ErrLocked is what a lock held by another process gives (the CLI: exit 3).
var ErrLocked = errors.New("in use")

// LockHolder is who holds a lock.
type LockHolder struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// Lock is a held lock; Release gives it back.
type Lock struct {
	f *os.File
	// TookOver is set when the file named a holder that had died: the lock
	// was taken over from it.
	TookOver *LockHolder
}

// AcquireLock takes the lock of a cluster or target for what (the command, for
// messages), or says who holds it.
func AcquireLock(k JournalKey, what string) (*Lock, error) {
	if k.Target != "" {
		if abs, err := filepath.Abs(k.Target); err == nil {
			k.Target = abs
		}
	}
	dir, err := StateDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "locks", strings.TrimSuffix(k.fileName(), ".jsonl")+".lock")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	var prev *LockHolder
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		var h LockHolder
		if json.Unmarshal(b, &h) == nil {
			prev = &h
		}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		who := "another process"
		if prev != nil {
			who = fmt.Sprintf("process %d (%s) since %s", prev.PID, prev.Command, prev.Since.Local().Format("15:04:05"))
		}
		name := k.Cluster
		if name == "" {
			name = k.Target
		}
		return nil, fmt.Errorf("%w: %s is held by %s: one run, fault or heal at a time acts on it", ErrLocked, name, who)
	}
	l := &Lock{f: f}
	if prev != nil && prev.PID != os.Getpid() && !alive(prev.PID) {
		l.TookOver = prev
	}
	b, _ := json.Marshal(LockHolder{PID: os.Getpid(), Command: what, Since: time.Now()})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(b, 0)
	}
	return l, nil
}

// Release gives the lock back.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
