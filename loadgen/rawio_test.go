//go:build linux

package loadgen

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/htapchaos/htapchaos/results"
)

// tcpPair is a connected loopback pair: the client side wrapped as the load
// generator wraps its connections, and the server side.
func tcpPair(t *testing.T) (*trackedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	tr := newConnTracker()
	c, err := tr.dial(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	tc := c.(*trackedConn)
	if tc.raw == nil {
		t.Fatal("a TCP connection should use raw reads and writes")
	}
	return tc, s
}

func TestRawIOMovesEveryByteBothWays(t *testing.T) {
	c, s := tcpPair(t)
	// More than the socket buffers hold: writes must wait for the reader (EAGAIN).
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(big))))
		got <- b
	}()
	if n, err := c.Write(big); err != nil || n != len(big) {
		t.Fatalf("write: %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the server read %d bytes, not the %d written, or other bytes", len(b), len(big))
	}
	go func() { s.Write(big); s.Close() }()
	b, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(b, big) {
		t.Fatalf("read %d bytes (want %d), err %v", len(b), len(big), err)
	}
	// After the peer closed: EOF, as net.Conn gives it.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after close: %d, %v; want 0, EOF", n, err)
	}
}

func TestRawIOKeepsDeadlines(t *testing.T) {
	c, _ := tcpPair(t)
	// A server that never answers: the read deadline must end the read, as it ends a
	// read from a frozen node.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err := c.Read(make([]byte, 10))
	if took := time.Since(start); took < 90*time.Millisecond || took > 2*time.Second {
		t.Fatalf("the read returned after %v, not at its 100 ms deadline", took)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v (%T), want a net.Error that timed out", err, err)
	}
	if strings.Contains(err.Error(), "raw-") || !strings.HasPrefix(err.Error(), "read tcp ") {
		t.Errorf("error %q: want it worded as net.Conn's Read words it", err)
	}
	if cl := results.Classify(err).Class; cl != results.ClassTimeout {
		t.Fatalf("classified as %v, want %v", cl, results.ClassTimeout)
	}
	// Closed underneath (a cancelled run closes every connection): an error, at once.
	c.SetReadDeadline(time.Time{})
	go func() { time.Sleep(50 * time.Millisecond); c.Conn.Close() }()
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
	}
}

func TestSleeperNeverWakesEarly(t *testing.T) {
	sl := newSleeper()
	defer sl.close()
	if sl.f == nil {
		t.Fatal("no timerfd on Linux")
	}
	for _, d := range []time.Duration{50 * time.Microsecond, time.Millisecond, 5 * time.Millisecond} {
		for range 20 {
			start := time.Now()
			sl.sleep(d)
			if took := time.Since(start); took < d {
				t.Fatalf("sleep(%v) returned after %v", d, took)
			}
		}
	}
	if sl.f == nil {
		t.Fatal("the timerfd failed and the sleeper fell back to nanosleep")
	}
}
