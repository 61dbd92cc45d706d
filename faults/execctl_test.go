package faults

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseExecTarget(t *testing.T) {
	good := `name: staging
timeout: 30s
actions:
  kill: echo kill {{.Name}} {{.Vars.host}} >> LOG
  start: echo start {{.Index}} >> LOG
nodes:
  - name: db1
    role: galera
    dsn: app:secret@tcp(127.0.0.1:3306)/app
    vars: {host: a}
  - name: db2
    role: galera
    vars: {host: b}
    actions:
      stop: echo stop {{.Name}} {{.Grace}} >> LOG
`
	tg, err := ParseExecTarget("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	nodes := tg.Cluster().Nodes()
	if len(nodes) != 2 || nodes[0].Label() != "db1" || nodes[1].Role() != "galera" {
		t.Fatalf("nodes %v", nodes)
	}
	k, _ := NewRegistry().Get("node-stop")
	if err := k.Check(nodes[:1]); err == nil || !strings.Contains(err.Error(), "t.yaml gives no stop command") {
		t.Errorf("node-stop on db1 (no stop command): %v", err)
	}
	if err := k.Check(nodes[1:]); err != nil {
		t.Errorf("node-stop on db2: %v", err)
	}
	if err := CheckConsent(tg.Cluster(), k, "db2", false); err == nil {
		t.Error("no consent needed on an exec target")
	}
	if err := CheckConsent(tg.Cluster(), k, "db2,all-but-one", true); err == nil || !strings.Contains(err.Error(), "all-but-one") {
		t.Errorf("all-but-one on an exec target: %v", err)
	}
	if err := CheckConsent(tg.Cluster(), k, "db2", true); err != nil {
		t.Error(err)
	}

	bad := `name: x
timeout: soon
colour: blue
actions:
  explode: boom
  kill: "{{.Nmae}}"
nodes:
  - name: db1
    role: leader
    dsn: "not a dsn"
  - name: db1
    actions:
      stop: "{{.Vars.host}}"
  - role: galera
`
	_, err = ParseExecTarget("bad.yaml", []byte(bad))
	if err == nil {
		t.Fatal("bad file accepted")
	}
	for _, want := range []string{
		`bad.yaml: line 2: "soon": want a duration such as 30s`,
		`bad.yaml: line 3: field colour not found`,
		`unknown action "explode"`,
		`bad.yaml:8: node 1: role "leader"`,
		`bad.yaml:8: node 1: dsn:`,
		`bad.yaml:8: node 1: action kill:`, // .Nmae does not exist
		`bad.yaml:11: node 2: name "db1" used twice`,
		`bad.yaml:11: node 2: action stop:`, // no var host
		`bad.yaml:14: node 3: no name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Error("an error shows a DSN password")
	}
	if strings.Contains(err.Error(), "positive duration") {
		t.Errorf("a bad timeout is refused twice:\n%v", err)
	}

	// timeout: 0 is refused, not taken for the default.
	for _, zero := range []string{"0", "0s", `"0ms"`} {
		_, err = ParseExecTarget("zero.yaml", []byte("name: x\nnodes:\n  - name: db1\ntimeout: "+zero+"\n"))
		if err == nil || !strings.Contains(err.Error(), "zero.yaml:4: timeout:") || !strings.Contains(err.Error(), "want a positive duration") {
			t.Errorf("timeout: %s: %v, want it refused at zero.yaml:4", zero, err)
		}
	}
	if tg, err := ParseExecTarget("none.yaml", []byte("name: x\nnodes:\n  - name: db1\n")); err != nil || tg.Timeout.D() != 2*time.Minute {
		t.Errorf("no timeout: %v, %v: want the 2m default", tg, err)
	}
}

// The exec controller runs the user's commands with the node's values.
func TestExecTargetRunsCommands(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	src := strings.ReplaceAll(`actions:
  stop: echo stop {{.Name}} {{.Grace}} {{.Vars.host}} >> LOG
  start: echo start {{.Index}} >> LOG
  ready: test -f LOG
  pause: "false"
nodes:
  - name: db1
    vars: {host: h1}
`, "LOG", log)
	tg, err := ParseExecTarget(filepath.Join(dir, "t.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	n := tg.Cluster().Nodes()[0]
	ctx := context.Background()
	if err := n.(Stopper).Stop(ctx, 30e9); err != nil {
		t.Fatal(err)
	}
	if err := n.(Starter).Start(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	if string(b) != "stop db1 30 h1\nstart 1\n" {
		t.Errorf("commands ran as %q", b)
	}
	if err := n.(Pauser).Pause(ctx); err == nil || !strings.Contains(err.Error(), "pause command for db1: exit status 1") {
		t.Errorf("a failing command: %v", err)
	}
	// A command's output that echoes a node's DSN password is redacted in the error.
	tg, err = ParseExecTarget(filepath.Join(dir, "t2.yaml"), []byte(`actions:
  pause: echo "connect app:s3cret-pw@db1 failed"; exit 1
  resume: "true"
nodes:
  - {name: db1, dsn: "app:s3cret-pw@tcp(10.0.0.1:3306)/app"}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Cluster().Nodes()[0].(Pauser).Pause(ctx)
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "app:***@db1") {
		t.Errorf("the password in a command's output: %v", err)
	}
}

// Exec target files: whatever they hold, parsing never panics, a refusal names
// the file, and what parses has nodes with names.
func FuzzParseExecTarget(f *testing.F) {
	f.Add([]byte("name: s\nactions: {pause: 'true', resume: 'true'}\nnodes:\n  - {name: db1, role: galera, dsn: 'a:b@tcp(h:1)/d'}\n"))
	f.Add([]byte("nodes: []\n"))
	f.Add([]byte("actions: {pause: '{{.Vars.x'}\nnodes: [{name: a}]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tg, err := ParseExecTarget("t.yaml", b)
		if err != nil {
			if !strings.Contains(err.Error(), "t.yaml") {
				t.Errorf("refused without naming the file: %v", err)
			}
			return
		}
		nodes := tg.Cluster().Nodes()
		if len(nodes) == 0 {
			t.Error("accepted a target with no node")
		}
		for _, n := range nodes {
			if n.Label() == "" {
				t.Error("accepted a node with no name")
			}
		}
	})
}
