package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// queueBehind is one 8-GPU node running a (walltime 1 h, started at 100),
// with b (8 GPUs, walltime 10 min), c (8 GPUs, no walltime) and big (16
// GPUs: fits no node) queued.
func queueBehind(t *testing.T) *state.Machine {
	t.Helper()
	m := state.New()
	task := scheduler.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}
	job := func(id string, wall int64) scheduler.Job {
		return scheduler.Job{ID: id, Kind: scheduler.Training, Count: 1, Walltime: wall, Task: task}
	}
	big := job("big", 60)
	big.Task.GPUs = 16
	for _, c := range []state.Command{
		state.RegisterPool{Pool: scheduler.Pool{Name: "onprem", Kind: scheduler.PoolOnPrem}},
		state.RegisterNode{Node: gpuNode("n1", "onprem", 64000, 8)},
		state.Submit{Job: job("a", 3600), At: 90},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	pol, err := m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	require.NoError(t, err)
	plan, err := m.Plan(scheduler.Pass{Now: 100, Policy: pol, Rng: rand.New(rand.NewPCG(1, 1))})
	require.NoError(t, err)
	for _, c := range []state.Command{
		state.PlanCommand(plan, 100),
		state.Submit{Job: job("b", 600), At: 200},
		state.Submit{Job: job("c", 0), At: 300},
		state.Submit{Job: big, At: 400},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	return m
}

// A queued job behind a running job of known walltime starts when that job
// ends; the next one after it, and so on; a job without walltime is
// assumed the default and says so; one that fits nowhere, or past the cap
// or the horizon, gets a note and no time.
func TestEstimateStarts(t *testing.T) {
	m := queueBehind(t)
	est, err := EstimateStarts(context.Background(), m, 1000, EstimateOptions{Policy: "best-fit"})
	require.NoError(t, err)
	require.Len(t, est, 3)
	assert.Equal(t, Estimate{At: 3700, OK: true, Note: est["b"].Note}, est["b"], "b starts when a ends: 100 + 3600")
	assert.Equal(t, int64(4300), est["c"].At, "c after b's 600 s")
	assert.True(t, est["c"].OK)
	assert.Contains(t, est["c"].Note, "1 job(s) without a walltime assumed to run 1h0m0s")
	assert.False(t, est["big"].OK)
	assert.Contains(t, est["big"].Note, "fits no node")
	_, running := est["a"]
	assert.False(t, running, "running jobs get no estimate")

	est, err = EstimateStarts(context.Background(), m, 1000, EstimateOptions{MaxJobs: 1, Horizon: 2000 * Second})
	require.NoError(t, err)
	assert.False(t, est["b"].OK, "b starts at 3700, past a horizon of 1000 + 2000")
	assert.Contains(t, est["b"].Note, "does not start within 33m20s")
	assert.Contains(t, est["c"].Note, "more than 1 jobs are queued ahead")
}

// BenchmarkEstimateStarts measures one estimate at the default cap: 250
// 8-GPU nodes full of 1- and 2-GPU jobs of known walltime and 2,000 queued
// jobs behind them, of which the first DefaultEstimateMaxJobs are replayed
// (the daemon's worst case per recompute).
func BenchmarkEstimateStarts(b *testing.B) {
	m := state.New()
	apply := func(c state.Command) {
		if _, err := m.Apply(c); err != nil {
			b.Fatal(err)
		}
	}
	apply(state.RegisterPool{Pool: scheduler.Pool{Name: "p", Kind: scheduler.PoolOnPrem}})
	for i := range 250 {
		apply(state.RegisterNode{Node: gpuNode(fmt.Sprintf("n%03d", i), "p", 64000, 8)})
	}
	rng := rand.New(rand.NewPCG(3, 3))
	job := func(id string) scheduler.Job {
		g := 1 + rng.IntN(2)
		return scheduler.Job{ID: id, Kind: scheduler.Training, Count: 1, Walltime: 600 + rng.Int64N(7200),
			Task: scheduler.Task{GPUs: g, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}
	}
	for i := range 1400 {
		apply(state.Submit{Job: job(fmt.Sprintf("r%04d", i)), At: 10})
	}
	pol, err := m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	if err != nil {
		b.Fatal(err)
	}
	plan, err := m.Plan(scheduler.Pass{Now: 20, Policy: pol, Rng: rng, Limits: scheduler.Limits{Decisions: 2000}})
	if err != nil {
		b.Fatal(err)
	}
	apply(state.PlanCommand(plan, 20))
	for i := range 2000 {
		apply(state.Submit{Job: job(fmt.Sprintf("q%04d", i)), At: 30})
	}
	b.ResetTimer()
	for b.Loop() {
		est, err := EstimateStarts(context.Background(), m, 100, EstimateOptions{Policy: "best-fit"})
		if err != nil || len(est) < 2000 {
			b.Fatal(err, len(est))
		}
	}
	b.ReportMetric(float64(len(m.Running())), "running")
}
