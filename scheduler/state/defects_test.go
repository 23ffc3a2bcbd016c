package state

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// Regression tests for the defects of the core's audit (issue 11). Each
// failed before its fix.

// dfMachine applies commands to a new machine, failing on error.
func dfMachine(t *testing.T, cmds ...Command) *Machine {
	t.Helper()
	m := New()
	for _, c := range cmds {
		_, err := m.Apply(c)
		require.NoError(t, err, "%s", c.Type())
	}
	return m
}

// A job of 2^50 tasks is refused at the door: by Submit, and by the
// decoder before anything is sized by its count.
func TestDefectSubmitHugeCountRefused(t *testing.T) {
	m := dfMachine(t, RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("L4", 2)}})
	_, err := m.Apply(Submit{Job: scheduler.Job{ID: "svc", Kind: scheduler.Inference, Count: 1 << 50, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "field count")
	assert.Zero(t, m.NumJobs())

	_, err = Decode([]byte(`{"v":1,"type":"submit","job":{"id":"svc","kind":"inference","count":1125899906842624,"task":{"gpus":1,"gpu_milli":1000}},"at":1}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "decode submit: job svc: field count")
	_, err = Decode([]byte(`{"v":1,"type":"submit","job":{"id":"j","count":1,"task":{"cpu_milli":9223372036854775807}},"at":1}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "field task.cpu_milli")
}

// A full-size (7g) MIG instance holds 1000 milli but is exclusive: the
// machine refuses a whole-GPU task on it and a second share on it.
func TestDefectFullMIGInstanceExclusiveInPlans(t *testing.T) {
	m := dfMachine(t,
		RegisterNode{Node: scheduler.Node{Name: "m", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []scheduler.GPU{{Model: "A100", MIG: "7g.80gb"}}}},
		Submit{Job: scheduler.Job{ID: "w", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
		Submit{Job: scheduler.Job{ID: "a", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 500, CPUMilli: 1000, MemoryMiB: 1024}}, At: 2},
		Submit{Job: scheduler.Job{ID: "b", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 500, CPUMilli: 1000, MemoryMiB: 1024}}, At: 3},
	)
	_, err := m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: "w", Tasks: []scheduler.TaskPlacement{tp(0, "m", 1000, 0)}}}, At: 4})
	require.Error(t, err, "a whole-GPU task on a MIG instance")
	assert.Contains(t, err.Error(), "MIG instance")

	_, err = m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: "a", Tasks: []scheduler.TaskPlacement{tp(0, "m", 500, 0)}}}, At: 4})
	require.Error(t, err, "a share takes the instance whole: 1000, not 500")
	assert.Contains(t, err.Error(), "field gpu_milli: want 1000, got 500")

	_, err = m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: "a", Tasks: []scheduler.TaskPlacement{tp(0, "m", 1000, 0)}}}, At: 4})
	require.NoError(t, err)
	_, err = m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: "b", Tasks: []scheduler.TaskPlacement{tp(0, "m", 1000, 0)}}}, At: 5})
	require.Error(t, err, "the instance is taken")
	ji, _ := m.Job("b")
	assert.Equal(t, Pending, ji.Status)
}

// A plan's eviction names the placement it saw; once the task moved, the
// stale plan is refused and the task keeps running where it is.
func TestDefectStaleEvictionRefused(t *testing.T) {
	at := func(node string) scheduler.TaskPlacement { return tp(0, node, 1000, 0) }
	m := dfMachine(t,
		RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("L4", 1)}},
		RegisterNode{Node: scheduler.Node{Name: "n2", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("L4", 1)}},
		Submit{Job: scheduler.Job{ID: "lo", Count: 1, Preemptible: true, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
		ApplyPlan{Place: []scheduler.JobPlacement{{Job: "lo", Tasks: []scheduler.TaskPlacement{at("n1")}}}, At: 2},
		Submit{Job: scheduler.Job{ID: "hi", Count: 1, Priority: 9, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 3},
	)
	// The plan made while lo ran on n1.
	stale := ApplyPlan{
		Evict: []scheduler.Eviction{{Job: "lo", For: "hi", Seen: []scheduler.TaskPlacement{at("n1")}}},
		Place: []scheduler.JobPlacement{{Job: "hi", Tasks: []scheduler.TaskPlacement{at("n1")}}},
		At:    10,
	}
	// Meanwhile lo moved to n2.
	for _, c := range []Command{
		Preempt{Job: "lo", At: 4},
		ApplyPlan{Place: []scheduler.JobPlacement{{Job: "lo", Tasks: []scheduler.TaskPlacement{at("n2")}}}, At: 5},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	before := snap(t, m)
	_, err := m.Apply(stale)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "field evict[0].seen[0]")
	assert.Equal(t, string(before), string(snap(t, m)), "the refused plan changed nothing")
	lo, _ := m.Job("lo")
	require.Equal(t, Running, lo.Status)
	assert.Equal(t, "n2", lo.Tasks[0].Node, "lo keeps running on n2")

	// The same plan, fresh, applies; and applied again it changes nothing.
	fresh := stale
	fresh.Evict = []scheduler.Eviction{{Job: "lo", For: "hi", Seen: []scheduler.TaskPlacement{at("n2")}}}
	fresh.Place = []scheduler.JobPlacement{{Job: "hi", Tasks: []scheduler.TaskPlacement{at("n2")}}}
	res, err := m.Apply(fresh)
	require.NoError(t, err)
	assert.Equal(t, []string{"lo"}, res.Requeued)
	res, err = m.Apply(fresh)
	require.NoError(t, err)
	assert.False(t, res.Changed, "a plan applied twice changes nothing")

	// Seen must name tasks the eviction covers.
	_, err = m.Apply(ApplyPlan{Evict: []scheduler.Eviction{{Job: "hi", Seen: []scheduler.TaskPlacement{at("n2"), at("n2")}}}, At: 11})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "field evict[0].seen[1]")
}

// A plan naming one GPU twice for a task is refused with that reason.
func TestDefectGPUNamedTwice(t *testing.T) {
	m := dfMachine(t,
		RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("H100", 4)}},
		Submit{Job: scheduler.Job{ID: "two", Count: 1, Task: scheduler.Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
	)
	before := snap(t, m)
	_, err := m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: "two", Tasks: []scheduler.TaskPlacement{tp(0, "n1", 1000, 3, 3)}}}, At: 2})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "GPU 3 named twice")
	assert.Equal(t, string(before), string(snap(t, m)))
}
