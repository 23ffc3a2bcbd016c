package scheduler

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomFleet draws a small mixed fleet: 1-, 2-, 4- and 8-GPU nodes of
// three models, some MIG-partitioned, over two pools and a few racks.
func randomFleet(rng *rand.Rand, n int) ([]Pool, []Node) {
	pools := []Pool{
		{Name: "own", Kind: PoolOnPrem, Region: "eu"},
		{Name: "cloud-a", Kind: PoolCloud, Region: "us", Zone: "us-1", PricePerGPUHour: 3},
		{Name: "cloud-b", Kind: PoolCloud, Region: "eu", Zone: "eu-2", PricePerGPUHour: 2},
	}
	models := []string{"A100", "H100", "T4"}
	nodes := make([]Node, n)
	for i := range nodes {
		k := []int{0, 1, 2, 4, 8}[rng.IntN(5)]
		m := models[rng.IntN(len(models))]
		var gpus []GPU
		if k > 0 && rng.IntN(6) == 0 {
			for _, prof := range []string{"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"} {
				gpus = append(gpus, GPU{Model: m, MIG: prof})
			}
		} else {
			for g := 0; g < k; g++ {
				gpus = append(gpus, GPU{Model: m, Island: g / 4})
			}
		}
		nodes[i] = Node{
			Name: fmt.Sprintf("n%02d", i), Pool: pools[rng.IntN(len(pools))].Name,
			Rack: fmt.Sprintf("r%d", i/4), CPUMilli: int64(8000 * (1 + rng.IntN(8))),
			MemoryMiB: int64(16384 * (1 + rng.IntN(8))), GPUs: gpus,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3)},
		}
	}
	return pools, nodes
}

// randomTask draws a task: CPU-only, a share, or whole GPUs, sometimes
// pinned to models or constrained.
func randomTask(rng *rand.Rand) Task {
	t := Task{CPUMilli: int64(1000 * rng.IntN(12)), MemoryMiB: int64(1024 * rng.IntN(40))}
	switch rng.IntN(4) {
	case 0:
	case 1:
		t.GPUs, t.GPUMilli = 1, 100*(1+rng.IntN(9))
	default:
		t.GPUs, t.GPUMilli = []int{1, 1, 2, 4, 8}[rng.IntN(5)], MilliPerGPU
	}
	if t.GPUs > 0 && rng.IntN(4) == 0 {
		t.Models = []string{[]string{"A100", "H100", "T4", "B200"}[rng.IntN(4)]}
	}
	if rng.IntN(8) == 0 {
		t.Residency = []string{"eu"}
	}
	if rng.IntN(10) == 0 {
		t.Constraints = []Constraint{{Key: "zone", Op: OpNotIn, Values: []string{"z1"}}}
	}
	return t
}

// checkCapacity asserts that nothing is given beyond capacity and that the
// free amounts equal capacity minus the live assignments.
func checkCapacity(t *testing.T, c *Cluster, live []Assign) {
	t.Helper()
	usedGPU := make([]int64, len(c.gpuFree))
	usedCPU := make([]int64, len(c.nodes))
	usedMem := make([]int64, len(c.nodes))
	for _, a := range live {
		r := &c.nodes[a.Node]
		usedCPU[a.Node] += a.CPUMilli
		usedMem[a.Node] += a.MemMiB
		for m := a.Mask; m != 0; m &= m - 1 {
			usedGPU[r.gpuOff+int32(trailingZeros(m))] += int64(a.Take)
		}
	}
	for i := range c.nodes {
		r := &c.nodes[i]
		require.Equal(t, r.cpuCap-usedCPU[i], r.cpuFree, "node %d CPU", i)
		require.Equal(t, r.memCap-usedMem[i], r.memFree, "node %d memory", i)
		require.GreaterOrEqual(t, r.cpuFree, int64(0))
		require.GreaterOrEqual(t, r.memFree, int64(0))
		var sum int64
		var full int32
		for g := r.gpuOff; g < r.gpuOff+r.gpuN; g++ {
			// An unhealthy device offers nothing and withholds the rest.
			if r.sick&(1<<uint(g-r.gpuOff)) != 0 {
				require.Zero(t, c.gpuFree[g], "node %d unhealthy GPU %d offers capacity", i, g-r.gpuOff)
			} else {
				require.Zero(t, c.gpuHeld[g], "node %d healthy GPU %d withheld", i, g-r.gpuOff)
			}
			require.Equal(t, int64(c.gpuCap[g])-usedGPU[g], int64(c.gpuFree[g]+c.gpuHeld[g]), "node %d GPU %d", i, g-r.gpuOff)
			require.GreaterOrEqual(t, c.gpuFree[g], int32(0), "GPU given beyond capacity")
			sum += int64(c.gpuFree[g])
			if c.gpuFree[g] == MilliPerGPU && c.gpuCap[g] == MilliPerGPU {
				full++
			}
		}
		require.Equal(t, sum, r.gpuFreeSum, "node %d free sum", i)
		require.Equal(t, full, r.fullFree, "node %d full-free count", i)
	}
}

// TestIndexMatchesScan drives random fleets through random placements and
// releases and checks, for every policy, that the indexed decision is the
// unindexed scan's, and that capacity is never exceeded.
func TestIndexMatchesScan(t *testing.T) {
	for _, name := range PolicyNames() {
		for seed := uint64(1); seed <= 6; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				pools, nodes := randomFleet(rng, 10+rng.IntN(30))
				c, err := NewCluster(pools, nodes)
				require.NoError(t, err)
				perm := make([]NodeID, c.NumNodes())
				for i, j := range rng.Perm(len(perm)) {
					perm[i] = NodeID(j)
				}
				require.NoError(t, c.SetRanks(perm))
				p, err := NewPolicy(c, name, Options{Cost: seed%2 == 0})
				require.NoError(t, err)
				scan := *p
				scan.Scan = true
				var live []Assign
				for step := 0; step < 300; step++ {
					if len(live) > 0 && rng.IntN(3) == 0 {
						k := rng.IntN(len(live))
						require.NoError(t, c.Release(live[k]))
						live = append(live[:k], live[k+1:]...)
						continue
					}
					task := randomTask(rng)
					s, err := c.ShapeOf(&task)
					require.NoError(t, err)
					got := c.Select(p, &s, rng)
					want, feasible := c.SelectScan(&scan, &s, rng)
					if p.Uniform {
						assert.Equal(t, want == NoNode, got == NoNode)
						if got != NoNode {
							assert.True(t, c.Fits(got, &s))
							assert.Equal(t, feasible, c.index(p, &s).feasible())
						}
					} else {
						require.Equal(t, want, got, "step %d task %+v", step, task)
					}
					if got == NoNode {
						continue
					}
					a := c.assign(p, got, &s, rng)
					require.Equal(t, int(s.GPUs), popcount(a.Mask), "devices picked")
					require.NoError(t, c.Commit(a))
					live = append(live, a)
				}
				checkCapacity(t, c, live)
			})
		}
	}
}

func TestGangAllOrNothing(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		pools, nodes := randomFleet(rng, 12)
		c, err := NewCluster(pools, nodes)
		require.NoError(t, err)
		p, err := NewPolicy(c, []string{"best-fit", "topology", "fgd"}[seed%3], Options{})
		require.NoError(t, err)
		var live []Assign
		for step := 0; step < 60; step++ {
			j := Job{ID: fmt.Sprintf("j%d", step), Count: 1 + rng.IntN(6), Task: randomTask(rng)}
			if rng.IntN(3) == 0 {
				j.Kind = Inference
			}
			before := snapshotFree(c)
			out, ok, err := c.PlaceJob(p, &j, rng, nil)
			require.NoError(t, err)
			if !ok {
				require.Empty(t, out)
				require.Equal(t, before, snapshotFree(c), "a failed gang left a trace")
				continue
			}
			require.Len(t, out, j.Count)
			live = append(live, out...)
		}
		checkCapacity(t, c, live)
	}
}

func snapshotFree(c *Cluster) string {
	return fmt.Sprint(c.gpuFree, func() []int64 {
		var v []int64
		for _, r := range c.nodes {
			v = append(v, r.cpuFree, r.memFree, int64(r.tags))
		}
		return v
	}())
}

func TestDeterministicPlacement(t *testing.T) {
	run := func() string {
		rng := rand.New(rand.NewPCG(99, 1))
		pools, nodes := randomFleet(rng, 25)
		c, err := NewCluster(pools, nodes)
		require.NoError(t, err)
		var out string
		for _, name := range PolicyNames() {
			p, err := NewPolicy(c, name, Options{})
			require.NoError(t, err)
			for i := 0; i < 40; i++ {
				task := randomTask(rng)
				s, err := c.ShapeOf(&task)
				require.NoError(t, err)
				if a, ok := c.PlaceTask(p, &s, rng); ok {
					out += fmt.Sprintf("%s %+v\n", name, c.Placement(i, a))
				}
			}
		}
		return out
	}
	first := run()
	require.NotEmpty(t, first)
	require.Equal(t, first, run())
}

func TestCommitRejectsOversubscription(t *testing.T) {
	c, err := NewCluster(nil, []Node{{Name: "a", CPUMilli: 4000, MemoryMiB: 1000, GPUs: []GPU{{Model: "T4"}, {Model: "T4"}}}})
	require.NoError(t, err)
	require.NoError(t, c.Commit(Assign{Node: 0, Mask: 0b01, Take: 600, CPUMilli: 1000, Tag: 0}))
	tests := []struct {
		name string
		a    Assign
		want string
	}{
		{"gpu", Assign{Node: 0, Mask: 0b01, Take: 500, Tag: 0}, "GPU 0 oversubscribed"},
		{"cpu", Assign{Node: 0, CPUMilli: 3500, Tag: -1}, "CPU oversubscribed"},
		{"mem", Assign{Node: 0, MemMiB: 1001, Tag: -1}, "memory oversubscribed"},
		{"device", Assign{Node: 0, Mask: 0b100, Take: 1000, Tag: 1}, "no GPU 2"},
		{"node", Assign{Node: 5, Tag: -1}, "unknown node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshotFree(c)
			err := c.Commit(tc.a)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, before, snapshotFree(c))
		})
	}
	require.NoError(t, c.Commit(Assign{Node: 0, Mask: 0b01, Take: 400, Tag: 0}))
	require.Equal(t, int32(0), c.gpuFree[0])
}

func TestCostTierPrefersOwnedThenCheapCloud(t *testing.T) {
	pools := []Pool{
		{Name: "dear", Kind: PoolCloud, Region: "eu", PricePerGPUHour: 4},
		{Name: "cheap", Kind: PoolCloud, Region: "eu", PricePerGPUHour: 1.5},
		{Name: "own", Kind: PoolOnPrem, Region: "eu"},
	}
	one := func(name, pool string) Node {
		return Node{Name: name, Pool: pool, CPUMilli: 64000, MemoryMiB: 1 << 18, GPUs: []GPU{{Model: "H100"}, {Model: "H100"}}}
	}
	c, err := NewCluster(pools, []Node{one("d", "dear"), one("c", "cheap"), one("o", "own")})
	require.NoError(t, err)
	p, err := NewPolicy(c, "spread", Options{Cost: true})
	require.NoError(t, err)
	task := Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000}
	s, err := c.ShapeOf(&task)
	require.NoError(t, err)
	var got []string
	for i := 0; i < 6; i++ {
		a, ok := c.PlaceTask(p, &s, nil)
		require.True(t, ok)
		got = append(got, c.Node(a.Node).Name)
	}
	// Spread alone would alternate; the cost tier fills owned capacity, then
	// the cheaper cloud, then the dearer one.
	assert.Equal(t, []string{"o", "o", "c", "c", "d", "d"}, got)
}

func TestResidencyAndConstraints(t *testing.T) {
	pools := []Pool{
		{Name: "us", Kind: PoolCloud, Region: "us-east"},
		{Name: "eu", Kind: PoolOnPrem, Region: "eu-west", Labels: map[string]string{"compliance": "gdpr"}},
	}
	c, err := NewCluster(pools, []Node{
		{Name: "u", Pool: "us", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "A100"}}},
		{Name: "e", Pool: "eu", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "A100"}}},
	})
	require.NoError(t, err)
	p, err := NewPolicy(c, "first-fit", Options{})
	require.NoError(t, err)
	tests := []struct {
		name string
		task Task
		want string
	}{
		{"anywhere", Task{GPUs: 1, GPUMilli: 500}, "u"},
		{"residency", Task{GPUs: 1, GPUMilli: 500, Residency: []string{"eu-west"}}, "e"},
		{"label", Task{GPUs: 1, GPUMilli: 500, Constraints: []Constraint{{Key: "compliance", Op: OpIn, Values: []string{"gdpr"}}}}, "e"},
		{"not-in", Task{GPUs: 1, GPUMilli: 500, Constraints: []Constraint{{Key: "region", Op: OpNotIn, Values: []string{"us-east"}}}}, "e"},
		{"nowhere", Task{GPUs: 1, GPUMilli: 500, Residency: []string{"ap-south"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.ShapeOf(&tc.task)
			require.NoError(t, err)
			n := c.Select(p, &s, nil)
			if tc.want == "" {
				require.Equal(t, NoNode, n)
				assert.Equal(t, 2, c.Explain(p, &s)[ReasonConstraint])
				return
			}
			require.NotEqual(t, NoNode, n)
			assert.Equal(t, tc.want, c.Node(n).Name)
		})
	}
}

func TestTopologyKeepsGangTogether(t *testing.T) {
	gpus := func(model string) []GPU {
		g := make([]GPU, 8)
		for i := range g {
			g[i] = GPU{Model: model, Island: i / 4}
		}
		return g
	}
	nodes := []Node{
		{Name: "a1", Rack: "ra", CPUMilli: 128000, MemoryMiB: 1 << 20, GPUs: gpus("H100")},
		{Name: "b1", Rack: "rb", CPUMilli: 128000, MemoryMiB: 1 << 20, GPUs: gpus("H100")},
		{Name: "a2", Rack: "ra", CPUMilli: 128000, MemoryMiB: 1 << 20, GPUs: gpus("H100")},
		{Name: "b2", Rack: "rb", CPUMilli: 128000, MemoryMiB: 1 << 20, GPUs: gpus("H100")},
	}
	c, err := NewCluster(nil, nodes)
	require.NoError(t, err)
	p, err := NewPolicy(c, "topology", Options{})
	require.NoError(t, err)
	// Occupy GPU 0 of a1 so that its first island has 3 free devices.
	require.NoError(t, c.Commit(Assign{Node: 0, Mask: 1, Take: 1000, Tag: 1}))

	// A 4-GPU task goes where one island holds it whole: a1's second island
	// (devices 4..7), since a1's first island lacks a device.
	j := Job{ID: "four", Count: 1, Task: Task{GPUs: 4, GPUMilli: 1000}}
	out, ok, err := c.PlaceJob(p, &j, nil, nil)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, uint64(0xF0), out[0].Mask, "one whole NVLink island")

	// A gang of three 8-GPU tasks: the second and third stay in the rack of
	// the first.
	g := Job{ID: "gang", Count: 3, Task: Task{GPUs: 8, GPUMilli: 1000}}
	out, ok, err = c.PlaceJob(p, &g, nil, nil)
	require.NoError(t, err)
	require.True(t, ok)
	racks := map[string]int{}
	for _, a := range out {
		racks[c.Node(a.Node).Rack]++
	}
	assert.Equal(t, 2, racks["rb"], "two tasks share the rack of the first")
}

func TestInferenceSpreadsOverZones(t *testing.T) {
	var nodes []Node
	for i := 0; i < 6; i++ {
		nodes = append(nodes, Node{
			Name: fmt.Sprintf("n%d", i), CPUMilli: 64000, MemoryMiB: 1 << 18,
			GPUs:   []GPU{{Model: "L4"}, {Model: "L4"}, {Model: "L4"}, {Model: "L4"}},
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i/2)},
		})
	}
	c, err := NewCluster(nil, nodes)
	require.NoError(t, err)
	p, err := NewPolicy(c, "best-fit", Options{})
	require.NoError(t, err)
	j := Job{ID: "svc", Kind: Inference, Count: 3, Task: Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000}}
	out, ok, err := c.PlaceJob(p, &j, nil, nil)
	require.NoError(t, err)
	require.True(t, ok)
	zones := map[string]bool{}
	for _, a := range out {
		zones[c.Labels(a.Node)["zone"]] = true
	}
	// Best-fit alone would stack all three on one node.
	assert.Len(t, zones, 3)
}

func TestMIGInstanceTakenWhole(t *testing.T) {
	c, err := NewCluster(nil, []Node{{Name: "m", CPUMilli: 8000, MemoryMiB: 8192,
		GPUs: []GPU{{Model: "A100", MIG: "3g.40gb"}, {Model: "A100", MIG: "1g.10gb"}}}})
	require.NoError(t, err)
	p, err := NewPolicy(c, "best-fit", Options{})
	require.NoError(t, err)
	small := Task{GPUs: 1, GPUMilli: 100}
	s, err := c.ShapeOf(&small)
	require.NoError(t, err)
	a, ok := c.PlaceTask(p, &s, nil)
	require.True(t, ok)
	assert.Equal(t, uint64(0b10), a.Mask, "the smallest instance that fits")
	assert.Equal(t, int32(142), a.Take, "a MIG instance is exclusive")
	// The 1g instance is gone; the next small task takes the 3g one whole.
	a, ok = c.PlaceTask(p, &s, nil)
	require.True(t, ok)
	assert.Equal(t, uint64(0b01), a.Mask)
	_, ok = c.PlaceTask(p, &s, nil)
	assert.False(t, ok)
	whole := Task{GPUs: 1, GPUMilli: 1000}
	ws, err := c.ShapeOf(&whole)
	require.NoError(t, err)
	assert.Equal(t, NoNode, c.Select(p, &ws, nil), "a MIG instance never serves a whole GPU")
}

func TestNodeStateExcludesNode(t *testing.T) {
	c, err := NewCluster(nil, []Node{
		{Name: "a", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "T4"}}},
		{Name: "b", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "T4"}}},
	})
	require.NoError(t, err)
	p, err := NewPolicy(c, "first-fit", Options{})
	require.NoError(t, err)
	task := Task{GPUs: 1, GPUMilli: 1000}
	s, err := c.ShapeOf(&task)
	require.NoError(t, err)
	assert.Equal(t, NodeID(0), c.Select(p, &s, nil))
	c.SetState(0, NodeDraining)
	assert.Equal(t, NodeID(1), c.Select(p, &s, nil), "the index sees the state change")
	c.SetState(1, NodeDown)
	assert.Equal(t, NoNode, c.Select(p, &s, nil))
	c.SetState(0, NodeReady)
	assert.Equal(t, NodeID(0), c.Select(p, &s, nil))
}

func TestValidateJob(t *testing.T) {
	ok := Job{ID: "j", Count: 1, Task: Task{GPUs: 2, GPUMilli: 1000}}
	require.NoError(t, ok.Validate())
	tests := []struct {
		name string
		mod  func(j *Job)
		want string
	}{
		{"id", func(j *Job) { j.ID = "" }, "field id"},
		{"count", func(j *Job) { j.Count = 0 }, "field count"},
		{"share-multi", func(j *Job) { j.Task.GPUMilli = 500 }, "field task.gpu_milli"},
		{"gpus", func(j *Job) { j.Task.GPUs = 65 }, "field task.gpus"},
		{"cpu", func(j *Job) { j.Task.CPUMilli = -1 }, "field task.cpu_milli"},
		{"min-replicas", func(j *Job) { j.MinReplicas = 3 }, "field min_replicas"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := ok
			tc.mod(&j)
			require.ErrorContains(t, j.Validate(), tc.want)
		})
	}
}

// TestVisitBestOrder checks the best-first walk against a sort of the scan,
// on fleets whose trees have several levels and whose scores tie (an empty
// fleet ties everywhere: the walk then goes in rank order).
func TestVisitBestOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodes  int
		placed int
		policy string
	}{
		{"small", 37, 40, "best-fit"},
		{"empty-ties", 700, 0, "best-fit"},
		{"busy", 700, 500, "best-fit"},
		{"packing-ties", 700, 300, "gpu-packing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, uint64(tc.nodes)))
			pools, nodes := randomFleet(rng, tc.nodes)
			c, err := NewCluster(pools, nodes)
			require.NoError(t, err)
			p, err := NewPolicy(c, tc.policy, Options{})
			require.NoError(t, err)
			for i := 0; i < tc.placed; i++ {
				task := randomTask(rng)
				s, err := c.ShapeOf(&task)
				require.NoError(t, err)
				c.PlaceTask(p, &s, rng)
			}
			task := Task{GPUs: 1, GPUMilli: 300}
			s, err := c.ShapeOf(&task)
			require.NoError(t, err)
			type cand struct {
				n NodeID
				v int64
			}
			var want []cand
			for i := range c.nodes {
				n := NodeID(i)
				if c.Fits(n, &s) && p.filter(c, n, &s) {
					want = append(want, cand{n, p.nodeScore(c, n, &s)})
				}
			}
			sort.Slice(want, func(i, j int) bool {
				if want[i].v != want[j].v {
					return want[i].v > want[j].v
				}
				return c.rank[want[i].n] < c.rank[want[j].n]
			})
			require.NotEmpty(t, want)
			for _, limit := range []int{len(want) + 10, 100, 3} {
				var got []cand
				c.visitBest(c.index(p, &s), limit, func(n NodeID, v int64) bool { got = append(got, cand{n, v}); return true })
				require.Equal(t, want[:min(limit, len(want))], got, "limit %d", limit)
			}
		})
	}
}

func TestModelLimit(t *testing.T) {
	var nodes []Node
	for i := 0; i <= MaxModels; i++ {
		nodes = append(nodes, Node{Name: fmt.Sprintf("n%d", i), CPUMilli: 1000, MemoryMiB: 1024,
			GPUs: []GPU{{Model: fmt.Sprintf("M%d", i)}}})
	}
	_, err := NewCluster(nil, nodes[:MaxModels])
	require.NoError(t, err)
	_, err = NewCluster(nil, nodes)
	require.ErrorContains(t, err, "at most 63")

	c, err := NewCluster(nil, nodes[:MaxModels])
	require.NoError(t, err)
	p, err := NewPolicy(c, "first-fit", Options{})
	require.NoError(t, err)
	for _, tc := range []struct {
		model string
		want  NodeID
	}{{"M62", 62}, {"M0", 0}, {"B200", NoNode}} {
		task := Task{GPUs: 1, GPUMilli: 1000, Models: []string{tc.model}}
		s, err := c.ShapeOf(&task)
		require.NoError(t, err)
		assert.Equal(t, tc.want, c.Select(p, &s, nil), tc.model)
	}
}

func TestReleaseRejectsBadAssignments(t *testing.T) {
	c, err := NewCluster(nil, []Node{{Name: "a", CPUMilli: 4000, MemoryMiB: 1000, GPUs: []GPU{{Model: "T4"}}}})
	require.NoError(t, err)
	require.NoError(t, c.Commit(Assign{Node: 0, Mask: 1, Take: 300, CPUMilli: 1000, Tag: 0}))
	for _, tc := range []struct {
		name string
		a    Assign
		want string
	}{
		{"no share", Assign{Node: 0, Mask: 1, Take: 0, Tag: 0}, "no share"},
		{"negative", Assign{Node: 0, CPUMilli: -5, Tag: -1}, "negative"},
		{"tag", Assign{Node: 0, Tag: 100}, "bad task tag"},
		{"too much", Assign{Node: 0, Mask: 1, Take: 400, Tag: 0}, "exceed capacity"},
		{"no task", Assign{Node: 0, Mask: 1, Take: 100, Tag: 3}, "no task with tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshotFree(c)
			require.ErrorContains(t, c.Release(tc.a), tc.want)
			require.Equal(t, before, snapshotFree(c))
		})
	}
	require.NoError(t, c.Release(Assign{Node: 0, Mask: 1, Take: 300, CPUMilli: 1000, Tag: 0}))
	checkCapacity(t, c, nil)
}

func TestFGDSeesModelsAddedLater(t *testing.T) {
	c, err := NewCluster(nil, []Node{{Name: "a", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "T4"}}}})
	require.NoError(t, err)
	f := &FGD{Target: []TargetType{{CPU: 1000, Milli: 1000, GPUs: 1, Models: "H100", Prob: 1}}}
	// No node has an H100: the T4's idle GPU is all fragment for the target.
	assert.Equal(t, 1000.0, f.Frag(c, 0))
	id, err := c.AddNode(Node{Name: "h", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "H100"}}})
	require.NoError(t, err)
	// The new H100 node serves the target: nothing of it is fragment.
	assert.Equal(t, 0.0, f.Frag(c, id))
}

// TestIndexUnderChurn forces what the short runs never reach: indexes
// evicted for want of room, a change log trimmed past them, node states and
// ranks changing and nodes joining mid-run. The indexed decision must stay
// the scan's throughout.
func TestIndexUnderChurn(t *testing.T) {
	for _, name := range []string{"best-fit", "fgd", "gpu-packing", "topology", "fgd-strand"} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, uint64(len(name))))
			pools, nodes := randomFleet(rng, 16)
			c, err := NewCluster(pools, nodes)
			require.NoError(t, err)
			c.idx.limit = 3 // many more shapes than indexes
			p, err := NewPolicy(c, name, Options{})
			require.NoError(t, err)
			scan := *p
			scan.Scan = true
			var live []Assign
			trimmed := false
			for step := 0; step < 4000; step++ {
				switch x := rng.IntN(100); {
				case x < 3:
					c.SetState(NodeID(rng.IntN(c.NumNodes())), []NodeState{NodeReady, NodeReady, NodeDraining, NodeDown}[rng.IntN(4)])
					continue
				case x < 4:
					perm := make([]NodeID, c.NumNodes())
					for i, j := range rng.Perm(len(perm)) {
						perm[i] = NodeID(j)
					}
					require.NoError(t, c.SetRanks(perm))
					continue
				case x == 4 && c.NumNodes() < 40:
					_, extra := randomFleet(rng, 1)
					extra[0].Name = fmt.Sprintf("late%d", step)
					extra[0].Pool = pools[0].Name
					_, err := c.AddNode(extra[0])
					require.NoError(t, err)
					continue
				case x < 40 && len(live) > 0:
					k := rng.IntN(len(live))
					require.NoError(t, c.Release(live[k]))
					live = append(live[:k], live[k+1:]...)
					continue
				}
				task := randomTask(rng)
				s, err := c.ShapeOf(&task)
				require.NoError(t, err)
				got := c.Select(p, &s, rng)
				want, _ := c.SelectScan(&scan, &s, rng)
				require.Equal(t, want, got, "step %d", step)
				if got != NoNode {
					a := c.assign(p, got, &s, rng)
					require.NoError(t, c.Commit(a))
					live = append(live, a)
				}
				trimmed = trimmed || c.logBase > 0
			}
			assert.True(t, trimmed, "the change log was trimmed at least once")
			assert.LessOrEqual(t, len(c.idx.m), 3)
			checkCapacity(t, c, live)
		})
	}
}
