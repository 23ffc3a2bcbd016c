package state

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestHint checks that a command's hint only speeds its look-up up: a
// right hint, a wrong one (another job's, a stale one after a prune, one
// out of range) and none all act on the job the command names, and the
// hint is never encoded.
func TestHint(t *testing.T) {
	m := New()
	apply := func(c Command) Result {
		t.Helper()
		res, err := m.Apply(c)
		require.NoError(t, err)
		return res
	}
	apply(RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 64000, MemoryMiB: 1 << 20}})
	task := scheduler.Task{CPUMilli: 1000, MemoryMiB: 1024}
	place := func(id string) ApplyPlan {
		return ApplyPlan{At: 2, Place: []scheduler.JobPlacement{{Job: id, Tasks: []scheduler.TaskPlacement{{Node: "n1", CPUMilli: 1000, MemoryMiB: 1024}}}}}
	}
	for _, id := range []string{"a", "b", "c"} {
		apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Task: task}, At: 1})
		apply(place(id))
	}
	ha, hb, hc := m.Hint("a"), m.Hint("b"), m.Hint("c")
	require.NotZero(t, ha)
	require.NotEqual(t, ha, hb)
	require.Zero(t, m.Hint("nope"))

	status := func(id string) JobStatus {
		j, ok := m.Job(id)
		require.True(t, ok, id)
		return j.Status
	}
	// b's hint on a command naming a: a ends, b runs on.
	require.Equal(t, []string{"a"}, apply(Finish{Job: "a", Hint: hb, At: 3}).Ended)
	require.Equal(t, Running, status("b"))
	// Its own hint, one out of range, none.
	require.Equal(t, []string{"b"}, apply(Cancel{Job: "b", Hint: hb, At: 3}).Ended)
	require.Equal(t, []string{"c"}, apply(Preempt{Job: "c", Hint: 1 << 30, At: 3}).Requeued)
	_, err := m.Apply(Finish{Job: "zz", Hint: hc, At: 3})
	require.EqualError(t, err, `finish: field job: unknown job "zz"`)

	// a and b pruned: their slots go to new jobs; a's old hint now points
	// at another record, and a new "a" is found by id all the same.
	apply(Prune{Before: 4})
	require.Zero(t, m.Hint("a"))
	apply(Submit{Job: scheduler.Job{ID: "d", Count: 1, Task: task}, At: 5})
	apply(Submit{Job: scheduler.Job{ID: "a", Count: 1, Task: task}, At: 5})
	apply(place("a"))
	apply(place("d"))
	require.Equal(t, []string{"a"}, apply(Finish{Job: "a", Hint: ha, At: 6}).Ended)
	require.Equal(t, Running, status("d"))
	require.Equal(t, []string{"d"}, apply(Finish{Job: "d", Hint: ha, At: 6}).Ended)

	// The job just submitted (found first), then pruned: its slot reused
	// by another job, the hint is that job's own.
	apply(Submit{Job: scheduler.Job{ID: "e", Count: 1, Task: task}, At: 7})
	he := m.Hint("e")
	require.NotZero(t, he)
	apply(Cancel{Job: "e", At: 7})
	apply(Prune{Before: 8})
	require.Zero(t, m.Hint("e"), "pruned")
	apply(Submit{Job: scheduler.Job{ID: "f", Count: 1, Task: task}, At: 9})
	require.Equal(t, he, m.Hint("f"), "the slot reused")
	require.Zero(t, m.Hint("e"))

	// Never encoded, never decoded.
	for _, c := range []Command{Finish{Job: "a", At: 1, Hint: 7}, Cancel{Job: "a", At: 1, Hint: 7}, Preempt{Job: "a", At: 1, Hint: 7}} {
		b, err := Encode(c)
		require.NoError(t, err)
		require.NotContains(t, string(b), "7")
		back, err := Decode(b)
		require.NoError(t, err)
		require.NotEqual(t, c, back)
	}
	_, err = Decode([]byte(`{"v":1,"type":"finish","job":"a","at":1,"Hint":3}`))
	require.Error(t, err)
}

// TestWarmChangesNothing: Warm reads, whatever the hint (a running job's,
// a pending one's, a pruned one's, out of range, none), and changes no
// byte of the state.
func TestWarmChangesNothing(t *testing.T) {
	g := busyMachine(t, 3, 6)
	before := snap(t, g.m)
	applied := g.m.Applied()
	for h := int32(-2); h <= int32(len(g.m.recs))+2; h++ {
		g.m.Warm(h)
	}
	for k, r := range g.m.recs {
		if r != nil {
			g.m.WarmSubmit(r.job.ID, k)
		}
		g.m.WarmSubmit(fmt.Sprint("new-", k), k)
	}
	g.m.WarmSubmit("", 0)
	New().WarmSubmit("x", 0) // an empty table
	require.Equal(t, string(before), string(snap(t, g.m)))
	require.Equal(t, applied, g.m.Applied())
	require.NotZero(t, g.m.warmed, "the reads were kept")
	require.Zero(t, g.m.c.Warm(&scheduler.Assign{Node: -1}))
	require.Zero(t, g.m.c.Warm(&scheduler.Assign{Node: scheduler.NodeID(g.m.c.NumNodes())}))
	require.Zero(t, scheduler.RunRef{}.Warm())
}
