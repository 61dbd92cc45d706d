package safego

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func boom() { panic("boom") }

func TestGoRecoversIntoAnErrorWithNameAndStack(t *testing.T) {
	var wg sync.WaitGroup
	var got error
	Go(&wg, "worker 3", func(err error) { got = err }, boom)
	wg.Wait() // onPanic ran before the WaitGroup was done
	var pe *PanicError
	if !errors.As(got, &pe) {
		t.Fatalf("onPanic got %v, want a *PanicError", got)
	}
	if pe.Name != "worker 3" || pe.Value != "boom" {
		t.Errorf("name %q value %v", pe.Name, pe.Value)
	}
	msg := got.Error()
	if !strings.HasPrefix(msg, "panic in worker 3: boom\n") || !strings.Contains(msg, "safego.boom") {
		t.Errorf("error does not name the goroutine and hold the panicking stack:\n%s", msg)
	}
}

func TestGoWithoutPanicDoesNotReport(t *testing.T) {
	var wg sync.WaitGroup
	ran := false
	Go(&wg, "quiet", func(err error) { t.Errorf("onPanic called: %v", err) }, func() { ran = true })
	wg.Wait()
	if !ran {
		t.Error("f did not run")
	}
}

// Without a WaitGroup, and with a cancel func as the handler: the panic is the
// context's cause.
func TestGoCancelsWithThePanicAsCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	Go(nil, "sampler", cancel, func() { var m map[string]int; m["x"]++ })
	<-ctx.Done()
	var pe *PanicError
	if !errors.As(context.Cause(ctx), &pe) || pe.Name != "sampler" || !strings.Contains(pe.Error(), "nil map") {
		t.Errorf("cause %v", context.Cause(ctx))
	}
}

// A goroutine passing on its own goroutine's panic keeps the first name and stack.
func TestRaisedAgainIsHandedOnAsItIs(t *testing.T) {
	var inner error
	var wg sync.WaitGroup
	Go(&wg, "inner", func(err error) { inner = err }, boom)
	wg.Wait()
	var outer error
	Go(&wg, "outer", func(err error) { outer = err }, func() { panic(inner) })
	wg.Wait()
	if outer != inner {
		t.Errorf("outer %v, want the inner error itself", outer)
	}
}
