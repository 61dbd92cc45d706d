package main

import (
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/internal/usage"
	"github.com/htapchaos/htapchaos/units"
)

// specInfo is an experiment as list --json and validate --json print it. The
// field names are stable: scripts read them.
type specInfo struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Modes       []string       `json:"modes"`
	Topology    string         `json:"topology,omitempty"` // the cluster it starts; "" for a target
	Nodes       int            `json:"nodes,omitempty"`
	Workloads   int            `json:"workloads"`
	Faults      int            `json:"faults"`
	Total       units.Duration `json:"total"`                 // the timeline, "3m30s"
	QuickTotal  units.Duration `json:"quick_total,omitempty"` // list: with --quick
}

func newSpecInfo(s *experiments.Spec) specInfo {
	in := specInfo{Name: s.Name, Description: s.Description, Modes: s.Modes, Workloads: len(s.Workloads), Faults: len(s.Faults), Total: units.Duration(s.Total())}
	if in.Modes == nil {
		in.Modes = []string{}
	}
	if s.Cluster != nil {
		in.Topology, in.Nodes = s.Cluster.Topology, s.Cluster.Nodes
	}
	return in
}

// validation is validate --json's answer: OK with the experiment, or the errors.
type validation struct {
	Arg        string       `json:"arg"` // the NAME or FILE given
	OK         bool         `json:"ok"`
	Experiment *specInfo    `json:"experiment,omitempty"`
	Errors     []inputError `json:"errors,omitempty"`
}

// inputError is one problem of an input, where it is: File and Line when the
// message names them, Field the flag or input at fault (experiment: the file
// itself; --set, --quick).
type inputError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// errLocation is "FILE: line N: MSG" (a YAML decoder's) or "FILE:N: MSG" (a
// check's); FILE may be followed by " (after --quick and --set)".
var errLocation = regexp.MustCompile(`^(\S+?)(?: \([^)]*\))?(?::(\d+)|: line (\d+))?: (.*)$`)

// inputErrors splits an error, joined or not, into its located problems.
func inputErrors(err error) []inputError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []inputError
		for _, e := range j.Unwrap() {
			out = append(out, inputErrors(e)...)
		}
		return out
	}
	ie := inputError{Message: err.Error()}
	var ue *usage.Error
	if errors.As(err, &ue) {
		ie.Field, ie.Message = ue.Field, ue.Msg
	}
	if ie.Field == "experiment" {
		if m := errLocation.FindStringSubmatch(ie.Message); m != nil && (m[2] != "" || m[3] != "" || looksLikeFile(m[1])) {
			ie.File, ie.Message = m[1], m[4]
			ie.Line, _ = strconv.Atoi(m[2] + m[3])
		}
	}
	return []inputError{ie}
}

// looksLikeFile says whether s names a spec file (it ends in .yaml or .yml).
func looksLikeFile(s string) bool {
	return regexp.MustCompile(`\.ya?ml$`).MatchString(s)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
