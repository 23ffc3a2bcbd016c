package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"petite/simulator/frag"
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
drawn from --seed. It reports the GPU allocation at the target arrival and,
with --json, the allocation curve at every 1% of arrival.

Without --nodes and --pods it uses the embedded openb GPU node list and
default pod list.`,
		Example: examples(
			"# fgd on the embedded node list and default workload",
			"petite sim frag",
			"# another policy and seed, the whole curve as JSON",
			"petite sim frag --policy best-fit --seed 7 --json",
			"petite sim frag --list-policies",
			"petite sim frag --nodes traces/samples/openb_node_list_gpu_node.csv --pods traces/testdata/openb/openb_pod_list_multigpu20_head.csv",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	nodes := fs.String("nodes", "", "openb node list CSV (default: the embedded GPU node list)")
	pods := fs.String("pods", "", "openb pod list CSV (default: the embedded default workload)")
	policy := fs.String("policy", "fgd", "placement policy (see --list-policies)")
	inflate := fs.Float64("inflate", frag.DefaultInflate, "tune arrivals to this multiple of the GPU capacity (0: keep the trace as is)")
	seed := fs.Uint64("seed", defaultSeed, "seed of the run's random stream (shuffle, inflation, node rank, random policy)")
	noShuffle := fs.Bool("no-shuffle", false, "keep the pods in file order")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	list := fs.Bool("list-policies", false, "print every policy name the command accepts, one per line")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		stdout := cmd.OutOrStdout()
		if *list {
			for _, n := range frag.PolicyNames() {
				fmt.Fprintln(stdout, n)
			}
			return nil
		}
		if err := frag.CheckInflate(*inflate); err != nil {
			return usageErr("--inflate: %v", err)
		}
		if !slices.Contains(frag.PolicyNames(), *policy) {
			return usageErr("--policy: unknown policy %q (see --list-policies)", *policy)
		}
		fleet, err := loadFleet(*nodes)
		if err != nil {
			return err
		}
		w, err := loadWorkload(*pods)
		if err != nil {
			return err
		}
		r, err := frag.Run(fleet, w, frag.Config{Policy: *policy, Seed: *seed, Inflate: *inflate, NoShuffle: *noShuffle})
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, r)
		}
		printFragSummary(stdout, w, r)
		return nil
	}
	cmd.AddCommand(simFragSweepCommand(), simFragMergeCommand())
	return cmd
}

func loadFleet(path string) (*frag.Fleet, error) {
	if path == "" {
		return frag.DefaultFleet()
	}
	return frag.LoadFleet(path)
}

func loadWorkload(path string) (*frag.Workload, error) {
	if path == "" {
		return frag.DefaultWorkload()
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

func printFragSummary(w io.Writer, wl *frag.Workload, r *frag.Result) {
	fmt.Fprintf(w, "workload %s: %d pods in the trace, %d arrivals (inflate %g, seed %d)\n", wl.Name, len(wl.Pods), r.Pods, r.Inflate, r.Seed)
	fmt.Fprintf(w, "fleet: %d nodes, %d GPUs\n", r.Nodes, r.GPUs)
	last := frag.Point{}
	if len(r.Curve) > 0 {
		last = r.Curve[len(r.Curve)-1]
	}
	fmt.Fprintf(w, "policy %s: %.2f%% of GPUs allocated at the target arrival; %d pods failed (final: %.2f%% at %.0f%% arrival)\n",
		r.Policy, r.FinalAllocPct, r.FailedPods, last.AllocPct, last.ArrivedPct)
}
