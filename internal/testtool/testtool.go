// Package testtool finds the programs tests drive (chromium, xmllint): a test
// skips without one, except under CI, where scripts/setup.sh installs them and
// their absence fails the test.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Find returns the path of the first of names on PATH. Without any, the test is
// skipped, or failed when CI is set; pkg is the Debian package that provides it.
func Find(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI needs %s (Debian package %s; scripts/setup.sh installs it)", names[0], pkg)
	}
	t.Skipf("%s not found: apt-get install %s", names[0], pkg)
	return ""
}
