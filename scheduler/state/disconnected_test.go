package state

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestNodeDisconnected: a disconnected node keeps its work (nothing
// requeued), takes no new work, survives a snapshot, and going down from
// there requeues as from ready.
func TestNodeDisconnected(t *testing.T) {
	m := New()
	for _, c := range []Command{
		RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("H100", 2)}},
		Submit{Job: scheduler.Job{ID: "a", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: 1},
		Submit{Job: scheduler.Job{ID: "b", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: 2},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	_, err := m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{
		{Job: "a", Tasks: []scheduler.TaskPlacement{{Node: "n1", GPUs: []int{0}, GPUMilli: 1000}}},
	}, At: 3})
	require.NoError(t, err)

	res, err := m.Apply(SetNodeState{Node: "n1", State: scheduler.NodeDisconnected, At: 4})
	require.NoError(t, err)
	assert.Equal(t, Result{Changed: true}, res, "disconnected keeps the node's work")
	a, _ := m.Job("a")
	assert.Equal(t, Running, a.Status)

	// No new work: a pass places nothing on a disconnected node.
	f := m.Freeze()
	pol, err := f.Cluster().NewPolicy("best-fit", scheduler.Options{})
	require.NoError(t, err)
	plan, err := f.Schedule(scheduler.Pass{Now: 5, Policy: pol, Rng: rand.New(rand.NewPCG(1, 2)), Backfill: true})
	require.NoError(t, err)
	assert.Empty(t, plan.Place, "a disconnected node takes no new work")
	_, err = m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{
		{Job: "b", Tasks: []scheduler.TaskPlacement{{Node: "n1", GPUs: []int{1}, GPUMilli: 1000}}},
	}, At: 5})
	require.Error(t, err, "a plan onto a disconnected node is refused")

	// The state survives a snapshot, work and all.
	var buf bytes.Buffer
	require.NoError(t, m.Snapshot(&buf))
	back, err := Restore(&buf)
	require.NoError(t, err)
	id, _ := back.Cluster().NodeByName("n1")
	assert.Equal(t, scheduler.NodeDisconnected, back.Cluster().Node(id).State)

	res, err = m.Apply(SetNodeState{Node: "n1", State: scheduler.NodeDown, At: 6})
	require.NoError(t, err)
	assert.Equal(t, Result{Changed: true, Requeued: []string{"a"}}, res, "down requeues the node's work")

	_, err = m.Apply(SetNodeState{Node: "n1", State: scheduler.NodeState(9)})
	assert.ErrorContains(t, err, "unknown node state 9")
	var st scheduler.NodeState
	require.NoError(t, st.UnmarshalText([]byte("disconnected")))
	assert.Equal(t, scheduler.NodeDisconnected, st)
}
