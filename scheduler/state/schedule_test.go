package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// drive runs the two halves together as a driver would: each step draws
// some arrivals, ends and node faults, then runs a scheduling pass over the
// machine's queue, running jobs and tenants, and applies its plan (twice:
// the second application must change nothing). It returns the encoded plan
// commands and the final snapshot. With restoreEvery > 0 the machine is
// replaced by its restored snapshot every so many steps.
func drive(t *testing.T, seed uint64, steps, restoreEvery int) ([]string, []byte) {
	t.Helper()
	g := &gen{rng: rand.New(rand.NewPCG(seed, 7)), m: New()}
	apply := func(cmd Command) Result {
		res, err := g.m.Apply(cmd)
		require.NoError(t, err, "%s", cmd.Type())
		return res
	}
	for _, c := range g.fleet() {
		apply(c)
	}
	apply(SetTenant{Tenant: scheduler.Tenant{Name: "a", GuaranteedMilli: 8000}})
	apply(SetTenant{Tenant: scheduler.Tenant{Name: "b", MaxMilli: 16000, Weight: 2}})
	newPolicy := func() *scheduler.Policy {
		p, err := g.m.Cluster().NewPolicy("best-fit", scheduler.Options{})
		require.NoError(t, err)
		return p
	}
	pol := newPolicy()
	var plans []string
	for step := range steps {
		g.now += 10
		for range g.rng.IntN(3) {
			if s := g.submit().(Submit); s.Job.Count > 0 {
				s.Job.Preemptible = g.rng.IntN(2) == 0
				s.Job.Priority = int32(g.rng.IntN(3))
				s.Job.Walltime = int64(10 + g.rng.IntN(100))
				apply(s)
			}
		}
		for _, rj := range g.m.Running() {
			if g.rng.IntN(6) == 0 {
				apply(Finish{Job: rj.Job.ID, At: g.now})
			}
		}
		if g.rng.IntN(10) == 0 {
			st := []scheduler.NodeState{scheduler.NodeReady, scheduler.NodeDown, scheduler.NodeDraining}[g.rng.IntN(3)]
			apply(SetNodeState{Node: fmt.Sprintf("n%d", g.rng.IntN(7)), State: st, At: g.now})
		}
		plan, err := g.m.Plan(scheduler.Pass{
			Now: g.now, Policy: pol, Rng: rand.New(rand.NewPCG(seed, uint64(step))),
			Preempt: true, Backfill: true,
		})
		require.NoError(t, err)
		cmd := PlanCommand(plan, g.now)
		enc, err := Encode(cmd)
		require.NoError(t, err)
		plans = append(plans, string(enc))
		before := snap(t, g.m)
		first := apply(cmd)
		require.Equal(t, !plan.Empty(), first.Changed, "a fresh plan changes the state exactly when it is not empty")
		after := snap(t, g.m)
		require.False(t, apply(cmd).Changed, "a plan applied twice")
		require.Equal(t, string(after), string(snap(t, g.m)))
		if plan.Empty() {
			require.Equal(t, string(before), string(after))
		}
		checkInvariants(t, g.m)
		if restoreEvery > 0 && step%restoreEvery == restoreEvery-1 {
			r, err := Restore(bytes.NewReader(after))
			require.NoError(t, err)
			g.m = r
			pol = newPolicy()
		}
	}
	return plans, snap(t, g.m)
}

// TestScheduleAndApply drives the scheduling pass and the machine together:
// every fresh plan is accepted, a plan applied twice changes nothing, and
// the same inputs give the same plans byte for byte, also when the machine
// is rebuilt from its snapshot along the way.
func TestScheduleAndApply(t *testing.T) {
	steps := 100
	if testing.Short() {
		steps = 50
	}
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			plans, final := drive(t, seed, steps, 0)
			again, final2 := drive(t, seed, steps, 0)
			require.Equal(t, plans, again, "same inputs, same plans")
			require.Equal(t, string(final), string(final2))

			restored, final3 := drive(t, seed, steps, 7)
			require.Equal(t, plans, restored, "a restored machine plans as the original")
			require.Equal(t, string(final), string(final3))

			placed, evicted := 0, 0
			for _, p := range plans {
				cmd, err := Decode([]byte(p))
				require.NoError(t, err)
				placed += len(cmd.(ApplyPlan).Place)
				evicted += len(cmd.(ApplyPlan).Evict)
			}
			require.Greater(t, placed, steps/2, "the pass placed work")
			t.Logf("%d placements, %d evictions over %d passes", placed, evicted, steps)
		})
	}
}
