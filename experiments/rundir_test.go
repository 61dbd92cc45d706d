package experiments

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRunDirRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		runJSON string
		want    error
		text    string
	}{
		{"", ErrNotRunDir, dir},
		{`{"version": 2, "spec": {"name": "from the future"}}`, ErrNewerVersion, "version 2"},
		{`{"spec": {"name": "x"}}`, ErrBadRunFile, "no version"},
		{`{"version": 1, "start": "yesterday"}`, ErrBadRunFile, "run.json"},
		{`not json`, ErrBadRunFile, "run.json"},
	} {
		os.Remove(filepath.Join(dir, "run.json"))
		if tc.runJSON != "" {
			write("run.json", tc.runJSON)
		}
		_, err := ReadRunDir(dir)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("run.json %q: %v, want %v naming %q", tc.runJSON, err, tc.want, tc.text)
		}
	}

	// A run that wrote only run.json (it failed before the load) reads with nothing
	// else; a line cut short at the end of a file (a crash) is skipped; a bad line in
	// the middle is an error naming the file and line.
	write("run.json", `{"version": 1, "spec": {"name": "x"}, "error": "cluster did not start"}`)
	rd, err := ReadRunDir(dir)
	if err != nil || rd.Run.Error != "cluster did not start" || rd.Summary != nil || rd.Indicators != nil || rd.Events != nil {
		t.Fatalf("bare run: %+v, %v", rd, err)
	}
	write("indicators.jsonl", `{"t":"2026-01-01T00:00:00Z","node":1,"up":true}`+"\n"+`{"t":"2026-01-01T00:00:01Z","node":1,"up":tr`)
	write("events.jsonl", `{"time":"2026-01-01T00:00:00Z","fault":"pause","step":"inject","nodes":["n1"]}`+"\n")
	if rd, err = ReadRunDir(dir); err != nil || len(rd.Indicators) != 1 || !rd.Indicators[0].Up || len(rd.Events) != 1 || rd.Events[0].Step != "inject" {
		t.Fatalf("cut short: %+v, %v", rd, err)
	}
	write("indicators.jsonl", "{\"node\":1}\n{oops\n{\"node\":2}\n")
	if _, err := ReadRunDir(dir); err == nil || !strings.Contains(err.Error(), "indicators.jsonl line 2") {
		t.Errorf("bad line: %v", err)
	}
}

// A run.json written when phase_stats entries named their window "phase" reads
// with each entry's window named.
func TestReadRunFileLegacyPhaseStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(path, []byte(`{"version": 1, "phase_stats": [{"phase": "baseline", "workload": "oltp", "count": 5}, {"phase": "fault:kill", "workload": "oltp"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rf, err := ReadRunFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.PhaseStats) != 2 || rf.PhaseStats[0].Window != "baseline" || rf.PhaseStats[0].Count != 5 || rf.PhaseStats[1].Window != "fault:kill" {
		t.Errorf("phase_stats %+v: want the windows baseline and fault:kill", rf.PhaseStats)
	}
}

// run.json's phase_stats name each window both "window" and "phase", and read
// back as they were written.
func TestRunFilePhaseStatsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.json")
	rf := &RunFile{Version: runVersion, Spec: &Spec{Name: "x"}, PhaseStats: []PhaseStats{{Window: "baseline", Workload: "oltp", Count: 3}}}
	if err := writeJSON(path, rf); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"window": "baseline"`) || !strings.Contains(string(b), `"phase": "baseline"`) || !strings.Contains(string(b), `"version": 1`) {
		t.Errorf("run.json:\n%s", b)
	}
	got, err := ReadRunFile(path)
	if err != nil || len(got.PhaseStats) != 1 || got.PhaseStats[0].Window != "baseline" || got.PhaseStats[0].Count != 3 || got.Spec.Name != "x" {
		t.Errorf("read back %+v, %v", got, err)
	}
}
