package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petite/traces"
)

func (t *traceIO) statsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats [flags] FILE",
		Short: "Summarise a trace: jobs, GPU demand, arrivals, durations, GPU-hours.",
		Long: `Reports jobs and GPU jobs, the GPU-demand distribution, arrivals by hour of day and
weekday, duration quantiles, total GPU-hours, the time span and the bad records
skipped. A machine list (openb nodes, PAI machine spec, Philly machine list) gets a
fleet summary instead, and a Helios GPU-number file a summary of its virtual
clusters. -o json (or --json) prints the same as JSON.`,
		Example: examples(
			"petite trace stats traces/samples/openb_pod_list_default.csv",
			"petite trace stats -o json traces/testdata/helios/cluster_log.csv",
			"# a machine list gets a fleet summary",
			"petite trace stats traces/testdata/pai/pai_machine_spec.csv",
			"# Helios GPU numbers: virtual clusters and their busiest day",
			"petite trace stats traces/testdata/helios/earth_cluster_gpu_number.csv",
			"# standard input",
			"petite trace stats - < traces/testdata/philly/cluster_job_log",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	var in inputFlags
	in.add(fs)
	output := addOutputFlag(fs, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t.bind(cmd)
		defer t.release()
		if len(args) != 1 {
			return usageErr("stats takes one FILE, got %d arguments", len(args))
		}
		outFormat, err := output.format()
		if err != nil {
			return err
		}
		asJSON := outFormat == "json"
		opts, err := in.options()
		if err != nil {
			return err
		}
		path := args[0]
		// Open once to tell a machine list from a job trace; standard
		// input cannot be opened twice, so it is read from what was
		// sniffed.
		file, name, err := openInput(cmd, path)
		if err != nil {
			return err
		}
		defer file.Close()
		name = filepath.Base(name)
		br, err := traces.Buffered(file, name)
		if err != nil {
			return err
		}
		f := opts.Format
		if f == traces.FormatAuto {
			if f, err = traces.Sniff(br, name); err != nil {
				return err
			}
		}
		if f.IsFleet() {
			if in.paiJobs != "" {
				return usageErr("--pai-jobs joins a PAI task table, and %s is %s", path, f)
			}
			st, err := traces.ReadFleetStats(br, name, f)
			if err != nil {
				return err
			}
			if asJSON {
				return writeTraceJSON(t.stdout, st)
			}
			return printFleetStats(t.stdout, path, st)
		}
		var r *traces.Reader
		if path == "-" {
			if in.paiJobs != "" {
				return usageErr("--pai-jobs joins a PAI task table read from a file; the trace - is standard input")
			}
			opts.Format = f
			r, err = traces.NewReader(br, "stdin", opts)
		} else {
			file.Close()
			r, err = t.open(path, &in)
		}
		if err != nil {
			return err
		}
		defer r.Close()
		st, err := traces.ComputeStats(r)
		if err != nil {
			return err
		}
		if asJSON {
			return writeTraceJSON(t.stdout, st)
		}
		return printTraceStats(t.stdout, path, st)
	}
	return cmd
}

// printFleetStats prints the summary of a machine list, or of a Helios
// GPU-number file (virtual clusters, not machines).
func printFleetStats(out io.Writer, path string, st traces.FleetStats) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "fleet\t%s (%s)\n", path, st.Format)
	if d := st.Days; st.Format == traces.FormatHeliosGPUs {
		fmt.Fprintf(w, "virtual clusters\t%d (GPUs per virtual cluster per day; the file lists no machines)\n", st.VirtualClusters)
		if d != nil {
			fmt.Fprintf(w, "days\t%d, %s to %s\n", d.Count, d.First, d.Last)
			fmt.Fprintf(w, "GPUs\t%d at most, on %s (%d on the last day, %s)\n", st.GPUs, d.Peak, d.LastGPUs, d.Last)
		}
		for _, vc := range st.ByVC {
			fmt.Fprintf(w, "  %s\t%d GPUs at most\n", vc.VC, vc.MaxGPUs)
		}
		return w.Flush()
	}
	fmt.Fprintf(w, "machines\t%d\n", st.Machines)
	fmt.Fprintf(w, "GPUs\t%d\n", st.GPUs)
	if st.CPUMilli > 0 || st.MemMiB > 0 {
		fmt.Fprintf(w, "CPU, memory\t%d cores, %d GiB\n", st.CPUMilli/1000, st.MemMiB/1024)
	}
	for _, m := range st.ByModel {
		fmt.Fprintf(w, "  %s\t%d machines, %d GPUs\n", m.Label(), m.Machines, m.GPUs)
	}
	return w.Flush()
}

func writeTraceJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printTraceStats(out io.Writer, name string, st *traces.Stats) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "trace\t%s (%s; %s clock, zone %s)\n", name, st.Meta.Format, st.Meta.Clock, st.Meta.Zone)
	fmt.Fprintf(w, "jobs\t%d (%d use GPUs, %d of them a shared GPU; %d task instances)\n", st.Jobs, st.GPUJobs, st.SharedGPUJobs, st.Instances)
	var status []string
	for _, s := range []traces.Status{traces.StatusSucceeded, traces.StatusFailed, traces.StatusKilled, traces.StatusTimeout, traces.StatusRunning, traces.StatusPending, traces.StatusUnknown} {
		if n := st.Status[s]; n > 0 {
			label := string(s)
			if s == traces.StatusUnknown {
				label = "unknown"
			}
			status = append(status, fmt.Sprintf("%s %d", label, n))
		}
	}
	fmt.Fprintf(w, "status\t%s\n", strings.Join(status, ", "))
	var demand []string
	for _, b := range st.GPUDemand {
		demand = append(demand, fmt.Sprintf("%d GPU: %d (%.1f%%)", b.GPUs, b.Jobs, 100*float64(b.Jobs)/float64(max(1, st.Jobs))))
	}
	fmt.Fprintf(w, "GPU demand\t%s\n", strings.Join(demand, ", "))
	if st.FirstSubmit != traces.NoTime {
		fmt.Fprintf(w, "span\t%s (first submit %s, last submit %s, last end %s)\n", traces.FormatDuration(float64(st.SpanSeconds)),
			traceStamp(st.Meta, st.FirstSubmit), traceStamp(st.Meta, st.LastSubmit), traceStamp(st.Meta, st.LastEnd))
		fmt.Fprintf(w, "arrivals\t%.2f jobs/h on average\n", st.ArrivalsPerHour)
		hourLabel := "by hour"
		if st.Meta.Clock == traces.ClockRelative {
			hourLabel = "by hour (from origin)"
		}
		days := st.Days()
		var hours []string
		for h, n := range st.ByHour {
			hours = append(hours, fmt.Sprintf("%02d:%.1f", h, float64(n)/days))
		}
		fmt.Fprintf(w, "  %s, jobs/h\t%s\n", hourLabel, strings.Join(hours[:12], " "))
		fmt.Fprintf(w, "\t%s\n", strings.Join(hours[12:], " "))
		if st.ByWeekday != nil {
			var wd []string
			for d, n := range st.ByWeekday {
				wd = append(wd, fmt.Sprintf("%s %d", time.Weekday(d).String()[:3], n))
			}
			fmt.Fprintf(w, "  by weekday, jobs\t%s\n", strings.Join(wd, ", "))
		}
	}
	if st.NoSubmit > 0 {
		fmt.Fprintf(w, "no submit time\t%d jobs\n", st.NoSubmit)
	}
	d := st.Duration
	if d.Known > 0 {
		fmt.Fprintf(w, "duration\tp50 %s, p90 %s, p95 %s, p99 %s, max %s, mean %s (%d jobs known)\n",
			traces.FormatDuration(d.P50), traces.FormatDuration(d.P90), traces.FormatDuration(d.P95),
			traces.FormatDuration(d.P99), traces.FormatDuration(d.Max), traces.FormatDuration(d.Mean), d.Known)
	}
	fmt.Fprintf(w, "GPU-hours\t%.1f\n", st.GPUHours)
	switch {
	case st.Problems.Skipped == 0 && len(st.Problems.Warnings) == 0:
		fmt.Fprintf(w, "bad records\tnone\n")
	case st.Problems.Skipped == 0:
		fmt.Fprintf(w, "bad records\tnone\n")
		for _, warn := range st.Problems.Warnings {
			fmt.Fprintf(w, "warning\t%s\n", warn)
		}
	default:
		fmt.Fprintf(w, "bad records\t%s\n", strings.ReplaceAll(st.Problems.String(), "\n", "\n\t"))
	}
	return w.Flush()
}

// traceStamp prints a trace time: a date on a Unix clock, seconds otherwise.
func traceStamp(m traces.Meta, t int64) string {
	if t == traces.NoTime {
		return "-"
	}
	if m.Clock != traces.ClockUnix {
		return fmt.Sprintf("%ds", t)
	}
	loc, err := m.Location()
	if err != nil {
		loc = time.UTC
	}
	return time.Unix(t, 0).In(loc).Format("2006-01-02 15:04 MST")
}

func (t *traceIO) headCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "head [flags] FILE",
		Short: "Print the first jobs of a trace.",
		Long: `Prints a table by default, each cell cut to 40 characters (tasks to 80), so a
long field cannot flood the terminal; --to petite-csv or petite-jsonl prints
canonical records instead.`,
		Example: examples(
			"petite trace head -n 5 traces/testdata/philly/cluster_job_log",
			"petite trace head -n 3 --to petite-csv traces/samples/openb_pod_list_default.csv",
			"petite trace head - < traces/testdata/helios/cluster_log.csv",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	var in inputFlags
	var out outputFlags
	in.add(fs)
	out.add(fs)
	n := fs.IntP("lines", "n", 10, "number of jobs to print")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t.bind(cmd)
		defer t.release()
		if len(args) != 1 {
			return usageErr("head takes one FILE, got %d arguments", len(args))
		}
		if *n < 0 {
			return usageErr("--lines must be 0 or more")
		}
		r, err := t.open(args[0], &in)
		if err != nil {
			return err
		}
		defer r.Close()
		left := *n
		next := func() (traces.Job, error) {
			if left == 0 {
				return traces.Job{}, io.EOF
			}
			left--
			return r.Next()
		}
		if out.to != "" {
			f, err := out.format("-")
			if err != nil {
				return err
			}
			_, err = t.writeJobs("-", f, r.Meta(), next)
			t.reportProblems(args[0], r.Problems())
			return err
		}
		w := tabwriter.NewWriter(t.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSUBMIT\tSTART\tDURATION\tTENANT\tSTATUS\tTASKS")
		for {
			j, err := next()
			if err == io.EOF {
				break
			}
			if err != nil {
				w.Flush()
				return err
			}
			dur := "-"
			if j.Duration != traces.NoTime {
				dur = traces.FormatDuration(float64(j.Duration))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", headCell(j.ID), traceStamp(r.Meta(), j.Submit), traceStamp(r.Meta(), j.Start),
				dur, headCell(traceOrDash(j.Tenant)), headCell(traceOrDash(string(j.Status))), cutCell(traceTaskSummary(j.Tasks), headTasksRunes))
		}
		t.reportProblems(args[0], r.Problems())
		return w.Flush()
	}
	return cmd
}

// The widest cells head prints: a field may be up to traces.MaxFieldBytes,
// which is no table.
const (
	headCellRunes  = 40
	headTasksRunes = 80
)

// headCell cuts s to headCellRunes characters, ending a cut one with "…",
// and shows control characters (a line break in a quoted field) escaped,
// so each job stays one line.
func headCell(s string) string { return cutCell(s, headCellRunes) }

// cutCell is headCell to width characters.
func cutCell(s string, width int) string {
	if n := 0; len(s) > width {
		for i := range s {
			if n == width-1 {
				s = s[:i] + "…"
				break
			}
			n++
		}
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		q := strconv.Quote(s)
		s = q[1 : len(q)-1]
	}
	return s
}

func traceOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// traceTaskSummary describes tasks as "4×(8 GPU, 64 CPU, 256 GiB)".
func traceTaskSummary(ts []traces.Task) string {
	if len(ts) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range ts {
		var d []string
		switch {
		case t.GPUs == 0:
		case t.GPUMilli < 1000:
			d = append(d, fmt.Sprintf("%d×%.2f GPU", t.GPUs, float64(t.GPUMilli)/1000))
		default:
			d = append(d, fmt.Sprintf("%d GPU", t.GPUs))
		}
		if len(t.GPUModels) > 0 {
			d = append(d, strings.Join(t.GPUModels, "|"))
		}
		if t.CPUMilli > 0 {
			d = append(d, fmt.Sprintf("%.4g CPU", float64(t.CPUMilli)/1000))
		}
		if t.MemoryMiB > 0 {
			d = append(d, fmt.Sprintf("%.4g GiB", float64(t.MemoryMiB)/1024))
		}
		s := strings.Join(d, ", ")
		if t.Name != "" {
			s = t.Name + ": " + s
		}
		if t.Count != 1 {
			s = fmt.Sprintf("%d×(%s)", t.Count, s)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " + ")
}

func (t *traceIO) sampleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sample [flags] IN [OUT]",
		Short: "Draw a reproducible random subsample of a trace's jobs.",
		Long: `Draws --jobs jobs uniformly in one pass (reservoir sampling seeded by --seed) and
writes them in their original order as canonical records (OUT defaults to standard
output). The same input, --jobs and --seed always give the same bytes.`,
		Example: examples(
			"petite trace sample --jobs 100 --seed 7 traces/samples/openb_pod_list_default.csv sample.csv",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	var in inputFlags
	var out outputFlags
	in.add(fs)
	out.add(fs)
	n := fs.Int("jobs", 0, "number of jobs to draw (required)")
	seed := fs.Uint64("seed", defaultSeed, "random seed")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t.bind(cmd)
		defer t.release()
		if len(args) < 1 || len(args) > 2 {
			return usageErr("sample takes IN and an optional OUT, got %d arguments", len(args))
		}
		if *n <= 0 {
			return usageErr("--jobs must be a positive number")
		}
		dst := "-"
		if len(args) == 2 {
			dst = args[1]
		}
		if err := distinctOutput(dst, args[0], in.paiJobs); err != nil {
			return err
		}
		f, err := out.format(dst)
		if err != nil {
			return err
		}
		r, err := t.open(args[0], &in)
		if err != nil {
			return err
		}
		defer r.Close()
		jobs, err := traces.Sample(r, *n, *seed)
		if err != nil {
			return err
		}
		i := 0
		_, err = t.writeJobs(dst, f, r.Meta(), func() (traces.Job, error) {
			if i == len(jobs) {
				return traces.Job{}, io.EOF
			}
			i++
			return jobs[i-1], nil
		})
		t.reportProblems(args[0], r.Problems())
		return err
	}
	return cmd
}

func (t *traceIO) genCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen [flags] [OUT]",
		Short: "Generate a synthetic trace, from a built-in spec, a spec file or a fit to a real trace.",
		Long: `Arrivals are Poisson or diurnal (a Poisson process whose rate follows the hour of
day), run times lognormal or Pareto, and the job shapes (gang size, GPUs per
instance, GPU share, CPU, memory, GPU models) drawn from a weighted mix.

--fit FILE estimates all of these from a real trace; --spec FILE reads them from JSON
(--print-spec shows the format, and is a good start for one). --jobs, --seed,
--arrival and --rate override the spec. Output goes to OUT (default standard
output) as canonical CSV or JSON Lines; the same spec and seed give the same bytes.`,
		Example: examples(
			"# 1,000 jobs from the built-in spec",
			"petite trace gen --jobs 1000 synthetic.csv",
			"# the spec fitted to a trace, to edit and pass back with --spec",
			"petite trace gen --fit traces/samples/openb_pod_list_default.csv --print-spec",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	var in inputFlags
	var out outputFlags
	in.add(fs)
	out.add(fs)
	fit := fs.String("fit", "", "fit the spec to this trace")
	specFile := fs.String("spec", "", "read the spec from this JSON file")
	jobs := fs.Int("jobs", 0, "number of jobs (default: the spec's; with --fit, as many as the trace has)")
	seed := fs.Uint64("seed", defaultSeed, "random seed (a --spec file's own seed unless given)")
	arrival := fs.String("arrival", "", "arrival process: poisson or diurnal (default: the spec's)")
	rate := fs.Float64("rate", 0, "mean arrivals per hour (default: the spec's)")
	printSpec := fs.Bool("print-spec", false, "print the spec as JSON instead of generating")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t.bind(cmd)
		defer t.release()
		if len(args) > 1 {
			return usageErr("gen takes at most one OUT, got %d arguments", len(args))
		}
		if *fit != "" && *specFile != "" {
			return usageErr("--fit and --spec exclude each other")
		}
		if *fit == "" && in.changed(fs) {
			return usageErr("--format, --strict and --pai-jobs describe the --fit trace; give --fit or leave them out")
		}
		if fs.Changed("arrival") && *arrival != "poisson" && *arrival != "diurnal" {
			return usageErr("--arrival %q: want poisson or diurnal", *arrival)
		}
		if fs.Changed("rate") && (!(*rate >= traces.MinRatePerHour) || math.IsInf(*rate, 0)) {
			return usageErr("--rate %g: want a finite number >= %g arrivals per hour", *rate, traces.MinRatePerHour)
		}
		if *fit == "-" && *specFile == "-" {
			return usageErr("--fit - and --spec - cannot both be standard input")
		}
		dst := "-"
		if len(args) == 1 {
			dst = args[0]
			if err := distinctOutput(dst, *fit, *specFile, in.paiJobs); err != nil {
				return err
			}
		}
		f, err := out.format(dst)
		if err != nil {
			return err
		}
		spec := traces.DefaultSpec()
		switch {
		case *fit != "":
			r, err := t.open(*fit, &in)
			if err != nil {
				return err
			}
			spec, err = traces.Fit(r)
			r.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", *fit, err)
			}
			t.reportProblems(*fit, r.Problems())
		case *specFile != "":
			f, name, err := openInput(cmd, *specFile)
			if err != nil {
				return fmt.Errorf("--spec: %w", err)
			}
			spec, err = traces.ReadSpec(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if fs.Changed("jobs") {
			if *jobs < 0 {
				return usageErr("--jobs must be 0 or more")
			}
			spec.Jobs = *jobs
		}
		if fs.Changed("seed") || *specFile == "" {
			spec.Seed = *seed
		}
		if fs.Changed("arrival") {
			spec.Arrival.Process = *arrival
		}
		if fs.Changed("rate") {
			spec.Arrival.RatePerHour = *rate
		}
		// Without --spec or --fit every value comes from a flag or the
		// built-in spec, so a spec that does not hold is a wrong call.
		fromFlags := *fit == "" && *specFile == ""
		if err := spec.Validate(); err != nil {
			if fromFlags {
				return usageErr("%v", err)
			}
			return err
		}
		if *printSpec {
			return writeTraceJSON(t.stdout, spec)
		}
		g, err := traces.NewGenerator(spec)
		if err != nil {
			return err
		}
		_, err = t.writeJobs(dst, f, g.Meta(), g.Next)
		return err
	}
	return cmd
}
