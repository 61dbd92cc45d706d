package experiments

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// What fails as a run is undone is reported, but never changes what the run's
// own error says it was: a removal cancelled with the run leaves a fault that did
// not recover "not-recovered", not "interrupted".
func TestCloseErrorKeepsTheRunsError(t *testing.T) {
	hurt := fmt.Errorf("%w: kill on db1: still down", ErrNotRecovered)
	for _, c := range []struct {
		name      string
		err, cerr error
		kind      string
		is        error
	}{
		{"not recovered, removal cancelled", hurt, context.Canceled, "not-recovered", ErrNotRecovered},
		{"aborted, file lost", &Aborted{Condition: "nodes_down > 1"}, os.ErrClosed, "aborted", nil},
		{"usage, removal cancelled", &UsageError{Field: "--cluster", Msg: "x"}, context.Canceled, "usage", nil},
		{"no error, file lost", nil, os.ErrClosed, "error", os.ErrClosed},
		{"no close error", hurt, nil, "not-recovered", ErrNotRecovered},
	} {
		err := afterClose(c.err, c.cerr)
		if got := errorType(err); got != c.kind {
			t.Errorf("%s: %v is %s, want %s", c.name, err, got, c.kind)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v is not %v", c.name, err, c.is)
		}
		if c.err != nil && errors.Is(err, context.Canceled) {
			t.Errorf("%s: the close error shows through errors.Is: %v", c.name, err)
		}
		if c.cerr != nil && !strings.Contains(err.Error(), c.cerr.Error()) {
			t.Errorf("%s: %v does not say the close error", c.name, err)
		}
	}
}
