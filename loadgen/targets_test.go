package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestNewTargetAddsTimeoutsAndInterpolation(t *testing.T) {
	tg, err := NewTarget(2, "root:secret@tcp(127.0.0.1:3306)/htapchaos?readTimeout=2s", DefaultTimeouts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(tg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout != 3*time.Second || cfg.ReadTimeout != 2*time.Second || cfg.WriteTimeout != 30*time.Second || !cfg.InterpolateParams {
		t.Errorf("dsn %s: want dial 3s, the DSN's read 2s, write 30s, interpolation", Redact(tg.DSN))
	}
	if tg.Node != 2 || strings.Contains(tg.Name, "secret") || tg.OwnDatabase {
		t.Errorf("target %+v", tg)
	}
	// No database named: htapchaos's own.
	tg, err = NewTarget(1, "root:secret@tcp(127.0.0.1:3306)/", DefaultTimeouts)
	if cfg, _ := mysql.ParseDSN(tg.DSN); err != nil || !tg.OwnDatabase || cfg.DBName != OwnDatabase {
		t.Errorf("a DSN with no database: %+v %v", tg, err)
	}
}

func TestParseTargetsSplitsAndNumbers(t *testing.T) {
	ts, err := ParseTargets([]string{"a:b@tcp(127.0.0.1:1)/x,a:b@tcp(127.0.0.1:2)/x", "a:b@tcp(127.0.0.1:3)/x"}, DefaultTimeouts)
	if err != nil || len(ts) != 3 || ts[2].Node != 3 {
		t.Fatalf("%+v %v", ts, err)
	}
	if _, err := ParseTargets([]string{"not a dsn"}, DefaultTimeouts); err == nil {
		t.Error("a bad DSN was accepted")
	}
	_, err = ParseTargets([]string{"root:hunter2@tcp(127.0.0.1:1)/x?readTimeout=soon"}, DefaultTimeouts)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v must exist and hide the password", err)
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("root:hunter2@tcp(127.0.0.1:3306)/db"); strings.Contains(got, "hunter2") || !strings.Contains(got, "***") {
		t.Errorf("Redact = %q", got)
	}
}

func TestParseRoute(t *testing.T) {
	for in, want := range map[string][]int{"all": {1, 2, 3}, "": {1, 2, 3}, "node=2": {2}, "nodes=3,1,3": {3, 1}} {
		r, err := ParseRoute(in, 3)
		if err != nil || len(r.Nodes) != len(want) {
			t.Errorf("%q: %v %v", in, r, err)
			continue
		}
		for i := range want {
			if r.Nodes[i] != want[i] {
				t.Errorf("%q: %v, want %v", in, r.Nodes, want)
			}
		}
	}
	for _, bad := range []string{"node=4", "node=0", "nodes=1,x", "leader", "node="} {
		if _, err := ParseRoute(bad, 3); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	rt := &router{nodes: []int{1, 2, 3}}
	seen := map[int]int{}
	for range 9 {
		seen[rt.pick()]++
	}
	if seen[1] != 3 || seen[2] != 3 || seen[3] != 3 {
		t.Errorf("round robin %v", seen)
	}
	if rt.after(3) != 1 || rt.after(1) != 2 {
		t.Errorf("after: %d %d", rt.after(3), rt.after(1))
	}
}

func TestDDL(t *testing.T) {
	ss := strings.Join(DDL(SingleStore), "\n")
	for _, want := range []string{"CREATE ROWSTORE TABLE IF NOT EXISTS users", "SHARD KEY (user_id)", "SORT KEY (created_at)", "CREATE TABLE IF NOT EXISTS orders"} {
		if !strings.Contains(ss, want) {
			t.Errorf("SingleStore DDL misses %q:\n%s", want, ss)
		}
	}
	if strings.Count(ss, "SHARD KEY (user_id)") != 2 {
		t.Errorf("both tables must be sharded by user_id (co-located join):\n%s", ss)
	}
	if strings.Contains(ss, "ENGINE=InnoDB") || strings.Contains(ss, "ROWSTORE TABLE IF NOT EXISTS orders") {
		t.Errorf("orders must be a columnstore table:\n%s", ss)
	}
	md := strings.Join(DDL(MariaDB), "\n")
	for _, want := range []string{"ENGINE=InnoDB", "KEY idx_orders_created_at (created_at)", "KEY idx_orders_user_id (user_id)", "PRIMARY KEY (order_id)"} {
		if !strings.Contains(md, want) {
			t.Errorf("MariaDB DDL misses %q", want)
		}
	}
	if _, err := ParseDialect("postgres"); err == nil {
		t.Error("unknown dialect accepted")
	}
}

func TestIDsAreDisjointAcrossWritersAndRuns(t *testing.T) {
	a, b := NewIDs(5), NewIDs(6)
	if a.ID(1, 1) == a.ID(2, 1) || a.ID(1, 1) == b.ID(1, 1) {
		t.Error("ids collide")
	}
	lo, hi := a.Range()
	for _, id := range []int64{a.ID(1, 1), a.ID(65535, 1<<24-1)} {
		if id < lo || id > hi {
			t.Errorf("id %d outside its run's range %d-%d", id, lo, hi)
		}
	}
	if a.ID(1, 2) != a.ID(1, 1)+1 {
		t.Error("a writer's ids are not consecutive (the ledger stores ranges)")
	}
	if lo <= 1<<40-1 {
		t.Error("run ids overlap seeded ids")
	}
}
