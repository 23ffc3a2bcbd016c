package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
)

// petite job status shows a queued job's estimated start, or why it has
// none, and nothing for a running job.
func TestPrintJobEstimate(t *testing.T) {
	for _, tc := range []struct {
		job  api.Job
		want string
	}{
		{api.Job{ID: "q", Status: api.StatusQueued, Count: 1, EstimatedStart: "2026-11-30T11:00:00Z", EstimateNote: "a replay"}, "  estimated start: 2026-11-30T11:00:00Z (a replay)\n"},
		{api.Job{ID: "q", Status: api.StatusQueued, Count: 1, EstimateNote: "not estimated: x"}, "  estimated start: none (not estimated: x)\n"},
		{api.Job{ID: "r", Status: api.StatusRunning, Count: 1, EstimatedStart: "2026-11-30T11:00:00Z"}, ""},
	} {
		var b bytes.Buffer
		require.NoError(t, printJob(&b, tc.job))
		if tc.want == "" {
			assert.NotContains(t, b.String(), "estimated start")
		} else {
			assert.Contains(t, b.String(), tc.want)
		}
	}
}
