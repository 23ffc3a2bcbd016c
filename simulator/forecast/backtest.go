package forecast

import (
	"fmt"
	"math"
	"time"
)

// SeasonalNaive forecasts steps steps from step n of s by repeating the
// last observed cycle of period: the value one period back, or the period
// before that where that step has no valid data, or else the last valid
// value before n. valid says which steps hold demand.
func SeasonalNaive(s *Series, valid []bool, n, steps int, period time.Duration) []float64 {
	per := max(1, int(period/s.Step))
	last := math.NaN()
	for i := min(n, len(s.Values)) - 1; i >= 0; i-- {
		if valid[i] {
			last = s.Values[i]
			break
		}
	}
	out := make([]float64, steps)
	for k := range steps {
		out[k] = last
		// The latest step before n in the same phase of the cycle.
		i := n + k - ((k/per)+1)*per
		for ; i >= 0; i -= per {
			if i < len(s.Values) && valid[i] {
				out[k] = s.Values[i]
				break
			}
		}
	}
	return out
}

// Errors are a forecast's errors against what happened, over the steps
// that hold demand (gaps and outages are not scored).
type Errors struct {
	Method string  `json:"method"`
	N      int     `json:"n"`
	MAE    float64 `json:"mae"`
	RMSE   float64 `json:"rmse"`
	// SMAPE is the symmetric mean absolute percentage error, in percent
	// (0–200); a step where both are 0 counts as 0.
	SMAPE float64 `json:"smape"`
	// MASE is MAE over the in-sample MAE of the daily seasonal-naive
	// forecast one day ahead: below 1 beats it on the training data's
	// scale; it stays defined where the demand is 0.
	MASE float64 `json:"mase"`
	// Peak is the forecast's highest value, beside the actual one.
	Peak float64 `json:"peak"`
}

// Backtest is a forecast scored against what happened after the cutoff,
// beside the seasonal-naive baselines.
type Backtest struct {
	// Scored counts the steps scored; Unscored those after the cutoff
	// without data or masked as outages.
	Scored   int `json:"scored"`
	Unscored int `json:"unscored"`
	// ActualPeak is the highest demand seen over the horizon; Coverage the
	// share of scored steps inside the model's interval.
	ActualPeak float64 `json:"actual_peak"`
	Coverage   float64 `json:"coverage"`
	// Methods are the model first, then seasonal naive daily and weekly.
	Methods []Errors `json:"methods"`
}

// RunBacktest scores r against the data of s after its cutoff, masking
// outages with outage as the forecast did.
func RunBacktest(s *Series, r *Result, outage float64) (*Backtest, error) {
	n := s.Index(r.Cutoff)
	steps := len(r.Steps)
	if n+steps > len(s.Values) {
		steps = len(s.Values) - n
	}
	if steps <= 0 {
		return nil, fmt.Errorf("no data after the cutoff %s to score against", r.Cutoff.UTC().Format(time.RFC3339))
	}
	valid, _ := validSteps(s, n, outage)
	scale := naiveScale(s, valid, n)
	model := make([]float64, steps)
	for k := range steps {
		model[k] = r.Steps[k].Value
	}
	bt := &Backtest{ActualPeak: math.NaN()}
	inside := 0
	for k := range steps {
		if !valid[n+k] {
			bt.Unscored++
			continue
		}
		bt.Scored++
		y := s.Values[n+k]
		if math.IsNaN(bt.ActualPeak) || y > bt.ActualPeak {
			bt.ActualPeak = y
		}
		if y >= r.Steps[k].Lo && y <= r.Steps[k].Hi {
			inside++
		}
	}
	if bt.Scored == 0 {
		return nil, fmt.Errorf("no valid data after the cutoff %s to score against", r.Cutoff.UTC().Format(time.RFC3339))
	}
	bt.Coverage = float64(inside) / float64(bt.Scored)
	for _, m := range []struct {
		name string
		f    []float64
	}{
		{"model", model},
		{"seasonal naive (daily)", SeasonalNaive(s, valid, n, steps, day)},
		{"seasonal naive (weekly)", SeasonalNaive(s, valid, n, steps, week)},
	} {
		bt.Methods = append(bt.Methods, score1(m.name, s.Values[n:n+steps], valid[n:n+steps], m.f, scale))
	}
	return bt, nil
}

// naiveScale is the in-sample MAE of the daily seasonal-naive forecast over
// the training steps, MASE's denominator.
func naiveScale(s *Series, valid []bool, n int) float64 {
	per := max(1, int(day/s.Step))
	sum, cnt := 0.0, 0
	for i := per; i < min(n, len(s.Values)); i++ {
		if valid[i] && valid[i-per] {
			sum += math.Abs(s.Values[i] - s.Values[i-per])
			cnt++
		}
	}
	if cnt == 0 {
		return math.NaN()
	}
	return sum / float64(cnt)
}

func score1(name string, actual []float64, valid []bool, f []float64, scale float64) Errors {
	e := Errors{Method: name, Peak: math.NaN()}
	var abs, sq, sm float64
	for k, y := range actual {
		if math.IsNaN(e.Peak) || f[k] > e.Peak {
			e.Peak = f[k]
		}
		if !valid[k] {
			continue
		}
		d := y - f[k]
		abs += math.Abs(d)
		sq += d * d
		if den := math.Abs(y) + math.Abs(f[k]); den > 0 {
			sm += 2 * math.Abs(d) / den
		}
		e.N++
	}
	nf := float64(e.N)
	e.MAE, e.RMSE, e.SMAPE = abs/nf, math.Sqrt(sq/nf), 100*sm/nf
	e.MASE = e.MAE / scale
	return e
}
