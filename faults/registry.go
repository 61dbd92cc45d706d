package faults

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/internal/usage"
)

// UsageError is bad input: an unknown fault or parameter, a value out of range, a
// fault the targets cannot take. The CLI maps it to exit code 2.
type UsageError = usage.Error

var usageErr = usage.Errorf

// ParamType is the type of a fault parameter.
type ParamType string

const (
	Duration ParamType = "duration" // 10s, 1m30s; must be positive
	Percent  ParamType = "percent"  // 1-99
	Int      ParamType = "int"      // whole number >= 0
	String   ParamType = "string"
)

// ParamSpec describes one parameter of a fault kind.
type ParamSpec struct {
	Name    string
	Type    ParamType
	Default string // "" = no default (optional unless Required)
	Help    string
}

// Params are validated parameter values.
type Params map[string]string

// Duration returns a duration parameter (zero when unset).
func (p Params) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(p[name])
	return d
}

// Int returns a whole-number or percent parameter.
func (p Params) Int(name string) int {
	i, _ := strconv.Atoi(p[name])
	return i
}

// Class is what a fault kind does to a cluster. Consumers that judge faults (the
// experiments' scorers) pick them by class, not by a list of kind names, so that a
// new kind of a known class is judged without touching them.
type Class string

const (
	// ClassFailover: a node lost, frozen or cut off (node-kill, node-stop,
	// node-restart, pause, partition); the cluster must fail over.
	ClassFailover Class = "failover"
	// ClassSpike: extra load from htapchaos's own workload (analytics-spike,
	// batch-spike).
	ClassSpike Class = "spike"
	// ClassMemory: memory pressure on a node (memory-fill).
	ClassMemory Class = "memory"
	// ClassSchema: a schema change under load (schema-change).
	ClassSchema Class = "schema"
	// ClassSlowdown: a node that serves, slowly: its CPU or its network throttled
	// (network-latency, network-bandwidth, slow-node, cpu-hog).
	ClassSlowdown Class = "slowdown"
)

// Classes lists every class, in the order above.
func Classes() []Class {
	return []Class{ClassFailover, ClassSpike, ClassMemory, ClassSchema, ClassSlowdown}
}

// Kind is a fault kind in the registry.
type Kind struct {
	Name        string
	Description string
	// Class is what the fault does (required: Register panics without one).
	Class Class
	// Measures names the measurements the fault makes (its Measure* constants), so
	// that a consumer can check, before anything runs, that what it reads is made.
	Measures []string
	// Unscored says why no failure mode judges the fault, for a kind that is only
	// a tool (the experiments' registry test accepts it unclaimed only with one).
	Unscored string
	// StopsServer marks a fault that stops, kills or restarts the database server
	// on purpose: a node down or restarted in its window is its doing, not a crash.
	StopsServer bool
	// Workload is the loadgen workload kind a spike runs (analytics, batch).
	Workload string
	// ClientPath marks a fault that acts on the path from the clients to the node
	// through a latency proxy (Proxies): load must be routed through the proxies
	// for it to show.
	ClientPath bool
	Params     []ParamSpec
	// Needs are the node capabilities the fault uses, checked before anything runs.
	Needs func(Node) error
	// Harmless marks a fault that cannot hurt a cluster (it only slows htapchaos's
	// own proxy): it needs no consent on clusters htapchaos did not create.
	Harmless bool
	// Validate checks the parameters together (one of a set, one given with
	// another), after each was checked against its type.
	Validate func(Params) error
	New      func(Params) Fault
}

// Registry holds fault kinds by name. Register panics on a duplicate.
type Registry struct{ m map[string]*Kind }

// builtin lists the builtin kinds, one line each; each kind's declaration and its
// life cycle live in a file named after it (node-kill: node_kill.go).
func builtin() []*Kind {
	return []*Kind{
		nodeKillKind(),
		nodeStopKind(),
		nodeRestartKind(),
		pauseKind(),
		partitionKind(),
		cpuHogKind(),
		slowNodeKind(),
		networkLatencyKind(),
		networkBandwidthKind(),
		memoryFillKind(),
		schemaChangeKind(),
		analyticsSpikeKind(),
		batchSpikeKind(),
	}
}

// NewRegistry returns the builtin fault kinds.
func NewRegistry() *Registry {
	r := &Registry{m: map[string]*Kind{}}
	for _, k := range builtin() {
		r.Register(k)
	}
	return r
}

// Register adds a kind. It panics on a duplicate, a kind without a known class, or
// a measurement declared twice.
func (r *Registry) Register(k *Kind) {
	if _, dup := r.m[k.Name]; dup {
		panic("faults: kind registered twice: " + k.Name)
	}
	if !slices.Contains(Classes(), k.Class) {
		panic(fmt.Sprintf("faults: kind %s: class %q is not one of %v", k.Name, k.Class, Classes()))
	}
	for i, m := range k.Measures {
		if slices.Contains(k.Measures[:i], m) {
			panic(fmt.Sprintf("faults: kind %s: measurement %q declared twice", k.Name, m))
		}
	}
	r.m[k.Name] = k
}

// Names lists the kinds, sorted.
func (r *Registry) Names() []string { return slices.Sorted(maps.Keys(r.m)) }

// Kinds lists the kinds, sorted by name.
func (r *Registry) Kinds() []*Kind {
	out := make([]*Kind, 0, len(r.m))
	for _, name := range r.Names() {
		out = append(out, r.m[name])
	}
	return out
}

// Makes says whether the kind declares the measurement.
func (k *Kind) Makes(measure string) bool { return slices.Contains(k.Measures, measure) }

// Get finds a kind.
func (r *Registry) Get(name string) (*Kind, error) {
	if k, ok := r.m[name]; ok {
		return k, nil
	}
	return nil, usageErr("fault", "unknown fault %q (known: %s)", name, strings.Join(r.Names(), ", "))
}

// Parse validates raw key=value parameters against the kind, fills defaults, and
// reports every problem at once.
func (k *Kind) Parse(raw map[string]string) (Params, error) {
	out := Params{}
	var errs []error
	specs := map[string]ParamSpec{}
	for _, s := range k.Params {
		specs[s.Name] = s
		if s.Default != "" {
			out[s.Name] = s.Default
		}
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		v := raw[name]
		s, ok := specs[name]
		if !ok {
			known := make([]string, 0, len(k.Params))
			for _, p := range k.Params {
				known = append(known, p.Name)
			}
			has := "it takes none"
			if len(known) > 0 {
				has = "it has: " + strings.Join(known, ", ")
			}
			errs = append(errs, usageErr("--param", "%s has no parameter %q (%s)", k.Name, name, has))
			continue
		}
		if err := checkValue(s, v); err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = v
	}
	if len(errs) == 0 && k.Validate != nil {
		errs = append(errs, k.Validate(out))
	}
	return out, errors.Join(errs...)
}

func checkValue(s ParamSpec, v string) error {
	switch s.Type {
	case Duration:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return usageErr("--param", "%s=%s: want a positive duration (e.g. 10s)", s.Name, v)
		}
	case Percent:
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 99 {
			return usageErr("--param", "%s=%s: want a percentage from 1 to 99", s.Name, v)
		}
	case Int:
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return usageErr("--param", "%s=%s: want a whole number >= 0", s.Name, v)
		}
	}
	return nil
}

// ParseParams parses --param values of the form key=value.
func ParseParams(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErr("--param", "%q: want key=value", v)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return out, nil
}

// Check says whether every target can take the kind.
func (k *Kind) Check(targets []Node) error {
	var errs []error
	for _, n := range targets {
		if k.Needs != nil {
			if err := k.Needs(n); err != nil {
				errs = append(errs, usageErr("--node", "%s cannot take %s: %v", n.Label(), k.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// External is implemented by clusters htapchaos did not create (exec targets).
type External interface {
	External() bool
}

// CheckConsent refuses a fault that can hurt a cluster htapchaos did not create
// unless the user allowed destructive faults and named each node explicitly (an
// index or a name, not random, all-but-one or primary).
func CheckConsent(c Cluster, k *Kind, nodeSpec string, allow bool) error {
	if e, ok := c.(External); !ok || !e.External() || k.Harmless {
		return nil
	}
	var errs []error
	if !allow {
		errs = append(errs, usageErr("--allow-destructive", "%s on %s, a cluster htapchaos did not create: pass --allow-destructive to confirm", k.Name, c.Name()))
	}
	for _, part := range strings.Split(nodeSpec, ",") {
		switch strings.TrimSpace(part) {
		case "random", "all-but-one", "primary":
			errs = append(errs, usageErr("--node", "%s: on a cluster htapchaos did not create, name each node (an index or a name)", part))
		}
	}
	return errors.Join(errs...)
}
