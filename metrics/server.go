package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/htapchaos/htapchaos/internal/safego"
)

// CheckAddr checks that addr is a listen address of the form HOST:PORT (HOST may
// be empty: every interface; PORT 0: a free port).
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, e.g. 127.0.0.1:9464")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q: want a number in 0-65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("host %q: not an IP address or a host name", host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}

// Server serves a Metrics at /metrics.
type Server struct {
	*Metrics
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error // of Serve, once done is closed
}

// Start listens on addr (see CheckAddr) and serves a new Metrics there until
// Close. A bad address or a failure to listen (the port is taken) is returned.
func Start(addr string) (*Server, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	// ":9464" names no host: loopback, not every interface. Another host is
	// the user's to name (0.0.0.0 for every interface).
	if host, port, _ := net.SplitHostPort(addr); host == "" {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	m := New()
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	s := &Server{
		Metrics: m,
		srv:     &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:      ln,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		defer safego.Recover("metrics endpoint", func(err error) { s.err = err })
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Addr is the address listened on (with the port chosen for port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the address of the metrics page; an unspecified host (every interface)
// is shown as localhost.
func (s *Server) URL() string {
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics"
}

// Close stops serving: scrapes under way may finish within the bound of ctx, then
// every connection is closed.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-s.done
	return errors.Join(err, s.err)
}
