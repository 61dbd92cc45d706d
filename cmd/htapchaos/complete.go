package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/htapchaos/htapchaos/experiments"
	"github.com/htapchaos/htapchaos/faults"
	"github.com/htapchaos/htapchaos/testcontainers"
)

// Shell completion. Cobra's own "completion" command writes the bash, zsh, fish
// and PowerShell scripts; the functions here give them htapchaos's names:
// experiments (run, validate, suite), fault kinds and their --param keys (fault),
// and running clusters (every --cluster flag, cluster status and down).
// addCompletions registers them on a built command tree, by command and flag
// name, so the commands themselves need no completion code.

// clusterListTimeout bounds the engine lookup behind a cluster name's
// completion: a shell must not hang on a slow or absent engine.
const clusterListTimeout = 3 * time.Second

func (a *app) addCompletions(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		switch c.CommandPath() {
		case "htapchaos run", "htapchaos validate":
			c.ValidArgsFunction = completeExperiment(false)
		case "htapchaos suite":
			c.ValidArgsFunction = completeExperiment(true)
		case "htapchaos fault":
			c.ValidArgsFunction = completeFaultKind
			if c.Flags().Lookup("param") != nil {
				_ = c.RegisterFlagCompletionFunc("param", completeFaultParam)
			}
		case "htapchaos cluster status":
			c.ValidArgsFunction = completeClusterArg(false)
		case "htapchaos cluster down":
			c.ValidArgsFunction = completeClusterArg(true)
		}
		if c.Flags().Lookup("cluster") != nil {
			_ = c.RegisterFlagCompletionFunc("cluster", completeClusterFlag)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeExperiment offers the builtin experiments (with their descriptions),
// or the shell's own file completion once the word looks like a path. many: the
// command takes several (suite), and a name given is not offered again.
func completeExperiment(many bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if !many && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if strings.ContainsAny(toComplete, "/.") {
			return nil, cobra.ShellCompDirectiveDefault // a spec file
		}
		var out []cobra.Completion
		for _, n := range experiments.BuiltinNames() {
			if !strings.HasPrefix(n, toComplete) || slices.Contains(args, n) {
				continue
			}
			desc := ""
			if s, err := experiments.Builtin(n, experiments.ParseOptions{}); err == nil {
				desc = strings.Join(s.Modes, ", ")
			}
			out = append(out, cobra.CompletionWithDesc(n, desc))
		}
		if len(out) == 0 {
			return nil, cobra.ShellCompDirectiveDefault // no builtin: maybe a file
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFaultKind offers the fault kinds of the builtin registry.
func completeFaultKind(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	reg := faults.NewRegistry()
	var out []cobra.Completion
	for _, n := range reg.Names() {
		if k, err := reg.Get(n); err == nil && strings.HasPrefix(n, toComplete) {
			out = append(out, cobra.CompletionWithDesc(n, k.Description))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeFaultParam offers KEY= for each parameter of the kind already given
// (fault KIND --param <tab>), with its type, default and help.
func completeFaultParam(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	k, err := faults.NewRegistry().Get(args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, p := range k.Params {
		if !strings.HasPrefix(p.Name+"=", toComplete) && !strings.HasPrefix(toComplete, p.Name+"=") {
			continue
		}
		desc := string(p.Type)
		if p.Default != "" {
			desc += ", default " + p.Default
		}
		if p.Help != "" {
			desc += ": " + p.Help
		}
		out = append(out, cobra.CompletionWithDesc(p.Name+"=", desc))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

func completeClusterFlag(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return runningClusters(cmd.Context(), toComplete, nil), cobra.ShellCompDirectiveNoFileComp
}

// completeClusterArg offers running clusters as arguments; many: several (down).
func completeClusterArg(many bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if !many && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return runningClusters(cmd.Context(), toComplete, args), cobra.ShellCompDirectiveNoFileComp
	}
}

// runningClusters are the clusters htapchaos started, as cluster ls lists them,
// with their topology and nodes; none when the engine does not answer in time.
func runningClusters(ctx context.Context, prefix string, skip []string) []cobra.Completion {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, clusterListTimeout)
	defer cancel()
	eng, err := testcontainers.Connect(ctx)
	if err != nil {
		return nil
	}
	list, err := testcontainers.List(ctx, eng)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, s := range list {
		if strings.HasPrefix(s.Name, prefix) && !slices.Contains(skip, s.Name) {
			out = append(out, cobra.CompletionWithDesc(s.Name, fmt.Sprintf("%s, %d/%d running", s.Topology, s.Running, s.Nodes)))
		}
	}
	return out
}
