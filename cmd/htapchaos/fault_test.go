package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/testcontainers"
)

func TestFaultBadInputExitsTwo(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"fault", "meteor", "--cluster", "c", "--node", "1"}, `unknown fault "meteor"`},
		{[]string{"fault", "pause", "--cluster", "c", "--node", "1", "--duration", "0s"}, "--duration 0s: must be positive"},
		{[]string{"fault", "pause", "--cluster", "c", "--node", "1", "--param", "x=1"}, `pause has no parameter "x" (it takes none)`},
		{[]string{"fault", "pause", "--cluster", "c", "--node", "1", "--param", "novalue"}, `"novalue": want key=value`},
		{[]string{"fault", "pause", "--node", "1"}, "--cluster or --target: give one"},
		{[]string{"fault", "pause", "--cluster", "c", "--target", "t.yaml", "--node", "1"}, "--cluster or --target: give one"},
		{[]string{"fault", "pause", "--target", "/nonexistent/t.yaml", "--node", "1"}, "/nonexistent/t.yaml: no such file"},
		{[]string{"fault", "slow-node", "--cluster", "c", "--node", "1", "--param", "percent=100"}, "percent=100: want a percentage from 1 to 99"},
		{[]string{"fault", "network-bandwidth", "--cluster", "c", "--node", "1", "--param", "rate=fast"}, "rate=fast: want a tc rate"},
		{[]string{"fault", "node-restart", "--cluster", "c", "--node", "1", "--param", "signal=hup"}, "signal=hup: want one of term, kill"},
		{[]string{"fault", "pause", "--cluster", "c"}, "--node: name the node(s)"},
		{[]string{"fault"}, "accepts 1 arg(s), received 0"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 with %q", code, errb.String(), tc.want)
			}
		})
	}
}

// A fault on a cluster from "cluster up", then the same cluster driven as a game-day
// target through user commands (the docker CLI standing in for ssh and systemctl).
func TestFaultOnAClusterAndAsAnExecTarget(t *testing.T) {
	engineOrSkip(t)
	name := testPrefix + "fault"
	r := htapchaos(t, nil, "cluster", "up", "--topology", "single", "--name", name, "--json")
	if r.code != 0 {
		t.Fatalf("cluster up: %s", r.stderr)
	}
	t.Cleanup(func() { htapchaos(t, nil, "cluster", "down", name) })
	var info testcontainers.Info
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatal(err)
	}
	n1 := info.Nodes[0]

	dir := filepath.Join(t.TempDir(), "pause")
	r = htapchaos(t, nil, "fault", "pause", "--cluster", name, "--node", "1", "--duration", "1s", "--out", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "pause on "+n1.Name+": took effect") {
		t.Fatalf("fault pause: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var res faults.Result
	raw, err := os.ReadFile(filepath.Join(dir, "fault.json"))
	if err == nil {
		err = json.Unmarshal(raw, &res)
	}
	if err != nil || res.State != "cleaned" || res.Effective == nil || res.Recovered == nil || res.Recovered.Sub(*res.Effective) < 900e6 {
		t.Errorf("fault.json: %+v %v", res, err)
	}
	events, _ := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	for _, step := range []string{`"step":"inject"`, `"step":"effect"`, `"step":"recover"`, `"step":"cleanup"`} {
		if !strings.Contains(string(events), step) {
			t.Errorf("events.jsonl has no %s:\n%s", step, events)
		}
	}

	// The same node as an exec target.
	const password = "htapchaos"
	target := filepath.Join(t.TempDir(), "gameday.yaml")
	os.WriteFile(target, []byte(`name: gameday
actions:
  kill: docker kill {{.Vars.container}}
  start: docker start {{.Vars.container}}
nodes:
  - name: db1
    role: single
    dsn: "`+n1.DSN+`"
    vars: {container: `+n1.Name+`}
`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node", "db1"}, "--allow-destructive: node-kill on gameday, a cluster htapchaos did not create"},
		{[]string{"--node", "random", "--allow-destructive"}, "random: on a cluster htapchaos did not create, name each node"},
	} {
		r := htapchaos(t, nil, append([]string{"fault", "node-kill", "--target", target, "--duration", "1s"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d %s; want 2 with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r = htapchaos(t, nil, "fault", "pause", "--target", target, "--node", "db1", "--allow-destructive")
	if r.code != exitUsage || !strings.Contains(r.stderr, "gives no pause or resume command") {
		t.Errorf("pause without pause commands: exit %d %s", r.code, r.stderr)
	}
	r = htapchaos(t, nil, "fault", "node-kill", "--target", target, "--node", "db1", "--allow-destructive", "--duration", "2s")
	if r.code != 0 || !strings.Contains(r.stdout, "node-kill on db1: took effect") {
		t.Fatalf("node-kill on the exec target: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("the DSN password was printed:\n%s\n%s", r.stdout, r.stderr)
	}
	// Restarted by the start command and serving again: the cluster status says so.
	if st := htapchaos(t, nil, "cluster", "status", name); st.code != 0 {
		t.Errorf("after the exec node-kill: %s", st.stderr)
	}
}
