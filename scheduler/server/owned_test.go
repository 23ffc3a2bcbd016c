package server

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// The FSM takes the command of an entry it was told it wrote from there,
// only for those very bytes: a copy of them (a follower's, one read back
// from the log store) is decoded, and nothing is found once released. A
// plan applied either way leaves the same state.
func TestFSMOwnedEntries(t *testing.T) {
	plan := func(gpu int) state.ApplyPlan {
		return state.ApplyPlan{At: 2, Place: []scheduler.JobPlacement{{Job: "a", Tasks: []scheduler.TaskPlacement{
			{Task: 0, Node: "n0", GPUs: []int{gpu}, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100},
		}}}}
	}
	setup := func() *fsmHarness {
		h := newFSMHarness(t)
		e, err := encodeSubmit(state.Submit{Job: job("a", 1), At: 1}, JobRecord{})
		require.NoError(t, err)
		require.NoError(t, h.apply(e).Err)
		return h
	}
	entry, dec, err := encodeOwned(plan(3))
	require.NoError(t, err)
	require.Equal(t, plan(3), dec, "a plan comes back decoded")
	want, err := encodeCommand(plan(3))
	require.NoError(t, err)
	require.Equal(t, want, entry, "the same entry as encodeCommand's")

	leader, follower := setup(), setup()
	release := leader.f.owned.add(entry, dec)
	require.NoError(t, leader.apply(entry).Err)
	require.NoError(t, follower.apply(bytes.Clone(entry)).Err)
	assert.Equal(t, follower.snapshot(), leader.snapshot(), "leader and follower agree")

	// The lookup is by the bytes' identity: the held command is what the
	// machine gets for them, a copy of the bytes is decoded.
	other, _, err := encodeOwned(plan(5))
	require.NoError(t, err)
	release2 := leader.f.owned.add(other, plan(6))
	got, ok := leader.f.owned.get(other)
	assert.True(t, ok)
	assert.Equal(t, plan(6), got)
	_, ok = leader.f.owned.get(bytes.Clone(other))
	assert.False(t, ok, "a copy is not the entry")
	_, ok = leader.f.owned.get(other[:len(other)-1])
	assert.False(t, ok, "a prefix is not the entry")
	release()
	release2()
	_, ok = leader.f.owned.get(entry)
	assert.False(t, ok, "released")
	assert.Empty(t, leader.f.owned.m, "nothing held after release")

	// Not a plan: nothing held, the entry decodes.
	e, c, err := encodeOwned(state.Cancel{Job: "a", At: 3})
	require.NoError(t, err)
	assert.Nil(t, c)
	require.NoError(t, leader.apply(e).Err)
}
