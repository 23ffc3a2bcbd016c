package scheduler

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Generators of worlds at exact limits, for the oracle tests.

// oMIGLayouts are partitions of one GPU into at most seven slices.
var oMIGLayouts = [][]string{
	{"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"},
	{"4g.40gb", "3g.40gb"},
	{"1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb"},
	{"2g.20gb", "2g.20gb", "3g.40gb"},
	{"7g.80gb"}, // full size: 1000 milli, still exclusive
}

// exactFleet draws a small fleet with capacities at 1-milli (and 1-MiB)
// granularity: 0 to 8 GPUs of three models in NVLink islands of 2 or 4,
// some with one GPU MIG-partitioned (full-size 7g instances too) beside
// whole GPUs, some nodes alike, over three pools (one of them
// cloud), racks and zones (some nodes without a zone).
func exactFleet(rng *rand.Rand, n int) ([]Pool, []Node) {
	pools := []Pool{
		{Name: "own", Kind: PoolOnPrem, Region: "eu"},
		{Name: "edge", Kind: PoolOutposts, Region: "us"},
		{Name: "cloud", Kind: PoolCloud, Region: "eu", PricePerGPUHour: 2.5},
	}
	models := []string{"A100", "H100", "L4"}
	nodes := make([]Node, n)
	for i := range nodes {
		if i > 0 && rng.IntN(5) == 0 {
			// A node like an earlier one: ties, and alike nodes for fgd's classes.
			nodes[i] = nodes[rng.IntN(i)]
			nodes[i].GPUs = slices.Clone(nodes[i].GPUs)
			nodes[i].Name = fmt.Sprintf("n%02d", i)
			continue
		}
		m := models[rng.IntN(len(models))]
		var gpus []GPU
		k := []int{0, 1, 2, 3, 4, 8, 8}[rng.IntN(7)]
		island := []int{2, 4}[rng.IntN(2)]
		if k > 0 && rng.IntN(3) == 0 {
			// One GPU partitioned, the others (if any) whole: a MIG
			// instance sits at device 0 beside whole GPUs. A full-size 7g
			// instance (1000 milli, yet exclusive) comes often: it is the
			// device a whole-GPU rule most easily takes by mistake.
			layout := oMIGLayouts[rng.IntN(len(oMIGLayouts))]
			if rng.IntN(3) == 0 {
				layout = []string{"7g.80gb"}
			}
			for _, prof := range layout {
				gpus = append(gpus, GPU{Model: m, MIG: prof})
			}
			k = []int{0, 1, 2, 3}[rng.IntN(4)]
		}
		for g := range k {
			gpus = append(gpus, GPU{Model: m, Island: g / island})
		}
		nodes[i] = Node{
			Name: fmt.Sprintf("n%02d", i), Pool: pools[rng.IntN(len(pools))].Name,
			Rack: fmt.Sprintf("r%d", rng.IntN(4)), CPUMilli: int64(1 + rng.IntN(64000)),
			MemoryMiB: int64(1 + rng.IntN(256<<10)), GPUs: gpus,
		}
		if rng.IntN(6) > 0 {
			nodes[i].Labels = map[string]string{"zone": fmt.Sprintf("z%d", rng.IntN(3))}
		}
	}
	return pools, nodes
}

// exactTask draws a task, mostly aimed at the limits of one node of the
// world as it stands: its free CPU, its free memory, one device's free
// share or its count of free whole GPUs, exactly or one milli (one device)
// beyond or short.
func exactTask(rng *rand.Rand, w *oWorld) Task {
	n := w.nodes[rng.IntN(len(w.nodes))]
	off := []int64{-1, 0, 0, 0, 1}[rng.IntN(5)]
	small := func(limit int64) int64 { return rng.Int64N(max(1, min(limit, 4000)+1)) }
	t := Task{CPUMilli: small(n.cpuFree), MemoryMiB: small(n.memFree)}
	switch rng.IntN(8) {
	case 0: // anything, at 1-milli granularity
		t.CPUMilli, t.MemoryMiB = rng.Int64N(32000), rng.Int64N(64<<10)
		switch rng.IntN(3) {
		case 1:
			t.GPUs, t.GPUMilli = 1, 1+rng.IntN(999)
		case 2:
			t.GPUs, t.GPUMilli = 1+rng.IntN(8), 1000
		}
	case 1: // exactly the node's free CPU
		t.CPUMilli = max(0, n.cpuFree+off)
	case 2: // exactly its free memory
		t.MemoryMiB = max(0, n.memFree+off)
	case 3, 4: // exactly one device's free share
		if len(n.devs) == 0 {
			break
		}
		d := n.devs[rng.IntN(len(n.devs))]
		t.GPUs, t.GPUMilli = 1, int(min(max(1, d.free+off), 999))
	case 5: // exactly its free whole GPUs
		t.GPUs, t.GPUMilli = max(1, len(n.wholeFree())+int(off)), 1000
	case 6: // all of it at once
		t.CPUMilli, t.MemoryMiB = max(0, n.cpuFree+off), n.memFree
		t.GPUs, t.GPUMilli = len(n.wholeFree()), 1000
		if t.GPUs == 0 {
			t.GPUMilli = 0
		}
	default: // a whole GPU or a share, CPU-light
		t.GPUs, t.GPUMilli = 1, []int{1000, 500, 1, 999}[rng.IntN(4)]
	}
	if t.GPUs > 0 && n.model != "" && rng.IntN(4) == 0 {
		t.Models = []string{n.model}
		if rng.IntN(4) == 0 {
			t.Models = []string{"B200"} // no node has it
		}
	}
	if rng.IntN(8) == 0 {
		t.Residency = []string{"eu"}
	}
	if rng.IntN(8) == 0 {
		t.Constraints = []Constraint{{Key: "zone", Op: OpNotIn, Values: []string{"z1"}}}
	}
	return t
}

// oTarget is the expected workload the fragmentation policies measure
// against in these tests: odd shares, a model-bound type, CPU-only.
var oTarget = []TargetType{
	{CPU: 6000, Milli: 1000, GPUs: 1, Prob: 0.3},
	{CPU: 3001, Milli: 500, GPUs: 1, Prob: 0.2},
	{CPU: 2000, Milli: 333, GPUs: 1, Prob: 0.15},
	{CPU: 12000, Milli: 1000, GPUs: 2, Prob: 0.1},
	{CPU: 24000, Milli: 1000, GPUs: 4, Models: "H100", Prob: 0.1},
	{CPU: 1000, Milli: 142, GPUs: 1, Prob: 0.05},
	{CPU: 4000, Prob: 0.1},
}

// oLong reports whether the heavy sweeps run (PETITE_LONG=1).
func oLong() bool { return os.Getenv("PETITE_LONG") == "1" }

// oSetup builds the core's cluster and the oracle's world from one draw,
// with random ranks.
func oSetup(t *testing.T, rng *rand.Rand, nodes int, name string, cost bool) (*Cluster, *Policy, *oWorld) {
	t.Helper()
	pools, ns := exactFleet(rng, nodes)
	c, err := NewCluster(pools, ns)
	require.NoError(t, err)
	w := newOWorld(pools, ns, oTarget)
	perm := make([]NodeID, c.NumNodes())
	for r, id := range rng.Perm(len(perm)) {
		perm[r] = NodeID(id)
		w.rank[id] = r
	}
	require.NoError(t, c.SetRanks(perm))
	p, err := NewPolicy(c, name, Options{Target: oTarget, Cost: cost})
	require.NoError(t, err)
	return c, p, w
}

// exactJob draws a gang or a service of exact-limit tasks: 2 to 5 tasks,
// sometimes as many as one node holds of its free CPU (the last one
// exactly filling it) or one too many.
func exactJob(rng *rand.Rand, w *oWorld, id string) *Job {
	j := &Job{ID: id, Count: 2 + rng.IntN(4), Task: exactTask(rng, w)}
	if rng.IntN(2) == 0 {
		j.Kind = Inference
		if rng.IntN(4) == 0 {
			j.SpreadLabel = "rack"
		}
	}
	if rng.IntN(4) == 0 {
		n := w.nodes[rng.IntN(len(w.nodes))]
		j.Task.CPUMilli = max(1, n.cpuFree/int64(j.Count))
		if rng.IntN(2) == 0 && n.cpuFree%int64(j.Count) == 0 {
			j.Count++ // one task too many for that node
		}
	}
	return j
}
