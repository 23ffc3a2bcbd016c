package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// qVictim is a preemptible job of count tasks of gpus whole GPUs.
func qVictim(id string, kind JobKind, prio int32, count, gpus int, ckpt bool, minReplicas int) *Job {
	j := qJob(id, "x", prio, count, gpus)
	j.Kind, j.Preemptible, j.Checkpointable, j.MinReplicas = kind, true, ckpt, minReplicas
	return j
}

// qPin is a job nothing may preempt.
func qPin(id string, gpus int) *Job { return qJob(id, "x", 9, 1, gpus) }

type qRunner struct {
	j       *Job
	started int64
	where   []string
}

// qPreempt runs a pass with preemption at time 1000 and checks that its
// plan applies.
func qPreempt(t *testing.T, f *qFixture, pending ...*Job) Plan {
	t.Helper()
	in := f.pass(1000, pending...)
	in.Preempt = true
	plan := qSchedule(t, f.c, in)
	qApply(t, f.c, f.running, pending, plan)
	return plan
}

func TestPreemptCostOrder(t *testing.T) {
	// Four 1-GPU nodes, all busy; a priority-5 job wants one GPU.
	svc := func(min int) *Job { return qVictim("svc", Inference, 0, 2, 1, false, min) }
	ckpt := func(id string, prio int32) *Job { return qVictim(id, Training, prio, 1, 1, true, 0) }
	plain := func(id string, prio int32) *Job { return qVictim(id, Training, prio, 1, 1, false, 0) }
	cases := []struct {
		name    string
		runners []qRunner
		want    []Eviction
	}{
		{"an inference replica above its minimum is trimmed first", []qRunner{
			{svc(1), 0, []string{"n0:0", "n1:0"}}, {ckpt("ckpt", 0), 0, []string{"n2:0"}}, {plain("plain", 0), 0, []string{"n3:0"}},
		}, []Eviction{{Job: "svc", Tasks: []int{0}, For: "hi"}}},
		{"replicas at their minimum stay; checkpointable training next", []qRunner{
			{svc(2), 0, []string{"n0:0", "n1:0"}}, {ckpt("ckpt", 0), 0, []string{"n2:0"}}, {plain("plain", 0), 0, []string{"n3:0"}},
		}, []Eviction{{Job: "ckpt", For: "hi"}}},
		{"checkpointable before non-checkpointable, whatever the priority", []qRunner{
			{plain("plain", 0), 0, []string{"n0:0"}}, {ckpt("ckpt", 4), 0, []string{"n1:0"}},
			{qPin("p2", 1), 0, []string{"n2:0"}}, {qPin("p3", 1), 0, []string{"n3:0"}},
		}, []Eviction{{Job: "ckpt", For: "hi"}}},
		{"lower priority first within a class", []qRunner{
			{plain("plain-1", 1), 0, []string{"n0:0"}}, {plain("plain-0", 0), 999, []string{"n1:0"}},
			{qPin("p2", 1), 0, []string{"n2:0"}}, {qPin("p3", 1), 0, []string{"n3:0"}},
		}, []Eviction{{Job: "plain-0", For: "hi"}}},
		{"less GPU time lost within a priority", []qRunner{
			{ckpt("old", 0), 0, []string{"n0:0"}}, {ckpt("new", 0), 900, []string{"n1:0"}},
			{qPin("p2", 1), 0, []string{"n2:0"}}, {qPin("p3", 1), 0, []string{"n3:0"}},
		}, []Eviction{{Job: "new", For: "hi"}}},
		{"the id breaks a tie", []qRunner{
			{ckpt("ckpt-b", 0), 0, []string{"n0:0"}}, {ckpt("ckpt-a", 0), 0, []string{"n1:0"}},
			{qPin("p2", 1), 0, []string{"n2:0"}}, {qPin("p3", 1), 0, []string{"n3:0"}},
		}, []Eviction{{Job: "ckpt-a", For: "hi"}}},
		{"equal priority is never preempted", []qRunner{
			{ckpt("peer", 5), 0, []string{"n0:0"}}, {qPin("p1", 1), 0, []string{"n1:0"}},
			{qPin("p2", 1), 0, []string{"n2:0"}}, {qPin("p3", 1), 0, []string{"n3:0"}},
		}, nil},
		{"non-preemptible jobs are never preempted", []qRunner{
			{qJob("lo", "x", 0, 1, 1), 0, []string{"n0:0"}}, {qPin("p1", 1), 0, []string{"n1:0"}},
			{qPin("p2", 1), 0, []string{"n2:0"}}, {qPin("p3", 1), 0, []string{"n3:0"}},
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := qNew(t, qNodes("n", "H100", 4, 1))
			for _, r := range tc.runners {
				f.run(t, r.j, r.started, r.where...)
			}
			plan := qPreempt(t, f, qJob("hi", "a", 5, 1, 1))
			assert.Equal(t, tc.want, bareEvictions(plan.Evict))
			if tc.want == nil {
				assert.Empty(t, plan.Place)
				assert.Equal(t, WhyNoFit, qWhy(plan)["hi"])
			} else {
				assert.Equal(t, []string{"hi"}, qPlaced(plan))
			}
		})
	}
}

func TestPreemptGangEvictedWhole(t *testing.T) {
	// A 2×4-GPU gang spans both nodes; a 4-GPU job evicts it whole, and the
	// room it leaves on the other node serves the next job of the pass.
	f := qNew(t, qNodes("n", "H100", 2, 4))
	f.run(t, qVictim("gang", Training, 0, 2, 4, true, 0), 0, "n0:0,1,2,3", "n1:0,1,2,3")
	next := qJob("next", "a", 5, 1, 4)
	next.Submitted = 1
	in := f.pass(1000, qJob("hi", "a", 5, 1, 4), next)
	in.Preempt = true
	plan := qSchedule(t, f.c, in)
	assert.Equal(t, []Eviction{{Job: "gang", For: "hi"}}, bareEvictions(plan.Evict), "a gang is evicted whole, named without tasks")
	assert.Equal(t, []string{"hi", "next"}, qPlaced(plan))
	assert.Equal(t, "n0", plan.Place[0].Tasks[0].Node)
	assert.Equal(t, "n1", plan.Place[1].Tasks[0].Node)

	// Applied, the eviction frees every node of the gang.
	qApply(t, f.c, f.running, nil, Plan{Evict: plan.Evict})
	for i := range f.c.NumNodes() {
		u := f.c.Usage(NodeID(i))
		assert.Equal(t, u.GPUCap, u.GPUFree, "node %d GPUs", i)
		assert.Equal(t, u.CPUCap, u.CPUFree, "node %d CPU", i)
		assert.Equal(t, u.MemCap, u.MemFree, "node %d memory", i)
	}
}

func TestPreemptNoEvictionWhenItWouldNotHelp(t *testing.T) {
	t.Run("victims only on a GPU model the job refuses", func(t *testing.T) {
		f := qNew(t, qNodes("a", "A100", 1, 1), qNodes("h", "H100", 1, 1))
		f.run(t, qVictim("lo", Training, 0, 1, 1, true, 0), 0, "a0:0")
		f.run(t, qPin("pin", 1), 0, "h0:0")
		hi := qJob("hi", "a", 5, 1, 1)
		hi.Task.Models = []string{"H100"}
		plan := qPreempt(t, f, hi)
		assert.Empty(t, plan.Evict)
		assert.Equal(t, WhyNoFit, qWhy(plan)["hi"])
	})
	t.Run("not enough even with every victim gone", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 1, 4))
		f.run(t, qVictim("lo", Training, 0, 1, 2, true, 0), 0, "n0:0,1")
		f.run(t, qPin("pin", 2), 0, "n0:2,3")
		plan := qPreempt(t, f, qJob("hi", "a", 5, 1, 4))
		assert.Empty(t, plan.Evict)
		assert.Empty(t, plan.Place)
	})
	t.Run("a gang that would fit only in part", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 2, 2))
		f.run(t, qVictim("lo", Training, 0, 1, 2, true, 0), 0, "n0:0,1")
		f.run(t, qPin("pin", 2), 0, "n1:0,1")
		plan := qPreempt(t, f, qJob("hi", "a", 5, 2, 2))
		assert.Empty(t, plan.Evict, "no partial holds: nothing is evicted for half a gang")
		assert.Empty(t, plan.Place)
	})
}

func TestPreemptRespectsMinReplicas(t *testing.T) {
	build := func(t *testing.T, fourth *Job) *qFixture {
		f := qNew(t, qNodes("n", "H100", 4, 1))
		f.run(t, qVictim("svc", Inference, 0, 3, 1, false, 2), 0, "n0:0", "n1:0", "n2:0")
		f.run(t, fourth, 0, "n3:0")
		return f
	}
	t.Run("one replica, then the next class", func(t *testing.T) {
		f := build(t, qVictim("ckpt", Training, 0, 1, 1, true, 0))
		plan := qPreempt(t, f, qJob("hi", "a", 5, 2, 1))
		assert.Equal(t, []Eviction{{Job: "ckpt", For: "hi"}, {Job: "svc", Tasks: []int{0}, For: "hi"}}, bareEvictions(plan.Evict))
		assert.Equal(t, []string{"hi"}, qPlaced(plan))
	})
	t.Run("nothing when the minimum leaves too little", func(t *testing.T) {
		f := build(t, qPin("pin", 1))
		plan := qPreempt(t, f, qJob("hi", "a", 5, 2, 1))
		assert.Empty(t, plan.Evict)
		assert.Empty(t, plan.Place)
	})
}

func TestPreemptMinimalVictims(t *testing.T) {
	t.Run("two trims beat one training job", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 1, 4))
		f.run(t, qVictim("svc", Inference, 0, 2, 1, false, 0), 0, "n0:0", "n0:1")
		f.run(t, qVictim("ckpt", Training, 0, 1, 2, true, 0), 0, "n0:2,3")
		plan := qPreempt(t, f, qJob("hi", "a", 5, 1, 2))
		assert.Equal(t, []Eviction{{Job: "svc", Tasks: []int{0, 1}, For: "hi"}}, bareEvictions(plan.Evict))
	})
	t.Run("a cheap victim the job does not need is spared", func(t *testing.T) {
		// GPU 3 is free; the job needs 3 GPUs: the training job's 2 suffice.
		f := qNew(t, qNodes("n", "H100", 1, 4))
		f.run(t, qVictim("svc", Inference, 0, 1, 1, false, 0), 0, "n0:0")
		f.run(t, qVictim("ckpt", Training, 0, 1, 2, true, 0), 0, "n0:1,2")
		plan := qPreempt(t, f, qJob("hi", "a", 5, 1, 3))
		assert.Equal(t, []Eviction{{Job: "ckpt", For: "hi"}}, bareEvictions(plan.Evict))
		assert.Equal(t, []string{"hi"}, qPlaced(plan))
	})
	t.Run("the cheapest node wins", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 2, 2))
		f.run(t, qVictim("plain", Training, 0, 1, 2, false, 0), 0, "n0:0,1")
		f.run(t, qVictim("ckpt", Training, 0, 1, 2, true, 0), 0, "n1:0,1")
		plan := qPreempt(t, f, qJob("hi", "a", 5, 1, 2))
		assert.Equal(t, []Eviction{{Job: "ckpt", For: "hi"}}, bareEvictions(plan.Evict))
		assert.Equal(t, "n1", plan.Place[0].Tasks[0].Node)
	})
}

func TestPreemptAndGuarantees(t *testing.T) {
	// Two 1-GPU nodes: b's low-priority job on n0, a pinned job on n1.
	cases := []struct {
		name    string
		tenants []Tenant
		evicts  bool
	}{
		{"a borrower may not take b's guarantee", []Tenant{{Name: "b", GuaranteedMilli: 1000}}, false},
		{"a borrower may take what b borrows", nil, true},
		{"within its guarantee, priority decides", []Tenant{{Name: "a", GuaranteedMilli: 1000}, {Name: "b", GuaranteedMilli: 1000}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := qNew(t, qNodes("n", "H100", 2, 1))
			lo := qVictim("b-low", Training, 0, 1, 1, true, 0)
			lo.Tenant = "b"
			f.run(t, lo, 0, "n0:0")
			f.run(t, qPin("pin", 1), 0, "n1:0")
			in := f.pass(1000, qJob("a-hi", "a", 5, 1, 1))
			in.Preempt, in.Tenants = true, tc.tenants
			plan := qSchedule(t, f.c, in)
			if tc.evicts {
				assert.Equal(t, []Eviction{{Job: "b-low", For: "a-hi"}}, bareEvictions(plan.Evict))
				assert.Equal(t, []string{"a-hi"}, qPlaced(plan))
			} else {
				assert.Empty(t, plan.Evict)
				assert.Empty(t, plan.Place)
			}
		})
	}
}

func TestPreemptBorrowerPassesOverGuaranteedVictims(t *testing.T) {
	// b's checkpointable job is the cheaper victim but sits within b's
	// guarantee; a borrower takes c's costlier, borrowed job instead.
	f := qNew(t, qNodes("n", "H100", 2, 1))
	bLow := qVictim("b-low", Training, 0, 1, 1, true, 0)
	bLow.Tenant = "b"
	cLow := qVictim("c-low", Training, 0, 1, 1, false, 0)
	cLow.Tenant = "c"
	f.run(t, bLow, 0, "n0:0")
	f.run(t, cLow, 0, "n1:0")
	in := f.pass(1000, qJob("a-hi", "a", 5, 1, 1))
	in.Preempt, in.Tenants = true, []Tenant{{Name: "b", GuaranteedMilli: 1000}}
	plan := qSchedule(t, f.c, in)
	assert.Equal(t, []Eviction{{Job: "c-low", For: "a-hi"}}, bareEvictions(plan.Evict))
	assert.Equal(t, []string{"a-hi"}, qPlaced(plan))
}

func TestPreemptLimit(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 2, 1))
	f.run(t, qVictim("lo-0", Training, 0, 1, 1, true, 0), 0, "n0:0")
	f.run(t, qVictim("lo-1", Training, 0, 1, 1, true, 0), 0, "n1:0")
	in := f.pass(1000, qJob("hi-a", "a", 5, 1, 1), qJob("hi-b", "b", 5, 1, 1))
	in.Preempt, in.Limits.Preemptions = true, 1
	plan := qSchedule(t, f.c, in)
	require.Len(t, plan.Evict, 1)
	assert.Equal(t, []string{"hi-a"}, qPlaced(plan))
	assert.Equal(t, WhyNoFit, qWhy(plan)["hi-b"])
}
