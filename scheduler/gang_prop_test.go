package scheduler

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Worlds at the edge of the quotas: each tenant's maximum is set to exactly
// what its queue head asks on top of what it holds, or one milli less or
// more; a guarantee holder leaves exactly as much idle as a borrower's head
// would leave free, or one milli more; services run at exactly their
// MinReplicas; shares land on MIG instances, which take more than they ask.
// Every plan is checked by qCheckPlan (capacity, quotas at each start,
// victims) and by the gang invariant: a training job is placed with every
// task or none, evicted whole, and after the plan is applied every running
// gang holds all its tasks.

// eFleet draws a fleet where MIG instances are common: partitioned GPUs
// beside whole ones, CPU and memory at 1-milli granularity, three zones.
func eFleet(rng *rand.Rand, n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		m := []string{"A100", "H100"}[rng.IntN(2)]
		var gpus []GPU
		if rng.IntN(2) == 0 {
			for _, prof := range oMIGLayouts[rng.IntN(len(oMIGLayouts))] {
				gpus = append(gpus, GPU{Model: m, MIG: prof})
			}
		}
		for g := range []int{0, 1, 2, 4, 8}[rng.IntN(5)] {
			gpus = append(gpus, GPU{Model: m, Island: g / 4})
		}
		nodes[i] = Node{Name: fmt.Sprintf("n%02d", i), Rack: fmt.Sprintf("r%d", i/3),
			CPUMilli: int64(8000 + rng.IntN(56001)), MemoryMiB: int64(32768 + rng.IntN(200000)), GPUs: gpus,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3)}}
		if rng.IntN(15) == 0 {
			nodes[i].State = NodeDraining
		}
	}
	return nodes
}

// eJob draws a job like qRandomJob, with small shares (that a MIG
// instance serves whole) more often.
func eJob(rng *rand.Rand, id string) *Job {
	j := qRandomJob(rng, id)
	if rng.IntN(3) == 0 {
		j.Task.GPUs, j.Task.GPUMilli = 1, 1+rng.IntN(300)
		j.Task.Models = nil
	}
	return j
}

// eRandomWorld builds a world at the edge of its quotas (see above).
func eRandomWorld(t *testing.T, seed uint64, policy string) *qWorld {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0xE1))
	c, err := NewCluster(nil, eFleet(rng, 5+rng.IntN(12)))
	require.NoError(t, err)
	p, err := NewPolicy(c, policy, Options{})
	require.NoError(t, err)
	w := &qWorld{c: c}
	now := int64(1000)
	var running []*RunningJob
	var as []Assign
	for i := range 8 + rng.IntN(25) {
		j := eJob(rng, fmt.Sprintf("r%02d", i))
		j.Tenant = []string{"a", "b", "c"}[rng.IntN(3)]
		start := len(as)
		var ok bool
		as, ok, err = c.PlaceJob(p, j, rng, as)
		require.NoError(t, err)
		if !ok {
			continue
		}
		rj := &RunningJob{Job: j, Started: now - int64(rng.IntN(900))}
		for k, a := range as[start:] {
			if j.Kind == Inference && j.Count > 1 && k == 0 && rng.IntN(3) == 0 {
				require.NoError(t, c.Release(a))
				continue
			}
			rj.Tasks = append(rj.Tasks, c.Placement(k, a))
		}
		if j.Kind == Inference && rng.IntN(2) == 0 {
			j.MinReplicas = len(rj.Tasks) // exactly at its floor: no trim allowed
		}
		running = append(running, rj)
	}
	var pending []*Job
	for i := range 4 + rng.IntN(20) {
		j := eJob(rng, fmt.Sprintf("p%02d", i))
		j.Tenant = []string{"a", "b", "c"}[rng.IntN(3)]
		pending = append(pending, j)
	}

	used := map[string]int64{}
	for _, rj := range running {
		used[rj.Job.Tenant] += rj.GPUMilli()
	}
	head := map[string]*Job{}
	for _, j := range pending {
		if h := head[j.Tenant]; h == nil || fifo(j, h) < 0 {
			head[j.Tenant] = j
		}
	}
	var freeReady int64
	for i := range c.NumNodes() {
		if c.Node(NodeID(i)).State == NodeReady {
			freeReady += c.Usage(NodeID(i)).GPUFree
		}
	}
	off := func() int64 { return int64(rng.IntN(3)) - 1 }
	tenants := map[string]*Tenant{}
	for _, name := range []string{"a", "b", "c"} {
		tn := &Tenant{Name: name, Weight: float64(rng.IntN(3))}
		if h := head[name]; h != nil && rng.IntN(3) > 0 {
			tn.MaxMilli = max(1, used[name]+h.GPUMilliTotal()+off())
		}
		tenants[name] = tn
	}
	// A guarantee holder idle by exactly what a borrower's head leaves free.
	names := []string{"a", "b", "c"}
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	if h := head[names[0]]; h != nil && rng.IntN(2) == 0 {
		g := tenants[names[1]]
		g.GuaranteedMilli = max(0, used[g.Name]+freeReady-h.GPUMilliTotal()+int64(rng.IntN(2)))
		if g.MaxMilli > 0 && g.GuaranteedMilli > g.MaxMilli {
			g.MaxMilli = g.GuaranteedMilli
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		w.tenants = append(w.tenants, *tenants[name])
	}
	w.in = Pass{Now: now, Policy: p, Rng: rand.New(rand.NewPCG(seed, 98)), Pending: pending, Running: running,
		Tenants: w.tenants, Preempt: rng.IntN(3) > 0, Backfill: rng.IntN(2) == 0}
	return w
}

// eCheckGangs checks the gang invariant of a plan: each training job
// placed has every task 0..Count-1 exactly once, each training eviction
// names no tasks (the gang whole), and no job is both evicted and placed;
// then it applies the plan and checks every running gang holds all of its
// tasks. It leaves the cluster as it found it.
func eCheckGangs(t *testing.T, w *qWorld, plan Plan) {
	t.Helper()
	kind := map[string]*Job{}
	for _, j := range w.in.Pending {
		kind[j.ID] = j
	}
	for _, rj := range w.in.Running {
		kind[rj.Job.ID] = rj.Job
	}
	evicted := map[string]bool{}
	for _, ev := range plan.Evict {
		j := kind[ev.Job]
		require.NotNil(t, j, "eviction of unknown job %s", ev.Job)
		if j.Kind == Training {
			require.Empty(t, ev.Tasks, "gang %s evicted in part", ev.Job)
		}
		evicted[ev.Job] = true
	}
	for _, jp := range plan.Place {
		j := kind[jp.Job]
		require.NotNil(t, j, "placement of unknown job %s", jp.Job)
		if j.Kind != Training {
			continue
		}
		require.False(t, evicted[jp.Job], "gang %s evicted and placed in one plan", jp.Job)
		var tasks []int
		for _, tp := range jp.Tasks {
			tasks = append(tasks, tp.Task)
		}
		slices.Sort(tasks)
		want := make([]int, j.Count)
		for i := range want {
			want[i] = i
		}
		require.Equal(t, want, tasks, "gang %s placed in part", jp.Job)
	}
	before := qSnapshot(w.c)
	after := qApply(t, w.c, w.in.Running, w.in.Pending, plan)
	for _, rj := range after {
		if rj.Job.Kind == Training {
			require.Len(t, rj.Tasks, rj.Job.Count, "gang %s runs in part after the plan", rj.Job.ID)
		}
	}
	// Give the cluster back: release what runs now, commit what ran before.
	for _, rj := range after {
		sh, err := w.c.ShapeOf(&rj.Job.Task)
		require.NoError(t, err)
		for _, tp := range rj.Tasks {
			a, err := w.c.AssignOf(tp, sh.Tag)
			require.NoError(t, err)
			require.NoError(t, w.c.Release(a))
		}
	}
	for _, rj := range w.in.Running {
		sh, err := w.c.ShapeOf(&rj.Job.Task)
		require.NoError(t, err)
		for _, tp := range rj.Tasks {
			a, err := w.c.AssignOf(tp, sh.Tag)
			require.NoError(t, err)
			require.NoError(t, w.c.Commit(a))
		}
	}
	require.Equal(t, before, qSnapshot(w.c), "the gang check put the cluster back")
}

// eCheckFIFO checks each tenant's queue order as docs/scheduler.md states
// it (priority, higher first, then submission, then id): a job waiting
// behind a head waits behind one that comes before it; and without
// backfill, no job starts after one of its tenant's jobs that blocked the
// queue (a job that can never start does not block it).
func eCheckFIFO(t *testing.T, w *qWorld, plan Plan) {
	t.Helper()
	placed := map[string]bool{}
	for _, jp := range plan.Place {
		placed[jp.Job] = true
	}
	why := map[string]string{}
	for _, u := range plan.Unplaced {
		why[u.Job] = u.Why
	}
	byTenant := map[string][]*Job{}
	for _, j := range w.in.Pending {
		byTenant[j.Tenant] = append(byTenant[j.Tenant], j)
	}
	for tenant, q := range byTenant {
		slices.SortFunc(q, func(a, b *Job) int {
			return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.Submitted, b.Submitted), strings.Compare(a.ID, b.ID))
		})
		blocked := ""
		for i, j := range q {
			if head, ok := strings.CutPrefix(why[j.ID], WhyBehindHead+" "); ok {
				k := slices.IndexFunc(q, func(x *Job) bool { return x.ID == head })
				require.True(t, k >= 0 && k < i, "tenant %s: %s waits behind %s, which does not come before it", tenant, j.ID, head)
			}
			if w.in.Backfill {
				continue
			}
			if placed[j.ID] {
				require.Empty(t, blocked, "tenant %s: %s started behind %s, which blocked the queue", tenant, j.ID, blocked)
				continue
			}
			if r := why[j.ID]; blocked == "" && r != WhyQuotaNever && r != WhyNever && r != WhyBudget {
				blocked = j.ID
			}
		}
	}
}

// TestScheduleAtQuotaEdges runs passes on worlds at the edge of their
// quotas and checks every plan (see the top of this file).
func TestScheduleAtQuotaEdges(t *testing.T) {
	seeds := uint64(250)
	if oLong() {
		seeds = 3000
	}
	var gangs, refusedMax, trims, migShares int
	for seed := range seeds {
		pol := []string{"first-fit", "best-fit", "random", "topology", "gpu-packing"}[seed%5]
		w := eRandomWorld(t, seed, pol)
		plan := qSchedule(t, w.c, w.in)
		qCheckPlan(t, w, plan)
		eCheckGangs(t, w, plan)
		eCheckFIFO(t, w, plan)
		jobs := map[string]*Job{}
		for _, j := range w.in.Pending {
			jobs[j.ID] = j
		}
		for _, jp := range plan.Place {
			j := jobs[jp.Job]
			if j == nil {
				continue // a top-up
			}
			if j.Kind == Training && j.Count > 1 {
				gangs++
			}
			for _, tp := range jp.Tasks {
				if len(tp.GPUs) == 1 && int(tp.GPUMilli) > j.Task.GPUMilli {
					migShares++
				}
			}
		}
		for _, u := range plan.Unplaced {
			if u.Why == WhyQuotaMax {
				refusedMax++
			}
		}
		for _, ev := range plan.Evict {
			if len(ev.Tasks) > 0 {
				trims++
			}
		}
	}
	// The worlds must reach what they are drawn for.
	assert.Positive(t, gangs, "gangs placed")
	assert.Positive(t, refusedMax, "jobs refused at a tenant's maximum")
	assert.Positive(t, trims, "services trimmed")
	assert.Positive(t, migShares, "shares that took a whole MIG instance")
}
