package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/faults"
)

// fakeStopper is a stopper on a fake clock, with faults.Active and os.Exit replaced.
type fakeStopper struct {
	*stopper
	out    bytes.Buffer
	clock  time.Time
	left   []faults.ActiveFault
	cause  error
	exited []int
}

func newFakeStopper() *fakeStopper {
	f := &fakeStopper{clock: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.stopper = &stopper{stderr: &f.out, now: func() time.Time { return f.clock },
		cancel: func(err error) { f.cause = err },
		active: func() []faults.ActiveFault { return f.left },
		exit:   func(code int) { f.exited = append(f.exited, code) }}
	return f
}

// send delivers sig after d and returns what it printed.
func (f *fakeStopper) send(sig os.Signal, d time.Duration) string {
	f.clock = f.clock.Add(d)
	f.out.Reset()
	f.signal(sig)
	return f.out.String()
}

func TestSignalFirstStopsSecondShowsThirdWithin5sAbandons(t *testing.T) {
	f := newFakeStopper()
	f.left = []faults.ActiveFault{
		{Kind: "kill", Nodes: []string{"n1"}, State: faults.StateEffective, Heal: "htapchaos heal --cluster demo"},
		{Kind: "network-latency", Nodes: []string{"n2", "n3"}, State: faults.StateRecovered, LeavesNothing: true},
		{Kind: "pause", Nodes: []string{"n3"}, State: faults.StateEffective},
	}
	out := f.send(syscall.SIGHUP, 0)
	if want := "htapchaos: hangup: stopping: load stops, faults are recovered, results written (a second signal shows what is left; a third within 5s abandons)\n"; out != want {
		t.Errorf("first signal printed %q, want %q", out, want)
	}
	if !errors.Is(f.cause, context.Canceled) || f.cause.Error() != "hangup signal received" {
		t.Errorf("cause %v, want a Canceled naming the signal", f.cause)
	}

	out = f.send(syscall.SIGINT, time.Second)
	want := "htapchaos: interrupt: still stopping: 3 fault(s) being recovered (a third signal within 5s abandons them):\n" +
		"  kill on n1 (effective); heal with: htapchaos heal --cluster demo\n" +
		"  network-latency on n2, n3 (recovered)\n" +
		"  pause on n3 (effective)\n"
	if out != want {
		t.Errorf("second signal printed:\n%s\nwant:\n%s", out, want)
	}

	// More than 5 s after the second: a new second, no exit.
	if out = f.send(syscall.SIGTERM, 5*time.Second+time.Millisecond); !strings.Contains(out, "still stopping: 3 fault(s)") {
		t.Errorf("a signal 5.001 s after the second printed %q, want it to count as a second", out)
	}
	if len(f.exited) != 0 {
		t.Fatalf("exited %v before a third signal within 5 s", f.exited)
	}

	out = f.send(syscall.SIGTERM, 5*time.Second)
	want = "htapchaos: terminated: abandoning: 3 fault(s) not recovered:\n" +
		"  kill on n1 (effective); heal with: htapchaos heal --cluster demo\n" +
		"  network-latency on n2, n3 (recovered); leaves nothing behind once htapchaos has exited\n" +
		"  pause on n3 (effective); no journal holds it: undo it by hand\n"
	if out != want {
		t.Errorf("third signal printed:\n%s\nwant:\n%s", out, want)
	}
	if len(f.exited) != 1 || f.exited[0] != exitInterrupted {
		t.Errorf("exited %v, want [130]", f.exited)
	}
}

func TestSignalWithNothingLeftToRecover(t *testing.T) {
	f := newFakeStopper()
	f.send(os.Interrupt, 0)
	if out := f.send(os.Interrupt, time.Second); out != "htapchaos: interrupt: still stopping: nothing left to recover (a third signal within 5s abandons)\n" {
		t.Errorf("second signal printed %q", out)
	}
	if out := f.send(os.Interrupt, time.Second); out != "htapchaos: interrupt: abandoning: nothing left to recover\n" {
		t.Errorf("third signal printed %q", out)
	}
	if len(f.exited) != 1 || f.exited[0] != exitInterrupted {
		t.Errorf("exited %v, want [130]", f.exited)
	}
}

// The binary: SIGHUP stops a load in order (exit 130); SIGPIPE, sent or from a
// write to a closed stdout, does not kill it.
func TestSignalEndToEnd(t *testing.T) {
	load := func(t *testing.T, stdout *os.File) *cliProcess {
		args := []string{"load", "--workload", "noop", "--rate", "100", "--duration", "2m", "--out", filepath.Join(t.TempDir(), "load")}
		var out io.Writer
		if stdout != nil {
			out = stdout
		}
		p := startCLIWith(t, out, args...)
		p.waitFor(t, "load: noop", 30*time.Second)
		time.Sleep(300 * time.Millisecond) // well into the run
		return p
	}
	stopped := func(t *testing.T, p *cliProcess, line string) {
		t.Helper()
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("still running 30 s after the signal:\n%s", p.text())
		}
		if code := p.cmd.ProcessState.ExitCode(); code != exitInterrupted {
			t.Errorf("exit %d (%v), want 130:\n%s", code, p.cmd.ProcessState, p.text())
		}
		if !strings.Contains(p.text(), line) {
			t.Errorf("no %q in stderr:\n%s", line, p.text())
		}
	}

	t.Run("SIGHUP", func(t *testing.T) {
		p := load(t, nil)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		stopped(t, p, "htapchaos: hangup: stopping: load stops, faults are recovered, results written")
	})

	t.Run("SIGPIPE", func(t *testing.T) {
		// stdout is a pipe nobody reads: the summary written at the end gets EPIPE.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		p := load(t, w)
		w.Close()
		if err := p.cmd.Process.Signal(syscall.SIGPIPE); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if p.exited() {
			t.Fatalf("SIGPIPE ended the process (%v):\n%s", p.cmd.ProcessState, p.text())
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		stopped(t, p, "htapchaos: terminated: stopping:")
	})
}
