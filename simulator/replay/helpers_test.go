package replay

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// tj is a test job: submit and duration in seconds, GPUs.
type tj struct {
	submit, dur int64
	gpus        int
}

func sec(s float64) int64 { return int64(s * float64(Second)) }

// burstFleet is n owned nodes of 8 GPUs each (named by names, in that order,
// with the given CPUs) and a cloud pool at price 1 with no delay.
func burstFleet(names []string, cpus []int64) ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{
		{Name: "onprem", Kind: scheduler.PoolOnPrem},
		{Name: "cloud", Kind: scheduler.PoolCloud, PricePerGPUHour: 1, MaxNodes: 1000},
	}
	var nodes []scheduler.Node
	for i, n := range names {
		cpu := int64(64000)
		if cpus != nil {
			cpu = cpus[i]
		}
		nodes = append(nodes, gpuNode(n, "onprem", cpu, 8))
	}
	nodes = append(nodes, gpuNode("cloud-template", "cloud", 64000, 8))
	return pools, nodes
}

func gpuNode(name, pool string, cpu int64, gpus int) scheduler.Node {
	n := scheduler.Node{Name: name, Pool: pool, CPUMilli: cpu, MemoryMiB: 512 << 10}
	for range gpus {
		n.GPUs = append(n.GPUs, scheduler.GPU{Model: "H100", MemoryMiB: 81920})
	}
	return n
}

func jobsOf(js []tj) []Job {
	out := make([]Job, len(js))
	for i, j := range js {
		out[i] = Job{
			Job:    scheduler.Job{ID: fmt.Sprintf("job-%d", i), Kind: scheduler.Training, Count: 1, Task: scheduler.Task{GPUs: j.gpus, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}},
			Submit: j.submit * Second, Duration: j.dur * Second, Source: fmt.Sprintf("test job %d", i),
		}
	}
	return out
}

// runBurst replays js on the named 8-GPU nodes with the given wait policy
// and W, and returns the result and the event log.
func runBurst(t *testing.T, names []string, js []tj, wait string, w int) (*Result, []Event) {
	t.Helper()
	pools, nodes := burstFleet(names, nil)
	wp, err := ParseWait(wait)
	require.NoError(t, err)
	var log []Event
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf(js), Policy: "best-fit",
		Burst: &Burst{Wait: wp}, WarmupJobs: w, Observe: func(e Event) { log = append(log, e) }})
	require.NoError(t, err)
	return res, log
}

// startsOn maps each started job number to the node of its start.
func startsOn(log []Event) map[int]string {
	m := map[int]string{}
	for _, e := range log {
		if e.Kind == EventStart {
			m[e.Job] = e.Node
		}
	}
	return m
}
