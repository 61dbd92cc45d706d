package results

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs .. 1 h in nanoseconds, 3 significant digits.
const (
	histLow    = 1_000
	histHigh   = 3_600_000_000_000
	histDigits = 3
)

// newHist returns an empty histogram with the package's geometry. Every
// histogram of the package has this geometry, which makes merging exact.
func newHist() *hdr.Histogram { return hdr.New(histLow, histHigh, histDigits) }

// clampNs clamps a duration into the histogram's range so that no sample is
// ever dropped.
func clampNs(d time.Duration) int64 {
	v := int64(d)
	if v < histLow {
		return histLow
	}
	if v > histHigh {
		return histHigh
	}
	return v
}

// record records d (clamped). It cannot fail for a histogram made by newHist.
func record(h *hdr.Histogram, d time.Duration) {
	_ = h.RecordValue(clampNs(d))
}

// Returned-bytes histogram range (Handle.RecordReturned): 1 B .. 1 TiB, 3
// significant digits, so exact to the byte up to 2 kB and within 0.1% above. A
// point read returns tens of bytes (66 on MariaDB), which latency's geometry
// would round up to its floor of 1 kB and to steps of 512 B above it. Returned
// bytes are merged only with one another, so their geometry need not be
// latency's.
const byteHistHigh = 1 << 40

// newByteHist returns an empty returned-bytes histogram.
func newByteHist() *hdr.Histogram { return hdr.New(1, byteHistHigh, histDigits) }

// merge adds src into dst. Both must have been made by the same constructor
// (newHist, newByteHist): with equal geometry every bucket of src maps onto
// the same bucket of dst, so counts add up exactly and dst's max becomes the
// max of both. A nil src is a no-op.
func merge(dst, src *hdr.Histogram) {
	if src == nil || src.TotalCount() == 0 {
		return
	}
	if dropped := dst.Merge(src); dropped != 0 {
		// Impossible with equal geometry; keep the promise never to lose a
		// sample anyway by clamping what did not fit to the top of the range.
		_ = dst.RecordValues(dst.HighestTrackableValue(), dropped)
	}
}

// Percentiles summarises a latency histogram, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func nsToMs(v float64) float64 { return v / 1e6 }

func percentilesOf(h *hdr.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		P50:  nsToMs(float64(h.ValueAtQuantile(50))),
		P90:  nsToMs(float64(h.ValueAtQuantile(90))),
		P99:  nsToMs(float64(h.ValueAtQuantile(99))),
		P999: nsToMs(float64(h.ValueAtQuantile(99.9))),
		Max:  nsToMs(float64(h.Max())),
		Mean: nsToMs(h.Mean()),
	}
}

// recordBytes records a memory figure in bytes, clamped into the histogram's
// range (1 kB to 3.6 TB when read as bytes).
func recordBytes(h *hdr.Histogram, b int64) {
	_ = h.RecordValue(min(max(b, histLow), histHigh))
}

// recordReturned records a returned-bytes figure, clamped into the range of
// newByteHist (0 B to 1 TiB).
func recordReturned(h *hdr.Histogram, b int64) {
	_ = h.RecordValue(min(max(b, 0), byteHistHigh))
}

// BytePercentiles summarises a histogram of bytes: the per-query peak memory
// (Handle.RecordMemory), the bytes each operation returned (Handle.RecordReturned). The same quantiles as Percentiles, in bytes, with JSON
// names that say so.
type BytePercentiles struct {
	P50  float64 `json:"p50_bytes"`
	P90  float64 `json:"p90_bytes"`
	P99  float64 `json:"p99_bytes"`
	P999 float64 `json:"p999_bytes"`
	Max  float64 `json:"max_bytes"`
	Mean float64 `json:"mean_bytes"`
}

// bytePercentilesOf summarises a histogram of bytes (memory, returned). Nil
// when h is empty.
func bytePercentilesOf(h *hdr.Histogram) *BytePercentiles {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	return &BytePercentiles{
		P50:  float64(h.ValueAtQuantile(50)),
		P90:  float64(h.ValueAtQuantile(90)),
		P99:  float64(h.ValueAtQuantile(99)),
		P999: float64(h.ValueAtQuantile(99.9)),
		Max:  float64(h.Max()),
		Mean: h.Mean(),
	}
}

// p99 returns the 99th percentile of h (0 when empty).
func p99(h *hdr.Histogram) time.Duration {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.ValueAtQuantile(99))
}
