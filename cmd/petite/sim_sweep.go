package main

import (
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

	"petite/scheduler"
	"petite/simulator/frag"
	"petite/simulator/replay"

	"petite/simulator/sweep"
	"petite/traces"
)

const simSweepLong = `
Replays every variant under every policy of --policy with every seed of
--seed, --parallel runs at a time, and writes into --out: runs.json (every
run's summary), table.md (for people) and table.tsv (for scripts) — per
variant and policy, the mean and, with two seeds or more, the standard
deviation over the seeds of the p50, p95 and p99 queueing delay, the mean
JCT, the cost and the utilisation — and report.html, the page of
'sim run --report' comparing, per variant and policy, the run of the first
seed. The table is also printed (-o). The outputs do not depend on
--parallel.

A variant is a scenario file (--scenario, repeatable: the scenario's policy
and seed are the sweep's) or the replay of --trace over --fleet, with
--queue, --cloud-wait, --warmup-jobs and --default-duration as 'sim run'
takes them.

--out is checked before the first run and replaced whole when the sweep is
done, as for 'sim frag sweep': it must be new, empty or a previous sweep's
folder. --shard i/n runs only the runs at positions k with k mod n = i of
the matrix (variants, then policies, then seeds) and writes
OUT/part-i-of-n.json; 'petite sim sweep merge' joins the n parts into the
same outputs a single sweep gives, byte for byte.`

// simSweepCommand is `petite sim sweep`: replays over variants × policies ×
// seeds, in parallel, possibly one shard of them.
func simSweepCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Replay scenario variants × policies × seeds and tabulate waits, JCT, cost and utilisation.",
		Long:  simSweepLong,
		Example: examples(
			"# two policies, two seeds, on the burst method's reference trace",
			"petite sim sweep --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --policy best-fit,fgd --seed 42-43 --out out/sim-sweep",
			"# the same in two shards, then their merge",
			"petite sim sweep --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --policy best-fit,fgd --seed 42-43 --shard 0/2 --out out/sim-sweep-parts",
			"petite sim sweep --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --policy best-fit,fgd --seed 42-43 --shard 1/2 --out out/sim-sweep-parts",
			"petite sim sweep merge --out out/sim-sweep-merged out/sim-sweep-parts",
			"# a shipped scenario under two policies, the table as TSV",
			"petite sim sweep --scenario examples/scenarios/burst-to-cloud.yaml --policy best-fit,fgd --seed 42 -o tsv --out out/sim-sweep-burst",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	scenarios := fs.StringSlice("scenario", nil, "scenario files, one variant each (their policy and seed are the sweep's)")
	fleetPath := fs.String("fleet", "", "fleet YAML or machine list (default: the embedded demo fleet)")
	tracePath := fs.String("trace", "", "job trace in any format the trace readers take")
	queue := fs.String("queue", "fifo", "queue discipline of a --trace variant: fifo, fifo-skip or backfill")
	wait := fs.String("cloud-wait", "", "burst to cloud with this waiting budget (as 'sim run')")
	warmup := fs.Int("warmup-jobs", 0, "jobs left out of the measurement window at its start")
	defDur := fs.Duration("default-duration", 0, "duration of a job whose trace gives none (0: such a job is an error)")
	policies := fs.String("policy", "best-fit", "policies: all, or comma-separated names of: "+strings.Join(scheduler.PolicyNames(), ", "))
	seeds := fs.String("seed", fmt.Sprint(defaultSeed), "seeds: a, a-b, or a comma-separated list of them")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "runs at a time")
	shard := fs.String("shard", "", "run only shard i/n of the matrix (0 <= i < n) and write a part file")
	step := fs.Duration("series-step", time.Minute, "sampling step of the report's plots")
	out := fs.String("out", "out/sim-sweep", "folder for the runs, the table and the report (new, empty or a previous sweep's)")
	output := addOutputFlag(fs, "table", "tsv", "json", "none")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		if *parallel < 1 {
			return usageErr("--parallel: want at least 1, got %d", *parallel)
		}
		if *step <= 0 {
			return usageErr("--series-step: must be positive")
		}
		sh := frag.Whole
		if *shard != "" {
			if sh, err = frag.ParseShard(*shard); err != nil {
				return usageErr("--shard: %v", err)
			}
		}
		ps, err := sweep.ParsePolicies(*policies)
		if err != nil {
			return usageErr("--policy: %v", err)
		}
		ss, err := frag.ParseSeeds(*seeds)
		if err != nil {
			return usageErr("--seed: %v", err)
		}
		if len(*scenarios) > 0 {
			for _, f := range []string{"fleet", "trace", "queue", "cloud-wait", "warmup-jobs", "default-duration"} {
				if cmd.Flags().Changed(f) {
					return usageErr("--scenario and --%s exclude each other: the scenario names its inputs and settings", f)
				}
			}
		} else if *tracePath == "" {
			return usageErr("a variant is needed: --scenario FILE, or --trace (and --fleet)")
		}
		// The output folder, before any run.
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
		var vs []sweep.Variant
		var notes []string
		if len(*scenarios) > 0 {
			vs, notes, err = scenarioVariants(cmd, *scenarios)
		} else {
			var v sweep.Variant
			v, notes, err = traceVariant(cmd, *fleetPath, *tracePath, *queue, *wait, *warmup, int64(*defDur))
			vs = []sweep.Variant{v}
		}
		if err != nil {
			return err
		}
		m := sweep.Matrix{Policies: ps, Seeds: ss, SeriesStep: int64(*step), Notes: notes}
		for _, v := range vs {
			m.Variants = append(m.Variants, v.Name)
		}
		sw := &sweep.Sweep{Variants: vs, Matrix: m, Shard: sh, Parallel: *parallel}
		stderr := cmd.ErrOrStderr()
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && format != "json" {
			bar := progressbar.NewOptions(-1,
				progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("sim sweep: runs done"),
				progressbar.OptionShowCount(),
				progressbar.OptionClearOnFinish())
			sw.Progress = func(done, total int) { bar.ChangeMax(total); _ = bar.Set(done) }
			defer func() { _ = bar.Finish() }()
		}
		ctx, stop := interrupted(cmd)
		defer stop()
		start := time.Now()
		recs, fulls, err := sw.Run(ctx)
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		if *shard != "" {
			path, err := sweep.WritePartFile(*out, &sweep.Part{Format: sweep.PartFormat, Matrix: m, Shard: sh, Runs: recs, Full: fulls})
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "shard %s: %d runs in %.1fs, written to %s\n", sh, len(recs), elapsed.Seconds(), path)
			return nil
		}
		t, err := writeSweepOutputs(dir, m, recs, fulls)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%d runs in %.1fs on %d workers; outputs in %s\n", len(recs), elapsed.Seconds(), *parallel, *out)
		return printSweepTable(cmd.OutOrStdout(), t, format)
	}
	cmd.AddCommand(simSweepMergeCommand())
	return cmd
}

// scenarioVariants loads each scenario's inputs once; each run compiles it
// with its own policy and seed (faults are drawn from the seed).
func scenarioVariants(cmd *cobra.Command, paths []string) ([]sweep.Variant, []string, error) {
	var vs []sweep.Variant
	var notes []string
	if n := slices.Index(paths, "-"); n >= 0 && slices.Index(paths[n+1:], "-") >= 0 {
		return nil, nil, usageErr("--scenario: - (standard input) given twice")
	}
	for _, p := range paths {
		s, err := loadScenario(cmd, p)
		if err != nil {
			return nil, nil, err
		}
		in, err := s.LoadInputs()
		if err != nil {
			return nil, nil, err
		}
		name := s.Name
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		}
		for _, v := range vs {
			if v.Name == name {
				return nil, nil, usageErr("--scenario %s: a variant named %q is given twice", p, name)
			}
		}
		vs = append(vs, sweep.Variant{Name: name, Config: func(policy string, seed uint64) (replay.Config, error) {
			c := *s
			c.Policy, c.Seed = policy, &seed
			comp, err := c.CompileWith(in, nil)
			if err != nil {
				return replay.Config{}, err
			}
			return comp.Config, nil
		}})
		notes = append(notes, fmt.Sprintf("variant %s: scenario %s", name, filepath.ToSlash(p)))
	}
	return vs, notes, nil
}

// traceVariant is the replay of a trace over a fleet, as 'sim run' takes
// them.
func traceVariant(cmd *cobra.Command, fleetPath, tracePath, queue, wait string, warmup int, defDur int64) (sweep.Variant, []string, error) {
	q, err := replay.ParseQueue(queue)
	if err != nil {
		return sweep.Variant{}, nil, usageErr("--queue: %v", err)
	}
	if warmup < 0 {
		return sweep.Variant{}, nil, usageErr("--warmup-jobs: must not be negative")
	}
	if defDur < 0 {
		return sweep.Variant{}, nil, usageErr("--default-duration: must not be negative")
	}
	base := replay.Config{Queue: q, WarmupJobs: warmup}
	if wait != "" {
		wp, err := replay.ParseWait(wait)
		if err != nil {
			return sweep.Variant{}, nil, usageErr("--cloud-wait: %v", err)
		}
		if q == replay.QueueBackfill {
			return sweep.Variant{}, nil, usageErr("--cloud-wait: the burst method runs a fifo or fifo-skip queue")
		}
		base.Burst = &replay.Burst{Wait: wp}
	}
	var fleetName string
	base.Pools, base.Nodes, fleetName, err = readFleetArg(cmd, fleetPath)
	if err != nil {
		return sweep.Variant{}, nil, err
	}
	base.Jobs, err = readReplayJobs(cmd, tracePath, traces.Options{}, defDur)
	if err != nil {
		return sweep.Variant{}, nil, err
	}
	name := strings.TrimSuffix(filepath.Base(tracePath), filepath.Ext(tracePath))
	note := fmt.Sprintf("variant %s: fleet %s, trace %s (%d jobs), queue %s, warm-up jobs %d", name, fleetName, filepath.ToSlash(tracePath), len(base.Jobs), q, warmup)
	if wait != "" {
		note += ", burst to cloud, waiting budget " + wait
	}
	return sweep.Variant{Name: name, Config: func(string, uint64) (replay.Config, error) { return base, nil }}, []string{note}, nil
}

// writeSweepOutputs writes the outputs into the prepared folder and puts
// them in place.
func writeSweepOutputs(dir *frag.OutDir, m sweep.Matrix, recs []sweep.Record, fulls []sweep.Full) (*sweep.Table, error) {
	t, err := sweep.WriteOutputs(dir.Path(), m, recs, fulls)
	if err != nil {
		return nil, fmt.Errorf("output folder %s: %w", dir.Dir(), err)
	}
	if err := dir.Commit(); err != nil {
		return nil, err
	}
	return t, nil
}

func printSweepTable(w io.Writer, t *sweep.Table, format string) error {
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

// simSweepMergeCommand is `petite sim sweep merge`: joins the parts of a
// sharded sweep into the outputs of a single sweep.
func simSweepMergeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "merge [flags] PART.json... | DIR",
		Short: "Join the part files of a sharded sim sweep into its runs, table and report.",
		Long: `
Reads the part files that 'petite sim sweep --shard i/n' wrote (or every
part-*.json of a directory), checks that they are the n shards of one
matrix, each exactly once, and writes into --out the same runs.json,
table.md, table.tsv and report.html, byte for byte, that a single sweep of
the matrix writes. --out may be the folder of the parts: they are kept.`,
		Example: examples(
			"# a sweep in two shards, then their merge beside the parts",
			"petite sim sweep --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --policy best-fit --seed 42-43 --shard 0/2 --out out/sim-sweep-p",
			"petite sim sweep --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --policy best-fit --seed 42-43 --shard 1/2 --out out/sim-sweep-p",
			"petite sim sweep merge --out out/sim-sweep-p -o tsv out/sim-sweep-p",
		),
		Args: cobra.ArbitraryArgs,
	}
	out := cmd.Flags().String("out", "out/sim-sweep", "folder for the runs, the table and the report (new, empty or a sweep's)")
	output := addOutputFlag(cmd.Flags(), "table", "tsv", "json", "none")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErr("merge needs part files or a directory of them")
		}
		format, err := output.format()
		if err != nil {
			return err
		}
		files, err := partFiles(args)
		if err != nil {
			return err
		}
		var parts []*sweep.Part
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				return fmt.Errorf("merge: %w", err)
			}
			p, err := sweep.ReadPart(fh, f)
			fh.Close()
			if err != nil {
				return err
			}
			parts = append(parts, p)
		}
		m, recs, fulls, err := sweep.Merge(parts)
		if err != nil {
			return err
		}
		dir, err := frag.PrepareOut(*out)
		if err != nil {
			return err
		}
		defer func() { _ = dir.Abort() }()
		t, err := writeSweepOutputs(dir, m, recs, fulls)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "merged %d parts, %d runs; outputs in %s\n", len(parts), len(recs), *out)
		return printSweepTable(cmd.OutOrStdout(), t, format)
	}
	return cmd
}
