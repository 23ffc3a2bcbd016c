package state

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestRunningViewBounded starts and ends thousands of jobs with the running
// view read once at the start and then only now and then: the jobs started
// since a read are kept for the next one only up to a bound (then the view
// is dropped and built again), and every read lists the running jobs by id.
func TestRunningViewBounded(t *testing.T) {
	m := New()
	_, err := m.Apply(RegisterNode{Node: scheduler.Node{Name: "n", CPUMilli: 1 << 20}})
	require.NoError(t, err)
	running := map[string]bool{}
	check := func(step int) {
		var want, got []string
		for id := range running {
			want = append(want, id)
		}
		slices.Sort(want)
		for _, rj := range m.Running() {
			got = append(got, rj.Job.ID)
		}
		require.Equal(t, want, got, "step %d", step)
	}
	check(-1) // the view is on from here
	for i := range 5000 {
		id := fmt.Sprintf("j%05d", (i*7919)%5000) // ids out of order
		_, err := m.Apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Task: scheduler.Task{CPUMilli: 1}}, At: int64(i)})
		require.NoError(t, err)
		p := scheduler.Plan{Place: []scheduler.JobPlacement{{Job: id, Tasks: []scheduler.TaskPlacement{{Task: 0, Node: "n", CPUMilli: 1}}}}}
		_, err = m.Apply(PlanCommand(p, int64(i)))
		require.NoError(t, err)
		running[id] = true
		if i%3 == 0 { // end an earlier one
			old := fmt.Sprintf("j%05d", ((i/2)*7919)%5000)
			if running[old] {
				_, err := m.Apply(Finish{Job: old, At: int64(i)})
				require.NoError(t, err)
				delete(running, old)
			}
		}
		require.LessOrEqual(t, len(m.viewAdd), len(m.viewRec)+1025, "step %d: the jobs started since the last read are bounded", i)
		if i%1700 == 1699 {
			check(i)
		}
	}
	check(5000)
}
