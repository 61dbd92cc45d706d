package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/testcontainers"
)

func (a *app) imageCmd() *cobra.Command {
	var b testcontainers.ImageBuild
	var ifMissing, vitess bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the node image from this host's Debian package sources (no registry)",
		Long: `Build the node image (MariaDB, galera-4, rsync and socat for state transfer,
iproute2, procps, stress-ng, haproxy) with mmdebstrap from this host's own apt
sources and import it into the engine. No registry is involved.

Where a registry is reachable, skip this and pass --image with any MariaDB image
that ships Galera and rsync to "cluster up".

--vitess builds the image of the vitess topology instead: the node image (build it
first) plus Vitess ` + testcontainers.VitessVersion + ` (vtgate, vttablet, vtctld, vtctldclient,
mysqlctl), compiled from the Go module proxy, and etcd from Debian's etcd-server
package. The compiled binaries are cached per version under the user's cache
directory, so only the first build pays for the compile (about 5-11 minutes on 2
cores).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tag := b.Tag
			if vitess && !cmd.Flags().Changed("tag") {
				tag = testcontainers.DefaultVitessImage
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
			if vitess {
				if err := testcontainers.BuildVitessImage(ctx, testcontainers.VitessBuild{Tag: tag, Progress: a.stderr}); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, tag)
				return nil
			}
			b.Progress = a.stderr
			b.Tag = tag
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
	f.BoolVar(&vitess, "vitess", false, "build the vitess topology's image (Vitess "+testcontainers.VitessVersion+" and etcd over the node image)")
	return group("image", "Build the database node image locally", build)
}
