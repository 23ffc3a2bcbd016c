package traces

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces/samples"
)

func genCSV(t *testing.T, spec Spec) []byte {
	t.Helper()
	g, err := NewGenerator(spec)
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, FormatCSV, g.Meta())
	require.NoError(t, err)
	for {
		j, err := g.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NoError(t, j.Validate())
		require.NoError(t, w.Write(&j))
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestGenDeterministic(t *testing.T) {
	spec := DefaultSpec()
	spec.Jobs = 2000
	a, b := genCSV(t, spec), genCSV(t, spec)
	assert.Equal(t, a, b, "same seed, same bytes")
	spec.Seed = 2
	assert.NotEqual(t, a, genCSV(t, spec))
}

func TestGenPoissonRate(t *testing.T) {
	spec := DefaultSpec()
	spec.Jobs = 20000
	spec.Arrival = Arrival{Process: "poisson", RatePerHour: 60}
	g, err := NewGenerator(spec)
	require.NoError(t, err)
	st, err := ComputeStats(g)
	require.NoError(t, err)
	assert.Equal(t, 20000, st.Jobs)
	assert.InEpsilon(t, 60, st.ArrivalsPerHour, 0.03)
	// Lognormal median is exp(mu).
	assert.InEpsilon(t, math.Exp(spec.Duration.Mu), st.Duration.P50, 0.05)
}

func TestGenDiurnal(t *testing.T) {
	spec := DefaultSpec()
	spec.Jobs = 50000
	spec.Arrival.Hourly = make([]float64, 24)
	for h := 9; h < 17; h++ {
		spec.Arrival.Hourly[h] = 1
	}
	g, err := NewGenerator(spec)
	require.NoError(t, err)
	st, err := ComputeStats(g)
	require.NoError(t, err)
	for h, n := range st.ByHour {
		if h < 9 || h >= 17 {
			assert.Zero(t, n, "no arrivals at hour %d", h)
		} else {
			assert.InEpsilon(t, 50000.0/8, n, 0.05, "hour %d", h)
		}
	}
}

func TestFitOpenb(t *testing.T) {
	r, err := NewReader(bytes.NewReader(samples.OpenbDefaultPods()), "pods", Options{Strict: true})
	require.NoError(t, err)
	spec, err := Fit(r)
	require.NoError(t, err)
	assert.Equal(t, 8152, spec.Jobs)
	assert.Equal(t, "diurnal", spec.Arrival.Process)
	assert.Len(t, spec.Arrival.Hourly, 24)
	assert.Equal(t, ClockRelative, spec.Clock)
	assert.LessOrEqual(t, len(spec.Shapes), maxFitShapes)

	// A trace generated from the fit has about the same GPU-demand mix.
	g, err := NewGenerator(spec)
	require.NoError(t, err)
	got, err := ComputeStats(g)
	require.NoError(t, err)
	r, err = NewReader(bytes.NewReader(samples.OpenbDefaultPods()), "pods", Options{Strict: true})
	require.NoError(t, err)
	want, err := ComputeStats(r)
	require.NoError(t, err)
	assert.InDelta(t, float64(want.GPUJobs)/float64(want.Jobs), float64(got.GPUJobs)/float64(got.Jobs), 0.05)
	assert.InDelta(t, float64(want.SharedGPUJobs)/float64(want.Jobs), float64(got.SharedGPUJobs)/float64(got.Jobs), 0.05)
	assert.InEpsilon(t, want.ArrivalsPerHour, got.ArrivalsPerHour, 0.1)
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Spec)
		want   string
	}{
		{"default is valid", func(*Spec) {}, ""},
		{"bad process", func(s *Spec) { s.Arrival.Process = "bursty" }, `spec: arrival.process "bursty", want poisson or diurnal`},
		{"short hourly", func(s *Spec) { s.Arrival.Hourly = []float64{1} }, "spec: arrival.hourly has 1 weights, want 24"},
		{"zero rate", func(s *Spec) { s.Arrival.RatePerHour = 0 }, "spec: arrival.rate_per_hour is 0, want a finite number >= 1e-06"},
		{"rate below the bound", func(s *Spec) { s.Arrival.RatePerHour = 1e-300 }, "spec: arrival.rate_per_hour is 1e-300, want a finite number >= 1e-06"},
		{"infinite rate", func(s *Spec) { s.Arrival.RatePerHour = math.Inf(1) }, "spec: arrival.rate_per_hour is +Inf, want a finite number >= 1e-06"},
		{"negative start", func(s *Spec) { s.Start = -5 }, "spec: start is -5, want a time >= 0"},
		{"span past int64", func(s *Spec) { s.Jobs, s.Arrival.RatePerHour = 3_000_000_000, MinRatePerHour },
			"spec: 3000000000 jobs at 1e-06 per hour from start 0 span 1.08e+19 s on average, past the last time a trace can hold (9223372036854775807)"},
		{"start near the end", func(s *Spec) { s.Start = math.MaxInt64 - 1000 },
			"spec: 10000 jobs at 120 per hour from start 9223372036854774807 span 3e+05 s on average, past the last time a trace can hold (9223372036854775807)"},
		{"bad dist", func(s *Spec) { s.Duration.Dist = "normal" }, `spec: duration.dist "normal", want lognormal or pareto`},
		{"min above max", func(s *Spec) { s.Duration.Min = 10; s.Duration.Max = 5 }, "spec: duration min 10, max 5: want 1 <= min <= max"},
		{"no shapes", func(s *Spec) { s.Shapes = nil }, "spec: no shapes"},
		{"bad task", func(s *Spec) { s.Shapes[0].Tasks[0].Count = 0 }, "spec: shape 0: task 0: count is 0, want at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSpec()
			tc.mutate(&s)
			err := s.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tc.want)
			}
		})
	}
	_, err := ReadSpec(strings.NewReader(`{"jobs": 1, "typo": 2}`))
	assert.EqualError(t, err, `spec: json: unknown field "typo"`)
}

// A spec whose mean span just fits may still draw an arrival past the last
// int64 time: the generator stops with an error instead of wrapping the
// clock around to negative submit times.
func TestGenClockOverflow(t *testing.T) {
	spec := DefaultSpec()
	spec.Arrival = Arrival{Process: "poisson", RatePerHour: 1}
	spec.Jobs = 3
	spec.Start = math.MaxInt64 - 4*3600 // room for 4 mean gaps, 3 asked
	errs := 0
	for seed := range uint64(20) {
		spec.Seed = seed
		g, err := NewGenerator(spec)
		require.NoError(t, err)
		for {
			j, err := g.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				assert.ErrorContains(t, err, "arrives past the last time a trace can hold")
				_, again := g.Next()
				assert.Equal(t, err, again, "the error sticks")
				errs++
				break
			}
			assert.GreaterOrEqual(t, j.Submit, spec.Start, "seed %d: %s", seed, j.ID)
		}
	}
	assert.Positive(t, errs, "some of 20 seeds draw past the end")
}

func TestGenPareto(t *testing.T) {
	spec := DefaultSpec()
	spec.Jobs = 20000
	spec.Duration = DurationDist{Dist: "pareto", Xm: 60, Alpha: 1.5, Min: 1, Max: 1 << 40}
	g, err := NewGenerator(spec)
	require.NoError(t, err)
	st, err := ComputeStats(g)
	require.NoError(t, err)
	// Pareto median is xm·2^(1/alpha).
	assert.InEpsilon(t, 60*math.Pow(2, 1/1.5), st.Duration.P50, 0.05)
	assert.GreaterOrEqual(t, st.Duration.P50, 60.0)
}

// TestGenJobsOwnTheirParts: ids and task lists are cut from shared
// blocks, yet every job's are its own: ids run gen-1, gen-2, … across
// blocks, and a job's tasks changed or appended to leave the other jobs'
// as the spec has them.
func TestGenJobsOwnTheirParts(t *testing.T) {
	spec := DefaultSpec()
	spec.Jobs = 3*genBlock + 7
	// two tasks a job: a block holds fewer lists than ids
	spec.Shapes = []Shape{{Weight: 1, Tasks: []Task{{Count: 1, GPUs: 1, GPUMilli: 1000}, {Count: 2, CPUMilli: 500}}}}
	g, err := NewGenerator(spec)
	require.NoError(t, err)
	var jobs []Job
	for {
		j, err := g.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		j.Tasks[0].Count = 99 // the job's own
		j.Tasks = append(j.Tasks, Task{Count: 5})
		jobs = append(jobs, j)
	}
	require.Len(t, jobs, spec.Jobs)
	for i, j := range jobs {
		require.Equal(t, "gen-"+strconv.Itoa(i+1), j.ID)
		require.Equal(t, []Task{{Count: 99, GPUs: 1, GPUMilli: 1000}, {Count: 2, CPUMilli: 500}, {Count: 5}}, j.Tasks, "job %d", i+1)
	}
	assert.Equal(t, 1, spec.Shapes[0].Tasks[0].Count, "the spec's tasks untouched")
}

// TestGenHourOf: the generator's cached hour of the day is the zone's,
// across daylight-saving changes (Lord Howe's are half an hour), odd
// offsets and fixed zones, for times visited in order and out of it.
func TestGenHourOf(t *testing.T) {
	for _, zone := range []string{"UTC", "+05:45", "-03:30", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/Dublin"} {
		t.Run(zone, func(t *testing.T) {
			spec := DefaultSpec()
			spec.Zone = zone
			g, err := NewGenerator(spec)
			if err != nil {
				t.Skipf("zone %s: %v", zone, err)
			}
			rng := rand.New(rand.NewPCG(7, 7))
			s := int64(1_700_000_000) // late 2023: the zones' rules of now
			for i := range 400_000 {
				if i%1000 == 0 {
					s += int64(rng.IntN(40*86400)) - 20*86400 // a jump, backwards too
				} else {
					s += int64(rng.IntN(1800)) - 600 // mostly on, at times back
				}
				require.Equal(t, time.Unix(s, 0).In(g.loc).Hour(), g.hourOf(s), "zone %s, unix %d", zone, s)
			}
		})
	}
}

// TestGenNextInto: NextInto gives the jobs Next gives, writing each into
// the job handed back with no allocation once its task list has room, and
// leaves the job as it was at the end.
func TestGenNextInto(t *testing.T) {
	spec := DefaultSpec()
	spec.Jobs = 3 * genBlock
	spec.Shapes = append(spec.Shapes, Shape{Weight: 0.1, Tasks: []Task{{Name: "worker", Count: 2, GPUs: 1, GPUMilli: 1000}, {Name: "ps", Count: 1, CPUMilli: 500}}})
	a, err := NewGenerator(spec)
	require.NoError(t, err)
	b, err := NewGenerator(spec)
	require.NoError(t, err)
	var into Job
	for i := range spec.Jobs {
		want, err := a.Next()
		require.NoError(t, err)
		require.NoError(t, b.NextInto(&into))
		require.Equal(t, want, into, "job %d", i+1)
	}
	last := into
	require.ErrorIs(t, b.NextInto(&into), io.EOF)
	assert.Equal(t, last, into)

	c, err := NewGenerator(spec)
	require.NoError(t, err)
	into = Job{Tasks: make([]Task, 0, 4)}
	room := &into.Tasks[:1][0]
	allocs := testing.AllocsPerRun(spec.Jobs-1, func() {
		if err := c.NextInto(&into); err != nil {
			t.Fatal(err)
		}
		require.Same(t, room, &into.Tasks[0], "the task list's room reused")
	})
	assert.Zero(t, allocs, "allocations a job (ids come a block at a time)")
}
