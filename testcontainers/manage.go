package testcontainers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func labelFilters(labels map[string]string) client.Filters {
	f := client.Filters{}
	f.Add("label", LabelTool+"="+toolName)
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

func listContainers(ctx context.Context, e *Engine, labels map[string]string) ([]container.Summary, error) {
	res, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return res.Items, nil
}

// RemoveResult counts what Remove deleted.
type RemoveResult struct {
	Clusters   []string `json:"clusters"`
	Containers int      `json:"containers"`
	Networks   int      `json:"networks"`
}

// Remove deletes every container and network labelled with the cluster name. It
// needs nothing but the engine, so it also cleans up after a crashed run.
func Remove(ctx context.Context, e *Engine, name string) (RemoveResult, error) {
	return removeLabelled(ctx, e, map[string]string{LabelCluster: name})
}

// RemoveAll deletes every container and network htapchaos created whose labels
// include the given ones (none: everything htapchaos created).
func RemoveAll(ctx context.Context, e *Engine, labels map[string]string) (RemoveResult, error) {
	return removeLabelled(ctx, e, labels)
}

func removeLabelled(ctx context.Context, e *Engine, labels map[string]string) (RemoveResult, error) {
	var res RemoveResult
	ctrs, err := listContainers(ctx, e, labels)
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, ctr := range ctrs {
		if name := ctr.Labels[LabelCluster]; !seen[name] {
			seen[name] = true
			res.Clusters = append(res.Clusters, name)
		}
		wg.Go(func() {
			err := removeContainer(ctx, e, ctr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			res.Containers++
		})
	}
	wg.Wait()
	nets, err := e.Client.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return res, errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range nets.Items {
		if name := n.Labels[LabelCluster]; !seen[name] {
			seen[name] = true
			res.Clusters = append(res.Clusters, name)
		}
		if _, err := e.Client.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		res.Networks++
	}
	sort.Strings(res.Clusters)
	return res, errors.Join(errs...)
}

func removeContainer(ctx context.Context, e *Engine, ctr container.Summary) error {
	if ctr.State == container.StatePaused {
		// A frozen container cannot die; thaw it first.
		_, _ = e.Client.ContainerUnpause(ctx, ctr.ID, client.ContainerUnpauseOptions{})
	}
	_, err := e.Client.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", containerName(ctr), err)
	}
	return nil
}

func containerName(ctr container.Summary) string {
	if len(ctr.Names) > 0 {
		return ctr.Names[0][1:]
	}
	return ctr.ID[:12]
}

// Summary is one line of `cluster ls`.
type Summary struct {
	Name     string    `json:"name"`
	Topology Topology  `json:"topology"`
	Nodes    int       `json:"nodes"`
	Running  int       `json:"running"`
	LB       bool      `json:"lb"`
	Created  time.Time `json:"created"`
}

// List summarises the clusters htapchaos created in the engine.
func List(ctx context.Context, e *Engine) ([]Summary, error) {
	ctrs, err := listContainers(ctx, e, nil)
	if err != nil {
		return nil, err
	}
	by := map[string]*Summary{}
	for _, ctr := range ctrs {
		name := ctr.Labels[LabelCluster]
		s := by[name]
		if s == nil {
			s = &Summary{Name: name, Topology: Topology(ctr.Labels[LabelTopology]), Created: time.Unix(ctr.Created, 0)}
			by[name] = s
		}
		if ctr.Labels[LabelKind] == kindLB {
			s.LB = true
			continue
		}
		if k := ctr.Labels[LabelKind]; k == kindProxy || k == kindVitessInfra {
			continue // a sharded cluster's leaf proxy, vitess's etcd and vtctld: not database nodes
		}
		s.Nodes++
		if ctr.State == container.StateRunning {
			s.Running++
		}
		if t := time.Unix(ctr.Created, 0); t.Before(s.Created) {
			s.Created = t
		}
	}
	out := make([]Summary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Summary) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// ErrNoCluster means no container carries the cluster's name.
var ErrNoCluster = errors.New("no such cluster")

// Attach finds a running cluster by name (one `cluster up` left running, for example)
// and returns handles on its nodes.
func Attach(ctx context.Context, name string) (*Cluster, error) {
	e, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	ctrs, err := listContainers(ctx, e, map[string]string{LabelCluster: name})
	if err != nil {
		return nil, err
	}
	if len(ctrs) == 0 {
		return nil, fmt.Errorf("%w: %q (see `htapchaos cluster ls`)", ErrNoCluster, name)
	}
	c := &Cluster{Name: name, engine: e}
	for _, ctr := range ctrs {
		l := ctr.Labels
		c.Topology = Topology(l[LabelTopology])
		c.password = l[LabelPassword]
		if p, err := strconv.Atoi(l[LabelPartitions]); err == nil {
			c.PartitionsPerLeaf = p
		}
		idx, _ := strconv.Atoi(l[LabelNode])
		n := &Node{Index: idx, Name: containerName(ctr), Alias: l[LabelAlias], Role: Role(l[LabelRole]), ID: ctr.ID, c: c}
		if l[LabelKind] == kindProxy {
			c.Proxy = &LeafProxy{ID: ctr.ID, Listen: map[string]string{}}
			continue
		}
		if l[LabelKind] == kindVitessInfra {
			if c.vitessInfra == nil {
				c.vitessInfra = map[string]*Node{}
			}
			c.vitessInfra[l[LabelAlias]] = n
			continue
		}
		if l[LabelKind] == kindLB {
			c.LB = n
		} else {
			c.Nodes = append(c.Nodes, n)
		}
	}
	slices.SortFunc(c.Nodes, func(a, b *Node) int { return a.Index - b.Index })
	for i, n := range c.Nodes {
		if n.Index != i+1 {
			return nil, fmt.Errorf("cluster %q is incomplete: node %d is missing", name, i+1)
		}
	}
	nets, err := e.Client.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilters(map[string]string{LabelCluster: name, LabelKind: kindClusterNet})})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	if len(nets.Items) != 1 {
		return nil, fmt.Errorf("cluster %q: want 1 cluster network, found %d", name, len(nets.Items))
	}
	c.clusterNet = nets.Items[0].ID
	if c.Proxy != nil {
		// A stopped proxy has no published ports: the cluster is still usable,
		// only network-latency on a leaf is not (LeafProxy then says no).
		_ = c.readProxyPorts(ctx)
	}
	for _, n := range append(slices.Clone(c.Nodes), c.LB) {
		if n == nil {
			continue
		}
		// A stopped node has no published port yet; Start reads it then.
		_ = n.refreshPort(ctx)
	}
	return c, nil
}

// countLabelled counts containers and networks carrying the labels.
func countLabelled(ctx context.Context, e *Engine, labels map[string]string) (int, error) {
	ctrs, err := listContainers(ctx, e, labels)
	if err != nil {
		return 0, err
	}
	nets, err := e.Client.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return 0, err
	}
	return len(ctrs) + len(nets.Items), nil
}
