package forecast

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces"
)

func job(id string, submit, duration int64, gpus int, milli int64) traces.Job {
	return traces.Job{ID: id, Submit: submit, Start: traces.NoTime, End: traces.NoTime, Duration: duration,
		Tasks: []traces.Task{{Count: 1, GPUs: gpus, GPUMilli: milli}}}
}

func TestDemandFromJobs(t *testing.T) {
	jobs := []traces.Job{
		job("a", 0, 1800, 2, 1000),             // 2 GPUs for 00:00–00:30
		job("b", 600, 600, 1, 500),             // half a GPU for 00:10–00:20
		job("c", 1800, 3600, 4, 1000),          // 4 GPUs from 00:30, ends after the last submission
		job("d", 2400, traces.NoTime, 1, 1000), // open-ended from 00:40: to the end
		job("cpu", 100, 100, 0, 0),             // no GPU: skipped
	}
	meta := traces.Meta{Clock: traces.ClockRelative}
	origin := time.Unix(0, 0).UTC()
	for _, tc := range []struct {
		agg  Agg
		want []float64
	}{
		// Steps of 20 minutes: 00:00, 00:20, 00:40 (the last submission's).
		{AggMax, []float64{2.5, 6, 5}},
		{AggMean, []float64{2 + 0.5*0.5, (2*10 + 4*10) / 20.0, 5}},
	} {
		d, err := DemandFromJobs(jobs, meta, origin, 20*time.Minute, tc.agg)
		require.NoError(t, err)
		assert.Equal(t, 4, d.Jobs)
		assert.Equal(t, 1, d.Open)
		assert.Equal(t, 1, d.Skipped)
		assert.Equal(t, origin, d.Series.Start)
		require.Len(t, d.Series.Values, len(tc.want), tc.agg)
		for i, w := range tc.want {
			assert.InDelta(t, w, d.Series.Values[i], 1e-9, "%s step %d", tc.agg, i)
		}
	}

	// On a Unix clock the times are read on the trace zone's wall clock:
	// a job at 08:00 UTC is at midnight in Los Angeles (PST).
	t0 := time.Date(2017, 12, 1, 8, 0, 0, 0, time.UTC).Unix()
	d, err := DemandFromJobs([]traces.Job{job("x", t0, 3600, 1, 1000)},
		traces.Meta{Clock: traces.ClockUnix, Zone: "America/Los_Angeles"}, origin, time.Hour, AggMax)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2017, 12, 1, 0, 0, 0, 0, time.UTC), d.Series.Start)

	_, err = DemandFromJobs([]traces.Job{job("cpu", 0, 10, 0, 0)}, meta, origin, time.Hour, AggMax)
	assert.ErrorContains(t, err, "no job asks for GPUs")
	_, err = DemandFromJobs(jobs, meta, origin, 0, AggMax)
	assert.Error(t, err)
}

// A trace's demand forecasts like any series: the shipped openb sample.
func TestDemandForecastDeterministic(t *testing.T) {
	r, err := traces.Open("../../traces/samples/openb_pod_list_default.csv", traces.Options{})
	require.NoError(t, err)
	defer r.Close()
	var jobs []traces.Job
	for j, err := range r.All() {
		require.NoError(t, err)
		jobs = append(jobs, j)
	}
	var first []Step
	for range 2 {
		d, err := DemandFromJobs(jobs, r.Meta(), time.Unix(0, 0).UTC(), time.Hour, AggMax)
		require.NoError(t, err)
		for _, v := range d.Series.Values {
			require.False(t, math.IsNaN(v) || v < 0)
		}
		res, err := Forecast(d.Series, d.Series.At(len(d.Series.Values)), 48, DefaultConfig())
		require.NoError(t, err)
		if first == nil {
			first = res.Steps
			continue
		}
		assert.Equal(t, first, res.Steps)
	}
}

// The interval holds the point forecast even where every past error had
// one sign (here one past cutoff, which overshot): the figure to size to
// is never below the point peak.
func TestIntervalHoldsPointForecast(t *testing.T) {
	r, err := traces.Open("../../traces/testdata/helios/cluster_log.csv", traces.Options{})
	require.NoError(t, err)
	defer r.Close()
	var jobs []traces.Job
	for j, err := range r.All() {
		require.NoError(t, err)
		jobs = append(jobs, j)
	}
	d, err := DemandFromJobs(jobs, r.Meta(), time.Unix(0, 0).UTC(), time.Hour, AggMean)
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Outage = 0 // as the command runs a trace
	res, err := Forecast(d.Series, d.Series.At(len(d.Series.Values)), 24, cfg)
	require.NoError(t, err)
	for _, st := range res.Steps {
		assert.LessOrEqual(t, st.Lo, st.Value, "%v", st.T)
		assert.LessOrEqual(t, st.Value, st.Hi, "%v", st.T)
	}
	assert.GreaterOrEqual(t, res.Peak, res.PointPeak)
}
