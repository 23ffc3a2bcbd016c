package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// viewDump renders what a View shows of a cluster: every node with its
// spec, state, rank and free capacity, the pools, the totals (not the
// change count, which a pass moves and restores nothing of).
func viewDump(v scheduler.View) string {
	var b strings.Builder
	for i := range v.NumNodes() {
		id := scheduler.NodeID(i)
		fmt.Fprintf(&b, "%v rank=%d %+v %v\n", v.Node(id), v.Rank(id), v.Usage(id), v.Labels(id))
	}
	capMilli, used := v.Totals()
	fmt.Fprintf(&b, "pools=%v models=%v totals=%d/%d\n", v.Pools(), v.Models(), used, capMilli)
	return b.String()
}

// frozenDump renders a frozen state: its cluster, queue, running jobs (with
// their tasks) and tenants.
func frozenDump(f *Frozen) string {
	var b strings.Builder
	b.WriteString(viewDump(f.Cluster()))
	for _, j := range f.Pending() {
		fmt.Fprintf(&b, "pending %+v\n", *j)
	}
	for _, rj := range f.Running() {
		fmt.Fprintf(&b, "running %+v %+v %d\n", *rj.Job, rj.Tasks, rj.Started)
	}
	fmt.Fprintf(&b, "tenants %+v applied %d\n", f.Tenants(), f.Applied())
	return b.String()
}

// busyMachine registers the property tests' fleet and two tenants, then
// runs steps of arrivals, ends, node faults and best-fit passes, so that
// the machine has work running and queued.
func busyMachine(t *testing.T, seed uint64, steps int) *gen {
	t.Helper()
	g := &gen{rng: rand.New(rand.NewPCG(seed, 11)), m: New()}
	for _, c := range g.fleet() {
		_, err := g.m.Apply(c)
		require.NoError(t, err)
	}
	for _, tn := range []scheduler.Tenant{{Name: "a", GuaranteedMilli: 8000}, {Name: "b", MaxMilli: 16000, Weight: 2}} {
		_, err := g.m.Apply(SetTenant{Tenant: tn})
		require.NoError(t, err)
	}
	pol, err := g.m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	require.NoError(t, err)
	for range steps {
		g.advance(t)
		plan, err := g.m.Plan(scheduler.Pass{Now: g.now, Policy: pol, Rng: rand.New(rand.NewPCG(seed, uint64(g.now))), Preempt: true, Backfill: true})
		require.NoError(t, err)
		_, err = g.m.Apply(PlanCommand(plan, g.now))
		require.NoError(t, err, "a fresh plan is accepted")
	}
	require.NotEmpty(t, g.m.Running())
	return g
}

// advance moves the clock and applies some arrivals, ends and node faults.
func (g *gen) advance(t *testing.T) {
	t.Helper()
	g.now += 10
	for range 1 + g.rng.IntN(3) {
		if s := g.submit().(Submit); s.Job.Count > 0 {
			s.Job.Preemptible = g.rng.IntN(2) == 0
			s.Job.Priority = int32(g.rng.IntN(3))
			s.Job.Walltime = int64(10 + g.rng.IntN(100))
			_, err := g.m.Apply(s)
			require.NoError(t, err)
		}
	}
	for _, rj := range g.m.Running() {
		if g.rng.IntN(6) == 0 {
			_, err := g.m.Apply(Finish{Job: rj.Job.ID, At: g.now})
			require.NoError(t, err)
		}
	}
	if g.rng.IntN(8) == 0 {
		st := []scheduler.NodeState{scheduler.NodeReady, scheduler.NodeDown, scheduler.NodeDraining}[g.rng.IntN(3)]
		_, err := g.m.Apply(SetNodeState{Node: fmt.Sprintf("n%d", g.rng.IntN(7)), State: st, At: g.now})
		require.NoError(t, err)
	}
}

// TestPlanOnFrozenState checks, over random histories and every policy
// kind, that a pass run through Plan leaves the machine byte-identical
// (snapshot encoding, the cluster's free capacity and its change count),
// and that its plan is the plan of the same pass run on the machine's live
// cluster, which a pass does change as it goes (and restores).
func TestPlanOnFrozenState(t *testing.T) {
	for _, policy := range []string{"best-fit", "fgd", "random", "topology", "gpu-packing"} {
		t.Run(policy, func(t *testing.T) {
			g := busyMachine(t, 3, 10)
			pol, err := g.m.Cluster().NewPolicy(policy, scheduler.Options{})
			require.NoError(t, err)
			placed := 0
			for step := range 30 {
				g.advance(t)
				pass := func() scheduler.Pass {
					return scheduler.Pass{Now: g.now, Policy: pol, Rng: rand.New(rand.NewPCG(uint64(step), 5)), Preempt: true, Backfill: true}
				}
				encBefore, viewBefore, changes := snap(t, g.m), viewDump(g.m.Cluster()), g.m.Cluster().Changes()
				fromFrozen, err := g.m.Plan(pass())
				require.NoError(t, err)
				require.Equal(t, string(encBefore), string(snap(t, g.m)), "step %d: Plan changed the machine", step)
				require.Equal(t, viewBefore, viewDump(g.m.Cluster()), "step %d: Plan changed the cluster", step)
				require.Equal(t, changes, g.m.Cluster().Changes(), "step %d: Plan touched the cluster", step)

				live := pass()
				live.Pending, live.Running, live.Tenants = g.m.Pending(), g.m.Running(), g.m.Tenants()
				fromLive, err := g.m.c.Schedule(live)
				require.NoError(t, err)
				if !fromLive.Empty() {
					require.Greater(t, g.m.Cluster().Changes(), changes, "a pass on the live cluster moves it, so the check above can fail")
				}
				require.Equal(t, fromLive, fromFrozen, "step %d: the plan from a frozen copy is the plan from the live cluster", step)

				_, err = g.m.Apply(PlanCommand(fromFrozen, g.now))
				require.NoError(t, err)
				checkInvariants(t, g.m)
				for _, p := range fromFrozen.Place {
					placed += len(p.Tasks)
				}
			}
			require.Greater(t, placed, 10, "the passes placed work")
		})
	}
}

// TestFrozenIsIndependent freezes a busy machine, then applies every kind
// of command to the machine and runs passes on the frozen copy: neither
// sees the other's changes, and the frozen copy plans exactly as a machine
// restored from the snapshot taken at freezing time.
func TestFrozenIsIndependent(t *testing.T) {
	g := busyMachine(t, 5, 12)
	var at bytes.Buffer
	require.NoError(t, g.m.Snapshot(&at))
	f := g.m.Freeze()
	require.Equal(t, g.m.Applied(), f.Applied())
	frozen := frozenDump(f)

	pol, err := f.Cluster().NewPolicy("fgd", scheduler.Options{})
	require.NoError(t, err)
	pass := func() scheduler.Pass {
		return scheduler.Pass{Now: g.now, Policy: pol, Rng: rand.New(rand.NewPCG(8, 8)), Preempt: true, Backfill: true}
	}
	first, err := f.Schedule(pass())
	require.NoError(t, err)
	require.Equal(t, frozen, frozenDump(f), "a pass leaves the frozen state as it was")

	// Change the machine in every way a command can.
	before := snap(t, g.m)
	for range 20 {
		g.advance(t)
		plan, err := g.m.Plan(pass())
		require.NoError(t, err)
		_, err = g.m.Apply(PlanCommand(plan, g.now))
		require.NoError(t, err)
	}
	var names []string
	for i := range g.m.Cluster().NumNodes() {
		names = append([]string{g.m.Cluster().Node(scheduler.NodeID(i)).Name}, names...)
	}
	for _, cmd := range []Command{
		SetRanks{Nodes: names},
		SetTenant{Tenant: scheduler.Tenant{Name: "a", MaxMilli: 1000}},
		RegisterPool{Pool: scheduler.Pool{Name: "late", Labels: map[string]string{"x": "y"}}},
		RegisterNode{Node: scheduler.Node{Name: "late1", Pool: "late", CPUMilli: 64000, MemoryMiB: 1 << 17, GPUs: gpus("B200", 8)}},
		SetNodeState{Node: "n0", State: scheduler.NodeDown, At: g.now},
		Submit{Job: scheduler.Job{ID: "pinned", Count: 1, Task: scheduler.Task{CPUMilli: 1000,
			Constraints: []scheduler.Constraint{{Key: "x", Op: scheduler.OpExists}}}}, At: g.now},
	} {
		_, err := g.m.Apply(cmd)
		require.NoError(t, err, "%s", cmd.Type())
	}
	require.NotEqual(t, string(before), string(snap(t, g.m)), "the machine moved on")
	require.Equal(t, frozen, frozenDump(f), "the frozen state did not follow the machine")

	again, err := f.Schedule(pass())
	require.NoError(t, err)
	require.Equal(t, first, again, "the frozen state plans as before")
	r, err := Restore(&at)
	require.NoError(t, err)
	fromRestored, err := r.Plan(pass())
	require.NoError(t, err)
	require.Equal(t, first, fromRestored, "the frozen state plans as the state it was frozen from")

	// Refrozen, it is the machine's state of now, as a fresh Freeze is.
	g.m.Refreeze(f)
	fresh := g.m.Freeze()
	require.Equal(t, frozenDump(fresh), frozenDump(f))
	want, err := fresh.Schedule(pass())
	require.NoError(t, err)
	got, err := f.Schedule(pass())
	require.NoError(t, err)
	require.Equal(t, want, got, "a refrozen state plans as a fresh one")
}

// TestRefreezeFollowsTheMachine refreezes one frozen state step after step
// of a random history and checks it against a fresh Freeze each time: the
// same state, and the same plan from its warm indexes as from cold ones.
func TestRefreezeFollowsTheMachine(t *testing.T) {
	g := busyMachine(t, 9, 5)
	warm, err := g.m.Cluster().NewPolicy("fgd", scheduler.Options{})
	require.NoError(t, err)
	f := g.m.Freeze()
	for step := range 40 {
		for range 1 + g.rng.IntN(4) {
			_, _ = g.m.Apply(g.command()) // the generator draws broken commands too
		}
		// The machine keeps its running view sorted as jobs start and stop.
		var ids, running []string
		for _, rj := range g.m.Running() {
			ids = append(ids, rj.Job.ID)
		}
		for _, j := range g.m.Jobs() {
			if j.Status == Running {
				running = append(running, j.Job.ID)
			}
		}
		require.Equal(t, running, ids, "step %d: the running jobs, by id", step)

		g.m.Refreeze(f)
		fresh := g.m.Freeze()
		require.Equal(t, frozenDump(fresh), frozenDump(f), "step %d", step)
		cold, err := fresh.Cluster().NewPolicy("fgd", scheduler.Options{})
		require.NoError(t, err)
		pass := func(p *scheduler.Policy) scheduler.Pass {
			return scheduler.Pass{Now: g.now, Policy: p, Rng: rand.New(rand.NewPCG(uint64(step), 1)), Preempt: true, Backfill: true}
		}
		want, err := fresh.Schedule(pass(cold))
		require.NoError(t, err)
		got, err := f.Schedule(pass(warm))
		require.NoError(t, err)
		require.Equal(t, want, got, "step %d: a refrozen state plans as a fresh one", step)
	}
}

// TestFrozenRefusesSuppliedQueue checks that a pass on frozen state does
// not silently replace a queue the caller passed.
func TestFrozenRefusesSuppliedQueue(t *testing.T) {
	g := busyMachine(t, 2, 3)
	pol, err := g.m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	require.NoError(t, err)
	_, err = g.m.Plan(scheduler.Pass{Policy: pol, Rng: rand.New(rand.NewPCG(1, 1)), Pending: g.m.Pending()})
	require.ErrorContains(t, err, "pending")
}

// TestPlanWhileApplying is the daemon's shape: one goroutine applies
// commands, another freezes (or refreezes) the state under the same lock
// and plans outside it, then sends its plan through Apply, which refuses it if the
// state moved under it. Run with -race: a frozen state that shared memory
// with the machine is a data race.
func TestPlanWhileApplying(t *testing.T) {
	g := busyMachine(t, 7, 5)
	var mu sync.Mutex
	steps := 300
	if testing.Short() {
		steps = 100
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range steps {
			mu.Lock()
			cmd := g.command()
			_, _ = g.m.Apply(cmd) // the generator draws broken commands too
			mu.Unlock()
		}
	})
	var accepted, refused int
	wg.Go(func() {
		mu.Lock()
		pol, err := g.m.Cluster().NewPolicy("fgd", scheduler.Options{})
		mu.Unlock()
		if err != nil {
			t.Error(err)
			return
		}
		var f *Frozen
		for i := range steps / 3 {
			mu.Lock()
			if f == nil || i%4 == 0 {
				f = g.m.Freeze()
			} else {
				g.m.Refreeze(f)
			}
			now := g.now
			mu.Unlock()
			plan, err := f.Schedule(scheduler.Pass{Now: now, Policy: pol, Rng: rand.New(rand.NewPCG(uint64(i), 3)), Preempt: true, Backfill: true})
			if err != nil {
				t.Errorf("pass %d: %v", i, err)
				return
			}
			mu.Lock()
			if _, err := g.m.Apply(PlanCommand(plan, now)); err != nil {
				refused++
			} else {
				accepted++
			}
			mu.Unlock()
		}
	})
	wg.Wait()
	checkInvariants(t, g.m)
	require.Positive(t, accepted, "plans made on frozen state were accepted (%d refused as stale)", refused)
	t.Logf("%d plans accepted, %d refused as stale", accepted, refused)
}

// machineDump renders the machine as frozenDump renders a frozen state, from
// the machine's own lists.
func machineDump(m *Machine) string {
	var b strings.Builder
	b.WriteString(viewDump(m.Cluster()))
	for _, j := range m.Pending() {
		fmt.Fprintf(&b, "pending %+v\n", *j)
	}
	for _, rj := range m.Running() {
		fmt.Fprintf(&b, "running %+v %+v %d\n", *rj.Job, rj.Tasks, rj.Started)
	}
	fmt.Fprintf(&b, "tenants %+v applied %d\n", m.Tenants(), m.Applied())
	return b.String()
}

// TestRefreezeMatchesScratch is the differential test of the incremental
// refreeze: over random histories (every command kind, broken plans, pruned
// ids submitted again, the job log trimmed past the frozen copy), a frozen
// state refrozen after gaps of every length holds what the machine's lists
// say, and its pass (a set-up kept between passes) plans as a pass set up
// from scratch from those lists on a copy of the machine's cluster.
func TestRefreezeMatchesScratch(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := busyMachine(t, seed, 3)
			f := g.m.Freeze()
			// A lean copy (the machine's planner's kind) beside it.
			lean := &Frozen{lean: true}
			g.m.Refreeze(lean)
			placed, resubmitted, trimmed := 0, 0, 0
			for step := range 300 {
				for range g.rng.IntN(6) {
					_, _ = g.m.Apply(g.command()) // broken commands too
				}
				if g.rng.IntN(10) == 0 {
					// A pruned id, submitted again: a new record of an old id.
					for i := 1; i <= g.next; i++ {
						id := fmt.Sprintf("j%d", i)
						if _, known := g.m.Job(id); known {
							continue
						}
						_, err := g.m.Apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Tenant: "a", Task: scheduler.Task{CPUMilli: 1000}}, At: g.now})
						require.NoError(t, err)
						resubmitted++
						break
					}
				}
				if g.rng.IntN(25) == 0 {
					g.m.trimLog(g.rng.IntN(3))
					trimmed++
				}
				if g.rng.IntN(3) > 0 {
					continue // let changes pile up between refreezes
				}
				g.m.Refreeze(f)
				g.m.Refreeze(lean)
				require.Equal(t, machineDump(g.m), frozenDump(f), "step %d", step)
				for _, r := range g.m.recs {
					if r == nil {
						continue
					}
					// The assignments a record keeps are those of its tasks.
					if len(r.as) == len(r.run.Tasks) {
						for i, tp := range r.run.Tasks {
							a, err := g.m.c.AssignOf(tp, r.tag)
							require.NoError(t, err)
							require.Equal(t, a, r.as[i], "step %d: job %s task %d", step, r.job.ID, tp.Task)
						}
					}
				}
				pol, err := g.m.Cluster().NewPolicy([]string{"best-fit", "fgd"}[step%2], scheduler.Options{})
				require.NoError(t, err)
				pass := func() scheduler.Pass {
					return scheduler.Pass{Now: g.now, Policy: pol, Rng: rand.New(rand.NewPCG(seed, uint64(step))), Preempt: step%2 == 0, Backfill: step%3 == 0}
				}
				scratch := pass()
				scratch.Pending, scratch.Running, scratch.Tenants = g.m.Pending(), g.m.Running(), g.m.Tenants()
				want, err := g.m.c.Clone().Schedule(scratch)
				require.NoError(t, err)
				got, err := f.Schedule(pass())
				require.NoError(t, err)
				require.Equal(t, want, got, "step %d", step)
				gotLean, err := lean.Schedule(pass())
				require.NoError(t, err)
				require.Equal(t, want, gotLean, "step %d: the lean copy", step)
				if g.rng.IntN(2) == 0 {
					_, err = g.m.Apply(PlanCommand(got, g.now))
					require.NoError(t, err)
					for _, p := range got.Place {
						placed += len(p.Tasks)
					}
				}
			}
			require.Positive(t, placed)
			require.Positive(t, resubmitted)
			require.Positive(t, trimmed)
		})
	}
}
