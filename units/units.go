// Package units reads the human units htapchaos takes everywhere (experiment and
// target YAML, --set, flags): byte sizes, with the meaning `docker run --memory`
// gives them, and durations such as "30s" or "1m30s". One parser each, so a size
// or a duration means the same wherever it is written.
package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	dockerunits "github.com/docker/go-units"
	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest size ParseSize takes (1 EiB): anything larger is a typo,
// and it keeps every accepted size clear of int64's overflow.
const MaxSize int64 = 1 << 60

// ParseSize parses a byte size the way `docker run --memory` does (go-units'
// RAMInBytes): K, M, G, T and P count in powers of 1024 whatever follows them, so
// 512M, 512MB and 512MiB are all 512 MiB; the unit is case-insensitive, a plain
// number is bytes, and a fraction is allowed (1.5GiB). Zero is a size; negative,
// unknown units and sizes over MaxSize are errors that quote the value.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	n, err := dockerunits.RAMInBytes(t)
	if err != nil || t == "" {
		return 0, fmt.Errorf("%q: want a size such as 512MiB or 2GiB (K, M, G, T: powers of 1024, as in docker run --memory)", s)
	}
	// A float too large for int64 converts to MinInt64 (amd64) or MaxInt64 (arm64).
	if n < 0 || n > MaxSize {
		return 0, fmt.Errorf("%q: too large a size (at most 1EiB)", s)
	}
	return n, nil
}

// Size is a byte size written in human units ("512MiB", "1GiB", "64M"; see
// ParseSize). In YAML and JSON it is a string or a number of bytes, and must be
// positive: a size left out is zero, one written is not.
type Size int64

func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := parsePositiveSize(n.Value)
	if err != nil {
		// A TypeError lets a strict decoder go on and report the other problems too.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*s = Size(v)
	return nil
}

func (s *Size) UnmarshalJSON(b []byte) error {
	str := string(b)
	if u, err := strconv.Unquote(str); err == nil {
		str = u
	}
	v, err := parsePositiveSize(str)
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

func parsePositiveSize(s string) (int64, error) {
	v, err := ParseSize(s)
	if err == nil && v == 0 {
		err = fmt.Errorf("%q: want a positive size such as 512MiB or 2GiB", s)
	}
	return v, err
}

// Bytes is the size in bytes.
func (s Size) Bytes() int64 { return int64(s) }

// FormatSize prints a byte count in binary units, as ParseSize reads it back:
// 1GiB, 1.5GiB, 512MiB, 100B.
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	neg := ""
	if n < 0 {
		neg, n = "-", -n
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	return neg + strings.TrimSuffix(v, ".0") + string("KMGTPE"[exp]) + "iB"
}

// ParseDuration parses a duration as Go writes it ("30s", "1m30s", "250ms", "0"):
// time.ParseDuration's syntax, not negative.
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 30s or 1m30s", s)
	}
	return v, nil
}

// Duration is a time.Duration written in human units ("30s", "1m30s"; see
// ParseDuration). YAML and JSON read it from a string; JSON and YAML write it as
// one, so a file written reads back.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q: want a duration such as 30s or 1m30s", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("duration %s: want a quoted duration such as \"30s\"", b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %v", err)
	}
	*d = Duration(v)
	return nil
}

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
