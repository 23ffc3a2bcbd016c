package state

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// bigMachine is a fleet of n 8-GPU nodes with a 4-GPU job running on each
// half of every node.
func bigMachine(b *testing.B, n int) *Machine {
	b.Helper()
	m := New()
	apply := func(c Command) {
		_, err := m.Apply(c)
		require.NoError(b, err)
	}
	apply(RegisterPool{Pool: scheduler.Pool{Name: "p", Region: "eu"}})
	task := scheduler.Task{GPUs: 4, GPUMilli: 1000, CPUMilli: 8000, MemoryMiB: 65536}
	for i := range n {
		node := fmt.Sprintf("n%05d", i)
		apply(RegisterNode{Node: scheduler.Node{Name: node, Pool: "p", CPUMilli: 64000, MemoryMiB: 1 << 20, GPUs: gpus("H100", 8)}})
		for h := range 2 {
			id := fmt.Sprintf("j%05d-%d", i, h)
			apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Task: task}, At: 1})
			apply(ApplyPlan{Place: []scheduler.JobPlacement{{Job: id, Tasks: []scheduler.TaskPlacement{
				{Node: node, GPUs: []int{4 * h, 4*h + 1, 4*h + 2, 4*h + 3}, GPUMilli: 1000, CPUMilli: 8000, MemoryMiB: 65536},
			}}}, At: 2})
		}
	}
	return m
}

// BenchmarkApplyCycle measures one job's life on a loaded fleet: a submit,
// a plan that places it and a finish.
func BenchmarkApplyCycle(b *testing.B) {
	m := bigMachine(b, 1000)
	task := scheduler.Task{GPUs: 4, GPUMilli: 1000, CPUMilli: 8000, MemoryMiB: 65536}
	_, err := m.Apply(Finish{Job: "j00000-0", At: 3})
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("b", i)
		for _, c := range []Command{
			Submit{Job: scheduler.Job{ID: id, Count: 1, Task: task}, At: int64(i)},
			ApplyPlan{Place: []scheduler.JobPlacement{{Job: id, Tasks: []scheduler.TaskPlacement{
				{Node: "n00000", GPUs: []int{0, 1, 2, 3}, GPUMilli: 1000, CPUMilli: 8000, MemoryMiB: 65536},
			}}}, At: int64(i)},
			Finish{Job: id, At: int64(i)},
		} {
			if _, err := m.Apply(c); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSnapshotRestore measures a snapshot and a restore of a fleet of
// 1000 nodes running 2000 jobs.
func BenchmarkSnapshotRestore(b *testing.B) {
	m := bigMachine(b, 1000)
	var buf bytes.Buffer
	require.NoError(b, m.Snapshot(&buf))
	size := buf.Len()
	b.ResetTimer()
	for range b.N {
		buf.Reset()
		if err := m.Snapshot(&buf); err != nil {
			b.Fatal(err)
		}
		if _, err := Restore(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "snapshot-bytes")
}

// BenchmarkApplyTaskList measures commands that name every task of a job
// of n CPU-only tasks, in reverse order: a Preempt of every replica, and a
// plan evicting them one eviction each. The checks of such lists are
// linear; they were quadratic (seconds at MaxTasksPerJob).
func BenchmarkApplyTaskList(b *testing.B) {
	for _, n := range []int{4096, scheduler.MaxTasksPerJob} {
		tasks := make([]int, n)
		place := make([]scheduler.TaskPlacement, n)
		evict := make([]scheduler.Eviction, n)
		for i := range n {
			k := n - 1 - i
			tasks[i] = k
			place[i] = scheduler.TaskPlacement{Task: k, Node: "a", CPUMilli: 1, MemoryMiB: 1}
			evict[i] = scheduler.Eviction{Job: "j", Tasks: []int{k}, Seen: []scheduler.TaskPlacement{place[i]}}
		}
		for _, c := range []struct {
			name string
			cmd  Command
		}{
			{"preempt", Preempt{Job: "j", Tasks: tasks, At: 3}},
			{"evictions", ApplyPlan{Evict: evict, At: 3}},
		} {
			b.Run(fmt.Sprintf("%s/tasks=%d", c.name, n), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					m := New()
					for _, setup := range []Command{
						RegisterNode{Node: scheduler.Node{Name: "a", CPUMilli: int64(n), MemoryMiB: int64(n)}},
						Submit{Job: scheduler.Job{ID: "j", Kind: scheduler.Inference, Count: n, Task: scheduler.Task{CPUMilli: 1, MemoryMiB: 1}}, At: 1},
						ApplyPlan{Place: []scheduler.JobPlacement{{Job: "j", Tasks: place}}, At: 2},
					} {
						if _, err := m.Apply(setup); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					if _, err := m.Apply(c.cmd); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// planFleet is a machine with nodes of 8 GPUs and n one-task training jobs
// pending, each asking for a tenth of a GPU, and the plans that place them
// per jobs a plan (as bench.BenchmarkRaftCommit's batched entries do).
func planFleet(tb testing.TB, nodes, n, per int) (*Machine, []ApplyPlan) {
	tb.Helper()
	m := New()
	apply := func(c Command) {
		_, err := m.Apply(c)
		require.NoError(tb, err)
	}
	apply(RegisterPool{Pool: scheduler.Pool{Name: "p"}})
	for i := range nodes {
		apply(RegisterNode{Node: scheduler.Node{Name: fmt.Sprintf("n%04d", i), Pool: "p", CPUMilli: 1 << 20, MemoryMiB: 1 << 30, GPUs: gpus("H100", 8)}})
	}
	var plans []ApplyPlan
	for i := range n {
		id := fmt.Sprintf("r%06d", i)
		apply(Submit{Job: scheduler.Job{ID: id, Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 100}}, At: 1})
		if i%per == 0 {
			plans = append(plans, ApplyPlan{At: 2})
		}
		p := &plans[len(plans)-1]
		gpu := i / 10
		p.Place = append(p.Place, scheduler.JobPlacement{Job: id, Tasks: []scheduler.TaskPlacement{
			{Node: fmt.Sprintf("n%04d", gpu/8), GPUs: []int{gpu % 8}, GPUMilli: 100},
		}})
	}
	return m, plans
}

// BenchmarkApplyPlan measures applying plans of 1,000 one-task placements
// (the batched entry of bench.BenchmarkRaftCommit), and only that; one op
// is one decision, so allocs/op is the allocations per placement.
func BenchmarkApplyPlan(b *testing.B) {
	const per, round = 1000, 20000
	b.ReportAllocs()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(round, b.N-done)
		m, plans := planFleet(b, 256, n, per)
		b.StartTimer()
		for _, p := range plans {
			if _, err := m.Apply(p); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
}
