package results

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// eachInterval reads back what the library's reader reads from the recorder's
// own logs: the same tags, the same end times, and the same counts in every
// bucket once merged.
func TestEachIntervalAgreesWithTheLibrary(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)
	r, err := NewRecorder(Options{Dir: dir, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []Key{{"oltp", "point-read", 1, Read}, {"oltp", "insert", 2, Write}, {"oltp", "odd op", 3, Read}}
	for s := range 20 {
		sec := start.Add(time.Duration(s) * 1001 * time.Millisecond)
		for i := range 500 {
			k := keys[i%len(keys)]
			at := sec.Add(time.Duration(i) * time.Millisecond)
			lat := time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
			if i%97 == 0 {
				lat = time.Duration(rng.Int64N(int64(5 * time.Second)))
			}
			var err error
			if i%50 == 0 {
				err = os.ErrDeadlineExceeded
			}
			r.Handle(k).Record(at, at.Add(lat/3), at.Add(lat), err)
		}
		if _, err := r.Tick(sec.Add(1001 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Close(start.Add(21 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "oltp.hlog"))
	if err != nil {
		t.Fatal(err)
	}

	type got struct {
		tag string
		end int64
		h   *hdr.Histogram
	}
	var ours, theirs []got
	err = eachInterval(bytes.NewReader(b), func(string) bool { return true }, func(iv hlogInterval) error {
		h := newHist()
		mergePacked(h, iv.Hist)
		ours = append(ours, got{iv.Tag, iv.EndMs, h})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rd := hdr.NewHistogramLogReader(bytes.NewReader(b))
	for {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		d := newHist()
		merge(d, h)
		theirs = append(theirs, got{h.Tag(), h.EndTimeMs(), d})
	}
	if len(ours) != len(theirs) || len(ours) < 20*3*2 {
		t.Fatalf("%d intervals read, the library read %d", len(ours), len(theirs))
	}
	for i := range ours {
		o, l := ours[i], theirs[i]
		if o.tag != l.tag || o.end != l.end || o.h.TotalCount() != l.h.TotalCount() || !o.h.Equals(l.h) {
			t.Errorf("interval %d: %s end %d count %d; library %s end %d count %d", i, o.tag, o.end, o.h.TotalCount(), l.tag, l.end, l.h.TotalCount())
		}
	}

	// Only the tags asked for are decoded, but every line gives its times.
	var decoded, all int
	err = eachInterval(bytes.NewReader(b), func(tag string) bool { return strings.HasPrefix(tag, "lat/") }, func(iv hlogInterval) error {
		all++
		if iv.Hist != nil {
			decoded++
			if !strings.HasPrefix(iv.Tag, "lat/") {
				t.Errorf("tag %s decoded, not asked for", iv.Tag)
			}
		}
		if iv.EndMs-iv.StartMs < 1000 || iv.EndMs-iv.StartMs > 1002 {
			t.Errorf("%s: interval %d..%d", iv.Tag, iv.StartMs, iv.EndMs)
		}
		return nil
	})
	if err != nil || all != len(theirs) || decoded == 0 || decoded == all {
		t.Errorf("%d lines, %d decoded, %v", all, decoded, err)
	}

	// A last line cut short by a crash is skipped; a damaged line before the end is
	// an error naming its line.
	last := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
	cut := b[:last+(len(b)-last)/2]
	n := 0
	if err := eachInterval(bytes.NewReader(cut), func(string) bool { return true }, func(hlogInterval) error { n++; return nil }); err != nil || n != len(theirs)-1 {
		t.Errorf("cut last line: %d intervals, %v; want %d", n, err, len(theirs)-1)
	}
	damaged := append(bytes.Clone(cut), b[last:]...)
	if err := eachInterval(bytes.NewReader(damaged), func(string) bool { return true }, func(hlogInterval) error { return nil }); err == nil || !strings.Contains(err.Error(), "line ") {
		t.Errorf("damaged line mid-file: %v", err)
	}
}
