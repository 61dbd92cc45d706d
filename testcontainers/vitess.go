package testcontainers

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	tc "github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// The vitess topology: vtgates (the aggregators) over MariaDB shards (the leaves),
// one tablet (mysqld under mysqlctl, and vttablet) per shard, with etcd as the
// topology server and vtctld to administer it, every one a container of the Vitess
// image on the cluster network. Clients reach the vtgates' MySQL port, published on
// loopback; the shards' mysqld ports are published too, for measurement (status
// counters) and faults, never for load.
//
// MariaDB is outside what Vitess supports. It works here with two workarounds:
// Vitess's init_db.sql without its super_read_only lines, and read_only = 0 in
// every shard's my.cnf, because MariaDB has no super_read_only and a restarted
// shard would otherwise stay read-only (SetWritable and PlannedReparentShard fail
// on it). With one tablet per shard that is safe; with replicas it would leave
// them writable, so the topology has no replicas.

// VitessKeyspace is the keyspace of the vitess topology: clients use it as their
// database through vtgate.
const VitessKeyspace = DefaultDatabase

// VitessShardDatabase is the database that holds a shard's tables on its mysqld.
const VitessShardDatabase = "vt_" + VitessKeyspace

const (
	vitessCell    = "zone1"
	etcdAlias     = "etcd"
	vtctldAlias   = "vtctld"
	vtctldGRPC    = "vtctld:15999"
	vitessUIDBase = 100
)

// vitessTopoFlags point a Vitess process at the topology server.
var vitessTopoFlags = []string{
	"--topo-implementation", "etcd2",
	"--topo-global-server-address", etcdAlias + ":2379",
	"--topo-global-root", "/vitess/global",
}

// VitessShards names the shards of a keyspace split evenly over n: for 2,
// "-80" and "80-".
func VitessShards(n int) []string {
	out := make([]string, n)
	bound := func(i int) string {
		if i == 0 || i == n {
			return ""
		}
		return fmt.Sprintf("%02x", i*256/n)
	}
	for i := range n {
		out[i] = bound(i) + "-" + bound(i+1)
	}
	return out
}

// vitessTabletAlias is the tablet alias of leaf i (1-based).
func vitessTabletAlias(i int) string { return fmt.Sprintf("%s-%010d", vitessCell, vitessUIDBase+i) }

// vitessInitDB is Vitess's config/init_db.sql for MariaDB: without the two
// super_read_only lines MariaDB does not know, and with htapchaos's root@'%' (for
// measurement and faults) and the shard's database.
const vitessInitDB = `SET sql_log_bin = 0;
DROP USER IF EXISTS ''@'%', ''@'localhost', 'root'@'%';
DROP DATABASE IF EXISTS test;
CREATE USER 'vt_dba'@'localhost';
GRANT ALL ON *.* TO 'vt_dba'@'localhost';
GRANT GRANT OPTION ON *.* TO 'vt_dba'@'localhost';
GRANT PROXY ON ''@'' TO 'vt_dba'@'localhost' WITH GRANT OPTION;
CREATE USER 'vt_app'@'localhost';
GRANT ALL ON *.* TO 'vt_app'@'localhost';
CREATE USER 'vt_appdebug'@'localhost';
GRANT SELECT, SHOW DATABASES, PROCESS ON *.* TO 'vt_appdebug'@'localhost';
CREATE USER 'vt_allprivs'@'localhost';
GRANT ALL ON *.* TO 'vt_allprivs'@'localhost';
CREATE USER 'vt_repl'@'%';
GRANT REPLICATION SLAVE ON *.* TO 'vt_repl'@'%';
CREATE USER 'vt_filtered'@'localhost';
GRANT ALL ON *.* TO 'vt_filtered'@'localhost';
CREATE USER 'vt_monitoring'@'localhost';
GRANT SELECT, PROCESS, SUPER, REPLICATION CLIENT, RELOAD ON *.* TO 'vt_monitoring'@'localhost';
CREATE USER 'root'@'%' IDENTIFIED BY '@PASSWORD@';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS ` + VitessShardDatabase + `;
`

// vitessTabletScript starts one shard: mysqld through mysqlctl (initialised on
// the first start only), then vttablet in the foreground, both as the image's
// ordinary user (mysqlctl refuses root). A killed container takes mysqld_safe
// with it, so nothing restarts mysqld behind a kill fault's back; a restarted
// container starts the same mysqld on the same data.
const vitessTabletScript = `set -e
export VTDATAROOT=/vt/vtdataroot VT_MYSQL_ROOT=/usr EXTRA_MY_CNF=/vt/extra.cnf
mkdir -p "$VTDATAROOT" /vt/backups
printf '%s\n' "$HC_EXTRA_CNF" >/vt/extra.cnf
dir="$VTDATAROOT/$(printf 'vt_%010d' "$HC_UID")"
if [ -d "$dir/data" ]; then
  action=start
else
  rm -rf "$dir"
  printf '%s\n' "$HC_INIT_DB" >/vt/init_db.sql
  action="init --init-db-sql-file=/vt/init_db.sql"
fi
chown -R vitess:vitess /vt
echo "htapchaos-tablet: mysqlctl $action" >&2
runuser -u vitess -- env VTDATAROOT="$VTDATAROOT" VT_MYSQL_ROOT=/usr EXTRA_MY_CNF=/vt/extra.cnf \
  mysqlctl --log-format text --tablet-uid "$HC_UID" --mysql-port 3306 $action
exec runuser -u vitess -- env VTDATAROOT="$VTDATAROOT" VT_MYSQL_ROOT=/usr EXTRA_MY_CNF=/vt/extra.cnf \
  vttablet "$@"
`

// vitessUserScript runs a Vitess program as the image's ordinary user.
const vitessUserScript = `set -e
mkdir -p /vt/backups /vt/tmp && chown -R vitess:vitess /vt
exec runuser -u vitess -- env VTDATAROOT=/vt/vtdataroot "$@"
`

// startVitess brings the vitess topology up: etcd, the cell and keyspace, vtctld
// and the tablets, a PlannedReparentShard per shard, then the vtgates.
func (c *Cluster) startVitess(ctx context.Context, start time.Time) error {
	cfg := c.cfg
	c.vitessInfra = map[string]*Node{}
	if _, err := c.startVitessInfra(ctx, etcdAlias, []string{"etcd",
		"--name", "etcd", "--data-dir", "/vt/etcd",
		"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://" + etcdAlias + ":2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "etcd=http://127.0.0.1:2380"}, false); err != nil {
		return err
	}
	if _, err := c.startVitessInfra(ctx, vtctldAlias, append(append([]string{"vtctld"}, vitessTopoFlags...),
		"--cell", vitessCell, "--service-map", "grpc-vtctl,grpc-vtctld",
		"--backup-storage-implementation", "file", "--file-backup-storage-root", "/vt/backups",
		"--port", "15000", "--grpc-port", "15999", "--log-format", "text"), true); err != nil {
		return err
	}
	// The cell, then the keyspace: tablets register in the cell.
	if err := c.vtctl(ctx, 30*time.Second, "AddCellInfo", "--root", "/vitess/"+vitessCell, "--server-address", etcdAlias+":2379", vitessCell); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("vitess: add cell: %w", err)
	}
	if err := c.vtctl(ctx, 10*time.Second, "CreateKeyspace", VitessKeyspace); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("vitess: create keyspace: %w", err)
	}
	cfg.Progress("cluster %s: etcd and vtctld up (%.1fs); starting %d shard(s)", c.Name, time.Since(start).Seconds(), len(c.Leaves()))
	shards := VitessShards(len(c.Leaves()))
	if err := c.each(c.Leaves(), func(n *Node) error {
		i := n.Index - len(c.Aggregators())
		return c.startVitessTablet(ctx, n, i, shards[i-1])
	}); err != nil {
		return err
	}
	// Each shard's one tablet becomes its primary.
	if err := c.each(c.Leaves(), func(n *Node) error {
		i := n.Index - len(c.Aggregators())
		return c.vtctl(ctx, 90*time.Second, "PlannedReparentShard", VitessKeyspace+"/"+shards[i-1], "--new-primary", vitessTabletAlias(i))
	}); err != nil {
		return fmt.Errorf("vitess: make each shard's primary: %w", err)
	}
	cfg.Progress("cluster %s: %d shard(s) have a primary (%.1fs); starting %d vtgate(s)", c.Name, len(shards), time.Since(start).Seconds(), len(c.Aggregators()))
	return c.each(c.Aggregators(), func(n *Node) error { return c.startVtgate(ctx, n) })
}

// startVitessInfra starts etcd or vtctld: a container on the cluster network
// only, with no published port.
func (c *Cluster) startVitessInfra(ctx context.Context, alias string, cmd []string, asUser bool) (*Node, error) {
	n := &Node{Name: c.Name + "-" + alias, Alias: alias, Role: Role(alias), c: c}
	clusterNetName, err := c.networkName(ctx)
	if err != nil {
		return nil, err
	}
	labels := c.labels(kindVitessInfra)
	labels[LabelRole] = alias
	labels[LabelAlias] = alias
	entry := []string{"/bin/sh", "-c", vitessUserScript, "htapchaos-" + alias}
	if !asUser {
		entry = []string{"/bin/sh", "-c", `mkdir -p /vt && exec "$@"`, "htapchaos-" + alias}
	}
	mem := c.cfg.Memory
	req := tc.ContainerRequest{
		Image:          c.cfg.Image,
		Name:           n.Name,
		Entrypoint:     entry,
		Cmd:            cmd,
		Labels:         labels,
		Networks:       []string{clusterNetName},
		NetworkAliases: map[string][]string{clusterNetName: {alias}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Memory, hc.MemorySwap = mem, mem
		},
	}
	ctr, err := tc.GenericContainer(ctx, tc.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: tclog.NewNoopLogger()})
	if ctr != nil {
		n.ID = ctr.GetContainerID()
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", n.Name, err)
	}
	c.vitessInfra[alias] = n
	return n, nil
}

// vtctl runs a vtctldclient command against vtctld (from inside its container),
// retrying until it succeeds or the time is up: vtctld and the tablets take a
// moment to answer.
func (c *Cluster) vtctl(ctx context.Context, within time.Duration, args ...string) error {
	n := c.vitessInfra[vtctldAlias]
	if n == nil {
		return fmt.Errorf("cluster %s has no vtctld", c.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last string
	for {
		res, err := n.Exec(ctx, append([]string{"vtctldclient", "--server", vtctldGRPC, "--action-timeout", "30s"}, args...)...)
		switch {
		case err == nil && res.ExitCode == 0:
			return nil
		case err != nil:
			last = err.Error()
		default:
			last = strings.TrimSpace(res.Stdout + res.Stderr)
			if strings.Contains(last, "already exists") {
				return fmt.Errorf("%s", last)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vtctldclient %s: %s", strings.Join(args, " "), tail(last, 5))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// vtctlOutput runs one vtctldclient command and returns its output.
func (c *Cluster) vtctlOutput(ctx context.Context, args ...string) (string, error) {
	n := c.vitessInfra[vtctldAlias]
	if n == nil {
		return "", fmt.Errorf("cluster %s has no vtctld", c.Name)
	}
	res, err := n.Exec(ctx, append([]string{"vtctldclient", "--server", vtctldGRPC, "--action-timeout", "30s"}, args...)...)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("vtctldclient %s: %s", strings.Join(args, " "), tail(strings.TrimSpace(res.Stdout+res.Stderr), 5))
	}
	return res.Stdout, nil
}

// ApplyVSchema sets the keyspace's VSchema (JSON) on a vitess cluster.
func (c *Cluster) ApplyVSchema(ctx context.Context, vschema string) error {
	if c.Topology != Vitess {
		return fmt.Errorf("cluster %s is %s: only a vitess cluster has a VSchema", c.Name, c.Topology)
	}
	if !json.Valid([]byte(vschema)) {
		return fmt.Errorf("VSchema is not JSON")
	}
	_, err := c.vtctlOutput(ctx, "ApplyVSchema", "--vschema", vschema, VitessKeyspace)
	return err
}

// VSchema is the keyspace's VSchema as vtctld holds it (JSON).
func (c *Cluster) VSchema(ctx context.Context) (json.RawMessage, error) {
	if c.Topology != Vitess {
		return nil, fmt.Errorf("cluster %s is %s: only a vitess cluster has a VSchema", c.Name, c.Topology)
	}
	out, err := c.vtctlOutput(ctx, "GetVSchema", VitessKeyspace)
	if err != nil {
		return nil, err
	}
	raw := json.RawMessage(strings.TrimSpace(out))
	if !json.Valid(raw) {
		return nil, fmt.Errorf("GetVSchema: not JSON: %s", tail(out, 3))
	}
	return raw, nil
}

// startVitessTablet starts leaf i (1-based) as the tablet of one shard.
func (c *Cluster) startVitessTablet(ctx context.Context, n *Node, i int, shard string) error {
	settings := c.cfg.settingsFor(n.Index)
	var cnf strings.Builder
	// MariaDB has no super_read_only: a restarted shard must not stay read-only.
	cnf.WriteString("read_only = 0\nskip-name-resolve\nmax_connections = 1000\n")
	for _, a := range settingArgs(settings) {
		cnf.WriteString(strings.TrimPrefix(a, "--") + "\n")
	}
	env := map[string]string{
		"HC_UID":       strconv.Itoa(vitessUIDBase + i),
		"HC_EXTRA_CNF": cnf.String(),
		"HC_INIT_DB":   strings.ReplaceAll(vitessInitDB, "@PASSWORD@", c.password),
	}
	args := append(append([]string{}, vitessTopoFlags...),
		"--tablet-path", vitessTabletAlias(i),
		"--tablet-hostname", n.Alias,
		"--init-keyspace", VitessKeyspace, "--init-shard", shard, "--init-tablet-type", "replica",
		"--health-check-interval", "1s",
		"--backup-storage-implementation", "file", "--file-backup-storage-root", "/vt/backups",
		"--port", "15100", "--grpc-port", "16100",
		"--service-map", "grpc-queryservice,grpc-tabletmanager,grpc-updatestream",
		"--log-format", "text")
	labels := c.nodeLabels(n, settings)
	labels[LabelShard] = shard
	return c.startContainer(ctx, n, c.cfg.Image, []string{"/bin/sh", "-c", vitessTabletScript, "htapchaos-tablet"}, args, env, labels)
}

// startVtgate starts aggregator n as a vtgate serving MySQL on 3306.
func (c *Cluster) startVtgate(ctx context.Context, n *Node) error {
	args := append(append([]string{"vtgate"}, vitessTopoFlags...),
		"--cell", vitessCell, "--cells-to-watch", vitessCell,
		"--tablet-types-to-wait", "PRIMARY",
		"--port", "15001", "--grpc-port", "15991",
		"--mysql-server-port", "3306", "--mysql-server-bind-address", "0.0.0.0",
		"--mysql-auth-server-impl", "none",
		"--service-map", "grpc-vtgateservice",
		"--log-format", "text")
	return c.startContainer(ctx, n, c.cfg.Image, []string{"/bin/sh", "-c", vitessUserScript, "htapchaos-vtgate"}, args, nil, c.nodeLabels(n, nil))
}

// vitessReady checks a vtgate answers and sees the keyspace's tablets: with
// shards > 0 (the cluster forming) that many shard primaries serving, else any
// tablet of the keyspace (a vtgate restarted while a shard is down serves the
// others' rows).
func (n *Node) vitessReady(ctx context.Context, shards int) (bool, string, error) {
	tablets, err := n.vitessTablets(ctx)
	if err != nil {
		return false, "not answering: " + shortErr(err), nil
	}
	serving, known := 0, 0
	for _, row := range tablets {
		if row["keyspace"] != VitessKeyspace {
			continue
		}
		known++
		if row["tablettype"] == "PRIMARY" && row["state"] == "SERVING" {
			serving++
		}
	}
	if shards > 0 {
		return serving >= shards, fmt.Sprintf("%d of %d shard primaries serving", serving, shards), nil
	}
	return known > 0, fmt.Sprintf("sees %d tablet(s) of the keyspace, %d serving", known, serving), nil
}

// vitessLeafReady checks a shard's mysqld answers and a vtgate sees its tablet
// serving as the shard's primary.
func (n *Node) vitessLeafReady(ctx context.Context) (bool, string, error) {
	if ok, seen, err := n.answers(ctx); !ok || err != nil {
		return ok, seen, err
	}
	last := "no vtgate answers"
	for _, g := range n.c.Aggregators() {
		tablets, err := g.vitessTablets(ctx)
		if err != nil {
			continue
		}
		last = "not serving as its shard's primary (seen by " + g.Alias + ")"
		for _, row := range tablets {
			if row["hostname"] == n.Alias && row["tablettype"] == "PRIMARY" && row["state"] == "SERVING" {
				return true, "serving", nil
			}
		}
		return false, last, nil
	}
	// No vtgate answers to ask: the shard's own mysqld answering is all there is.
	return true, "answering (" + last + ")", nil
}

// vitessTablets is a vtgate's SHOW VITESS_TABLETS, column names lower-cased.
func (n *Node) vitessTablets(ctx context.Context) ([]map[string]string, error) {
	db, err := n.DB()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SHOW VITESS_TABLETS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := map[string]string{}
		for i, c := range cols {
			row[strings.ToLower(c)] = vals[i].String
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
