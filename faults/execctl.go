package faults

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/go-sql-driver/mysql"
	yaml "go.yaml.in/yaml/v3"

	"github.com/htapchaos/htapchaos/units"
)

// ExecTarget is a cluster not in containers, controlled on a game day by commands
// the user supplies: one shell command template per action (ssh, systemctl,
// kubectl). A fault can use an action only where a template for it is given.
//
//	name: staging
//	actions:                       # for every node; a node may override any
//	  kill:  ssh {{.Vars.host}} sudo systemctl kill -s KILL mariadb
//	  stop:  ssh {{.Vars.host}} sudo systemctl stop mariadb   # {{.Grace}}: seconds
//	  start: ssh {{.Vars.host}} sudo systemctl start mariadb
//	  pause: ssh {{.Vars.host}} sudo systemctl kill -s STOP mariadb
//	  resume: ssh {{.Vars.host}} sudo systemctl kill -s CONT mariadb
//	  partition: ssh {{.Vars.host}} sudo iptables -I INPUT -p tcp --dport 4567 -j DROP
//	  heal: ssh {{.Vars.host}} sudo iptables -D INPUT -p tcp --dport 4567 -j DROP
//	  ready: ""                    # optional: exits 0 once the node serves
//	nodes:
//	  - name: db1
//	    role: galera               # galera, primary, replica, single, aggregator or leaf
//	    dsn: app:secret@tcp(127.0.0.1:3306)/app
//	    vars: {host: db1.internal}
type ExecTarget struct {
	Name    string            `yaml:"name"`
	Timeout FileDuration      `yaml:"timeout"` // per command (default 2m)
	Actions map[string]string `yaml:"actions"`
	Nodes   []ExecNodeSpec    `yaml:"nodes"`

	file  string
	nodes []*execNode
}

// ExecNodeSpec is one node of an exec target.
type ExecNodeSpec struct {
	Name    string            `yaml:"name"`
	Role    string            `yaml:"role"`
	DSN     string            `yaml:"dsn"`
	Vars    map[string]string `yaml:"vars"`
	Actions map[string]string `yaml:"actions"`
}

// FileDuration is a time.Duration written as "30s" in YAML: units.Duration, the
// one duration type of exec targets and experiment specs.
type FileDuration = units.Duration

// Actions an exec target may define.
var execActions = []string{"kill", "stop", "start", "pause", "resume", "partition", "heal", "ready"}

// LoadExecTarget reads and checks an exec target file, reporting every problem at
// once with the file and line.
func LoadExecTarget(path string) (*ExecTarget, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr("--target", "%v", err)
	}
	return ParseExecTarget(path, b)
}

// ParseExecTarget parses an exec target; file names it in errors.
func ParseExecTarget(file string, b []byte) (*ExecTarget, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, usageErr("--target", "%s: %v", file, err)
	}
	t := &ExecTarget{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var errs []error
	if err := dec.Decode(t); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				errs = append(errs, usageErr("--target", "%s: %s", file, strings.TrimPrefix(e, "yaml: ")))
			}
		} else {
			return nil, usageErr("--target", "%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
	lines := nodeLines(&root)
	bad := func(i int, format string, a ...any) {
		where := file
		if i >= 0 && i < len(lines) {
			where = fmt.Sprintf("%s:%d", file, lines[i])
		}
		errs = append(errs, usageErr("--target", "%s: %s", where, fmt.Sprintf(format, a...)))
	}
	if t.Timeout == 0 {
		if v := topValue(&root, "timeout"); v != nil {
			if d, err := units.ParseDuration(v.Value); err == nil && d == 0 {
				// units.Duration takes "0"; an action timeout of none is a mistake.
				errs = append(errs, usageErr("--target", "%s:%d: timeout: %q: want a positive duration such as 30s (leave it out for 2m)", file, v.Line, v.Value))
			}
		}
		t.Timeout = FileDuration(2 * time.Minute)
	}
	if t.Name == "" {
		t.Name = strings.TrimSuffix(file[strings.LastIndex(file, "/")+1:], ".yaml")
	}
	if len(t.Nodes) == 0 {
		bad(-1, "no nodes")
	}
	checkActions := func(i int, who string, acts map[string]string) map[string]*template.Template {
		out := map[string]*template.Template{}
		for _, name := range slices.Sorted(maps.Keys(acts)) {
			if !slices.Contains(execActions, name) {
				bad(i, "%s: unknown action %q (known: %s)", who, name, strings.Join(execActions, ", "))
				continue
			}
			if strings.TrimSpace(acts[name]) == "" {
				continue
			}
			tp, err := template.New(name).Option("missingkey=error").Parse(acts[name])
			if err != nil {
				bad(i, "%s: action %s: %v", who, name, err)
				continue
			}
			out[name] = tp
		}
		return out
	}
	common := checkActions(-1, "actions", t.Actions)
	seen := map[string]bool{}
	for i, ns := range t.Nodes {
		who := fmt.Sprintf("node %d", i+1)
		switch {
		case ns.Name == "":
			bad(i, "%s: no name", who)
		case seen[ns.Name]:
			bad(i, "%s: name %q used twice", who, ns.Name)
		}
		seen[ns.Name] = true
		if ns.Role == "" {
			ns.Role = "single"
		}
		if !slices.Contains([]string{"galera", "primary", "replica", "single", "aggregator", "leaf"}, ns.Role) {
			bad(i, "%s: role %q: want galera, primary, replica, single, aggregator or leaf", who, ns.Role)
		}
		if ns.DSN != "" {
			if _, err := mysql.ParseDSN(ns.DSN); err != nil {
				bad(i, "%s: dsn: %v", who, err) // the driver's message does not repeat the DSN
			}
		}
		acts := maps.Clone(common)
		maps.Copy(acts, checkActions(i, who, ns.Actions))
		n := &execNode{t: t, index: i + 1, spec: ns, acts: acts}
		t.nodes = append(t.nodes, n)
		// Every template must render for this node (a misspelt variable).
		for name, tp := range acts {
			if _, err := n.render(tp, 0); err != nil {
				bad(i, "%s: action %s: %v", who, name, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// nodeLines finds the line of each entry of the top-level nodes list.
func nodeLines(root *yaml.Node) []int {
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "nodes" && m.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, n := range m.Content[i+1].Content {
				out = append(out, n.Line)
			}
			return out
		}
	}
	return nil
}

// topValue is the value of a top-level key of the document (nil: absent).
func topValue(root *yaml.Node, key string) *yaml.Node {
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Cluster returns the target as a cluster faults can act on.
func (t *ExecTarget) Cluster() Cluster { return execCluster{t} }

// File is the target file the target was read from ("" when built in code).
func (t *ExecTarget) File() string { return t.file }

type execCluster struct{ t *ExecTarget }

func (c execCluster) Name() string { return c.t.Name }
func (c execCluster) Nodes() []Node {
	out := make([]Node, len(c.t.nodes))
	for i, n := range c.t.nodes {
		out[i] = n
	}
	return out
}

// External marks a cluster htapchaos did not create: destructive faults need the
// user's explicit consent and explicitly named nodes.
func (execCluster) External() bool { return true }

// execNode runs the user's commands for one node. It has every capability's
// methods; Lacks says which it cannot do because no command was given.
type execNode struct {
	t     *ExecTarget
	index int
	spec  ExecNodeSpec
	acts  map[string]*template.Template
}

func (n *execNode) Index() int    { return n.index }
func (n *execNode) Label() string { return n.spec.Name }
func (n *execNode) Role() string  { return n.spec.Role }
func (n *execNode) DSN() string   { return n.spec.DSN }

// Addr is the DSN's address.
func (n *execNode) Addr() string {
	cfg, err := mysql.ParseDSN(n.spec.DSN)
	if err != nil {
		return ""
	}
	return cfg.Addr
}

// capabilityActions lists the actions each capability needs.
var capabilityActions = map[reflect.Type][]string{
	reflect.TypeFor[Killer]():      {"kill"},
	reflect.TypeFor[Stopper]():     {"stop"},
	reflect.TypeFor[Starter]():     {"start"},
	reflect.TypeFor[Pauser]():      {"pause", "resume"},
	reflect.TypeFor[Partitioner](): {"partition", "heal"},
}

// capabilityNeedsDSN lists the capabilities that work through the node's DSN.
var capabilityNeedsDSN = []reflect.Type{
	reflect.TypeFor[SQLNode](), reflect.TypeFor[Addresser](), reflect.TypeFor[Membership](),
}

// Lacks says why the node cannot do capability c, or nil.
func (n *execNode) Lacks(c reflect.Type) error {
	var missing []string
	for _, a := range capabilityActions[c] {
		if n.acts[a] == nil {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s gives no %s command", n.t.file, strings.Join(missing, " or "))
	}
	if slices.Contains(capabilityNeedsDSN, c) && n.spec.DSN == "" {
		return fmt.Errorf("%s gives no dsn for it", n.t.file)
	}
	if c == reflect.TypeFor[Readier]() && n.acts["ready"] == nil && n.spec.DSN == "" {
		return fmt.Errorf("%s gives neither a ready command nor a dsn", n.t.file)
	}
	if c == reflect.TypeFor[Membership]() && n.spec.Role != "galera" {
		return fmt.Errorf("it is not a Galera node")
	}
	return nil
}

type tmplData struct {
	Name  string
	Index int
	Role  string
	Grace int // seconds, for stop
	Vars  map[string]string
}

func (n *execNode) render(tp *template.Template, grace time.Duration) (string, error) {
	var b strings.Builder
	vars := n.spec.Vars
	if vars == nil {
		vars = map[string]string{}
	}
	err := tp.Execute(&b, tmplData{Name: n.spec.Name, Index: n.index, Role: n.spec.Role, Grace: int(grace / time.Second), Vars: vars})
	return b.String(), err
}

// run runs one action's command with sh -c, bounded by the target's timeout.
func (n *execNode) run(ctx context.Context, action string, grace time.Duration) error {
	tp := n.acts[action]
	if tp == nil {
		return fmt.Errorf("%s gives no %s command", n.t.file, action)
	}
	cmdline, err := n.render(tp, grace)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n.t.Timeout)+grace)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := n.t.redact(strings.TrimSpace(string(out)))
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		return fmt.Errorf("%s command for %s: %v: %s", action, n.spec.Name, err, msg)
	}
	return nil
}

// redact hides the passwords of the target's DSNs in s (a command's output that
// goes into an error and run.json).
func (t *ExecTarget) redact(s string) string {
	for _, n := range t.Nodes {
		if cfg, err := mysql.ParseDSN(n.DSN); err == nil && len(cfg.Passwd) >= 3 {
			s = strings.ReplaceAll(s, cfg.Passwd, "***")
		}
	}
	return s
}

func (n *execNode) Kill(ctx context.Context) error { return n.run(ctx, "kill", 0) }
func (n *execNode) Stop(ctx context.Context, grace time.Duration) error {
	return n.run(ctx, "stop", grace)
}
func (n *execNode) Pause(ctx context.Context) error      { return n.run(ctx, "pause", 0) }
func (n *execNode) Unpause(ctx context.Context) error    { return n.run(ctx, "resume", 0) }
func (n *execNode) Disconnect(ctx context.Context) error { return n.run(ctx, "partition", 0) }
func (n *execNode) Reconnect(ctx context.Context) error  { return n.run(ctx, "heal", 0) }

// Start runs the start command and waits until the node serves again.
func (n *execNode) Start(ctx context.Context) error {
	if err := n.run(ctx, "start", 0); err != nil {
		return err
	}
	return n.WaitReady(ctx)
}

// WaitReady waits until the ready command exits 0, or else until the node answers
// on its DSN (a Galera node: Synced in the primary component).
func (n *execNode) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n.t.Timeout))
	defer cancel()
	return poll(ctx, n.spec.Name+" not ready", func() (bool, error) {
		if n.acts["ready"] != nil {
			err := n.run(ctx, "ready", 0)
			return err == nil, err
		}
		return n.ready(ctx)
	})
}

func (n *execNode) ready(ctx context.Context) (bool, error) {
	db, err := n.open()
	if err != nil {
		return false, err
	}
	defer db.Close()
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if n.spec.Role != "galera" {
		err := db.PingContext(qctx)
		return err == nil, err
	}
	var name, state string
	if err := db.QueryRowContext(qctx, "SHOW STATUS LIKE 'wsrep_local_state_comment'").Scan(&name, &state); err != nil {
		return false, err
	}
	return state == "Synced", fmt.Errorf("state %s", state)
}

// Membership reads the node's view of the Galera cluster through its DSN.
func (n *execNode) Membership(ctx context.Context) (int, bool, error) {
	db, err := n.open()
	if err != nil {
		return 0, false, err
	}
	defer db.Close()
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rows, err := db.QueryContext(qctx, "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_cluster_status')")
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var size int
	var primary bool
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return 0, false, err
		}
		switch k {
		case "wsrep_cluster_size":
			fmt.Sscan(v, &size)
		case "wsrep_cluster_status":
			primary = v == "Primary"
		}
	}
	return size, primary, rows.Err()
}

// open opens a one-connection pool on the node's DSN with short timeouts.
func (n *execNode) open() (*sql.DB, error) {
	if n.spec.DSN == "" {
		return nil, fmt.Errorf("%s: no dsn", n.spec.Name)
	}
	cfg, err := mysql.ParseDSN(n.spec.DSN)
	if err != nil {
		return nil, err
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 3*time.Second, 5*time.Second, 5*time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	return db, nil
}

// execActionsOf are the exec target actions a fault kind runs, in order.
var execActionsOf = map[string][]string{
	"node-kill":    {"kill", "start", "ready"},
	"node-stop":    {"stop", "start", "ready"},
	"node-restart": {"stop", "kill", "start", "ready"},
	"pause":        {"pause", "resume", "ready"},
	"partition":    {"partition", "heal", "ready"},
}

// PlannedCommands are the commands a fault kind would run on an exec target's
// node, rendered for it ("action: command"), in order; nil for a node that is
// not an exec target's. A dry run prints them and runs none.
func PlannedCommands(n Node, kind string) []string {
	en, ok := n.(*execNode)
	if !ok {
		return nil
	}
	var out []string
	for _, a := range execActionsOf[kind] {
		tp := en.acts[a]
		if tp == nil {
			continue
		}
		cmd, err := en.render(tp, 30*time.Second)
		if err != nil {
			cmd = "(does not render: " + err.Error() + ")"
		}
		out = append(out, a+": "+cmd)
	}
	return out
}
