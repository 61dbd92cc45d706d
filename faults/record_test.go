package faults

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run recorded into a directory leaves events.jsonl with each step and a
// fault.json whose times and fields are the runner's own, and no temporary file.
func TestRecordWritesEventsAndResult(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out") // NewRecord makes it
	rec, err := NewRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := Params{"grace": "5s"}
	r := NewRunner("fake", &fakeFault{failAt: "recover"},
		&Env{Targets: []Node{fakeNode{2, "galera"}}, Events: NewEvents(rec.Events()), Params: p})
	runErr := r.Run(context.Background(), 10*time.Millisecond, 5*time.Second)
	if runErr == nil {
		t.Fatal("a failed recover returned no error")
	}
	if err := rec.WriteResult(r, runErr); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(filepath.Join(dir, "fault.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Version != ResultVersion || res.Fault != "fake" || strings.Join(res.Nodes, ",") != "c-n2" ||
		res.Params["grace"] != "5s" || res.State != string(r.State()) || res.Error != runErr.Error() {
		t.Errorf("fault.json: %+v", res)
	}
	if res.Injected == nil || !res.Injected.Equal(r.Injected) || res.Effective == nil || !res.Effective.Equal(r.Effective) {
		t.Errorf("fault.json times: injected %v effective %v, the runner's %v %v", res.Injected, res.Effective, r.Injected, r.Effective)
	}
	if res.Healthy != nil || res.Measurements == nil {
		t.Errorf("never healthy, nothing measured: healthy %v, measurements %v (want absent, [])", res.Healthy, res.Measurements)
	}

	events, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{`"step":"inject"`, `"step":"effect"`, `"step":"recover"`, `"step":"cleanup"`} {
		if !strings.Contains(string(events), step) {
			t.Errorf("events.jsonl has no %s:\n%s", step, events)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the directory holds %d files, want events.jsonl and fault.json only", len(entries))
	}
}
