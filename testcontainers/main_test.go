package testcontainers

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// testLabels mark what these tests create, so a crashed earlier run is swept at start
// and the end can check that nothing is left.
var testLabels = map[string]string{LabelPurpose: "test-testcontainers"}

func TestMain(m *testing.M) {
	tclog.SetDefault(tclog.NewNoopLogger())
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	eng, err := Connect(ctx)
	if err == nil {
		if r, err := RemoveAll(ctx, eng, testLabels); err == nil && r.Containers+r.Networks > 0 {
			fmt.Fprintf(os.Stderr, "swept %d container(s), %d network(s) left by an earlier run\n", r.Containers, r.Networks)
		}
	}
	cancel()
	code := m.Run()
	if eng != nil {
		// Every test removes what it made; anything labelled that remains is a
		// cleanup bug, and fails the run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if left, err := countLabelled(ctx, eng, testLabels); err != nil || left > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d labelled container(s)/network(s) remain after the tests (err=%v)\n", left, err)
			_, _ = RemoveAll(ctx, eng, testLabels)
			code = 1
		}
	}
	os.Exit(code)
}
