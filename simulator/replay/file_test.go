package replay

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/fleet"
	"petite/traces"
)

var update = flag.Bool("update", false, "rewrite testdata/section7.csv")

// section7CSV renders genSection7(1, 32, 3) in the canonical CSV format.
func section7CSV(t *testing.T) []byte {
	var buf bytes.Buffer
	w, err := traces.NewWriter(&buf, traces.FormatCSV, traces.Meta{Clock: traces.ClockRelative, Zone: "UTC"})
	require.NoError(t, err)
	for i, j := range genSection7(1, 32, 3) {
		tj := traces.Job{ID: fmt.Sprintf("job-%03d", i), Submit: j.submit, Start: traces.NoTime, End: traces.NoTime, Duration: j.dur,
			Kind: traces.KindTraining, Tasks: []traces.Task{{Count: 1, GPUs: j.gpus, GPUMilli: 1000}}}
		require.NoError(t, w.Write(&tj))
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// The shipped §7-like trace is genSection7's, and replaying it from the
// files through FromTrace gives the oracle's numbers.
func TestSection7File(t *testing.T) {
	path := filepath.Join("testdata", "section7.csv")
	want := section7CSV(t)
	if *update {
		require.NoError(t, os.WriteFile(path, want, 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "regenerate with go test ./simulator/replay/ -run TestSection7File -update")

	r, err := traces.Open(path, traces.Options{Strict: true})
	require.NoError(t, err)
	var src []traces.Job
	for j, err := range r.All() {
		require.NoError(t, err)
		src = append(src, j)
	}
	require.NoError(t, r.Close())
	jobs, err := FromTrace(src, path, 0)
	require.NoError(t, err)
	pools, nodes, err := fleet.Load(filepath.Join("testdata", "burst-fleet.yaml"))
	require.NoError(t, err)
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobs, WarmupJobs: 5,
		Burst: &Burst{Wait: WaitPolicy{Kind: WaitConstant, Budget: 15 * Second}}})
	require.NoError(t, err)
	checkSummary(t, oracleRun(genSection7(1, 32, 3), 4, 15*Second), res.Summary, 5, 32)
	assert.Positive(t, res.Summary.CloudJobs)
}
