package testcontainers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ErrEngineUnavailable means no container engine answered. The CLI maps it to exit code 3.
var ErrEngineUnavailable = errors.New("container engine not reachable")

// Engine is a connection to the container engine and the loopback address its
// published ports answer on.
type Engine struct {
	// Client is the engine API client, on DOCKER_HOST or the default local socket.
	Client *client.Client
	// Host is the address published ports are reached on: 127.0.0.1 when the
	// engine runs on a local socket.
	Host string
	// local reports an engine on a local unix socket (publish on loopback only).
	local bool
}

var envOnce sync.Once

// prepareEnv sets testcontainers-go defaults that fit this tool, before the library
// reads its configuration. It never overrides a value the user set.
//   - Ryuk (the reaper container) is disabled: its image cannot be pulled where no
//     registry answers, and htapchaos labels and removes everything it creates itself.
//   - With the engine on a local socket the host is loopback: inside a container
//     (/.dockerenv present) testcontainers would otherwise report the default gateway,
//     an address that must never receive our traffic.
func prepareEnv() {
	envOnce.Do(func() {
		if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
			os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		}
		if _, ok := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !ok && localEngine() {
			os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
		}
	})
}

// localEngine reports whether DOCKER_HOST is unset or a unix socket.
func localEngine() bool {
	h := os.Getenv("DOCKER_HOST")
	return h == "" || strings.HasPrefix(h, "unix://")
}

// engineHost is where published ports answer.
func engineHost() string {
	if o := os.Getenv("TESTCONTAINERS_HOST_OVERRIDE"); o != "" {
		return o
	}
	if localEngine() {
		return "127.0.0.1"
	}
	if u, err := url.Parse(os.Getenv("DOCKER_HOST")); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "127.0.0.1"
}

// Connect opens the engine and checks that it answers within 10 seconds.
func Connect(ctx context.Context) (*Engine, error) {
	prepareEnv()
	where := os.Getenv("DOCKER_HOST")
	if where == "" {
		where = "unix:///var/run/docker.sock"
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Our own client, strictly on DOCKER_HOST: testcontainers-go would quietly fall
	// back to another engine when DOCKER_HOST does not answer.
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v (start dockerd, or set DOCKER_HOST)", ErrEngineUnavailable, where, err)
	}
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s: %v (start dockerd, or set DOCKER_HOST)", ErrEngineUnavailable, where, err)
	}
	return &Engine{Client: cli, Host: engineHost(), local: localEngine()}, nil
}

// ImageExists reports whether the image is present in the engine (no pull is tried).
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := e.Client.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

var loopback = netip.MustParseAddr("127.0.0.1")
