package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"petite/simulator/frag"
)

// simFragSweepCommand is `petite sim frag sweep`: the experiment's matrix
// of workloads × policies × seeds, run in parallel, possibly one shard of it.
func simFragSweepCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Run workloads × policies × seeds and tabulate the allocation at the target arrival.",
		Long: `
Runs every workload of --pods under every policy of --policies with every
seed of --seeds, --parallel runs at a time, and writes into --out:
table.md (for people), table.tsv and table.json (for scripts), runs.json
(every run with its curve), alloc-WORKLOAD.svg/.png (allocation against
arrival per policy, like the paper's figures) and summary.svg/.png. The
Markdown table is also printed.

--pods takes files and directories (every openb_pod_list_*.csv inside),
comma-separated or repeated; workloads are ordered default first, then by
name and number. --policies takes "all" (the paper's six and petite's own),
"paper" (the six), or a comma-separated list.

--shard i/n runs only the runs at positions k with k mod n = i of the
canonical matrix and writes OUT/part-i-of-n.json; 'petite sim frag merge'
joins the n parts into the same outputs a single sweep gives. A Slurm job
array runs the shards with --array=0-3 and --shard $SLURM_ARRAY_TASK_ID/4;
a Kubernetes Indexed Job with completions: 4 uses
--shard $JOB_COMPLETION_INDEX/4 (docs/frag.md has both in full).`,
		Example: examples(
			"# two policies, two seeds, on the embedded default workload",
			"petite sim frag sweep --policies best-fit,fgd --seeds 42-43 --out out/frag",
			"# two openb workloads as TSV",
			"petite sim frag sweep --pods traces/testdata/openb --policies paper --seeds 42 --format tsv --out out/frag-tsv",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	nodes := fs.String("nodes", "", "openb node list CSV (default: the embedded GPU node list)")
	pods := fs.StringSlice("pods", nil, "openb pod list CSVs or directories of them (default: the embedded default workload)")
	policies := fs.String("policies", "all", `policies: "all", "paper" or a comma-separated list`)
	seeds := fs.String("seeds", "42-51", "seeds: a, a-b, or a comma-separated list of them")
	inflate := fs.Float64("inflate", frag.DefaultInflate, "tune arrivals to this multiple of the GPU capacity (0: keep the trace as is)")
	noShuffle := fs.Bool("no-shuffle", false, "keep the pods in file order")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "runs at a time")
	shard := fs.String("shard", "", "run only shard i/n of the matrix (0 <= i < n) and write a part file")
	out := fs.String("out", "out/frag", "directory for the table, the runs and the plots")
	format := fs.String("format", "md", "what to print on stdout: md, tsv, json or none")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErr("sweep takes no arguments, got %q (use --pods)", args)
		}
		if *parallel < 1 {
			return usageErr("--parallel: want at least 1, got %d", *parallel)
		}
		if err := frag.CheckInflate(*inflate); err != nil {
			return usageErr("--inflate: %v", err)
		}
		if err := checkFormat(*format); err != nil {
			return err
		}
		sh := frag.Whole
		if *shard != "" {
			var err error
			if sh, err = frag.ParseShard(*shard); err != nil {
				return usageErr("--shard: %v", err)
			}
		}
		ps, err := frag.ParsePolicies(*policies)
		if err != nil {
			return usageErr("--policies: %v", err)
		}
		ss, err := frag.ParseSeeds(*seeds)
		if err != nil {
			return usageErr("--seeds: %v", err)
		}
		fleet, err := loadFleet(*nodes)
		if err != nil {
			return err
		}
		ws, err := loadWorkloads(*pods)
		if err != nil {
			return err
		}
		m := frag.Matrix{Policies: ps, Seeds: ss, Inflate: *inflate, NoShuffle: *noShuffle}
		for _, w := range ws {
			m.Workloads = append(m.Workloads, w.Name)
		}
		sw := &frag.Sweep{Fleet: fleet, Workloads: ws, Matrix: m, Shard: sh, Parallel: *parallel}
		total := len(sh.Select(m.Jobs()))
		if term.IsTerminal(int(os.Stderr.Fd())) {
			bar := progressbar.NewOptions(total,
				progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription("frag sweep"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish())
			sw.Progress = func(int, int) { _ = bar.Add(1) }
			defer func() { _ = bar.Finish() }()
		}
		start := time.Now()
		runs, err := sw.Run(context.Background())
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		if *shard != "" {
			path := filepath.Join(*out, fmt.Sprintf("part-%d-of-%d.json", sh.Index, sh.Count))
			var b bytes.Buffer
			part := &frag.Part{Format: frag.PartFormat, Matrix: m, Shard: sh, Nodes: len(fleet.Nodes), GPUs: fleet.GPUs, Runs: runs}
			if err := frag.WritePart(&b, part); err != nil {
				return err
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "shard %s: %d runs in %.1fs, written to %s\n", sh, len(runs), elapsed.Seconds(), path)
			return nil
		}
		t, err := frag.WriteReport(*out, m, runs)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%d runs in %.1fs on %d workers; outputs in %s\n", len(runs), elapsed.Seconds(), *parallel, *out)
		return printTable(cmd.OutOrStdout(), t, *format)
	}
	return cmd
}

// simFragMergeCommand is `petite sim frag merge`: joins the parts of a
// sharded sweep into the outputs of a single sweep.
func simFragMergeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "merge [flags] PART.json... | DIR",
		Short: "Join the part files of a sharded sweep into its table and plots.",
		Long: `
Reads the part files that 'petite sim frag sweep --shard i/n' wrote (or every
part-*.json of a directory), checks that they are the n shards of one matrix,
each exactly once, and writes the same table.md, table.tsv, table.json,
runs.json and plots into --out that a single sweep of the matrix writes.`,
		Example: examples(
			"# a sweep in two shards, then their merge",
			"petite sim frag sweep --policies best-fit,fgd --seeds 42-43 --shard 0/2 --out out/parts",
			"petite sim frag sweep --policies best-fit,fgd --seeds 42-43 --shard 1/2 --out out/parts",
			"petite sim frag merge --out out/merged out/parts",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	out := fs.String("out", "out/frag", "directory for the table, the runs and the plots")
	format := fs.String("format", "md", "what to print on stdout: md, tsv, json or none")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErr("merge needs part files or a directory of them")
		}
		if err := checkFormat(*format); err != nil {
			return err
		}
		var files []string
		for _, a := range args {
			st, err := os.Stat(a)
			if err != nil {
				return err
			}
			if !st.IsDir() {
				files = append(files, a)
				continue
			}
			found, err := filepath.Glob(filepath.Join(a, "part-*.json"))
			if err != nil {
				return err
			}
			if len(found) == 0 {
				return fmt.Errorf("merge: no part-*.json in %s", a)
			}
			files = append(files, found...)
		}
		var parts []*frag.Part
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				return err
			}
			p, err := frag.ReadPart(fh, f)
			fh.Close()
			if err != nil {
				return err
			}
			parts = append(parts, p)
		}
		m, runs, err := frag.Merge(parts)
		if err != nil {
			return err
		}
		t, err := frag.WriteReport(*out, m, runs)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "merged %d parts, %d runs; outputs in %s\n", len(parts), len(runs), *out)
		return printTable(cmd.OutOrStdout(), t, *format)
	}
	return cmd
}

func checkFormat(f string) error {
	if !slices.Contains([]string{"md", "tsv", "json", "none"}, f) {
		return usageErr("--format: want md, tsv, json or none, got %q", f)
	}
	return nil
}

func printTable(w io.Writer, t *frag.Table, format string) error {
	switch format {
	case "md":
		return t.Markdown(w)
	case "tsv":
		return t.TSV(w)
	case "json":
		return t.JSON(w)
	}
	return nil
}

// loadWorkloads reads the pod lists named by files and directories, or the
// embedded default workload when none is named.
func loadWorkloads(args []string) ([]*frag.Workload, error) {
	if len(args) == 0 {
		w, err := frag.DefaultWorkload()
		if err != nil {
			return nil, err
		}
		return []*frag.Workload{w}, nil
	}
	var files []string
	for _, a := range args {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("--pods: %w", err)
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		found, err := filepath.Glob(filepath.Join(a, "openb_pod_list_*.csv"))
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("--pods: no openb_pod_list_*.csv in %s", a)
		}
		files = append(files, found...)
	}
	return frag.LoadWorkloads(files)
}
