package results

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// This file reads interval logs back. The library's HistogramLogReader decodes
// every line into a dense histogram: for our geometry (1 µs to 1 h, 3 digits)
// that is about 200 KB per line, so a 1-hour run of 24 keys allocated 50 GB to
// be read back. Here each line is decoded into the library's sparse
// PackedHistogram (the same V2 encoding), whose MergeInto adds it to a dense
// histogram bucket by bucket, and lines whose tag is not wanted are not
// decoded at all. Times follow the library's reader: the line's start plus
// the log's BaseTime, in float64 seconds, truncated to the millisecond.

var (
	hlogStartTimeRE = regexp.MustCompile(`^#\[StartTime: ([\d\.]*)`)
	hlogBaseTimeRE  = regexp.MustCompile(`^#\[BaseTime: ([\d\.]*)`)
)

// hlogInterval is one line of an interval log.
type hlogInterval struct {
	Tag            string
	StartMs, EndMs int64                // unix ms, truncated as the library's reader does
	Hist           *hdr.PackedHistogram // nil for a tag not asked for
}

// eachLogInterval reads the interval log at path with eachInterval, decoding the
// histograms whose tags are of kinds (lat, svc, err), and gives f the workload
// the log belongs to (named in its header comment) with each line.
func eachLogInterval(path string, kinds []string, f func(workload string, iv hlogInterval) error) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	defer file.Close()
	br := bufio.NewReaderSize(file, 64<<10)
	head, _ := br.Peek(4096)
	wl := hlogWorkload(path, head)
	keep := func(tag string) bool {
		kind, _, _, ok := parseTag(tag)
		return ok && slices.Contains(kinds, kind)
	}
	if err := eachInterval(br, keep, func(iv hlogInterval) error { return f(wl, iv) }); err != nil {
		return fmt.Errorf("results: read %s: %w", path, err)
	}
	return nil
}

// eachInterval reads the interval log r and calls f with every interval line,
// its histogram decoded when keep accepts its tag. f must not keep the
// histogram.
func eachInterval(r io.Reader, keep func(tag string) bool, f func(iv hlogInterval) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var startSec, baseSec float64
	var haveStart, haveBase bool
	for n := 1; ; n++ {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull { // a line longer than the buffer: read it whole
			rest, err := br.ReadBytes('\n')
			line, rerr = append(bytes.Clone(line), rest...), err
		}
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0, bytes.HasPrefix(line, []byte(`"StartTimestamp"`)):
		case line[0] == '#':
			if m := hlogStartTimeRE.FindSubmatch(line); m != nil {
				v, err := strconv.ParseFloat(string(m[1]), 64)
				if err != nil {
					return fmt.Errorf("line %d: %w", n, err)
				}
				startSec, haveStart = v, true
			} else if m := hlogBaseTimeRE.FindSubmatch(line); m != nil {
				v, err := strconv.ParseFloat(string(m[1]), 64)
				if err != nil {
					return fmt.Errorf("line %d: %w", n, err)
				}
				baseSec, haveBase = v, true
			}
		default:
			var tag []byte
			if bytes.HasPrefix(line, []byte("Tag=")) {
				var ok bool
				tag, line, ok = bytes.Cut(line[4:], []byte{','})
				if !ok {
					continue // as the library: a tag with no comma is skipped
				}
			}
			fields := bytes.SplitN(line, []byte{','}, 4)
			if len(fields) != 4 {
				if rerr == io.EOF {
					return nil // a last line cut short by a crash
				}
				return fmt.Errorf("line %d: want start,length,max,histogram", n)
			}
			start, err1 := strconv.ParseFloat(string(fields[0]), 64)
			length, err2 := strconv.ParseFloat(string(fields[1]), 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("line %d: bad interval times", n)
			}
			if !haveStart {
				startSec, haveStart = start, true
			}
			if !haveBase { // the library's rule: times over a year before StartTime are relative
				if start < startSec-365*24*3600 {
					baseSec = startSec
				}
				haveBase = true
			}
			iv := hlogInterval{Tag: string(tag), StartMs: int64((start + baseSec) * 1000), EndMs: int64((start + baseSec + length) * 1000)}
			if keep(iv.Tag) {
				p, err := hdr.DecodePacked(fields[3])
				if err != nil {
					if rerr == io.EOF {
						return nil // a last line cut short by a crash
					}
					return fmt.Errorf("line %d: %w", n, err)
				}
				iv.Hist = p
			}
			if err := f(iv); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// mergePacked adds p into dst (made by newHist, or newByteHist for returned
// bytes). A count dst cannot hold (impossible with equal geometry) is kept at
// the top of the range, as merge does.
func mergePacked(dst *hdr.Histogram, p *hdr.PackedHistogram) {
	if dropped := p.MergeInto(dst); dropped != 0 {
		_ = dst.RecordValues(dst.HighestTrackableValue(), dropped)
	}
}
