package faults

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// checkParams checks what a kind makes of raw parameters. With want, a usage error
// that says each of want, from Parse and again from Setup (a fault built without
// Parse), before anything touches a node. Without, Parse takes them and Setup, given
// no targets, refuses only for the node: a usage error that says noNode.
func checkParams(t *testing.T, k *Kind, raw map[string]string, want []string, noNode string) {
	t.Helper()
	p, perr := k.Parse(raw)
	if want == nil && perr != nil {
		t.Fatalf("valid parameters refused: %v", perr)
	}
	if want != nil {
		checkParamError(t, "Parse", perr, want)
		p = Params(raw)
	}
	// No targets: valid parameters get as far as the node check.
	err := k.New(p).Setup(context.Background(), &Env{})
	if want == nil {
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), noNode) {
			t.Errorf("valid parameters: Setup error %v, want a usage error saying %q", err, noNode)
		}
		return
	}
	checkParamError(t, "Setup", err, want)
}

// checkParamError checks that err is a usage error that says each of want.
func checkParamError(t *testing.T, step string, err error, want []string) {
	t.Helper()
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("%s: error %v, want a usage error", step, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", step, err, w)
		}
	}
}

// measurement finds the first measurement of the name.
func measurement(ms []Measurement, name string) (Measurement, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return Measurement{}, false
}
