package traces

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces/samples"
)

func TestStatsOpenbDefault(t *testing.T) {
	data := samples.OpenbDefaultPods()
	r, err := NewReader(bytes.NewReader(data), samples.OpenbDefaultPodsFile, Options{Strict: true})
	require.NoError(t, err)
	st, err := ComputeStats(r)
	require.NoError(t, err)

	// Recount from the raw rows, independently of the job conversion.
	pods, err := ReadOpenbPods(bytes.NewReader(data), "x")
	require.NoError(t, err)
	gpuPods, shared, byGPU := 0, 0, map[int]int{}
	for _, p := range pods {
		byGPU[p.NumGPU]++
		if p.NumGPU > 0 {
			gpuPods++
			if p.GPUMilli < 1000 {
				shared++
			}
		}
	}
	assert.Equal(t, len(pods), st.Jobs)
	assert.Equal(t, bytes.Count(data, []byte("\n"))-1, st.Jobs)
	assert.Equal(t, gpuPods, st.GPUJobs)
	assert.Equal(t, shared, st.SharedGPUJobs)
	sum := 0
	for _, b := range st.GPUDemand {
		assert.Equal(t, byGPU[b.GPUs], b.Jobs, "jobs with %d GPUs", b.GPUs)
		sum += b.Jobs
	}
	assert.Equal(t, st.Jobs, sum)
	assert.Nil(t, st.ByWeekday, "openb times are relative: no weekdays")
	hours := 0
	for _, n := range st.ByHour {
		hours += n
	}
	assert.Equal(t, st.Jobs, hours)
	assert.Equal(t, int64(0), st.FirstSubmit)
	assert.Equal(t, int64(12902960), st.LastEnd)
	assert.LessOrEqual(t, st.Duration.P50, st.Duration.P90)
	assert.LessOrEqual(t, st.Duration.P99, st.Duration.Max)
	assert.Positive(t, st.GPUHours)
	assert.Equal(t, 0, st.Problems.Skipped)
}

func TestStatsSmall(t *testing.T) {
	in := "#petite-trace v1 clock=unix zone=UTC\njob_id,submit,start,end,duration,gpus,gpu_milli,count\n" +
		"a,0,0,3600,3600,2,1000,1\n" + // Thursday 1970-01-01 00:00 UTC, 2 GPU-hours
		"b,7200,7200,9000,1800,1,500,1\n" + // 02:00, 0.25 GPU-hours
		"c,86400,,,,0,0,1\n" + // Friday 00:00, no duration
		"#petite-trace end rows=3\n"
	r, err := NewReader(strings.NewReader(in), "s.csv", Options{Strict: true})
	require.NoError(t, err)
	st, err := ComputeStats(r)
	require.NoError(t, err)
	assert.Equal(t, 3, st.Jobs)
	assert.Equal(t, 2, st.GPUJobs)
	assert.Equal(t, 1, st.SharedGPUJobs)
	assert.Equal(t, 2.25, st.GPUHours)
	assert.Equal(t, []GPUDemandBin{{0, 1}, {1, 1}, {2, 1}}, st.GPUDemand)
	assert.Equal(t, 2, st.ByHour[0])
	assert.Equal(t, 1, st.ByHour[2])
	require.NotNil(t, st.ByWeekday)
	assert.Equal(t, [7]int{4: 2, 5: 1}, *st.ByWeekday)
	assert.Equal(t, 2, st.Duration.Known)
	assert.Equal(t, 1800.0, st.Duration.P50)
	assert.Equal(t, 3600.0, st.Duration.Max)
	assert.Equal(t, int64(86400), st.SpanSeconds)
	assert.InDelta(t, 3.0/24, st.ArrivalsPerHour, 1e-9)
}

func TestSample(t *testing.T) {
	open := func() Source {
		r, err := NewReader(bytes.NewReader(samples.OpenbDefaultPods()), "pods", Options{Strict: true})
		require.NoError(t, err)
		return r
	}
	a, err := Sample(open(), 100, 7)
	require.NoError(t, err)
	b, err := Sample(open(), 100, 7)
	require.NoError(t, err)
	c, err := Sample(open(), 100, 8)
	require.NoError(t, err)
	require.Len(t, a, 100)
	assert.Equal(t, a, b, "same seed, same sample")
	assert.NotEqual(t, a, c, "another seed, another sample")
	for i := 1; i < len(a); i++ {
		assert.Less(t, a[i-1].ID, a[i].ID, "file order kept")
	}
	all, err := Sample(open(), 1_000_000, 1)
	require.NoError(t, err)
	assert.Len(t, all, 8152, "asking for more than there is gives everything")
}
