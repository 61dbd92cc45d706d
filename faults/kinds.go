package faults

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// What the builtin kinds share: capability checks, parameter checks, and the
// loops and waits their life cycles are made of.

// oneOf checks that a string parameter takes one of the allowed values.
func oneOf(name, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return usageErr("--param", "%s=%s: want one of %s", name, v, strings.Join(allowed, ", "))
}

// needsAll combines capability checks (capability[T]).
func needsAll(checks ...func(Node) error) func(Node) error {
	return func(n Node) error {
		var errs []error
		for _, c := range checks {
			if err := c(n); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// capability checks that a node has capability T, and where the node's controller
// can lack one it has the methods of (an exec target without the command), that it
// does not lack it.
func capability[T any]() func(Node) error {
	return func(n Node) error {
		typ := reflect.TypeFor[T]()
		if _, ok := n.(T); !ok {
			return fmt.Errorf("its controller cannot do %s", typ.Name())
		}
		if l, ok := n.(lacker); ok {
			if err := l.Lacks(typ); err != nil {
				return fmt.Errorf("its controller cannot do %s: %w", typ.Name(), err)
			}
		}
		return nil
	}
}

// lacker is a node that has a capability's methods but may not be able to use them.
type lacker interface {
	Lacks(capability reflect.Type) error
}

// needs checks that a node has capabilities A and B.
func needs[A, B any]() func(Node) error { return needsAll(capability[A](), capability[B]()) }

// each runs f on every target and joins the errors.
func each(env *Env, f func(Node) error) error {
	var errs []error
	for _, n := range env.Targets {
		if err := f(n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Label(), err))
		}
	}
	return errors.Join(errs...)
}

// poll calls f every 200 ms until it holds or ctx ends; what says what was waited for.
func poll(ctx context.Context, what string, f func() (bool, error)) error {
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %w (last: %v)", what, context.Cause(ctx), last)
			}
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type noSetup struct{}

func (noSetup) Setup(context.Context, *Env) error   { return nil }
func (noSetup) Cleanup(context.Context, *Env) error { return nil }

func waitReady(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error { return n.(Readier).WaitReady(ctx) })
}

// stopped waits until the node's process is down (or frozen), where the node can tell.
func processState(ctx context.Context, env *Env, what string, want func(running, paused bool) bool) error {
	return each(env, func(n Node) error {
		s, ok := n.(Stater)
		if !ok {
			return nil // a node that cannot tell: trust the command's success
		}
		return poll(ctx, what, func() (bool, error) {
			running, paused, err := s.Running(ctx)
			return err == nil && want(running, paused), err
		})
	})
}

func execOK(ctx context.Context, n Node, cmd ...string) error {
	code, out, err := n.(Execer).Exec(ctx, cmd...)
	if err == nil && code != 0 {
		err = fmt.Errorf("%v exited %d: %s", cmd, code, out)
	}
	return err
}

// measurements is a goroutine-safe list of what a fault measured.
type measurements struct {
	mu   sync.Mutex
	list []Measurement
}

func (m *measurements) add(ms ...Measurement) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, ms...)
}

func (m *measurements) Measurements() []Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.list)
}
