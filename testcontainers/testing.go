package testcontainers

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// StartForTest starts a cluster for a Go test and removes it when the test ends.
// Where no engine or no node image is present it skips the test with the reason,
// except under CI (CI set in the environment), where it fails: CI must not skip.
func StartForTest(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if cfg.Progress == nil {
		cfg.Progress = t.Logf
	}
	c, err := Run(ctx, cfg)
	if c != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Terminate(ctx); err != nil {
				t.Errorf("terminate cluster %s: %v", c.Name, err)
			}
		})
	}
	if err != nil {
		if (errors.Is(err, ErrEngineUnavailable) || errors.Is(err, ErrImageMissing)) && os.Getenv("CI") == "" {
			t.Skipf("needs a container engine and the node image (bash .ci/run sets both up): %v", err)
		}
		t.Fatalf("start cluster: %v", err)
	}
	return c
}
