package main

import (
	"bytes"
	"strings"
	"testing"
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
		{[]string{"fault", "pause", "--node", "1"}, "--cluster: name the cluster"},
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
