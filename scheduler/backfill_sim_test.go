package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// EASY backfill promises a blocked head that nothing started after it
// blocked delays it. This test checks the promise by simulating the future
// rather than by the reservation's own arithmetic: the running jobs end at
// their stated times (Started + Walltime; never when unknown; a replica the
// pass tops up with its service), the jobs the pass starts end at Now +
// Walltime, and at each end time the head is tried on the cluster as it
// would then be.
//
//   - Without the starts made after the head blocked, the head first fits
//     at some time T. The reservation's shadow time must be T: the pass
//     knows when the head will start.
//   - With every start of the pass in place, the head must fit at T too:
//     on the nodes the reservation named (its trial placement commits), or
//     wherever the policy puts it.

// bSim is the cluster of a pass's world as the simulation moves it: live
// jobs come and go through the checked Commit and Release.
type bSim struct {
	t    *testing.T
	c    *Cluster
	p    *Policy
	held [][]Assign // each live job's tasks
	end  []int64    // each live job's expected end
	in   []bool     // whether the job holds its tasks now
}

func (b *bSim) add(as []Assign, end int64) {
	cp := slices.Clone(as)
	for _, a := range cp {
		require.NoError(b.t, b.c.Commit(a))
	}
	b.held, b.end, b.in = append(b.held, cp), append(b.end, end), append(b.in, true)
}

// at moves the world to time now: the jobs that end by then are gone.
// Time only moves forward within one simulation.
func (b *bSim) at(now int64) {
	for i := range b.held {
		if b.in[i] && b.end[i] <= now {
			for _, a := range b.held[i] {
				require.NoError(b.t, b.c.Release(a))
			}
			b.in[i] = false
		}
	}
}

// clear gives back everything the simulation still holds.
func (b *bSim) clear() {
	for i := range b.held {
		if b.in[i] {
			for _, a := range b.held[i] {
				require.NoError(b.t, b.c.Release(a))
			}
			b.in[i] = false
		}
	}
}

// fits reports whether the policy places the job now, and leaves nothing.
func (b *bSim) fits(j *Job) bool {
	as, ok, err := b.c.PlaceJob(b.p, j, rand.New(rand.NewPCG(1, 1)), nil)
	require.NoError(b.t, err)
	for _, a := range as {
		require.NoError(b.t, b.c.Release(a))
	}
	return ok
}

// commits reports whether a set of assignments commits now, and leaves
// nothing.
func (b *bSim) commits(as []Assign) bool {
	k := 0
	for ; k < len(as); k++ {
		if b.c.Commit(as[k]) != nil {
			break
		}
	}
	for i := k - 1; i >= 0; i-- {
		require.NoError(b.t, b.c.Release(as[i]))
	}
	return k == len(as)
}

// liveAssigns is what a live job holds at the end of the pass.
func liveAssigns(lj *liveJob) []Assign {
	var out []Assign
	for k, a := range lj.assigns {
		if lj.alive[k] {
			out = append(out, a)
		}
	}
	return out
}

// TestBackfillForwardSimulation runs passes with backfill on random worlds
// and checks each timed reservation against the simulated future (see the
// top of this file).
func TestBackfillForwardSimulation(t *testing.T) {
	seeds := uint64(400)
	if oLong() {
		seeds = 4000
	}
	checked, later := 0, 0
	for seed := range seeds {
		pol := []string{"first-fit", "best-fit", "spread", "topology"}[seed%4]
		var w *qWorld
		if seed%2 == 0 {
			w = qRandomWorld(t, seed, pol)
		} else {
			w = eRandomWorld(t, seed, pol)
		}
		w.in.Backfill, w.in.Preempt = true, false
		before := qSnapshot(w.c)
		s, err := w.c.newPass(&w.in)
		require.NoError(t, err)
		s.topUp()
		require.NoError(t, s.run())
		s.rollback(0)
		require.Equal(t, before, qSnapshot(w.c))
		nRun := len(w.in.Running)
		for ri, r := range s.resv {
			if !r.timed {
				continue // the head waits for a job of unknown walltime
			}
			where := fmt.Sprintf("seed %d (%s) reservation %d for %s", seed, pol, ri, r.job.ID)
			sim := &bSim{t: t, c: w.c, p: w.in.Policy}
			// The world when the head blocked: the running jobs as they
			// are (with the replicas the pass topped up) and the jobs the
			// pass started before.
			for _, lj := range s.live[:nRun] {
				if lj.nInput < len(lj.assigns) {
					sim.add(lj.assigns[lj.nInput:], lj.end) // a replica ends with its service
				}
			}
			for _, lj := range s.live[nRun:r.nLive] {
				sim.add(liveAssigns(lj), lj.end)
			}
			// The running jobs' own tasks are in the cluster already; the
			// simulation releases them when they end.

			for _, lj := range s.live[:nRun] {
				sim.held = append(sim.held, lj.assigns[:lj.nInput])
				sim.end = append(sim.end, lj.end)
				sim.in = append(sim.in, true)
			}
			var ends []int64
			for _, e := range sim.end {
				// A job overdue by its walltime is expected to end now.
				if e = max(e, w.in.Now); e != noEnd && !slices.Contains(ends, e) {
					ends = append(ends, e)
				}
			}
			slices.Sort(ends)
			start := int64(-1)
			for _, e := range ends {
				sim.at(e)
				if sim.fits(r.job) {
					start = e
					break
				}
			}
			require.NotEqual(t, int64(-1), start, "%s: the head never fits, yet holds a reservation", where)
			require.Equal(t, start, r.shadow, "%s: the reservation's shadow time is not when the head first fits", where)

			// Rewind, put every later start in place, and go to the shadow time.
			sim.clear()
			sim.held, sim.end, sim.in = sim.held[:0], sim.end[:0], sim.in[:0]
			for _, lj := range s.live[:nRun] {
				for k := range lj.nInput {
					require.NoError(t, w.c.Commit(lj.assigns[k]))
				}
			}
			require.Equal(t, before, qSnapshot(w.c))
			for _, lj := range s.live[:nRun] {
				if lj.nInput < len(lj.assigns) {
					sim.add(lj.assigns[lj.nInput:], lj.end) // a replica ends with its service
				}
			}
			for _, lj := range s.live[nRun:] {
				sim.add(liveAssigns(lj), lj.end)
			}
			later += len(s.live) - r.nLive

			for _, lj := range s.live[:nRun] {
				sim.held = append(sim.held, lj.assigns[:lj.nInput])
				sim.end = append(sim.end, lj.end)
				sim.in = append(sim.in, true)
			}
			sim.at(start)
			require.True(t, sim.commits(r.trial) || sim.fits(r.job),
				"%s: with the later starts in place the head no longer fits at %d", where, start)
			checked++
			// Put the cluster back as the pass found it.
			sim.clear()
			for _, lj := range s.live[:nRun] {
				for k := range lj.nInput {
					require.NoError(t, w.c.Commit(lj.assigns[k]))
				}
			}
			require.Equal(t, before, qSnapshot(w.c), where)
		}
	}
	t.Logf("%d timed reservations checked, %d starts after their heads blocked", checked, later)
	require.Greater(t, checked, 30, "timed reservations checked")
	require.Greater(t, later, 30, "starts made after a head blocked")
}
