package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petite/scheduler"
	"petite/simulator/forecast"
	"petite/simulator/frag"
	"petite/simulator/replay"
	"petite/traces"
)

// simSizeCommand is `petite sim size`: the smallest addition to a fleet
// that keeps a queueing-delay SLO under the forecast's peak demand.
func simSizeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "size",
		Short: "Find the smallest addition (nodes of a pool and GPU model, or a cloud quota) that keeps a wait SLO under forecast demand.",
		Long: `
Replays --trace over --fleet plus a growing number of nodes cloned from a
pool's node of a GPU model (--add POOL:MODEL), or a growing max_nodes of a
cloud pool with pool scaling (--quota POOL), and finds the smallest count
whose runs keep --slo (e.g. p95-wait<=10m: the 95th percentile of
queueing delay over the jobs; a job that never starts breaks it) in every
seed of --seed. The workload is first scaled to the forecast's peak: the
trace's GPU demand is forecast --horizon ahead (docs/forecast.md) and every
job is replayed (highest upper bound of the interval) / (highest demand of
the trace) times, drawn from the first seed; --growth sets that factor
instead (1: the trace as it is).

The search brackets (0, then 1, 2, 4, ... up to --max), then narrows the
bracket by k-section, --k counts a round, each round's replays in parallel
(--parallel). It prints the answer, the curve of every count replayed, and
the two runs that bracket it (answer−1 fails, answer holds); --json prints
it as one object. The output does not depend on --parallel.`,
		Example: examples(
			"# how many more nodes like the owned ones keep p95 wait under 5 min, for the trace half again as busy",
			"petite sim size --fleet simulator/replay/testdata/burst-fleet.yaml --trace simulator/replay/testdata/section7.csv --add onprem:V100M32 --slo 'p95-wait<=5m' --growth 1.5 --seed 42-44",
			"# sized to the forecast's peak (a day ahead, hourly) of the openb sample's demand, as JSON",
			"petite sim size --fleet traces/samples/openb_node_list_gpu_node.csv --trace traces/samples/openb_pod_list_default.csv --default-duration 1h --add default:T4 --slo 'p99-wait<=10m' --step 1h --horizon 1d --json",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	fleetPath := fs.String("fleet", "", "fleet YAML or machine list (default: the embedded demo fleet)")
	tracePath := fs.String("trace", "", "job trace in any format the trace readers take ('-' for standard input)")
	format := fs.String("format", "auto", "format of --trace (auto sniffs it)")
	strict := fs.Bool("strict", false, "a bad trace record ends the run (default: skipped and counted)")
	defDur := fs.Duration("default-duration", 0, "duration of a job whose trace gives none (0: such a job is an error)")
	policy := fs.String("policy", "best-fit", "placement policy: "+fmt.Sprint(scheduler.PolicyNames()))
	queue := fs.String("queue", "backfill", "queue discipline: fifo, fifo-skip or backfill")
	add := fs.String("add", "", "the axis: add nodes cloned from POOL's first node of GPU MODEL (POOL:MODEL, or POOL for its first node)")
	quota := fs.String("quota", "", "the axis: grow this cloud pool's max_nodes, with pool scaling on")
	sloFlag := fs.String("slo", "", "the SLO: pQ-wait<=DURATION, e.g. p95-wait<=10m")
	seeds := fs.String("seed", "42", "seeds of the runs: a, a-b, or a comma list; a count holds when every seed does")
	maxN := fs.Int("max", 64, "the largest count tried")
	k := fs.Int("k", 3, "counts replayed per round of the search")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "replays at a time")
	growth := fs.Float64("growth", 0, "scale the workload by this factor instead of the forecast's (0: from the forecast)")
	horizon := fs.String("horizon", "14d", "how far ahead the demand is forecast")
	stepFlag := fs.String("step", "1h", "step of the demand series and its forecast")
	level := fs.Float64("level", 0.9, "coverage of the forecast's interval; its upper bound is sized to")
	output := addOutputFlag(fs, "text", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out, err := output.format()
		if err != nil {
			return err
		}
		if *tracePath == "" {
			return usageErr("--trace: a job trace is required")
		}
		if (*add == "") == (*quota == "") {
			return usageErr("give one of --add POOL:MODEL and --quota POOL")
		}
		slo, err := forecast.ParseSLO(*sloFlag)
		if err != nil {
			return usageErr("--slo: %v", err)
		}
		ss, err := frag.ParseSeeds(*seeds)
		if err != nil {
			return usageErr("--seed: %v", err)
		}
		if *maxN < 1 || *k < 1 || *parallel < 1 || *growth < 0 {
			return usageErr("--max, --k and --parallel must be at least 1, --growth not negative")
		}
		q, err := replay.ParseQueue(*queue)
		if err != nil {
			return usageErr("--queue: %v", err)
		}
		axis := forecast.Addition{Pool: *quota, Quota: *quota != ""}
		if *add != "" {
			axis.Pool, axis.GPUModel, _ = strings.Cut(*add, ":")
		}
		f, err := traces.ParseFormat(*format)
		if err != nil {
			return usageErr("--format: %v", err)
		}
		pools, nodes, _, err := readFleetArg(cmd, *fleetPath)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(pools, func(p scheduler.Pool) bool { return p.Name == axis.Pool }) {
			names := make([]string, len(pools))
			for i, p := range pools {
				names[i] = p.Name
			}
			return fmt.Errorf("--add/--quota: the fleet has no pool %q (it has %s)", axis.Pool, strings.Join(names, ", "))
		}
		src, meta, name, err := readTraceJobs(cmd, *tracePath, traces.Options{Format: f, Strict: *strict})
		if err != nil {
			return err
		}
		jobs, err := replay.FromTrace(src, name, int64(*defDur))
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			return fmt.Errorf("trace %s: no jobs to replay", name)
		}
		g := sizeGrowth{Factor: *growth, From: "--growth"}
		if *growth == 0 {
			if g, err = forecastGrowth(src, meta, name, *horizon, *stepFlag, *level); err != nil {
				return err
			}
		}
		projected, err := forecast.Project(jobs, g.Factor, rand.New(rand.NewPCG(ss[0], ss[0]^0x9e3779b97f4a7c15)))
		if err != nil {
			return err
		}
		rp := &forecast.FleetReplayer{Base: replay.Config{Pools: pools, Nodes: nodes, Jobs: projected, Policy: *policy, Queue: q}}
		sz, err := forecast.Size(cmd.Context(), rp, axis, slo, ss, forecast.SizeOptions{Max: *maxN, K: *k, Workers: *parallel})
		if sz == nil {
			return err
		}
		res := sizeOutput{Sizing: sz, Growth: g, Jobs: len(projected), TraceJobs: len(jobs), Seeds: ss}
		if out == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetEscapeHTML(false) // the SLO reads p95-wait<=10m0s
			if werr := enc.Encode(res.json()); werr != nil {
				return werr
			}
			return err
		}
		if werr := res.text(cmd.OutOrStdout()); werr != nil {
			return werr
		}
		return err
	}
	return cmd
}

// sizeGrowth is the factor the workload was scaled by, and where it came
// from.
type sizeGrowth struct {
	Factor      float64 `json:"factor"`
	From        string  `json:"from"`
	Peak        float64 `json:"forecast_peak,omitempty"`
	HistoryPeak float64 `json:"history_peak,omitempty"`
	Level       float64 `json:"level,omitempty"`
}

// forecastGrowth fits the trace's GPU demand and returns the factor that
// sizes the workload to the forecast's peak upper bound.
func forecastGrowth(src []traces.Job, meta traces.Meta, name, horizon, stepFlag string, level float64) (sizeGrowth, error) {
	step, err := forecast.ParseSpan(stepFlag)
	if err != nil || step < time.Second {
		return sizeGrowth{}, usageErr("--step: want at least 1s, got %q", stepFlag)
	}
	span, err := forecast.ParseSpan(horizon)
	if err != nil || span < step || span%step != 0 {
		return sizeGrowth{}, usageErr("--horizon: want a whole number of --step, got %q", horizon)
	}
	d, err := forecast.DemandFromJobs(src, meta, time.Unix(0, 0).UTC(), step, forecast.AggMean)
	if err != nil {
		return sizeGrowth{}, fmt.Errorf("%s: %w", name, err)
	}
	cfg := forecast.DefaultConfig()
	cfg.Level, cfg.Outage = level, 0
	if err := cfg.Check(); err != nil {
		return sizeGrowth{}, usageErr("%v", err)
	}
	r, err := forecast.Forecast(d.Series, d.Series.At(len(d.Series.Values)), int(span/step), cfg)
	if err != nil {
		return sizeGrowth{}, fmt.Errorf("%s: forecasting its demand: %w (--growth sets the factor without a forecast)", name, err)
	}
	g, err := forecast.Growth(d.Series, r)
	if err != nil {
		return sizeGrowth{}, fmt.Errorf("%s: %w", name, err)
	}
	return sizeGrowth{Factor: g, From: "forecast", Peak: r.Peak, HistoryPeak: r.Peak / g, Level: level}, nil
}

// readTraceJobs reads a whole trace.
func readTraceJobs(cmd *cobra.Command, path string, opts traces.Options) ([]traces.Job, traces.Meta, string, error) {
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
		return nil, traces.Meta{}, name, fmt.Errorf("--trace: %w", err)
	}
	defer r.Close()
	var src []traces.Job
	for j, err := range r.All() {
		if err != nil {
			return nil, traces.Meta{}, name, err
		}
		src = append(src, j)
	}
	return src, r.Meta(), name, nil
}

// sizeOutput is what sim size prints.
type sizeOutput struct {
	*forecast.Sizing
	Growth          sizeGrowth
	Jobs, TraceJobs int
	Seeds           []uint64
}

// sizeCurveJSON is one count of the curve in --json: delays in seconds,
// null where some job never started.
type sizeCurveJSON struct {
	Count  int        `json:"count"`
	DelayS []*float64 `json:"delay_s"`
	Pass   bool       `json:"pass"`
	Round  int        `json:"round"`
}

func (o *sizeOutput) json() any {
	curve := make([]sizeCurveJSON, len(o.Curve))
	for i, p := range o.Curve {
		c := sizeCurveJSON{Count: p.Count, Pass: p.Pass, Round: p.Round}
		for _, d := range p.Delay {
			if forecast.FmtWait(d) == "never" {
				c.DelayS = append(c.DelayS, nil)
				continue
			}
			s := d.Seconds()
			c.DelayS = append(c.DelayS, &s)
		}
		curve[i] = c
	}
	var fail, pass *replay.Summary
	if o.Fail != nil {
		fail = &o.Fail.Summary
	}
	if o.Pass != nil {
		pass = &o.Pass.Summary
	}
	answer := any(nil)
	if o.Answer >= 0 {
		a := o.Axis
		a.Count = o.Answer
		answer = a
	}
	return struct {
		SLO         string          `json:"slo"`
		Axis        string          `json:"axis"`
		Answer      int             `json:"answer"`
		Addition    any             `json:"addition"`
		Growth      sizeGrowth      `json:"growth"`
		TraceJobs   int             `json:"trace_jobs"`
		Jobs        int             `json:"jobs"`
		Seeds       []uint64        `json:"seeds"`
		Runs        int             `json:"runs"`
		Curve       []sizeCurveJSON `json:"curve"`
		NonMonotone []int           `json:"non_monotone,omitempty"`
		Fail        *replay.Summary `json:"fail"`
		Pass        *replay.Summary `json:"pass"`
	}{o.SLO.String(), axisName(o.Axis), o.Answer, answer, o.Growth, o.TraceJobs, o.Jobs, o.Seeds, o.Runs, curve, o.NonMonotone, fail, pass}
}

func axisName(a forecast.Addition) string {
	switch {
	case a.Quota:
		return "quota " + a.Pool
	case a.GPUModel != "":
		return a.Pool + ":" + a.GPUModel
	}
	return a.Pool
}

func (o *sizeOutput) text(w io.Writer) error {
	fmt.Fprintf(w, "size %s for %s, seeds %v\n", axisName(o.Axis), o.SLO, o.Seeds)
	if o.Growth.From == "forecast" {
		fmt.Fprintf(w, "demand ×%.3f: the forecast's %g%% upper peak %.1f GPUs over the trace's peak %.1f (%d jobs replayed for %d)\n",
			o.Growth.Factor, o.Growth.Level*100, o.Growth.Peak, o.Growth.HistoryPeak, o.Jobs, o.TraceJobs)
	} else {
		fmt.Fprintf(w, "demand ×%g (--growth): %d jobs replayed for %d\n", o.Growth.Factor, o.Jobs, o.TraceJobs)
	}
	unit := "nodes"
	if o.Axis.Quota {
		unit = "nodes of quota"
	}
	if o.Answer >= 0 {
		fmt.Fprintf(w, "answer: +%d %s\n", o.Answer, unit)
	} else {
		fmt.Fprintf(w, "answer: none up to the maximum\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "COUNT\tp%g WAIT (PER SEED)\tHOLDS\tROUND\n", o.SLO.Quantile*100)
	for _, p := range o.Curve {
		ds := make([]string, len(p.Delay))
		for i, d := range p.Delay {
			ds[i] = forecast.FmtWait(d)
		}
		holds := "no"
		if p.Pass {
			holds = "yes"
		}
		fmt.Fprintf(tw, "+%d\t%s\t%s\t%d\n", p.Count, strings.Join(ds, ", "), holds, p.Round)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, b := range []struct {
		what string
		r    *replay.Result
		n    int
	}{{"fails", o.Fail, o.Answer - 1}, {"holds", o.Pass, o.Answer}} {
		if b.r == nil || o.Answer < 0 {
			continue
		}
		s := &b.r.Summary
		fmt.Fprintf(w, "bracket: +%d %s (first seed: wait p50 %.3f h, p95 %.3f h, p99 %.3f h; JCT mean %.3f h; utilisation %.3f)\n",
			b.n, b.what, s.WaitH.P50, s.WaitH.P95, s.WaitH.P99, s.JCTH.Mean, s.ClusterUtilization)
	}
	if len(o.NonMonotone) > 0 {
		fmt.Fprintf(w, "not monotone: %v hold below a count that fails\n", o.NonMonotone)
	}
	_, err := fmt.Fprintf(w, "runs: %d\n", o.Runs)
	return err
}
