package faults

import (
	"fmt"
	"testing"
)

// Bad parameters are usage errors, all reported at once, when the parameters are
// parsed; Setup refuses them too (a fault built without Parse), before anything
// touches a node.
func TestSchemaChangeRefusesBadParams(t *testing.T) {
	k, err := NewRegistry().Get("schema-change")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		raw  map[string]string
		want []string // in the error; none: valid parameters
	}{
		{map[string]string{"variant": "drop-table"}, []string{"variant=drop-table: unknown variant"}},
		{map[string]string{"method": "bogus"}, []string{"method=bogus: want TOI or RSU"}},
		{map[string]string{"table": "orders; DROP TABLE users"}, []string{"table=orders; DROP TABLE users"}},
		{map[string]string{"variant": "nope", "method": "NBO"}, []string{"variant=nope", "method=NBO"}},
		{map[string]string{"variant": "add-index", "method": "rsu", "table": "users"}, nil},
		{nil, nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.raw), func(t *testing.T) { checkParams(t, k, tc.raw, tc.want, "choose one node") })
	}
}

func TestSchemaChangeInstantDetection(t *testing.T) {
	for v, want := range map[string]bool{
		"10.11.6-MariaDB-0+deb12u1": true,
		"10.3.39-MariaDB":           true,
		"10.2.44-MariaDB":           false,
		"11.4.2-MariaDB":            true,
		"8.0.11":                    false,
		"8.0.35":                    true,
		"8.4.0":                     true,
		"5.7.44-log":                false,
	} {
		if got := schemaInstantAddColumn(v); got != want {
			t.Errorf("%s: instant %t, want %t", v, got, want)
		}
	}
}
