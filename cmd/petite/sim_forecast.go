package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petite/simulator/forecast"
	"petite/traces"
)

// forecastSample is the shipped slice of Philly's active-node series the
// examples use.
const forecastSample = "simulator/forecast/testdata/philly_node_sequence_3w.csv"

// simForecastCommand is `petite sim forecast`: fit demand, project it with
// intervals, and backtest the projection where the data goes on.
func simForecastCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "forecast",
		Short: "Forecast demand (trend, daily and weekly seasonality) with intervals and a backtest.",
		Long: `
Fits a demand series, a CSV of a time column and a value column (--series),
or the GPU demand of a job trace (--trace: what the jobs asked for from
submission for their duration), on the data before --train-until, and
projects it --horizon ahead in steps of --step, with a prediction interval
from the model's own errors at each lead (docs/forecast.md has the method).
Zone-less times are read as UTC. Steps without data are gaps; values below
--outage-below times the local level are logging outages and are left out.

The text output ends with the figure to size to: the highest upper bound of
the interval over the horizon, not the mean. Where the data goes on past
--train-until it also prints a backtest: MAE, RMSE, sMAPE and MASE of the
model and of the seasonal-naive forecasts (the same step a day and a week
before). --json prints {"points":[{"t":...,"value":...},...]}, one point
per step from the cutoff on; -o csv the points with their interval.`,
		Example: examples(
			"# fit two weeks of Philly's busy nodes, forecast the third, and backtest it",
			"petite sim forecast --series "+forecastSample+" --column active --train-until 2017-11-06T00:00:00Z --horizon 7d",
			"# the forecast as JSON points, hourly for a day",
			"petite sim forecast --series "+forecastSample+" --train-until 2017-11-06T00:00:00Z --horizon 1d --step 1h --json",
			"# the same from standard input, with the interval, as CSV",
			"petite sim forecast --series - --train-until 2017-11-06T00:00:00Z --horizon 6h -o csv < "+forecastSample,
			"# GPU demand of a job trace, forecast two weeks past its last submission",
			"petite sim forecast --trace traces/samples/openb_pod_list_default.csv --horizon 14d --step 1h",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	series := fs.String("series", "", "demand series CSV with a header ('-' for standard input)")
	column := fs.String("column", "", "value column of --series (default: the first after the time column)")
	timeColumn := fs.String("time-column", "", "time column of --series (default: time, timestamp, datetime, date, ts or t, else the first)")
	trace := fs.String("trace", "", "job trace of any format petite reads ('-' for standard input): its GPU demand")
	format := fs.String("format", "auto", "format of --trace: auto or "+formatNames(traces.JobFormats))
	strict := fs.Bool("strict", false, "stop at the first bad record of --trace instead of skipping it")
	trainUntil := fs.String("train-until", "", "cutoff: fit the data before it, forecast from it (RFC 3339 or zone-less UTC; default: the end of the data)")
	horizon := fs.String("horizon", "14d", "how far to forecast (Go duration, or days/weeks: 14d, 2w)")
	stepFlag := fs.String("step", "10m", "step of the forecast; the data is resampled to it")
	aggFlag := fs.String("agg", "mean", "how a step's data becomes its value: mean or max (the step's peak)")
	level := fs.Float64("level", 0.9, "coverage of the prediction interval")
	outage := fs.Float64("outage-below", 0.05, "--series values below this fraction of the local level are outages (0: none)")
	output := addOutputFlag(fs, "table", "json", "csv")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out, err := output.format()
		if err != nil {
			return err
		}
		if (*series == "") == (*trace == "") {
			return usageErr("give one of --series and --trace")
		}
		step, err := forecast.ParseSpan(*stepFlag)
		if err != nil || step < time.Second {
			return usageErr("--step: want at least 1s, got %q", *stepFlag)
		}
		span, err := forecast.ParseSpan(*horizon)
		if err != nil || span < step {
			return usageErr("--horizon: want at least one --step, got %q", *horizon)
		}
		if span%step != 0 {
			return usageErr("--horizon %s is not a whole number of --step %s", *horizon, *stepFlag)
		}
		agg, err := forecast.ParseAgg(*aggFlag)
		if err != nil {
			return usageErr("--agg: %v", err)
		}
		cfg := forecast.DefaultConfig()
		cfg.Level, cfg.Outage = *level, *outage
		if *trace != "" && !cmd.Flags().Changed("outage-below") {
			cfg.Outage = 0 // a trace's demand has no logging outages
		}
		if err := cfg.Check(); err != nil {
			return usageErr("%v", err)
		}
		var cutoff time.Time
		if *trainUntil != "" {
			if cutoff, err = forecast.ParseTime(*trainUntil); err != nil {
				return usageErr("--train-until: %v", err)
			}
		}
		var s *forecast.Series
		var what string
		if *series != "" {
			s, what, err = forecastSeries(cmd, *series, *timeColumn, *column, cutoff, step, agg)
		} else {
			s, what, err = forecastTrace(cmd, *trace, *format, *strict, cutoff, step, agg)
		}
		if err != nil {
			return err
		}
		if cutoff.IsZero() {
			cutoff = s.At(len(s.Values))
		}
		r, err := forecast.Forecast(s, cutoff, int(span/step), cfg)
		if err != nil {
			return err
		}
		stdout := cmd.OutOrStdout()
		switch out {
		case "json":
			return writeForecastJSON(stdout, r)
		case "csv":
			return writeForecastCSV(stdout, r)
		}
		var bt *forecast.Backtest
		if s.Index(cutoff) < len(s.Values) {
			if bt, err = forecast.RunBacktest(s, r, cfg.Outage); err != nil {
				bt = nil // nothing after the cutoff holds demand: no backtest to print
			}
		}
		return forecast.WriteText(stdout, what, r, bt)
	}
	return cmd
}

// forecastSeries reads --series and puts it on the grid through cutoff
// (or its first point).
func forecastSeries(cmd *cobra.Command, path, timeCol, col string, cutoff time.Time, step time.Duration, agg forecast.Agg) (*forecast.Series, string, error) {
	rc, name, err := openInput(cmd, path)
	if err != nil {
		return nil, "", fmt.Errorf("--series: %w", err)
	}
	defer rc.Close()
	raw, err := forecast.ReadCSV(rc, name, forecast.ReadOptions{TimeColumn: timeCol, Column: col})
	if err != nil {
		return nil, "", err
	}
	anchor := cutoff
	if anchor.IsZero() {
		anchor = raw.Points[0].T
	}
	s, err := forecast.Resample(raw.Points, anchor, step, agg)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	return s, fmt.Sprintf("%s in %s, %s per %s", raw.Column, name, agg, forecast.FormatSpan(step)), nil
}

// forecastTrace reads --trace and turns its jobs into GPU demand.
func forecastTrace(cmd *cobra.Command, path, format string, strict bool, cutoff time.Time, step time.Duration, agg forecast.Agg) (*forecast.Series, string, error) {
	f, err := traces.ParseFormat(format)
	if err != nil {
		return nil, "", usageErr("--format: %v", err)
	}
	opts := traces.Options{Format: f, Strict: strict}
	var r *traces.Reader
	name := path
	if path == "-" {
		name = "stdin"
		r, err = traces.NewReader(cmd.InOrStdin(), name, opts)
	} else {
		r, err = traces.Open(path, opts)
	}
	if err != nil {
		return nil, "", fmt.Errorf("--trace: %w", err)
	}
	defer r.Close()
	var jobs []traces.Job
	for j, err := range r.All() {
		if err != nil {
			return nil, "", err
		}
		jobs = append(jobs, j)
	}
	anchor := cutoff
	if anchor.IsZero() {
		anchor = time.Unix(0, 0).UTC()
	}
	d, err := forecast.DemandFromJobs(jobs, r.Meta(), anchor, step, agg)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	what := fmt.Sprintf("GPUs asked for in %s (%s, %d jobs with GPUs, %d of them open-ended; %d bad records skipped), %s per %s",
		name, r.Meta().Format, d.Jobs, d.Open, r.Problems().Skipped, agg, forecast.FormatSpan(step))
	return d.Series, what, nil
}

func formatNames(fs []traces.Format) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// forecastPoint is one point of --json: the form other tools read.
type forecastPoint struct {
	T     string  `json:"t"`
	Value float64 `json:"value"`
}

func writeForecastJSON(w io.Writer, r *forecast.Result) error {
	pts := make([]forecastPoint, len(r.Steps))
	for i, s := range r.Steps {
		pts[i] = forecastPoint{T: s.T.UTC().Format(time.RFC3339), Value: round3(s.Value)}
	}
	b, err := json.Marshal(struct {
		Points []forecastPoint `json:"points"`
	}{pts})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func writeForecastCSV(w io.Writer, r *forecast.Result) error {
	if _, err := fmt.Fprintln(w, "t,value,lo,hi"); err != nil {
		return err
	}
	for _, s := range r.Steps {
		if _, err := fmt.Fprintf(w, "%s,%g,%g,%g\n", s.T.UTC().Format(time.RFC3339), round3(s.Value), round3(s.Lo), round3(s.Hi)); err != nil {
			return err
		}
	}
	return nil
}

// round3 keeps three decimals: a thousandth of a node or GPU is below any
// use, and short numbers read better.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
