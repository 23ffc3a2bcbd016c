package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// writeSnapshot writes the snapshot of a one-node machine: job a (8 GPUs,
// walltime 1 h) started at 100, job b (8 GPUs, no walltime) queued.
func writeSnapshot(t *testing.T) string {
	t.Helper()
	m := state.New()
	gpus := make([]scheduler.GPU, 8)
	for i := range gpus {
		gpus[i] = scheduler.GPU{Model: "H100", MemoryMiB: 81920}
	}
	task := scheduler.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}
	for _, c := range []state.Command{
		state.RegisterPool{Pool: scheduler.Pool{Name: "onprem", Kind: scheduler.PoolOnPrem}},
		state.RegisterNode{Node: scheduler.Node{Name: "n1", Pool: "onprem", CPUMilli: 64000, MemoryMiB: 1 << 20, GPUs: gpus}},
		state.Submit{Job: scheduler.Job{ID: "a", Kind: scheduler.Training, Count: 1, Walltime: 3600, Task: task}, At: 90},
		state.Submit{Job: scheduler.Job{ID: "b", Kind: scheduler.Training, Count: 1, Task: task}, At: 95},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	pol, err := m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	require.NoError(t, err)
	plan, err := m.Plan(scheduler.Pass{Now: 100, Policy: pol, Rng: rand.New(rand.NewPCG(1, 1))})
	require.NoError(t, err)
	_, err = m.Apply(state.PlanCommand(plan, 100))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, m.Snapshot(&buf))
	path := filepath.Join(t.TempDir(), "snap.json")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

// sim run --from-snapshot replays the snapshot's live jobs: a ends after the
// rest of its walltime, b (no walltime: --default-duration) starts then.
func TestSimRunFromSnapshot(t *testing.T) {
	path := writeSnapshot(t)
	code, out, errOut := petite(t, nil, "sim", "run", "--from-snapshot", path, "--snapshot-at", "1000", "--default-duration", "30m", "--json")
	require.Equal(t, 0, code, errOut)
	var s struct {
		Total, Ended int
		Makespan     float64 `json:"makespan_h"`
		Wait         struct {
			Max float64 `json:"max"`
		} `json:"wait_h"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	assert.Equal(t, 2, s.Total)
	assert.Equal(t, 2, s.Ended)
	// b waits from 95 to a's end at 100 + 3600: 3605 s.
	assert.InDelta(t, 3605.0/3600, s.Wait.Max, 1e-6)

	code, _, errOut = petite(t, nil, "sim", "run", "--from-snapshot", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "job b: field job.walltime")
	code, _, errOut = petite(t, nil, "sim", "run", "--from-snapshot", path, "--fleet", "x.yaml")
	assert.Equal(t, 2, code, errOut)
}
