package testcontainers

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// nodeScript starts one database node. It runs as the container's entrypoint
// (`sh -c nodeScript htapchaos-node ARGS...`), so it works with the locally built
// image (which has no CMD) and with registry MariaDB images alike.
//
// It initialises the data directory on first start only: a restarted container keeps
// its data, as a restarted server would. A Galera bootstrap node bootstraps once; when
// restarted later it joins the running cluster like any other node (bootstrapping
// again would split the cluster in two).
const nodeScript = `set -e
D=/var/lib/mysql
mkdir -p /run/mysqld "$D"
chown mysql:mysql /run/mysqld "$D"
extra=""
if [ ! -f "$D/.htapchaos-init" ]; then
  rm -rf "$D"/* 2>/dev/null || true
  if ! mariadb-install-db --user=mysql --datadir="$D" --skip-test-db >/run/mysqld/install-db.log 2>&1; then
    cat /run/mysqld/install-db.log >&2
    exit 1
  fi
  if [ "$HC_INIT_USERS" = 1 ]; then
    cat >/run/mysqld/init.sql <<SQL
SET sql_log_bin=0;
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$HC_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '$HC_PASSWORD';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE DATABASE IF NOT EXISTS $HC_DATABASE;
SQL
    chown mysql:mysql /run/mysqld/init.sql
    extra="--init-file=/run/mysqld/init.sql"
  fi
  touch "$D/.htapchaos-init"
fi
if [ "$HC_BOOTSTRAP" = 1 ] && [ ! -f "$D/.htapchaos-bootstrapped" ]; then
  touch "$D/.htapchaos-bootstrapped"
  extra="$extra --wsrep-new-cluster"
fi
echo "htapchaos-node: starting mariadbd $extra $*" >&2
exec mariadbd --user=mysql --datadir="$D" $extra "$@"
`

// lbScript starts HAProxy with the configuration passed in HC_HAPROXY_CFG.
const lbScript = `set -e
printf '%s\n' "$HC_HAPROXY_CFG" >/tmp/haproxy.cfg
exec haproxy -db -f /tmp/haproxy.cfg
`

// baseArgs are the server options every node gets; user settings come after and win.
func baseArgs() []string {
	return []string{
		"--port=3306",
		"--bind-address=0.0.0.0",
		"--socket=/run/mysqld/mysqld.sock",
		"--skip-name-resolve",
		"--max-connections=1000",
		"--default-storage-engine=InnoDB",
	}
}

// galeraArgs are the options of Galera node alias in a cluster of the given aliases.
func galeraArgs(cluster, alias string, aliases []string) []string {
	return []string{
		"--wsrep-on=ON",
		"--wsrep-provider=/usr/lib/galera/libgalera_smm.so",
		"--wsrep-cluster-address=gcomm://" + strings.Join(aliases, ","),
		"--wsrep-cluster-name=" + cluster,
		"--wsrep-node-name=" + alias,
		// The node's address is its alias on the cluster network, so Galera traffic
		// never takes the node's private client network, and cutting the node off the
		// cluster network is a real partition.
		"--wsrep-node-address=" + alias,
		"--wsrep-sst-method=rsync",
		"--binlog-format=ROW",
		"--innodb-autoinc-lock-mode=2",
	}
}

// aggregatorArgs load Spider: the node plans queries over the leaves' partitions.
func aggregatorArgs() []string {
	return []string{"--plugin-load-add=ha_spider.so"}
}

func primaryArgs() []string {
	return []string{"--server-id=1", "--log-bin=mysql-bin", "--log-slave-updates", "--binlog-format=ROW"}
}

func replicaArgs(index int) []string {
	return []string{
		fmt.Sprintf("--server-id=%d", index),
		"--log-bin=mysql-bin", "--log-slave-updates", "--binlog-format=ROW",
		"--relay-log=relay-bin", "--read-only=ON",
	}
}

// settingArgs turns settings into mariadbd options, sorted for a stable command line.
func settingArgs(settings map[string]string) []string {
	out := make([]string, 0, len(settings))
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		out = append(out, "--"+k+"="+settings[k])
	}
	return out
}

// haproxyConfig balances TCP connections round-robin over the nodes, re-resolving
// their aliases through the engine's DNS so a restarted node (new address) comes back.
func haproxyConfig(aliases []string) string {
	var b strings.Builder
	b.WriteString(`global
  maxconn 4096
defaults
  mode tcp
  timeout connect 3s
  timeout client 1h
  timeout server 1h
resolvers engine
  nameserver dns 127.0.0.11:53
  hold valid 1s
frontend mysql
  bind :3306
  default_backend nodes
backend nodes
  balance roundrobin
  default-server check inter 1s fall 2 rise 2 resolvers engine init-addr last,libc,none
`)
	for _, a := range aliases {
		fmt.Fprintf(&b, "  server %s %s:3306\n", a, a)
	}
	return b.String()
}
