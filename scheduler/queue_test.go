package scheduler

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// qFixture is a hand-made cluster with running jobs, for the queue, quota
// and preemption tests.
type qFixture struct {
	c       *Cluster
	p       *Policy
	running []*RunningJob
}

// qNodes builds n nodes named prefix0.. with g whole GPUs of a model,
// 64 CPUs and 256 GiB each, in zone z0.
func qNodes(prefix, model string, n, g int) []Node {
	out := make([]Node, n)
	for i := range out {
		gpus := make([]GPU, g)
		for k := range gpus {
			gpus[k] = GPU{Model: model}
		}
		out[i] = Node{Name: fmt.Sprintf("%s%d", prefix, i), CPUMilli: 64000, MemoryMiB: 256 << 10, GPUs: gpus,
			Labels: map[string]string{"zone": "z0"}}
	}
	return out
}

func qNew(t *testing.T, nodes ...[]Node) *qFixture {
	t.Helper()
	c, err := NewCluster(nil, slices.Concat(nodes...))
	require.NoError(t, err)
	p, err := NewPolicy(c, "first-fit", Options{})
	require.NoError(t, err)
	return &qFixture{c: c, p: p}
}

// run makes a job running since started, task k on where[k], written
// "node:dev,dev" ("n0:0,1"; "n0" for a CPU-only task).
func (f *qFixture) run(t *testing.T, j *Job, started int64, where ...string) *RunningJob {
	t.Helper()
	sh, err := f.c.ShapeOf(&j.Task)
	require.NoError(t, err)
	rj := &RunningJob{Job: j, Started: started}
	for k, w := range where {
		node, devs, _ := strings.Cut(w, ":")
		tp := TaskPlacement{Task: k, Node: node, CPUMilli: j.Task.CPUMilli, MemoryMiB: j.Task.MemoryMiB}
		if devs != "" {
			for _, d := range strings.Split(devs, ",") {
				i, err := strconv.Atoi(d)
				require.NoError(t, err)
				tp.GPUs = append(tp.GPUs, i)
			}
			tp.GPUMilli = int32(j.Task.GPUMilli)
		}
		a, err := f.c.AssignOf(tp, sh.Tag)
		require.NoError(t, err)
		require.NoError(t, f.c.Commit(a), "running job %s", j.ID)
		rj.Tasks = append(rj.Tasks, tp)
	}
	f.running = append(f.running, rj)
	return rj
}

func (f *qFixture) pass(now int64, pending ...*Job) Pass {
	return Pass{Now: now, Policy: f.p, Rng: rand.New(rand.NewPCG(1, 2)), Pending: pending, Running: f.running}
}

// qJob is a training job of count tasks of gpus whole GPUs.
func qJob(id, tenant string, prio int32, count, gpus int) *Job {
	return &Job{ID: id, Kind: Training, Tenant: tenant, Priority: prio, Count: count,
		Task: Task{GPUs: gpus, GPUMilli: MilliPerGPU, CPUMilli: 1000, MemoryMiB: 1024}}
}

func qPlaced(p Plan) []string {
	var ids []string
	for _, jp := range p.Place {
		ids = append(ids, jp.Job)
	}
	return ids
}

func qWhy(p Plan) map[string]string {
	out := map[string]string{}
	for _, u := range p.Unplaced {
		out[u.Job] = u.Why
	}
	return out
}

// qState is everything of a cluster's state that placement reads: each
// node's record (less its change sequence), free device capacity and task
// tag counts.
type qState struct {
	Usage    []NodeUsage
	Nodes    []nodeRec
	GPUFree  []int32
	TagCount []int32
}

// qSnapshot captures a cluster's state.
func qSnapshot(c *Cluster) qState {
	st := qState{Nodes: slices.Clone(c.nodes), GPUFree: slices.Clone(c.gpuFree), TagCount: slices.Clone(c.tagCount)}
	for i := range st.Nodes {
		st.Nodes[i].seq = 0
		st.Usage = append(st.Usage, c.Usage(NodeID(i)))
	}
	return st
}

// qSchedule runs a pass, checks that the pass left the cluster as it found
// it, and returns the plan.
func qSchedule(t *testing.T, c *Cluster, in Pass) Plan {
	t.Helper()
	before := qSnapshot(c)
	plan, err := c.Schedule(in)
	require.NoError(t, err)
	require.Equal(t, before, qSnapshot(c), "Schedule changed the cluster")
	return plan
}

// qApply applies a plan as the state machine does, through the checked
// Release and Commit: every eviction, then every placement. It fails the
// test if anything would exceed capacity, and returns the running jobs
// after the plan.
func qApply(t *testing.T, c *Cluster, running []*RunningJob, pending []*Job, plan Plan) []*RunningJob {
	t.Helper()
	byID := map[string]*RunningJob{}
	var out []*RunningJob
	for _, rj := range running {
		cp := *rj
		cp.Tasks = slices.Clone(rj.Tasks)
		byID[rj.Job.ID] = &cp
		out = append(out, &cp)
	}
	tag := func(j *Job) int8 {
		sh, err := c.ShapeOf(&j.Task)
		require.NoError(t, err)
		return sh.Tag
	}
	for _, ev := range plan.Evict {
		rj := byID[ev.Job]
		require.NotNil(t, rj, "eviction of %s, not running", ev.Job)
		keep := rj.Tasks[:0:0]
		for _, tp := range rj.Tasks {
			if len(ev.Tasks) > 0 && !slices.Contains(ev.Tasks, tp.Task) {
				keep = append(keep, tp)
				continue
			}
			a, err := c.AssignOf(tp, tag(rj.Job))
			require.NoError(t, err)
			require.NoError(t, c.Release(a), "evicting %s task %d", ev.Job, tp.Task)
		}
		require.Less(t, len(keep), len(rj.Tasks), "eviction of %s frees nothing", ev.Job)
		rj.Tasks = keep
	}
	jobs := map[string]*Job{}
	for _, j := range pending {
		jobs[j.ID] = j
	}
	for _, jp := range plan.Place {
		if rj := byID[jp.Job]; rj != nil {
			// Missing replicas of a running service come back.
			require.Equal(t, Inference, rj.Job.Kind, "top-up of %s, not a service", jp.Job)
			for _, tp := range jp.Tasks {
				for _, have := range rj.Tasks {
					require.NotEqual(t, have.Task, tp.Task, "replica %d of %s placed twice", tp.Task, jp.Job)
				}
				require.Less(t, tp.Task, rj.Job.Count)
				a, err := c.AssignOf(tp, tag(rj.Job))
				require.NoError(t, err)
				require.NoError(t, c.Commit(a), "topping up %s replica %d: capacity exceeded", jp.Job, tp.Task)
				rj.Tasks = append(rj.Tasks, tp)
			}
			continue
		}
		j := jobs[jp.Job]
		require.NotNil(t, j, "placement of %s, not pending", jp.Job)
		require.Len(t, jp.Tasks, j.Count, "job %s placed in part", j.ID)
		for k, tp := range jp.Tasks {
			require.Equal(t, k, tp.Task)
			a, err := c.AssignOf(tp, tag(j))
			require.NoError(t, err)
			require.NoError(t, c.Commit(a), "placing %s task %d: capacity exceeded", j.ID, k)
		}
		out = append(out, &RunningJob{Job: j, Tasks: jp.Tasks})
	}
	return slices.DeleteFunc(out, func(rj *RunningJob) bool { return len(rj.Tasks) == 0 })
}

func TestQueueFIFOWithinTenant(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 1, 4))
	old := qJob("old", "a", 0, 1, 2)
	old.Submitted = 5
	newer := qJob("newer", "a", 0, 1, 2)
	newer.Submitted = 9
	urgent := qJob("urgent", "a", 7, 1, 2)
	urgent.Submitted = 20
	tieB, tieA := qJob("tie-b", "a", 0, 1, 2), qJob("tie-a", "a", 0, 1, 2)
	tieA.Submitted, tieB.Submitted = 5, 5

	// Room for two 2-GPU jobs: priority first, then submission, then id.
	plan := qSchedule(t, f.c, f.pass(100, newer, tieB, old, urgent, tieA))
	assert.Equal(t, []string{"urgent", "old"}, qPlaced(plan))
	why := qWhy(plan)
	assert.Equal(t, WhyNoFit, why["tie-a"], "the head blocks")
	assert.Equal(t, WhyBehindHead+" tie-a", why["tie-b"])
	assert.Equal(t, WhyBehindHead+" tie-a", why["newer"])
}

func TestQueueBlockedHeadBlocksOnlyItsTenant(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 1, 4))
	f.run(t, qJob("busy", "x", 0, 1, 1), 0, "n0:0") // big fits only once busy ends
	big := qJob("big", "a", 0, 1, 4)
	small := qJob("small", "a", 0, 1, 1)
	small.Submitted = 1
	other := qJob("other", "b", 0, 1, 1)

	plan := qSchedule(t, f.c, f.pass(0, big, small, other))
	assert.Equal(t, []string{"other"}, qPlaced(plan), "without backfill the small job waits; tenant b is not held up")
	assert.Equal(t, WhyBehindHead+" big", qWhy(plan)["small"])
}

func TestQueueDominantResourceFairShare(t *testing.T) {
	// Two 4-GPU nodes, 64 CPUs each. Tenant a holds 2 GPUs (25% of GPU),
	// tenant b holds 1 GPU but 48 CPUs (37.5% of CPU): b's dominant share
	// is larger, so a goes first when only one more job fits.
	build := func(t *testing.T) *qFixture {
		f := qNew(t, qNodes("n", "H100", 2, 4))
		f.run(t, qJob("a-run", "a", 0, 1, 2), 0, "n0:0,1")
		bj := qJob("b-run", "b", 0, 1, 1)
		bj.Task.CPUMilli = 48000
		f.run(t, bj, 0, "n1:0")
		f.run(t, qJob("fill", "c", 0, 1, 2), 0, "n1:1,2")
		return f
	}
	cases := []struct {
		name    string
		tenants []Tenant
		want    string
	}{
		{"dominant share decides", nil, "a-new"},
		{"weight halves a share", []Tenant{{Name: "b", Weight: 2}}, "b-new"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := build(t)
			in := f.pass(0, qJob("b-new", "b", 0, 1, 2), qJob("a-new", "a", 0, 1, 2))
			in.Tenants = tc.tenants
			plan := qSchedule(t, f.c, in)
			assert.Equal(t, []string{tc.want}, qPlaced(plan))
		})
	}
}

func TestQueueFairShareAlternates(t *testing.T) {
	// Equal tenants starting from nothing take turns, a before b on a tie.
	f := qNew(t, qNodes("n", "H100", 1, 4))
	var pending []*Job
	for i := range 4 {
		pending = append(pending, qJob(fmt.Sprintf("a%d", i), "a", 0, 1, 1), qJob(fmt.Sprintf("b%d", i), "b", 0, 1, 1))
	}
	plan := qSchedule(t, f.c, f.pass(0, pending...))
	assert.Equal(t, []string{"a0", "b0", "a1", "b1"}, qPlaced(plan))
}

func TestQueueBackfill(t *testing.T) {
	// Two 4-GPU nodes. n0 runs "long" (2 GPUs, ends at 1000), n1 runs
	// "rest" (3 GPUs, unknown walltime). The head wants 4 GPUs on one node:
	// it fits on n0 at 1000, its shadow time. n0 has 2 GPUs free now, n1 one.
	build := func(t *testing.T) *qFixture {
		f := qNew(t, qNodes("n", "H100", 2, 4))
		long := qJob("long", "x", 0, 1, 2)
		long.Walltime = 1000
		f.run(t, long, 0, "n0:0,1")
		f.run(t, qJob("rest", "x", 0, 1, 3), 0, "n1:0,1,2")
		return f
	}
	job := func(id string, gpus int, wall int64) *Job {
		j := qJob(id, "a", 0, 1, gpus)
		j.Submitted, j.Walltime = 1, wall
		return j
	}
	cases := []struct {
		name     string
		backfill bool
		cand     *Job
		placed   bool
		why      string
	}{
		{"off: FIFO holds", false, job("short", 2, 100), false, WhyBehindHead + " head"},
		{"ends before the shadow", true, job("short", 2, 100), true, ""},
		{"ends exactly at the shadow", true, job("short", 2, 900), true, ""},
		{"runs past the shadow on the head's node", true, job("late", 2, 901), false, WhyReserved},
		{"unknown walltime on the head's node", true, job("late", 2, 0), false, WhyReserved},
		{"long but on a node the head does not need", true, job("side", 1, 0), true, ""},
		{"does not fit at all", true, job("huge", 3, 10), false, WhyNoFit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := build(t)
			head := qJob("head", "a", 0, 1, 4)
			in := f.pass(100, head, tc.cand)
			in.Backfill = tc.backfill
			plan := qSchedule(t, f.c, in)
			if tc.placed {
				assert.Equal(t, []string{tc.cand.ID}, qPlaced(plan))
				if tc.cand.ID == "side" {
					assert.Equal(t, "n1", plan.Place[0].Tasks[0].Node)
				}
			} else {
				assert.Empty(t, plan.Place)
				assert.Equal(t, tc.why, qWhy(plan)[tc.cand.ID])
			}
			assert.Equal(t, WhyNoFit, qWhy(plan)["head"])
			qApply(t, f.c, f.running, in.Pending, plan)
		})
	}
}

func TestQueueReservationBindsOtherTenants(t *testing.T) {
	// Tenant a's head reserves n0 from time 1000; tenant b (larger share,
	// so after a) may not take n0 past then, but may run a short job.
	f := qNew(t, qNodes("n", "H100", 1, 4))
	long := qJob("long", "x", 0, 1, 2)
	long.Walltime = 1000
	f.run(t, long, 0, "n0:0,1")
	f.run(t, qJob("b-run", "b", 0, 1, 0), 0, "n0")
	bLong, bShort := qJob("b-long", "b", 0, 1, 1), qJob("b-short", "b", 0, 1, 1)
	bShort.Submitted, bShort.Walltime = 1, 500
	in := f.pass(100, qJob("head", "a", 0, 1, 4), bLong, bShort)
	in.Backfill = true
	plan := qSchedule(t, f.c, in)
	assert.Equal(t, WhyReserved, qWhy(plan)["b-long"], "b's head would delay a's reserved head")
	assert.Empty(t, qPlaced(plan), "b-long blocks b's FIFO queue: blocked by a reservation, it reserves nothing")

	in.Pending = []*Job{in.Pending[0], bShort}
	plan = qSchedule(t, f.c, in)
	assert.Equal(t, []string{"b-short"}, qPlaced(plan))
}

func TestQueueBackfillBehindImpossibleHead(t *testing.T) {
	// A head that fits no node even when everything ends holds nothing up:
	// the job behind it becomes the head, and as a head it may preempt.
	f := qNew(t, qNodes("n", "H100", 2, 4))
	f.run(t, qVictim("lo", Training, 0, 1, 4, true, 0), 0, "n0:0,1,2,3")
	f.run(t, qPin("pin", 2), 0, "n1:0,1")
	second := qJob("second", "a", 5, 1, 3)
	second.Submitted = 1
	third := qJob("third", "a", 5, 1, 2)
	third.Submitted = 2
	in := f.pass(0, qJob("head", "a", 5, 1, 8), second, third)
	in.Backfill, in.Preempt = true, true
	plan := qSchedule(t, f.c, in)
	assert.Equal(t, WhyNever, qWhy(plan)["head"])
	assert.Equal(t, []Eviction{{Job: "lo", For: "second"}}, bareEvictions(plan.Evict))
	assert.Equal(t, []string{"second", "third"}, qPlaced(plan))
	assert.Equal(t, "n0", plan.Place[0].Tasks[0].Node)
	assert.Equal(t, "n1", plan.Place[1].Tasks[0].Node, "third fits beside pin without eviction")
}

func TestQueueLimits(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 1, 1))
	var pending []*Job
	for i := range 6 {
		j := qJob(fmt.Sprintf("j%d", i), fmt.Sprintf("t%d", i), 0, 1, 2)
		pending = append(pending, j)
	}
	in := f.pass(0, pending...)
	in.Limits = Limits{Decisions: 4, Explain: 2}
	plan := qSchedule(t, f.c, in)
	require.Len(t, plan.Unplaced, 6, "every pending job is accounted for")
	var explained, budget int
	for _, u := range plan.Unplaced {
		if u.Reasons != nil {
			explained++
			assert.Equal(t, 1, u.Reasons[ReasonGPUs.String()], "the one node lacks GPUs")
		}
		if u.Why == WhyBudget {
			budget++
		}
	}
	assert.Equal(t, 2, explained, "only the first blocked heads are explained")
	assert.Equal(t, 2, budget, "four decisions, six queues")
}

func TestScheduleRejectsBrokenInput(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 1, 4))
	ok := func() Pass { return f.pass(0, qJob("j", "a", 0, 1, 1)) }
	cases := []struct {
		name   string
		mutate func(*Pass)
		want   string
	}{
		{"no policy", func(p *Pass) { p.Policy = nil }, "field policy"},
		{"no rng", func(p *Pass) { p.Rng = nil }, "field rng"},
		{"bad tenant", func(p *Pass) { p.Tenants = []Tenant{{Name: "a", MaxMilli: -1}} }, "max_milli"},
		{"tenant twice", func(p *Pass) { p.Tenants = []Tenant{{Name: "a"}, {Name: "a"}} }, "listed twice"},
		{"bad job", func(p *Pass) { p.Pending[0].Count = 0 }, "field count"},
		{"job twice", func(p *Pass) { p.Pending = append(p.Pending, p.Pending[0]) }, "listed twice"},
		{"negative limit", func(p *Pass) { p.Limits.Explain = -1 }, "limits.explain"},
		{"running job the cluster does not hold", func(p *Pass) {
			p.Running = []*RunningJob{{Job: qJob("r", "a", 0, 1, 1), Tasks: []TaskPlacement{{Node: "n0", GPUs: []int{0}, GPUMilli: 1000}}}}
		}, "must reflect the running jobs"},
		{"unknown node", func(p *Pass) {
			p.Running = []*RunningJob{{Job: qJob("r", "a", 0, 1, 0), Tasks: []TaskPlacement{{Node: "nowhere"}}}}
		}, "unknown node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := ok()
			tc.mutate(&in)
			before := qSnapshot(f.c)
			_, err := f.c.Schedule(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, before, qSnapshot(f.c))
		})
	}
}

// qRandomFleet draws a small mixed fleet: 1-8 GPUs of two models, some
// MIG-partitioned, a few CPU-only nodes, some draining, over three zones.
func qRandomFleet(rng *rand.Rand, n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		m := []string{"A100", "H100"}[rng.IntN(2)]
		var gpus []GPU
		switch k := []int{0, 1, 2, 4, 8, 8}[rng.IntN(6)]; {
		case k > 0 && rng.IntN(8) == 0:
			for _, prof := range []string{"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"} {
				gpus = append(gpus, GPU{Model: m, MIG: prof})
			}
		default:
			for g := range k {
				gpus = append(gpus, GPU{Model: m, Island: g / 4})
			}
		}
		nodes[i] = Node{Name: fmt.Sprintf("n%02d", i), Rack: fmt.Sprintf("r%d", i/4),
			CPUMilli: int64(16000 * (1 + rng.IntN(4))), MemoryMiB: int64(65536 * (1 + rng.IntN(4))), GPUs: gpus,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3)}}
		if rng.IntN(12) == 0 {
			nodes[i].State = NodeDraining
		}
	}
	return nodes
}

// qRandomJob draws a job: training gangs or inference services of CPU-only
// tasks, GPU shares or whole GPUs, of a random tenant and priority.
func qRandomJob(rng *rand.Rand, id string) *Job {
	j := &Job{ID: id, Tenant: []string{"a", "b", "c", "guest"}[rng.IntN(4)], Priority: int32(rng.IntN(4)),
		Count: 1 + rng.IntN(3), Submitted: int64(rng.IntN(50)), Preemptible: rng.IntN(3) > 0,
		Checkpointable: rng.IntN(2) == 0}
	if rng.IntN(3) == 0 {
		j.Kind = Inference
		j.MinReplicas = rng.IntN(j.Count + 1)
	}
	if rng.IntN(3) > 0 {
		j.Walltime = int64(50 + rng.IntN(500))
	}
	t := &j.Task
	t.CPUMilli, t.MemoryMiB = int64(1000*rng.IntN(8)), int64(4096*rng.IntN(8))
	switch rng.IntN(5) {
	case 0:
	case 1:
		t.GPUs, t.GPUMilli = 1, 250*(1+rng.IntN(3))
	default:
		t.GPUs, t.GPUMilli = []int{1, 1, 2, 4, 8}[rng.IntN(5)], MilliPerGPU
	}
	if t.GPUs > 0 && rng.IntN(5) == 0 {
		t.Models = []string{"H100"}
	}
	return j
}

// qWorld is a random cluster with running jobs and a queue, rebuilt
// identically from its seed.
type qWorld struct {
	c       *Cluster
	in      Pass
	tenants []Tenant
}

func qRandomWorld(t *testing.T, seed uint64, policy string) *qWorld {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	c, err := NewCluster(nil, qRandomFleet(rng, 6+rng.IntN(14)))
	require.NoError(t, err)
	p, err := NewPolicy(c, policy, Options{})
	require.NoError(t, err)
	w := &qWorld{c: c}
	capMilli, _ := c.Totals()
	for _, name := range []string{"a", "b", "c"} {
		g := capMilli * int64(rng.IntN(40)) / 100
		tn := Tenant{Name: name, GuaranteedMilli: g, Weight: float64(rng.IntN(3))}
		if rng.IntN(2) == 0 {
			tn.MaxMilli = g + capMilli*int64(rng.IntN(60))/100
		}
		w.tenants = append(w.tenants, tn)
	}
	now := int64(1000)
	var running []*RunningJob
	var as []Assign
	for i := range 10 + rng.IntN(30) {
		j := qRandomJob(rng, fmt.Sprintf("r%02d", i))
		var ok bool
		start := len(as)
		as, ok, err = c.PlaceJob(p, j, rng, as)
		require.NoError(t, err)
		if !ok {
			continue
		}
		rj := &RunningJob{Job: j, Started: now - int64(rng.IntN(900))}
		for k, a := range as[start:] {
			// Some services lost a replica (a failed node, a trim): the
			// pass tops them up, and may preempt at the same time.
			if j.Kind == Inference && j.Count > 1 && k == 0 && rng.IntN(2) == 0 {
				require.NoError(t, c.Release(a))
				continue
			}
			rj.Tasks = append(rj.Tasks, c.Placement(k, a))
		}
		running = append(running, rj)
	}
	var pending []*Job
	for i := range 5 + rng.IntN(25) {
		pending = append(pending, qRandomJob(rng, fmt.Sprintf("p%02d", i)))
	}
	w.in = Pass{Now: now, Policy: p, Rng: rand.New(rand.NewPCG(seed, 99)), Pending: pending, Running: running,
		Tenants: w.tenants, Preempt: rng.IntN(3) > 0, Backfill: rng.IntN(2) == 0}
	return w
}

func TestScheduleDeterministic(t *testing.T) {
	for seed := range uint64(40) {
		for _, pol := range []string{"random", "best-fit"} {
			w1, w2 := qRandomWorld(t, seed, pol), qRandomWorld(t, seed, pol)
			p1 := qSchedule(t, w1.c, w1.in)
			b1, err := json.Marshal(p1)
			require.NoError(t, err)
			w1.in.Rng = rand.New(rand.NewPCG(seed, 99))
			again, err := json.Marshal(qSchedule(t, w1.c, w1.in))
			require.NoError(t, err)
			require.Equal(t, string(b1), string(again), "seed %d %s: same cluster, second pass", seed, pol)

			// A twin cluster, with the queue and the running jobs in another order.
			shuf := rand.New(rand.NewPCG(seed, 3))
			shuf.Shuffle(len(w2.in.Pending), func(i, j int) { w2.in.Pending[i], w2.in.Pending[j] = w2.in.Pending[j], w2.in.Pending[i] })
			shuf.Shuffle(len(w2.in.Running), func(i, j int) { w2.in.Running[i], w2.in.Running[j] = w2.in.Running[j], w2.in.Running[i] })
			b2, err := json.Marshal(qSchedule(t, w2.c, w2.in))
			require.NoError(t, err)
			require.Equal(t, string(b1), string(b2), "seed %d %s: twin cluster, inputs reordered", seed, pol)
		}
	}
}

// TestScheduleInvariants draws random fleets, running work and queues and
// checks every plan: it applies through the checked Commit (nothing beyond
// capacity), every pending job is placed whole or listed unplaced, each
// start respects the quotas at the moment it was decided, and evictions
// respect priority, preemptibility and MinReplicas.
func TestScheduleInvariants(t *testing.T) {
	topUps, withEvictions := 0, 0
	for seed := range uint64(150) {
		pol := []string{"first-fit", "best-fit", "random", "topology"}[seed%4]
		w := qRandomWorld(t, seed, pol)
		plan := qSchedule(t, w.c, w.in)
		qCheckPlan(t, w, plan)
		running := map[string]bool{}
		for _, rj := range w.in.Running {
			running[rj.Job.ID] = true
		}
		for _, jp := range plan.Place {
			if running[jp.Job] {
				topUps++
				if len(plan.Evict) > 0 {
					withEvictions++
				}
			}
		}
	}
	// The worlds must exercise top-ups, also beside preemption.
	assert.Positive(t, topUps)
	assert.Positive(t, withEvictions)
}

func qCheckPlan(t *testing.T, w *qWorld, plan Plan) {
	t.Helper()
	c, in := w.c, w.in
	jobs := map[string]*Job{}
	seen := map[string]int{}
	for _, j := range in.Pending {
		jobs[j.ID] = j
	}
	for _, jp := range plan.Place {
		seen[jp.Job]++
	}
	for _, u := range plan.Unplaced {
		seen[u.Job]++
		assert.NotEmpty(t, u.Why)
	}
	for _, j := range in.Pending {
		require.Equal(t, 1, seen[j.ID], "job %s: placed or unplaced, exactly once", j.ID)
	}

	// Replay the decisions in order against the quotas, on the cluster itself.
	running := map[string]*RunningJob{}
	used := map[string]int64{}
	for _, rj := range in.Running {
		running[rj.Job.ID] = rj
		used[rj.Job.Tenant] += rj.GPUMilli()
	}
	tenants := map[string]Tenant{}
	for _, tn := range w.tenants {
		tenants[tn.Name] = tn
	}
	freeReady := func() int64 {
		var f int64
		for i := range c.NumNodes() {
			if c.Node(NodeID(i)).State == NodeReady {
				f += c.Usage(NodeID(i)).GPUFree
			}
		}
		return f
	}
	before := qSnapshot(c)
	trimmed := map[string]int{}
	jobOf := func(id string) *Job {
		if j := jobs[id]; j != nil {
			return j
		}
		rj := running[id] // a running service's replicas topped up
		require.NotNil(t, rj, "placement of %s: neither pending nor running", id)
		require.Equal(t, Inference, rj.Job.Kind, "placement of running %s: not a service", id)
		return rj.Job
	}
	for _, jp := range plan.Place {
		j := jobOf(jp.Job)
		for _, ev := range plan.Evict {
			if ev.For != j.ID {
				continue
			}
			v := running[ev.Job]
			require.NotNil(t, v, "victim %s is running", ev.Job)
			assert.True(t, v.Job.Preemptible, "victim %s is preemptible", ev.Job)
			assert.Less(t, v.Job.Priority, j.Priority, "victim %s has lower priority than %s", ev.Job, j.ID)
			if v.Job.Kind == Training {
				assert.Empty(t, ev.Tasks, "a gang is evicted whole")
				used[v.Job.Tenant] -= v.GPUMilli()
			} else {
				require.NotEmpty(t, ev.Tasks)
				trimmed[ev.Job] += len(ev.Tasks)
				assert.GreaterOrEqual(t, len(v.Tasks)-trimmed[ev.Job], v.Job.MinReplicas, "%s trimmed below MinReplicas", ev.Job)
				for _, tp := range v.Tasks {
					if slices.Contains(ev.Tasks, tp.Task) {
						used[v.Job.Tenant] -= int64(len(tp.GPUs)) * int64(tp.GPUMilli)
					}
				}
			}
		}
		_ = qApply(t, c, in.Running, nil, Plan{Evict: qFilterFor(plan.Evict, j.ID)})
		var d int64 // what the placement takes: a share on a MIG instance takes all of it
		for _, tp := range jp.Tasks {
			d += int64(len(tp.GPUs)) * int64(tp.GPUMilli)
		}
		tn := tenants[j.Tenant]
		if d > 0 {
			if tn.MaxMilli > 0 {
				assert.LessOrEqual(t, used[j.Tenant]+d, tn.MaxMilli, "%s: tenant %s over its maximum", j.ID, j.Tenant)
			}
			if used[j.Tenant]+d > tn.GuaranteedMilli {
				var unused int64
				for _, o := range w.tenants {
					if o.Name != j.Tenant {
						unused += max(0, o.GuaranteedMilli-used[o.Name])
					}
				}
				assert.GreaterOrEqual(t, freeReady()-d, unused, "%s: tenant %s borrows guaranteed capacity", j.ID, j.Tenant)
			}
		}
		if jobs[jp.Job] != nil {
			qApply(t, c, nil, in.Pending, Plan{Place: []JobPlacement{jp}})
		} else {
			qApply(t, c, []*RunningJob{running[jp.Job]}, nil, Plan{Place: []JobPlacement{jp}})
		}
		used[j.Tenant] += d
	}
	// Put the cluster back for the caller (release the placements, re-commit the victims).
	for _, jp := range plan.Place {
		sh, err := c.ShapeOf(&jobOf(jp.Job).Task)
		require.NoError(t, err)
		for _, tp := range jp.Tasks {
			a, err := c.AssignOf(tp, sh.Tag)
			require.NoError(t, err)
			require.NoError(t, c.Release(a))
		}
	}
	for _, ev := range plan.Evict {
		v := running[ev.Job]
		sh, err := c.ShapeOf(&v.Job.Task)
		require.NoError(t, err)
		for _, tp := range v.Tasks {
			if len(ev.Tasks) == 0 || slices.Contains(ev.Tasks, tp.Task) {
				a, err := c.AssignOf(tp, sh.Tag)
				require.NoError(t, err)
				require.NoError(t, c.Commit(a))
			}
		}
	}
	require.Equal(t, before, qSnapshot(c), "the replay put the cluster back")
}

// TestBackfillNeverDelaysReservedHead checks EASY backfill's promise on
// random worlds: at each reservation's shadow time, with every start of
// the pass in place except those gone by then, the head's trial placement
// still fits. The pass is run without undoing it, so the cluster holds its
// decisions; the shadow state is rebuilt by releasing the jobs the walk
// released and the later starts that end by the shadow time.
func TestBackfillNeverDelaysReservedHead(t *testing.T) {
	reservations, backfilled := 0, 0
	for seed := range uint64(300) {
		w := qRandomWorld(t, seed, []string{"first-fit", "best-fit", "random"}[seed%3])
		w.in.Backfill = true
		before := qSnapshot(w.c)
		s, err := w.c.newPass(&w.in)
		require.NoError(t, err)
		require.NoError(t, s.run())
		for _, r := range s.resv {
			reservations++
			mark := len(s.undo)
			for i, lj := range s.live {
				gone := i < r.nLive && byEnd(lj, r.upTo) <= 0
				if i >= r.nLive {
					backfilled++
					gone = r.timed && lj.end <= r.shadow
				}
				for k, a := range lj.assigns {
					if gone && lj.alive[k] {
						s.release(a)
					}
				}
			}
			for _, a := range r.trial {
				require.NoError(t, w.c.Commit(a), "seed %d: head %s delayed", seed, r.job.ID)
			}
			for _, a := range r.trial {
				require.NoError(t, w.c.Release(a))
			}
			s.rollback(mark)
		}
		s.rollback(0)
		require.Equal(t, before, qSnapshot(w.c))
	}
	require.Greater(t, reservations, 20, "the worlds make reservations")
	require.Greater(t, backfilled, 20, "and start jobs after them")
}

func qFilterFor(evs []Eviction, job string) []Eviction {
	var out []Eviction
	for _, ev := range evs {
		if ev.For == job {
			out = append(out, ev)
		}
	}
	return out
}

// BenchmarkSchedule10kNodes is one pass on 10,000 eight-GPU nodes, 85% or
// 99% full of running jobs (a mix of known and unknown walltimes, some
// preemptible), with 2,000 jobs queued over eight tenants that outrank
// part of the running work; preemption and backfill on.
func BenchmarkSchedule10kNodes(b *testing.B) {
	for _, fill := range []int64{85, 99} {
		b.Run(fmt.Sprintf("full=%d%%", fill), func(b *testing.B) { benchSchedule(b, fill) })
	}
}

func benchSchedule(b *testing.B, fill int64) {
	rng := rand.New(rand.NewPCG(5, 5))
	var nodes []Node
	for z := range 4 {
		zn := qNodes(fmt.Sprintf("z%d-", z), []string{"A100", "H100"}[z%2], 2500, 8)
		for i := range zn {
			zn[i].Labels = map[string]string{"zone": fmt.Sprintf("z%d", z)}
		}
		nodes = append(nodes, zn...)
	}
	c, err := NewCluster(nil, nodes)
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPolicy(c, "best-fit", Options{})
	if err != nil {
		b.Fatal(err)
	}
	job := func(id string) *Job {
		j := qRandomJob(rng, id)
		j.Tenant = fmt.Sprintf("t%d", rng.IntN(8))
		j.Task.Models = nil
		return j
	}
	capMilli, _ := c.Totals()
	var running []*RunningJob
	var as []Assign
	for i, used := 0, int64(0); used < capMilli*fill/100 && i < 200000; i++ {
		j := job(fmt.Sprintf("r%d", i))
		start := len(as)
		var ok bool
		if as, ok, err = c.PlaceJob(p, j, rng, as); err != nil {
			b.Fatal(err)
		} else if !ok {
			continue
		}
		used += j.GPUMilliTotal()
		rj := &RunningJob{Job: j, Started: int64(rng.IntN(1000))}
		for k, a := range as[start:] {
			rj.Tasks = append(rj.Tasks, c.Placement(k, a))
		}
		running = append(running, rj)
	}
	var pending []*Job
	for i := range 2000 {
		j := job(fmt.Sprintf("p%d", i))
		j.Priority += 2
		pending = append(pending, j)
	}
	var tenants []Tenant
	for i := range 8 {
		tenants = append(tenants, Tenant{Name: fmt.Sprintf("t%d", i), GuaranteedMilli: capMilli / 10})
	}
	var plan Plan
	for b.Loop() {
		plan, err = c.Schedule(Pass{Now: 1000, Policy: p, Rng: rand.New(rand.NewPCG(1, 1)), Pending: pending,
			Running: running, Tenants: tenants, Preempt: true, Backfill: true})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(plan.Place)), "placed")
	b.ReportMetric(float64(len(plan.Evict)), "evictions")
	b.ReportMetric(float64(len(running)), "running")
}
