package results

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hgrmLine is one percentile line of a .hgrm file.
type hgrmLine struct {
	value, percentile float64
	count             int64
}

// readHGRM parses HdrHistogram's percentile format: a header, lines of value,
// percentile, total count and 1/(1-percentile), a footer of #[...] lines.
func readHGRM(t *testing.T, path string) (lines []hgrmLine, footer string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case n == 1:
			if strings.Join(strings.Fields(l), " ") != "Value Percentile TotalCount 1/(1-Percentile)" {
				t.Fatalf("%s: header %q", path, l)
			}
		case l == "":
		case strings.HasPrefix(l, "#["):
			footer += l + "\n"
		default:
			fs := strings.Fields(l)
			if len(fs) != 4 {
				t.Fatalf("%s:%d: %q", path, n, l)
			}
			v, err1 := strconv.ParseFloat(fs[0], 64)
			p, err2 := strconv.ParseFloat(fs[1], 64)
			c, err3 := strconv.ParseInt(fs[2], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				t.Fatalf("%s:%d: %q", path, n, l)
			}
			lines = append(lines, hgrmLine{v, p, c})
		}
	}
	return lines, footer
}

// A recorder fed known latencies; the .hgrm files of each workload and window,
// parsed back, give at every percentile the known latency there (to the
// histogram's 3 significant digits) and the count of latencies up to it.
func TestWriteHGRM(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	r, err := NewRecorder(Options{Dir: dir, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	read := r.Handle(Key{Workload: "oltp", Op: "point-read", Node: 1})
	ins := r.Handle(Key{Workload: "oltp", Op: "insert", Node: 2})
	dash := r.Handle(Key{Workload: "dash boards", Op: "dashboard", Node: 3})
	known := map[string][]float64{} // file name -> latencies in ms
	tick := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	for s := 0; s < 10; s++ {
		sec := tick(s)
		for i := 0; i < 200; i++ {
			at := sec.Add(time.Duration(i) * time.Millisecond)
			if s < 5 {
				// baseline: 1 ms .. 1000 ms, each once, split over two ops and nodes
				ms := float64(s*200 + i + 1)
				h := read
				if i%2 == 1 {
					h = ins
				}
				h.Record(at, at, at.Add(time.Duration(ms*1e6)), nil)
				known["oltp.baseline.hgrm"] = append(known["oltp.baseline.hgrm"], ms)
			} else if i < 20 {
				// fault: 2000 ms and up, a failure now and then (not counted)
				ms := 2000 + float64((s-5)*20+i)*7.5
				read.Record(at, at.Add(5*time.Millisecond), at.Add(time.Duration(ms*1e6)), nil)
				known["oltp.fault.hgrm"] = append(known["oltp.fault.hgrm"], ms)
				if i == 0 {
					read.Record(at, at, at.Add(time.Second), os.ErrDeadlineExceeded)
				}
				dms := 0.25 * float64(i+1)
				dash.Record(at, at, at.Add(time.Duration(dms*1e6)), nil)
				known["dash_boards.fault.hgrm"] = append(known["dash_boards.fault.hgrm"], dms)
			}
		}
		if _, err := r.Tick(tick(s + 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Close(tick(10)); err != nil {
		t.Fatal(err)
	}

	paths, err := WriteHGRM(dir, []Window{{Name: "baseline", Start: tick(0), End: tick(5)}, {Name: "fault", Start: tick(5), End: tick(10)}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		if filepath.Dir(p) != filepath.Join(dir, HGRMDir) {
			t.Errorf("%s: not in %s", p, HGRMDir)
		}
		names = append(names, filepath.Base(p))
	}
	// dash boards was idle in the baseline: no file.
	if want := []string{"oltp.baseline.hgrm", "dash_boards.fault.hgrm", "oltp.fault.hgrm"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for _, p := range paths {
		name := filepath.Base(p)
		truth := slices.Sorted(slices.Values(known[name]))
		n := len(truth)
		lines, footer := readHGRM(t, p)
		if len(lines) < 20 {
			t.Fatalf("%s: %d percentile lines", name, len(lines))
		}
		for _, l := range lines {
			// The known latency at the percentile: the first that reaches it.
			i := max(int(math.Ceil(l.percentile*float64(n)-1e-9))-1, 0)
			want := truth[i]
			if l.value < want-0.0005 || l.value > want*1.001+0.001 {
				t.Errorf("%s: at %.6f: %.3f ms, known %.3f ms", name, l.percentile, l.value, want)
			}
			var upTo int64
			for _, v := range truth {
				if v <= l.value+0.0005 {
					upTo++
				}
			}
			if l.count != upTo {
				t.Errorf("%s: at %.6f (%.3f ms): total count %d, known %d", name, l.percentile, l.value, l.count, upTo)
			}
		}
		last := lines[len(lines)-1]
		if last.percentile != 1 || last.count != int64(n) {
			t.Errorf("%s: last line %+v, want percentile 1 and %d", name, last, n)
		}
		m := regexp.MustCompile(`#\[Mean\s*=\s*([\d.]+),.*\n#\[Max\s*=\s*([\d.]+), Total count\s*=\s*(\d+)\]`).FindStringSubmatch(footer)
		if m == nil {
			t.Fatalf("%s: footer %q", name, footer)
		}
		var sum float64
		for _, v := range truth {
			sum += v
		}
		mean, _ := strconv.ParseFloat(m[1], 64)
		maxv, _ := strconv.ParseFloat(m[2], 64)
		if math.Abs(mean-sum/float64(n)) > sum/float64(n)*0.001 || math.Abs(maxv-truth[n-1]) > truth[n-1]*0.001 || m[3] != strconv.Itoa(n) {
			t.Errorf("%s: footer %q; known mean %.3f, max %.3f, count %d", name, footer, sum/float64(n), truth[n-1], n)
		}
	}

	// A run directory without interval logs is an error, not an empty export.
	if _, err := WriteHGRM(t.TempDir(), []Window{{Name: "x", Start: tick(0), End: tick(1)}}); err == nil {
		t.Error("no run directory: no error")
	}
}
