package server

import (
	"bytes"
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

// The history stays within its bound, keeps the newest records in order,
// and a snapshot's records restore to the same.
func TestHistoryRingBound(t *testing.T) {
	h := historyRing{limit: 20}
	for i := range 95 {
		h.add(HistoryRecord{Ended: int64(i)})
		got := h.ordered()
		require.Len(t, got, min(i+1, 20))
		for k := range got {
			assert.Equal(t, int64(i-len(got)+1+k), got[k].Ended, "in order, the newest kept")
		}
	}
	back := newHistory(h.ordered())
	assert.Equal(t, h.ordered(), back.ordered())
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
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(persisted(t, snap)))))
	g.History(func(h []HistoryRecord, _ *state.Machine) { assert.Equal(t, got, h) })

	// A job running across a restore keeps its start in the history.
	apply(state.ApplyPlan{Place: []scheduler.JobPlacement{
		{Job: "c", Tasks: []scheduler.TaskPlacement{{Task: 0, Node: "n1", GPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}},
	}, At: 200})
	snap, err = f.Snapshot()
	require.NoError(t, err)
	g = NewFSM()
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(persisted(t, snap)))))
	f = g
	apply(state.Finish{Job: "c", Failed: true, At: 260})
	g.History(func(h []HistoryRecord, _ *state.Machine) {
		require.Len(t, h, 3)
		assert.Equal(t, state.Failed, h[2].Status)
		assert.Equal(t, [2]int64{200, 260}, [2]int64{h[2].Started, h[2].Ended})
	})
}

// BenchmarkRecordHistory measures what the history costs each server per
// placement decision: noting a job's start when a plan starts it (start-ns,
// on the plan's commit path), and appending its record when it ends
// (end-ns). One op is one decision (a job of one task started by a batched
// plan, then finished).
func BenchmarkRecordHistory(b *testing.B) {
	pools, nodes := testFleet(64)
	f := NewFSM()
	for _, c := range []state.Command{state.RegisterPool{Pool: pools[0]}} {
		_, err := f.m.Apply(c)
		require.NoError(b, err)
	}
	for _, n := range nodes {
		_, err := f.m.Apply(state.RegisterNode{Node: n})
		require.NoError(b, err)
	}
	const round = 512 // one decision per GPU of the fleet
	var start, end time.Duration
	b.ResetTimer()
	for done, r := 0, 0; done < b.N; r++ {
		n := min(round, b.N-done)
		plan := state.ApplyPlan{At: int64(r)}
		for i := range n {
			id := fmt.Sprintf("r%d-%04d", r, i)
			job := scheduler.Job{ID: id, Kind: scheduler.Training, Tenant: "ml", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100}}
			_, err := f.m.Apply(state.Submit{Job: job, At: int64(r)})
			require.NoError(b, err)
			plan.Place = append(plan.Place, scheduler.JobPlacement{Job: id, Tasks: []scheduler.TaskPlacement{
				{Node: nodes[i/8].Name, GPUs: []int{i % 8}, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100}}})
		}
		res, err := f.m.Apply(plan)
		require.NoError(b, err)
		t0 := time.Now()
		f.recordEnded(ApplyResult{Results: []state.Result{res}})
		start += time.Since(t0)
		for _, jp := range plan.Place {
			res, err := f.m.Apply(state.Finish{Job: jp.Job, At: int64(r) + 1})
			require.NoError(b, err)
			t0 := time.Now()
			f.recordEnded(ApplyResult{Results: []state.Result{res}})
			end += time.Since(t0)
		}
		_, err = f.m.Apply(state.Prune{Before: int64(r) + 2})
		require.NoError(b, err)
		done += n
	}
	b.ReportMetric(float64(start.Nanoseconds())/float64(b.N), "start-ns/decision")
	b.ReportMetric(float64(end.Nanoseconds())/float64(b.N), "end-ns/decision")
	b.ReportMetric(float64((start+end).Nanoseconds())/float64(b.N), "history-ns/decision")
}

// The start book answers as a map written at once would, whatever is
// still pending: the last start wins, a requeue forgets it, and what was
// taken is forgotten.
func TestStartBook(t *testing.T) {
	type op struct {
		kind string // "start", "requeue", "take"
		ids  []string
		at   int64
	}
	for _, tc := range []struct {
		name string
		ops  []op
		want []int64 // the takes' answers, in order
	}{
		{"started then taken", []op{{"start", []string{"a", "b"}, 10}, {"take", []string{"b", "a"}, 0}}, []int64{10, 10}},
		{"the last start wins", []op{{"start", []string{"a"}, 10}, {"start", []string{"a"}, 20}, {"take", []string{"a"}, 0}}, []int64{20}},
		{"requeued: no start", []op{{"start", []string{"a"}, 10}, {"requeue", []string{"a"}, 0}, {"take", []string{"a"}, 0}}, []int64{0}},
		{"requeued and started again", []op{{"start", []string{"a"}, 10}, {"requeue", []string{"a"}, 0}, {"start", []string{"a"}, 30}, {"take", []string{"a"}, 0}}, []int64{30}},
		{"taken once", []op{{"start", []string{"a"}, 10}, {"take", []string{"a", "a"}, 0}}, []int64{10, 0}},
		{"folded then more pending", []op{{"start", []string{"a", "b"}, 10}, {"take", []string{"a"}, 0}, {"requeue", []string{"b"}, 0}, {"start", []string{"c"}, 40}, {"take", []string{"b", "c"}, 0}}, []int64{10, 0, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBook{m: map[string]int64{}}
			var got []int64
			for _, o := range tc.ops {
				switch o.kind {
				case "start":
					b.started(o.ids, o.at)
				case "requeue":
					b.requeued(o.ids)
				case "take":
					for _, id := range o.ids {
						got = append(got, b.take(id))
					}
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("pending stays bounded", func(t *testing.T) {
		b := startBook{m: map[string]int64{}}
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = fmt.Sprint(i)
		}
		for range 3 * foldAt / len(ids) {
			b.started(ids, 1)
			b.requeued(ids)
			assert.Less(t, b.ids, foldAt)
		}
		assert.Zero(t, b.take("7"), "every start was requeued")
		assert.Empty(t, b.m, "every start was requeued")
	})
}

// A view of the ring keeps the records of its moment while the ring goes
// on past its bound (chunks pushed out, new ones filled), and the ring
// holds at most a chunk more than its limit.
func TestHistoryRingView(t *testing.T) {
	const limit = 5
	h := historyRing{limit: limit}
	type seen struct {
		view historyView
		want []HistoryRecord
	}
	var views []seen
	for i := range 3*histChunk + 7 {
		h.add(HistoryRecord{Ended: int64(i)})
		if i == limit-1 || i > limit && i%(histChunk/2) == 3 {
			views = append(views, seen{h.view(), h.ordered()})
		}
		assert.LessOrEqual(t, len(h.chunks), 2, "one chunk beyond the limit at most")
	}
	require.Len(t, h.ordered(), limit)
	assert.Equal(t, int64(3*histChunk+6), h.ordered()[limit-1].Ended)
	for _, v := range views {
		require.Len(t, v.want, limit)
		assert.Equal(t, v.want, v.view.ordered(), "a view keeps its moment")
	}
}
