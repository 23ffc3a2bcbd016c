package traces

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// "None" may stand for any attempt's start or end. When the earliest known
// start falls after the latest known end (no attempt has both), neither is
// the job's first start or last end: the job is kept with both unknown.
func TestPhillyNoneTimes(t *testing.T) {
	loc, err := time.LoadLocation(phillyZone)
	require.NoError(t, err)
	at := func(hhmm string) int64 {
		tm, err := time.ParseInLocation(phillyTimeLayout, "2017-10-01 "+hhmm+":00", loc)
		require.NoError(t, err)
		return tm.Unix()
	}
	attempt := func(start, end string, detail string) string {
		q := func(s string) string {
			if s == "None" {
				return `"None"`
			}
			return `"2017-10-01 ` + s + `:00"`
		}
		return fmt.Sprintf(`{"start_time": %s, "end_time": %s, "detail": [%s]}`, q(start), q(end), detail)
	}
	machines := `{"ip": "m1", "gpus": ["gpu0", "gpu3"]}, {"ip": "m2", "gpus": ["gpu7"]}`
	tests := []struct {
		name            string
		attempts        []string
		start, end, dur int64
	}{
		{"start None then end None", []string{attempt("None", "01:00", machines), attempt("02:00", "None", "")}, NoTime, NoTime, NoTime},
		{"end None then start None", []string{attempt("02:00", "None", machines), attempt("None", "01:00", "")}, NoTime, NoTime, NoTime},
		{"three attempts, none with both", []string{attempt("None", "01:00", machines), attempt("None", "None", ""), attempt("02:00", "None", "")}, NoTime, NoTime, NoTime},
		{"end None then start None, in order", []string{attempt("01:00", "None", machines), attempt("None", "03:00", "")}, at("01:00"), at("03:00"), 7200},
		{"an attempt with both times bounds the job", []string{attempt("None", "01:00", machines), attempt("02:00", "03:00", "")}, at("02:00"), at("03:00"), 3600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := `[{"status": "Pass", "jobid": "a", "submitted_time": "2017-10-01 00:00:00", "attempts": [` + strings.Join(tc.attempts, ", ") + `]}]`
			r, err := NewPhillyReader(strings.NewReader(in), "log", Options{Strict: true})
			require.NoError(t, err)
			jobs := readAll(t, r)
			require.Len(t, jobs, 1, "the job is kept")
			j := jobs[0]
			assert.Equal(t, []int64{at("00:00"), tc.start, tc.end, tc.dur}, []int64{j.Submit, j.Start, j.End, j.Duration})
			assert.Equal(t, []Task{{Name: "worker", Count: 1, GPUs: 2, GPUMilli: 1000}, {Name: "worker", Count: 1, GPUs: 1, GPUMilli: 1000}}, j.Tasks)
			assert.Equal(t, StatusSucceeded, j.Status)
			assert.NoError(t, j.Validate())
		})
	}
}
