package server

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// The history stays within its bound and keeps the newest records.
func TestAppendHistoryBound(t *testing.T) {
	var h []HistoryRecord
	for i := range 95 {
		h = appendHistory(h, HistoryRecord{Ended: int64(i)}, 20)
		require.LessOrEqual(t, len(h), 20)
		assert.Equal(t, int64(i), h[len(h)-1].Ended)
	}
	for i := 1; i < len(h); i++ {
		assert.Equal(t, h[i-1].Ended+1, h[i].Ended, "in order, none lost between")
	}
	assert.GreaterOrEqual(t, len(h), 18)
}

// The FSM records each job that ends, from the log alone, and its
// snapshot carries the history: a restored FSM exports the same.
func TestFSMHistory(t *testing.T) {
	pools, nodes := testFleet(2)
	f := NewFSM()
	var idx uint64
	apply := func(cmd state.Command) {
		t.Helper()
		b, err := encodeCommand(cmd)
		require.NoError(t, err)
		idx++
		res := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b}).(ApplyResult)
		require.NoError(t, res.Err)
	}
	apply(state.RegisterPool{Pool: pools[0]})
	for _, n := range nodes {
		apply(state.RegisterNode{Node: n})
	}
	job := func(id string) scheduler.Job {
		return scheduler.Job{ID: id, Kind: scheduler.Training, Tenant: "ml", Count: 1, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}
	}
	for i, id := range []string{"a", "b", "c"} {
		apply(state.Submit{Job: job(id), At: int64(100 + i)})
	}
	apply(state.ApplyPlan{Place: []scheduler.JobPlacement{
		{Job: "a", Tasks: []scheduler.TaskPlacement{{Task: 0, Node: "n0", GPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}},
	}, At: 110})
	apply(state.Finish{Job: "a", At: 170})
	apply(state.Cancel{Job: "b", At: 180})
	apply(state.Prune{Before: 1000}) // the machine forgets a and b; the history does not

	var got []HistoryRecord
	f.History(func(h []HistoryRecord, m *state.Machine) {
		got = append(got, h...)
		_, ok := m.Job("a")
		assert.False(t, ok, "pruned")
	})
	require.Len(t, got, 2)
	assert.Equal(t, "a", got[0].Job.ID)
	assert.Equal(t, state.Succeeded, got[0].Status)
	assert.Equal(t, [3]int64{100, 110, 170}, [3]int64{got[0].Job.Submitted, got[0].Started, got[0].Ended})
	assert.Equal(t, "b", got[1].Job.ID)
	assert.Equal(t, state.Cancelled, got[1].Status)
	assert.Zero(t, got[1].Started)

	snap, err := f.Snapshot()
	require.NoError(t, err)
	g := NewFSM()
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(snap.(fsmSnapshot)))))
	g.History(func(h []HistoryRecord, _ *state.Machine) { assert.Equal(t, got, h) })

	// A job running across a restore keeps its start in the history.
	apply(state.ApplyPlan{Place: []scheduler.JobPlacement{
		{Job: "c", Tasks: []scheduler.TaskPlacement{{Task: 0, Node: "n1", GPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}},
	}, At: 200})
	snap, err = f.Snapshot()
	require.NoError(t, err)
	g = NewFSM()
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(snap.(fsmSnapshot)))))
	f = g
	apply(state.Finish{Job: "c", Failed: true, At: 260})
	g.History(func(h []HistoryRecord, _ *state.Machine) {
		require.Len(t, h, 3)
		assert.Equal(t, state.Failed, h[2].Status)
		assert.Equal(t, [2]int64{200, 260}, [2]int64{h[2].Started, h[2].Ended})
	})
}
