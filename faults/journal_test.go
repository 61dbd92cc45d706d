package faults

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A fault's runner writes its inject entry (synced) before Inject runs and its
// recovery after; a recovery that failed leaves the entry unrecovered, and a
// journal that cannot be written stops the fault before it acts.
func TestRunnerJournals(t *testing.T) {
	t.Setenv("HTAPCHAOS_STATE_DIR", t.TempDir())
	active.Lock()
	active.m = map[*Runner]time.Time{} // other tests' runners whose recovery failed
	active.Unlock()
	runDir := t.TempDir()
	key := JournalKey{Cluster: "demo"}
	j, err := OpenJournal(key, runDir)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := JournalPath(key)
	// Inject sees its own entry on disk already.
	seenAtInject := 0
	f := &journalSpy{fakeFault: &fakeFault{}, onInject: func() {
		es, _ := ReadJournal(path)
		seenAtInject = len(Unrecovered(es))
	}}
	r := NewRunner("pause", f, &Env{Events: NewEvents(nil), Journal: j, Params: Params{"x": "1"}})
	if err := r.Run(context.Background(), time.Millisecond, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if seenAtInject != 1 {
		t.Errorf("Inject ran with %d unrecovered entries on disk, want its own", seenAtInject)
	}
	for _, p := range []string{path, filepath.Join(runDir, "faults.journal.jsonl")} {
		es, err := ReadJournal(p)
		if err != nil || len(es) != 2 || es[0].Event != JournalInject || es[1].Event != JournalRecovered || es[0].ID != es[1].ID ||
			es[0].Kind != "pause" || es[0].Cluster != "demo" || es[0].PID != os.Getpid() || es[0].Params["x"] != "1" || string(es[0].Undo) != `{"step":"undo"}` {
			t.Errorf("%s: %+v %v", p, es, err)
		}
		if left := Unrecovered(es); len(left) != 0 {
			t.Errorf("%s: %d unrecovered after a clean run", p, len(left))
		}
	}
	if len(Active()) != 0 {
		t.Errorf("active after the recovery: %v", Active())
	}

	// A recovery that failed: the entry stays unrecovered, the fault active.
	r = NewRunner("pause", &fakeFault{failAt: "recover"}, &Env{Events: NewEvents(nil), Journal: j})
	_ = r.Run(context.Background(), time.Millisecond, 5*time.Second)
	es, _ := ReadJournal(path)
	if left := Unrecovered(es); len(left) != 1 || left[0].Kind != "pause" {
		t.Errorf("after a failed recovery: %+v", left)
	}
	if a := Active(); len(a) != 1 || a[0].State != StateFailed || !strings.Contains(a[0].String(), "heal with: htapchaos heal --cluster demo") {
		t.Errorf("active after a failed recovery: %v", a)
	}
	markActive(r, false)

	// No journal, no fault: a state directory that cannot be written.
	bad := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(bad, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HTAPCHAOS_STATE_DIR", bad)
	if _, err := OpenJournal(key, ""); err == nil {
		t.Error("a journal under a file opened")
	}
	j.paths = []string{filepath.Join(bad, "x.jsonl")}
	ff := &fakeFault{}
	r = NewRunner("pause", ff, &Env{Events: NewEvents(nil), Journal: j})
	if err := r.Run(context.Background(), time.Millisecond, 5*time.Second); err == nil || !strings.Contains(err.Error(), "fault journal") {
		t.Errorf("run without a writable journal: %v", err)
	}
	if got := strings.Join(ff.steps, " "); got != "setup cleanup" {
		t.Errorf("steps without a journal: %q, want setup and cleanup only", got)
	}
}

// A torn last line (the process died writing it) is skipped; heal entries close
// their inject.
func TestReadJournal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j.jsonl")
	data := `{"id":"a","event":"inject","kind":"pause","nodes":[3]}
{"id":"b","event":"inject","kind":"cpu-hog","nodes":[2]}
{"id":"a","event":"healed"}
{"id":"c","event":"inj`
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	es, err := ReadJournal(p)
	if err != nil || len(es) != 3 {
		t.Fatalf("%+v %v", es, err)
	}
	if left := Unrecovered(es); len(left) != 1 || left[0].ID != "b" {
		t.Errorf("unrecovered %+v", left)
	}
	if es, err := ReadJournal(filepath.Join(t.TempDir(), "none")); err != nil || es != nil {
		t.Errorf("missing journal: %v %v", es, err)
	}
	if a, b := (JournalKey{Target: "staging.yaml"}).fileName(), (JournalKey{Target: "./staging.yaml"}).fileName(); a != b || !strings.HasPrefix(a, "target-staging-") {
		t.Errorf("one target file, two journal names: %s %s", a, b)
	}
	if LeavesNothing("pause") || !LeavesNothing("network-latency") {
		t.Error("LeavesNothing")
	}
}

type journalSpy struct {
	*fakeFault
	onInject func()
}

func (s *journalSpy) Inject(ctx context.Context, env *Env) error {
	s.onInject()
	return s.fakeFault.Inject(ctx, env)
}

func (s *journalSpy) UndoState(context.Context, *Env) (any, error) {
	return map[string]string{"step": "undo"}, nil
}

// A panic in a fault's Inject is the step's error: the runner still recovers.
func TestRunnerRecoversAPanickingFault(t *testing.T) {
	f := &panicky{fakeFault: &fakeFault{}}
	r := NewRunner("fake", f, &Env{Events: NewEvents(nil)})
	err := r.Run(context.Background(), time.Millisecond, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "panic in fake inject: inject exploded") {
		t.Errorf("error %v", err)
	}
	if got := strings.Join(f.steps, " "); got != "setup recover recovered cleanup" {
		t.Errorf("steps %q: want the recovery to run after the panic", got)
	}
}

type panicky struct{ *fakeFault }

func (p *panicky) Inject(context.Context, *Env) error { panic("inject exploded") }

// heal refuses a node whose name is not the journal's (an edited target file),
// and heals by the journal's index and name otherwise.
func TestHealChecksTheNodeName(t *testing.T) {
	c := fakeCluster{fakeNode{1, "galera"}, fakeNode{2, "galera"}}
	e := JournalEntry{ID: "x", Event: JournalInject, Kind: "pause", Nodes: []int{2}, Labels: []string{"db2"}}
	r := Heal(context.Background(), c, []JournalEntry{e})
	if len(r) != 1 || r[0].Err == nil || !strings.Contains(r[0].Err.Error(), "node 2 is c-n2 now, the journal says db2") {
		t.Errorf("heal of a renamed node: %+v", r)
	}
	e.Labels = []string{"c-n2"}
	if r := Heal(context.Background(), c, []JournalEntry{e}); r[0].Err != nil {
		t.Errorf("heal of the journal's node: %v", r[0].Err)
	}
	// A kind that leaves nothing: nothing to do, no error.
	e.Kind = "network-latency"
	if r := Heal(context.Background(), c, []JournalEntry{e}); r[0].Err != nil {
		t.Errorf("heal of network-latency: %v", r[0].Err)
	}
}

// A panic in a goroutine a fault starts inside itself (memory-fill's filler)
// ends that goroutine as an error, not the process.
func TestFaultGoroutinePanicIsAnError(t *testing.T) {
	m := &memNode{n: fakeNode{1, "galera"}}
	m.background(context.Background(), func(context.Context) { panic("filler exploded") })
	m.halt()
	if m.panicked == nil || !strings.Contains(m.panicked.Error(), "panic in memory-fill on c-n1: filler exploded") {
		t.Errorf("panicked %v", m.panicked)
	}
}

// A process id from another boot is not alive, whatever runs under it now.
func TestJournalEntryAliveAcrossBoots(t *testing.T) {
	e := JournalEntry{PID: os.Getpid(), Boot: bootID()}
	if bootID() == "" {
		t.Skip("this kernel gives no boot id")
	}
	if !e.Alive() {
		t.Error("this process, this boot: not alive")
	}
	e.Boot = "another-boot"
	if e.Alive() {
		t.Error("a process id from another boot counted as alive")
	}
}
