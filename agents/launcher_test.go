//go:build linux

package agents

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// groupAlive counts the processes of process group pgid that are not zombies.
func groupAlive(t *testing.T, pgid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// After the command's closing parenthesis: state, ppid, pgrp.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			n++
		}
	}
	return n
}

// Agents that never exit by themselves (a shell ignoring SIGTERM, waiting on a
// child): Stop kills every one with its process group once the grace period or
// ctx is over, and returns soon after.
func TestLocalStopKillsEveryAgent(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "agent.sh")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\ntrap '' TERM\nsleep 60\necho done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		timeout time.Duration // of Stop's ctx; 0: none
		within  time.Duration
	}{
		{"ctx", 300 * time.Millisecond, 300*time.Millisecond + time.Second},
		{"grace", 0, stopGrace + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Local{Exe: exe}.Launch(context.Background(), LaunchRequest{N: 3, Coordinator: "127.0.0.1:1", Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			var pids []int
			for _, p := range l.(*localProcs).procs {
				pids = append(pids, p.cmd.Process.Pid)
			}
			time.Sleep(200 * time.Millisecond) // the shells start their sleeps
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			stopped := make(chan error, 1)
			go func() { stopped <- l.Stop(ctx) }()
			select {
			case err := <-stopped:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(tc.within + 5*time.Second):
				t.Fatalf("Stop still waiting %v on", time.Since(start))
			}
			if took := time.Since(start); took > tc.within {
				t.Errorf("Stop took %v, want at most %v", took, tc.within)
			}
			for _, pid := range pids {
				if n := groupAlive(t, pid); n > 0 {
					t.Errorf("process group %d: %d processes still running", pid, n)
				}
			}
		})
	}
}
