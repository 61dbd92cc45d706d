package testcontainers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// ErrMissingTool means a program the image build needs is not installed. The CLI maps
// it to exit code 3.
var ErrMissingTool = errors.New("missing tool")

// NodePackages are the Debian packages of the node image: the server and Galera, what
// state transfer needs (rsync, socat, mariadb-backup), and what faults need (iproute2
// for tc, procps, stress-ng, haproxy for the load balancer).
var NodePackages = []string{
	"mariadb-server", "mariadb-client", "galera-4", "mariadb-backup",
	"rsync", "socat", "iproute2", "procps", "stress-ng", "haproxy",
	"mariadb-plugin-spider",
}

// ImageBuild describes a node image build.
type ImageBuild struct {
	Tag string // default DefaultImage
	// Suite is the Debian release; default the host's (VERSION_CODENAME in /etc/os-release).
	Suite string
	// Sources is an apt sources file to build from; default the host's own
	// (/etc/apt/sources.list.d/debian.sources, else /etc/apt/sources.list). No
	// registry and no other host is involved.
	Sources string
	// Progress receives the builder's progress lines.
	Progress io.Writer
}

func (b ImageBuild) withDefaults() (ImageBuild, error) {
	if b.Tag == "" {
		b.Tag = DefaultImage
	}
	if b.Progress == nil {
		b.Progress = io.Discard
	}
	if b.Suite == "" {
		s, err := hostSuite("/etc/os-release")
		if err != nil {
			return b, err
		}
		b.Suite = s
	}
	if b.Sources == "" {
		for _, p := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
			if st, err := os.Stat(p); err == nil && st.Size() > 0 {
				b.Sources = p
				break
			}
		}
		if b.Sources == "" {
			return b, &ConfigError{Field: "--sources", Msg: "no apt sources file on this host (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list); pass one"}
		}
	} else if _, err := os.Stat(b.Sources); err != nil {
		return b, &ConfigError{Field: "--sources", Msg: err.Error()}
	}
	return b, nil
}

func hostSuite(osRelease string) (string, error) {
	data, err := os.ReadFile(osRelease)
	if err != nil {
		return "", &ConfigError{Field: "--suite", Msg: fmt.Sprintf("cannot tell the host's Debian release (%v); pass --suite", err)}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok && strings.Trim(v, `"`) != "" {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", &ConfigError{Field: "--suite", Msg: osRelease + " has no VERSION_CODENAME; pass --suite"}
}

// BuildImage builds the node image from the host's Debian package sources with
// mmdebstrap and imports it into the engine (`docker import`), with no registry.
func BuildImage(ctx context.Context, b ImageBuild) error {
	b, err := b.withDefaults()
	if err != nil {
		return err
	}
	mmdebstrap, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return fmt.Errorf("%w: mmdebstrap is not installed (apt-get install -y mmdebstrap)", ErrMissingTool)
	}
	eng, err := Connect(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	args := []string{
		"--variant=apt",
		"--include=" + strings.Join(NodePackages, ","),
		// Leave out documentation and manuals: a smaller image, a faster import.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-include=/usr/share/locale/locale.alias",
		// The package's post-install made a data directory; nodes initialise their own.
		"--customize-hook=rm -rf \"$1\"/var/lib/mysql/*",
		b.Suite, "-", b.Sources,
	}
	cmd := exec.CommandContext(ctx, mmdebstrap, args...)
	// On cancel, ask mmdebstrap to stop so it unmounts and removes its build
	// directory; kill it only if it does not stop within 20 seconds.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	var tail lastLines
	fmt.Fprintf(b.Progress, "building %s from %s (%s) with mmdebstrap\n", b.Tag, b.Sources, b.Suite)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run mmdebstrap: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			tail.add(sc.Text())
			fmt.Fprintf(b.Progress, "  %5.1fs %s\n", time.Since(start).Seconds(), sc.Text())
		}
	}()
	res, ierr := eng.Client.ImageImport(ctx, client.ImageImportSource{Source: stdout, SourceName: "-"}, b.Tag, client.ImageImportOptions{
		Message: "htapchaos node image (" + b.Suite + ")",
		Changes: []string{
			"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"LABEL " + LabelTool + "=" + toolName,
			`CMD ["/bin/sh"]`,
		},
	})
	if ierr == nil {
		ierr = importOutcome(res)
	}
	if ierr != nil {
		_ = cmd.Process.Kill()
	}
	// Drain what the import left unread so mmdebstrap can finish.
	_, _ = io.Copy(io.Discard, stdout)
	<-done
	werr := cmd.Wait()
	if werr != nil {
		return fmt.Errorf("mmdebstrap failed: %v\n%s", werr, tail.String())
	}
	if ierr != nil {
		return fmt.Errorf("import image %s: %w", b.Tag, ierr)
	}
	fmt.Fprintf(b.Progress, "built %s in %.1fs\n", b.Tag, time.Since(start).Seconds())
	return nil
}

// importOutcome reads the engine's JSON progress stream to its end and returns the
// error it reports, if any.
func importOutcome(body io.ReadCloser) error {
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// lastLines keeps the last 20 lines of a stream for error messages.
type lastLines struct{ lines []string }

func (l *lastLines) add(s string) {
	l.lines = append(l.lines, s)
	if len(l.lines) > 20 {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string { return strings.Join(l.lines, "\n") }
