package experiments_test

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/htapchaos/htapchaos/compare"
	"github.com/htapchaos/htapchaos/experiments"
)

// compare sets the Spider run and the Vitess run of data-movement (the same data,
// two engines) side by side: two groups told apart by their topology, and the
// co-location row shows Spider moving as much for the co-located join as for the
// other, Vitess hundreds of times less. It runs after TestShardedBuiltins and
// TestVitessBuiltins, which leave their data-movement runs.
func TestCompareEngines(t *testing.T) {
	runs := experiments.DataMovementRuns()
	if runs["spider"] == "" || runs["vitess"] == "" {
		// Under CI, when the whole package runs (no -run), both builtins ran first.
		if f := flag.Lookup("test.run"); os.Getenv("CI") != "" && (f == nil || f.Value.String() == "") {
			t.Fatalf("data-movement runs %v: want both engines' (TestShardedBuiltins and TestVitessBuiltins run first)", runs)
		}
		t.Skipf("needs the data-movement runs of TestShardedBuiltins and TestVitessBuiltins (got %v)", runs)
	}
	loaded, err := compare.Load([]string{runs["spider"], runs["vitess"]})
	if err != nil {
		t.Fatal(err)
	}
	c, err := compare.Compare(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Groups) != 2 {
		t.Fatalf("%d groups, want 2", len(c.Groups))
	}
	for i, want := range []string{"sharded", "vitess"} {
		if !strings.Contains(c.Groups[i].Label, want) {
			t.Errorf("group %s labelled %q, want it to name %s", c.Groups[i].ID, c.Groups[i].Label, want)
		}
	}
	i := slices.IndexFunc(c.Findings, func(r compare.Row) bool {
		return r.Name == "co-location: bytes moved non-co-located / co-located join"
	})
	if i < 0 {
		t.Fatal("no co-location row")
	}
	row := c.Findings[i]
	spider, vitess := row.Cells[0].Median, row.Cells[1].Median
	if spider == nil || vitess == nil {
		t.Fatalf("co-location cells: %+v", row.Cells)
	}
	t.Logf("non-co-located / co-located bytes: Spider %.1fx, Vitess %.1fx", *spider, *vitess)
	if *spider > 5 || *vitess < 50 || row.Cells[1].Ratio == nil || *row.Cells[1].Ratio < 10 {
		t.Errorf("co-location: Spider %.1fx, Vitess %.1fx: want Spider near 1 and Vitess at least 50 and 10 times Spider's", *spider, *vitess)
	}
}
