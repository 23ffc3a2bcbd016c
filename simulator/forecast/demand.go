package forecast

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"petite/traces"
)

// Demand is the GPU demand of a job trace as a series, and what of the
// trace it could not use.
type Demand struct {
	Series *Series
	// Jobs counts the jobs that asked for GPUs; Open those without a
	// known duration, counted as running to the end of the series.
	Jobs, Open int
	// Skipped counts jobs that ask for no GPU.
	Skipped int
}

// DemandFromJobs turns jobs into GPU demand over time: a job asks for its
// GPUs (shares of GPUs as fractions) from its submission for its duration,
// whether or not it waited to run, so the series is what the fleet would
// have had to hold for no job to wait. A job without a known duration
// (pending or still running when the trace was taken) asks until the end.
// The series ends at the last submission, where the trace stops knowing
// the demand, and sits on the grid of step through anchor. Times are read
// on the wall clock of meta's zone, as written UTC, so the daily and
// weekly cycles fall where people live them; a relative clock counts from
// 1970-01-01.
func DemandFromJobs(jobs []traces.Job, meta traces.Meta, anchor time.Time, step time.Duration, agg Agg) (*Demand, error) {
	if step <= 0 {
		return nil, fmt.Errorf("step %v: want a positive duration", step)
	}
	loc := time.UTC
	if meta.Clock == traces.ClockUnix {
		l, err := meta.Location()
		if err != nil {
			return nil, fmt.Errorf("trace zone: %w", err)
		}
		loc = l
	}
	wall := func(sec int64) time.Time {
		t := time.Unix(sec, 0)
		_, off := t.In(loc).Zone()
		return t.Add(time.Duration(off) * time.Second).UTC()
	}
	d := &Demand{}
	type event struct {
		t     time.Time
		delta float64
	}
	var ev []event
	end := time.Time{}
	type open struct {
		t   time.Time
		gpu float64
	}
	var opens []open
	for i := range jobs {
		j := &jobs[i]
		gpu := float64(j.GPUMilli()) / 1000
		if gpu <= 0 {
			d.Skipped++
			continue
		}
		d.Jobs++
		start := wall(j.Submit)
		if start.After(end) {
			end = start
		}
		if j.Duration == traces.NoTime || j.Duration < 0 {
			d.Open++
			opens = append(opens, open{start, gpu})
			continue
		}
		ev = append(ev, event{start, gpu}, event{wall(j.Submit + j.Duration), -gpu})
	}
	if d.Jobs == 0 {
		return nil, errors.New("no job asks for GPUs: no demand to forecast")
	}
	for _, o := range opens {
		ev = append(ev, event{o.t, o.gpu}, event{end.Add(step), -o.gpu})
	}
	slices.SortStableFunc(ev, func(a, b event) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return cmp.Compare(b.delta, a.delta) // arrivals first: a step's peak counts both
	})
	first := ev[0].t
	lo, hi := floorDiv(first.Sub(anchor), step), floorDiv(end.Sub(anchor), step)
	if hi-lo+1 > MaxSteps {
		return nil, fmt.Errorf("%v to %v in steps of %v: more than %d steps", first, end, step, MaxSteps)
	}
	s := &Series{Start: anchor.Add(time.Duration(lo) * step), Step: step, Values: make([]float64, hi-lo+1)}
	level, k := 0.0, 0
	for i := range s.Values {
		t0, t1 := s.At(i), s.At(i+1)
		peak, area, at := level, 0.0, t0
		for ; k < len(ev) && ev[k].t.Before(t1); k++ {
			area += level * ev[k].t.Sub(at).Seconds()
			level += ev[k].delta
			at = ev[k].t
			peak = max(peak, level)
		}
		area += level * t1.Sub(at).Seconds()
		if agg == AggMax {
			s.Values[i] = peak
		} else {
			s.Values[i] = area / step.Seconds()
		}
		// Sums of fractions drift by rounding: clean the noise around 0.
		if math.Abs(s.Values[i]) < 1e-9 {
			s.Values[i] = 0
		}
	}
	d.Series = s
	return d, nil
}
