package results

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// This file writes interval log lines in the format of the library's
// HistogramLogWriter.OutputIntervalHistogram, with an encoder of our own that
// reuses its buffers and its zlib writer. The library's encoder (v1.4.0,
// hdr_encoding.go) allocates a new zlib writer at BestCompression (~800 KB of
// compressor state), a bytes.Buffer grown varint by varint through
// binary.Write and a regexp per histogram: ~840 KB and ~2,000 allocations for
// each histogram written, once a second, for every key.
//
// The encoder below mirrors the library's step for step, so that the lines
// are byte-for-byte the ones the library writes (hlogenc_test.go checks it):
//
//	payload   = int32 0x1c849313 (V2 cookie | 0x10), int32 len(counts),
//	            int32 0 (normalizing index offset), int32 significant digits,
//	            int64 lowest, int64 highest, float64 conversion ratio (all
//	            big-endian), then the counts up to the index of Max() as
//	            ZigZag LEB128, a run of more than one zero as its negated length
//	compressed = int32 0x1c849314 (V2 compressed cookie | 0x10),
//	            int32 len(zlib), zlib(payload) at BestCompression
//	line      = [Tag=<tag>,]<start>,<length>,<max/1e6>,<base64(compressed)>\n
//	            with the three numbers as %f, start relative to the BaseTime.

// Cookies as the library writes them: the V2 bases with 0x10 set.
const (
	v2EncodingCookie           = hdr.V2EncodingCookieBase | 0x10           // 0x1c849313
	v2CompressedEncodingCookie = hdr.V2CompressedEncodingCookieBase | 0x10 // 0x1c849314
	v2HeaderSize               = hdr.ENCODING_HEADER_SIZE                  // 40
)

// hlogEncoder formats interval log lines. Its buffers and zlib writer are
// reused from call to call, so that a line costs no allocation once they have
// grown to fit. Not safe for concurrent use (the Recorder uses it under r.mu).
type hlogEncoder struct {
	raw  []byte       // the V2 payload: header and counts
	zbuf bytes.Buffer // zlib output
	zw   *zlib.Writer // at BestCompression, as the library; Reset for each histogram
	bin  []byte       // compressed cookie, length, zlib output
	line []byte       // the log line
}

// writeInterval writes h as one interval line to w, as
// HistogramLogWriter.OutputIntervalHistogram would with h's tag set to tag,
// its start and end times to startMs and endMs, and the writer's BaseTime
// baseMs. Like the library, it writes the line with a single Write.
func (e *hlogEncoder) writeInterval(w io.Writer, h *hdr.Histogram, tag string, startMs, endMs, baseMs int64) error {
	line, err := e.appendInterval(e.line[:0], h, tag, startMs, endMs, baseMs)
	e.line = line
	if err != nil {
		return err
	}
	_, err = w.Write(line)
	return err
}

// appendInterval appends the interval line of h to dst.
func (e *hlogEncoder) appendInterval(dst []byte, h *hdr.Histogram, tag string, startMs, endMs, baseMs int64) ([]byte, error) {
	if tag != "" {
		if badTag(tag) {
			return dst, fmt.Errorf("tag string cannot contain commas, spaces, or line breaks. used tag: %s", tag)
		}
		dst = append(dst, "Tag="...)
		dst = append(dst, tag...)
		dst = append(dst, ',')
	}
	// The same float64 arithmetic as the library's outputIntervalHistogram.
	startTime := (float64(startMs) - float64(baseMs)) / 1000.0
	endTime := (float64(endMs) - float64(baseMs)) / 1000.0
	maxValue := float64(h.Max()) / hdr.MsToNsRatio
	// %f is strconv's 'f' format with 6 decimals.
	dst = strconv.AppendFloat(dst, startTime, 'f', 6, 64)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, endTime-startTime, 'f', 6, 64)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, maxValue, 'f', 6, 64)
	dst = append(dst, ',')
	dst, err := e.appendEncoded(dst, h)
	if err != nil {
		return dst, err
	}
	return append(dst, '\n'), nil
}

// badTag reports whether the library's writer rejects tag: it matches the
// regexp ".[, \r\n]." against it, that is a comma, space, CR or LF that has a
// character other than LF on both sides.
func badTag(tag string) bool {
	for i := 1; i+1 < len(tag); i++ {
		switch tag[i] {
		case ',', ' ', '\r', '\n':
			// The bytes next to an ASCII byte are an ASCII byte or
			// the edge of a multi-byte (or invalid) sequence, which
			// "." matches; only LF does not match.
			if tag[i-1] != '\n' && tag[i+1] != '\n' {
				return true
			}
		}
	}
	return false
}

// appendEncoded appends to dst the base64 V2 compressed encoding of h, the
// bytes h.Encode(hdr.V2CompressedEncodingCookieBase) returns.
func (e *hlogEncoder) appendEncoded(dst []byte, h *hdr.Histogram) ([]byte, error) {
	counts, ratio := histCounts(h)

	// The payload: header, then counts (hdr_encoding.go: encodeIntoByteBuffer,
	// fillBufferFromCountsArray).
	raw := e.raw[:0]
	raw = binary.BigEndian.AppendUint32(raw, uint32(v2EncodingCookie))
	raw = binary.BigEndian.AppendUint32(raw, 0) // payload length, set below
	raw = binary.BigEndian.AppendUint32(raw, 0) // normalizing index offset: always 0 in this port
	raw = binary.BigEndian.AppendUint32(raw, uint32(int32(h.SignificantFigures())))
	raw = binary.BigEndian.AppendUint64(raw, uint64(h.LowestTrackableValue()))
	raw = binary.BigEndian.AppendUint64(raw, uint64(h.HighestTrackableValue()))
	if ratio == 0 {
		ratio = 1 // getIntegerToDoubleValueConversionRatio: 0 means the default of 1
	}
	raw = binary.BigEndian.AppendUint64(raw, math.Float64bits(ratio))

	// The library encodes counts[0 .. countsIndexFor(Max())]. Max() is the
	// highest equivalent value of the last non-zero index (0 when empty), and
	// countsIndexFor maps it back to that index (to 0 when empty), so the
	// limit is the last non-zero index + 1, and 1 for an empty histogram.
	limit := len(counts)
	for limit > 1 && counts[limit-1] == 0 {
		limit--
	}
	limit = max(limit, 1)
	for src := 0; src < limit; {
		count := counts[src]
		src++
		if count == 0 {
			zeros := int64(1)
			for src < limit && counts[src] == 0 {
				zeros++
				src++
			}
			if zeros > 1 {
				raw = appendZigZag(raw, -zeros)
				continue
			}
		}
		raw = appendZigZag(raw, count)
	}
	binary.BigEndian.PutUint32(raw[4:8], uint32(int32(len(raw)-v2HeaderSize)))
	e.raw = raw

	// Deflate (dumpV2CompressedEncoding): one Write of the whole payload,
	// then Close, at BestCompression. Reset makes the writer equivalent to a
	// new one, so the output is the same as the library's fresh writer.
	e.zbuf.Reset()
	if e.zw == nil {
		zw, err := zlib.NewWriterLevel(&e.zbuf, zlib.BestCompression)
		if err != nil {
			return dst, err
		}
		e.zw = zw
	} else {
		e.zw.Reset(&e.zbuf)
	}
	if _, err := e.zw.Write(raw); err != nil {
		return dst, err
	}
	if err := e.zw.Close(); err != nil {
		return dst, err
	}
	z := e.zbuf.Bytes()

	bin := e.bin[:0]
	bin = binary.BigEndian.AppendUint32(bin, uint32(v2CompressedEncodingCookie))
	bin = binary.BigEndian.AppendUint32(bin, uint32(int32(len(z))))
	bin = append(bin, z...)
	e.bin = bin
	return base64.StdEncoding.AppendEncode(dst, bin), nil
}

// appendZigZag appends v as a ZigZag LEB128 varint of at most 9 bytes, the
// ninth holding 8 bits (zigzag.go: zig_zag_encode_i64).
func appendZigZag(dst []byte, v int64) []byte {
	u := uint64((v << 1) ^ (v >> 63))
	for i := 0; i < 8; i++ {
		if u>>7 == 0 {
			return append(dst, byte(u))
		}
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u)) // the ninth byte: the remaining 8 bits
}

// histCounts returns the counts of h and its conversion ratio (0 = the default
// of 1). Export copies the counts (192 KiB for our geometry): the library has no
// accessor that does not, and reading its unexported fields would break silently
// with a new version. The copy is short-lived garbage, once per histogram per tick.
func histCounts(h *hdr.Histogram) ([]int64, float64) {
	s := h.Export()
	return s.Counts, s.IntegerToDoubleConversionRatio
}
