package testcontainers

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Role is what a node does in its topology.
type Role string

const (
	RoleSingle  Role = "single"
	RoleGalera  Role = "galera"
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
	RoleLB      Role = "lb"
	// RoleAggregator holds Spider tables only and plans queries over the leaves.
	RoleAggregator Role = "aggregator"
	// RoleLeaf holds the partitions (plain InnoDB tables).
	RoleLeaf Role = "leaf"
)

var mysqlPort = network.MustParsePort("3306/tcp")

// Node is one container of a cluster: a database node or the load balancer. Faults
// act on nodes only through these methods. A Node is safe for concurrent use.
type Node struct {
	Index int    // 1-based; 0 for the load balancer
	Name  string // container name
	Alias string // host name on the cluster network (n1, n2, ...; lb)
	Role  Role
	ID    string // container ID

	c *Cluster

	mu   sync.Mutex
	port int
	db   *sql.DB
}

// Host is the address the node's MySQL port is published on.
func (n *Node) Host() string { return n.c.engine.Host }

// Port is the published MySQL port. It changes when the container restarts.
func (n *Node) Port() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.port
}

// Addr is host:port of the published MySQL port.
func (n *Node) Addr() string { return net.JoinHostPort(n.Host(), strconv.Itoa(n.Port())) }

// DSN is a go-sql-driver/mysql DSN for root on the node's published port, with dial,
// read and write timeouts so that a frozen node cannot hang a client.
func (n *Node) DSN() string {
	return n.dsn(n.Port(), 5*time.Second, 30*time.Second)
}

func (n *Node) dsn(port int, dial, rw time.Duration) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net = "root", n.c.password, "tcp"
	cfg.Addr = net.JoinHostPort(n.Host(), strconv.Itoa(port))
	cfg.DBName = n.Database()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = dial, rw, rw
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// Database is the database the node's DSN names: the keyspace through a vtgate,
// the shard's own database on a vitess leaf, DefaultDatabase elsewhere.
func (n *Node) Database() string {
	if n.c != nil && n.c.Topology == Vitess && n.Role == RoleLeaf {
		return VitessShardDatabase
	}
	return DefaultDatabase
}

// DB is a small connection pool on the node for control queries (status, setup).
// It is replaced when the node's published port changes.
func (n *Node) DB() (*sql.DB, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.db != nil {
		return n.db, nil
	}
	db, err := sql.Open("mysql", n.dsn(n.port, 2*time.Second, 10*time.Second))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(30 * time.Second)
	n.db = db
	return db, nil
}

// close releases the control pool.
func (n *Node) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.db != nil {
		n.db.Close()
		n.db = nil
	}
}

// refreshPort re-reads the published port (it changes after a restart).
func (n *Node) refreshPort(ctx context.Context) error {
	res, err := n.c.engine.Client.ContainerInspect(ctx, n.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect %s: %w", n.Name, err)
	}
	port := 0
	if ns := res.Container.NetworkSettings; ns != nil {
		for _, b := range ns.Ports[mysqlPort] {
			if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
				port = p
				break
			}
		}
	}
	if port == 0 {
		return fmt.Errorf("%s: port 3306 is not published (state %s)", n.Name, res.Container.State.Status)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port != n.port {
		n.port = port
		if n.db != nil {
			n.db.Close()
			n.db = nil
		}
	}
	return nil
}

// Kill sends SIGKILL and waits until the container has stopped.
func (n *Node) Kill(ctx context.Context) error {
	if _, err := n.c.engine.Client.ContainerKill(ctx, n.ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill %s: %w", n.Name, err)
	}
	return n.waitStopped(ctx)
}

// Stop shuts the server down gracefully (SIGTERM), with SIGKILL after timeout.
func (n *Node) Stop(ctx context.Context, timeout time.Duration) error {
	secs := int(timeout.Round(time.Second) / time.Second)
	if _, err := n.c.engine.Client.ContainerStop(ctx, n.ID, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop %s: %w", n.Name, err)
	}
	return n.waitStopped(ctx)
}

func (n *Node) waitStopped(ctx context.Context) error {
	return poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		st, err := n.State(ctx)
		if err != nil {
			return false, "", err
		}
		return !st.Running, "still running", nil
	}, n.Name+" did not stop")
}

// Start starts a stopped or killed node, re-reads its published port, and waits
// until it is ready again (Galera: rejoined, Primary and Synced; replica: replicating).
func (n *Node) Start(ctx context.Context) error {
	if _, err := n.c.engine.Client.ContainerStart(ctx, n.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	if err := n.refreshPort(ctx); err != nil {
		return err
	}
	return n.WaitReady(ctx)
}

// Pause freezes every process of the node (cgroup freezer): connections stay open
// and nothing answers, like a stalled VM or a long GC pause.
func (n *Node) Pause(ctx context.Context) error {
	if _, err := n.c.engine.Client.ContainerPause(ctx, n.ID, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause %s: %w", n.Name, err)
	}
	return nil
}

// Unpause thaws a paused node.
func (n *Node) Unpause(ctx context.Context) error {
	if _, err := n.c.engine.Client.ContainerUnpause(ctx, n.ID, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause %s: %w", n.Name, err)
	}
	return nil
}

// Disconnect cuts the node off the cluster network: it can no longer reach its
// peers, while clients still reach it on its published port.
func (n *Node) Disconnect(ctx context.Context) error {
	if n.c.clusterNet == "" {
		return fmt.Errorf("disconnect %s: cluster has no cluster network", n.Name)
	}
	_, err := n.c.engine.Client.NetworkDisconnect(ctx, n.c.clusterNet, client.NetworkDisconnectOptions{Container: n.ID, Force: true})
	if err != nil {
		return fmt.Errorf("disconnect %s from the cluster network: %w", n.Name, err)
	}
	return nil
}

// Reconnect puts the node back on the cluster network under its alias.
func (n *Node) Reconnect(ctx context.Context) error {
	// Already connected (a heal after the fault's own recovery ran): nothing to do.
	if on, err := n.OnClusterNet(ctx); err == nil && on {
		return nil
	}
	_, err := n.c.engine.Client.NetworkConnect(ctx, n.c.clusterNet, client.NetworkConnectOptions{
		Container:      n.ID,
		EndpointConfig: &network.EndpointSettings{Aliases: []string{n.Alias}},
	})
	if err != nil {
		return fmt.Errorf("reconnect %s to the cluster network: %w", n.Name, err)
	}
	return nil
}

// OnClusterNet says whether the node is connected to its cluster network (a
// partition fault disconnects it).
func (n *Node) OnClusterNet(ctx context.Context) (bool, error) {
	ins, err := n.c.engine.Client.ContainerInspect(ctx, n.ID, client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", n.Name, err)
	}
	if ins.Container.NetworkSettings != nil {
		for _, ep := range ins.Container.NetworkSettings.Networks {
			if ep != nil && ep.NetworkID == n.c.clusterNet {
				return true, nil
			}
		}
	}
	return false, nil
}

// ExecResult is the outcome of a command run inside a node.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// Exec runs a command inside the node's container and waits for it.
func (n *Node) Exec(ctx context.Context, cmd ...string) (ExecResult, error) {
	cli := n.c.engine.Client
	cr, err := cli.ExecCreate(ctx, n.ID, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s: %w", n.Name, err)
	}
	ar, err := cli.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s: %w", n.Name, err)
	}
	defer ar.Close()
	stop := context.AfterFunc(ctx, func() { ar.Conn.Close() })
	defer stop()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, ar.Reader); err != nil && ctx.Err() == nil {
		return ExecResult{}, fmt.Errorf("exec in %s: read output: %w", n.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s: %w", n.Name, err)
	}
	ins, err := cli.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s: %w", n.Name, err)
	}
	return ExecResult{ExitCode: ins.ExitCode, Stdout: out.String(), Stderr: errOut.String()}, nil
}

// MemoryStats is a node's memory use as `docker stats` shows it.
type MemoryStats struct {
	Usage   uint64  `json:"usage"` // bytes in use, without inactive file cache
	Limit   uint64  `json:"limit"` // bytes
	Percent float64 `json:"percent"`
}

// MemoryStats reads one sample of the container's memory use.
func (n *Node) MemoryStats(ctx context.Context) (MemoryStats, error) {
	s, err := n.ResourceStats(ctx)
	return s.Memory, err
}

// ResourceStats is one sample of the engine's statistics of a node.
type ResourceStats struct {
	Memory MemoryStats `json:"memory"`
	// NetRx and NetTx are the bytes received and sent over every interface of the
	// container since its interfaces were created (clients' traffic included).
	NetRx, NetTx int64
	// CPU is the CPU time the container has used since it started, and Read when
	// the engine read it: two readings give the CPU use between them
	// (CPUPercentSince).
	CPU  time.Duration
	Read time.Time
}

// CPUPercentSince is the container's CPU use between an earlier reading and this
// one, as docker stats shows it: 100 is one core busy. It is 0 when the readings
// cannot be compared (no time between them, or the counter went back: restarted).
func (s ResourceStats) CPUPercentSince(earlier ResourceStats) float64 {
	wall := s.Read.Sub(earlier.Read)
	cpu := s.CPU - earlier.CPU
	if wall <= 0 || cpu < 0 || earlier.Read.IsZero() {
		return 0
	}
	return float64(cpu) / float64(wall) * 100
}

// ResourceStats reads the engine's statistics of the container: nothing runs inside
// it, so it is safe on a node being frozen (an exec racing a pause can wedge the
// engine's hold on the container until the exec is killed).
func (n *Node) ResourceStats(ctx context.Context) (ResourceStats, error) {
	res, err := n.c.engine.Client.ContainerStats(ctx, n.ID, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return ResourceStats{}, fmt.Errorf("stats of %s: %w", n.Name, err)
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return ResourceStats{}, fmt.Errorf("stats of %s: %w", n.Name, err)
	}
	out := ResourceStats{Memory: memoryOf(s.MemoryStats), CPU: time.Duration(s.CPUStats.CPUUsage.TotalUsage), Read: s.Read}
	if out.Read.IsZero() {
		out.Read = time.Now()
	}
	for _, ns := range s.Networks {
		out.NetRx += int64(ns.RxBytes)
		out.NetTx += int64(ns.TxBytes)
	}
	return out, nil
}

// memoryOf computes usage the way the docker CLI does: usage minus inactive file
// cache (total_inactive_file on cgroup v1, inactive_file on v2).
func memoryOf(m container.MemoryStats) MemoryStats {
	used := m.Usage
	if v, ok := m.Stats["total_inactive_file"]; ok && v < used {
		used -= v
	} else if v, ok := m.Stats["inactive_file"]; ok && v < used {
		used -= v
	}
	ms := MemoryStats{Usage: used, Limit: m.Limit}
	if m.Limit > 0 {
		ms.Percent = float64(used) / float64(m.Limit) * 100
	}
	return ms
}

// State is the container's life-cycle state.
type State struct {
	Status     string    `json:"status"` // created, running, paused, restarting, exited, dead
	Running    bool      `json:"running"`
	Paused     bool      `json:"paused"`
	ExitCode   int       `json:"exit_code"`
	OOMKilled  bool      `json:"oom_killed"`
	Restarts   int       `json:"restarts"` // restarts by the engine's restart policy
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// State inspects the container.
func (n *Node) State(ctx context.Context) (State, error) {
	res, err := n.c.engine.Client.ContainerInspect(ctx, n.ID, client.ContainerInspectOptions{})
	if err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", n.Name, err)
	}
	st := State{Restarts: res.Container.RestartCount}
	if s := res.Container.State; s != nil {
		st.Status, st.Running, st.Paused = string(s.Status), s.Running, s.Paused
		st.ExitCode, st.OOMKilled = s.ExitCode, s.OOMKilled
		st.StartedAt, _ = time.Parse(time.RFC3339Nano, s.StartedAt)
		st.FinishedAt, _ = time.Parse(time.RFC3339Nano, s.FinishedAt)
	}
	return st, nil
}

// Logs returns the last lines of the container's output.
func (n *Node) Logs(ctx context.Context, lines int) (string, error) {
	rc, err := n.c.engine.Client.ContainerLogs(ctx, n.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := stdcopy.StdCopy(&b, &b, rc); err != nil {
		return b.String(), err
	}
	return b.String(), nil
}

var likeRE = regexp.MustCompile(`^[A-Za-z0-9_%]+$`)

// Status reads SHOW GLOBAL STATUS rows whose names match the LIKE pattern (letters,
// digits, _ and %).
func (n *Node) Status(ctx context.Context, like string) (map[string]string, error) {
	if !likeRE.MatchString(like) {
		return nil, fmt.Errorf("status pattern %q: use letters, digits, _ and %%", like)
	}
	db, err := n.DB()
	if err != nil {
		return nil, err
	}
	// SHOW does not take placeholders in prepared statements.
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS LIKE '"+like+"'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[strings.ToLower(k)] = v
	}
	return m, rows.Err()
}

// GaleraStatus is a node's view of Galera membership.
type GaleraStatus struct {
	Size          int    `json:"size"`           // wsrep_cluster_size
	ClusterStatus string `json:"cluster_status"` // Primary, non-Primary, Disconnected
	Ready         bool   `json:"ready"`          // wsrep_ready
	State         string `json:"state"`          // Synced, Donor/Desynced, Joining, Joined, ...
}

func (g GaleraStatus) String() string {
	return fmt.Sprintf("size=%d status=%s ready=%t state=%s", g.Size, g.ClusterStatus, g.Ready, g.State)
}

// Synced reports a Primary, ready, Synced node.
func (g GaleraStatus) Synced() bool {
	return g.ClusterStatus == "Primary" && g.Ready && g.State == "Synced"
}

// GaleraStatus reads the node's wsrep status.
func (n *Node) GaleraStatus(ctx context.Context) (GaleraStatus, error) {
	m, err := n.Status(ctx, "wsrep_%")
	if err != nil {
		return GaleraStatus{}, err
	}
	size, _ := strconv.Atoi(m["wsrep_cluster_size"])
	return GaleraStatus{
		Size:          size,
		ClusterStatus: m["wsrep_cluster_status"],
		Ready:         m["wsrep_ready"] == "ON",
		State:         m["wsrep_local_state_comment"],
	}, nil
}

// ReplicaStatus is a replica's view of asynchronous replication.
type ReplicaStatus struct {
	IORunning     bool   `json:"io_running"`
	SQLRunning    bool   `json:"sql_running"`
	SecondsBehind int    `json:"seconds_behind"` // -1 when unknown
	LastError     string `json:"last_error,omitempty"`
}

// ReplicaStatus reads SHOW SLAVE STATUS.
func (n *Node) ReplicaStatus(ctx context.Context) (ReplicaStatus, error) {
	db, err := n.DB()
	if err != nil {
		return ReplicaStatus{}, err
	}
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return ReplicaStatus{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return ReplicaStatus{}, err
	}
	if !rows.Next() {
		return ReplicaStatus{SecondsBehind: -1}, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return ReplicaStatus{}, err
	}
	get := func(name string) string {
		for i, c := range cols {
			if c == name {
				return vals[i].String
			}
		}
		return ""
	}
	rs := ReplicaStatus{
		IORunning:     get("Slave_IO_Running") == "Yes",
		SQLRunning:    get("Slave_SQL_Running") == "Yes",
		SecondsBehind: -1,
		LastError:     strings.TrimSpace(get("Last_IO_Error") + " " + get("Last_SQL_Error")),
	}
	if v, err := strconv.Atoi(get("Seconds_Behind_Master")); err == nil {
		rs.SecondsBehind = v
	}
	return rs, rows.Err()
}

// WaitReady waits until the node serves its role: it answers SQL; a Galera node is
// Primary, ready and Synced; a replica's replication threads run; the load balancer
// forwards a query.
func (n *Node) WaitReady(ctx context.Context) error {
	return n.waitFor(ctx, func(ctx context.Context) (bool, string, error) {
		return n.ready(ctx, 0)
	})
}

// ready checks one time; for Galera with size > 0 it also wants that cluster
// size, for a vtgate that many shard primaries serving.
func (n *Node) ready(ctx context.Context, size int) (bool, string, error) {
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	switch n.Role {
	case RoleGalera:
		g, err := n.GaleraStatus(qctx)
		if err != nil {
			return false, "not answering: " + shortErr(err), nil
		}
		ok := g.Synced() && (size == 0 || g.Size == size)
		return ok, g.String(), nil
	case RoleReplica:
		r, err := n.ReplicaStatus(qctx)
		if err != nil {
			return false, "not answering: " + shortErr(err), nil
		}
		return r.IORunning && r.SQLRunning, fmt.Sprintf("io_running=%t sql_running=%t %s", r.IORunning, r.SQLRunning, r.LastError), nil
	case RoleAggregator:
		if n.c.Topology == Vitess {
			return n.vitessReady(qctx, size)
		}
		return n.answers(qctx)
	case RoleLeaf:
		if n.c.Topology == Vitess {
			return n.vitessLeafReady(qctx)
		}
		return n.answers(qctx)
	default:
		return n.answers(qctx)
	}
}

// answeringDB waits until the node runs a query and returns its control pool.
func (n *Node) answeringDB(ctx context.Context) (*sql.DB, error) {
	if err := n.waitFor(ctx, n.answers); err != nil {
		return nil, err
	}
	return n.DB()
}

// answers checks that the node runs a query.
func (n *Node) answers(ctx context.Context) (bool, string, error) {
	db, err := n.DB()
	if err != nil {
		return false, "", err
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var one int
	if err := db.QueryRowContext(qctx, "SELECT 1").Scan(&one); err != nil {
		return false, "not answering: " + shortErr(err), nil
	}
	return true, "answering", nil
}

// waitFor polls check until it holds, the node's container stops, or ctx ends; the
// error then says what was last seen and ends with the container's last log lines.
func (n *Node) waitFor(ctx context.Context, check func(context.Context) (bool, string, error)) error {
	err := poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
		ok, seen, err := check(ctx)
		if err != nil || ok {
			return ok, seen, err
		}
		st, serr := n.State(ctx)
		if serr == nil && !st.Running && st.Status != "restarting" {
			return false, seen, fmt.Errorf("container %s is %s (exit code %d, OOM killed %t)", n.Name, st.Status, st.ExitCode, st.OOMKilled)
		}
		return false, seen, nil
	}, n.Name+" not ready")
	if err == nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	logs, _ := n.Logs(lctx, 15)
	return fmt.Errorf("%w\n--- last log lines of %s ---\n%s", err, n.Name, strings.TrimRight(logs, "\n"))
}

// poll calls f every interval until it returns true or an error, or ctx ends. On ctx
// end the error names what and the last thing f saw.
func poll(ctx context.Context, interval time.Duration, f func() (bool, string, error), what string) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var seen string
	for {
		ok, s, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		seen = s
		select {
		case <-ctx.Done():
			if seen != "" {
				return fmt.Errorf("%s (last seen: %s): %w", what, seen, context.Cause(ctx))
			}
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-t.C:
		}
	}
}

func shortErr(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("error %d: %s", me.Number, me.Message)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// CPULimits are a container's CPU limits as the engine holds them.
type CPULimits struct {
	NanoCPUs  int64 `json:"nano_cpus,omitempty"`
	CPUQuota  int64 `json:"cpu_quota,omitempty"`
	CPUPeriod int64 `json:"cpu_period,omitempty"`
}

// CPULimits reads the node's CPU limits.
func (n *Node) CPULimits(ctx context.Context) (CPULimits, error) {
	ins, err := n.c.engine.Client.ContainerInspect(ctx, n.ID, client.ContainerInspectOptions{})
	if err != nil {
		return CPULimits{}, fmt.Errorf("inspect %s: %w", n.Name, err)
	}
	hc := ins.Container.HostConfig
	return CPULimits{NanoCPUs: hc.NanoCPUs, CPUQuota: hc.CPUQuota, CPUPeriod: hc.CPUPeriod}, nil
}

// RestoreCPU puts CPU limits read earlier (CPULimits) back: a heal's undo of
// LimitCPU, from the limits alone.
func (n *Node) RestoreCPU(ctx context.Context, l CPULimits) error {
	// As LimitCPU's own undo: a limit in NanoCPUs goes back as such, else the
	// quota (-1: none).
	var r container.Resources
	switch {
	case l.NanoCPUs > 0:
		r.NanoCPUs = l.NanoCPUs
	case l.CPUQuota > 0:
		r.CPUQuota, r.CPUPeriod = l.CPUQuota, l.CPUPeriod
	default:
		r.CPUQuota = -1
	}
	if _, err := n.c.engine.Client.ContainerUpdate(ctx, n.ID, client.ContainerUpdateOptions{Resources: &r}); err != nil {
		return fmt.Errorf("restore cpu of %s: %w", n.Name, err)
	}
	return nil
}

// LimitCPU caps the node's CPU bandwidth at cores (0.1 is a tenth of one core) until
// restore is called: the gray failure of a node that still answers, slowly. A node
// started with a CPU limit (--cpus) keeps it as the engine's NanoCPUs; one without
// gets a CFS quota, and restore lifts the quota again (-1: none). The engine refuses
// to mix the two, so each is undone the way it was set.
func (n *Node) LimitCPU(ctx context.Context, cores float64) (restore func(context.Context) error, err error) {
	if cores <= 0 {
		return nil, fmt.Errorf("limit cpu of %s: %g cores: must be positive", n.Name, cores)
	}
	cli := n.c.engine.Client
	ins, err := cli.ContainerInspect(ctx, n.ID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", n.Name, err)
	}
	var set, undo container.Resources
	hc := ins.Container.HostConfig
	if old := hc.NanoCPUs; old > 0 {
		if int64(cores*1e9) >= old {
			return nil, fmt.Errorf("limit cpu of %s to %g cores: it is limited to %g already", n.Name, cores, float64(old)/1e9)
		}
		set.NanoCPUs, undo.NanoCPUs = int64(cores*1e9), old
	} else {
		const period = 100_000 // µs, the kernel's default CFS period
		set.CPUPeriod, set.CPUQuota = period, max(int64(cores*period), 1000)
		undo.CPUQuota = -1
		if q := hc.CPUQuota; q > 0 {
			if p := max(hc.CPUPeriod, period); set.CPUQuota*p >= q*period {
				return nil, fmt.Errorf("limit cpu of %s to %g cores: its quota is that low already", n.Name, cores)
			}
			undo.CPUQuota = q
		}
	}
	restore = func(ctx context.Context) error {
		if _, err := cli.ContainerUpdate(ctx, n.ID, client.ContainerUpdateOptions{Resources: &undo}); err != nil {
			return fmt.Errorf("restore cpu of %s: %w", n.Name, err)
		}
		return nil
	}
	if _, err := cli.ContainerUpdate(ctx, n.ID, client.ContainerUpdateOptions{Resources: &set}); err != nil {
		// The engine may have applied it before the error (a cancel): the caller
		// gets the restore anyway.
		return restore, fmt.Errorf("limit cpu of %s to %g cores: %w", n.Name, cores, err)
	}
	return restore, nil
}
