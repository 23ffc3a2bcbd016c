package state

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestResultListsShareABlock checks that results' job lists are carved
// from a shared block: a finish allocates no list of its own, a plan no
// list of the jobs it starts, and each list is its own (an append to one
// does not run into the next result's).
func TestResultListsShareABlock(t *testing.T) {
	m := New()
	apply := func(c Command) Result {
		res, err := m.Apply(c)
		require.NoError(t, err)
		return res
	}
	apply(RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 1 << 20, MemoryMiB: 1 << 20}})
	const n = 600
	task := scheduler.Task{CPUMilli: 1, MemoryMiB: 1}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("j%03d", i)
		apply(Submit{Job: scheduler.Job{ID: ids[i], Count: 1, Task: task}, At: 1})
	}
	// Plans of two jobs each: the started lists hold them, and only them.
	var started []Result
	for i := 0; i < n/2; i += 2 {
		res := apply(ApplyPlan{Place: []scheduler.JobPlacement{
			{Job: ids[i], Tasks: []scheduler.TaskPlacement{{Node: "n1", CPUMilli: 1, MemoryMiB: 1}}},
			{Job: ids[i+1], Tasks: []scheduler.TaskPlacement{{Node: "n1", CPUMilli: 1, MemoryMiB: 1}}},
		}, At: 2})
		require.Equal(t, []string{ids[i], ids[i+1]}, res.Started)
		started = append(started, res)
	}
	_ = append(started[0].Started, "x") // must not write into the next list
	require.Equal(t, []string{ids[2], ids[3]}, started[1].Started)
	var ended []Result
	for i := range n / 2 {
		res := apply(Finish{Job: ids[i], At: 3})
		require.Equal(t, []string{ids[i]}, res.Ended)
		ended = append(ended, res)
	}
	_ = append(ended[0].Ended, "x")
	require.Equal(t, []string{ids[1]}, ended[1].Ended)
	require.Equal(t, []string{ids[0], ids[1]}, started[0].Started, "a later result leaves an earlier one as it was")

	if testing.CoverMode() != "" || raceOn {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	next := n / 2
	allocs := testing.AllocsPerRun(200, func() {
		id := ids[next]
		next++
		_, err := m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: id, Tasks: []scheduler.TaskPlacement{{Node: "n1", CPUMilli: 1, MemoryMiB: 1}}}}, At: 4})
		require.NoError(t, err)
		_, err = m.Apply(Finish{Job: id, At: 5})
		require.NoError(t, err)
	})
	// What remains: the command's two lists, built here, and the plan's
	// two slabs (the job's live tasks and their assignments, which it
	// keeps). The lists of ids cost a block per many results (6 before).
	require.LessOrEqual(t, allocs, 4.0, "allocations per plan and finish")
}
