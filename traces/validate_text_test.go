package traces

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Strings canonical CSV cannot give back as written are refused by
// Validate, so no reader hands out a job that a round trip would change.
// Fuzzing found the first: a JSON Lines job with the id " " came back from
// CSV without one.
func TestValidateText(t *testing.T) {
	task := func(name string, models ...string) []Task {
		return []Task{{Name: name, Count: 1, GPUs: 1, GPUMilli: 1000, GPUModels: models}}
	}
	tests := []struct {
		name string
		job  Job
		want string
	}{
		{"blank id", Job{ID: " "}, `job " ": id " " has spaces around it`},
		{"tenant with a trailing space", Job{ID: "a", Tenant: "bob "}, `job "a": tenant "bob " has spaces around it`},
		{"group with a carriage return", Job{ID: "a", Group: "v\r\nc"}, `job "a": group "v\r\nc" has a control character`},
		{"task name with a tab", Job{ID: "a", Tasks: task("w\t1")}, `job a: task 0: name "w\t1" has a control character`},
		{"empty model", Job{ID: "a", Tasks: task("w", "A100", "")}, `job a: task 0: gpu model 1 is empty, want a name`},
		{"model with a bar", Job{ID: "a", Tasks: task("w", "A|B")}, `job a: task 0: gpu model "A|B": want a name without "|" (which separates models)`},
		{"model twice", Job{ID: "a", Tasks: task("w", "A", "B", "A")}, `job a: task 0: gpu model "A" is listed twice`},
		{"fine", Job{ID: "a b", Tenant: "café", Tasks: task("w", "A100", "H100")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.job.Submit, tc.job.Start, tc.job.End, tc.job.Duration = 1, NoTime, NoTime, NoTime
			err := tc.job.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				var buf bytes.Buffer
				w, err := NewWriter(&buf, FormatCSV, Meta{Clock: ClockUnix, Zone: "UTC"})
				require.NoError(t, err)
				require.NoError(t, w.Write(&tc.job))
				require.NoError(t, w.Close())
				r, err := NewReader(&buf, "x", Options{Strict: true})
				require.NoError(t, err)
				jobs := readAll(t, r)
				require.Len(t, jobs, 1)
				assert.True(t, sameJob(tc.job, jobs[0]), "%+v", jobs[0])
				return
			}
			assert.EqualError(t, err, tc.want)
		})
	}
	// The JSON Lines reader, which trims nothing, refuses such a job.
	r, err := NewReader(strings.NewReader(`{"id":" ","submit":1}`+"\n"), "x.jsonl", Options{Strict: true})
	require.NoError(t, err)
	_, err = r.Next()
	assert.EqualError(t, err, `x.jsonl:1: job " ": id " " has spaces around it`)
}
