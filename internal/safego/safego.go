// Package safego keeps a panic in one of htapchaos's own goroutines from killing
// the process: the panic is recovered at the goroutine's edge and handed to its
// owner as an error, so the owner stops in order (the load stops, faults are
// recovered, results are written) instead of the process dying with faults in
// place.
package safego

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// PanicError is a panic recovered at a goroutine's edge.
type PanicError struct {
	Name  string // the goroutine, e.g. "sampler"
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic in %s: %v\n%s", e.Name, e.Value, e.Stack)
}

// Recover, deferred at the top of a goroutine (defer safego.Recover(name,
// onPanic)), recovers a panic and hands it to onPanic as a *PanicError named
// name. A *PanicError raised again (a goroutine passing on the panic of one of
// its own goroutines) is handed on as it is, with its first name and stack.
func Recover(name string, onPanic func(error)) {
	v := recover()
	if v == nil {
		return
	}
	if pe, ok := v.(*PanicError); ok {
		onPanic(pe)
		return
	}
	onPanic(&PanicError{Name: name, Value: v, Stack: debug.Stack()})
}

// Go runs f on a new goroutine, counted in wg unless wg is nil, and hands a panic
// of f to onPanic (see Recover). onPanic runs on that goroutine, before wg is
// done; a context.CancelCauseFunc is one.
func Go(wg *sync.WaitGroup, name string, onPanic func(error), f func()) {
	run := func() {
		defer Recover(name, onPanic)
		f()
	}
	if wg == nil {
		go run()
		return
	}
	wg.Go(run)
}
