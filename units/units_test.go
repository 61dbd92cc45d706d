package units

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		bad  string // part of the error; "" = accepted
	}{
		// docker run --memory's meaning: M, MB and MiB are all MiB.
		{in: "512MB", want: 512 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "512M", want: 512 << 20},
		{in: "512m", want: 512 << 20},
		{in: "1g", want: 1 << 30},
		{in: "1GB", want: 1 << 30},
		{in: "1.5GiB", want: 3 << 29},
		{in: "64KiB", want: 64 << 10},
		{in: "1kb", want: 1 << 10},
		{in: "2T", want: 2 << 40},
		{in: "1048576", want: 1 << 20},
		{in: "100B", want: 100},
		{in: " 2 GiB ", want: 2 << 30},
		{in: "0", want: 0},
		{in: "-1", bad: `"-1": want a size`},
		{in: "-1G", bad: "want a size"},
		{in: "junk", bad: `"junk": want a size such as 512MiB`},
		{in: "", bad: "want a size"},
		{in: "G", bad: "want a size"},
		{in: "1XB", bad: "want a size"},
		{in: "1GiBB", bad: "want a size"},
		{in: "99999999999999999999", bad: "too large"},
		{in: "8192P", bad: "too large"},
		{in: "1e400", bad: "want a size"},
	} {
		got, err := ParseSize(c.in)
		switch {
		case c.bad == "" && (err != nil || got != c.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error with %q", c.in, got, err, c.bad)
		}
	}
}

func TestFormatSizeReadsBack(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1GiB", 512 << 20: "512MiB", 3 << 29: "1.5GiB", 100: "100B", 1536: "1.5KiB", 0: "0B"} {
		got := FormatSize(n)
		if got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(got); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestSizeYAMLAndJSON(t *testing.T) {
	var v struct {
		Memory Size `yaml:"memory" json:"memory"`
	}
	if err := yaml.Unmarshal([]byte("memory: 512MB\n"), &v); err != nil || v.Memory != 512<<20 {
		t.Fatalf("yaml 512MB: %d, %v", v.Memory, err)
	}
	err := yaml.Unmarshal([]byte("a: 1\nmemory: lots\n"), &v)
	if err == nil || !strings.Contains(err.Error(), `line 2: "lots": want a size`) {
		t.Errorf("yaml lots: %v", err)
	}
	if err := yaml.Unmarshal([]byte("memory: 0\n"), &v); err == nil || !strings.Contains(err.Error(), "positive") {
		t.Errorf("yaml 0: %v", err)
	}
	for in, want := range map[string]Size{`{"memory": 1073741824}`: 1 << 30, `{"memory": "1g"}`: 1 << 30} {
		if err := json.Unmarshal([]byte(in), &v); err != nil || v.Memory != want {
			t.Errorf("json %s: %d, %v", in, v.Memory, err)
		}
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"memory":1073741824}` {
		t.Errorf("json out: %s", b)
	}
}

func TestDuration(t *testing.T) {
	type doc struct {
		D Duration `yaml:"d" json:"d"`
	}
	for _, c := range []struct {
		yaml string
		want time.Duration
		bad  string
	}{
		{yaml: "d: 30s", want: 30 * time.Second},
		{yaml: "d: 1m30s", want: 90 * time.Second},
		{yaml: "d: 250ms", want: 250 * time.Millisecond},
		{yaml: "d: 1h", want: time.Hour},
		{yaml: "d: 0", want: 0},
		{yaml: "d: 0s", want: 0},
		{yaml: "d: -5s", bad: `line 1: "-5s": want a duration such as 30s or 1m30s`},
		{yaml: "d: 30", bad: `line 1: "30": want a duration`},
		{yaml: "d: soon", bad: `"soon": want a duration`},
		{yaml: "d: [1s]", bad: "want a duration"},
	} {
		var v doc
		err := yaml.Unmarshal([]byte(c.yaml), &v)
		switch {
		case c.bad == "" && (err != nil || v.D.D() != c.want):
			t.Errorf("%s: %v, %v; want %v", c.yaml, v.D.D(), err, c.want)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%s: %v; want an error with %q", c.yaml, err, c.bad)
		}
	}
	// JSON: written as a string, read back; the YAML a file gets reads back too.
	in := doc{D: Duration(90 * time.Second)}
	b, err := json.Marshal(in)
	if err != nil || string(b) != `{"d":"1m30s"}` {
		t.Fatalf("json: %s, %v", b, err)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("json back: %v, %v", out, err)
	}
	y, _ := yaml.Marshal(in)
	if err := yaml.Unmarshal(y, &out); err != nil || out != in || strings.TrimSpace(string(y)) != "d: 1m30s" {
		t.Errorf("yaml back: %s -> %v, %v", y, out, err)
	}
	for in, want := range map[string]string{
		`{"d": 30}`:     `want a quoted duration such as "30s"`,
		`{"d": "-1s"}`:  `"-1s": want a duration`,
		`{"d": "soon"}`: `"soon": want a duration`,
	} {
		if err := json.Unmarshal([]byte(in), &out); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("json %s: %v; want %q", in, err, want)
		}
	}
}
