package faults

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// memSQLOnly is a node that offers SQL and memory figures but no exec.
type memSQLOnly struct{ fakeNode }

func (memSQLOnly) DSN() string                                    { return "" }
func (memSQLOnly) Memory(context.Context) (uint64, uint64, error) { return 0, 0, errors.New("fake") }

func TestMemoryFillRefusesBadParams(t *testing.T) {
	k, err := NewRegistry().Get("memory-fill")
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Parse(nil)
	if err != nil || p.Int("percent") != 90 || p["method"] != "exec" {
		t.Fatalf("defaults: %v %v, want percent 90, method exec", p, err)
	}
	for _, bad := range []string{"0", "100", "-5", "ninety"} {
		if _, err := k.Parse(map[string]string{"percent": bad}); err == nil || !strings.Contains(err.Error(), "percent="+bad) {
			t.Errorf("percent=%s: %v", bad, err)
		}
	}
	setup := func(raw map[string]string, n Node) error {
		p, err := k.Parse(raw)
		if err != nil {
			return err
		}
		return k.New(p).Setup(context.Background(), &Env{Targets: []Node{n}, Events: NewEvents(nil)})
	}
	sqlOnly := memSQLOnly{fakeNode{1, "single"}}
	var ue *UsageError
	for _, tc := range []struct {
		raw  map[string]string
		node Node
		want string
	}{
		{map[string]string{"method": "bogus"}, sqlOnly, "method=bogus: want exec or sql"},
		{map[string]string{"method": "exec"}, sqlOnly, "cannot take memory-fill with method=exec"},
		{nil, sqlOnly, "cannot take memory-fill with method=exec"}, // exec is the default
	} {
		err := setup(tc.raw, tc.node)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error with %q", tc.raw, err, tc.want)
		}
	}
	// Kind.Check runs before parameters are known: either method's needs will do.
	if err := k.Check([]Node{sqlOnly}); err != nil {
		t.Errorf("a node that can do method=sql refused: %v", err)
	}
	if err := k.Check([]Node{fakeNode{1, "single"}}); err == nil || !strings.Contains(err.Error(), "method=sql") {
		t.Errorf("a node that can do neither method: %v", err)
	}
}
