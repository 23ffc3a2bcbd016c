package forecast

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Series is demand on a regular grid: Values[i] is the demand in the step
// starting at Start + i·Step; NaN marks a step without data.
type Series struct {
	Start  time.Time
	Step   time.Duration
	Values []float64
}

// At returns the start time of step i.
func (s *Series) At(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Step) }

// Index returns the step t falls in (it may be out of range).
func (s *Series) Index(t time.Time) int { return int(floorDiv(t.Sub(s.Start), s.Step)) }

// Agg is how the points that fall in one step become its value.
type Agg string

// The aggregations. The mean is the usual resampling and the default: on
// Philly's series its forecasts are closer than those fitted to maxima
// even to the maxima (docs/forecast.md), since a step's peak is the
// noisier figure. The peak within a step is there to size to it (the
// Helios CES predictor uses 10-minute maxima).
const (
	AggMax  Agg = "max"
	AggMean Agg = "mean"
)

// ParseAgg reads an aggregation name.
func ParseAgg(s string) (Agg, error) {
	switch a := Agg(s); a {
	case AggMax, AggMean:
		return a, nil
	}
	return "", fmt.Errorf("unknown aggregation %q (want max or mean)", s)
}

// MaxSteps bounds a grid (and a forecast's grid with its horizon), so a
// tiny step over a long series is an error rather than gigabytes: it is
// almost four years of minutes.
const MaxSteps = 2_000_000

// Resample puts sorted points on the grid of step that has a step starting
// at anchor, from the step of the first point to that of the last. Steps
// without points are NaN (gaps).
func Resample(points []Point, anchor time.Time, step time.Duration, agg Agg) (*Series, error) {
	if step <= 0 {
		return nil, fmt.Errorf("step %v: want a positive duration", step)
	}
	if len(points) == 0 {
		return nil, fmt.Errorf("no points to resample")
	}
	// The grid counts in Durations from the anchor: a point further than
	// half their range from it (about 146 years) is refused, since the
	// differences would saturate and steps fall outside the grid.
	d0, d1 := points[0].T.Sub(anchor), points[len(points)-1].T.Sub(anchor)
	for _, d := range []time.Duration{d0, d1} {
		if d > math.MaxInt64/2 || d < -math.MaxInt64/2 {
			return nil, fmt.Errorf("%v to %v: more than %v from the grid's anchor %v", points[0].T, points[len(points)-1].T, time.Duration(math.MaxInt64/2), anchor)
		}
	}
	first, last := floorDiv(d0, step), floorDiv(d1, step)
	if n := last - first + 1; n > MaxSteps || n < 0 {
		return nil, fmt.Errorf("%v to %v in steps of %v: more than %d steps", points[0].T, points[len(points)-1].T, step, MaxSteps)
	}
	s := &Series{Start: anchor.Add(time.Duration(first) * step), Step: step, Values: make([]float64, last-first+1)}
	counts := make([]int, len(s.Values))
	for i := range s.Values {
		s.Values[i] = math.NaN()
	}
	for _, p := range points {
		i := s.Index(p.T)
		switch {
		case counts[i] == 0:
			s.Values[i] = p.V
		case agg == AggMax:
			s.Values[i] = max(s.Values[i], p.V)
		default:
			s.Values[i] += p.V
		}
		counts[i]++
	}
	if agg == AggMean {
		for i, c := range counts {
			if c > 1 {
				s.Values[i] /= float64(c)
			}
		}
	}
	return s, nil
}

// floorDiv is d/step rounded towards minus infinity.
func floorDiv(d, step time.Duration) int64 {
	q := int64(d / step)
	if d%step < 0 {
		q--
	}
	return q
}

// MaskOutages returns, for each step, whether its value is a logging
// outage rather than demand: a value below frac times the local level, the
// median of the values of the day around it and the days either side. A
// busy cluster is never idle for an hour; a log that writes zeros is. The
// level is robust to an outage of up to about a day. frac 0 masks nothing.
func MaskOutages(s *Series, frac float64) []bool {
	mask := make([]bool, len(s.Values))
	if frac <= 0 || len(s.Values) == 0 {
		return mask
	}
	block := max(1, int(24*time.Hour/s.Step))
	nb := (len(s.Values) + block - 1) / block
	var pool []float64
	for b := range nb {
		pool = pool[:0]
		lo, hi := max(0, (b-1)*block), min(len(s.Values), (b+2)*block)
		for _, v := range s.Values[lo:hi] {
			if !math.IsNaN(v) {
				pool = append(pool, v)
			}
		}
		if len(pool) == 0 {
			continue
		}
		slices.Sort(pool)
		level := pool[len(pool)/2]
		for i := b * block; i < min(len(s.Values), (b+1)*block); i++ {
			if v := s.Values[i]; !math.IsNaN(v) && v < frac*level {
				mask[i] = true
			}
		}
	}
	return mask
}

// ParseSpan reads a duration as flags give it: Go's form ("90m", "36h")
// or a whole number of days or weeks ("14d", "2w").
func ParseSpan(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			k, err := strconv.Atoi(n)
			if err != nil || k < 0 || k > 100_000 {
				return 0, fmt.Errorf("duration %q: want a whole number of %s", s, map[string]string{"d": "days", "w": "weeks"}[suffix])
			}
			return time.Duration(k) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a Go duration (10m, 36h) or days/weeks (14d, 2w)", s)
	}
	return d, nil
}
