package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

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

// A snapshot persists the FSM as it was when raft took it, though the log
// went on applying before Persist ran (raft persists off the state
// machine's goroutine), and in the bytes the snapshot file always had.
func TestFSMSnapshotPersistsItsMoment(t *testing.T) {
	h := newFSMHarness(t)
	h.f.history.limit = 3 // pushed out while the snapshot waits
	e, err := encodeSubmit(state.Submit{Job: job("a", 1), At: 1}, JobRecord{Command: []string{"train"}})
	require.NoError(t, err)
	require.NoError(t, h.apply(e).Err)
	place := func(id string, gpu int, at int64) {
		t.Helper()
		require.NoError(t, h.cmd(state.ApplyPlan{Place: []scheduler.JobPlacement{{Job: id, Tasks: []scheduler.TaskPlacement{
			{Task: 0, Node: "n0", GPUs: []int{gpu}, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100}}}}, At: at}).Err)
	}
	for i, id := range []string{"b", "c", "d"} {
		require.NoError(t, h.cmd(state.Submit{Job: job(id, 1), At: int64(2 + i)}).Err)
		place(id, 1+i, int64(10+i))
		require.NoError(t, h.cmd(state.Finish{Job: id, At: int64(20 + i)}).Err)
	}
	place("a", 0, 30) // a's record notes where it ran

	// The file as encoded in one go under the lock, the way it always was.
	var st bytes.Buffer
	require.NoError(t, h.f.m.Snapshot(&st))
	want, err := json.Marshal(snapshotFile{V: 1, Type: snapshotType, State: bytes.TrimSpace(st.Bytes()),
		Jobs: h.f.jobs, Servers: h.f.servers, Agents: h.f.agents, History: h.f.history.ordered()})
	require.NoError(t, err)

	snap, err := h.f.Snapshot()
	require.NoError(t, err)
	// The log goes on: a job ends (the history's oldest pushed out), a's
	// record changes, a server records its address.
	require.NoError(t, h.cmd(state.Finish{Job: "a", At: 40}).Err)
	require.NoError(t, h.cmd(state.Submit{Job: job("e", 1), At: 41}).Err)
	e, err = marshalEntry(entryServer, ServerInfo{ID: "s9", HTTP: "http://127.0.0.1:9"})
	require.NoError(t, err)
	require.NoError(t, h.apply(e).Err)

	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	assert.Equal(t, string(want), sink.String())
	var now bytes.Buffer
	require.NoError(t, h.f.StateSnapshot(&now))
	assert.NotEqual(t, st.String(), now.String(), "the state moved on meanwhile")
}

// BenchmarkFSMSnapshot measures a raft snapshot of a busy server's FSM:
// 256 nodes of 8 GPUs, 20,480 jobs running and 100,000 in the history.
// snapshot-ms is FSM.Snapshot, which raft calls on the state machine's
// goroutine: applies wait that long. persist-ms is Persist, which raft
// runs beside the applies.
func BenchmarkFSMSnapshot(b *testing.B) {
	pools, nodes := testFleet(256)
	f := NewFSM()
	must := func(c state.Command) state.Result {
		r, err := f.m.Apply(c)
		require.NoError(b, err)
		return r
	}
	must(state.RegisterPool{Pool: pools[0]})
	for _, n := range nodes {
		must(state.RegisterNode{Node: n})
	}
	const round = 256 * 8 * 10 // a tenth of each GPU
	for r := range 6 {
		plan := state.ApplyPlan{At: int64(r)}
		for i := range round {
			id := fmt.Sprintf("r%d-%06d", r, i)
			must(state.Submit{Job: scheduler.Job{ID: id, Kind: scheduler.Training, Tenant: "ml", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 100}}, At: int64(r)})
			g := i / 10
			plan.Place = append(plan.Place, scheduler.JobPlacement{Job: id, Tasks: []scheduler.TaskPlacement{{Node: nodes[g/8].Name, GPUs: []int{g % 8}, GPUMilli: 100}}})
		}
		f.recordEnded(ApplyResult{Results: []state.Result{must(plan)}})
		if r == 5 {
			break // the last round runs on
		}
		for _, jp := range plan.Place {
			f.recordEnded(ApplyResult{Results: []state.Result{must(state.Finish{Job: jp.Job, At: int64(r) + 1})}})
		}
		must(state.Prune{Before: int64(r) + 2})
	}
	var snap, persist time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		s, err := f.Snapshot()
		require.NoError(b, err)
		t1 := time.Now()
		require.NoError(b, s.Persist(&memSink{}))
		snap, persist = snap+t1.Sub(t0), persist+time.Since(t1)
	}
	b.ReportMetric(float64(snap.Microseconds())/1000/float64(b.N), "snapshot-ms")
	b.ReportMetric(float64(persist.Microseconds())/1000/float64(b.N), "persist-ms")
}
