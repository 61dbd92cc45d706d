package faults

import (
	"context"
	"fmt"
	"strings"
)

// cpuHogKind declares cpu-hog.
func cpuHogKind() *Kind {
	return &Kind{
		Name:        "cpu-hog",
		Description: "run stress-ng CPU workers inside the node, beside the database; stop them on recover",
		Class:       ClassSlowdown,
		Params:      []ParamSpec{{Name: "workers", Type: Int, Default: "2", Help: "stress-ng --cpu workers"}},
		Needs:       needs[Execer, Readier](),
		New:         func(p Params) Fault { return &cpuHog{workers: max(p.Int("workers"), 1)} },
	}
}

// cpuHog runs stress-ng inside the node. Its own timeout (an hour) is a backstop:
// Recover stops it, and a cancelled run recovers too.
type cpuHog struct {
	noSetup
	workers int
}

func (f *cpuHog) Inject(ctx context.Context, env *Env) error {
	cmd := fmt.Sprintf("nohup stress-ng --cpu %d --timeout 3600s >/dev/null 2>&1 &", f.workers)
	return each(env, func(n Node) error { return execOK(ctx, n, "sh", "-c", cmd) })
}

func (*cpuHog) WaitForEffect(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		return poll(ctx, "stress-ng not running", func() (bool, error) { return hogs(ctx, n) })
	})
}

func (*cpuHog) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		code, out, err := n.(Execer).Exec(ctx, "pkill", "stress-ng") // the parent and its stress-ng-cpu workers
		if err == nil && code > 1 {                                  // 1: nothing to stop
			err = fmt.Errorf("pkill exited %d: %s", code, out)
		}
		return err
	})
}

func (*cpuHog) WaitForRecovery(ctx context.Context, env *Env) error {
	if err := each(env, func(n Node) error {
		return poll(ctx, "stress-ng still running", func() (bool, error) {
			running, err := hogs(ctx, n)
			return err == nil && !running, err
		})
	}); err != nil {
		return err
	}
	return waitReady(ctx, env)
}

// hogCheck counts live stress-ng processes. Zombies do not count: the node's first
// process is the database server, which never reaps the processes exec leaves
// behind, so a stopped hog lingers in the process table as a zombie.
const hogCheck = `ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 ~ /^stress-ng/ {n++} END {print n+0}'`

// hogs reports whether stress-ng runs on the node.
func hogs(ctx context.Context, n Node) (bool, error) {
	code, out, err := n.(Execer).Exec(ctx, "sh", "-c", hogCheck)
	if err != nil {
		return false, err
	}
	if code != 0 {
		return false, fmt.Errorf("ps exited %d: %s", code, out)
	}
	return strings.TrimSpace(out) != "0", nil
}
