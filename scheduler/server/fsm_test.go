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

type fsmHarness struct {
	t     *testing.T
	f     *FSM
	index uint64
}

func (h *fsmHarness) apply(entry []byte) ApplyResult {
	h.t.Helper()
	h.index++
	res, _ := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: entry}).(ApplyResult)
	return res
}

func (h *fsmHarness) cmd(c state.Command) ApplyResult {
	h.t.Helper()
	e, err := encodeCommand(c)
	require.NoError(h.t, err)
	return h.apply(e)
}

func (h *fsmHarness) snapshot() []byte {
	var b bytes.Buffer
	require.NoError(h.t, h.f.StateSnapshot(&b))
	return b.Bytes()
}

func newFSMHarness(t *testing.T) *fsmHarness {
	h := &fsmHarness{t: t, f: NewFSM()}
	pools, nodes := testFleet(1)
	var cmds []state.Command
	for _, p := range pools {
		cmds = append(cmds, state.RegisterPool{Pool: p})
	}
	for _, n := range nodes {
		cmds = append(cmds, state.RegisterNode{Node: n})
	}
	e, err := encodeBatch(cmds)
	require.NoError(t, err)
	require.NoError(t, h.apply(e).Err)
	return h
}

func job(id string, gpus int) scheduler.Job {
	return scheduler.Job{ID: id, Kind: scheduler.Training, Count: 1, Task: scheduler.Task{GPUs: gpus, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100}}
}

// Two plans made on the same frozen state both give GPU 0..3 of n0: the
// second, stale when it reaches the log, is refused whole and changes
// nothing. A GPU is never given twice.
func TestFSMRefusesStalePlan(t *testing.T) {
	h := newFSMHarness(t)
	for _, id := range []string{"a", "b"} {
		e, err := encodeSubmit(state.Submit{Job: job(id, 6), At: 1}, JobRecord{})
		require.NoError(t, err)
		require.NoError(t, h.apply(e).Err)
	}
	place := func(id string) state.ApplyPlan {
		return state.ApplyPlan{At: 2, Place: []scheduler.JobPlacement{{Job: id, Tasks: []scheduler.TaskPlacement{
			{Task: 0, Node: "n0", GPUs: []int{0, 1, 2, 3, 4, 5}, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100},
		}}}}
	}
	require.NoError(t, h.cmd(place("a")).Err)
	before := h.snapshot()
	res := h.cmd(place("b"))
	require.Error(t, res.Err)
	assert.Contains(t, res.Err.Error(), "oversubscribed")
	assert.Equal(t, before, h.snapshot(), "a refused plan changes nothing")
	// The same plan again (a replayed entry) changes nothing either.
	res = h.cmd(place("a"))
	require.NoError(t, res.Err)
	assert.False(t, res.Results[0].Changed)
}

// Snapshot then Restore into a fresh FSM gives the same state and records;
// a corrupt snapshot is refused and leaves the FSM as it was.
func TestFSMSnapshotRestore(t *testing.T) {
	h := newFSMHarness(t)
	e, err := encodeSubmit(state.Submit{Job: job("a", 2), At: 1}, JobRecord{Command: []string{"train", "--lr", "3e-4"}})
	require.NoError(t, err)
	require.NoError(t, h.apply(e).Err)
	e, err = marshalEntry(entryServer, ServerInfo{ID: "s1", HTTP: "http://127.0.0.1:1"})
	require.NoError(t, err)
	require.NoError(t, h.apply(e).Err)

	snap, err := h.f.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))

	g := NewFSM()
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))))
	var b bytes.Buffer
	require.NoError(t, g.StateSnapshot(&b))
	assert.Equal(t, h.snapshot(), b.Bytes())
	g.Read(func(_ *state.Machine, jobs map[string]JobRecord, _ uint64) {
		assert.Equal(t, []string{"train", "--lr", "3e-4"}, jobs["a"].Command)
	})
	addr, ok := g.ServerHTTP("s1")
	assert.True(t, ok)
	assert.Equal(t, "http://127.0.0.1:1", addr)

	before := h.snapshot()
	for _, bad := range [][]byte{
		[]byte("{"),
		bytes.Replace(sink.Bytes(), []byte(`"v":1`), []byte(`"v":2`), 1),
		bytes.Replace(sink.Bytes(), []byte(`"jobs"`), []byte(`"jobz"`), 1),
		bytes.Replace(sink.Bytes(), []byte(`"gpus":2`), []byte(`"gpus":99`), 1),
	} {
		assert.Error(t, h.f.Restore(io.NopCloser(bytes.NewReader(bad))))
		assert.Equal(t, before, h.snapshot())
	}
}

// Entries that do not decode are refused and change nothing.
func TestFSMRefusesBadEntries(t *testing.T) {
	h := newFSMHarness(t)
	before := h.snapshot()
	for _, e := range [][]byte{
		nil,
		[]byte("x{}"),
		[]byte(`c{"v":1,"type":"cancel","job":"a","at":1,"extra":1}`),
		[]byte(`b[{"v":1,"type":"cancel","job":"a","at":1},"nope"]`),
		[]byte(`s{"submit":{"v":1,"type":"cancel","job":"a","at":1},"record":{}}`),
	} {
		assert.Error(t, h.apply(e).Err, "%q", e)
		assert.Equal(t, before, h.snapshot())
	}
}

type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

// A prune forgets the daemon's records of the jobs it forgets.
func TestFSMPruneForgetsRecords(t *testing.T) {
	h := newFSMHarness(t)
	for _, id := range []string{"old", "new"} {
		e, err := encodeSubmit(state.Submit{Job: job(id, 1), At: 1}, JobRecord{Command: []string{id}})
		require.NoError(t, err)
		require.NoError(t, h.apply(e).Err)
	}
	require.NoError(t, h.cmd(state.Cancel{Job: "old", At: 5}).Err)
	require.NoError(t, h.cmd(state.Prune{Before: 6}).Err)
	h.f.Read(func(m *state.Machine, jobs map[string]JobRecord, _ uint64) {
		assert.Equal(t, map[string]JobRecord{"new": {Command: []string{"new"}}}, jobs)
	})
}
