package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/testcontainers"
)

// completions runs cobra's hidden __complete command, as a shell's completion
// script does, and returns the offered words (descriptions cut) and the directive.
func completions(t *testing.T, args ...string) (words []string, directive string) {
	t.Helper()
	r := htapchaos(t, nil, append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", args, r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range lines[:len(lines)-1] {
		w, _, _ := strings.Cut(l, "\t")
		words = append(words, w)
	}
	return words, lines[len(lines)-1]
}

func TestCompletion(t *testing.T) {
	var fail []string
	for _, n := range experiments.BuiltinNames() {
		if strings.HasPrefix(n, "fail") {
			fail = append(fail, n)
		}
	}
	reg := faults.NewRegistry()
	var kinds []string
	for _, n := range reg.Names() {
		if strings.HasPrefix(n, "node-") {
			kinds = append(kinds, n)
		}
	}
	k, err := reg.Get("network-latency")
	if err != nil {
		t.Fatal(err)
	}
	var params []string
	for _, p := range k.Params {
		params = append(params, p.Name+"=")
	}
	noFiles, noSpace := fmt.Sprintf(":%d", 4), fmt.Sprintf(":%d", 4|2)
	for _, c := range []struct {
		args      []string
		want      []string
		directive string
	}{
		{[]string{"run", "fail"}, fail, noFiles},
		{[]string{"validate", "fail"}, fail, noFiles},
		{[]string{"run", "partition", ""}, nil, noFiles},    // one experiment only
		{[]string{"suite", "partition", "part"}, nil, ":0"}, // given already: nothing left, files then
		{[]string{"suite", "partition", "fail"}, fail, noFiles},
		{[]string{"run", "specs/my"}, nil, ":0"}, // a path: the shell's files
		{[]string{"fault", "node-"}, kinds, noFiles},
		{[]string{"fault", "network-latency", "--param", ""}, params, noSpace},
		{[]string{"fault", "network-latency", "--param", "del"}, []string{"delay="}, noSpace},
	} {
		got, dir := completions(t, c.args...)
		if !slices.Equal(got, c.want) || dir != c.directive {
			t.Errorf("__complete %q: %q %s, want %q %s", c.args, got, dir, c.want, c.directive)
		}
	}
	if len(fail) < 2 || len(kinds) < 2 || len(params) < 2 {
		t.Fatalf("too few to tell: %v %v %v", fail, kinds, params)
	}

	// Cluster names, found as cluster ls finds them: by label. A labelled container
	// that only sleeps is a cluster to the listing, without starting a database.
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI to make a labelled container")
	}
	name := testPrefix + "complete"
	out, err := exec.Command("docker", "run", "-d", "--rm", "--label", testcontainers.LabelTool+"=htapchaos",
		"--label", testcontainers.LabelCluster+"="+name, "--label", testcontainers.LabelTopology+"=galera",
		"--label", testcontainers.LabelKind+"=node", "--label", testcontainers.LabelNode+"=1",
		"htapchaos/node:r2", "sleep", "60").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", strings.TrimSpace(string(out))).Run() })
	for _, args := range [][]string{
		{"run", "--cluster", testPrefix + "comp"},
		{"suite", "--cluster", testPrefix + "comp"},
		{"fault", "pause", "--cluster", testPrefix + "comp"},
		{"cluster", "status", testPrefix + "comp"},
		{"cluster", "down", testPrefix + "comp"},
	} {
		if got, dir := completions(t, args...); !slices.Equal(got, []string{name}) || dir != noFiles {
			t.Errorf("__complete %q: %q %s, want %s", args, got, dir, name)
		}
	}
	if got, _ := completions(t, "cluster", "down", name, testPrefix+"comp"); len(got) != 0 {
		t.Errorf("cluster down offers %q again", got)
	}
	if got, _ := completions(t, "run", "--cluster", "no-such-cluster-"); len(got) != 0 {
		t.Errorf("offered %q", got)
	}

	// The completion scripts themselves.
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := htapchaos(t, nil, "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "htapchaos") || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("completion %s: exit %d: %.200s %s", sh, r.code, r.stdout, r.stderr)
		}
	}
}
