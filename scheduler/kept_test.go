package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestScheduleKeptLeavesThePlan checks ScheduleKept against
// ScheduleStanding on a replica's cluster: the same plan, the plan's
// changes left on the cluster, and a Sync that takes the source's state
// whether the driver applied the plan there or not, re-touching none of
// the nodes the applied plan changed alike on both sides (their scores
// stand), and then places as a fresh clone does.
func TestScheduleKeptLeavesThePlan(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			src, srcPols := cloneWorld(t)
			rng := rand.New(rand.NewPCG(seed, 7))
			r := NewReplica(src)
			var pols []*Policy
			for _, name := range []string{"best-fit", "fgd", "topology", "random"} {
				p, err := NewPolicy(src, name, Options{})
				require.NoError(t, err)
				pols = append(pols, p)
			}
			var live []Assign
			applied, kept := 0, 0
			for step := range 40 {
				for range rng.IntN(4) {
					if k := rng.IntN(10); k < 5 || len(live) == 0 {
						j := drawCloneJob(rng, 10000+step*10+k)
						as, _, err := src.PlaceJob(srcPols[rng.IntN(len(srcPols))], &j, rng, nil)
						require.NoError(t, err)
						live = append(live, as...)
					} else {
						i := rng.IntN(len(live))
						require.NoError(t, src.Release(live[i]))
						live = append(live[:i], live[i+1:]...)
					}
				}
				r.Sync()
				rc := r.Cluster()
				before := liveState(rc)
				var jobs []Job
				for i := range 6 {
					jobs = append(jobs, drawCloneJob(rng, 20000+step*10+i))
				}
				pol := pols[rng.IntN(len(pols))]
				run := func(kept bool) Plan {
					st := NewStanding()
					for i := range jobs {
						st.Queue(rc, &jobs[i])
					}
					in := Pass{Policy: pol, Rng: rand.New(rand.NewPCG(seed, uint64(step)))}
					var p Plan
					var err error
					if kept {
						p, err = rc.ScheduleKept(in, st)
					} else {
						p, err = rc.ScheduleStanding(in, st)
					}
					require.NoError(t, err)
					return p
				}
				want := run(false)
				require.Equal(t, before, liveState(rc), "step %d: ScheduleStanding undoes its plan", step)
				got := run(true)
				require.Equal(t, want, got, "step %d: the same plan", step)
				if len(got.Place) > 0 {
					require.NotEqual(t, before, liveState(rc), "step %d: the plan is left on the cluster", step)
				}
				seqs := map[NodeID]uint64{}
				if rng.IntN(3) > 0 {
					// The driver applies the plan to the source.
					byID := map[string]*Job{}
					for i := range jobs {
						byID[jobs[i].ID] = &jobs[i]
					}
					for _, jp := range got.Place {
						s, err := src.ShapeOf(&byID[jp.Job].Task)
						require.NoError(t, err)
						for _, tp := range jp.Tasks {
							a, err := src.AssignOf(tp, s.Tag)
							require.NoError(t, err)
							require.NoError(t, src.Commit(a))
							live = append(live, a)
							seqs[a.Node] = rc.nodes[a.Node].seq
						}
					}
					applied++
				}
				r.Sync()
				require.Equal(t, liveState(src), liveState(rc), "step %d: the replica holds the source's state", step)
				for n, seq := range seqs {
					require.Equal(t, seq, rc.nodes[n].seq, "step %d: node %d, placed alike on both sides, is not touched again", step, n)
					kept++
				}
				fresh := src.Clone()
				var freshPols []*Policy
				for _, p := range pols {
					q, err := NewPolicy(fresh, p.Name, Options{})
					require.NoError(t, err)
					freshPols = append(freshPols, q)
				}
				require.Equal(t, placeAll(t, fresh, freshPols, 1000+uint64(step), 8), placeAll(t, rc, pols, 1000+uint64(step), 8),
					"step %d: the replica places as a fresh clone", step)
			}
			require.Positive(t, applied)
			require.Positive(t, kept)
		})
	}
}

// TestSyncCopiesANodeChangedOtherwise changes one node on both sides of a
// replica with the same node totals but different devices or task tags:
// Sync must copy the source's node, not take it for unchanged.
func TestSyncCopiesANodeChangedOtherwise(t *testing.T) {
	share := func(c *Cluster, gpu int, tag int8) Assign {
		a, err := c.AssignOf(TaskPlacement{Node: "n00", GPUs: []int{gpu}, GPUMilli: 250, CPUMilli: 10, MemoryMiB: 16}, tag)
		require.NoError(t, err)
		return a
	}
	for _, tc := range []struct {
		name           string
		srcGPU, repGPU int
		srcTag, repTag int8
	}{
		{"another device", 1, 0, 1, 1},
		{"another tag", 1, 1, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewCluster([]Pool{{Name: "own", Kind: PoolOnPrem}}, []Node{{Name: "n00", Pool: "own", Rack: "r0",
				CPUMilli: 64000, MemoryMiB: 1 << 18, GPUs: []GPU{{Model: "A100"}, {Model: "A100"}}}})
			require.NoError(t, err)
			// Both devices shared and both tags present already: one more
			// share leaves the node's totals and tag bits as they are.
			require.NoError(t, src.Commit(share(src, 0, 1)))
			require.NoError(t, src.Commit(share(src, 1, 2)))
			r := NewReplica(src)
			require.NoError(t, src.Commit(share(src, tc.srcGPU, tc.srcTag)))
			require.NoError(t, r.Cluster().Commit(share(r.Cluster(), tc.repGPU, tc.repTag)))
			r.Sync()
			require.Equal(t, liveState(src), liveState(r.Cluster()))
		})
	}
}

// TestScheduleKeptAssignsAreThePlans: over random passes on a kept set-up
// (gangs, services topped up, preemption and backfill on), the
// assignments ScheduleKeptAssigns hands back are, one for one in plan
// order, those of the plan's task placements (AssignOf with the job's
// tag), and the plan is ScheduleStanding's.
func TestScheduleKeptAssignsAreThePlans(t *testing.T) {
	var topUps, gangs, evictions int
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 41))
		pools, nodes := randomFleet(rng, 6+rng.IntN(8))
		src, err := NewCluster(pools, nodes)
		require.NoError(t, err)
		pol, err := NewPolicy(src, []string{"best-fit", "fgd"}[seed%2], Options{})
		require.NoError(t, err)
		m := &stModel{c: src, st: NewStanding(), pending: map[string]*Job{}, running: map[string]*RunningJob{}, assigns: map[string][]Assign{}}
		r := NewReplica(src)
		rc := r.Cluster()
		phantom := ""
		for step := range 300 {
			m.step(t, rng, pol, &phantom)
			r.Sync()
			in := func() Pass {
				return Pass{Now: int64(step), Policy: pol, Rng: rand.New(rand.NewPCG(seed, uint64(step))), Preempt: step%2 == 0, Backfill: step%3 == 0}
			}
			want, err := rc.ScheduleStanding(in(), m.st)
			if err != nil {
				continue // a phantom task: refused
			}
			got, as, err := rc.ScheduleKeptAssigns(in(), m.st)
			require.NoError(t, err)
			require.Equal(t, want, got, "step %d: the plan", step)
			var wantAs []Assign
			for _, jp := range got.Place {
				j := m.pending[jp.Job]
				if j == nil {
					j = m.running[jp.Job].Job
					topUps++
				}
				if len(jp.Tasks) > 1 && j.Kind == Training {
					gangs++
				}
				sh, err := rc.ShapeOf(&j.Task)
				require.NoError(t, err)
				for _, tp := range jp.Tasks {
					a, err := rc.AssignOf(tp, sh.Tag)
					require.NoError(t, err)
					wantAs = append(wantAs, a)
				}
			}
			require.Len(t, as, len(wantAs), "step %d: the assignments", step)
			if len(as) > 0 {
				require.Equal(t, wantAs, slices.Clip(as), "step %d: the assignments", step)
			}
			evictions += len(got.Evict)
			m.apply(t, got)
		}
	}
	t.Logf("top-ups %d, gangs %d, evictions %d", topUps, gangs, evictions)
	require.Positive(t, topUps)
	require.Positive(t, gangs)
	require.Positive(t, evictions)
}
