package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTopUpRestoresMissingReplicas(t *testing.T) {
	// Three zones of one node each; a service of three replicas lost the one
	// in z1. It comes back in z1, the zone its live replicas leave empty,
	// before the queue takes the room.
	var nodes []Node
	for i, z := range []string{"z0", "z1", "z2"} {
		n := qNodes("n", "L4", 1, 2)[0]
		n.Name = "n" + string(rune('0'+i))
		n.Labels = map[string]string{"zone": z}
		nodes = append(nodes, n)
	}
	f := qNew(t, nodes)
	svc := &Job{ID: "svc", Kind: Inference, Tenant: "web", Priority: 5, Count: 3,
		Task: Task{GPUs: 1, GPUMilli: MilliPerGPU, CPUMilli: 1000, MemoryMiB: 1024}}
	rj := f.run(t, svc, 0, "n0:0", "n2:0")
	rj.Tasks[1].Task = 2 // replicas 0 and 2 live; replica 1 is missing
	batch := qJob("batch", "ml", 0, 1, 2)

	plan := qSchedule(t, f.c, f.pass(10, batch))
	require.NotEmpty(t, plan.Place)
	assert.Equal(t, "svc", plan.Place[0].Job, "the service comes first")
	require.Len(t, plan.Place[0].Tasks, 1)
	assert.Equal(t, 1, plan.Place[0].Tasks[0].Task)
	assert.Equal(t, "n1", plan.Place[0].Tasks[0].Node, "back in the empty zone")
	// The batch job needs two GPUs of one node: n1 has one left, n0 and n2
	// one each, so it waits.
	assert.Equal(t, []string{"svc"}, qPlaced(plan))
	running := qApply(t, f.c, f.running, []*Job{batch}, plan)
	for _, r := range running {
		if r.Job.ID == "svc" {
			assert.Len(t, r.Tasks, 3)
		}
	}
}

func TestTopUpRespectsQuota(t *testing.T) {
	f := qNew(t, qNodes("n", "L4", 2, 2))
	svc := &Job{ID: "svc", Kind: Inference, Tenant: "web", Count: 3,
		Task: Task{GPUs: 1, GPUMilli: MilliPerGPU, CPUMilli: 1000, MemoryMiB: 1024}}
	f.run(t, svc, 0, "n0:0")
	in := f.pass(10)
	in.Tenants = []Tenant{{Name: "web", MaxMilli: 2000}}
	plan := qSchedule(t, f.c, in)
	require.Len(t, plan.Place, 1)
	assert.Len(t, plan.Place[0].Tasks, 1, "the cap allows one more replica, not two")
}

// A replica the pass tops up is not running yet: it is never offered as a
// preemption victim in the same pass, and a service being topped up gives
// up no replicas.
func TestTopUpNotPreemptedInSamePass(t *testing.T) {
	a := qNodes("a", "L4", 1, 1)
	a[0].Labels = map[string]string{"zone": "z0"}
	b := qNodes("b", "L4", 1, 1)
	b[0].Labels = map[string]string{"zone": "z1"}
	f := qNew(t, a, b)
	svc := &Job{ID: "svc", Kind: Inference, Count: 2, Preemptible: true,
		Task: Task{GPUs: 1, GPUMilli: MilliPerGPU, CPUMilli: 1000, MemoryMiB: 1024}}
	f.run(t, svc, 0, "a0:0") // replica 1 is missing
	hi := qJob("hi", "", 10, 1, 1)
	hi.Task.Constraints = []Constraint{{Key: "zone", Op: OpIn, Values: []string{"z1"}}}
	in := f.pass(10, hi)
	in.Preempt = true
	plan := qSchedule(t, f.c, in)
	for _, ev := range plan.Evict {
		assert.NotEqual(t, "svc", ev.Job, "evicts a replica it is adding back")
	}
	qApply(t, f.c, f.running, []*Job{hi}, plan) // fails on any oversubscription
}
