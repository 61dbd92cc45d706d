package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/testcontainers"
)

func (a *app) imageCmd() *cobra.Command {
	var b testcontainers.ImageBuild
	var ifMissing bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the node image from this host's Debian package sources (no registry)",
		Long: `Build the node image (MariaDB, galera-4, rsync and socat for state transfer,
iproute2, procps, stress-ng, haproxy) with mmdebstrap from this host's own apt
sources and import it into the engine. No registry is involved.

Where a registry is reachable, skip this and pass --image with any MariaDB image
that ships Galera and rsync to "cluster up".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tag := b.Tag
			if tag == "" {
				tag = testcontainers.DefaultImage
			}
			if ifMissing {
				eng, err := testcontainers.Connect(ctx)
				if err != nil {
					return err
				}
				if ok, err := eng.ImageExists(ctx, tag); err != nil {
					return err
				} else if ok {
					fmt.Fprintf(a.stdout, "%s is present; not rebuilt\n", tag)
					return nil
				}
			}
			b.Progress = a.stderr
			if err := testcontainers.BuildImage(ctx, b); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, tag)
			return nil
		},
	}
	f := build.Flags()
	f.StringVar(&b.Tag, "tag", testcontainers.DefaultImage, "image tag")
	f.StringVar(&b.Suite, "suite", "", "Debian release (default: the host's)")
	f.StringVar(&b.Sources, "sources", "", "apt sources file (default: the host's)")
	f.BoolVar(&ifMissing, "if-missing", false, "do nothing when the image is already present")
	return group("image", "Build the database node image locally", build)
}
