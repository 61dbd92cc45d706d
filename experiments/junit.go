package experiments

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// JUnitRun is one experiment as the JUnit report shows it: what ran, for how long,
// what it found, and the error it returned, if any.
type JUnitRun struct {
	Experiment string // the spec's name
	Dir        string // the run directory
	Seed       uint64
	Start      time.Time // when the experiment started (zero: when the report is written)
	Duration   time.Duration
	Findings   []Finding
	// Err is what Run returned: an infrastructure error, a fault that did not
	// recover, an interruption. A failed verdict is not an error.
	Err error
	// A repeated experiment (Repeat): Seeds are its runs' seeds (Seed the first),
	// Findings the aggregated ones (the median as the value, the verdict on the
	// median), Unstable those whose runs disagreed.
	Seeds    []uint64
	Repeats  int // runs asked for; 0: not repeated
	Unstable []RepeatFinding
}

// NewJUnitRun is the report's entry for a run of the experiment name with options o,
// started at start, that returned res (nil when it measured nothing) and err.
func NewJUnitRun(name string, o Options, start time.Time, res *Result, err error) JUnitRun {
	jr := JUnitRun{Experiment: name, Dir: o.Out, Seed: o.Seed, Start: start, Duration: time.Since(start), Err: err}
	if res != nil {
		jr.Findings = res.Findings
		if res.Dir != "" {
			jr.Dir = res.Dir
		}
	}
	return jr
}

// NewJUnitRepeat is the report's entry for a repeat of the experiment name with
// options o (o.Out the repeat directory, o.Seed the first seed), started at start,
// that returned rr and err.
func NewJUnitRepeat(name string, o Options, start time.Time, rr *RepeatResult, err error) JUnitRun {
	jr := JUnitRun{Experiment: name, Dir: o.Out, Seed: o.Seed, Start: start, Duration: time.Since(start), Err: err}
	if rr == nil || rr.File == nil {
		return jr
	}
	if rr.Dir != "" {
		jr.Dir = rr.Dir
	}
	jr.Repeats = max(rr.File.Repeats, 1)
	jr.Seeds = rr.File.Seeds()
	if len(jr.Seeds) > 0 {
		jr.Seed = jr.Seeds[0]
	}
	jr.Findings = rr.File.MedianFindings()
	jr.Unstable = rr.File.Unstable()
	return jr
}

// The JUnit document. JUnit has three outcomes besides a pass: failure (the test
// judged and said no), error (the test could not run) and skipped. A finding maps
// onto them so:
//
//   - fail -> <failure>: message "value vs budget", body the reason, the evidence,
//     the article's figure and the notes;
//   - inconclusive -> <skipped>: JUnit has no "inconclusive", and a finding that
//     could not be judged is neither a pass nor a failure; skipped is what CI
//     servers show as "not judged" without failing the build, which matches the
//     exit code (inconclusive verdicts do not change it). Message: the reason;
//   - pass -> a bare test case.
//
// A repeated experiment is one <testsuite> whose finding test cases carry the
// verdict on the median (the value, the median; the body, the spread and each
// run's verdict). Its properties add "repeats" (runs asked for), "seeds" (those
// that ran, comma-separated) and "unstable", the number of findings whose runs
// disagreed, with one property "unstable: MODE: FINDING" per such finding (value:
// the runs per verdict, "pass 2, fail 1"); system-out lists them too. An unstable
// finding is not a failure: like the exit code, only the verdict on the median
// counts.
//
// Every experiment also has a test case named "run": it carries the run's error
// (<error>, type "aborted", "interrupted", "not-recovered" or "error") and shows the experiment
// when it found nothing. Finding test cases have time 0; the run's wall time is on
// the "run" case and the suite, so the times add up.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out"`
	SystemErr  string          `xml:"system-err"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitOutcome `xml:"skipped"`
	Error     *junitOutcome `xml:"error"`
	Failure   *junitOutcome `xml:"failure"`
}

type junitOutcome struct {
	Message string
	Type    string
	Body    string
}

// MarshalXML writes the outcome with its body as one text token: unlike a chardata
// field, whose newlines come out as &#xA;, the lines stay lines in the file. <, &,
// quotes and ]]> are escaped, and characters XML cannot carry become U+FFFD.
func (o *junitOutcome) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if o.Message != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "message"}, Value: o.Message})
	}
	if o.Type != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: o.Type})
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if o.Body != "" {
		if err := e.EncodeToken(xml.CharData(o.Body)); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// WriteJUnit writes runs as a JUnit XML document: one <testsuite> per experiment,
// one <testcase> per finding (classname the experiment, name "mode: finding") plus
// one named "run" per experiment.
func WriteJUnit(w io.Writer, runs []JUnitRun) error {
	host, err := os.Hostname()
	if err != nil || strings.TrimSpace(host) == "" {
		host = "localhost"
	}
	doc := junitDoc(runs, host, time.Now())
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// WriteJUnitFile writes the document to path through a synced temporary file in the
// same directory and a rename (results.WriteFileAtomic): a reader never sees half a
// report.
func WriteJUnitFile(path string, runs []JUnitRun) error {
	var b bytes.Buffer
	if err := WriteJUnit(&b, runs); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	if err := results.WriteFileAtomic(path, b.Bytes()); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	return nil
}

// CheckJUnitPath refuses a report path that cannot be written at the end: its
// directory must exist, and the path must not be a directory. flag names the flag in
// the error.
func CheckJUnitPath(flag, path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		return &UsageError{Field: flag, Msg: fmt.Sprintf("%s: directory %s does not exist", path, dir)}
	case err != nil:
		return &UsageError{Field: flag, Msg: fmt.Sprintf("%s: %v", path, err)}
	case !st.IsDir():
		return &UsageError{Field: flag, Msg: fmt.Sprintf("%s: %s is not a directory", path, dir)}
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return &UsageError{Field: flag, Msg: fmt.Sprintf("%s is a directory: give a file", path)}
	}
	return nil
}

func junitDoc(runs []JUnitRun, host string, now time.Time) junitSuites {
	doc := junitSuites{Name: "htapchaos"}
	var total time.Duration
	for i, r := range runs {
		name := strings.TrimSpace(r.Experiment)
		if name == "" {
			name = "experiment"
		}
		start := r.Start
		if start.IsZero() {
			start = now
		}
		s := junitSuite{Name: name, Package: "htapchaos", ID: i, Hostname: host,
			Timestamp: start.UTC().Format("2006-01-02T15:04:05"), Time: seconds(r.Duration)}
		s.Properties = []junitProperty{
			{"run_dir", r.Dir},
			{"seed", strconv.FormatUint(r.Seed, 10)},
			{"verdict", string(Worst(r.Findings))},
		}
		if r.Err != nil {
			s.Properties = append(s.Properties, junitProperty{"error", r.Err.Error()})
		}
		if r.Repeats > 0 {
			seeds := make([]string, len(r.Seeds))
			for i, sd := range r.Seeds {
				seeds[i] = strconv.FormatUint(sd, 10)
			}
			s.Properties = append(s.Properties,
				junitProperty{"repeats", strconv.Itoa(r.Repeats)},
				junitProperty{"seeds", strings.Join(seeds, ",")},
				junitProperty{"unstable", strconv.Itoa(len(r.Unstable))})
			var out strings.Builder
			for _, u := range r.Unstable {
				s.Properties = append(s.Properties, junitProperty{"unstable: " + u.Mode + ": " + u.Name, u.CountsText()})
				fmt.Fprintf(&out, "unstable: %s: %s: %s over %d runs; verdict on the median %s %s\n", u.Mode, u.Name, u.CountsText(), u.Runs, u.SpreadText(), u.Verdict)
			}
			s.SystemOut = out.String()
		}
		run := junitCase{Name: "run", Classname: name, Time: seconds(r.Duration)}
		if r.Err != nil {
			msg, _, _ := strings.Cut(r.Err.Error(), "\n")
			run.Error = &junitOutcome{Message: msg, Type: errorType(r.Err), Body: r.Err.Error()}
			s.Errors++
		}
		s.Cases = append(s.Cases, run)
		for _, f := range r.Findings {
			c := junitCase{Name: f.Mode + ": " + f.Name, Classname: name, Time: seconds(0)}
			switch f.Verdict {
			case Fail:
				c.Failure = &junitOutcome{Message: valueVsBudget(f), Type: string(Fail), Body: findingText(f)}
				s.Failures++
			case Inconclusive:
				msg := f.Reason
				if msg == "" {
					msg = string(Inconclusive)
				}
				c.Skipped = &junitOutcome{Message: msg, Body: findingText(f)}
				s.Skipped++
			}
			s.Cases = append(s.Cases, c)
		}
		s.Tests = len(s.Cases)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		total += r.Duration
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	return doc
}

// errorType names the kind of a run's error.
func errorType(err error) string {
	var uerr *UsageError
	var aborted *Aborted
	switch {
	case errors.As(err, &aborted):
		return "aborted"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	case errors.Is(err, ErrNotRecovered):
		return "not-recovered"
	case errors.As(err, &uerr):
		return "usage"
	default:
		return "error"
	}
}

// valueVsBudget is a finding's figure against its budget, as the verdict table shows it.
func valueVsBudget(f Finding) string {
	v := strings.TrimSpace(fmt.Sprintf("%.4g %s", f.Value, f.Unit))
	if f.Op == "" {
		return v + " (report only)"
	}
	return v + " vs budget " + strings.TrimSpace(fmt.Sprintf("%s %.4g %s", f.Op, f.Budget, f.Unit))
}

// findingText is the body of a failure or skip: verdict, reason, evidence, the
// article's figure, notes; one item a line.
func findingText(f Finding) string {
	var b strings.Builder
	if f.Verdict == Inconclusive {
		b.WriteString("inconclusive\n") // its value means nothing
	} else {
		fmt.Fprintf(&b, "%s: %s\n", f.Verdict, valueVsBudget(f))
	}
	if f.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", f.Reason)
	}
	if len(f.Evidence) > 0 {
		b.WriteString("evidence:\n")
		for _, e := range f.Evidence {
			fmt.Fprintf(&b, "  %s\n", e.Text(time.Time{}))
		}
	}
	if f.Reference != "" {
		fmt.Fprintf(&b, "reference: %s\n", f.Reference)
	}
	if len(f.Notes) > 0 {
		b.WriteString("notes:\n")
		for _, n := range f.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	return b.String()
}

// seconds formats a duration as JUnit's time attribute: seconds, never negative.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(max(d, 0).Seconds(), 'f', 3, 64)
}
