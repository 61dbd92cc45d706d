package testcontainers

import (
	"os"
	"testing"
)

// Only clusters whose test process is gone are swept: a run beside another on the
// same engine must not remove the other's clusters.
func TestOwnerAlive(t *testing.T) {
	host, _ := os.Hostname()
	for _, c := range []struct {
		owner string
		alive bool
	}{
		{owner(), true},
		{"999999999@" + host, false}, // above any pid_max
		{"1@another-host", true},     // cannot tell: leave it
		{"", false},                  // left by a run from before owner labels
		{"garbage", false},
	} {
		if got := ownerAlive(c.owner); got != c.alive {
			t.Errorf("ownerAlive(%q) = %t, want %t", c.owner, got, c.alive)
		}
	}
}
