package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestDeleteAt checks the queue removal against slices.Delete at every
// position of queues of several lengths, and that the slot it frees at
// the head lets its job go.
func TestDeleteAt(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 8} {
		for i := range n {
			t.Run(fmt.Sprintf("%d/%d", n, i), func(t *testing.T) {
				q := make([]*Job, n)
				for k := range q {
					q[k] = &Job{ID: fmt.Sprint(k)}
				}
				backing := q[:n:n]
				want := slices.Delete(slices.Clone(q), i, i+1)
				got := deleteAt(q, i)
				require.Equal(t, want, got)
				if i < n/2 {
					require.Nil(t, backing[0], "the head slot keeps a job")
				}
			})
		}
	}
}

// TestQueueInsertDelete drives insertAt and deleteAt with random positions
// against a plain slice, and checks that a queue that jobs enter at the
// tail and leave at the head stops allocating once its buffer is large
// enough.
func TestQueueInsertDelete(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf, q, want []*Job
	for step := range 5000 {
		if len(want) == 0 || rng.IntN(5) < 3 {
			i := rng.IntN(len(want) + 1)
			j := &Job{ID: fmt.Sprint(step)}
			buf, q = insertAt(buf, q, i, j)
			want = slices.Insert(want, i, j)
		} else {
			i := rng.IntN(len(want))
			q = deleteAt(q, i)
			want = slices.Delete(want, i, i+1)
		}
		require.Equal(t, want, q, "step %d", step)
		require.Same(t, &buf[:cap(buf)][cap(buf)-1], &q[:cap(q)][cap(q)-1], "step %d: the queue is not a suffix of its buffer", step)
	}
	// FIFO at a steady length: no allocation.
	jobs := make([]*Job, 64)
	for k := range jobs {
		jobs[k] = &Job{ID: fmt.Sprint(k)}
	}
	buf, q = nil, nil
	for _, j := range jobs[:32] {
		buf, q = insertAt(buf, q, len(q), j)
	}
	k := 32
	allocs := testing.AllocsPerRun(1000, func() {
		q = deleteAt(q, 0)
		buf, q = insertAt(buf, q, len(q), jobs[k%64])
		k++
	})
	require.Zero(t, allocs)
	require.Len(t, q, 32)
}

// TestStandingHeldTags checks that a kept set-up's held check counts task
// tags: a running task the set-up is told of, within the CPU, memory and
// device the cluster has allocated on its node but of a tag the node does
// not run, is refused; told the real task instead, the pass runs.
func TestStandingHeldTags(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 2, 4))
	real := f.run(t, qJob("a", "a", 0, 1, 2), 0, "n1:0,1") // tag 2
	ghost := &RunningJob{Job: qJob("g", "a", 0, 1, 1),     // tag 1
		Tasks: []TaskPlacement{{Node: "n1", GPUs: []int{0}, GPUMilli: MilliPerGPU, CPUMilli: 1000, MemoryMiB: 1024}}}
	st := NewStanding()
	st.Run(f.c, ghost)
	in := Pass{Policy: f.p, Rng: rand.New(rand.NewPCG(1, 2))}
	_, err := f.c.ScheduleStanding(in, st)
	require.ErrorContains(t, err, "the tasks on node n1 hold more")
	st.Stop("g")
	st.Run(f.c, real)
	_, err = f.c.ScheduleStanding(in, st)
	require.NoError(t, err)
	st.Run(f.c, ghost) // beside the real one: tag 1 is still not there
	_, err = f.c.ScheduleStanding(in, st)
	require.ErrorContains(t, err, "the tasks on node n1 hold more")
}

// TestTrustedStandingSkipsTheHeldCheck states the trade of a trusted
// set-up: a running task the cluster does not hold is refused by a
// checking set-up and not by a trusted one, which keeps no sums to check
// it with; both place alike once the driver is consistent again.
func TestTrustedStandingSkipsTheHeldCheck(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 2, 4))
	ghost := &RunningJob{Job: qJob("g", "a", 0, 1, 1),
		Tasks: []TaskPlacement{{Node: "n1", GPUs: []int{0}, GPUMilli: MilliPerGPU, CPUMilli: 1000, MemoryMiB: 1024}}}
	for _, tc := range []struct {
		name    string
		st      *Standing
		refused bool
	}{{"checking", NewStanding(), true}, {"trusted", NewTrustedStanding(), false}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			j := qJob("q", "a", 0, 1, 1)
			st.Queue(f.c, j)
			st.Run(f.c, ghost)
			in := Pass{Policy: f.p, Rng: rand.New(rand.NewPCG(1, 2))}
			_, err := f.c.ScheduleStanding(in, st)
			if tc.refused {
				require.ErrorContains(t, err, "the tasks on node n1 hold more")
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.refused, st.nodes[1].cpu != 0, "the ghost's CPU summed on its node")
			st.Stop("g")
			p, err := f.c.ScheduleStanding(in, st)
			require.NoError(t, err)
			require.Len(t, p.Place, 1)
		})
	}
}

// TestKeptPlansStayValid runs passes on a kept set-up, which carve their
// plans from blocks kept from pass to pass, and checks that every plan
// returned keeps its contents through the later passes, and that appends
// to its lists (the placed jobs, a job's tasks, a task's devices) write
// into no other plan.
func TestKeptPlansStayValid(t *testing.T) {
	defer func(k int) { slabMin = k }(slabMin)
	slabMin = 16 // many blocks
	rng := rand.New(rand.NewPCG(3, 4))
	pools, nodes := randomFleet(rng, 12)
	c, err := NewCluster(pools, nodes)
	require.NoError(t, err)
	pol, err := NewPolicy(c, "best-fit", Options{})
	require.NoError(t, err)
	m := &stModel{c: c, st: NewStanding(), pending: map[string]*Job{}, running: map[string]*RunningJob{}, assigns: map[string][]Assign{}}
	var plans []Plan
	var copies []string
	phantom, placed := "", 0
	for step := range 1500 {
		m.step(t, rng, pol, &phantom)
		got, err := c.ScheduleStanding(Pass{Now: int64(step), Policy: pol, Rng: rand.New(rand.NewPCG(5, uint64(step)))}, m.st)
		if err != nil {
			continue // a phantom task: refused
		}
		plans, copies = append(plans, got), append(copies, fmt.Sprintf("%+v", got))
		placed += len(got.Place)
		m.apply(t, got)
	}
	require.Greater(t, placed, slabMin, "the passes carve more than one block")
	for i, p := range plans {
		require.Equal(t, copies[i], fmt.Sprintf("%+v", p), "plan %d changed", i)
	}
	for _, p := range plans {
		_ = append(p.Place, JobPlacement{Job: "x"})
		for _, jp := range p.Place {
			_ = append(jp.Tasks, TaskPlacement{Node: "x"})
			for _, tp := range jp.Tasks {
				_ = append(tp.GPUs, -1)
			}
		}
	}
	for i, p := range plans {
		require.Equal(t, copies[i], fmt.Sprintf("%+v", p), "plan %d changed by an append to another", i)
	}
}

// fgdShareRef is FGD's score of a share on node n by a trial on every
// device that holds it, the plain statement that score's skipping of
// devices alike to one tried must match.
func fgdShareRef(f *FGD, c *Cluster, n NodeID, s *Shape) (int64, int32) {
	f.prepare(c)
	r := &c.nodes[n]
	before := f.nodeFrag(c, n)
	live, excl := c.devs(n)
	free := slices.Clone(live)
	cpu := r.cpuFree - s.CPU
	best, bestDev := int64(-1), int32(-1)
	for i := range free {
		x := free[i]
		if x < s.Milli {
			continue
		}
		free[i] = x - shareTakes(excl[i], x, s.Milli)
		if sc := sigmoidScore(before - f.frag(cpu, free, r.model)); sc > best {
			best, bestDev = sc, int32(i)
		}
		free[i] = x
	}
	return best, bestDev
}

// TestFGDShareTrialsMatchEveryDevice fills nodes that mix MIG instances and
// whole GPUs with random shares, so that devices of equal free amount, of
// either kind, are common, and checks FGD's score and device for shares of
// every size against a trial on every device.
func TestFGDShareTrialsMatchEveryDevice(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var nodes []Node
	for i := range 12 {
		var gpus []GPU
		for range 2 + rng.IntN(6) {
			g := GPU{Model: "A100"}
			if rng.IntN(3) == 0 {
				g.MIG = []string{"1g.10gb", "2g.20gb", "3g.40gb"}[rng.IntN(3)]
			}
			gpus = append(gpus, g)
		}
		nodes = append(nodes, Node{Name: fmt.Sprintf("n%d", i), CPUMilli: 64000, MemoryMiB: 1 << 20, GPUs: gpus})
	}
	c, err := NewCluster(nil, nodes)
	require.NoError(t, err)
	pol, err := NewPolicy(c, "fgd", Options{})
	require.NoError(t, err)
	f := pol.Scorers[0].Scorer.(*FGD)
	checked := 0
	for round := range 40 {
		for range 6 {
			j := &Job{ID: fmt.Sprintf("j%d", round), Kind: Training, Count: 1,
				Task: Task{GPUs: 1, GPUMilli: []int{142, 285, 100, 200, 500, 715, 858, 572}[rng.IntN(8)], CPUMilli: 1000}}
			_, _, err := c.PlaceJob(pol, j, rng, nil)
			require.NoError(t, err)
		}
		for n := range NodeID(c.NumNodes()) {
			for _, milli := range []int32{100, 142, 200, 285, 428, 500, 900} {
				s := Shape{CPU: 1000, GPUs: 1, Milli: milli, Tag: 0}
				wantSc, wantDev := fgdShareRef(f, c, n, &s)
				gotSc, gotDev := f.score(c, n, &s)
				require.Equal(t, wantSc, gotSc, "round %d node %d share %d", round, n, milli)
				require.Equal(t, wantDev, gotDev, "round %d node %d share %d", round, n, milli)
				checked++
			}
		}
	}
	require.Greater(t, checked, 1000)
}

// TestStandingQueueTwice checks that a job queued twice is refused, be it
// the tail of its queue (found without a search) or not, and that Unqueue
// finds a job at the head and behind it.
func TestStandingQueueTwice(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 1, 1))
	a, b, c := qJob("a", "t", 0, 1, 8), qJob("b", "t", 0, 1, 8), qJob("c", "t", 0, 1, 8)
	a.Submitted, b.Submitted, c.Submitted = 1, 2, 3
	for _, twice := range []*Job{c, a} {
		st := NewStanding()
		for _, j := range []*Job{a, b, c} {
			st.Queue(f.c, j)
		}
		in := Pass{Policy: f.p, Rng: rand.New(rand.NewPCG(1, 2))}
		_, err := f.c.ScheduleStanding(in, st)
		require.NoError(t, err)
		st.Queue(f.c, twice)
		_, err = f.c.ScheduleStanding(in, st)
		require.ErrorContains(t, err, "job "+twice.ID+" is listed twice")
	}
	st := NewStanding()
	for _, j := range []*Job{c, a, b} {
		st.Queue(f.c, j)
	}
	st.Unqueue(b)
	st.Unqueue(a)
	require.Equal(t, []*Job{c}, st.l.tenants[st.l.byName["t"]].queue)
}

// TestSigmoidTableMatchesExact checks the score table against the exact
// rule: at random Δ over and past the table, at and around (within a few
// ulps and a few thousandths) each point where the score steps, at whole
// and half units, and at the edges of the table.
func TestSigmoidTableMatchesExact(t *testing.T) {
	check := func(d float64) {
		if got, want := sigmoidScore(d), sigmoidExact(d); got != want {
			t.Fatalf("Δ = %v (%b): table %d, exact %d", d, math.Float64bits(d), got, want)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1_000_000 {
		check((rng.Float64()*2 - 1) * 60000)
	}
	for d := -45000.0; d <= 45000; d += 0.5 {
		check(d)
	}
	for k := int64(1); k <= 100; k++ {
		// The step to k, found again by a scan from below.
		lo, hi := -1e6, 1e6
		for hi-lo > 1e-9*max(1, math.Abs(hi)) {
			if mid := (lo + hi) / 2; sigmoidExact(mid) >= k {
				hi = mid
			} else {
				lo = mid
			}
		}
		d := hi
		for range 64 {
			d = math.Nextafter(d, math.Inf(-1))
		}
		for range 128 {
			check(d)
			d = math.Nextafter(d, math.Inf(1))
		}
		for i := -1000; i <= 1000; i++ {
			check(hi + float64(i)*1e-6)
		}
	}
	for _, d := range []float64{sigmoidLo, sigmoidLo - 1e-9, sigmoidLo + sigmoidBins, sigmoidLo + sigmoidBins - 1e-9, math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 1e-300, -1e-300} {
		check(d)
	}
	n := 0
	for _, k := range sigmoidBin {
		if k >= 0 {
			n++
		}
	}
	require.Greater(t, n, sigmoidBins*9/10, "most bins are clear of a step")
}

// TestCoreLayouts keeps the records read per task and per node as small as
// they were made: a running task's assignment, a node's record, a kept
// set-up's node.
func TestCoreLayouts(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(Assign{}), uintptr(40), "Assign")
	require.LessOrEqual(t, unsafe.Sizeof(nodeRec{}), uintptr(96), "nodeRec")
	require.LessOrEqual(t, unsafe.Sizeof(standNode{}), uintptr(80+8*inDevs), "standNode")
}

// TestStandingHeldManyDevices checks a kept set-up's held check on a node
// of more devices than a standNode holds sums for in itself: told of the
// running task on other devices past those (the same CPU, memory and tag),
// the pass is refused; told of the real one, it runs.
func TestStandingHeldManyDevices(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 1, 4), qNodes("m", "H100", 1, inDevs+8))
	real := f.run(t, qJob("a", "a", 0, 1, 2), 0, fmt.Sprintf("m0:%d,%d", inDevs+1, inDevs+2))
	moved := &RunningJob{Job: real.Job, Tasks: []TaskPlacement{{Node: "m0", GPUs: []int{inDevs + 2, inDevs + 3},
		GPUMilli: MilliPerGPU, CPUMilli: real.Tasks[0].CPUMilli, MemoryMiB: real.Tasks[0].MemoryMiB}}}
	st := NewStanding()
	st.Run(f.c, moved)
	in := Pass{Policy: f.p, Rng: rand.New(rand.NewPCG(1, 2))}
	_, err := f.c.ScheduleStanding(in, st)
	require.ErrorContains(t, err, "the tasks on node m0 hold more")
	st.Run(f.c, real) // in its place
	_, err = f.c.ScheduleStanding(in, st)
	require.NoError(t, err)
}
