package forecast

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// Candidate is one setting of the forecast's two time constants; the
// forecast picks among candidates by how well each forecast the training
// data's own past (see Forecast).
type Candidate struct {
	// LevelHalfLife makes the level local: the forecast starts from the
	// fit plus the mean of its recent residuals, weighted by a half-life
	// in age, since demand shifts by tens of percent for days at a time.
	// 0 keeps the fit's own level.
	LevelHalfLife time.Duration `json:"level_half_life"`
	// TrendTau damps the fitted slope after the cutoff: the trend adds
	// slope·τ·(1−e^(−h/τ)) at lead h, so it never runs away. 0 holds the
	// level at the cutoff flat; NoDamping carries the slope on.
	TrendTau time.Duration `json:"trend_tau"`
}

// NoDamping as a TrendTau extends the fitted trend as a straight line.
const NoDamping time.Duration = math.MaxInt64

// String names the candidate as the text output does.
func (c Candidate) String() string {
	hl := "none"
	if c.LevelHalfLife > 0 {
		hl = FormatSpan(c.LevelHalfLife)
	}
	tau := FormatSpan(c.TrendTau)
	if c.TrendTau == NoDamping {
		tau = "none"
	}
	return fmt.Sprintf("level half-life %s, trend damping %s", hl, tau)
}

// Model sets the terms of the regression.
type Model struct {
	// DailyHarmonics and WeeklyHarmonics are the Fourier terms of each
	// cycle (a weekly harmonic k is a multiple of 1/week; k < 7 keeps it
	// apart from the daily ones).
	DailyHarmonics  int `json:"daily_harmonics"`
	WeeklyHarmonics int `json:"weekly_harmonics"`
	// Ridge shrinks the seasonal coefficients, as a fraction of the total
	// weight, so a short history cannot blow them up.
	Ridge float64 `json:"ridge"`
	// Huber is the robust loss's threshold in robust standard deviations
	// of the residuals: points further out (an odd hour, a level jump)
	// weigh less.
	Huber float64 `json:"huber"`
	// Iterations of reweighting.
	Iterations int `json:"iterations"`
	// HalfLife weighs the fit's observations by age (0: all the same), so
	// the seasonal shape and the trend follow the recent weeks.
	HalfLife time.Duration `json:"half_life"`
}

// DefaultModel is the model docs/forecast.md measures.
func DefaultModel() Model {
	return Model{DailyHarmonics: 6, WeeklyHarmonics: 3, Ridge: 1e-3, Huber: 1.345, Iterations: 5, HalfLife: 56 * day}
}

func (m Model) check() error {
	if m.DailyHarmonics < 0 || m.DailyHarmonics > 24 || m.WeeklyHarmonics < 0 || m.WeeklyHarmonics > 6 {
		return fmt.Errorf("harmonics: want 0–24 daily and 0–6 weekly, got %d and %d", m.DailyHarmonics, m.WeeklyHarmonics)
	}
	if !(m.Ridge >= 0) || !(m.Huber > 0) || m.Iterations < 1 || m.Iterations > 100 || m.HalfLife < 0 {
		return errors.New("ridge ≥ 0, huber > 0, 1–100 iterations and a half-life ≥ 0 wanted")
	}
	return nil
}

// basis holds the seasonal features of every step of a series and beyond,
// computed once and shared by every fit.
type basis struct {
	p    int       // seasonal columns
	cols []float64 // row-major: step i has cols[i*p : (i+1)*p]
}

func newBasis(s *Series, steps int, m Model) *basis {
	b := &basis{p: 2 * (m.DailyHarmonics + m.WeeklyHarmonics)}
	b.cols = make([]float64, steps*b.p)
	for i := range steps {
		// Phases from the Unix epoch, so cycles sit on the wall clock the
		// times are written in.
		t := s.At(i).Unix()
		pd := 2 * math.Pi * float64(mod(t, int64(day/time.Second))) / float64(day/time.Second)
		pw := 2 * math.Pi * float64(mod(t, int64(week/time.Second))) / float64(week/time.Second)
		row := b.cols[i*b.p : (i+1)*b.p]
		j := 0
		for k := 1; k <= m.DailyHarmonics; k++ {
			row[j+1], row[j] = math.Sincos(float64(k) * pd)
			j += 2
		}
		for k := 1; k <= m.WeeklyHarmonics; k++ {
			row[j+1], row[j] = math.Sincos(float64(k) * pw)
			j += 2
		}
	}
	return b
}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// fit is a fitted model: level and slope at the origin, seasonal
// coefficients.
type fit struct {
	origin   int // the first step after the training data
	stepDays float64
	beta     []float64 // level, slope per day, seasonal
	idx      []int     // the steps fitted
	resid    []float64 // their residuals
	scale    float64   // robust standard deviation of the residuals
}

// MaxFitSteps bounds the history one fit reads, the latest steps before
// its origin, so the time a forecast takes stays bounded: 3.8 years of
// 10-minute steps, 139 days of minutes.
const MaxFitSteps = 200_000

// fitModel fits y on [level, slope·u, seasonal] over the valid steps
// before origin, u being the time in days from origin, with weights that
// decay with age (the half-life) and are reweighted by a Huber loss.
func fitModel(s *Series, valid []bool, b *basis, origin int, m Model) (*fit, error) {
	stepDays := float64(s.Step) / float64(day)
	first := max(0, origin-MaxFitSteps)
	if m.HalfLife > 0 {
		// Older than eight half-lives weighs under 0.4%: leave it out.
		first = max(first, origin-int(8*m.HalfLife/s.Step))
	}
	var idx []int
	for i := first; i < origin; i++ {
		if valid[i] {
			idx = append(idx, i)
		}
	}
	p := 2 + b.p
	if len(idx) < 2*p {
		return nil, fmt.Errorf("%d valid steps before %v: too few to fit %d terms", len(idx), s.At(origin), p)
	}
	decay := make([]float64, len(idx))
	for k, i := range idx {
		decay[k] = 1
		if m.HalfLife > 0 {
			age := float64(origin-i) * float64(s.Step) / float64(m.HalfLife)
			decay[k] = math.Exp2(-age)
		}
	}
	robust := make([]float64, len(idx))
	for k := range robust {
		robust[k] = 1
	}
	x := make([]float64, p)
	row := func(i int) []float64 {
		x[0], x[1] = 1, float64(i-origin)*stepDays
		copy(x[2:], b.cols[i*b.p:(i+1)*b.p])
		return x
	}
	f := &fit{origin: origin, stepDays: stepDays, beta: make([]float64, p), idx: idx, resid: make([]float64, len(idx))}
	a := mat.NewSymDense(p, nil)
	rhs := mat.NewVecDense(p, nil)
	var chol mat.Cholesky
	abs := make([]float64, len(idx))
	for it := range m.Iterations {
		a.Zero()
		rhs.Zero()
		ad := a.RawSymmetric().Data
		rd := rhs.RawVector().Data
		total := 0.0
		for k, i := range idx {
			w := decay[k] * robust[k]
			if w == 0 {
				continue
			}
			total += w
			xr := row(i)
			y := s.Values[i]
			for r := range p {
				wr := w * xr[r]
				rd[r] += wr * y
				line := ad[r*p : (r+1)*p]
				for q := r; q < p; q++ {
					line[q] += wr * xr[q]
				}
			}
		}
		for r := 2; r < p; r++ {
			ad[r*p+r] += m.Ridge * total
		}
		// The slope gets a whisker of ridge too: with all weight on a few
		// hours it is barely determined.
		ad[p+1] += 1e-9 * total
		if ok := chol.Factorize(a); !ok {
			return nil, fmt.Errorf("fit before %v: normal equations not positive definite", s.At(origin))
		}
		beta := mat.NewVecDense(p, f.beta)
		if err := chol.SolveVecTo(beta, rhs); err != nil {
			return nil, fmt.Errorf("fit before %v: %w", s.At(origin), err)
		}
		for k, i := range idx {
			xr := row(i)
			yhat := 0.0
			for q := range p {
				yhat += xr[q] * f.beta[q]
			}
			f.resid[k] = s.Values[i] - yhat
			abs[k] = math.Abs(f.resid[k])
		}
		sorted := slices.Clone(abs)
		slices.Sort(sorted)
		f.scale = sorted[len(sorted)/2] / 0.6745
		if it == m.Iterations-1 || f.scale == 0 {
			break
		}
		c := m.Huber * f.scale
		for k := range robust {
			robust[k] = 1
			if abs[k] > c {
				robust[k] = c / abs[k]
			}
		}
	}
	return f, nil
}

// level returns c's shift of the level: the mean of the fit's residuals
// weighted by c's half-life in age, each clipped to three robust standard
// deviations so an odd hour cannot move it far.
func (f *fit) level(c Candidate, step time.Duration) float64 {
	if c.LevelHalfLife <= 0 {
		return 0
	}
	clip := 3 * f.scale
	var sum, wsum float64
	for k := len(f.idx) - 1; k >= 0; k-- {
		age := float64(f.origin-f.idx[k]) * float64(step) / float64(c.LevelHalfLife)
		if age > 16 {
			break
		}
		w := math.Exp2(-age)
		sum += w * max(-clip, min(clip, f.resid[k]))
		wsum += w
	}
	if wsum == 0 {
		return 0
	}
	return sum / wsum
}

// predict returns c's forecast at step i ≥ origin, the level shifted by
// shift (from level).
func (f *fit) predict(b *basis, i int, c Candidate, shift float64) float64 {
	u := float64(i-f.origin) * f.stepDays
	y := f.beta[0] + shift
	if tau := float64(c.TrendTau) / float64(day); tau > 0 && u > 0 {
		y += f.beta[1] * tau * -math.Expm1(-u/tau)
	}
	for q, v := range b.cols[i*b.p : (i+1)*b.p] {
		y += v * f.beta[2+q]
	}
	return y
}

// FormatSpan writes a duration as ParseSpan reads it, in days or hours
// when it is whole ones.
func FormatSpan(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
