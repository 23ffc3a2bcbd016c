package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"petite/scheduler"
	"petite/simulator/replay"
	"petite/simulator/report"
	"petite/simulator/scenario"
	"petite/traces"
)

// simRunCommand is `petite sim run`: a trace replayed over time through the
// scheduler's state machine, optionally bursting to the cloud.
func simRunCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Replay a job trace over a fleet on a virtual clock (optionally bursting to cloud).",
		Long: `
Replays a job trace through the same state machine and scheduling pass the
daemon runs: jobs arrive at their submit times, queue, start, run for their
trace duration and finish; a pass runs at every instant where something
changed (docs/sim.md). With --cloud-wait it runs the burst-to-cloud method:
the fleet's owned pools serve a strict queue, and a job that waits past its
budget runs in the fleet's cloud pool and pays for it. It prints the
summary; --json prints it as one JSON object, --events writes the event log
(JSON Lines) that the summary reconciles with.

A trace file in submission order is replayed as it is read, holding only
the jobs live at once, unless --series, --report, --cloud-wait or
--from-snapshot needs it whole (docs/sim.md). A job that fits no node of
the fleet stops the run, or with --unfit skip is left out and counted.

Without --fleet it uses the embedded demo fleet; --trace is required.`,
		Example: examples(
			"# the burst method's No-Wait policy on its reference fleet",
			"petite sim run --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --policy best-fit --queue fifo --cloud-wait constant:15s --warmup-jobs 5 --json",
			"# no waiting at all, as a table",
			"petite sim run --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --cloud-wait none",
			"# the compute-proportional budget with the out-of-order queue (the method's §8)",
			"petite sim run --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --queue fifo-skip --cloud-wait cost:0.1 --warmup-jobs 5 --json",
			"# Star-Wait with the paper's L = 5 min and R = 1.8",
			"petite sim run --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --queue fifo-skip --cloud-wait star:0.1:5m:1.8 --warmup-jobs 5",
			"# a scenario: its run and the impact of retiring the on-prem hall",
			"petite sim run --scenario examples/scenarios/retire-onprem.yaml",
			"# a plain replay on the owned nodes, with backfill",
			"petite sim run --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --queue backfill",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	fleetPath := fs.String("fleet", "", "fleet YAML or machine list (default: the embedded demo fleet)")
	tracePath := fs.String("trace", "", "job trace in any format the trace readers take ('-' for standard input)")
	policy := fs.String("policy", "best-fit", "placement policy: "+fmt.Sprint(scheduler.PolicyNames()))
	queue := fs.String("queue", "fifo", "queue discipline: fifo (strict, no backfill), fifo-skip (start whatever fits, in order) or backfill")
	wait := fs.String("cloud-wait", "", "burst to cloud with this waiting budget: none, constant:DURATION (e.g. constant:15s), cost:K or star:K:L:R")
	warmup := fs.Int("warmup-jobs", 0, "jobs left out of the measurement window at its start (W; docs/sim.md)")
	seed := fs.Uint64("seed", defaultSeed, "seed of the run's random stream (random policy, draws of the core)")
	defDur := fs.Duration("default-duration", 0, "duration of a job whose trace gives none (0: such a job is an error)")
	ckpt := fs.Duration("checkpoint-interval", 0, "training work between checkpoints (0: a job losing its place starts over)")
	restart := fs.Duration("restart-cost", 0, "time a restarted training job spends loading before working again")
	horizon := fs.Duration("horizon", 0, "stop this long after the first job's submit (0: when every job has ended)")
	preempt := fs.Bool("preempt", false, "let jobs evict running work of strictly lower priority")
	victims := fs.String("preemptible", "all", "with --preempt: which jobs may be evicted: all, training (services keep their replicas) or none")
	scale := fs.Bool("scale", false, "cloud pools with max_nodes grow when the queue needs them and release idle nodes; cloud nodes are billed while up (docs/sim.md)")
	idleRelease := fs.Duration("idle-release", time.Duration(replay.DefaultIdleRelease), "with --scale: how long an elastic cloud node stays idle before it is released")
	spotReclaim := fs.Duration("spot-reclaim", 0, "with --scale: mean time a spot node stays up before it is taken back (0: never)")
	events := fs.String("events", "", "write the event log to this file, one JSON object a line")
	series := fs.String("series", "", "write a CSV of the state every --series-step to this file (GPUs allocated and stranded per pool, cloud, pending, jobs, spend)")
	seriesStep := fs.Duration("series-step", time.Minute, "the step of --series")
	strict := fs.Bool("strict", false, "a bad trace record ends the run (default: skipped and counted)")
	format := fs.String("format", "auto", "format of --trace (auto sniffs it)")
	reportPath := fs.String("report", "", "write a self-contained HTML report (summary, plots over time, wait and JCT distributions, cost by pool, a scenario's before and after) to this file")
	snapshotPath := fs.String("from-snapshot", "", "start from a state snapshot (the daemon's GET /v1/snapshot): its fleet, tenants, running jobs in place and queue; --trace is then optional and arrives from the snapshot's instant")
	snapshotAt := fs.String("snapshot-at", "", "with --from-snapshot: the snapshot's instant, RFC 3339 or Unix seconds (default: the latest time it records)")
	unfit := fs.String("unfit", "error", "a job that fits no node of the fleet: error (stop there) or skip (leave it out of the replay; the summary counts and lists them)")
	scenarioPath := fs.String("scenario", "", "run a scenario file (docs/scenario.md) and print its summary and the impact of each retire, drain or move")
	output := addOutputFlag(fs, "text", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out, err := output.format()
		if err != nil {
			return err
		}
		if *seriesStep <= 0 {
			return usageErr("--series-step: must be positive")
		}
		if err := prepareOutputs(map[string]string{"events": *events, "series": *series, "report": *reportPath}); err != nil {
			return err
		}
		if *scenarioPath != "" {
			for _, f := range []string{"from-snapshot", "fleet", "trace", "policy", "queue", "cloud-wait", "warmup-jobs", "seed", "default-duration", "checkpoint-interval", "restart-cost", "horizon", "preempt", "preemptible", "format", "strict", "scale", "idle-release", "spot-reclaim", "unfit"} {
				if cmd.Flags().Changed(f) {
					return usageErr("--scenario and --%s exclude each other: the scenario names its inputs and settings", f)
				}
			}
			return runScenario(cmd, *scenarioPath, out, scenarioOutputs{events: *events, series: *series, report: *reportPath, step: int64(*seriesStep)})
		}
		if *snapshotPath == "" && *tracePath == "" {
			return usageErr("--trace: a job trace is required (or --from-snapshot)")
		}
		if *snapshotPath == "" && *snapshotAt != "" {
			return usageErr("--snapshot-at needs --from-snapshot")
		}
		if *snapshotPath != "" && (*fleetPath != "" || *wait != "") {
			return usageErr("--from-snapshot excludes --fleet and --cloud-wait: the snapshot names the fleet, and the burst method starts from an empty cluster")
		}
		if !slices.Contains(scheduler.PolicyNames(), *policy) {
			return usageErr("--policy: unknown policy %q (want one of %v)", *policy, scheduler.PolicyNames())
		}
		q, err := replay.ParseQueue(*queue)
		if err != nil {
			return usageErr("--queue: %v", err)
		}
		for name, d := range map[string]time.Duration{"default-duration": *defDur, "checkpoint-interval": *ckpt, "restart-cost": *restart, "horizon": *horizon, "idle-release": *idleRelease, "spot-reclaim": *spotReclaim} {
			if d < 0 {
				return usageErr("--%s: must not be negative", name)
			}
		}
		uf, err := replay.ParseUnfit(*unfit)
		if err != nil {
			return usageErr("--unfit: %v", err)
		}
		cfg := replay.Config{Policy: *policy, Queue: q, Seed: *seed, WarmupJobs: *warmup, Preempt: *preempt, Unfit: uf,
			Checkpoint: replay.Checkpoint{Interval: int64(*ckpt), Restart: int64(*restart)}}
		if cmd.Flags().Changed("preemptible") && !*preempt {
			return usageErr("--preemptible needs --preempt")
		}
		if *preempt {
			// A trace says nothing of which jobs may be evicted: the rule
			// does, for the trace's jobs (a snapshot's keep their own).
			if cfg.Victims, err = replay.ParseVictims(*victims); err != nil {
				return usageErr("--preemptible: %v", err)
			}
		}
		if *warmup < 0 {
			return usageErr("--warmup-jobs: must not be negative")
		}
		if *wait != "" {
			wp, err := replay.ParseWait(*wait)
			if err != nil {
				return usageErr("--cloud-wait: %v", err)
			}
			if q == replay.QueueBackfill || *preempt {
				return usageErr("--cloud-wait: the burst method runs a fifo or fifo-skip queue without preemption")
			}
			cfg.Burst = &replay.Burst{Wait: wp}
		}
		if !*scale && (cmd.Flags().Changed("idle-release") || cmd.Flags().Changed("spot-reclaim")) {
			return usageErr("--idle-release and --spot-reclaim need --scale")
		}
		if *scale {
			if cfg.Burst != nil {
				return usageErr("--scale and --cloud-wait exclude each other: the burst method's cloud is unlimited")
			}
			cfg.Scale = &replay.Scale{IdleRelease: max(int64(*idleRelease), 1), SpotReclaim: int64(*spotReclaim)}
		}
		f, err := traces.ParseFormat(*format)
		if err != nil {
			return usageErr("--format: %v", err)
		}
		var start *replay.Start
		if *snapshotPath != "" {
			if start, err = readStart(cmd, *snapshotPath, *snapshotAt, int64(*defDur)); err != nil {
				return err
			}
			cfg.Pools, cfg.Nodes, cfg.Tenants, cfg.Jobs = start.Pools, start.Nodes, start.Tenants, start.Jobs
		} else if cfg.Pools, cfg.Nodes, _, err = readFleetArg(cmd, *fleetPath); err != nil {
			return err
		}
		topts := traces.Options{Format: f, Strict: *strict}
		var stream *streamedTrace
		if *tracePath != "" && start == nil && cfg.Burst == nil && *series == "" && *reportPath == "" {
			// Nothing of the run needs the whole workload at once: the trace
			// streams, if a first read finds it fit to (readStreamed).
			if stream, err = readStreamed(*tracePath, topts, int64(*defDur)); err != nil {
				return err
			}
		}
		if stream != nil {
			defer stream.close()
			cfg.Source, cfg.NoRecords = stream.src, true
		} else if *tracePath != "" {
			jobs, err := readReplayJobs(cmd, *tracePath, topts, int64(*defDur))
			if err != nil {
				return err
			}
			if start != nil {
				shiftJobs(jobs, start.At)
			}
			cfg.Jobs = append(cfg.Jobs, jobs...)
		}
		if len(cfg.Jobs) == 0 && stream == nil {
			return fmt.Errorf("--from-snapshot %s: no live job and no --trace: nothing to replay", *snapshotPath)
		}
		if *horizon > 0 {
			var first int64
			if stream != nil {
				first = stream.first
			} else {
				first = cfg.Jobs[0].Submit
				for _, j := range cfg.Jobs {
					first = min(first, j.Submit)
				}
			}
			cfg.Horizon = first + int64(*horizon)
		}
		if *series != "" || *reportPath != "" {
			cfg.SeriesStep = int64(*seriesStep)
		}
		var ev *eventLog
		if *events != "" {
			if ev, err = newEventLog(*events); err != nil {
				return err
			}
			cfg.Observe = ev.write
		}
		if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) && out != "json" {
			total := len(cfg.Jobs)
			if stream != nil {
				total = stream.jobs
			}
			bar := progressbar.NewOptions(total,
				progressbar.OptionSetWriter(f),
				progressbar.OptionSetDescription("sim run: jobs arrived"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish())
			cfg.Progress = func(arrived, _ int) { _ = bar.Set(arrived) }
			defer func() { _ = bar.Finish() }()
		}
		res, err := replay.Run(cmd.Context(), cfg)
		if ev != nil {
			if cerr := ev.close(); err == nil {
				err = cerr
			}
		}
		if ue := (*replay.UnfitError)(nil); errors.As(err, &ue) {
			return fmt.Errorf("%w; --unfit skip leaves such jobs out of the replay and counts them", err)
		}
		if err != nil {
			return err
		}
		if *series != "" {
			if err := writeSeriesCSV(*series, res.Series); err != nil {
				return err
			}
		}
		if *reportPath != "" {
			fleet := *fleetPath
			if fleet == "" {
				fleet = "the embedded demo fleet"
			}
			notes := []string{fmt.Sprintf("fleet %s, trace %s (%d jobs)", fleet, *tracePath, len(cfg.Jobs)),
				fmt.Sprintf("policy %s, queue %s, seed %d, warm-up jobs %d", *policy, *queue, *seed, *warmup)}
			if *wait != "" {
				notes = append(notes, "burst to cloud, waiting budget "+*wait)
			}
			r := report.Report{Title: "petite sim run", Notes: notes, Runs: []report.Run{{Label: *policy, Policy: *policy, Result: res}}}
			if err := writeHTMLReport(*reportPath, r); err != nil {
				return err
			}
		}
		if out == "json" {
			return writeJSON(cmd.OutOrStdout(), res.Summary)
		}
		return writeRunText(cmd.OutOrStdout(), &res.Summary)
	}
	return cmd
}

// runScenario runs a scenario as compiled, then with and without each of
// its retire, drain and move actions, and prints the run's summary and the
// impacts.
// scenarioOutputs are the files a scenario run writes besides its summary.
type scenarioOutputs struct {
	events, series, report string
	step                   int64 // of the series and the report's plots
}

func runScenario(cmd *cobra.Command, path, out string, o scenarioOutputs) error {
	events, reportPath, step := o.events, o.report, o.step
	s, err := loadScenario(cmd, path)
	if err != nil {
		return err
	}
	in, err := s.LoadInputs()
	if err != nil {
		return err
	}
	c, err := s.CompileWith(in, nil)
	if err != nil {
		return err
	}
	cfg := c.Config
	if reportPath != "" || o.series != "" {
		cfg.SeriesStep = step
	}
	var ev *eventLog
	if events != "" {
		if ev, err = newEventLog(events); err != nil {
			return err
		}
		cfg.Observe = ev.write
	}
	res, err := replay.Run(cmd.Context(), cfg)
	if ev != nil {
		if cerr := ev.close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	if o.series != "" {
		if err := writeSeriesCSV(o.series, res.Series); err != nil {
			return err
		}
	}
	ims, err := s.Impacts(cmd.Context(), in)
	if err != nil {
		return err
	}
	if ims == nil {
		ims = []scenario.Impact{} // [] in JSON, not null
	}
	if reportPath != "" {
		title := "Scenario " + s.Spec.Name
		notes := []string{}
		if s.Spec.Description != "" {
			notes = append(notes, s.Spec.Description)
		}
		notes = append(notes, fmt.Sprintf("%s: %d jobs, policy %s, seed %d", path, len(cfg.Jobs), cfg.Policy, cfg.Seed))
		runs := []report.Run{{Label: s.Spec.Name, Policy: cfg.Policy, Result: res}}
		if len(ims) > 0 {
			// Before beside after in every plot: the run without the
			// actions the impacts measure.
			measured := map[int]bool{}
			for _, im := range ims {
				measured[im.Action.Index] = true
			}
			c0, err := s.CompileWith(in, func(i int) bool { return measured[i] })
			if err != nil {
				return err
			}
			cfg0 := c0.Config
			cfg0.SeriesStep = step
			res0, err := replay.Run(cmd.Context(), cfg0)
			if err != nil {
				return fmt.Errorf("%s: run without its actions: %w", path, err)
			}
			runs = append([]report.Run{{Label: "without the actions", Policy: cfg.Policy, Result: res0}}, runs...)
		}
		r := report.Report{Title: title, Notes: notes, Runs: runs, Impacts: ims}
		if err := writeHTMLReport(reportPath, r); err != nil {
			return err
		}
	}
	if out == "json" {
		return writeJSON(cmd.OutOrStdout(), struct {
			Summary replay.Summary    `json:"summary"`
			Impacts []scenario.Impact `json:"impacts"`
		}{res.Summary, ims})
	}
	if err := writeRunText(cmd.OutOrStdout(), &res.Summary); err != nil {
		return err
	}
	if len(ims) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(cmd.OutOrStdout()); err != nil {
		return err
	}
	return scenario.WriteImpacts(cmd.OutOrStdout(), ims)
}

// writeHTMLReport writes the HTML report whole, or nothing when it fails.
func writeHTMLReport(path string, r report.Report) error {
	var buf bytes.Buffer
	if err := report.Write(&buf, r); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := writeFileWhole(path, buf.Bytes()); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

// readStart reads a state snapshot as a replay's start. at is the
// snapshot's instant (RFC 3339 or Unix seconds; empty: the latest time the
// snapshot records).
func readStart(cmd *cobra.Command, path, at string, defDur int64) (*replay.Start, error) {
	var o replay.SnapshotOptions
	o.DefaultDuration = defDur
	if at != "" {
		if ts, err := time.Parse(time.RFC3339, at); err == nil {
			o.At = ts.Unix()
		} else if s, err := strconv.ParseInt(at, 10, 64); err == nil && s > 0 {
			o.At = s
		} else {
			return nil, usageErr("--snapshot-at: want an RFC 3339 time or Unix seconds, got %q", at)
		}
	}
	rc, name, err := openInput(cmd, path)
	if err != nil {
		return nil, fmt.Errorf("--from-snapshot: %w", err)
	}
	defer rc.Close()
	return replay.ReadSnapshot(rc, name, o)
}

// shiftJobs moves a workload on the clock so that its first submission
// falls at t0 (a workload on top of a snapshot arrives from its instant).
func shiftJobs(jobs []replay.Job, t0 int64) {
	if len(jobs) == 0 {
		return
	}
	first := jobs[0].Submit
	for _, j := range jobs {
		first = min(first, j.Submit)
	}
	for i := range jobs {
		jobs[i].Submit += t0 - first
	}
}

// readReplayJobs reads a job trace whole and converts it for the replay.
func readReplayJobs(cmd *cobra.Command, path string, opts traces.Options, defDur int64) ([]replay.Job, error) {
	var r *traces.Reader
	var err error
	name := path
	if path == "-" {
		name = "stdin"
		r, err = traces.NewReader(cmd.InOrStdin(), name, opts)
	} else {
		r, err = traces.Open(path, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	defer r.Close()
	var src []traces.Job
	for j, err := range r.All() {
		if err != nil {
			return nil, err
		}
		src = append(src, j)
	}
	jobs, err := replay.FromTrace(src, name, defDur)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("trace %s: no jobs to replay", name)
	}
	return jobs, nil
}

// streamedTrace is a trace file replayed as it is read (Config.Source):
// the run holds the jobs live at once, not the trace.
type streamedTrace struct {
	src   replay.Source
	r     *traces.Reader
	jobs  int   // the replay's jobs in the trace, counted by the first read
	first int64 // the first one's submit
}

func (s *streamedTrace) close() { _ = s.r.Close() }

// readStreamed reads the trace at path once through the replay's
// conversion, keeping nothing, and opens it again as a stream when that
// read found jobs, in submission order, and no error. Otherwise it returns
// nil and the caller reads the trace whole as before: a trace out of order
// is sorted there, and an error is reported as that read reports it.
// Standard input cannot be read twice, and is never streamed.
func readStreamed(path string, opts traces.Options, defDur int64) (*streamedTrace, error) {
	if path == "-" {
		return nil, nil
	}
	r, err := traces.Open(path, opts)
	if err != nil {
		return nil, nil // reported by the whole read
	}
	src := replay.TraceSource(r.Next, path, defDur)
	st := &streamedTrace{}
	last := int64(math.MinInt64)
	for {
		j, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || j.Submit < last {
			_ = r.Close()
			return nil, nil
		}
		if st.jobs == 0 {
			st.first = j.Submit
		}
		last = j.Submit
		st.jobs++
	}
	_ = r.Close()
	if st.jobs == 0 {
		return nil, nil
	}
	if st.r, err = traces.Open(path, opts); err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	st.src = replay.TraceSource(st.r.Next, path, defDur)
	streamedRuns++
	return st, nil
}

// streamedRuns counts the runs whose trace streamed (for tests).
var streamedRuns int

// eventLog writes events as JSON Lines, remembering the first write error.
type eventLog struct {
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

func newEventLog(path string) (*eventLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--events: %w", err)
	}
	w := bufio.NewWriter(f)
	return &eventLog{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

func (l *eventLog) write(e replay.Event) {
	if l.err == nil {
		l.err = l.enc.Encode(e)
	}
}

func (l *eventLog) close() error {
	err := l.err
	if ferr := l.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--events: write %s: %w", l.f.Name(), err)
	}
	return nil
}

// writeSeriesCSV writes a run's series: one row per sample, the time in
// seconds first.
func writeSeriesCSV(path string, s *replay.Series) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--series: %w", err)
	}
	w := csv.NewWriter(f) // buffered by csv itself
	head := []string{"t_s"}
	for _, p := range s.Pools {
		head = append(head, "allocated_gpus:"+p)
	}
	for _, p := range s.Pools {
		head = append(head, "stranded_gpus:"+p)
	}
	head = append(head, "cloud_gpus", "pending_gpus", "running_jobs", "queued_jobs", "spend_per_hour")
	_ = w.Write(head)
	num := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	for _, sm := range s.Samples {
		row := []string{num(float64(sm.At) / float64(replay.Second))}
		for _, a := range sm.Allocated {
			row = append(row, num(a))
		}
		for _, a := range sm.Stranded {
			row = append(row, num(a))
		}
		row = append(row, num(sm.Cloud), num(sm.Pending), strconv.Itoa(sm.Running), strconv.Itoa(sm.Queued), num(sm.SpendPerHour))
		_ = w.Write(row)
	}
	w.Flush()
	err = w.Error()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--series: write %s: %w", path, err)
	}
	return nil
}

// writeRunText prints the summary as a two-column table.
func writeRunText(w io.Writer, s *replay.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := []struct {
		k string
		v any
	}{
		{"measured jobs", s.Jobs},
		{"window (h)", fmt.Sprintf("%.4f .. %.4f (%.4f)", s.WindowStartH, s.WindowEndH, s.WindowH)},
		{"cloud jobs", s.CloudJobs},
		{"cloud cost", fmt.Sprintf("%.4f", s.CloudCost)},
		{"cloud cost per hour", fmt.Sprintf("%.4f", s.AvgCloudCost)},
		{"wait (h): mean p50 p90 p99", fmt.Sprintf("%.4f %.4f %.4f %.4f", s.WaitH.Mean, s.WaitH.P50, s.WaitH.P90, s.WaitH.P99)},
		{"JCT (h): mean p50 p90 p99", fmt.Sprintf("%.4f %.4f %.4f %.4f", s.JCTH.Mean, s.JCTH.P50, s.JCTH.P90, s.JCTH.P99)},
		{"cluster utilization", fmt.Sprintf("%.4f", s.ClusterUtilization)},
		{"system utilization", fmt.Sprintf("%.4f", s.SystemUtilization)},
		{"preemptions, restarts", fmt.Sprintf("%d, %d", s.Preemptions, s.Restarts)},
		{"GPU-hours (lost)", fmt.Sprintf("%.2f (%.2f)", s.GPUHours, s.LostGPUHours)},
		{"makespan (h)", fmt.Sprintf("%.4f", s.MakespanH)},
		{"jobs: ended running queued cloud future", fmt.Sprintf("%d %d %d %d %d", s.Ended, s.Running, s.Queued, s.InCloud, s.Future)},
	}
	for _, p := range slices.Sorted(maps.Keys(s.Scaling)) {
		a := s.Scaling[p]
		rows = append(rows, struct {
			k string
			v any
		}{"cloud bill " + p + ": total used idle", fmt.Sprintf("%.4f %.4f %.4f (peak %d nodes, %d asked for, %d released, %d reclaimed)",
			a.NodeCost, a.UsedCost, a.IdleCost, a.PeakNodes, a.Provisioned, a.Released, a.Reclaimed)})
	}
	if s.Unfit > 0 {
		rows = append(rows, struct {
			k string
			v any
		}{"unfit jobs left out (--unfit skip)", s.Unfit})
		for _, u := range s.UnfitJobs {
			rows = append(rows, struct {
				k string
				v any
			}{"  unfit job", u.Where + ": " + u.Reason})
		}
		if more := s.Unfit - len(s.UnfitJobs); more > 0 {
			rows = append(rows, struct {
				k string
				v any
			}{"  unfit job", fmt.Sprintf("… and %d more", more)})
		}
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(tw, "%s\t%v\n", r.k, r.v); err != nil {
			return err
		}
	}
	return tw.Flush()
}
