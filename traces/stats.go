package traces

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Stats summarises a job trace.
type Stats struct {
	// Meta is the trace's format and clock.
	Meta Meta `json:"meta"`
	// Jobs is the number of jobs read.
	Jobs int `json:"jobs"`
	// GPUJobs is the number of jobs that use any GPU.
	GPUJobs int `json:"gpu_jobs"`
	// SharedGPUJobs is the number of jobs that take a fraction of a GPU.
	SharedGPUJobs int `json:"shared_gpu_jobs"`
	// Instances is the number of task instances over all jobs.
	Instances int `json:"instances"`
	// GPUDemand counts jobs by the number of GPUs they touch.
	GPUDemand []GPUDemandBin `json:"gpu_demand"`
	// Status counts jobs by status ("" is unknown).
	Status map[Status]int `json:"status"`
	// ByHour counts arrivals by hour of the day in Meta.Zone (on a
	// relative clock, hours since the origin, modulo 24, shifted by the
	// zone's offset).
	ByHour [24]int `json:"by_hour"`
	// ByWeekday counts arrivals by weekday, Sunday first; nil on a relative
	// clock, whose weekdays are unknown.
	ByWeekday *[7]int `json:"by_weekday"`
	// ArrivalsPerHour is the mean arrival rate over the span of submit
	// times.
	ArrivalsPerHour float64 `json:"arrivals_per_hour"`
	// Duration summarises the known run times, in seconds.
	Duration DurationStats `json:"duration_s"`
	// GPUHours is the sum over jobs with a known duration of GPUs held
	// (fractions counted as such) times hours run.
	GPUHours float64 `json:"gpu_hours"`
	// FirstSubmit and LastSubmit bound the arrivals; LastEnd is the latest
	// end time. All are NoTime when unknown.
	FirstSubmit int64 `json:"first_submit"`
	LastSubmit  int64 `json:"last_submit"`
	LastEnd     int64 `json:"last_end"`
	// SpanSeconds is from the first arrival to the latest arrival or end.
	SpanSeconds int64 `json:"span_s"`
	// NoSubmit counts jobs without a submit time.
	NoSubmit int `json:"no_submit"`
	// Problems are the bad records skipped while reading.
	Problems Problems `json:"problems"`
}

// GPUDemandBin is the number of jobs that touch GPUs GPUs.
type GPUDemandBin struct {
	GPUs int `json:"gpus"`
	Jobs int `json:"jobs"`
}

// DurationStats are quantiles of job run times, in seconds.
type DurationStats struct {
	Known int     `json:"known"` // jobs with a known duration
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// ComputeStats reads src to the end and summarises it. It keeps one float
// per job (the durations, for exact quantiles) and nothing else per job.
// For a *Reader the skipped records are included.
func ComputeStats(src Source) (*Stats, error) {
	meta := src.Meta()
	loc, err := meta.Location()
	if err != nil {
		return nil, err
	}
	st := &Stats{Meta: meta, Status: map[Status]int{}, FirstSubmit: NoTime, LastSubmit: NoTime, LastEnd: NoTime}
	if meta.Clock == ClockUnix {
		st.ByWeekday = &[7]int{}
	}
	demand := map[int]int{}
	var durs []float64
	for {
		j, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		st.Jobs++
		st.Status[j.Status]++
		st.Instances += j.Instances()
		g := j.GPUs()
		demand[g]++
		milli := j.GPUMilli()
		if milli > 0 {
			st.GPUJobs++
			if milli < int64(g)*1000 {
				st.SharedGPUJobs++
			}
		}
		if j.Submit == NoTime {
			st.NoSubmit++
		} else {
			if st.FirstSubmit == NoTime || j.Submit < st.FirstSubmit {
				st.FirstSubmit = j.Submit
			}
			st.LastSubmit = max(st.LastSubmit, j.Submit)
			t := time.Unix(j.Submit, 0).In(loc)
			st.ByHour[t.Hour()]++
			if st.ByWeekday != nil {
				st.ByWeekday[t.Weekday()]++
			}
		}
		st.LastEnd = max(st.LastEnd, j.End)
		if j.Duration != NoTime {
			durs = append(durs, float64(j.Duration))
			st.GPUHours += float64(milli) / 1000 * float64(j.Duration) / 3600
		}
	}
	if r, ok := src.(*Reader); ok {
		st.Problems = r.Problems()
	}
	for g, n := range demand {
		st.GPUDemand = append(st.GPUDemand, GPUDemandBin{GPUs: g, Jobs: n})
	}
	sort.Slice(st.GPUDemand, func(a, b int) bool { return st.GPUDemand[a].GPUs < st.GPUDemand[b].GPUs })
	if st.FirstSubmit != NoTime {
		st.SpanSeconds = max(st.LastSubmit, st.LastEnd) - st.FirstSubmit
		if sub := st.LastSubmit - st.FirstSubmit; sub > 0 {
			st.ArrivalsPerHour = float64(st.Jobs-st.NoSubmit) / (float64(sub) / 3600)
		}
	}
	st.Duration = durationStats(durs)
	st.GPUHours = math.Round(st.GPUHours*1000) / 1000
	return st, nil
}

func durationStats(d []float64) DurationStats {
	ds := DurationStats{Known: len(d)}
	if len(d) == 0 {
		return ds
	}
	slices.Sort(d)
	q := func(p float64) float64 { return stat.Quantile(p, stat.Empirical, d, nil) }
	ds.Mean = math.Round(stat.Mean(d, nil)*10) / 10
	ds.P50, ds.P90, ds.P95, ds.P99, ds.Max = q(0.5), q(0.9), q(0.95), q(0.99), d[len(d)-1]
	return ds
}

// Days is the number of days the arrivals span (at least 1), to turn
// ByHour counts into rates.
func (s *Stats) Days() float64 {
	if s.FirstSubmit == NoTime {
		return 1
	}
	return max(1, float64(s.LastSubmit-s.FirstSubmit)/86400)
}

// FormatDuration prints seconds the way stats does: "3h25m", "12d4h".
func FormatDuration(sec float64) string {
	switch {
	case sec < 0:
		return "-"
	case sec < 60:
		return fmt.Sprintf("%.0fs", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm%02ds", int(sec)/60, int(sec)%60)
	case sec < 86400:
		return fmt.Sprintf("%dh%02dm", int(sec)/3600, int(sec)%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", int(sec)/86400, int(sec)%86400/3600)
}
