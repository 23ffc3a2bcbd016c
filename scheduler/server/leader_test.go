package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

func TestSplitPlan(t *testing.T) {
	// jobs returns job placements named j0.. with the given task counts.
	jobs := func(tasks ...int) []scheduler.JobPlacement {
		var out []scheduler.JobPlacement
		for i, n := range tasks {
			jp := scheduler.JobPlacement{Job: fmt.Sprintf("j%d", i)}
			for k := range n {
				jp.Tasks = append(jp.Tasks, scheduler.TaskPlacement{Task: k, Node: "n0"})
			}
			out = append(out, jp)
		}
		return out
	}
	evict := []scheduler.Eviction{{Job: "old"}}
	for _, tc := range []struct {
		name  string
		plan  scheduler.Plan
		per   int
		tasks [][]int // task counts of each part's placements
	}{
		{"fits in one", scheduler.Plan{Place: jobs(1, 1, 1)}, 3, [][]int{{1, 1, 1}}},
		{"one over", scheduler.Plan{Place: jobs(1, 1, 1, 1)}, 3, [][]int{{1, 1, 1}, {1}}},
		{"gangs counted by task", scheduler.Plan{Place: jobs(2, 2, 2)}, 4, [][]int{{2, 2}, {2}}},
		{"a gang larger than an entry goes alone", scheduler.Plan{Place: jobs(1, 5, 1)}, 3, [][]int{{1}, {5}, {1}}},
		{"evictions alone", scheduler.Plan{Evict: evict}, 3, [][]int{{}}},
		{"evictions with the first", scheduler.Plan{Evict: evict, Place: jobs(3, 3)}, 3, [][]int{{3}, {3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := splitPlan(tc.plan, tc.per)
			require.Len(t, parts, len(tc.tasks))
			var order []string
			for i, p := range parts {
				got := []int{}
				for _, jp := range p.Place {
					got = append(got, len(jp.Tasks))
					order = append(order, jp.Job)
				}
				assert.Equal(t, tc.tasks[i], got, "part %d", i)
				if i == 0 {
					assert.Equal(t, tc.plan.Evict, p.Evict, "evictions go first")
				} else {
					assert.Empty(t, p.Evict, "part %d", i)
				}
				assert.Equal(t, len(p.Place), cap(p.Place), "part %d cannot grow into the next", i)
			}
			var want []string
			for _, jp := range tc.plan.Place {
				want = append(want, jp.Job)
			}
			assert.Equal(t, want, order, "every placement once, in order")
		})
	}
}

// planSizes records the placements of each plan entry the leader commits.
type planSizes struct {
	mu    sync.Mutex
	sizes []int
	errs  int
}

func (p *planSizes) Planned(time.Duration) {}
func (p *planSizes) Committed(_ time.Duration, plan *scheduler.Plan, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs++
		return
	}
	p.sizes = append(p.sizes, len(plan.Place))
}

// A pass that places more than PlanEntry tasks commits its plan as several
// log entries of at most PlanEntry placements, and places every job.
func TestPassCommitsPlanInEntries(t *testing.T) {
	pools, nodes := testFleet(4)
	s, err := New(Config{ID: "s", DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true,
		Pools: pools, Nodes: nodes, Policy: "best-fit", Coalesce: time.Second, Fast: true, PlanEntry: 4})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, s.Ready(ctx))
	require.Eventually(t, func() bool { return s.Stats().Passes > 0 }, waitFor, 5*time.Millisecond, "a pass on taking office")
	obs := &planSizes{}
	s.SetObserver(obs)
	idle := s.Stats()

	// Ten one-task jobs in one entry: one pass places them all (the
	// coalescing delay is not needed, the batch wakes one pass).
	var cmds []state.Command
	for i := range 10 {
		cmds = append(cmds, state.Submit{Job: scheduler.Job{ID: fmt.Sprintf("b%d", i), Kind: scheduler.Training, Count: 1,
			Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: s.Now()})
	}
	require.NoError(t, s.ApplyBatch(ctx, cmds))
	require.Eventually(t, func() bool {
		running := 0
		s.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) { running = len(m.Running()) })
		return running == 10
	}, waitFor, 5*time.Millisecond)
	st := s.Stats()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	assert.Equal(t, []int{4, 4, 2}, obs.sizes, "entries of at most 4 placements")
	assert.Zero(t, obs.errs)
	assert.Equal(t, idle.Plans+3, st.Plans, "%+v", st)
	assert.Equal(t, idle.Passes+1, st.Passes, "one pass: %+v", st)
}
