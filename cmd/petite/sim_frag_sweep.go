package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"petite/simulator/frag"
)

// policyListHelp says what the policy list words of a sweep name.
func policyListHelp() string {
	return fmt.Sprintf(`"all" (the paper's six, %s, and petite's own, %s), "paper" (the six), or names: %s`,
		strings.Join(frag.PublishedPolicies, ", "), strings.Join(frag.OwnPolicies, ", "), strings.Join(frag.PolicyNames(), ", "))
}

// sweepOutput is the -o/--output flag of sweep and merge, with the
// deprecated --format it replaces (--format names input formats now).
type sweepOutput struct {
	out    *outputFlag
	format *string
}

const sweepOutputHelp = "what to print on stdout: table (Markdown), tsv, json or none"

func addSweepOutput(fs *pflag.FlagSet) *sweepOutput {
	o := &sweepOutput{out: addOutputFlag(fs, "table", "tsv", "json", "none")}
	fs.Lookup("output").Usage = sweepOutputHelp
	o.format = fs.String("format", "", "md, tsv, json or none")
	_ = fs.MarkDeprecated("format", "use -o/--output (md is now table)")
	return o
}

// get returns the chosen output: table, tsv, json or none.
func (o *sweepOutput) get() (string, error) {
	if *o.format == "" {
		return o.out.format()
	}
	if o.out.fs.Changed("output") || o.out.json {
		return "", usageErr("--format is the old name of --output: give one of them")
	}
	switch *o.format {
	case "md":
		return "table", nil
	case "tsv", "json", "none":
		return *o.format, nil
	}
	return "", usageErr("--format: want md, tsv, json or none, got %q", *o.format)
}

// listFlag is a list flag with the deprecated name it had before: either
// may be given, not both.
func listFlag(fs *pflag.FlagSet, name, old, def, usage string) func() (string, error) {
	v := fs.StringSlice(name, []string{def}, usage)
	was := fs.StringSlice(old, nil, "")
	_ = fs.MarkDeprecated(old, "use --"+name)
	return func() (string, error) {
		if fs.Changed(old) {
			if fs.Changed(name) {
				return "", usageErr("--%s is the old name of --%s: give one of them", old, name)
			}
			return strings.Join(*was, ","), nil
		}
		return strings.Join(*v, ","), nil
	}
}

// deprecationsToStderr sends the flag set's notes (pflag's "Flag --x has
// been deprecated") to the command's stderr: cobra would print them with
// the command's output stream, into a table a script reads from stdout.
// pflag writes nothing else there under ContinueOnError.
func deprecationsToStderr(cmd *cobra.Command) {
	cmd.Flags().SetOutput(writerFunc(func(p []byte) (int, error) { return cmd.ErrOrStderr().Write(p) }))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// interrupted is the context of a long command: done on Ctrl-C or SIGTERM,
// so that the command stops and cleans up instead of dying mid-write.
func interrupted(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// simFragSweepCommand is `petite sim frag sweep`: the experiment's matrix
// of workloads × policies × seeds, run in parallel, possibly one shard of it.
func simFragSweepCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Run workloads × policies × seeds and tabulate the allocation at the target arrival.",
		Long: `
Runs every workload of --pods under every policy of --policy with every
seed of --seed, --parallel runs at a time, and writes into --out:
table.md (for people), table.tsv and table.json (for scripts), runs.json
(every run with its curve), alloc-WORKLOAD.svg/.png (allocation against
arrival per policy, like the paper's figures) and summary.svg/.png (the
capacity each policy leaves unallocated, per workload). The table is also
printed (-o).

--out is checked before the first run, and replaced whole when the sweep
is done: the outputs are written beside it and renamed into place, so an
earlier sweep's plots never sit beside the new table, and an interrupted
or failed sweep leaves the folder as it was. It must be new, empty or a
previous sweep's folder (only files a sweep writes; part files are kept);
a folder with other files is refused.

--pods takes files and directories (every openb_pod_list_*.csv inside),
comma-separated or repeated; workloads are ordered default first, then by
name and number. --policy takes ` + policyListHelp() + `, comma-separated or repeated.

--shard i/n runs only the runs at positions k with k mod n = i of the
canonical matrix and writes OUT/part-i-of-n.json; 'petite sim frag merge'
joins the n parts into the same outputs a single sweep gives. A Slurm job
array runs the shards with --array=0-3 and --shard $SLURM_ARRAY_TASK_ID/4;
a Kubernetes Indexed Job with completions: 4 uses
--shard $JOB_COMPLETION_INDEX/4 (docs/frag.md has both in full).`,
		Example: examples(
			"# two policies, two seeds, on the embedded default workload",
			"petite sim frag sweep --policy best-fit,fgd --seed 42-43 --out out/frag",
			"# the two openb workload heads of traces/testdata under the paper's six policies, as TSV",
			"petite sim frag sweep --pods traces/testdata/openb --policy paper --seed 42 -o tsv --out out/frag-tsv",
			"# every policy of the experiment (see 'all' above), one seed, the table as JSON",
			"petite sim frag sweep --nodes traces/samples/openb_node_list_gpu_node.csv --pods traces/samples/openb_pod_list_default.csv --policy all --seed 42 --json --out out/frag-all",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	nodes := fs.String("nodes", "", "openb node list CSV (default: the embedded GPU node list)")
	pods := fs.StringSlice("pods", nil, "openb pod list CSVs or directories of them (default: the embedded default workload)")
	policies := listFlag(fs, "policy", "policies", "all", "policies: "+policyListHelp())
	seeds := listFlag(fs, "seed", "seeds", fmt.Sprintf("%d-%d", defaultSeed, defaultSeed+9), "seeds: a, a-b, or a comma-separated list of them (default: the paper's ten)")
	inflate := fs.Float64("inflate", frag.DefaultInflate, "tune arrivals to this multiple of the GPU capacity (0: keep the trace as is)")
	noShuffle := fs.Bool("no-shuffle", false, "keep the pods in file order")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "runs at a time")
	shard := fs.String("shard", "", "run only shard i/n of the matrix (0 <= i < n) and write a part file")
	out := fs.String("out", "out/frag", "folder for the table, the runs and the plots (new, empty or a previous sweep's)")
	output := addSweepOutput(fs)
	deprecationsToStderr(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *parallel < 1 {
			return usageErr("--parallel: want at least 1, got %d", *parallel)
		}
		if err := frag.CheckInflate(*inflate); err != nil {
			return usageErr("--inflate: %v", err)
		}
		format, err := output.get()
		if err != nil {
			return err
		}
		sh := frag.Whole
		if *shard != "" {
			if sh, err = frag.ParseShard(*shard); err != nil {
				return usageErr("--shard: %v", err)
			}
		}
		pl, err := policies()
		if err != nil {
			return err
		}
		ps, err := frag.ParsePolicies(pl)
		if err != nil {
			return usageErr("--policy: %v", err)
		}
		sl, err := seeds()
		if err != nil {
			return err
		}
		ss, err := frag.ParseSeeds(sl)
		if err != nil {
			return usageErr("--seed: %v", err)
		}
		// The output folder, before any run: a sweep of hours must not end
		// on a folder it cannot write.
		var dir *frag.OutDir
		if *shard != "" {
			err = frag.PreparePartDir(*out)
		} else {
			dir, err = frag.PrepareOut(*out)
		}
		if err != nil {
			return err
		}
		if dir != nil {
			defer func() { _ = dir.Abort() }()
		}
		if *nodes == "-" && slices.Contains(*pods, "-") {
			return usageErr("--nodes - and --pods - cannot both be standard input")
		}
		fleet, err := loadFleet(cmd, *nodes)
		if err != nil {
			return err
		}
		ws, err := loadWorkloads(cmd, *pods)
		if err != nil {
			return err
		}
		m := frag.Matrix{Policies: ps, Seeds: ss, Inflate: *inflate, NoShuffle: *noShuffle}
		for _, w := range ws {
			m.Workloads = append(m.Workloads, w.Name)
		}
		sw := &frag.Sweep{Fleet: fleet, Workloads: ws, Matrix: m, Shard: sh, Parallel: *parallel}
		total := len(sh.Select(m.Jobs()))
		stderr := cmd.ErrOrStderr()
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && format != "json" {
			bar := progressbar.NewOptions(total,
				progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("frag sweep"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish())
			sw.Progress = func(int, int) { _ = bar.Add(1) }
			defer func() { _ = bar.Finish() }()
		}
		ctx, stop := interrupted(cmd)
		defer stop()
		start := time.Now()
		runs, err := sw.Run(ctx)
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		if *shard != "" {
			part := &frag.Part{Format: frag.PartFormat, Matrix: m, Shard: sh, Nodes: len(fleet.Nodes), GPUs: fleet.GPUs, Runs: runs}
			path, err := frag.WritePartFile(*out, part)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "shard %s: %d runs in %.1fs, written to %s\n", sh, len(runs), elapsed.Seconds(), path)
			return nil
		}
		t, err := writeReport(dir, m, runs)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%d runs in %.1fs on %d workers; outputs in %s\n", len(runs), elapsed.Seconds(), *parallel, *out)
		return printTable(cmd.OutOrStdout(), t, format)
	}
	return cmd
}

// writeReport writes a sweep's outputs into the prepared folder and puts
// them in place.
func writeReport(dir *frag.OutDir, m frag.Matrix, runs []frag.Record) (*frag.Table, error) {
	t, err := frag.WriteReport(dir.Path(), m, runs)
	if err != nil {
		return nil, fmt.Errorf("output folder %s: %w", dir.Dir(), err)
	}
	if err := dir.Commit(); err != nil {
		return nil, err
	}
	return t, nil
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
runs.json and plots into --out that a single sweep of the matrix writes.
--out may be the folder of the parts: they are kept. As for a sweep, --out
is replaced whole and must be new, empty or a sweep's folder.`,
		Example: examples(
			"# a sweep in two shards, then their merge",
			"petite sim frag sweep --policy best-fit,fgd --seed 42-43 --shard 0/2 --out out/parts",
			"petite sim frag sweep --policy best-fit,fgd --seed 42-43 --shard 1/2 --out out/parts",
			"petite sim frag merge --out out/merged out/parts",
			"# the merged table beside the parts, as TSV",
			"petite sim frag merge --out out/parts -o tsv out/parts",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	out := fs.String("out", "out/frag", "folder for the table, the runs and the plots (new, empty or a sweep's)")
	output := addSweepOutput(fs)
	deprecationsToStderr(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErr("merge needs part files or a directory of them")
		}
		format, err := output.get()
		if err != nil {
			return err
		}
		files, err := partFiles(args)
		if err != nil {
			return err
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
		dir, err := frag.PrepareOut(*out)
		if err != nil {
			return err
		}
		defer func() { _ = dir.Abort() }()
		t, err := writeReport(dir, m, runs)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "merged %d parts, %d runs; outputs in %s\n", len(parts), len(runs), *out)
		return printTable(cmd.OutOrStdout(), t, format)
	}
	return cmd
}

func printTable(w io.Writer, t *frag.Table, format string) error {
	switch format {
	case "table":
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
func loadWorkloads(cmd *cobra.Command, args []string) ([]*frag.Workload, error) {
	if len(args) == 0 {
		w, err := frag.DefaultWorkload()
		if err != nil {
			return nil, err
		}
		return []*frag.Workload{w}, nil
	}
	var files []string
	var stdin *frag.Workload
	for _, a := range args {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if a == "-" {
			if stdin != nil {
				return nil, usageErr("--pods: - (standard input) given twice")
			}
			w, err := loadWorkload(cmd, a)
			if err != nil {
				return nil, err
			}
			stdin = w
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
	ws, err := frag.LoadWorkloads(files)
	if err != nil || stdin == nil {
		return ws, err
	}
	return append(ws, stdin), nil
}
