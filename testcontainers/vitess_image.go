package testcontainers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// The Vitess image: the node image (MariaDB from Debian) plus the Vitess binaries
// and etcd. Vitess is built from the Go module proxy, pinned to VitessVersion, and
// cached on the machine keyed by that version, so only a fresh machine pays the
// build (about 11 minutes on 2 cores). etcd comes from Debian's etcd-server
// package, downloaded (not installed) with apt. Nothing is pulled from a registry.

// VitessVersion is the Vitess release the vitess topology runs.
const VitessVersion = "v0.24.4"

// DefaultVitessImage is the Vitess image's tag.
const DefaultVitessImage = "htapchaos/vitess:" + VitessVersion + "-r1"

// VitessBinaries are the Vitess programs the image holds.
var VitessBinaries = []string{"vtgate", "vttablet", "vtctld", "vtctldclient", "mysqlctl"}

// vitessWrapperMod is the wrapper module Vitess builds through: `go install
// vitess.io/vitess/go/cmd/...@VERSION` is refused because Vitess's own go.mod has
// an exclude directive, which the wrapper repeats.
const vitessWrapperMod = `module vtwrap

go 1.26

require vitess.io/vitess %s

exclude github.com/DataDog/opentelemetry-mapping-go/pkg/otlp/attributes v0.33.0
`

const vitessWrapperTools = `//go:build tools

package vtwrap

import (
	_ "vitess.io/vitess/go/cmd/mysqlctl"
	_ "vitess.io/vitess/go/cmd/vtctld"
	_ "vitess.io/vitess/go/cmd/vtctldclient"
	_ "vitess.io/vitess/go/cmd/vtgate"
	_ "vitess.io/vitess/go/cmd/vttablet"
)
`

// VitessBuild describes a Vitess image build.
type VitessBuild struct {
	Tag string // default DefaultVitessImage
	// Base is the image the Vitess image starts from (default DefaultImage).
	Base string
	// CacheDir holds the built binaries, by version (default
	// $XDG_CACHE_HOME/htapchaos, else ~/.cache/htapchaos).
	CacheDir string
	// Parallel is go build's -p (default 1: the machine stays usable).
	Parallel int
	Progress io.Writer
}

func (b VitessBuild) withDefaults() (VitessBuild, error) {
	if b.Tag == "" {
		b.Tag = DefaultVitessImage
	}
	if b.Base == "" {
		b.Base = DefaultImage
	}
	if b.Parallel == 0 {
		b.Parallel = 1
	}
	if b.Progress == nil {
		b.Progress = io.Discard
	}
	if b.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return b, fmt.Errorf("no cache directory for the Vitess binaries: %w", err)
		}
		b.CacheDir = filepath.Join(dir, "htapchaos")
	}
	return b, nil
}

// binDir is where one version's binaries are cached.
func (b VitessBuild) binDir() string {
	return filepath.Join(b.CacheDir, "vitess-"+VitessVersion, "bin")
}

// cached reports whether the binaries are in the cache.
func (b VitessBuild) cached() bool {
	if _, err := os.Stat(filepath.Join(filepath.Dir(b.binDir()), ".complete")); err != nil {
		return false
	}
	for _, name := range append(VitessBinaries, "etcd") {
		if st, err := os.Stat(filepath.Join(b.binDir(), name)); err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// BuildVitessBinaries builds the Vitess binaries and fetches etcd into the cache,
// unless they are there already, and returns the cache's bin directory.
func BuildVitessBinaries(ctx context.Context, b VitessBuild) (string, error) {
	b, err := b.withDefaults()
	if err != nil {
		return "", err
	}
	if b.cached() {
		fmt.Fprintf(b.Progress, "vitess %s binaries cached in %s\n", VitessVersion, b.binDir())
		return b.binDir(), nil
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: building Vitess needs the Go toolchain (go is not on PATH)", ErrMissingTool)
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%w: fetching etcd needs %s (Debian's etcd-server package)", ErrMissingTool, tool)
		}
	}
	work, err := os.MkdirTemp("", "htapchaos-vtwrap-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), fmt.Appendf(nil, vitessWrapperMod, VitessVersion), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(work, "tools.go"), []byte(vitessWrapperTools), 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(b.binDir()), 0o755); err != nil {
		return "", err
	}
	// Built into a directory of this build's own, moved in place when complete:
	// a failed or concurrent build never leaves a half cache behind.
	tmp, err := os.MkdirTemp(filepath.Dir(b.binDir()), "bin-building-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone by then when the build completed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	start := time.Now()
	run := func(dir string, name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(string(out), 20))
		}
		return nil
	}
	fmt.Fprintf(b.Progress, "vitess %s: resolving modules from the module proxy\n", VitessVersion)
	if err := run(work, gobin, "mod", "tidy"); err != nil {
		return "", err
	}
	for i, name := range VitessBinaries {
		fmt.Fprintf(b.Progress, "vitess %s: building %s (%d/%d, %.0fs so far; about 11 minutes in all on 2 cores)\n",
			VitessVersion, name, i+1, len(VitessBinaries), time.Since(start).Seconds())
		args := []string{"-n", "19", gobin, "build", "-p", fmt.Sprint(b.Parallel), "-trimpath", "-ldflags", "-s -w",
			"-o", filepath.Join(tmp, name), "vitess.io/vitess/go/cmd/" + name}
		if err := run(work, "nice", args...); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(b.Progress, "vitess %s: fetching etcd from Debian's etcd-server package\n", VitessVersion)
	if err := run(work, "apt-get", "download", "etcd-server"); err != nil {
		// The package lists may be missing or stale: refresh them once.
		fmt.Fprintf(b.Progress, "vitess %s: apt-get download failed; refreshing the package lists\n", VitessVersion)
		if uerr := run(work, "apt-get", "update", "-qq"); uerr != nil {
			return "", errors.Join(err, uerr)
		}
		if err := run(work, "apt-get", "download", "etcd-server"); err != nil {
			return "", err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(work, "etcd-server_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download etcd-server left %d packages", len(debs))
	}
	if err := run(work, "dpkg-deb", "-x", debs[0], filepath.Join(work, "etcd")); err != nil {
		return "", err
	}
	if err := copyFile(filepath.Join(work, "etcd", "usr", "bin", "etcd"), filepath.Join(tmp, "etcd")); err != nil {
		return "", err
	}
	if err := os.RemoveAll(b.binDir()); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, b.binDir()); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(b.binDir()), ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(b.Progress, "vitess %s: built in %.0fs\n", VitessVersion, time.Since(start).Seconds())
	return b.binDir(), nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// vitessDockerfile adds the binaries to the node image, and the ordinary user the
// Vitess processes run as (mysqlctl refuses root).
const vitessDockerfile = `FROM %s
COPY bin/ /usr/local/bin/
RUN useradd --create-home --home-dir /vt --uid 999 vitess 2>/dev/null || useradd --create-home --home-dir /vt vitess
LABEL ` + LabelTool + `=` + toolName + `
`

// BuildVitessImage builds the Vitess binaries if they are not cached, then the
// Vitess image from the node image (which must be present) through the engine's
// builder, with no registry.
func BuildVitessImage(ctx context.Context, b VitessBuild) error {
	b, err := b.withDefaults()
	if err != nil {
		return err
	}
	eng, err := Connect(ctx)
	if err != nil {
		return err
	}
	if ok, err := eng.ImageExists(ctx, b.Base); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: the Vitess image starts from %s; build it first with `htapchaos image build`", ErrImageMissing, b.Base)
	}
	bin, err := BuildVitessBinaries(ctx, b)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(b.Progress, "building %s from %s and %s\n", b.Tag, b.Base, bin)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeVitessContext(pw, b.Base, bin)) }()
	res, err := eng.Client.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{b.Tag},
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{LabelTool: toolName},
	})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("build %s: %w", b.Tag, err)
	}
	if err := importOutcome(res.Body); err != nil {
		return fmt.Errorf("build %s: %w", b.Tag, err)
	}
	if ok, err := eng.ImageExists(ctx, b.Tag); err != nil {
		return err
	} else if !ok {
		return errors.New("build " + b.Tag + ": the engine reported success but has no such image")
	}
	fmt.Fprintf(b.Progress, "built %s in %.1fs\n", b.Tag, time.Since(start).Seconds())
	return nil
}

// writeVitessContext streams the build context: the Dockerfile and bin/.
func writeVitessContext(w io.Writer, base, bin string) error {
	tw := tar.NewWriter(w)
	df := fmt.Sprintf(vitessDockerfile, base)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, df); err != nil {
		return err
	}
	for _, name := range append(VitessBinaries, "etcd") {
		if err := addFile(tw, filepath.Join(bin, name), "bin/"+name); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: st.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
