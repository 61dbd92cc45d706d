package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --dry-run prints what would be done, to which node, with which commands, and
// does nothing: no run directory, no command of the target run.
func TestDryRun(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "touched")
	target := filepath.Join(dir, "staging.yaml")
	os.WriteFile(target, []byte(`name: staging
actions:
  pause: touch `+marker+`-{{.Name}}
  resume: touch `+marker+`
nodes:
  - {name: db1, role: galera, dsn: 'app:pw@tcp(127.0.0.1:1)/app'}
  - {name: db2, role: galera, dsn: 'app:pw@tcp(127.0.0.1:1)/app'}
  - {name: db3, role: galera, dsn: 'app:pw@tcp(127.0.0.1:1)/app'}
`), 0o644)
	out := filepath.Join(dir, "run")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "failover-pause", "--quick", "--dry-run", "--out", out},
			[]string{"cluster: a new galera cluster of 3 node(s)", "+11s    fault", "+11s    pause (pause) on node 3, held 8s", "nothing was done"}},
		{[]string{"run", "failover-pause", "--quick", "--dry-run", "--target", target, "--out", out},
			[]string{"cluster: the target staging (3 node(s))", "db3 would run pause: touch " + marker + "-db3", "db3 would run resume: touch " + marker,
				"nodes_down > 1 for 2s (the default guard of a target"}},
		{[]string{"fault", "pause", "--target", target, "--node", "db3", "--allow-destructive", "--dry-run", "--duration", "5s"},
			[]string{"dry run: pause on db3, held 5s", "db3 would run pause: touch " + marker, "nothing was done"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 0 {
			t.Errorf("%v: exit %d: %s", tc.args, code, stderr.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%v: no %q in:\n%s", tc.args, w, stdout.String())
			}
		}
	}
	for _, p := range []string{out, marker, marker + "-db3"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a dry run made %s", p)
		}
	}
}
