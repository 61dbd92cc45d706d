package faults

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// One actor per cluster: a second taker is refused naming the holder; a released
// lock is free; a lock whose holder died is taken over, saying so.
func TestLock(t *testing.T) {
	t.Setenv("HTAPCHAOS_STATE_DIR", t.TempDir())
	k := JournalKey{Cluster: "demo"}
	l, err := AcquireLock(k, "htapchaos run failover-pause")
	if err != nil || l.TookOver != nil {
		t.Fatalf("first: %v %+v", err, l)
	}
	if _, err := AcquireLock(k, "htapchaos fault pause"); !errors.Is(err, ErrLocked) ||
		!strings.Contains(err.Error(), "demo is held by process") || !strings.Contains(err.Error(), "htapchaos run failover-pause") {
		t.Errorf("second taker: %v", err)
	}
	if _, err := AcquireLock(JournalKey{Cluster: "other"}, "x"); err != nil {
		t.Errorf("another cluster's lock: %v", err)
	}
	l.Release()
	l2, err := AcquireLock(k, "htapchaos heal")
	if err != nil || l2.TookOver != nil {
		t.Fatalf("after release: %v %+v", err, l2)
	}
	l2.Release()

	// A holder that died without releasing: its pid is in the file, its flock
	// went with it.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := LockHolder{PID: cmd.Process.Pid, Command: "htapchaos run partition", Since: time.Now()}
	b, _ := json.Marshal(dead)
	path := filepath.Join(os.Getenv("HTAPCHAOS_STATE_DIR"), "locks", "cluster-demo.lock")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	l3, err := AcquireLock(k, "htapchaos heal")
	if err != nil || l3.TookOver == nil || l3.TookOver.PID != dead.PID {
		t.Errorf("dead holder: %v %+v", err, l3)
	}
	l3.Release()
}
