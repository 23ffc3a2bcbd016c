package server

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

func retireEntry(t *testing.T, node string, at int64) []byte {
	t.Helper()
	e, err := marshalEntry(entryRetire, RetireRecord{Node: node, At: at})
	require.NoError(t, err)
	return e
}

// A node's retirement date is a replicated record: set, replaced,
// withdrawn; a bad entry changes nothing; it survives a snapshot and
// restore, and the state machine's own snapshot does not carry it.
func TestFSMRetireDates(t *testing.T) {
	h := newFSMHarness(t)
	before := h.snapshot()
	require.NoError(t, h.apply(retireEntry(t, "n0", 100)).Err)
	require.NoError(t, h.apply(retireEntry(t, "n0", 200)).Err)
	require.NoError(t, h.apply(retireEntry(t, "n9", 300)).Err)
	require.NoError(t, h.apply(retireEntry(t, "n9", 0)).Err, "withdrawn")
	for name, e := range map[string][]byte{
		"no node":    retireEntry(t, "", 5),
		"negative":   retireEntry(t, "n0", -1),
		"unknown":    append([]byte{entryRetire}, `{"node":"n0","at":5,"x":1}`...),
		"not json":   append([]byte{entryRetire}, `{`...),
		"trailing":   append([]byte{entryRetire}, `{"node":"n0","at":5} {}`...),
		"wrong type": append([]byte{entryRetire}, `{"node":"n0","at":"soon"}`...),
	} {
		assert.Error(t, h.apply(e).Err, name)
	}
	assert.Equal(t, map[string]int64{"n0": 200}, h.f.RetireDates())
	assert.Equal(t, string(before), string(h.snapshot()), "the state machine's encoding is untouched")

	snap, err := h.f.encodeLocked()
	require.NoError(t, err)
	g := NewFSM()
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(snap))))
	assert.Equal(t, map[string]int64{"n0": 200}, g.RetireDates())

	// A snapshot without dates restores none, over a FSM that had some.
	require.NoError(t, h.apply(retireEntry(t, "n0", 0)).Err)
	snap, err = h.f.encodeLocked()
	require.NoError(t, err)
	assert.NotContains(t, string(snap), `"retire"`)
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(snap))))
	assert.Empty(t, g.RetireDates())
}

// A snapshot written before nodes had retirement dates (testdata, made by
// that code) still restores, with none, its other records intact.
func TestFSMRestoresSnapshotBeforeRetire(t *testing.T) {
	b, err := os.ReadFile("testdata/snapshot-before-retire.json")
	require.NoError(t, err)
	f := NewFSM()
	require.NoError(t, f.Restore(io.NopCloser(bytes.NewReader(b))))
	assert.Empty(t, f.RetireDates())
	_, ok := f.Agent("n0")
	assert.True(t, ok)
	var job bool
	f.Read(func(m *state.Machine, jobs map[string]JobRecord, _ uint64) {
		_, job = m.Job("a")
		assert.Equal(t, []string{"sleep", "60"}, jobs["a"].Command)
	})
	assert.True(t, job)
	j, ok := f.JobByRequest("r1")
	assert.True(t, ok)
	assert.Equal(t, "a", j)
	// and writes it back the same, having nothing new to add
	out, err := f.encodeLocked()
	require.NoError(t, err)
	assert.JSONEq(t, string(bytes.TrimSpace(b)), string(out))
}

// A node's own date drains it from the lead time before and retires it on
// the date; it replaces its pool's date; a node without one follows its
// pool.
func TestRetirementsOwnDate(t *testing.T) {
	pools := []scheduler.Pool{
		{Name: "lab", Kind: scheduler.PoolOnPrem, Region: "r1"},
		{Name: "old", Kind: scheduler.PoolOnPrem, Region: "r1", RetireAt: 1000},
	}
	m := state.New()
	for _, p := range pools {
		_, err := m.Apply(state.RegisterPool{Pool: p})
		require.NoError(t, err)
	}
	for _, n := range []scheduler.Node{{Name: "a", Pool: "lab"}, {Name: "b", Pool: "old"}, {Name: "c", Pool: "lab"}} {
		n.CPUMilli, n.MemoryMiB = 1000, 1024
		_, err := m.Apply(state.RegisterNode{Node: n})
		require.NoError(t, err)
	}
	own := map[string]int64{"a": 500, "b": 5000}
	states := func(now int64) map[string]scheduler.NodeState {
		out := map[string]scheduler.NodeState{}
		for _, c := range retirements(m.Cluster(), own, now, 100) {
			s := c.(state.SetNodeState)
			out[s.Node] = s.State
		}
		return out
	}
	assert.Empty(t, states(399), "before a's lead time; b's own date replaces its pool's")
	assert.Equal(t, map[string]scheduler.NodeState{"a": scheduler.NodeDraining}, states(400))
	assert.Equal(t, map[string]scheduler.NodeState{"a": scheduler.NodeRetired}, states(500))
	assert.Equal(t, map[string]scheduler.NodeState{"a": scheduler.NodeRetired}, states(1000), "b keeps its own later date")
	assert.Equal(t, map[string]scheduler.NodeState{"a": scheduler.NodeRetired, "b": scheduler.NodeDraining}, states(4900))
	delete(own, "b") // withdrawn: b follows its pool's date again
	assert.Equal(t, map[string]scheduler.NodeState{"a": scheduler.NodeRetired, "b": scheduler.NodeRetired}, states(1000))
}
