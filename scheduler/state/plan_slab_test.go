package state

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestApplyPlanAllocs checks that applying a plan allocates per plan, not
// per placement: a plan of 1,000 one-task placements takes a few slabs.
func TestApplyPlanAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceOn {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	for _, per := range []int{10, 1000} {
		// The first plan grows the machine's logs and scratch; the
		// second is measured.
		m, plans := planFleet(t, 32, 2*per, per)
		_, err := m.Apply(plans[0])
		require.NoError(t, err)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, err := m.Apply(plans[1])
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		require.Len(t, res.Started, per)
		allocs := after.Mallocs - before.Mallocs
		t.Logf("a plan of %d placements: %d allocations", per, allocs)
		require.LessOrEqual(t, allocs, uint64(12), "a plan of %d placements", per)
	}
}

// TestPlanSharesNothing checks that the jobs a plan starts share no memory
// with the caller's plan, nor with each other through the plan's slabs: the
// caller changing its plan, or one job losing a replica, leaves the others
// as placed.
func TestPlanSharesNothing(t *testing.T) {
	m := New()
	for _, c := range []Command{
		RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 64000, MemoryMiB: 1 << 20, GPUs: gpus("A100", 8)}},
		Submit{Job: scheduler.Job{ID: "s", Kind: scheduler.Inference, Count: 3, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
		Submit{Job: scheduler.Job{ID: "g", Kind: scheduler.Training, Count: 2, Task: scheduler.Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	p := ApplyPlan{At: 2, Place: []scheduler.JobPlacement{
		{Job: "s", Tasks: []scheduler.TaskPlacement{tp(2, "n1", 1000, 2), tp(0, "n1", 1000, 0), tp(1, "n1", 1000, 1)}},
		{Job: "g", Tasks: []scheduler.TaskPlacement{tp(0, "n1", 1000, 4, 3), tp(1, "n1", 1000, 6, 5)}},
	}}
	_, err := m.Apply(p)
	require.NoError(t, err)
	want := func() ([]scheduler.TaskPlacement, []scheduler.TaskPlacement) {
		return []scheduler.TaskPlacement{tp(0, "n1", 1000, 0), tp(1, "n1", 1000, 1), tp(2, "n1", 1000, 2)},
			[]scheduler.TaskPlacement{tp(0, "n1", 1000, 3, 4), tp(1, "n1", 1000, 5, 6)}
	}
	ws, wg := want()
	s, _ := m.Job("s")
	g, _ := m.Job("g")
	require.Equal(t, ws, s.Tasks)
	require.Equal(t, wg, g.Tasks)

	// The caller reuses its plan.
	for i := range p.Place {
		for k := range p.Place[i].Tasks {
			p.Place[i].Tasks[k].Node = "elsewhere"
			for d := range p.Place[i].Tasks[k].GPUs {
				p.Place[i].Tasks[k].GPUs[d] = 7
			}
		}
	}
	// A replica of s ends: its list shrinks in place.
	_, err = m.Apply(Finish{Job: "s", Tasks: []int{0}, At: 3})
	require.NoError(t, err)
	s, _ = m.Job("s")
	g, _ = m.Job("g")
	require.Equal(t, ws[1:], s.Tasks)
	require.Equal(t, wg, g.Tasks)
	// And the cluster gives back exactly what each job took.
	for _, id := range []string{"s", "g"} {
		_, err = m.Apply(Finish{Job: id, At: 4})
		require.NoError(t, err)
	}
	u := m.Cluster().Usage(0)
	require.Equal(t, u.GPUCap, u.GPUFree)
}

// TestPlanKeepsNoDecodedStrings checks that a running job names its nodes
// by the cluster's own strings, not by those of the decoded entry that
// placed it: a decoded plan's strings share the entry's memory, which the
// machine must not keep alive.
func TestPlanKeepsNoDecodedStrings(t *testing.T) {
	m, plans := planFleet(t, 2, 3, 3)
	raw, err := Encode(plans[0])
	require.NoError(t, err)
	cmd, err := Decode(raw)
	require.NoError(t, err)
	_, err = m.Apply(cmd)
	require.NoError(t, err)
	for _, rj := range m.Running() {
		for _, tp := range rj.Tasks {
			id, ok := m.c.NodeByName(tp.Node)
			require.True(t, ok)
			require.True(t, unsafe.StringData(m.c.Node(id).Name) == unsafe.StringData(tp.Node), "job %s: node %s is not the cluster's string", rj.Job.ID, tp.Node)
		}
	}
}

// TestApplyKeepsNoCommand checks that Apply does not make its command
// escape: a driver's command literal, value or pointer, costs no
// allocation when the command itself allocates nothing (a finish of a job
// that ended already).
func TestApplyKeepsNoCommand(t *testing.T) {
	if testing.CoverMode() != "" || raceOn {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	m := New()
	for _, c := range []Command{
		RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 64000, MemoryMiB: 1 << 20}},
		Submit{Job: scheduler.Job{ID: "a", Count: 1, Task: scheduler.Task{CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
		Cancel{Job: "a", At: 2},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	id := "a"
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := m.Apply(Finish{Job: id, At: 3, Failed: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Apply(&Cancel{Job: id, At: 3}); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}
