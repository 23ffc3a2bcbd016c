package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A real trace holds jobs larger than any node of the fleet: by default
// the run stops at the first, naming it and --unfit skip; with --unfit
// skip they are left out and the summary counts and lists them (text and
// JSON), and the counts reconcile: the jobs replayed and the jobs left out
// are the trace's jobs, and every replayed job ended.
func TestSimRunUnfit(t *testing.T) {
	const pai = "../../traces/testdata/pai/pai_task_table.csv"
	args := []string{"sim", "run", "--trace", pai, "--default-duration", "1h"}
	code, _, errOut := petite(t, nil, args...)
	require.Equal(t, 1, code)
	assert.Contains(t, errOut, "pai_task_table.csv: record 3 (job d4e5f6a7b8c9d0e1f2a3b4c5): a task of 8 GPUs")
	assert.Contains(t, errOut, "--unfit skip")

	code, out, errOut := petite(t, nil, append(args, "--unfit", "skip", "--json")...)
	require.Equal(t, 0, code, errOut)
	var s struct {
		Total, Ended, Running, Queued, InCloud, Future, Unfit int
		UnfitJobs                                             []struct {
			Record int
			ID     string
			Reason string
		} `json:"unfit_jobs"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	// the sample's 7 jobs (one a task group): 3 fit no node of the demo fleet
	assert.Equal(t, 3, s.Unfit)
	assert.Equal(t, 7, s.Total+s.Unfit)
	assert.Equal(t, s.Total, s.Ended)
	require.Len(t, s.UnfitJobs, 3)
	recs := []int{}
	for _, u := range s.UnfitJobs {
		recs = append(recs, u.Record)
		assert.Contains(t, u.Reason, "fits no empty node of the fleet")
	}
	assert.Equal(t, []int{3, 6, 4}, recs, "in submission order")
	assert.Equal(t, "d4e5f6a7b8c9d0e1f2a3b4c5", s.UnfitJobs[0].ID)

	code, out, errOut = petite(t, nil, append(args, "--unfit", "skip")...)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `\nunfit jobs left out \(--unfit skip\) +3\n`, out)
	assert.Regexp(t, `\n  unfit job +\.\./\.\./traces/testdata/pai/pai_task_table\.csv: record 6 \(job e5f6a7b8c9d0e1f2a3b4c5d6\): a task of 1 GPUs`, out)

	code, _, errOut = petite(t, nil, append(args, "--unfit", "drop")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--unfit")

	// a trace in submission order streams, and leaves out the same
	dir := t.TempDir()
	sorted := filepath.Join(dir, "big.csv")
	require.NoError(t, os.WriteFile(sorted, []byte("job_id,submit,duration,gpus\na,0,100,1\nbig,10,100,64\nc,20,100,2\nhuge,30,100,32\n"), 0o644))
	before := streamedRuns
	code, streamed, errOut := petite(t, nil, "sim", "run", "--trace", sorted, "--unfit", "skip", "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, before+1, streamedRuns)
	_, whole, _ := petite(t, nil, "sim", "run", "--trace", sorted, "--unfit", "skip", "--json", "--series", filepath.Join(dir, "s.csv"))
	assert.Equal(t, whole, streamed)
	require.NoError(t, json.Unmarshal([]byte(streamed), &s))
	assert.Equal(t, 2, s.Unfit)
	assert.Equal(t, 2, s.Total)
	code, _, errOut = petite(t, nil, "sim", "run", "--trace", sorted)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "big.csv: record 2 (job big): a task of 64 GPUs")
}
