package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/htapchaos/htapchaos/faults"
)

// stopSignals stop a command in order.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// abandonWithin is how soon after a second signal a third one abandons.
const abandonWithin = 5 * time.Second

// osExit ends the process when a third signal abandons (a variable for tests).
var osExit = os.Exit

// signalCause is the cause of a command's context cancelled by a signal. Like
// signal.NotifyContext's, it is a context.Canceled.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string        { return c.sig.String() + " signal received" }
func (c signalCause) Is(target error) bool { return target == context.Canceled }

// stopper is what stop signals do to a running command. The first cancels its
// context: the load stops, faults are recovered, results written. A second one
// says what is still being recovered. A third within abandonWithin of a second
// abandons: it says what is left and how to heal it, and exits 130 at once; a
// later one counts as a new second.
type stopper struct {
	stderr io.Writer
	cancel context.CancelCauseFunc
	active func() []faults.ActiveFault
	now    func() time.Time
	exit   func(code int)

	stopping bool
	second   time.Time // when the last second signal came; zero: none yet
}

// signal handles one stop signal (from one goroutine).
func (s *stopper) signal(sig os.Signal) {
	now := s.now()
	switch {
	case !s.stopping:
		s.stopping = true
		fmt.Fprintf(s.stderr, "htapchaos: %v: stopping: load stops, faults are recovered, results written (a second signal shows what is left; a third within %v abandons)\n", sig, abandonWithin)
		s.cancel(signalCause{sig})
	case s.second.IsZero() || now.Sub(s.second) > abandonWithin:
		s.second = now
		left := s.active()
		if len(left) == 0 {
			fmt.Fprintf(s.stderr, "htapchaos: %v: still stopping: nothing left to recover (a third signal within %v abandons)\n", sig, abandonWithin)
			return
		}
		fmt.Fprintf(s.stderr, "htapchaos: %v: still stopping: %d fault(s) being recovered (a third signal within %v abandons them):\n", sig, len(left), abandonWithin)
		for _, f := range left {
			fmt.Fprintf(s.stderr, "  %s\n", f)
		}
	default:
		left := s.active()
		if len(left) == 0 {
			fmt.Fprintf(s.stderr, "htapchaos: %v: abandoning: nothing left to recover\n", sig)
		} else {
			fmt.Fprintf(s.stderr, "htapchaos: %v: abandoning: %d fault(s) not recovered:\n", sig, len(left))
		}
		for _, f := range left {
			switch {
			case f.LeavesNothing:
				fmt.Fprintf(s.stderr, "  %s; leaves nothing behind once htapchaos has exited\n", f)
			case f.Heal == "":
				fmt.Fprintf(s.stderr, "  %s; no journal holds it: undo it by hand\n", f)
			default:
				fmt.Fprintf(s.stderr, "  %s\n", f)
			}
		}
		s.exit(exitInterrupted)
	}
}

// handleSignals routes stop signals to a stopper that cancels with cancel,
// until the returned func is called.
func handleSignals(stderr io.Writer, cancel context.CancelCauseFunc) (stop func()) {
	ch := make(chan os.Signal, len(stopSignals))
	signal.Notify(ch, stopSignals...)
	s := &stopper{stderr: stderr, cancel: cancel, active: faults.Active, now: time.Now, exit: osExit}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case sig := <-ch:
				s.signal(sig)
			case <-done:
				return
			}
		}
	})
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}
