package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// Jobs leaving the pending queue from the front, the back and the middle
// leave the rest in submission order (unqueue closes the gap from either
// side).
func TestUnqueueKeepsOrder(t *testing.T) {
	for _, order := range [][]int{
		{0, 1, 2, 3, 4, 5, 6, 7},
		{7, 6, 5, 4, 3, 2, 1, 0},
		{3, 4, 2, 5, 1, 6, 0, 7},
		{1, 6, 2, 5, 0, 7, 3, 4},
	} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			m := New()
			var left []string
			for i := range 8 {
				id := fmt.Sprintf("j%d", i)
				_, err := m.Apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Task: scheduler.Task{CPUMilli: 1}}, At: int64(i)})
				require.NoError(t, err)
				left = append(left, id)
			}
			for _, k := range order {
				id := fmt.Sprintf("j%d", k)
				_, err := m.Apply(Cancel{Job: id, At: 10})
				require.NoError(t, err)
				left = slices.DeleteFunc(left, func(s string) bool { return s == id })
				got := []string{}
				for _, j := range m.Pending() {
					got = append(got, j.ID)
				}
				require.Equal(t, left, got)
			}
		})
	}
}

// A long queue that jobs leave from within (started out of order,
// cancelled) and return to (preempted training, at its submission place)
// keeps submission order through the holes left behind and their
// squeezing out, and counts its jobs right.
func TestQueueHolesKeepOrder(t *testing.T) {
	m := New()
	_, err := m.Apply(RegisterNode{Node: scheduler.Node{Name: "n", CPUMilli: 1 << 40, MemoryMiB: 1 << 30}})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 7))
	type job struct {
		id  string
		seq int
	}
	var pending, running []job
	next := 0
	submit := func() {
		id := fmt.Sprintf("j%d", next)
		_, err := m.Apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Task: scheduler.Task{CPUMilli: 1}}, At: int64(next)})
		require.NoError(t, err)
		pending = append(pending, job{id, next})
		next++
	}
	for range 400 {
		submit()
	}
	take := func(l *[]job, i int) job {
		j := (*l)[i]
		*l = slices.Delete(*l, i, i+1)
		return j
	}
	compacted := 0
	for step := range 3000 {
		holes := m.holes
		switch k := rng.IntN(10); {
		case k < 3 && len(pending) > 0:
			j := take(&pending, rng.IntN(len(pending)))
			_, err := m.Apply(Cancel{Job: j.id, At: int64(step)})
			require.NoError(t, err)
		case k < 7 && len(pending) > 0:
			j := take(&pending, rng.IntN(len(pending)))
			_, err := m.Apply(ApplyPlan{At: int64(step), Place: []scheduler.JobPlacement{{Job: j.id, Tasks: []scheduler.TaskPlacement{{Node: "n", CPUMilli: 1}}}}})
			require.NoError(t, err)
			running = append(running, j)
		case k < 9 && len(running) > 0:
			j := take(&running, rng.IntN(len(running)))
			res, err := m.Apply(Preempt{Job: j.id, At: int64(step)})
			require.NoError(t, err)
			require.Equal(t, []string{j.id}, res.Requeued)
			i, _ := slices.BinarySearchFunc(pending, j.seq, func(p job, s int) int { return p.seq - s })
			pending = slices.Insert(pending, i, j)
		default:
			submit()
		}
		want := []string{}
		for _, j := range pending {
			want = append(want, j.id)
		}
		got := []string{}
		for _, j := range m.Pending() {
			got = append(got, j.ID)
		}
		require.Equal(t, want, got, "step %d", step)
		require.Contains(t, m.String(), fmt.Sprintf(" %d pending,", len(pending)))
		require.LessOrEqual(t, 2*m.holes, max(len(m.pending), 32), "step %d: holes are squeezed out", step)
		if m.holes < holes-1 { // more than a hole filled or trimmed
			compacted++
		}
	}
	require.Positive(t, compacted)
}
