package traces

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJobValidate(t *testing.T) {
	ok := Job{ID: "j", Submit: 0, Start: NoTime, End: NoTime, Duration: NoTime, Tasks: []Task{{Count: 2, GPUs: 1, GPUMilli: 500}}}
	tests := []struct {
		name   string
		mutate func(j *Job)
		want   string
	}{
		{"valid", func(*Job) {}, ""},
		{"no id", func(j *Job) { j.ID = "" }, "job has no id"},
		{"time below -1", func(j *Job) { j.Submit = -7 }, "job j: submit is -7, want a non-negative time or -1 for unknown"},
		{"end before start", func(j *Job) { j.Start, j.End = 9, 8 }, "job j: end 8 is before start 9"},
		{"unknown status", func(j *Job) { j.Status = "done" }, `job j: unknown status "done"`},
		{"zero count", func(j *Job) { j.Tasks[0].Count = 0 }, "job j: task 0: count is 0, want at least 1"},
		{"share above a GPU", func(j *Job) { j.Tasks[0].GPUMilli = 1001 }, "job j: task 0: gpu_milli is 1001, want 1 to 1000"},
		{"GPUs without share", func(j *Job) { j.Tasks[0].GPUMilli = 0 }, "job j: task 0: gpu_milli is 0, want 1 to 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := ok.Clone()
			tc.mutate(&j)
			err := j.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tc.want)
			}
		})
	}
}

func TestJobDemand(t *testing.T) {
	j := Job{Tasks: []Task{{Count: 4, GPUs: 8, GPUMilli: 1000}, {Count: 2, GPUs: 1, GPUMilli: 250}, {Count: 3}}}
	assert.Equal(t, int64(32500), j.GPUMilli())
	assert.Equal(t, 34, j.GPUs())
	assert.Equal(t, 9, j.Instances())
	c := j.Clone()
	c.Tasks[0].Count = 1
	assert.Equal(t, 4, j.Tasks[0].Count, "Clone shares no slices")
}

func TestParseZone(t *testing.T) {
	for _, tc := range []struct {
		zone string
		off  int
	}{{"", 0}, {"UTC", 0}, {"+08:00", 8 * 3600}, {"-05:30", -(5*3600 + 1800)}} {
		loc, err := parseZone(tc.zone)
		require.NoError(t, err)
		_, off := timeAt(loc).Zone()
		assert.Equal(t, tc.off, off, tc.zone)
	}
	loc, err := parseZone("America/Los_Angeles")
	require.NoError(t, err)
	assert.Equal(t, "America/Los_Angeles", loc.String())
	_, err = parseZone("Mars/Olympus")
	assert.Error(t, err)
}

func TestParseErrorFormat(t *testing.T) {
	tests := []struct {
		err  *ParseError
		want string
	}{
		{&ParseError{File: "f.csv", Line: 3, Field: "gpu", Want: "a count", Got: "x"}, `f.csv:3: field gpu: want a count, got "x"`},
		{&ParseError{File: "log", Path: "$[2].jobid", Want: "a job id", Got: ""}, `log: $[2].jobid: want a job id, got ""`},
		{&ParseError{File: "f.csv", Line: 9, Err: errors.New("boom")}, `f.csv:9: boom`},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, tc.err.Error())
	}
	wrapped := &ParseError{File: "f", Err: errCause}
	assert.ErrorIs(t, wrapped, errCause)
}

var errCause = errors.New("cause")

func timeAt(loc *time.Location) time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, loc) }
