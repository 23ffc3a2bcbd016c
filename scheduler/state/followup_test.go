package state

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// Follow-up tests of the core's audit (issue 11): what the first round
// left open. Each failed before its fix.

// An eviction must name the placements its plan saw, all of them: one
// without seen, a named task missing from seen, or a task running now that
// a whole-job eviction did not see is refused, and changes nothing.
func TestFollowupEvictionMustNameWhatItSaw(t *testing.T) {
	at := func(task int, node string) scheduler.TaskPlacement { return tp(task, node, 1000, 0) }
	setup := func(t *testing.T) *Machine {
		return dfMachine(t,
			RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("L4", 1)}},
			RegisterNode{Node: scheduler.Node{Name: "n2", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("L4", 1)}},
			RegisterNode{Node: scheduler.Node{Name: "n3", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("L4", 1)}},
			Submit{Job: scheduler.Job{ID: "svc", Kind: scheduler.Inference, Count: 3, Preemptible: true, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
			ApplyPlan{Place: []scheduler.JobPlacement{{Job: "svc", Tasks: []scheduler.TaskPlacement{at(0, "n1"), at(1, "n2")}}}, At: 2},
			Submit{Job: scheduler.Job{ID: "idle", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 3},
		)
	}
	tests := []struct {
		name string
		ev   scheduler.Eviction
		want string
	}{
		{"whole job, nothing seen", scheduler.Eviction{Job: "svc"}, "field evict[0].seen: job svc: an eviction names the placements its plan saw; none given"},
		{"some tasks, nothing seen", scheduler.Eviction{Job: "svc", Tasks: []int{1}}, "field evict[0].seen: job svc: an eviction names the placements its plan saw; none given"},
		{"pending job, nothing seen", scheduler.Eviction{Job: "idle"}, "field evict[0].seen: job idle: an eviction names the placements its plan saw; none given"},
		{"a named task not seen", scheduler.Eviction{Job: "svc", Tasks: []int{0, 1}, Seen: []scheduler.TaskPlacement{at(0, "n1")}},
			"field evict[0].seen: job svc task 1: named by the eviction, not seen"},
		{"a running task the whole-job eviction did not see", scheduler.Eviction{Job: "svc", Seen: []scheduler.TaskPlacement{at(0, "n1")}},
			"field evict[0].seen: job svc task 1 runs on n2 [0], which the plan did not see; the plan is stale"},
		{"a seen task out of range", scheduler.Eviction{Job: "svc", Seen: []scheduler.TaskPlacement{at(0, "n1"), at(1, "n2"), at(7, "n3")}},
			"field evict[0].seen[2]: job svc task 7: out of range 0..2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := setup(t)
			before := snap(t, m)
			_, err := m.Apply(ApplyPlan{Evict: []scheduler.Eviction{tt.ev}, At: 10})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, string(before), string(snap(t, m)), "the refused plan changed nothing")
		})
	}

	// What the pass saw, whole, goes through; and so does a seen task gone
	// since (evicting it is already done).
	m := setup(t)
	res, err := m.Apply(ApplyPlan{Evict: []scheduler.Eviction{{Job: "svc", Tasks: []int{1}, Seen: []scheduler.TaskPlacement{at(1, "n2")}}}, At: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{"svc"}, res.Degraded)
	res, err = m.Apply(ApplyPlan{Evict: []scheduler.Eviction{{Job: "svc", Seen: []scheduler.TaskPlacement{at(0, "n1"), at(1, "n2")}}}, At: 11})
	require.NoError(t, err)
	assert.Equal(t, []string{"svc"}, res.Requeued)
}

// The checks of the task lists a client sends are linear: a command
// naming every task of a job of MaxTasksPerJob tasks visits a bounded
// number of elements per task (Machine.work counts them), where the
// quadratic checks visited billions and took seconds, a denial of service
// for the daemon.
func TestFollowupTaskListsLinear(t *testing.T) {
	const n = scheduler.MaxTasksPerJob
	const perTask = 16 // elements visited per task, at most
	cpuOnly := scheduler.Task{CPUMilli: 1, MemoryMiB: 1}
	on := func(task int, node string) scheduler.TaskPlacement {
		return scheduler.TaskPlacement{Task: task, Node: node, CPUMilli: 1, MemoryMiB: 1}
	}
	all := func(node string, from, to int) []scheduler.TaskPlacement {
		out := make([]scheduler.TaskPlacement, 0, to-from)
		for k := to - 1; k >= from; k-- { // in reverse: nothing may rely on order
			out = append(out, on(k, node))
		}
		return out
	}
	indices := func(ps []scheduler.TaskPlacement) []int {
		out := make([]int, len(ps))
		for i := range ps {
			out[i] = ps[i].Task
		}
		return out
	}
	// running: a job of n tasks running on node a.
	running := func(t *testing.T, kind scheduler.JobKind) *Machine {
		return dfMachine(t,
			RegisterNode{Node: scheduler.Node{Name: "a", CPUMilli: n, MemoryMiB: n}},
			RegisterNode{Node: scheduler.Node{Name: "b", CPUMilli: n, MemoryMiB: n}},
			Submit{Job: scheduler.Job{ID: "j", Kind: kind, Count: n, Preemptible: true, Task: cpuOnly}, At: 1},
			ApplyPlan{Place: []scheduler.JobPlacement{{Job: "j", Tasks: all("a", 0, n)}}, At: 2},
		)
	}
	oneByOne := make([]scheduler.Eviction, n)
	for k := range oneByOne {
		oneByOne[k] = scheduler.Eviction{Job: "j", Tasks: []int{k}, Seen: []scheduler.TaskPlacement{on(k, "a")}}
	}
	tests := []struct {
		name string
		kind scheduler.JobKind
		cmd  Command
		want Result
	}{
		{"finish a gang task by task", scheduler.Training, Finish{Job: "j", Tasks: indices(all("a", 0, n)), At: 3},
			Result{Changed: true, Ended: []string{"j"}}},
		{"finish every replica", scheduler.Inference, Finish{Job: "j", Tasks: indices(all("a", 0, n)), At: 3},
			Result{Changed: true, Requeued: []string{"j"}}},
		{"preempt every replica", scheduler.Inference, Preempt{Job: "j", Tasks: indices(all("a", 0, n)), At: 3},
			Result{Changed: true, Requeued: []string{"j"}}},
		{"evict every replica, named", scheduler.Inference, ApplyPlan{Evict: []scheduler.Eviction{{Job: "j", Tasks: indices(all("a", 0, n)), Seen: all("a", 0, n)}}, At: 3},
			Result{Changed: true, Requeued: []string{"j"}}},
		{"evict the replicas one eviction each", scheduler.Inference, ApplyPlan{Evict: oneByOne, At: 3},
			Result{Changed: true, Requeued: []string{"j"}}},
		{"evict a gang whole", scheduler.Training, ApplyPlan{Evict: []scheduler.Eviction{{Job: "j", Seen: all("a", 0, n)}}, At: 3},
			Result{Changed: true, Requeued: []string{"j"}}},
		{"move half the replicas", scheduler.Inference, ApplyPlan{
			Evict: []scheduler.Eviction{{Job: "j", Tasks: indices(all("a", 0, n/2)), Seen: all("a", 0, n/2)}},
			Place: []scheduler.JobPlacement{{Job: "j", Tasks: append(all("b", 0, n/2), all("a", n/2, n)...)}}, At: 3},
			Result{Changed: true, Degraded: []string{"j"}}},
		{"lose the node", scheduler.Inference, SetNodeState{Node: "a", State: scheduler.NodeDown, At: 3},
			Result{Changed: true, Requeued: []string{"j"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := running(t, tt.kind)
			m.work = 0
			res, err := m.Apply(tt.cmd)
			require.NoError(t, err)
			assert.Equal(t, tt.want, res)
			assert.LessOrEqual(t, m.work, uint64(perTask*n), "elements visited for %d tasks", n)
			t.Logf("%d elements visited for %d tasks", m.work, n)
		})
	}
}

// A node registered through the state machine (the daemon's API) bypasses
// the fleet file's MIG checks. What one device says of itself is checked:
// a MIG instance's capacity is its profile's share, and its profile is
// one; a layout across instances of one physical GPU cannot be, since the
// model does not group instances by GPU (docs/state.md).
func TestFollowupRegisterNodeChecksMIGDevices(t *testing.T) {
	tests := []struct {
		name string
		gpu  scheduler.GPU
		want string
	}{
		{"a 1g instance claiming a whole GPU", scheduler.GPU{Model: "A100", MIG: "1g.10gb", MilliCap: 1000},
			"node m: gpus[1].milli_cap: MIG profile 1g.10gb holds 142 milli, got 1000"},
		{"a 3g instance claiming more", scheduler.GPU{Model: "A100", MIG: "3g.40gb", MilliCap: 500},
			"node m: gpus[1].milli_cap: MIG profile 3g.40gb holds 428 milli, got 500"},
		{"no profile behind a capacity", scheduler.GPU{Model: "A100", MIG: "bogus", MilliCap: 500},
			`node m: gpus[1].mig: MIG profile "bogus"`},
		{"eight slices", scheduler.GPU{Model: "A100", MIG: "8g.80gb"},
			`node m: gpus[1].mig: MIG profile "8g.80gb"`},
		{"a compute instance larger than its GPU instance", scheduler.GPU{Model: "A100", MIG: "3c.2g.20gb"},
			`node m: gpus[1].mig: MIG profile "3c.2g.20gb"`},
		{"a compute instance claiming its GPU instance", scheduler.GPU{Model: "A100", MIG: "1c.2g.20gb", MilliCap: 285},
			"node m: gpus[1].milli_cap: MIG profile 1c.2g.20gb holds 142 milli, got 285"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			before := snap(t, m)
			_, err := m.Apply(RegisterNode{Node: scheduler.Node{Name: "m", CPUMilli: 8000, MemoryMiB: 8192,
				GPUs: []scheduler.GPU{{Model: "A100", MIG: "3g.40gb"}, tt.gpu}}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, string(before), string(snap(t, m)), "a refused node leaves nothing behind")
		})
	}
	// Consistent capacities, given or derived, register; and what a
	// snapshot writes (the derived capacity) restores.
	m := dfMachine(t, RegisterNode{Node: scheduler.Node{Name: "m", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []scheduler.GPU{
		{Model: "A100", MIG: "3g.40gb", MilliCap: 428}, {Model: "A100", MIG: "7g.80gb"}, {Model: "A100", MIG: "1g.10gb"},
		{Model: "A100", MIG: "1c.2g.20gb", MilliCap: 142}, {Model: "A100", MIG: "2c.3g.40gb"}, // compute instances, as an agent reports them
	}}})
	ji := m.Cluster().Node(0).GPUs
	assert.Equal(t, []int32{428, 1000, 142, 142, 285}, []int32{ji[0].MilliCap, ji[1].MilliCap, ji[2].MilliCap, ji[3].MilliCap, ji[4].MilliCap})
	r, err := Restore(bytes.NewReader(snap(t, m)))
	require.NoError(t, err)
	assert.Equal(t, string(snap(t, m)), string(snap(t, r)))
}
