package experiments

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/loadgen"
	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// UsageError is a bad experiment file or option; the CLI exits 2.
type UsageError = usage.Error

// ParseOptions change a spec as it is read.
type ParseOptions struct {
	// Quick applies the spec's quick profile.
	Quick bool
	// Set are overrides path=value: cluster.nodes=5, workloads.oltp.rate=1000,
	// phases.baseline.duration=10s, budgets.failover.gap=2s. A list item is chosen by
	// its name (or kind) or its index.
	Set []string
	// Workloads, Faults and Scorers are the registries the spec's workload
	// kinds, fault kinds and failure modes are checked against (nil: the
	// builtins), so that a spec may name the caller's own. Run uses the same
	// ones unless its Options give others.
	Workloads *loadgen.Registry
	Faults    *faults.Registry
	Scorers   *ScorerRegistry
}

// Defaults a spec gets where it says nothing.
const (
	defaultUsers     = 1000
	defaultOrders    = 20000
	defaultHeartbeat = 100 * time.Millisecond
)

// LoadSpec reads and checks an experiment file.
func LoadSpec(path string, o ParseOptions) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{Field: "experiment", Msg: err.Error()}
	}
	return ParseSpec(path, b, o)
}

// ParseSpec parses and checks an experiment; file names it in errors. Every problem
// is reported at once, each with the file and line.
func ParseSpec(file string, b []byte, o ParseOptions) (*Spec, error) {
	bad := func(format string, a ...any) error {
		return &UsageError{Field: "experiment", Msg: fmt.Sprintf(format, a...)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, bad("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, bad("%s: want a mapping of name, modes, cluster, phases, workloads, faults, budgets", file)
	}
	// Unknown keys and values of the wrong type, with the file's own lines.
	if errs := strictDecode(file, b, new(Spec)); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	doc := root.Content[0]
	var overrides []string
	var overrideLines []int
	if o.Quick {
		if q := mapValue(doc, "quick"); q != nil && q.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(q.Content); i += 2 {
				overrides = append(overrides, q.Content[i].Value+"="+q.Content[i+1].Value)
				overrideLines = append(overrideLines, q.Content[i].Line)
			}
		}
	}
	var errs []error
	for i, kv := range append(overrides, o.Set...) {
		flag := "--set"
		if i < len(overrides) {
			// The spec's own quick profile: its file and line.
			flag = fmt.Sprintf("%s:%d: quick", file, overrideLines[i])
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, &UsageError{Field: flag, Msg: fmt.Sprintf("%q: want path=value", kv)})
			continue
		}
		if err := setPath(doc, strings.Split(strings.TrimSpace(k), "."), strings.TrimSpace(v)); err != nil {
			errs = append(errs, &UsageError{Field: flag, Msg: fmt.Sprintf("%s: %v", kv, err)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(overrides)+len(o.Set) > 0 {
		// The overrides must name real keys and fit their types too.
		out, err := yaml.Marshal(doc)
		if err == nil {
			for _, e := range strictDecode(file+" (after --quick and --set)", out, new(Spec)) {
				errs = append(errs, e)
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	s := &Spec{file: file, lines: map[string]int{}, regs: registries{workloads: o.Workloads, faults: o.Faults, scorers: o.Scorers}}
	if err := doc.Decode(s); err != nil {
		return nil, bad("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	walkLines(doc, "", s.lines)
	inlineSet := slices.ContainsFunc(append(overrides, o.Set...), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return strings.Contains("."+strings.TrimSpace(k)+".", ".workload.")
	})
	if errs := s.readWorkloadFiles(b, inlineSet); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// strictDecode decodes b into v rejecting unknown keys, and returns every error.
func strictDecode(file string, b []byte, v any) []error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]error, len(te.Errors))
		for i, e := range te.Errors {
			out[i] = &UsageError{Field: "experiment", Msg: fmt.Sprintf("%s: %s", file, strings.TrimPrefix(e, "yaml: "))}
		}
		return out
	}
	return []error{&UsageError{Field: "experiment", Msg: fmt.Sprintf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))}}
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setPath sets the scalar at path in n, creating mapping keys on the way. In a list,
// a path element picks the item whose name (or else kind) it is, or the item at that
// index.
func setPath(n *yaml.Node, path []string, value string) error {
	for i, p := range path {
		last := i == len(path)-1
		switch n.Kind {
		case yaml.MappingNode:
			next := mapValue(n, p)
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				if last {
					next = &yaml.Node{Kind: yaml.ScalarNode}
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, next)
			}
			n = next
		case yaml.SequenceNode:
			var item *yaml.Node
			for _, it := range n.Content {
				if nm := mapValue(it, "name"); nm != nil && nm.Value == p {
					item = it
					break
				}
			}
			if item == nil {
				for _, it := range n.Content {
					if mapValue(it, "name") == nil {
						if k := mapValue(it, "kind"); k != nil && k.Value == p {
							item = it
							break
						}
					}
				}
			}
			if item == nil {
				if idx, err := strconv.Atoi(p); err == nil && idx >= 0 && idx < len(n.Content) {
					item = n.Content[idx]
				}
			}
			if item == nil {
				return fmt.Errorf("no list item named %q in %s", p, strings.Join(path[:i], "."))
			}
			n = item
		default:
			return fmt.Errorf("%s is a value, not a mapping", strings.Join(path[:i], "."))
		}
		if last {
			if n.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s is a mapping or a list: set one of its keys", strings.Join(path, "."))
			}
			n.Value, n.Tag, n.Style = value, "", 0
		}
	}
	return nil
}

// walkLines records the line of every key path: workloads[1].rate, faults[0].
func walkLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			lines[p] = n.Content[i].Line
			walkLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, it := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = it.Line
			walkLines(it, p, lines)
		}
	}
}

func (s *Spec) defaults() {
	if s.Data.Users == 0 {
		s.Data.Users = defaultUsers
	}
	if s.Data.Orders == 0 {
		s.Data.Orders = defaultOrders
	}
	if c := s.Cluster; c != nil && (c.Topology == string(htc.Sharded) || c.Topology == string(htc.Vitess)) {
		c.Aggregators, c.Leaves, c.PartitionsPerLeaf = htc.ShardedDefaults(htc.Topology(c.Topology), c.Aggregators, c.Leaves, c.PartitionsPerLeaf)
		c.Nodes = c.Aggregators + c.Leaves
	}
	if s.Cluster != nil && s.Cluster.Nodes == 0 {
		switch s.Cluster.Topology {
		case "single":
			s.Cluster.Nodes = 1
		default:
			s.Cluster.Nodes = 3
		}
	}
	for i := range s.Workloads {
		if s.Workloads[i].Name == "" {
			s.Workloads[i].Name = s.Workloads[i].Kind
		}
		if s.Workloads[i].Route == "" {
			s.Workloads[i].Route = "all"
		}
	}
	for i := range s.Faults {
		if s.Faults[i].Name == "" {
			s.Faults[i].Name = s.Faults[i].Kind
		}
	}
	if s.Heartbeat != nil && s.Heartbeat.Every == 0 {
		s.Heartbeat.Every = Dur(defaultHeartbeat)
	}
	if s.Heartbeat != nil && s.Heartbeat.Node == 0 {
		s.Heartbeat.Node = 1
	}
}

// File is where the spec came from.
func (s *Spec) File() string { return s.file }

// at names the file and line of a key path.
func (s *Spec) at(path string) string {
	for p := path; p != ""; {
		if l, ok := s.lines[p]; ok {
			return fmt.Sprintf("%s:%d", s.file, l)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return s.file
}

// Nodes is the number of nodes the spec's cluster has (0: not known from the spec).
func (s *Spec) Nodes() int {
	if s.Cluster != nil {
		return s.Cluster.Nodes
	}
	return 0
}

// ClusterConfig turns the cluster part into a container cluster configuration.
func (s *Spec) ClusterConfig() htc.Config {
	c := s.Cluster
	cfg := htc.Config{Topology: htc.Topology(c.Topology), Nodes: c.Nodes, Memory: int64(c.Memory), CPUs: c.CPUs, LB: c.LB,
		Aggregators: c.Aggregators, Leaves: c.Leaves, PartitionsPerLeaf: c.PartitionsPerLeaf, LeafProxy: c.LeafProxy, Settings: maps.Clone(c.Settings)}
	for _, n := range slices.Sorted(maps.Keys(c.NodeSettings)) {
		if cfg.NodeSettings == nil {
			cfg.NodeSettings = map[int]map[string]string{}
		}
		cfg.NodeSettings[n] = maps.Clone(c.NodeSettings[n])
	}
	return cfg
}

// AbortConditions are the spec's abort conditions, parsed (Validate checked them).
func (s *Spec) AbortConditions() []AbortCondition {
	var out []AbortCondition
	for _, c := range s.Abort {
		if ac, err := ParseAbortCondition(c); err == nil {
			out = append(out, ac)
		}
	}
	return out
}

// Total is the length of the timeline.
func (s *Spec) Total() time.Duration {
	var t time.Duration
	for _, p := range s.Phases {
		t += p.Duration.D()
	}
	return t
}

// PhaseStart is when phase name starts after the run's start (-1: no such phase).
func (s *Spec) PhaseStart(name string) (time.Duration, time.Duration) {
	var t time.Duration
	for _, p := range s.Phases {
		if p.Name == name {
			return t, p.Duration.D()
		}
		t += p.Duration.D()
	}
	return -1, 0
}

// clusterKeys are the spec keys of the cluster settings htc.Config.Validate names
// by their flags.
var clusterKeys = map[string]string{
	"--topology": "cluster.topology", "--nodes": "cluster.nodes", "--memory": "cluster.memory", "--cpus": "cluster.cpus",
	"--set": "cluster.settings", "--aggregators": "cluster.aggregators", "--leaves": "cluster.leaves",
	"--partitions-per-leaf": "cluster.partitions_per_leaf", "--leaf-proxy": "cluster.leaf_proxy",
}

// notOnSharded are the failure modes a sharded cluster cannot show, and why.
var notOnSharded = map[string]string{
	ModeFreshness: "each row has one copy, on its leaf (no replica to read stale data from)",
}

// notOnVitess are the failure modes the vitess topology cannot show beyond those,
// and why.
var notOnVitess = map[string]string{
	ModeMemoryHeadroom: "a vtgate streams rows and accounts no per-query memory (MariaDB's accounting is the shards', not the aggregator's)",
}

// Validate checks the spec's meaning and reports every problem at once.
func (s *Spec) Validate() error { return s.validate(s.registries()) }

// validate checks the spec against the registries regs.
func (s *Spec) validate(regs registries) error {
	var errs []error
	modes := regs.scorers.Modes()
	bad := func(path, format string, a ...any) {
		errs = append(errs, &UsageError{Field: "experiment", Msg: s.at(path) + ": " + fmt.Sprintf(format, a...)})
	}
	if strings.TrimSpace(s.Name) == "" {
		bad("name", "no name")
	}
	if len(s.Modes) == 0 {
		bad("modes", "no failure modes to score (known: %s)", strings.Join(modes, ", "))
	}
	for i, m := range s.Modes {
		if !slices.Contains(modes, m) {
			bad(fmt.Sprintf("modes[%d]", i), "unknown failure mode %q (known: %s)", m, strings.Join(modes, ", "))
		}
	}
	if s.Cluster != nil && s.Target != "" {
		bad("target", "give a cluster or a target, not both")
	}
	if s.Cluster != nil && (s.Cluster.Topology == string(htc.Sharded) || s.Cluster.Topology == string(htc.Vitess)) {
		// Modes that do not apply to the topology are refused rather than scored.
		for i, m := range s.Modes {
			why, ok := notOnSharded[m]
			if !ok && s.Cluster.Topology == string(htc.Vitess) {
				why, ok = notOnVitess[m]
			}
			if ok {
				bad(fmt.Sprintf("modes[%d]", i), "%s does not apply to the %s topology: %s", m, s.Cluster.Topology, why)
			}
		}
	}
	nodes := s.Nodes()
	if s.Cluster != nil {
		if err := s.ClusterConfig().Validate(); err != nil {
			var ue *usage.Error
			for _, e := range unjoin(err) {
				if errors.As(e, &ue) {
					key := clusterKeys[ue.Field]
					if key == "" {
						key = "cluster"
					}
					bad(key, "%s: %s", key, ue.Msg)
				} else {
					bad("cluster", "%v", e)
				}
			}
		}
	}
	if s.Data.Users < 1 || s.Data.Orders < 1 {
		bad("data", "users and orders must be positive")
	}
	if s.Data.Merchants < 0 {
		bad("data.merchants", "data.merchants: %d: must not be negative", s.Data.Merchants)
	}
	if c := s.Cluster; c != nil && c.Topology != string(htc.Sharded) && c.Topology != string(htc.Vitess) {
		for key, v := range map[string]bool{"aggregators": c.Aggregators != 0, "leaves": c.Leaves != 0, "partitions_per_leaf": c.PartitionsPerLeaf != 0} {
			if v {
				bad("cluster."+key, "cluster.%s: only the sharded and vitess topologies take it (topology %s)", key, c.Topology)
			}
		}
	}

	for i, c := range s.Abort {
		if _, err := ParseAbortCondition(c); err != nil {
			bad(fmt.Sprintf("abort[%d]", i), "abort[%d]: %v", i, err)
		}
	}

	// Timeline.
	if len(s.Phases) == 0 {
		bad("phases", "no phases (e.g. baseline 20s, fault 20s, recovery 20s)")
	}
	phaseNames := map[string]bool{}
	for i, p := range s.Phases {
		path := fmt.Sprintf("phases[%d]", i)
		switch {
		case p.Name == "":
			bad(path, "phase %d has no name", i+1)
		case phaseNames[p.Name]:
			bad(path, "phase %q twice", p.Name)
		case strings.HasPrefix(p.Name, FaultPrefix):
			bad(path, "phase %q: names starting %q are the runner's", p.Name, FaultPrefix)
		}
		phaseNames[p.Name] = true
		if p.Duration <= 0 {
			bad(path, "phase %q: duration must be positive", p.Name)
		}
	}

	// Workloads.
	reg := regs.workloads
	if len(s.Workloads) == 0 {
		bad("workloads", "no workloads")
	}
	wnames := map[string]bool{}
	for i, w := range s.Workloads {
		path := fmt.Sprintf("workloads[%d]", i)
		if wnames[w.Name] {
			bad(path, "workload name %q twice (give each a name)", w.Name)
		}
		wnames[w.Name] = true
		wl, err := s.workload(i, reg)
		if err != nil {
			bad(path+".kind", "%s", usageMsg(err))
		} else {
			s.Workloads[i].Class = cmp.Or(wl.Class, loadgen.ClassOf(w.Kind))
			if _, err := loadgen.NewMix(wl, w.Mix); err != nil {
				bad(path+".mix", "%s", usageMsg(err))
			}
		}
		switch {
		case w.Rate < 0 || w.Concurrency < 0:
			bad(path, "%s: rate and concurrency must not be negative", w.Name)
		case math.IsNaN(w.Rate) || math.IsInf(w.Rate, 0):
			bad(path, "%s: rate %g: want a number of ops/s", w.Name, w.Rate)
		case w.Concurrency > loadgen.MaxConcurrency:
			bad(path, "%s: concurrency %d: at most %d", w.Name, w.Concurrency, loadgen.MaxConcurrency)
		case w.Rate > 0 && w.Concurrency > 0:
			bad(path, "%s: give a rate (open loop) or a concurrency (closed loop), not both", w.Name)
		case w.Rate == 0 && w.Concurrency == 0 && len(w.PhaseRates) == 0:
			bad(path, "%s: give a rate (ops/s) or a concurrency", w.Name)
		}
		if nodes > 0 {
			if _, err := loadgen.ParseRoute(w.Route, nodes); err != nil {
				bad(path+".route", "%s", usageMsg(err))
			}
		}
		for _, p := range w.During {
			if !phaseNames[p] {
				bad(path+".during", "%s: no phase %q", w.Name, p)
			}
		}
		for _, p := range slices.Sorted(maps.Keys(w.PhaseRates)) {
			if !phaseNames[p] {
				bad(path+".phase_rates", "%s: no phase %q", w.Name, p)
			}
			if r := w.PhaseRates[p]; !(r >= 0) || math.IsInf(r, 0) {
				bad(path+".phase_rates", "%s: %s: %g: must be a number, not negative", w.Name, p, r)
			}
		}
		if w.Retries < 0 || w.BatchRows < 0 || w.Backoff.D() < 0 || w.Timeout.D() < 0 {
			bad(path, "%s: retries, batch_rows, backoff and timeout must not be negative", w.Name)
		}
		if w.Retries > loadgen.MaxRetries || w.BatchRows > loadgen.MaxBatchRows {
			bad(path, "%s: retries at most %d, batch_rows at most %d", w.Name, loadgen.MaxRetries, loadgen.MaxBatchRows)
		}
	}

	s.checkWorkloadFiles(reg, bad)

	// The load generator takes these once for every workload.
	for _, field := range []struct {
		name string
		get  func(WorkloadSpec) string
	}{
		{"batch_rows", func(w WorkloadSpec) string { return strconv.Itoa(w.BatchRows) }},
		{"query", func(w WorkloadSpec) string { return w.Query }},
	} {
		seen := ""
		for i, w := range s.Workloads {
			v := field.get(w)
			if v == "" || v == "0" {
				continue
			}
			if seen != "" && v != seen {
				bad(fmt.Sprintf("workloads[%d].%s", i, field.name), "%s: %s differs from another workload's: the load generator takes one for all", w.Name, field.name)
			}
			seen = v
		}
	}

	// Faults.
	freg := regs.faults
	fnames := map[string]bool{}
	for i, f := range s.Faults {
		path := fmt.Sprintf("faults[%d]", i)
		if fnames[f.Name] {
			bad(path, "fault name %q twice (give each a name)", f.Name)
		}
		fnames[f.Name] = true
		k, err := freg.Get(f.Kind)
		if err != nil {
			bad(path+".kind", "%s", usageMsg(err))
		} else if _, err := k.Parse(f.Params); err != nil {
			for _, e := range unjoin(err) {
				bad(path+".params", "%s: %s", f.Name, usageMsg(e))
			}
		}
		start, dur := s.PhaseStart(f.Phase)
		switch {
		case f.Phase == "":
			bad(path, "%s: no phase to start in", f.Name)
		case start < 0:
			bad(path+".phase", "%s: no phase %q", f.Name, f.Phase)
		case f.Offset.D() >= dur:
			bad(path+".offset", "%s: offset %v is past the end of phase %s (%v)", f.Name, f.Offset.D(), f.Phase, dur)
		case start+f.Offset.D()+f.For.D() > s.Total():
			bad(path+".for", "%s: holds %v from %v, past the end of the timeline (%v)", f.Name, f.For.D(), start+f.Offset.D(), s.Total())
		}
		if s.Cluster != nil && s.Cluster.Topology != "primary-replica" && strings.Contains(f.Node, "primary") {
			bad(path+".node", "%s: node primary: a %s cluster has no primary", f.Name, s.Cluster.Topology)
		}
		if strings.TrimSpace(f.Node) == "" {
			bad(path, "%s: no node (an index, a name, random, all-but-one or primary)", f.Name)
		} else if nodes > 0 {
			for _, part := range strings.Split(f.Node, ",") {
				part = strings.TrimSpace(part)
				if i, err := strconv.Atoi(strings.TrimPrefix(part, "n")); err == nil && (i < 1 || i > nodes) {
					bad(path+".node", "%s: node %s: out of range 1-%d", f.Name, part, nodes)
				}
			}
		}
		if f.Expect != "" && f.Expect != "no-effect" {
			bad(path+".expect", "%s: expect %q: want no-effect or nothing", f.Name, f.Expect)
		}
	}
	if s.Heartbeat != nil && nodes > 0 && (s.Heartbeat.Node < 1 || s.Heartbeat.Node > nodes) {
		bad("heartbeat.node", "node %d: out of range 1-%d", s.Heartbeat.Node, nodes)
	}

	// Budgets.
	sc := regs.scorers
	for _, m := range slices.Sorted(maps.Keys(s.Budgets)) {
		if !slices.Contains(modes, m) {
			bad("budgets."+m, "unknown failure mode %q (known: %s)", m, strings.Join(modes, ", "))
			continue
		}
		if _, ok := sc.Get(m); !ok {
			continue // a mode without a scorer yet: nothing to check against
		}
		if _, err := sc.Budgets(m, s.Budgets[m]); err != nil {
			bad("budgets."+m, "%v", err)
		}
	}
	return errors.Join(errs...)
}

func usageMsg(err error) string {
	var ue *usage.Error
	if errors.As(err, &ue) {
		return ue.Msg
	}
	return err.Error()
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
