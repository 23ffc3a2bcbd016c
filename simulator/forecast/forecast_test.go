package forecast

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// truth is a known demand: level, trend, a daily and a weekly cycle.
type truth struct {
	level, slope, daily, weekly float64 // slope per day; amplitudes
	start                       time.Time
}

func (g truth) at(t time.Time) float64 {
	days := t.Sub(g.start).Hours() / 24
	sec := float64(t.Unix())
	return g.level + g.slope*days +
		g.daily*math.Sin(2*math.Pi*sec/86400) +
		g.weekly*math.Cos(2*math.Pi*sec/(7*86400))
}

var synth = truth{level: 300, slope: 0.5, daily: 20, weekly: 15, start: utc(2024, 1, 1, 0, 0)}

// synthetic returns weeks of synth in steps of step, with Gaussian noise
// of sd drawn from seed.
func synthetic(weeks int, step time.Duration, sd float64, seed uint64) *Series {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &Series{Start: synth.start, Step: step, Values: make([]float64, int(time.Duration(weeks)*week/step))}
	for i := range s.Values {
		s.Values[i] = synth.at(s.At(i)) + sd*rng.NormFloat64()
	}
	return s
}

// The fit recovers a known trend and seasonality from noisy data.
func TestFitRecoversKnownSeries(t *testing.T) {
	s := synthetic(6, 10*time.Minute, 5, 1)
	m := DefaultModel()
	b := newBasis(s, len(s.Values), m)
	valid := make([]bool, len(s.Values))
	for i := range valid {
		valid[i] = true
	}
	n := len(s.Values) - 7*144
	f, err := fitModel(s, valid, b, n, m)
	require.NoError(t, err)
	assert.InDelta(t, synth.at(s.At(n)), f.beta[0]+seasonal(f, b, n), 1.5, "level at the origin")
	assert.InDelta(t, synth.slope, f.beta[1], 0.05, "slope per day")
	// The first daily harmonic is (cos, sin) = (0, daily); the first
	// weekly one (weekly, 0).
	assert.InDelta(t, 0, f.beta[2], 0.5)
	assert.InDelta(t, synth.daily, f.beta[3], 0.5, "daily amplitude")
	w := 2 + 2*m.DailyHarmonics
	assert.InDelta(t, synth.weekly, f.beta[w], 1, "weekly amplitude")
	assert.InDelta(t, 0, f.beta[w+1], 1)
	assert.InDelta(t, 5, f.scale, 0.5, "the noise's standard deviation")

	// Forecast a week: within a few noise widths of the truth all along.
	cfg := DefaultConfig()
	cut := s.At(n)
	r, err := Forecast(s, cut, 7*144, cfg)
	require.NoError(t, err)
	worst := 0.0
	for _, st := range r.Steps {
		worst = max(worst, math.Abs(st.Value-synth.at(st.T)))
		require.LessOrEqual(t, st.Lo, st.Value)
		require.LessOrEqual(t, st.Value, st.Hi)
	}
	assert.Less(t, worst, 3.0, "largest error of the point forecast against the noise-free truth")
	assert.GreaterOrEqual(t, r.Peak, r.PointPeak)
	assert.Greater(t, r.PointPeak, r.Mean)
}

// meanValue is the mean of the steps' values, or of f at their times.
func meanValue(steps []Step, f func(time.Time) float64) float64 {
	sum := 0.0
	for _, s := range steps {
		if f != nil {
			sum += f(s.T)
		} else {
			sum += s.Value
		}
	}
	return sum / float64(len(steps))
}

// A steep trend, one validation can tell from noise, is carried over the
// horizon; a gentle one is damped towards the level (the candidates that
// hold the level flat judge as well there), but the fit still sees it.
func TestForecastCarriesTrend(t *testing.T) {
	for _, tc := range []struct {
		slope    float64
		min, max float64 // share of the true rise over the week forecast
	}{
		{slope: 3, min: 0.85, max: 1.15},
		{slope: 0.5, min: 0, max: 1.15},
	} {
		g := synth
		g.slope = tc.slope
		rng := rand.New(rand.NewPCG(5, 1))
		s := &Series{Start: g.start, Step: 10 * time.Minute, Values: make([]float64, 6*7*144)}
		for i := range s.Values {
			s.Values[i] = g.at(s.At(i)) + 5*rng.NormFloat64()
		}
		n := len(s.Values) - 7*144
		r, err := Forecast(s, s.At(n), 7*144, DefaultConfig())
		require.NoError(t, err)
		// Day 7 against day 1, less what the weekly cycle does.
		cycle := func(t time.Time) float64 { return g.at(t) - g.slope*t.Sub(g.start).Hours()/24 }
		rise := meanValue(r.Steps[6*144:], nil) - meanValue(r.Steps[:144], nil) -
			(meanValue(r.Steps[6*144:], cycle) - meanValue(r.Steps[:144], cycle))
		share := rise / (6 * tc.slope)
		assert.True(t, share >= tc.min && share <= tc.max, "slope %v: %.2f of the true rise", tc.slope, share)
	}
}

func seasonal(f *fit, b *basis, i int) float64 {
	y := 0.0
	for q, v := range b.cols[i*b.p : (i+1)*b.p] {
		y += v * f.beta[2+q]
	}
	return y
}

// The model beats both seasonal-naive forecasts on data that has a trend
// and both cycles, and its interval covers about what it claims.
func TestBacktestBeatsSeasonalNaive(t *testing.T) {
	s := synthetic(8, 10*time.Minute, 5, 2)
	cut := s.At(len(s.Values) - 14*144)
	cfg := DefaultConfig()
	r, err := Forecast(s, cut, 14*144, cfg)
	require.NoError(t, err)
	bt, err := RunBacktest(s, r, cfg.Outage)
	require.NoError(t, err)
	require.Len(t, bt.Methods, 3)
	model, daily, weekly := bt.Methods[0], bt.Methods[1], bt.Methods[2]
	assert.Equal(t, 14*144, bt.Scored)
	assert.Less(t, model.MAE, 0.7*daily.MAE, "daily naive misses the weekly cycle and the trend")
	assert.Less(t, model.MAE, 0.7*weekly.MAE, "weekly naive misses the trend and doubles the noise")
	assert.Less(t, model.RMSE, min(daily.RMSE, weekly.RMSE))
	assert.Less(t, model.MASE, 1.0)
	assert.InDelta(t, 0.9, bt.Coverage, 0.08, "a 90%% interval")
	assert.GreaterOrEqual(t, r.Peak, bt.ActualPeak-5, "the peak to size to reaches the actual peak")
}

// An outage logged as zeros and a gap leave the forecast close to the one
// from clean data: the zeros are masked, not fitted.
func TestOutageAndGapRobustness(t *testing.T) {
	clean := synthetic(6, 10*time.Minute, 5, 3)
	n := len(clean.Values) - 7*144
	cut := clean.At(n)
	cfg := DefaultConfig()
	want, err := Forecast(clean, cut, 7*144, cfg)
	require.NoError(t, err)

	hurt := &Series{Start: clean.Start, Step: clean.Step, Values: append([]float64(nil), clean.Values...)}
	// 18 hours of zeros then values of 1–7, as Philly's log wrote them,
	// ending two days before the cutoff, and a 10-hour gap before that.
	outage := n - 2*144 - 114
	for i := outage; i < outage+114; i++ {
		hurt.Values[i] = 0
	}
	for i := outage + 108; i < outage+114; i++ {
		hurt.Values[i] = float64(i - outage - 107)
	}
	for i := outage - 60; i < outage; i++ {
		hurt.Values[i] = math.NaN()
	}
	got, err := Forecast(hurt, cut, 7*144, cfg)
	require.NoError(t, err)
	assert.Equal(t, 114, got.Masked)
	assert.Equal(t, 60, got.Gaps)
	assert.Less(t, maxDiff(want, got), 3.0, "forecast with the outage masked against the clean one")

	// Without the mask the zeros pull the level down: the test can see it.
	cfg.Outage = 0
	raw, err := Forecast(hurt, cut, 7*144, cfg)
	require.NoError(t, err)
	assert.Greater(t, maxDiff(want, raw), 2*maxDiff(want, got), "the mask is what keeps the forecast")
}

func maxDiff(a, b *Result) float64 {
	d := 0.0
	for i := range a.Steps {
		d = max(d, math.Abs(a.Steps[i].Value-b.Steps[i].Value))
	}
	return d
}

// The same input gives the same bytes, however many fits run at once.
func TestForecastDeterministic(t *testing.T) {
	s := readSample(t, 10*time.Minute)
	cut := utc(2017, 11, 6, 0, 0)
	var outs [][]byte
	for _, workers := range []int{0, 1, 3, 0} {
		cfg := DefaultConfig()
		cfg.Workers = workers
		r, err := Forecast(s, cut, 7*144, cfg)
		require.NoError(t, err)
		bt, err := RunBacktest(s, r, cfg.Outage)
		require.NoError(t, err)
		b, err := json.Marshal(struct {
			R  *Result
			BT *Backtest
		}{r, bt})
		require.NoError(t, err)
		outs = append(outs, b)
	}
	for i := 1; i < len(outs); i++ {
		assert.Equal(t, string(outs[0]), string(outs[i]), "run %d", i)
	}
}

func TestSeasonalNaive(t *testing.T) {
	nan := math.NaN()
	s := &Series{Start: utc(2024, 1, 1, 0, 0), Step: 6 * time.Hour, Values: []float64{1, 2, 3, 4, 5, nan, 7, 8, 99}}
	valid := []bool{true, true, true, true, true, false, true, true, true}
	// A day is 4 steps; the cutoff at step 8 (its value 99 is after it).
	got := SeasonalNaive(s, valid, 8, 6, day)
	// Step 9 maps to step 5 (a gap), then to step 1; from step 12 on the
	// last whole cycle repeats.
	assert.Equal(t, []float64{5, 2, 7, 8, 5, 2}, got)
	// Before any data of the same phase: the last valid value.
	assert.Equal(t, []float64{2, 2}, SeasonalNaive(s, valid, 2, 2, week))
}

func TestForecastErrors(t *testing.T) {
	s := synthetic(1, time.Hour, 1, 4)
	cfg := DefaultConfig()
	_, err := Forecast(s, s.Start.Add(30*time.Minute), 10, cfg)
	assert.ErrorContains(t, err, "not on the series' grid")
	_, err = Forecast(s, s.Start, 10, cfg)
	assert.ErrorContains(t, err, "no data before it")
	_, err = Forecast(s, s.At(3), 10, cfg)
	assert.ErrorContains(t, err, "too few to fit")
	_, err = Forecast(s, s.At(100), 0, cfg)
	assert.ErrorContains(t, err, "at least one")
	bad := cfg
	bad.Level = 1
	_, err = Forecast(s, s.At(100), 10, bad)
	assert.ErrorContains(t, err, "level")

	// A cutoff three days past the data forecasts from the fit, the days
	// between counting as a gap.
	late, err := Forecast(synthetic(4, time.Hour, 1, 4), synth.start.Add(4*week+3*day), 24, cfg)
	require.NoError(t, err)
	assert.Len(t, late.Steps, 24)
	assert.Equal(t, 72, late.Gaps)
	assert.InDelta(t, synth.at(late.Steps[0].T), late.Steps[0].Value, 5)

	// A week of hourly data is too short to judge past cutoffs 24h ahead
	// seven times, but it forecasts with the first candidate.
	r, err := Forecast(s, s.At(len(s.Values)), 24, cfg)
	require.NoError(t, err)
	assert.Len(t, r.Steps, 24)
}

// The full Philly series, where the shared traces are beside the
// repository: the numbers docs/forecast.md records.
func TestPhillyBacktest(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "traces", "helios-ces", "philly_node_sequence.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("the full series is not here (%v)", err)
	}
	defer f.Close()
	raw, err := ReadCSV(f, path, ReadOptions{Column: "active"})
	require.NoError(t, err)
	require.Equal(t, 105644, len(raw.Points), "rows of the series as its README counts them")
	cut := utc(2017, 12, 1, 0, 0)
	s, err := Resample(raw.Points, cut, 10*time.Minute, AggMean)
	require.NoError(t, err)
	cfg := DefaultConfig()
	r, err := Forecast(s, cut, 14*144, cfg)
	require.NoError(t, err)
	bt, err := RunBacktest(s, r, cfg.Outage)
	require.NoError(t, err)
	model, daily, weekly := bt.Methods[0], bt.Methods[1], bt.Methods[2]
	t.Logf("model MAE %.2f RMSE %.2f sMAPE %.2f MASE %.3f; daily %.2f; weekly %.2f; coverage %.3f; peak %.1f vs %.1f",
		model.MAE, model.RMSE, model.SMAPE, model.MASE, daily.MAE, weekly.MAE, bt.Coverage, r.Peak, bt.ActualPeak)
	assert.Equal(t, 3, bt.Unscored, "the outage steps of 12-06 17:50–18:10 are not scored")
	assert.Less(t, model.MAE, min(daily.MAE, weekly.MAE))
	assert.Less(t, model.RMSE, min(daily.RMSE, weekly.RMSE))
	assert.Less(t, model.Peak, bt.ActualPeak, "the point forecast undershoots the peak")
	assert.Greater(t, r.Peak, bt.ActualPeak, "the peak quantile does not")
	assert.InDelta(t, 0.9, bt.Coverage, 0.05)
}

// A history with a gap longer than the fit's window: the past cutoffs
// whose window holds too little data are not judged, and the forecast
// stays finite.
func TestForecastAfterLongGap(t *testing.T) {
	old := synthetic(3, time.Hour, 2, 6)
	s := &Series{Start: old.Start, Step: time.Hour}
	s.Values = append(s.Values, old.Values...)
	for range 500 * 24 {
		s.Values = append(s.Values, math.NaN())
	}
	for i := range 12 * 24 {
		s.Values = append(s.Values, synth.at(s.At(len(s.Values)))+float64(i%3))
	}
	r, err := Forecast(s, s.At(len(s.Values)), 48, DefaultConfig())
	require.NoError(t, err)
	for _, st := range r.Steps {
		require.False(t, math.IsNaN(st.Lo) || math.IsNaN(st.Hi) || math.IsNaN(st.Value), "%+v", st)
	}
	assert.Positive(t, r.Origins)
}
