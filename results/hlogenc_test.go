package results

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// encCase is a histogram the encoder must encode as the library does.
type encCase struct {
	name string
	h    *hdr.Histogram
}

// encCases returns histograms covering the shapes the encoder meets and its
// edge cases: empty, one value, values over the whole range, the clamped
// extremes, zero runs of every length class, counts needing every varint
// length up to 9 bytes, seeded random data, merged and decoded histograms.
func encCases(t testing.TB) []encCase {
	var cs []encCase
	add := func(name string, h *hdr.Histogram) { cs = append(cs, encCase{name, h}) }
	rec := func(h *hdr.Histogram, v, n int64) {
		t.Helper()
		if err := h.RecordValues(v, n); err != nil {
			t.Fatalf("RecordValues(%d, %d): %v", v, n, err)
		}
	}

	add("empty", newHist())

	for _, v := range []int64{histLow, 1_500, 2_000_000, 123_456_789, histHigh} {
		h := newHist()
		rec(h, v, 1)
		add(fmt.Sprintf("one value %d", v), h)
	}

	h := newHist()
	rec(h, histLow, 1_000_000)
	rec(h, histHigh, 3)
	add("clamped extremes", h)

	h = newHist()
	record(h, 0)
	record(h, -time.Second)
	record(h, 2*time.Hour)
	record(h, time.Duration(math.MaxInt64))
	add("clamped by record", h)

	// Log-spaced over the whole range: every bucket, zero runs of all lengths.
	h = newHist()
	for v := float64(histLow); v <= histHigh; v *= 1.0007 {
		rec(h, int64(v), 1+int64(v)%7)
	}
	add("spread over the range", h)

	// Every varint length: count 2^k at a distinct bucket (they sum to
	// MaxInt64, the largest total there is), with single zeros between
	// (zeros == 1 is written as a count of 0, not a run).
	h = newHist()
	for k := 0; k < 63; k++ {
		rec(h, histLow*int64(2*k+1), int64(1)<<k)
	}
	add("counts 2^0..2^62", h)

	// Single zeros and runs of exactly two between counts.
	h = newHist()
	for i := int64(0); i < 3000; i += 2 + i%2 {
		rec(h, histLow*(i+1)/2*2, 1)
	}
	add("short zero runs", h)

	rng := rand.New(rand.NewPCG(42, 1))
	for i := 0; i < 8; i++ {
		h := newHist()
		n := rng.IntN(20_000)
		for j := 0; j < n; j++ {
			var d time.Duration
			switch i % 4 {
			case 0: // latencies of a healthy run: lognormal around 2 ms
				d = time.Duration(math.Exp(rng.NormFloat64()*0.8) * 2e6)
			case 1: // anything in the range, and outside it
				d = time.Duration(rng.Int64N(histHigh * 2))
			case 2: // exponential
				d = time.Duration(rng.ExpFloat64() * 5e7)
			default: // a few big counts
				d = time.Duration(rng.Int64N(1e10))
			}
			if i%4 == 3 {
				_ = h.RecordValues(clampNs(d), rng.Int64N(1<<40))
			} else {
				record(h, d)
			}
		}
		add(fmt.Sprintf("random %d (%d values)", i, n), h)
	}

	// Merged, as the recorder's cumulative and per-workload histograms.
	m := newHist()
	for _, c := range cs {
		merge(m, c.h)
	}
	add("merged", m)
	add("clone", cs[len(cs)-2].h.Clone())

	// Decoded with a non-default conversion ratio, which the library keeps
	// and writes back.
	add("decoded, ratio 2.5", withRatio(t, cs[len(cs)-1].h, 2.5))
	return cs
}

// withRatio returns a copy of h, decoded by the library, whose V2 header
// carries the conversion ratio ratio.
func withRatio(t testing.TB, h *hdr.Histogram, ratio float64) *hdr.Histogram {
	t.Helper()
	enc, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	raw := inflate(t, enc)
	binary.BigEndian.PutUint64(raw[32:40], math.Float64bits(ratio))
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	bin := binary.BigEndian.AppendUint32(nil, uint32(v2CompressedEncodingCookie))
	bin = binary.BigEndian.AppendUint32(bin, uint32(z.Len()))
	bin = append(bin, z.Bytes()...)
	d, err := hdr.Decode([]byte(base64.StdEncoding.EncodeToString(bin)))
	if err != nil {
		t.Fatal(err)
	}
	if _, got := histCounts(d); got != ratio {
		t.Fatalf("decoded ratio %v, want %v", got, ratio)
	}
	return d
}

// inflate returns the uncompressed V2 payload of a base64 V2 compressed
// encoding.
func inflate(t testing.TB, enc []byte) []byte {
	t.Helper()
	bin, err := base64.StdEncoding.DecodeString(string(enc))
	if err != nil {
		t.Fatal(err)
	}
	if c := binary.BigEndian.Uint32(bin); c != uint32(v2CompressedEncodingCookie) {
		t.Fatalf("compressed cookie %#x", c)
	}
	if n := binary.BigEndian.Uint32(bin[4:]); int(n) != len(bin)-8 {
		t.Fatalf("compressed length %d, have %d bytes", n, len(bin)-8)
	}
	zr, err := zlib.NewReader(bytes.NewReader(bin[8:]))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The encoder must read the library's fields, not fall back to Export.
// TestEncodeMatchesLibrary: our encoding is byte for byte the library's, and
// the library decodes it to an equal histogram.
func TestEncodeMatchesLibrary(t *testing.T) {
	cs := encCases(t)
	var e hlogEncoder // one encoder for all: reuse must not leak state
	check := func(c encCase) {
		t.Helper()
		want, err := c.h.Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.appendEncoded([]byte("prefix"), c.h)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("%s: appendEncoded lost dst", c.name)
		}
		got = got[len("prefix"):]
		if !bytes.Equal(got, want) {
			// Say where it differs: before or after compression.
			if bytes.Equal(inflate(t, got), inflate(t, want)) {
				t.Fatalf("%s: same payload, different compressed bytes:\n got %s\nwant %s", c.name, got, want)
			}
			t.Fatalf("%s: payload differs:\n got %x\nwant %x", c.name, inflate(t, got), inflate(t, want))
		}
		d, err := hdr.Decode(got)
		if err != nil {
			t.Fatalf("%s: hdr.Decode: %v", c.name, err)
		}
		if !d.Equals(c.h) || d.Max() != c.h.Max() || d.TotalCount() != c.h.TotalCount() {
			t.Fatalf("%s: decodes to a different histogram", c.name)
		}
	}
	for _, c := range cs {
		check(c)
	}
	for i := len(cs) - 1; i >= 0; i-- { // again, in the other order
		check(cs[i])
		check(cs[i])
	}
}

// TestIntervalLineMatchesLibrary: our whole line is the one
// HistogramLogWriter.OutputIntervalHistogram writes, for various tags, times
// and base times; and HistogramLogReader reads a log of our lines back.
func TestIntervalLineMatchesLibrary(t *testing.T) {
	cs := encCases(t)
	start := t0.Add(250 * time.Millisecond).UnixMilli()
	type when struct{ base, start, end int64 }
	whens := []when{
		{0, 0, 0},
		{start - start%1000, start, start + 1000},
		{start - start%1000, start + 1000, start + 2017},
		{start - start%1000, start + 3_600_123, start + 3_600_123}, // zero length
		{start - start%1000, start + 5_000, start + 4_000},         // a clock that went back
		{0, start, start + 999},                                    // absolute times
		{start + 10_000, start, start + 1},                         // before the base
		{1, math.MaxInt32 * 1000, math.MaxInt32*1000 + 1},
		{1, 1<<53 + 1, 1<<53 + 3}, // float64 rounding: the library subtracts in float64
	}
	tags := []string{"", "lat/point-read/n1", "svc/big_scan/n0", "err/x/n12"}

	var e hlogEncoder
	var ours, lib bytes.Buffer
	olw := hdr.NewHistogramLogWriter(&ours) // our lines after the library's header
	llw := hdr.NewHistogramLogWriter(&lib)
	for _, lw := range []*hdr.HistogramLogWriter{olw, llw} {
		lw.SetBaseTime(whens[1].base)
		lw.OutputLogFormatVersion()
		lw.OutputStartTime(start)
		lw.OutputBaseTime(whens[1].base)
		lw.OutputLegend()
	}
	type entry struct {
		h          *hdr.Histogram
		tag        string
		start, end int64
	}
	var logged []entry
	for i, c := range cs {
		for j, w := range whens {
			tag := tags[(i+j)%len(tags)]
			lh := c.h.Clone()
			lh.SetTag(tag)
			lh.SetStartTimeMs(w.start)
			lh.SetEndTimeMs(w.end)
			var buf bytes.Buffer
			lw := hdr.NewHistogramLogWriter(&buf)
			lw.SetBaseTime(w.base)
			if err := lw.OutputIntervalHistogram(lh); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := e.writeInterval(&got, c.h, tag, w.start, w.end, w.base); err != nil {
				t.Fatal(err)
			}
			if got.String() != buf.String() {
				t.Fatalf("%s, tag %q, %+v:\n got %q\nwant %q", c.name, tag, w, got.String(), buf.String())
			}
			if j == 2 || j == 3 { // a log to read back
				if err := e.writeInterval(&ours, c.h, tag, w.start, w.end, w.base); err != nil {
					t.Fatal(err)
				}
				if err := llw.OutputIntervalHistogram(lh); err != nil {
					t.Fatal(err)
				}
				logged = append(logged, entry{c.h, tag, w.start, w.end})
			}
		}
	}
	if ours.String() != lib.String() {
		t.Fatal("the logs differ")
	}
	lr := hdr.NewHistogramLogReader(&ours)
	for i, want := range logged {
		h, err := lr.NextIntervalHistogram()
		if err != nil || h == nil {
			t.Fatalf("reading interval %d back: %v, %v", i, h, err)
		}
		if !h.Equals(want.h) || h.Tag() != want.tag || h.StartTimeMs() != want.start || h.EndTimeMs() != want.end {
			t.Fatalf("interval %d reads back as tag %q %d-%d (equal histogram: %v), want tag %q %d-%d",
				i, h.Tag(), h.StartTimeMs(), h.EndTimeMs(), h.Equals(want.h), want.tag, want.start, want.end)
		}
	}
	if h, err := lr.NextIntervalHistogram(); h != nil || err != nil {
		t.Fatalf("after the last interval: %v, %v", h, err)
	}
}

// TestBadTagMatchesLibrary: we refuse the tags the library's writer refuses
// (its regexp ".[, \r\n]."), with its error message, and only those.
func TestBadTagMatchesLibrary(t *testing.T) {
	re := regexp.MustCompile(`.[, \r\n].`)
	alphabet := []string{"a", ",", " ", "\r", "\n", "é", "\xff", "\t"}
	var tags []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		tags = append(tags, prefix)
		if n == 0 {
			return
		}
		for _, a := range alphabet {
			gen(prefix+a, n-1)
		}
	}
	gen("", 4) // every tag of up to 4 symbols
	h := newHist()
	record(h, time.Millisecond)
	var e hlogEncoder
	for _, tag := range tags {
		if badTag(tag) != re.MatchString(tag) {
			t.Fatalf("badTag(%q) = %v, the library's regexp says %v", tag, badTag(tag), !badTag(tag))
		}
	}
	for _, tag := range []string{"a,b", "x y", "ok", ",ok", "a\r\nb"} {
		lh := h.Clone()
		lh.SetTag(tag)
		var lib, ours bytes.Buffer
		lerr := hdr.NewHistogramLogWriter(&lib).OutputIntervalHistogram(lh)
		oerr := e.writeInterval(&ours, h, tag, 0, 0, 0)
		if fmt.Sprint(lerr) != fmt.Sprint(oerr) || lib.String() != ours.String() {
			t.Fatalf("tag %q: library %v %q, ours %v %q", tag, lerr, lib.String(), oerr, ours.String())
		}
	}
}

// TestEncodeAllocs: once its buffers have grown, the encoder allocates only the
// copy of the counts that Export makes, whatever the histogram.
func TestEncodeAllocs(t *testing.T) {
	cs := encCases(t)
	var e hlogEncoder
	for _, c := range cs { // grow the buffers
		e.writeInterval(io.Discard, c.h, "lat/point-read/n1", 1000, 2000, 0)
	}
	for _, c := range cs {
		if n := testing.AllocsPerRun(20, func() {
			e.writeInterval(io.Discard, c.h, "lat/point-read/n1", 1000, 2000, 0)
		}); n > 1 {
			t.Errorf("%s: %v allocations per line, want only the counts' copy", c.name, n)
		}
	}
}

// TestRecorderHlogLines: every interval line the recorder writes is the line
// the library's writer writes for the histogram it holds, tag, interval and
// the log's BaseTime.
func TestRecorderHlogLines(t *testing.T) {
	dir := t.TempDir()
	start := t0.Add(1250 * time.Millisecond) // BaseTime is t0 + 1s
	r, err := NewRecorder(Options{Dir: dir, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	spans := map[string][2]int64{} // formatted start -> start, end in ms
	now := start
	for tick := 0; tick < 4; tick++ {
		end := now.Add(time.Second + time.Duration(tick)*time.Millisecond)
		for _, op := range []string{"point-read", "insert"} {
			for node := 1; node <= 2; node++ {
				h := r.Handle(Key{Workload: "oltp", Op: op, Node: node})
				for i := 0; i < 500; i++ {
					at := now.Add(time.Duration(rng.Int64N(int64(time.Second))))
					d := time.Duration(math.Exp(rng.NormFloat64()) * 3e6)
					var err error
					if rng.IntN(50) == 0 {
						err = fmt.Errorf("boom")
					}
					h.Record(at, at.Add(time.Duration(rng.Int64N(2e7))), at.Add(d), err)
				}
			}
		}
		base := float64(start.UnixMilli() - start.UnixMilli()%1000)
		spans[strconv.FormatFloat((float64(now.UnixMilli())-base)/1000, 'f', 6, 64)] = [2]int64{now.UnixMilli(), end.UnixMilli()}
		if _, err := r.Tick(end); err != nil {
			t.Fatal(err)
		}
		now = end
	}
	if _, err := r.Close(now); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(filepath.Join(dir, "oltp.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	baseMs := start.UnixMilli() - start.UnixMilli()%1000
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, `"`) {
			continue
		}
		fields := strings.Split(line, ",")
		if len(fields) != 5 || !strings.HasPrefix(fields[0], "Tag=") {
			t.Fatalf("line %q", line)
		}
		span, ok := spans[fields[1]]
		if !ok {
			t.Fatalf("line %q: start %s is no tick's", line, fields[1])
		}
		h, err := hdr.Decode([]byte(fields[4]))
		if err != nil {
			t.Fatal(err)
		}
		h.SetTag(strings.TrimPrefix(fields[0], "Tag="))
		h.SetStartTimeMs(span[0])
		h.SetEndTimeMs(span[1])
		var want bytes.Buffer
		lw := hdr.NewHistogramLogWriter(&want)
		lw.SetBaseTime(baseMs)
		if err := lw.OutputIntervalHistogram(h); err != nil {
			t.Fatal(err)
		}
		if line+"\n" != want.String() {
			t.Fatalf("recorder wrote\n%q\nthe library writes\n%q", line, want.String())
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 4*4*3 { // 4 ticks x 4 keys x lat, svc, err
		t.Fatalf("%d interval lines, want 48", n)
	}
}

// BenchmarkEncodeInterval: one interval line of a busy key's histogram, by
// the library's writer and by ours.
func BenchmarkEncodeInterval(b *testing.B) {
	h := newHist()
	for i := 0; i < 2000; i++ {
		record(h, time.Duration(100+i*37)*time.Microsecond)
	}
	h.SetTag("lat/point-read/n1")
	h.SetStartTimeMs(1000)
	h.SetEndTimeMs(2000)
	b.Run("library", func(b *testing.B) {
		lw := hdr.NewHistogramLogWriter(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			if err := lw.OutputIntervalHistogram(h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours", func(b *testing.B) {
		var e hlogEncoder
		b.ReportAllocs()
		for b.Loop() {
			if err := e.writeInterval(io.Discard, h, "lat/point-read/n1", 1000, 2000, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
