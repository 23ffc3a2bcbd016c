package bench

import (
	"math/rand/v2"
	"sync"
	"testing"

	"petite/scheduler"
	"petite/scheduler/state"
)

// loaded is the placement benchmark's fleet filled to 90% of its GPUs with
// its job mix (best-fit), as a cluster with its live assignments and as a
// state machine holding the same jobs.
type loaded struct {
	pools   []scheduler.Pool
	nodes   []scheduler.Node
	c       *scheduler.Cluster
	assigns []scheduler.Assign
	m       *state.Machine
	jobs    int
}

var (
	loadOnce sync.Once
	load     loaded
	loadErr  error
)

func loadedFleet(b *testing.B) *loaded {
	b.Helper()
	loadOnce.Do(func() { loadErr = buildLoaded(&load) })
	if loadErr != nil {
		b.Fatal(loadErr)
	}
	return &load
}

func buildLoaded(l *loaded) error {
	l.pools, l.nodes = fleet10k()
	l.m = state.New()
	for _, p := range l.pools {
		if _, err := l.m.Apply(state.RegisterPool{Pool: p}); err != nil {
			return err
		}
	}
	for _, n := range l.nodes {
		if _, err := l.m.Apply(state.RegisterNode{Node: n}); err != nil {
			return err
		}
	}
	// Place on a copy of the machine's cluster and apply each job's plan
	// to the machine: both end up holding the same jobs.
	l.c = l.m.Cluster().Clone()
	p, err := l.m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(42, 1))
	capMilli, _ := l.c.Totals()
	for used := int64(0); used < capMilli*9/10; {
		j := mixJob(rng, l.jobs)
		before := len(l.assigns)
		var ok bool
		l.assigns, ok, err = l.c.PlaceJob(p, &j, rng, l.assigns)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		jp := scheduler.JobPlacement{Job: j.ID}
		for k, a := range l.assigns[before:] {
			jp.Tasks = append(jp.Tasks, l.c.Placement(k, a))
		}
		if _, err := l.m.Apply(state.Submit{Job: j, At: 1}); err != nil {
			return err
		}
		if _, err := l.m.Apply(state.ApplyPlan{Place: []scheduler.JobPlacement{jp}, At: 2}); err != nil {
			return err
		}
		used += j.GPUMilliTotal()
		l.jobs++
	}
	return nil
}

// BenchmarkClusterSnapshot10kNodes measures the copy a scheduling pass runs
// on while the state machine keeps applying, on the 10,000-node fleet of
// BenchmarkPlacement10kNodes held at 90% GPU allocation:
//
//   - clone: Cluster.Clone, the flat copy of the slabs;
//   - clone+place: a clone and one placement on it, which builds the
//     clone's first score index (a clone starts without indexes);
//   - freeze: Machine.Freeze, the clone plus copies of the queue and of
//     every running job with its placements;
//   - refreeze: Machine.Refreeze of a frozen state after one job ended
//     (not timed): the changed nodes and the job lists copied again;
//   - rebuild: the naive deep copy, a new cluster from the specs with
//     every live assignment committed again (what a restore does);
//   - pass/freeze and pass/refreeze: a daemon's step, timed from the copy
//     to the plan: one job ended and one submitted (not timed), then a
//     fresh Freeze, or a Refreeze of the last step's copy, and a pass that
//     places the new job (its plan then applied, not timed).
func BenchmarkClusterSnapshot10kNodes(b *testing.B) {
	l := loadedFleet(b)
	b.Logf("%d nodes, %d jobs running, %d tasks", l.c.NumNodes(), l.jobs, len(l.assigns))
	b.Run("clone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = l.c.Clone()
		}
	})
	b.Run("clone+place", func(b *testing.B) {
		p, err := scheduler.NewPolicy(l.c, "best-fit", scheduler.Options{})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 7))
		j := scheduler.Job{ID: "x", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 8000, MemoryMiB: 32000}}
		b.ReportAllocs()
		for b.Loop() {
			d := l.c.Clone()
			if _, ok, err := d.PlaceJob(p, &j, rng, nil); err != nil || !ok {
				b.Fatalf("placement on the clone: ok=%v err=%v", ok, err)
			}
		}
	})
	b.Run("freeze", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = l.m.Freeze()
		}
	})
	b.Run("refreeze", func(b *testing.B) {
		f := l.m.Freeze()
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if _, err := l.m.Apply(state.Finish{Job: l.m.Running()[0].Job.ID, At: 3}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			l.m.Refreeze(f)
		}
	})
	b.Run("pass/freeze", func(b *testing.B) { benchDaemonStep(b, l, false) })
	b.Run("pass/refreeze", func(b *testing.B) { benchDaemonStep(b, l, true) })
	b.Run("rebuild", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := scheduler.NewCluster(l.pools, l.nodes)
			if err != nil {
				b.Fatal(err)
			}
			for _, a := range l.assigns {
				if err := d.Commit(a); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// benchDaemonStep runs the daemon's loop on the loaded machine: each step
// ends the oldest running job and submits one of the mix (not timed), then
// copies the state and runs a best-fit pass on the copy (timed), and
// applies the plan (not timed).
func benchDaemonStep(b *testing.B, l *loaded, refreeze bool) {
	pol, err := l.m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	var f *state.Frozen
	if refreeze {
		f = l.m.Freeze()
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		run := l.m.Running()
		if _, err := l.m.Apply(state.Finish{Job: run[0].Job.ID, At: 3}); err != nil {
			b.Fatal(err)
		}
		j := mixJob(rng, l.jobs)
		l.jobs++
		if _, err := l.m.Apply(state.Submit{Job: j, At: 3}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if refreeze {
			l.m.Refreeze(f)
		} else {
			f = l.m.Freeze()
		}
		plan, err := f.Schedule(scheduler.Pass{Now: 4, Policy: pol, Rng: rng})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if len(plan.Place) != 1 {
			b.Fatalf("the pass placed %d jobs, want the new one", len(plan.Place))
		}
		if _, err := l.m.Apply(state.PlanCommand(plan, 4)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
