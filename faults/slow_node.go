package faults

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Measurements of slow-node.
const (
	MeasureThrottledPeriods = "throttled periods" // slow-node: CFS periods throttled
	MeasureThrottledTime    = "throttled time"    // s throttled
)

// slowNodeKind declares slow-node.
func slowNodeKind() *Kind {
	return &Kind{
		Name:        "slow-node",
		Description: "throttle the node's CPU to a percentage of one core (a gray failure: on Galera it spreads through flow control)",
		Class:       ClassSlowdown,
		Measures:    []string{MeasureThrottledPeriods, MeasureThrottledTime},
		Params:      []ParamSpec{{Name: "percent", Type: Percent, Default: "10", Help: "CPU left to the node, in percent of one core"}},
		Needs:       needsAll(capability[CPULimiter](), capability[Readier]()),
		New:         func(p Params) Fault { return &slowNode{cores: float64(p.Int("percent")) / 100} },
	}
}

// slowNode caps the node's CPU through the engine's CPU quota.
type slowNode struct {
	noSetup
	measurements
	cores float64

	mu       sync.Mutex
	restores map[int]func(context.Context) error
	before   map[int]cpuStat
}

func (f *slowNode) Inject(ctx context.Context, env *Env) error {
	f.mu.Lock()
	if f.restores == nil {
		f.restores, f.before = map[int]func(context.Context) error{}, map[int]cpuStat{}
	}
	f.mu.Unlock()
	return each(env, func(n Node) error {
		restore, err := n.(CPULimiter).LimitCPU(ctx, f.cores)
		if restore != nil { // also after an error: the limit may be in force
			f.mu.Lock()
			f.restores[n.Index()] = restore
			f.mu.Unlock()
		}
		return err
	})
}

// WaitForEffect: where the node runs commands, its cgroup shows the quota.
func (f *slowNode) WaitForEffect(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		if _, ok := n.(Execer); !ok {
			return nil
		}
		return poll(ctx, "the node's CPU quota is not in force", func() (bool, error) {
			st, err := readCPUStat(ctx, n)
			if err != nil {
				return false, err
			}
			f.mu.Lock()
			f.before[n.Index()] = st
			f.mu.Unlock()
			return st.quota > 0 && st.quota < f.cores*1.05+0.001 && st.quota > f.cores*0.95-0.001, nil
		})
	})
}

// Recover records how often the node was throttled while the quota held, then lifts
// the quota.
func (f *slowNode) Recover(ctx context.Context, env *Env) error {
	return each(env, func(n Node) error {
		f.mu.Lock()
		restore := f.restores[n.Index()]
		before, hadBefore := f.before[n.Index()]
		f.mu.Unlock()
		if restore == nil {
			return nil // never limited
		}
		if hadBefore {
			if st, err := readCPUStat(ctx, n); err == nil {
				f.add(Measurement{Name: MeasureThrottledPeriods, Node: n.Label(), Value: float64(st.throttled - before.throttled),
					Note: fmt.Sprintf("quota %.0f%% of a core", f.cores*100)},
					Measurement{Name: MeasureThrottledTime, Node: n.Label(), Value: (st.throttledTime - before.throttledTime).Seconds(), Unit: "s"})
			}
		}
		if err := restore(ctx); err != nil {
			return err
		}
		f.mu.Lock()
		delete(f.restores, n.Index())
		f.mu.Unlock()
		return nil
	})
}

func (f *slowNode) WaitForRecovery(ctx context.Context, env *Env) error {
	if err := each(env, func(n Node) error {
		if _, ok := n.(Execer); !ok {
			return nil
		}
		return poll(ctx, "the node's CPU quota is still in force", func() (bool, error) {
			st, err := readCPUStat(ctx, n)
			return err == nil && (st.quota <= 0 || st.quota > f.cores*1.05+0.001), err
		})
	}); err != nil {
		return err
	}
	return waitReady(ctx, env)
}

// cpuStat is the node's CPU cgroup: the quota in cores (<= 0: none) and how often
// and how long it was throttled.
type cpuStat struct {
	quota         float64
	throttled     int64
	throttledTime time.Duration
}

// cpuStatScript prints "quota period nr_throttled throttled_ns" from cgroup v1 or v2.
const cpuStatScript = `if [ -f /sys/fs/cgroup/cpu.max ]; then
  read q p < /sys/fs/cgroup/cpu.max; [ "$q" = max ] && q=-1
  t=$(awk '$1=="nr_throttled"{print $2}' /sys/fs/cgroup/cpu.stat); tt=$(awk '$1=="throttled_usec"{print $2*1000}' /sys/fs/cgroup/cpu.stat)
else
  d=/sys/fs/cgroup/cpu; q=$(cat $d/cpu.cfs_quota_us); p=$(cat $d/cpu.cfs_period_us)
  t=$(awk '$1=="nr_throttled"{print $2}' $d/cpu.stat); tt=$(awk '$1=="throttled_time"{print $2}' $d/cpu.stat)
fi
echo "$q $p $t $tt"`

func readCPUStat(ctx context.Context, n Node) (cpuStat, error) {
	code, out, err := n.(Execer).Exec(ctx, "sh", "-c", cpuStatScript)
	if err != nil {
		return cpuStat{}, err
	}
	var q, p, t, tt float64
	if _, serr := fmt.Sscan(out, &q, &p, &t, &tt); code != 0 || serr != nil || p <= 0 {
		return cpuStat{}, fmt.Errorf("read the CPU cgroup (exit %d): %q", code, out)
	}
	st := cpuStat{quota: q / p, throttled: int64(t), throttledTime: time.Duration(tt)}
	if q < 0 {
		st.quota = -1
	}
	return st, nil
}
