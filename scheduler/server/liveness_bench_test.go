package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// BenchmarkHeartbeat is the leader's work for one heartbeat of an agent
// that reports its 8 running tasks, on a state of 1,000 nodes each running
// 8 one-GPU jobs: the scan of the running jobs for the node's tasks is
// most of it.
func BenchmarkHeartbeat(b *testing.B) {
	const nodes, perNode = 1000, 8
	f := NewFSM()
	pools, ns := testFleet(nodes)
	var cmds []state.Command
	for _, p := range pools {
		cmds = append(cmds, state.RegisterPool{Pool: p})
	}
	for _, n := range ns {
		cmds = append(cmds, state.RegisterNode{Node: n})
	}
	var plan state.ApplyPlan
	for i, n := range ns {
		for g := range perNode {
			id := fmt.Sprintf("j%d-%d", i, g)
			cmds = append(cmds, state.Submit{Job: job(id, 1), At: 1})
			plan.Place = append(plan.Place, scheduler.JobPlacement{Job: id, Tasks: []scheduler.TaskPlacement{
				{Node: n.Name, GPUs: []int{g}, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100}}})
		}
	}
	cmds = append(cmds, plan)
	for _, c := range cmds {
		_, err := f.m.Apply(c)
		require.NoError(b, err)
	}
	f.agents = map[string]AgentRecord{ns[0].Name: {Node: ns[0].Name, Devices: make([]string, 8)}}
	s := &Server{cfg: Config{Clock: func() int64 { return 2 }}, fsm: f}
	s.watch.active = true
	var hb Heartbeat
	for g := range perNode {
		hb.Tasks = append(hb.Tasks, TaskReport{TaskKey: TaskKey{Job: fmt.Sprintf("j0-%d", g)}, State: TaskRunning})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ans, err := s.Heartbeat(ctx, ns[0].Name, hb)
		if err != nil || len(ans.Tasks) != perNode || len(ans.Stop) != 0 {
			b.Fatalf("%v: %d tasks, %d stops", err, len(ans.Tasks), len(ans.Stop))
		}
	}
}

// BenchmarkNoteRuns is what recording where tasks run costs the apply of a
// plan entry of 1,000 one-task jobs (every server pays it): per placement.
func BenchmarkNoteRuns(b *testing.B) {
	f := NewFSM()
	const n = 1000
	var plan state.ApplyPlan
	for i := range n {
		id := fmt.Sprintf("j%04d", i)
		f.jobs[id] = JobRecord{Command: []string{"python", "train.py"}}
		plan.Place = append(plan.Place, scheduler.JobPlacement{Job: id, Tasks: []scheduler.TaskPlacement{{Node: "n0001", GPUs: []int{1}}}})
	}
	b.ReportAllocs()
	for b.Loop() {
		f.noteRuns(plan)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/placement")
}
