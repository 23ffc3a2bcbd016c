package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestStepMatchesPlanApply is the differential test of Step: two machines
// fed the same random history (every command kind, broken plans, health
// changes, snapshots restored), one planning and applying with Step on its
// own cluster, the other with Plan and then Apply of the plan, under every
// queue rule and both placement policies, with preemption: the same plans,
// the same results, the same state bytes, and the Step machine's cluster
// holding exactly what its running jobs hold.
func TestStepMatchesPlanApply(t *testing.T) {
	recycled := 0
	defer func() {
		require.Positive(t, recycled, "the stepping machines filled pruned records again")
	}()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := busyMachine(t, seed, 3)
			b, err := Restore(bytes.NewReader(snap(t, g.m)))
			require.NoError(t, err)
			steps, placed, evicted := 0, 0, 0
			for step := range 250 {
				for range g.rng.IntN(6) {
					cmd := g.command()
					if s, ok := cmd.(Submit); ok && s.Job.Count > 0 {
						// Priorities and victims, for the pass to preempt.
						s.Job.Preemptible = g.rng.IntN(2) == 0
						s.Job.Priority = int32(g.rng.IntN(3))
						s.Job.Walltime = int64(10 + g.rng.IntN(100))
						cmd = s
						// Warming changes nothing: the stepping machine warms
						// each submission (ids new, known or empty; reused
						// records near and past the end of its spares).
						g.m.WarmSubmit(s.Job.ID, g.rng.IntN(3))
						g.m.WarmSubmit(fmt.Sprintf("j%d", g.rng.IntN(50)), len(g.m.spare)-1+g.rng.IntN(3))
					}
					resA, errA := g.m.Apply(cmd)
					resB, errB := b.Apply(cmd)
					require.Equal(t, fmt.Sprint(resB, errB), fmt.Sprint(resA, errA), "step %d: %s", step, cmd.Type())
					checkInvariants(t, g.m)
				}
				if g.rng.IntN(8) == 0 {
					// Forget most ended jobs: the stepping machine reuses
					// their records, the other does not.
					cmd := Prune{Before: g.now - int64(g.rng.IntN(20))}
					resA, errA := g.m.Apply(cmd)
					resB, errB := b.Apply(cmd)
					require.Equal(t, fmt.Sprint(resB, errB), fmt.Sprint(resA, errA), "step %d: prune", step)
				}
				if step%40 == 39 {
					// A machine restored from a snapshot plans afresh.
					r, err := Restore(bytes.NewReader(snap(t, g.m)))
					require.NoError(t, err)
					g.m = r
				}
				if g.rng.IntN(2) == 0 {
					continue
				}
				pol, err := g.m.Cluster().NewPolicy([]string{"best-fit", "fgd"}[step%2], scheduler.Options{})
				require.NoError(t, err)
				polB, err := b.Cluster().NewPolicy([]string{"best-fit", "fgd"}[step%2], scheduler.Options{})
				require.NoError(t, err)
				pass := func(p *scheduler.Policy) scheduler.Pass {
					return scheduler.Pass{Now: g.now, Policy: p, Rng: rand.New(rand.NewPCG(seed, uint64(step))), Preempt: step%2 == 0, Backfill: step%3 == 0}
				}
				want, err := b.Plan(pass(polB))
				require.NoError(t, err)
				var wantRes Result
				if !want.Empty() {
					wantRes, err = b.Apply(PlanCommand(want, g.now))
					require.NoError(t, err)
				}
				got, gotRes, err := g.m.Step(pass(pol), g.now)
				require.NoError(t, err)
				require.Equal(t, want, got, "step %d: the plan", step)
				require.Equal(t, wantRes, gotRes, "step %d: the result", step)
				require.Equal(t, string(snap(t, b)), string(snap(t, g.m)), "step %d: the state", step)
				require.Equal(t, b.Applied(), g.m.Applied())
				checkInvariants(t, g.m)
				steps++
				// StepAssigns: a task placement's assignment each, in order.
				as := g.m.StepAssigns()
				for _, p := range got.Place {
					placed += len(p.Tasks)
					r, ok := g.m.jobs.get(g.m.recs, p.Job)
					require.True(t, ok)
					for _, tp := range p.Tasks {
						a, err := g.m.c.AssignOf(tp, r.tag)
						require.NoError(t, err)
						require.Equal(t, a, as[0], "step %d: job %s task %d", step, p.Job, tp.Task)
						as = as[1:]
					}
				}
				require.Empty(t, as, "step %d: one assignment a task placement", step)
				// The plan is the driver's until the next Step: the machine
				// keeps none of its memory, so writing over it changes nothing.
				for i := range got.Place {
					got.Place[i].Job = "scribbled"
					for k := range got.Place[i].Tasks {
						tp := &got.Place[i].Tasks[k]
						tp.Task, tp.Node, tp.GPUMilli = -1, "scribbled", -1
						for d := range tp.GPUs {
							tp.GPUs[d] = -1
						}
					}
				}
				require.Equal(t, string(snap(t, b)), string(snap(t, g.m)), "step %d: the state after the plan was written over", step)
				evicted += len(got.Evict)
			}
			require.Positive(t, steps)
			require.Positive(t, placed)
			recycled += g.m.recycled
			// A Plan on a machine that stepped, and a Step after it.
			pol, err := g.m.Cluster().NewPolicy("best-fit", scheduler.Options{})
			require.NoError(t, err)
			in := scheduler.Pass{Now: g.now, Policy: pol, Rng: rand.New(rand.NewPCG(seed, 1))}
			p1, err := g.m.Plan(in)
			require.NoError(t, err)
			in.Rng = rand.New(rand.NewPCG(seed, 1))
			p2, _, err := g.m.Step(in, g.now)
			require.NoError(t, err)
			require.Equal(t, p1, p2, "Plan then Step on the same state")
			checkInvariants(t, g.m)
			t.Logf("%d passes, %d tasks placed, %d evictions", steps, placed, evicted)
		})
	}
}

// TestStepRefusesSuppliedQueue: the machine supplies the pass's lists.
func TestStepRefusesSuppliedQueue(t *testing.T) {
	g := busyMachine(t, 1, 2)
	before := snap(t, g.m)
	_, _, err := g.m.Step(scheduler.Pass{Pending: []*scheduler.Job{}}, g.now)
	require.ErrorContains(t, err, "leave them empty")
	require.Equal(t, string(before), string(snap(t, g.m)))
}
