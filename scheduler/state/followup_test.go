package state

import (
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
