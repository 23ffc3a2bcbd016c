package traces

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCanonicalRoundTrip checks canonical → canonical is the identity, for
// every golden file, through CSV and through JSON Lines.
func TestCanonicalRoundTrip(t *testing.T) {
	for _, name := range []string{"openb_gpuspec33_head.csv", "openb_multigpu20_head.csv", "pai.csv", "philly.csv", "helios.csv"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile("testdata/golden/" + name)
			require.NoError(t, err)
			r, err := NewReader(bytes.NewReader(in), name, Options{Strict: true})
			require.NoError(t, err)
			require.Equal(t, FormatCSV, r.Meta().Format)
			assert.Equal(t, string(in), string(convertAll(t, r)), "CSV → CSV")

			// CSV → JSONL → CSV.
			r, err = NewReader(bytes.NewReader(in), name, Options{Strict: true})
			require.NoError(t, err)
			var jl bytes.Buffer
			w, err := NewWriter(&jl, FormatJSONL, r.Meta())
			require.NoError(t, err)
			for j, err := range r.All() {
				require.NoError(t, err)
				require.NoError(t, w.Write(&j))
			}
			require.NoError(t, w.Close())
			r, err = NewReader(bytes.NewReader(jl.Bytes()), name+".jsonl", Options{Strict: true})
			require.NoError(t, err)
			require.Equal(t, FormatJSONL, r.Meta().Format)
			assert.Equal(t, string(in), string(convertAll(t, r)), "CSV → JSONL → CSV")
		})
	}
}

func TestCanonicalPlannerFile(t *testing.T) {
	// What a planner might write by hand: no meta line, only some columns,
	// a two-task job, a job without tasks and -1 for an unknown time.
	in := "job_id,submit,duration,tenant,gpus,count,task\n" +
		"train-1,1700000000,3600,ml,8,4,worker\n" +
		"train-1,1700000000,3600,ml,0,1,ps\n" +
		"batch-2,1700000100,-1,etl,,,\n" +
		"serve-3,1700000200,,web,1,,\n" +
		"#petite-trace end rows=4\n" // strict reads want the trailer (see TestCanonicalWithoutTrailer)
	r, err := NewReader(strings.NewReader(in), "plan.csv", Options{Strict: true})
	require.NoError(t, err)
	jobs := readAll(t, r)
	assert.Equal(t, Meta{Format: FormatCSV, Clock: ClockUnix, Zone: "UTC"}, r.Meta())
	assert.Equal(t, []Job{
		{ID: "train-1", Tenant: "ml", Submit: 1700000000, Start: NoTime, End: NoTime, Duration: 3600, Tasks: []Task{
			{Name: "worker", Count: 4, GPUs: 8, GPUMilli: 1000}, {Name: "ps", Count: 1}}},
		{ID: "batch-2", Tenant: "etl", Submit: 1700000100, Start: NoTime, End: NoTime, Duration: NoTime},
		{ID: "serve-3", Tenant: "web", Submit: 1700000200, Start: NoTime, End: NoTime, Duration: NoTime, Tasks: []Task{{Count: 1, GPUs: 1, GPUMilli: 1000}}},
	}, jobs)
}

func TestCanonicalErrors(t *testing.T) {
	hdr := "#petite-trace v1 clock=unix zone=UTC\n" + strings.Join(canonicalColumns, ",") + "\n"
	tests := []struct{ name, in, want string }{
		{"bad status", hdr + "j,1,,,,,,,,,done,,1,0,0,,0,0\n", `c.csv:3: field status: want succeeded, failed, killed, timeout, running, pending or empty, got "done"`},
		{"end before start", hdr + "j,1,10,5,,,,,,,,,1,0,0,,0,0\n", `c.csv:3: job j: end 5 is before start 10`},
		{"rows of one job disagree", hdr + "j,1,,,,a,,,,,,,1,0,0,,0,0\nj,1,,,,b,,,,,,,1,0,0,,0,0\n", `c.csv:4: want the job fields of job j's first row (line 3), got "j,1,,,,b,,,,,"`},
		{"gpu share on a CPU task", hdr + "j,1,,,,,,,,,,,1,0,500,,0,0\n", `c.csv:3: job j: task 0: gpu_milli is 500 on a task with no GPUs, want 0`},
		{"bad meta", "#petite-trace v9\njob_id,submit\n", `c.csv:1: want #petite-trace v1, got "#petite-trace v9"`},
		{"bad kind", hdr + "j,1,,,,,,,,batch,,,1,0,0,,0,0\n", `c.csv:3: field kind: want training, inference or empty, got "batch"`},
		{"jsonl unknown field", `{"id":"j","submit":1,"tasks":[],"gpu":3}` + "\n", `c.csv:1: not a JSON job: json: unknown field "gpu"`},
		{"jsonl wrong type", `{"id":"j","submit":"soon"}` + "\n", `c.csv:1: submit: want a JSON int64, got "string"`},
		{"jsonl invalid job", `{"id":"","submit":1}` + "\n", `c.csv:1: job has no id`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tc.in), "c.csv", Options{Strict: true})
			if err == nil {
				_, err = r.Next()
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestJSONLMeta(t *testing.T) {
	in := `{"petite_trace":"v1","clock":"relative","zone":"+08:00"}` + "\n\n" + `{"id":"a","submit":5,"tasks":[{"count":1,"gpus":1,"gpu_milli":250}]}` + "\n" +
		`{"petite_trace":"end","jobs":1}` + "\n"
	r, err := NewReader(strings.NewReader(in), "x.jsonl", Options{Strict: true})
	require.NoError(t, err)
	jobs := readAll(t, r)
	assert.Equal(t, Meta{Format: FormatJSONL, Clock: ClockRelative, Zone: "+08:00"}, r.Meta())
	require.Len(t, jobs, 1)
	assert.Equal(t, Job{ID: "a", Submit: 5, Start: NoTime, End: NoTime, Duration: NoTime, Tasks: []Task{{Count: 1, GPUs: 1, GPUMilli: 250}}}, jobs[0])
}

// TestCanonicalBadRowCharge checks a bad row is charged to its own job: the
// job before it comes out whole, the bad job is skipped once with all its
// rows, and the next job is read.
func TestCanonicalBadRowCharge(t *testing.T) {
	in := "job_id,submit,task,count,gpus\n" +
		"a,1,w,1,1\n" +
		"a,1,w,1,2\n" +
		"b,2,w,x,1\n" + // bad count: job b is bad
		"b,2,p,1,1\n" +
		"c,3,w,1,1\n" +
		"c,3,p,y,1\n" + // bad row inside job c
		"d,4,w,1,1\n"
	r, err := NewReader(strings.NewReader(in), "j.csv", Options{})
	require.NoError(t, err)
	jobs := readAll(t, r)
	require.Len(t, jobs, 2)
	assert.Equal(t, "a", jobs[0].ID)
	assert.Len(t, jobs[0].Tasks, 2)
	assert.Equal(t, "d", jobs[1].ID)
	assert.Equal(t, []string{
		`j.csv:4: field count: want a non-negative integer, got "x"`,
		`j.csv:7: field count: want a non-negative integer, got "y"`,
	}, r.Problems().Examples)
}

func TestCSVWriterRefusesAdjacentSameID(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, FormatCSV, Meta{Clock: ClockUnix, Zone: "UTC"})
	require.NoError(t, err)
	j := Job{ID: "x", Start: NoTime, End: NoTime, Duration: NoTime}
	require.NoError(t, w.Write(&j))
	assert.EqualError(t, w.Write(&j), `job "x" follows a job with the same id: canonical CSV would read them as one`)
}

// JSON would replace bytes that are not UTF-8 with U+FFFD, so the JSON
// Lines writer refuses such a job instead of writing another one; canonical
// CSV keeps the bytes and reads them back as written.
func TestJSONLWriterRefusesInvalidUTF8(t *testing.T) {
	task := func(name string, models ...string) []Task {
		return []Task{{Name: name, Count: 1, GPUs: 1, GPUMilli: 1000, GPUModels: models}}
	}
	tests := []struct {
		name string
		job  Job
		want string
	}{
		{"id", Job{ID: "\xb4"}, `job "\xb4": id is not valid UTF-8`},
		{"tenant", Job{ID: "a", Tenant: "caf\xe9"}, `job "a": tenant is not valid UTF-8`},
		{"task name", Job{ID: "a", Tasks: task("w\xff")}, `job "a": task 0 name is not valid UTF-8`},
		{"gpu model", Job{ID: "a", Tasks: task("w", "A100", "V\xc0")}, `job "a": task 0 gpu_models is not valid UTF-8`},
		{"valid UTF-8 is fine", Job{ID: "作业-1", Tenant: "café", Tasks: task("wörker", "A100")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.job.Submit, tc.job.Start, tc.job.End, tc.job.Duration = 1, NoTime, NoTime, NoTime
			var buf bytes.Buffer
			w, err := NewWriter(&buf, FormatJSONL, Meta{Clock: ClockUnix, Zone: "UTC"})
			require.NoError(t, err)
			err = w.Write(&tc.job)
			require.NoError(t, w.Close())
			if tc.want != "" {
				assert.ErrorContains(t, err, tc.want)
				assert.Equal(t, `{"petite_trace":"v1","clock":"unix","zone":"UTC"}`+"\n"+`{"petite_trace":"end","jobs":0}`+"\n", buf.String(), "only the meta line and the trailer")
			} else {
				require.NoError(t, err)
			}
			// Canonical CSV holds the bytes as they are.
			buf.Reset()
			w, err = NewWriter(&buf, FormatCSV, Meta{Clock: ClockUnix, Zone: "UTC"})
			require.NoError(t, err)
			require.NoError(t, w.Write(&tc.job))
			require.NoError(t, w.Close())
			r, err := NewReader(bytes.NewReader(buf.Bytes()), "c", Options{Strict: true})
			require.NoError(t, err)
			got := readAll(t, r)
			require.Len(t, got, 1)
			assert.True(t, sameJob(tc.job, got[0]), "got %+v", got[0])
		})
	}
}
