package state

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestSetDeviceHealth marks a GPU unhealthy through the machine: a plan
// onto it is refused while the other GPUs take work, the task already
// there keeps running, the snapshot carries the mark (and a state without
// one encodes as before), and healthy again the GPU takes work.
func TestSetDeviceHealth(t *testing.T) {
	m := New()
	for _, c := range []Command{
		RegisterPool{Pool: scheduler.Pool{Name: "own"}},
		RegisterNode{Node: scheduler.Node{Name: "a", Pool: "own", CPUMilli: 64000, MemoryMiB: 1 << 20, GPUs: gpus("H100", 2)}},
		Submit{Job: scheduler.Job{ID: "old", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: 1},
		Submit{Job: scheduler.Job{ID: "new", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: 2},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	place := func(job string, dev int) ApplyPlan {
		return ApplyPlan{Place: []scheduler.JobPlacement{{Job: job, Tasks: []scheduler.TaskPlacement{{Task: 0, Node: "a", GPUs: []int{dev}, GPUMilli: 1000}}}}, At: 3}
	}
	_, err := m.Apply(place("old", 0))
	require.NoError(t, err)
	plain := snap(t, m)
	assert.NotContains(t, string(plain), "unhealthy", "no unhealthy device, no field")

	for _, bad := range []SetDeviceHealth{
		{Node: "ghost", Devices: []int{0}},
		{Node: "a", Devices: []int{2}},
		{Node: "a", Devices: []int{-1}},
	} {
		_, err := m.Apply(bad)
		require.Error(t, err, "%+v", bad)
		require.Equal(t, string(plain), string(snap(t, m)), "a refused command changed the state")
	}
	res, err := m.Apply(SetDeviceHealth{Node: "a", Devices: []int{0}, At: 4})
	require.NoError(t, err)
	require.True(t, res.Changed)
	res, err = m.Apply(&SetDeviceHealth{Node: "a", Devices: []int{0}, At: 5})
	require.NoError(t, err)
	require.False(t, res.Changed, "marked twice")
	ji, _ := m.Job("old")
	assert.Equal(t, Running, ji.Status, "the task on the unhealthy GPU keeps running")

	// The job there ends; its GPU stays out of placement.
	_, err = m.Apply(Finish{Job: "old", At: 5})
	require.NoError(t, err)
	_, err = m.Apply(place("new", 0))
	require.ErrorContains(t, err, "GPU 0 oversubscribed")

	withMark := snap(t, m)
	assert.Contains(t, string(withMark), `"unhealthy":[{"node":"a","devices":[0]}]`)
	r, err := Restore(bytes.NewReader(withMark))
	require.NoError(t, err)
	assert.Equal(t, []int{0}, r.Cluster().UnhealthyDevices(0))
	assert.Equal(t, string(withMark), string(snap(t, r)))
	_, err = r.Apply(place("new", 0))
	require.Error(t, err, "the restored machine keeps the mark")
	_, err = Restore(strings.NewReader(strings.Replace(string(withMark), `"devices":[0]`, `"devices":[7]`, 1)))
	require.ErrorContains(t, err, "unhealthy[0]")

	res, err = m.Apply(SetDeviceHealth{Node: "a", Devices: []int{0}, Healthy: true, At: 6})
	require.NoError(t, err)
	require.True(t, res.Changed)
	assert.Nil(t, m.Cluster().UnhealthyDevices(0))
	_, err = m.Apply(place("new", 0))
	require.NoError(t, err, "healthy again, the GPU takes work")
	checkInvariants(t, m)
}

// A plan that evicts a task from an unhealthy GPU and is then refused (a
// later placement does not fit) rolls back whole: the evicted task takes
// back what its release withheld. It made the machine panic while rolling
// back, on every replica applying the entry.
func TestRefusedPlanRollsBackOnUnhealthyGPU(t *testing.T) {
	m := New()
	for _, c := range []Command{
		RegisterPool{Pool: scheduler.Pool{Name: "own"}},
		RegisterNode{Node: scheduler.Node{Name: "a", Pool: "own", CPUMilli: 64000, MemoryMiB: 1 << 20, GPUs: gpus("H100", 4)}},
		Submit{Job: scheduler.Job{ID: "victim", Count: 1, Preemptible: true, Task: scheduler.Task{GPUs: 2, GPUMilli: 1000}}, At: 1},
		Submit{Job: scheduler.Job{ID: "big", Count: 1, Priority: 5, Task: scheduler.Task{GPUs: 4, GPUMilli: 1000}}, At: 2},
		ApplyPlan{Place: []scheduler.JobPlacement{{Job: "victim", Tasks: []scheduler.TaskPlacement{{Node: "a", GPUs: []int{1, 2}, GPUMilli: 1000}}}}, At: 3},
		SetDeviceHealth{Node: "a", Devices: []int{2}, At: 4},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	before := snap(t, m)
	seen := []scheduler.TaskPlacement{{Node: "a", GPUs: []int{1, 2}, GPUMilli: 1000}}
	// GPU 2 is unhealthy: "big" cannot have it once the victim is gone.
	_, err := m.Apply(ApplyPlan{
		Evict: []scheduler.Eviction{{Job: "victim", For: "big", Seen: seen}},
		Place: []scheduler.JobPlacement{{Job: "big", Tasks: []scheduler.TaskPlacement{{Node: "a", GPUs: []int{0, 1, 2, 3}, GPUMilli: 1000}}}},
		At:    5,
	})
	require.ErrorContains(t, err, "GPU 2 oversubscribed")
	require.Equal(t, string(before), string(snap(t, m)), "a refused plan changed the state")
	checkInvariants(t, m)
	// Healthy again, the GPU is the victim's still: nothing was lost or doubled.
	_, err = m.Apply(SetDeviceHealth{Node: "a", Healthy: true, Devices: []int{2}, At: 6})
	require.NoError(t, err)
	_, err = m.Apply(Finish{Job: "victim", At: 7})
	require.NoError(t, err)
	_, err = m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: "big", Tasks: []scheduler.TaskPlacement{{Node: "a", GPUs: []int{0, 1, 2, 3}, GPUMilli: 1000}}}}, At: 8})
	require.NoError(t, err)
	checkInvariants(t, m)
}
