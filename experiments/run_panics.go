package experiments

import (
	"context"
	"strings"
)

// stopOnPanic handles a panic recovered in one of a run's goroutines (the
// heartbeat, the sampler; see safego.Go): it says so in the log and cancels the
// run with the panic as the cause, so the load stops, the faults are recovered
// and the results written, as on Ctrl-C. A panic during the load comes back as
// the load's error (loadgen.Run), with its stack, in run.json and the returned error.
func stopOnPanic(logf func(string, ...any), cancel context.CancelCauseFunc) func(error) {
	return func(err error) {
		first, _, _ := strings.Cut(err.Error(), "\n")
		logf("%s: stopping the run", first)
		cancel(err)
	}
}
