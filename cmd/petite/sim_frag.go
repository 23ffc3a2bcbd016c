package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"petite/simulator/frag"
	"petite/traces"
)

// simFragCommand is `petite sim frag`: one run of the fragmentation
// experiment of Weng et al. (ATC'23), with sweep and merge below it.
func simFragCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "frag",
		Short: "Run the fragmentation experiment (Weng et al., ATC'23) on openb traces.",
		Long: `
Places an openb workload on an openb fleet pod by pod under one policy, the
way the paper's artifact runs it (docs/frag.md): shuffled arrivals,
inflated to --inflate times the GPU capacity, ties broken by a node rank
drawn from --seed. It prints the GPU allocation at the target arrival (the
experiment's figure, the mean over the pods that arrived within half a
point of it) and where the last pod left the run; -o json prints the same
figures and the allocation curve at every 1% of arrival.

Without --nodes and --pods it uses the embedded openb GPU node list and
default pod list.`,
		Example: examples(
			"# fgd on the embedded node list and default workload",
			"petite sim frag",
			"# another policy and seed, the whole curve as JSON",
			"petite sim frag --policy best-fit --seed 7 -o json",
			"# half the capacity: the figure at 50% arrival",
			"petite sim frag --inflate 0.5",
			"petite sim frag --list-policies",
			"petite sim frag --nodes traces/samples/openb_node_list_gpu_node.csv --pods traces/testdata/openb/openb_pod_list_multigpu20_head.csv",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	nodes := fs.String("nodes", "", "openb node list CSV (default: the embedded GPU node list)")
	pods := fs.String("pods", "", "openb pod list CSV (default: the embedded default workload)")
	policy := fs.String("policy", "fgd", "placement policy (--list-policies lists them)")
	inflate := fs.Float64("inflate", frag.DefaultInflate, "tune arrivals to this multiple of the GPU capacity (0: keep the trace as is)")
	seed := fs.Uint64("seed", defaultSeed, "seed of the run's random stream (shuffle, inflation, node rank, random policy)")
	noShuffle := fs.Bool("no-shuffle", false, "keep the pods in file order")
	output := addOutputFlag(fs, "table", "json")
	list := fs.Bool("list-policies", false, "print every policy name the command accepts, one per line")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		stdout := cmd.OutOrStdout()
		if *list {
			for _, n := range frag.PolicyNames() {
				if _, err := fmt.Fprintln(stdout, n); err != nil {
					return err
				}
			}
			return nil
		}
		if err := frag.CheckInflate(*inflate); err != nil {
			return usageErr("--inflate: %v", err)
		}
		if !slices.Contains(frag.PolicyNames(), *policy) {
			return usageErr("--policy: unknown policy %q (see --list-policies)", *policy)
		}
		if *nodes == "-" && *pods == "-" {
			return usageErr("--nodes - and --pods - cannot both be standard input")
		}
		fleet, err := loadFleet(cmd, *nodes)
		if err != nil {
			return err
		}
		w, err := loadWorkload(cmd, *pods)
		if err != nil {
			return err
		}
		r, err := frag.Run(fleet, w, frag.Config{Policy: *policy, Seed: *seed, Inflate: *inflate, NoShuffle: *noShuffle})
		if err != nil {
			return err
		}
		if format == "json" {
			return writeJSON(stdout, r)
		}
		return r.WriteText(stdout, w)
	}
	cmd.AddCommand(simFragSweepCommand(), simFragMergeCommand())
	return cmd
}

// loadFleet reads the --nodes openb node list: a file, standard input for
// "-", or the embedded GPU node list when empty.
func loadFleet(cmd *cobra.Command, path string) (*frag.Fleet, error) {
	switch path {
	case "":
		return frag.DefaultFleet()
	case "-":
		rows, err := traces.ReadOpenbNodes(cmd.InOrStdin(), "stdin")
		if err != nil {
			return nil, fmt.Errorf("nodes stdin: %w", err)
		}
		return frag.NewFleet("stdin", rows)
	}
	return frag.LoadFleet(path)
}

// loadWorkload reads the --pods openb pod list: a file, standard input for
// "-", or the embedded default workload when empty.
func loadWorkload(cmd *cobra.Command, path string) (*frag.Workload, error) {
	switch path {
	case "":
		return frag.DefaultWorkload()
	case "-":
		rows, err := traces.ReadOpenbPods(cmd.InOrStdin(), "stdin")
		if err != nil {
			return nil, fmt.Errorf("pods stdin: %w", err)
		}
		return frag.NewWorkload("stdin", "stdin", rows)
	}
	return frag.LoadWorkload(path)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
