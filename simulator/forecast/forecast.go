package forecast

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Config sets a forecast.
type Config struct {
	// Model sets the regression's terms.
	Model Model
	// Candidates are the time constants to choose among; the first is used
	// when the history is too short to choose.
	Candidates []Candidate
	// Origins is how many past cutoffs, a day apart, each candidate
	// forecasts from to be judged; their errors also give the intervals.
	Origins int
	// Level is the probability the prediction interval covers (0.9: from
	// the 5% to the 95% quantile of past errors at the same lead).
	Level float64
	// Outage masks values below this fraction of the local level as
	// logging outages (0 masks none; see MaskOutages).
	Outage float64
	// Combine says how the candidates' forecasts become one.
	Combine Combine
	// Slack is how much worse than the best, relatively, a candidate's
	// validation MAE may be and still join CombineMean's average.
	Slack float64
	// Workers bounds the fits run at once (0: one per origin).
	Workers int
}

// Combine is how the judged candidates make the forecast.
type Combine string

// The ways to combine candidates.
const (
	// CombineBest forecasts with the candidate of lowest validation MAE.
	CombineBest Combine = "best"
	// CombineMean averages the candidates within Config.Slack of the best
	// one: the level's half-life that forecast best in the past is a
	// noisy choice, and an average of close ones is steadier.
	CombineMean Combine = "mean"
)

// Weighted is a candidate and its weight in the forecast.
type Weighted struct {
	Candidate
	Weight float64 `json:"weight"`
}

// DefaultConfig is the configuration docs/forecast.md measures.
func DefaultConfig() Config {
	var cands []Candidate
	for _, hl := range []time.Duration{day, 0, 6 * time.Hour, 12 * time.Hour, 2 * day, 4 * day, 7 * day, 14 * day} {
		for _, tau := range []time.Duration{0, day, NoDamping} {
			cands = append(cands, Candidate{LevelHalfLife: hl, TrendTau: tau})
		}
	}
	return Config{Model: DefaultModel(), Candidates: cands, Origins: 28, Level: 0.9, Outage: 0.05, Combine: CombineMean, Slack: 0.1}
}

// Check reports a configuration that cannot run.
func (c *Config) Check() error {
	if err := c.Model.check(); err != nil {
		return err
	}
	if len(c.Candidates) == 0 {
		return errors.New("no candidate time constants")
	}
	for _, cd := range c.Candidates {
		if cd.LevelHalfLife < 0 || cd.TrendTau < 0 {
			return fmt.Errorf("candidate %v: negative time constant", cd)
		}
	}
	if c.Combine != CombineBest && c.Combine != CombineMean {
		return fmt.Errorf("combine %q: want best or mean", c.Combine)
	}
	if !(c.Slack >= 0 && c.Slack <= 10) {
		return fmt.Errorf("slack %v: want 0–10", c.Slack)
	}
	if c.Origins < 1 || c.Origins > 1000 {
		return fmt.Errorf("origins %d: want 1–1000", c.Origins)
	}
	if !(c.Level > 0 && c.Level < 1) {
		return fmt.Errorf("level %v: want a probability strictly between 0 and 1", c.Level)
	}
	if !(c.Outage >= 0 && c.Outage < 1) {
		return fmt.Errorf("outage fraction %v: want 0 ≤ f < 1", c.Outage)
	}
	return nil
}

// Step is one step of a forecast: the point forecast and its interval.
type Step struct {
	T     time.Time `json:"t"`
	Value float64   `json:"value"`
	Lo    float64   `json:"lo"`
	Hi    float64   `json:"hi"`
}

// Result is a forecast from a cutoff.
type Result struct {
	// Cutoff is the first step forecast; the fit saw only data before it.
	Cutoff time.Time     `json:"cutoff"`
	Step   time.Duration `json:"step"`
	// Steps are the forecast, one per step from the cutoff on.
	Steps []Step `json:"steps"`
	// Chosen are the candidates that make the forecast, with their
	// weights; ValidationMAE is the forecast's mean absolute error over
	// the past cutoffs (NaN when the history was too short to judge, and
	// the first candidate was used).
	Chosen []Weighted `json:"chosen"`
	// Candidates counts the candidates judged; Best is the one of lowest
	// validation MAE, BestMAE that MAE.
	Candidates    int       `json:"candidates"`
	Best          Candidate `json:"best"`
	Slack         float64   `json:"slack"`
	BestMAE       float64   `json:"best_mae"`
	ValidationMAE float64   `json:"validation_mae"`
	Origins       int       `json:"origins"`
	// Level is the interval's coverage; Peak the highest upper bound over
	// the horizon, the figure to size to; PointPeak the highest point
	// forecast and Mean the mean one, for contrast.
	Level     float64   `json:"level"`
	Peak      float64   `json:"peak"`
	PeakAt    time.Time `json:"peak_at"`
	PointPeak float64   `json:"point_peak"`
	Mean      float64   `json:"mean"`
	// Train counts the training steps with data; Masked those of them
	// masked as outages; Gaps those without data.
	Train  int `json:"train"`
	Masked int `json:"masked"`
	Gaps   int `json:"gaps"`
}

// Forecast fits the steps of s before cutoff and forecasts steps steps from
// it (cutoff must fall on s's grid). Each candidate forecasts from
// cfg.Origins past cutoffs a day apart, as far ahead as the real forecast
// reaches where the history allows; the one with the lowest mean absolute
// error is refitted on all the training data. Its errors at each lead,
// bucketed by day, give the prediction interval.
func Forecast(s *Series, cutoff time.Time, steps int, cfg Config) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if steps < 1 {
		return nil, fmt.Errorf("horizon of %d steps: want at least one", steps)
	}
	n := s.Index(cutoff)
	if !s.At(n).Equal(cutoff) {
		return nil, fmt.Errorf("cutoff %v is not on the series' grid", cutoff)
	}
	if n <= 0 {
		return nil, fmt.Errorf("cutoff %v: no data before it (the series starts %v)", cutoff.UTC().Format(time.RFC3339), s.Start.UTC().Format(time.RFC3339))
	}
	total := max(len(s.Values), n+steps)
	if total > MaxSteps {
		return nil, fmt.Errorf("%d steps: more than %d", total, MaxSteps)
	}
	valid, masked := validSteps(s, n, cfg.Outage)
	// A cutoff past the data leaves steps without data before it.
	valid = append(valid, make([]bool, total-len(valid))...)
	b := newBasis(s, total, cfg.Model)
	r := &Result{Cutoff: cutoff, Step: s.Step, Level: cfg.Level, Masked: masked}
	for i := range n {
		switch {
		case valid[i]:
			r.Train++
		case i >= len(s.Values) || math.IsNaN(s.Values[i]):
			r.Gaps++
		}
	}

	perDay := max(1, int(day/s.Step))
	origins, lead := validationPlan(valid[:min(n, len(valid))], n, steps, perDay, cfg.Origins, 2+b.p)
	r.ValidationMAE = math.NaN()
	// preds[c][o][k]: candidate c's forecast from origin o at lead k.
	preds := make([][][]float64, len(cfg.Candidates))
	for ci := range preds {
		preds[ci] = make([][]float64, len(origins))
	}
	fitted := make([]bool, len(origins))
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers(cfg))
	for oi, o := range origins {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fitted[oi] = judge(s, valid, b, o, lead, n, cfg, preds, oi)
		}()
	}
	wg.Wait()
	// A past cutoff whose window holds too little data judges nothing.
	kept := 0
	for oi, ok := range fitted {
		if ok {
			origins[kept] = origins[oi]
			for ci := range preds {
				preds[ci][kept] = preds[ci][oi]
			}
			kept++
		}
	}
	origins = origins[:kept]
	for ci := range preds {
		preds[ci] = preds[ci][:kept]
	}
	r.Origins = len(origins)
	weights, best, maes := combine(s, valid, origins, preds, cfg.Combine, cfg.Slack)
	r.Best, r.BestMAE, r.Candidates, r.Slack = cfg.Candidates[0], math.NaN(), len(cfg.Candidates), cfg.Slack
	if best >= 0 {
		r.Best, r.BestMAE = cfg.Candidates[best], maes[best]
	}
	if weights == nil {
		weights = make([]float64, len(cfg.Candidates))
		weights[0] = 1
	}
	var errs [][]float64 // errors of the combination by lead bucket (a day each)
	if len(origins) > 0 {
		var sum float64
		var cnt int
		for oi, o := range origins {
			for k := range lead {
				i := o + k
				if i >= n || !valid[i] {
					continue
				}
				e := s.Values[i] - mix(weights, preds, oi, k)
				bk := k / perDay
				for len(errs) <= bk {
					errs = append(errs, nil)
				}
				errs[bk] = append(errs[bk], e)
				sum += math.Abs(e)
				cnt++
			}
		}
		if cnt > 0 {
			r.ValidationMAE = sum / float64(cnt)
		}
	}
	for ci, w := range weights {
		if w > 0 {
			r.Chosen = append(r.Chosen, Weighted{Candidate: cfg.Candidates[ci], Weight: w})
		}
	}
	f, err := fitModel(s, valid, b, n, cfg.Model)
	if err != nil {
		return nil, err
	}
	shifts := make([]float64, len(cfg.Candidates))
	for ci, w := range weights {
		if w > 0 {
			shifts[ci] = f.level(cfg.Candidates[ci], s.Step)
		}
	}
	predict := func(i int) float64 {
		v := 0.0
		for ci, w := range weights {
			if w > 0 {
				v += w * max(0, f.predict(b, i, cfg.Candidates[ci], shifts[ci]))
			}
		}
		return v
	}
	if len(errs) == 0 {
		// No past cutoff to learn from: in-sample residuals, one bucket.
		errs = [][]float64{slices.Clone(f.resid)}
	}
	lo, hi := bandQuantiles(errs, cfg.Level)
	r.Steps = make([]Step, steps)
	sum := 0.0
	for k := range steps {
		v := predict(n + k)
		bk := min(k/perDay, len(lo)-1)
		st := Step{T: s.At(n + k), Value: max(0, v), Lo: max(0, v+lo[bk]), Hi: max(0, v+hi[bk])}
		r.Steps[k] = st
		sum += st.Value
		if k == 0 || st.Hi > r.Peak {
			r.Peak, r.PeakAt = st.Hi, st.T
		}
		r.PointPeak = max(r.PointPeak, st.Value)
	}
	r.Mean = sum / float64(steps)
	return r, nil
}

func workers(cfg Config) int {
	if cfg.Workers > 0 {
		return cfg.Workers
	}
	return max(1, cfg.Origins)
}

// validSteps says which steps hold demand: data, and not an outage. The
// steps before n are judged on those alone, so the fit never sees past n.
func validSteps(s *Series, n int, outage float64) (valid []bool, masked int) {
	train := &Series{Start: s.Start, Step: s.Step, Values: s.Values[:min(n, len(s.Values))]}
	before, all := MaskOutages(train, outage), MaskOutages(s, outage)
	valid = make([]bool, len(s.Values))
	for i, v := range s.Values {
		m := all[i]
		if i < len(before) {
			m = before[i]
			if m {
				masked++
			}
		}
		valid[i] = !math.IsNaN(v) && !m
	}
	return valid, masked
}

// validationPlan picks the past cutoffs each candidate is judged from: up
// to count origins a day apart, the latest lead steps before n so that its
// forecast ends at n, each with enough data before it to fit. lead is the
// real horizon, shortened while that leaves too little history.
func validationPlan(valid []bool, n, steps, perDay, count, terms int) (origins []int, lead int) {
	prefix := make([]int, len(valid)+1)
	for i, v := range valid {
		prefix[i+1] = prefix[i]
		if v {
			prefix[i+1]++
		}
	}
	enough := func(o int) bool { return o > 0 && o <= len(valid) && prefix[o] >= max(2*perDay, 4*terms) }
	for lead = steps; lead >= 1; lead /= 2 {
		origins = origins[:0]
		for j := range count {
			if o := n - lead - j*perDay; enough(o) {
				origins = append(origins, o)
			}
		}
		if len(origins) == count || (len(origins) > 0 && lead <= perDay) {
			return origins, lead
		}
	}
	return nil, 0
}

// judge fits the model at origin o and writes each candidate's forecast,
// lead steps from it, to preds[c][oi]. It reports whether the fit could
// be made.
func judge(s *Series, valid []bool, b *basis, o, lead, n int, cfg Config, preds [][][]float64, oi int) bool {
	f, err := fitModel(s, valid, b, o, cfg.Model)
	if err != nil {
		return false
	}
	for ci, c := range cfg.Candidates {
		p := make([]float64, lead)
		shift := f.level(c, s.Step)
		for k := range lead {
			p[k] = math.NaN()
			if o+k < n {
				p[k] = max(0, f.predict(b, o+k, c, shift))
			}
		}
		preds[ci][oi] = p
	}
	return true
}

// mix is the weighted forecast of the candidates from origin oi at lead k.
func mix(weights []float64, preds [][][]float64, oi, k int) float64 {
	v := 0.0
	for ci, w := range weights {
		if w > 0 {
			v += w * preds[ci][oi][k]
		}
	}
	return v
}

// combine weighs the candidates by their validation forecasts: all weight
// on the one with the lowest MAE (CombineBest), or equal weights over
// those whose MAE is within slack of it (CombineMean). It returns
// the weights (nil when no candidate could be judged), the best
// candidate (-1 then) and each candidate's MAE.
func combine(s *Series, valid []bool, origins []int, preds [][][]float64, how Combine, slack float64) (w []float64, best int, mae []float64) {
	mae = make([]float64, len(preds))
	best = -1
	for ci, p := range preds {
		sum, cnt := 0.0, 0
		for oi, o := range origins {
			for k, v := range p[oi] {
				if !math.IsNaN(v) && valid[o+k] {
					sum += math.Abs(s.Values[o+k] - v)
					cnt++
				}
			}
		}
		mae[ci] = math.NaN()
		if cnt > 0 {
			mae[ci] = sum / float64(cnt)
		}
		if !math.IsNaN(mae[ci]) && (best < 0 || mae[ci] < mae[best]) {
			best = ci
		}
	}
	if best < 0 {
		return nil, best, mae
	}
	w = make([]float64, len(preds))
	if how == CombineBest {
		w[best] = 1
		return w, best, mae
	}
	var in []int
	for ci, m := range mae {
		if !math.IsNaN(m) && m <= mae[best]*(1+slack) {
			in = append(in, ci)
		}
	}
	for _, ci := range in {
		w[ci] = 1 / float64(len(in))
	}
	return w, best, mae
}

// bandQuantiles returns, per lead bucket, the error quantiles that bound
// the interval. A bucket with too few errors borrows the one before.
func bandQuantiles(errs [][]float64, level float64) (lo, hi []float64) {
	lo, hi = make([]float64, len(errs)), make([]float64, len(errs))
	for k, e := range errs {
		if len(e) < 10 && k > 0 {
			lo[k], hi[k] = lo[k-1], hi[k-1]
			continue
		}
		if len(e) == 0 {
			continue
		}
		sorted := slices.Clone(e)
		slices.Sort(sorted)
		// The interval holds the point forecast even when the past
		// errors all had one sign, so the figure to size to is never
		// below the point forecast's peak.
		lo[k] = min(0, stat.Quantile((1-level)/2, stat.Empirical, sorted, nil))
		hi[k] = max(0, stat.Quantile((1+level)/2, stat.Empirical, sorted, nil))
	}
	return lo, hi
}
