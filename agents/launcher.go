package agents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// EnvToken is the environment variable that gives an agent the run's token (kept
// out of the process list, unlike a flag).
const EnvToken = "HTAPCHAOS_AGENT_TOKEN"

// Launcher starts a run's agents somewhere (this machine, a Swarm service, a
// Kubernetes job); each agent dials the coordinator back.
type Launcher interface {
	Name() string
	Launch(ctx context.Context, r LaunchRequest) (Launched, error)
}

// LaunchRequest is what every agent of a run needs: how many, where the coordinator
// listens, the run's token and, off loopback, its certificate's fingerprint.
type LaunchRequest struct {
	N           int
	Coordinator string // host:port
	Token       string
	CertSHA256  string // "": plain TCP (loopback)
}

// Launched is a launch's agents. Stop ends those still running (its own only) and
// releases what the launch holds; the coordinator calls it once the run is over.
// A Launched may also have `Exited() <-chan error`, reporting agents that exit:
// the coordinator then stops waiting for one that will never join.
type Launched interface {
	Stop(ctx context.Context) error
}

// Local launches the agents as processes of this machine: N copies of an htapchaos
// executable running `agent --coordinator A --index k`, the token in their
// environment, each in a process group of its own (a Ctrl-C at the terminal reaches
// the coordinator, which stops them over the protocol).
type Local struct {
	Exe    string    // "": this process's executable
	Stderr io.Writer // the agents' stderr, each line prefixed "agent aK: "; nil: discarded
}

// Name is "local".
func (Local) Name() string { return "local" }

// Launch starts the N processes.
func (l Local) Launch(ctx context.Context, r LaunchRequest) (Launched, error) {
	exe := l.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("local launcher: %w", err)
		}
	}
	var mu sync.Mutex // one lock for every agent's prefixed writer: lines do not interleave
	lp := &localProcs{exited: make(chan error, r.N)}
	for k := range r.N {
		args := []string{"agent", "--coordinator", r.Coordinator, "--index", strconv.Itoa(k)}
		if r.CertSHA256 != "" {
			args = append(args, "--cert-sha256", r.CertSHA256)
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), EnvToken+"="+r.Token)
		cmd.SysProcAttr = ownProcessGroup()
		if l.Stderr != nil {
			cmd.Stderr = &prefixWriter{mu: &mu, w: l.Stderr, prefix: fmt.Sprintf("agent a%d: ", k+1)}
		}
		if err := cmd.Start(); err != nil {
			_ = lp.Stop(ctx)
			return nil, fmt.Errorf("local launcher: agent a%d: %w", k+1, err)
		}
		p := &localProc{cmd: cmd, done: make(chan struct{})}
		go func() {
			p.err = cmd.Wait()
			close(p.done)
			lp.exited <- fmt.Errorf("agent a%d (pid %d) exited: %v", k+1, cmd.Process.Pid, p.err)
		}()
		lp.procs = append(lp.procs, p)
	}
	return lp, nil
}

type localProcs struct {
	procs  []*localProc
	exited chan error // each agent's exit (buffered: never blocks)
}

type localProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// Exited reports each agent's exit.
func (l *localProcs) Exited() <-chan error { return l.exited }

// stopGrace is how long Stop lets agents finish on their own (a bye, or the
// coordinator's closed connection, makes them exit at once) before it kills them.
const stopGrace = 3 * time.Second

// stopKillWait bounds the wait for the killed agents to exit.
const stopKillWait = 2 * time.Second

// Stop waits up to stopGrace (or ctx) for the agents to exit, then kills every
// one left with its process group at once, and waits at most stopKillWait for
// them to exit.
func (l *localProcs) Stop(ctx context.Context) error {
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
wait:
	for _, p := range l.procs {
		select {
		case <-p.done:
		case <-grace.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	var errs []error
	var killed []*localProc
	for _, p := range l.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		killed = append(killed, p)
		if err := killGroup(p.cmd.Process); err != nil {
			errs = append(errs, fmt.Errorf("agent pid %d: %w", p.cmd.Process.Pid, err))
		}
	}
	kctx, cancel := context.WithTimeout(context.Background(), stopKillWait)
	defer cancel()
	for _, p := range killed {
		select {
		case <-p.done:
		case <-kctx.Done():
			errs = append(errs, fmt.Errorf("agent pid %d: still running %v after the kill", p.cmd.Process.Pid, stopKillWait))
		}
	}
	return errors.Join(errs...)
}

// prefixWriter writes whole lines with a prefix, under a lock shared by the agents.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
