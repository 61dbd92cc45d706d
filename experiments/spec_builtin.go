package experiments

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// BuiltinNames lists the experiments embedded in the binary, sorted.
func BuiltinNames() []string {
	entries, _ := fs.ReadDir(builtinFS, "builtin")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}

// Builtin parses an embedded experiment by name.
func Builtin(name string, o ParseOptions) (*Spec, error) {
	b, err := builtinFS.ReadFile(path.Join("builtin", name+".yaml"))
	if err != nil {
		return nil, &UsageError{Field: "experiment", Msg: "no builtin experiment " + name + " (htapchaos list shows them)"}
	}
	return ParseSpec("builtin/"+name+".yaml", b, o)
}

// BuiltinSource is an embedded experiment's file, to start one's own from.
func BuiltinSource(name string) ([]byte, bool) {
	b, err := builtinFS.ReadFile(path.Join("builtin", name+".yaml"))
	return b, err == nil
}
