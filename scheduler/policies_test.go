package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hand-made clusters, one set per policy of the fragmentation experiment
// (shared/FRAG-METHOD.md §4), each with an answer that the comment above it
// explains. The points the method marks as surprising [!] have a test each.

// ptNode is a node of a hand-made cluster: CPU in milli, GPU count, model.
type ptNode struct {
	cpu   int64
	gpus  int
	model string
	mem   int64 // MiB; 0 means 1 TiB
}

// ptCluster registers nodes n0, n1, ... with ample memory; rank = position.
func ptCluster(t *testing.T, nodes ...ptNode) *Cluster {
	t.Helper()
	var ns []Node
	for i, n := range nodes {
		model := n.model
		if model == "" {
			model = "T4"
		}
		gpus := make([]GPU, n.gpus)
		for g := range gpus {
			gpus[g] = GPU{Model: model}
		}
		mem := n.mem
		if mem == 0 {
			mem = 1 << 20
		}
		ns = append(ns, Node{Name: fmt.Sprintf("n%d", i), CPUMilli: n.cpu, MemoryMiB: mem, GPUs: gpus})
	}
	c, err := NewCluster(nil, ns)
	require.NoError(t, err)
	return c
}

// ptPolicy builds a policy with the experiment's normalisers.
func ptPolicy(t *testing.T, c *Cluster, name string, target ...TargetType) *Policy {
	t.Helper()
	p, err := NewPolicy(c, name, Options{CPUNorm: 128000, GPUNorm: 8000, Target: target})
	require.NoError(t, err)
	return p
}

// ptUse puts an existing task on a node: take milli on each GPU of mask.
func ptUse(t *testing.T, c *Cluster, n NodeID, cpu int64, mask uint64, take int32, tag int8) {
	t.Helper()
	require.NoError(t, c.Commit(Assign{Node: n, Mask: mask, Take: take, CPUMilli: cpu, Tag: tag}))
}

func ptShape(t *testing.T, c *Cluster, task Task) Shape {
	t.Helper()
	s, err := c.ShapeOf(&task)
	require.NoError(t, err)
	return s
}

// ptPlace places one task and returns its assignment.
func ptPlace(t *testing.T, c *Cluster, p *Policy, task Task, rng *rand.Rand) Assign {
	t.Helper()
	s := ptShape(t, c, task)
	a, ok := c.PlaceTask(p, &s, rng)
	require.True(t, ok, "task %+v found no node", task)
	return a
}

// ptSelect decides without placing, through the index and the scan, and
// requires both to agree.
func ptSelect(t *testing.T, c *Cluster, p *Policy, task Task) NodeID {
	t.Helper()
	s := ptShape(t, c, task)
	n := c.Select(p, &s, nil)
	ns, _ := c.SelectScan(p, &s, nil)
	require.Equal(t, ns, n, "index and scan disagree")
	return n
}

var (
	share500 = Task{GPUs: 1, GPUMilli: 500, CPUMilli: 1000}
	oneGPU   = Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 4000}
	cpuOnly  = Task{CPUMilli: 8000}
)

var scoredPolicies = []string{"best-fit", "dot-product", "gpu-clustering", "gpu-packing", "fgd", "fgd-strand"}

// §2.3 [!]: every tie goes to the feasible node of lowest rank. Two
// identical empty nodes tie under every scored policy; after the ranks are
// reversed, n1 (now rank 0) wins.
func TestPoliciesTieGoesToLowestRank(t *testing.T) {
	for _, name := range scoredPolicies {
		for _, task := range []Task{share500, oneGPU, cpuOnly} {
			t.Run(fmt.Sprintf("%s/%d-%d", name, task.GPUs, task.GPUMilli), func(t *testing.T) {
				c := ptCluster(t, ptNode{cpu: 64000, gpus: 4}, ptNode{cpu: 64000, gpus: 4}, ptNode{cpu: 64000, gpus: 4})
				require.NoError(t, c.SetRanks([]NodeID{1, 2, 0}))
				p := ptPolicy(t, c, name, TargetType{CPU: 4000, Milli: 1000, GPUs: 1, Prob: 1})
				assert.Equal(t, NodeID(1), ptSelect(t, c, p, task))
			})
		}
	}
}

// §4: a whole-GPU task takes the lowest-numbered completely free GPUs,
// under every policy. GPU 1 holds a share, so a 2-GPU task takes 0 and 2.
func TestPoliciesWholeGPUsLowestFree(t *testing.T) {
	for _, name := range append([]string{"random"}, scoredPolicies...) {
		t.Run(name, func(t *testing.T) {
			c := ptCluster(t, ptNode{cpu: 64000, gpus: 4})
			ptUse(t, c, 0, 1000, 0b0010, 300, 0)
			p := ptPolicy(t, c, name, TargetType{CPU: 4000, Milli: 1000, GPUs: 1, Prob: 1})
			a := ptPlace(t, c, p, Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 2000}, rand.New(rand.NewPCG(1, 2)))
			assert.Equal(t, uint64(0b0101), a.Mask)
			assert.Equal(t, int32(1000), a.Take)
		})
	}
}

// §3: a node that fails the filter is never chosen, and when one node alone
// is feasible it is chosen whatever its score: here only n2 has the model.
func TestPoliciesOnlyFeasibleNode(t *testing.T) {
	for _, name := range append([]string{"random"}, scoredPolicies...) {
		t.Run(name, func(t *testing.T) {
			c := ptCluster(t, ptNode{cpu: 64000, gpus: 8}, ptNode{cpu: 2000, gpus: 8, model: "V100"}, ptNode{cpu: 64000, gpus: 1, model: "V100"})
			p := ptPolicy(t, c, name)
			task := Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 4000, Models: []string{"V100"}}
			a := ptPlace(t, c, p, task, rand.New(rand.NewPCG(3, 4)))
			assert.Equal(t, NodeID(2), a.Node)
			s := ptShape(t, c, task)
			_, ok := c.PlaceTask(p, &s, rand.New(rand.NewPCG(3, 4)))
			assert.False(t, ok, "n1 lacks CPU and n2 is full: the task fails")
		})
	}
}

// Random: the node is uniform among the feasible ones (n1 lacks CPU and is
// never drawn), and a share's GPU is uniform among those with room, partly
// used or completely free alike.
func TestRandomPolicy(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 2}, ptNode{cpu: 500, gpus: 2}, ptNode{cpu: 64000, gpus: 2}, ptNode{cpu: 64000, gpus: 2})
	p := ptPolicy(t, c, "random")
	rng := rand.New(rand.NewPCG(42, 1))
	s := ptShape(t, c, share500)
	counts := map[NodeID]int{}
	const draws = 3000
	for range draws {
		counts[c.Select(p, &s, rng)]++
	}
	assert.Zero(t, counts[1])
	for _, n := range []NodeID{0, 2, 3} {
		assert.InDelta(t, draws/3, counts[n], 150, "node %d drawn %d times", n, counts[n])
	}

	// GPU 0 holds 700 (300 left), GPU 1 is free: a 200 share goes on
	// either, a 400 share only on GPU 1.
	ptUse(t, c, 0, 0, 0b01, 700, 0)
	gpus := map[uint64]int{}
	for range 2000 {
		mask, take := RandomPicker{}.Pick(c, 0, &Shape{GPUs: 1, Milli: 200, Tag: 0}, rng)
		require.Equal(t, int32(200), take)
		gpus[mask]++
	}
	assert.InDelta(t, 1000, gpus[0b01], 120)
	assert.InDelta(t, 1000, gpus[0b10], 120)
	for range 100 {
		mask, _ := RandomPicker{}.Pick(c, 0, &Shape{GPUs: 1, Milli: 400, Tag: 0}, rng)
		require.Equal(t, uint64(0b10), mask)
	}
}

// DotProduct: score = trunc(100 (1 − d/2)) with d the dot product of the
// free (CPU/128000, GPU/8000) and the request.
func TestDotProductScore(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 8})
	s := ptShape(t, c, Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 8000})
	// d = 0.5·0.0625 + 1·0.125 = 0.15625; 100·(1 − 0.078125) = 92.19.
	assert.Equal(t, int64(92), DotProduct{CPUNorm: 128000, GPUNorm: 8000}.Score(c, 0, &s))
}

// DotProduct [!]: the smallest product wins, the opposite of Tetris. n0 is
// nearly empty (large alignment with the request), n1 has little free, so
// n1 wins although n0 ranks first. Memory plays no part: n2 is n1 with a
// tenth of the memory and loses only on rank.
func TestDotProductSmallestWins(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 96000, gpus: 8}, ptNode{cpu: 32000, gpus: 2}, ptNode{cpu: 32000, gpus: 2, mem: 1 << 14})
	p := ptPolicy(t, c, "dot-product")
	task := Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 4000, MemoryMiB: 1000}
	assert.Equal(t, NodeID(1), ptSelect(t, c, p, task))
	require.NoError(t, c.SetRanks([]NodeID{2, 0, 1}))
	assert.Equal(t, NodeID(2), ptSelect(t, c, p, task))
	// A share goes on the "best" GPU: the least free that fits.
	ptUse(t, c, 2, 0, 0b10, 400, 0)
	a := ptPlace(t, c, p, share500, nil)
	assert.Equal(t, NodeID(2), a.Node)
	assert.Equal(t, uint64(0b10), a.Mask)
}

// GpuClustering: base = ⌊25 (8000 − gpuFree)/8000⌋, plus 75 for a node of
// the task's tag only, 50 for its tag among others, 25 for no GPU task, 0
// for other tags only.
func TestGPUClusteringScores(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 8}, ptNode{cpu: 64000, gpus: 8}, ptNode{cpu: 64000, gpus: 8}, ptNode{cpu: 64000, gpus: 8})
	ptUse(t, c, 0, 1000, 0b1, 500, 0)   // share only
	ptUse(t, c, 1, 1000, 0b1, 500, 0)   // share and 1-GPU
	ptUse(t, c, 1, 1000, 0b10, 1000, 1) //
	ptUse(t, c, 3, 1000, 0b11, 1000, 2) // 2-GPU only
	ptUse(t, c, 2, 8000, 0, 0, -1)      // a CPU-only task adds no tag
	g := GPUClustering{GPUNorm: 8000}
	s := ptShape(t, c, share500)
	want := []int64{
		25*500/8000 + 75,  // 1 + 75
		25*1500/8000 + 50, // 4 + 50
		0 + 25,
		25*2000/8000 + 0, // 6
	}
	for n, w := range want {
		assert.Equal(t, w, g.Score(c, NodeID(n), &s), "node %d", n)
	}
	// A CPU-only task scores 0 everywhere: the rank alone decides.
	cs := ptShape(t, c, cpuOnly)
	for n := range 4 {
		assert.Zero(t, g.Score(c, NodeID(n), &cs))
	}
	p := ptPolicy(t, c, "gpu-clustering")
	require.NoError(t, c.SetRanks([]NodeID{3, 2, 1, 0}))
	assert.Equal(t, NodeID(3), ptSelect(t, c, p, cpuOnly))
	assert.Equal(t, NodeID(0), ptSelect(t, c, p, share500))
}

// GpuClustering [!]: the 8000 of the base is fixed, so an empty 2-GPU node
// (base ⌊25·6000/8000⌋ = 18, score 43) beats an empty 8-GPU node (25).
func TestGPUClusteringFixedScale(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 8}, ptNode{cpu: 64000, gpus: 2})
	s := ptShape(t, c, share500)
	g := GPUClustering{GPUNorm: 8000}
	assert.Equal(t, int64(25), g.Score(c, 0, &s))
	assert.Equal(t, int64(43), g.Score(c, 1, &s))
	assert.Equal(t, NodeID(1), ptSelect(t, c, ptPolicy(t, c, "gpu-clustering"), share500))
}

// GpuPacking [!]: an empty node scores max(33 − G, G): 25 for 8 GPUs, 32
// for one. A node whose kept GPUs include a free one scores
// max(50 − free kept, 33); one whose kept GPUs are all partly used scores
// max(100 − ⌊Σ⌊free·100/1000⌋/10⌋, 50). CPU-only tasks score 0.
func TestGPUPackingScores(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 8}, ptNode{cpu: 64000, gpus: 1}, ptNode{cpu: 64000, gpus: 4}, ptNode{cpu: 64000, gpus: 4}, ptNode{cpu: 64000, gpus: 2})
	ptUse(t, c, 2, 1000, 0b0001, 400, 0) // GPU 0: 600 left
	ptUse(t, c, 3, 1000, 0b0001, 800, 0) // GPU 0: 200 left
	g := GPUPacking{}
	sh := ptShape(t, c, share500)
	two := ptShape(t, c, Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 1000})
	cases := []struct {
		node NodeID
		s    *Shape
		want int64
	}{
		{0, &sh, 25},  // empty 8-GPU node
		{1, &sh, 32},  // empty 1-GPU node
		{4, &sh, 31},  // empty 2-GPU node
		{2, &sh, 94},  // GPU 0 (600 free) kept: 100 − ⌊60/10⌋
		{3, &sh, 49},  // GPU 0 too small; GPU 1, free, kept: 50 − 1
		{3, &two, 48}, // two free GPUs kept
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, g.Score(c, tc.node, tc.s), "node %d, %d GPUs", tc.node, tc.s.GPUs)
	}
	cs := ptShape(t, c, cpuOnly)
	assert.Zero(t, g.Score(c, 2, &cs))
	a := ptPlace(t, c, ptPolicy(t, c, "gpu-packing"), share500, nil)
	assert.Equal(t, NodeID(2), a.Node)
	assert.Equal(t, uint64(0b0001), a.Mask)
}

// BestFit: raw = trunc(100 (1 − [½ (cpuFree − cpu)/128000 + ½ (gpuFree −
// gpu)/8000])), then min-max rescaled over the decision's candidates.
func TestBestFitScoreAndNormalize(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 8})
	s := ptShape(t, c, Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 8000})
	// left = ½·56000/128000 + ½·7000/8000 = 0.65625: raw 34.
	assert.Equal(t, int64(34), BestFit{CPUNorm: 128000, GPUNorm: 8000}.Score(c, 0, &s))
	for _, tc := range []struct{ in, want []int64 }{
		{[]int64{34, 50, 40}, []int64{0, 100, 37}},
		{[]int64{7, 7, 7}, []int64{0, 0, 0}},
		{[]int64{0, 100, 99, 1}, []int64{0, 100, 99, 1}},
	} {
		v := append([]int64(nil), tc.in...)
		BestFit{}.Normalize(v)
		assert.Equal(t, tc.want, v, "normalise %v", tc.in)
	}
}

// BestFit chooses the node left with the least free CPU and GPU: n1 holds
// a task already (raw 85 against 57 for n0 and 82 for n2, n3). After the
// rescaling, equal raw scores all become 0 and the rank decides: n2 and n3
// are identical, n3 ranks first.
func TestBestFitChoice(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 4}, ptNode{cpu: 64000, gpus: 4}, ptNode{cpu: 32000, gpus: 2}, ptNode{cpu: 32000, gpus: 2})
	ptUse(t, c, 1, 40000, 0b0011, 1000, 2)
	p := ptPolicy(t, c, "best-fit")
	bf := BestFit{CPUNorm: 128000, GPUNorm: 8000}
	s := ptShape(t, c, oneGPU)
	assert.Equal(t, []int64{57, 85, 82, 82}, []int64{bf.Score(c, 0, &s), bf.Score(c, 1, &s), bf.Score(c, 2, &s), bf.Score(c, 3, &s)})
	assert.Equal(t, NodeID(1), ptSelect(t, c, p, oneGPU))
	ptUse(t, c, 1, 20000, 0b1100, 1000, 2) // n1 is full now
	ptUse(t, c, 0, 32000, 0b1111, 1000, 4) // and so is n0
	require.NoError(t, c.SetRanks([]NodeID{3, 2, 1, 0}))
	assert.Equal(t, NodeID(3), ptSelect(t, c, p, oneGPU))
}

// shareTarget is a target of shares of 500 (p 0.1) and whole GPUs (p 0.9).
var shareTarget = []TargetType{
	{CPU: 1000, Milli: 500, GPUs: 1, Prob: 0.1},
	{CPU: 4000, Milli: 1000, GPUs: 1, Prob: 0.9},
}

// FGD's fragmentation (§5): the GPUs too small for a type that fits, all
// idle GPUs for a type that does not fit (CPU short, model excluded) and
// for CPU-only types [!].
func TestFGDFrag(t *testing.T) {
	target := []TargetType{
		{CPU: 4000, Milli: 1000, GPUs: 1, Prob: 0.5},
		{CPU: 1000, Milli: 500, GPUs: 1, Prob: 0.25},
		{CPU: 1000, Prob: 0.25},
	}
	c := ptCluster(t, ptNode{cpu: 8000, gpus: 2}, ptNode{cpu: 4500, gpus: 2}, ptNode{cpu: 8000, gpus: 2, model: "V100"}, ptNode{cpu: 8000})
	for n := range 3 {
		ptUse(t, c, NodeID(n), 500, 0b10, 700, 0) // free [1000, 300]
	}
	ptUse(t, c, 1, 1000, 0, 0, -1) // n1: 3000 CPU left, short for the whole GPU
	withModel := append([]TargetType(nil), target...)
	withModel[0].Models = "T4|A10" // n2 carries V100
	cases := []struct {
		name   string
		node   NodeID
		target []TargetType
		want   float64
	}{
		// 0.5·300 (too small for a GPU) + 0.25·300 (too small for 500) + 0.25·1300
		{"fits", 0, target, 150 + 75 + 325},
		// the whole-GPU type lacks CPU: 0.5·1300
		{"lacks CPU", 1, target, 650 + 75 + 325},
		// the whole-GPU type excludes V100: 0.5·1300
		{"model", 2, withModel, 650 + 75 + 325},
		{"no GPU", 3, target, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &FGD{Target: tc.target}
			assert.InDelta(t, tc.want, f.Frag(c, tc.node), 1e-9)
		})
	}
}

// FGD's score is trunc(100 σ(Δ/1000)) [!]: Δ = 0 gives exactly 50, and one
// point covers about 40 milli-GPU of Δ.
func TestFGDSigmoidScore(t *testing.T) {
	for _, tc := range []struct {
		delta float64
		want  int64
	}{
		{0, 50}, {39, 50}, {41, 51}, {-1, 49}, {-40, 49}, {-42, 48}, {1000, 73}, {-8000, 0}, {8000, 99},
	} {
		assert.Equal(t, tc.want, sigmoidScore(tc.delta), "Δ = %g", tc.delta)
	}
}

// FGD [!]: nodes whose Δ truncate to the same integer tie, and the rank
// decides, not the better Δ. Placing a 300 share on n0 ([700] free) gives
// Δ = 230, on n1 ([600]) Δ = 240: both score 55, so n0 (rank 0) wins.
// fgd-strand compares exact deltas and takes n1.
func TestFGDTruncationTies(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 64000, gpus: 1}, ptNode{cpu: 64000, gpus: 1})
	ptUse(t, c, 0, 1000, 0b1, 300, 0)
	ptUse(t, c, 1, 1000, 0b1, 400, 0)
	task := Task{GPUs: 1, GPUMilli: 300, CPUMilli: 1000}
	s := ptShape(t, c, task)
	f := &FGD{Target: shareTarget}
	assert.Equal(t, int64(55), f.Score(c, 0, &s))
	assert.Equal(t, int64(55), f.Score(c, 1, &s))
	assert.Equal(t, NodeID(0), ptSelect(t, c, ptPolicy(t, c, "fgd", shareTarget...), task))
	assert.Equal(t, NodeID(1), ptSelect(t, c, ptPolicy(t, c, "fgd-strand", shareTarget...), task))
}

// FGD [!] picks a share's GPU by its own trials, not by "best". With a
// target of 500 shares only, on [1000, 600] a 500 share on GPU 1 would
// leave 100, too small for the target (Δ = −100, score 47); on GPU 0 it
// leaves [500, 600], all usable (Δ = 0, score 50). FGD takes GPU 0, where
// best-fit and gpu-packing take the fuller GPU 1.
func TestFGDShareGPUChoice(t *testing.T) {
	target := []TargetType{{CPU: 1000, Milli: 500, GPUs: 1, Prob: 1}}
	for _, tc := range []struct {
		policy string
		mask   uint64
	}{{"fgd", 0b01}, {"fgd-strand", 0b01}, {"best-fit", 0b10}, {"gpu-packing", 0b10}} {
		t.Run(tc.policy, func(t *testing.T) {
			c := ptCluster(t, ptNode{cpu: 64000, gpus: 2})
			ptUse(t, c, 0, 1000, 0b10, 400, 0)
			a := ptPlace(t, c, ptPolicy(t, c, tc.policy, target...), share500, nil)
			assert.Equal(t, tc.mask, a.Mask)
		})
	}
}

// FGD: a CPU-only task can only lower the fit of target tasks, so its best
// score is 50 (Δ = 0). n0 ranks first, but taking 8 cores there leaves 2,
// too few for the whole-GPU type: Δ < 0. n1 keeps Δ = 0 and wins.
func TestFGDCPUOnly(t *testing.T) {
	c := ptCluster(t, ptNode{cpu: 10000, gpus: 2}, ptNode{cpu: 64000, gpus: 2})
	s := ptShape(t, c, cpuOnly)
	f := &FGD{Target: shareTarget}
	assert.Less(t, f.Score(c, 0, &s), int64(50))
	assert.Equal(t, int64(50), f.Score(c, 1, &s))
	assert.Equal(t, NodeID(1), ptSelect(t, c, ptPolicy(t, c, "fgd", shareTarget...), cpuOnly))
}

// fgd-strand: FGD cannot see that a CPU-only task on a GPU-dense node
// strands GPUs later. n0 has 8 GPUs and 96 cores; the target asks 10 CPU
// milli per GPU milli, so 24 cores taken leave 72, enough for 7.2 GPUs: 800
// milli stranded. n1 (2 GPUs, 104 cores) strands nothing. Both keep every
// target type fitting, so FGD scores both 50 and takes n0 by rank;
// fgd-strand takes n1.
func TestFGDStrandAvoidsStrandingCPU(t *testing.T) {
	target := []TargetType{{CPU: 10000, Milli: 1000, GPUs: 1, Prob: 1}}
	c := ptCluster(t, ptNode{cpu: 96000, gpus: 8}, ptNode{cpu: 104000, gpus: 2})
	task := Task{CPUMilli: 24000}
	s := ptShape(t, c, task)
	fs := &FGDStrand{FGD: FGD{Target: target}}
	assert.Equal(t, int64(-800*strandScale), fs.Score(c, 0, &s))
	assert.Equal(t, int64(0), fs.Score(c, 1, &s))
	assert.Equal(t, NodeID(0), ptSelect(t, c, ptPolicy(t, c, "fgd", target...), task))
	assert.Equal(t, NodeID(1), ptSelect(t, c, ptPolicy(t, c, "fgd-strand", target...), task))
	// Without GPU types in the target the term is off.
	none := &FGDStrand{FGD: FGD{Target: []TargetType{{CPU: 1000, Prob: 1}}}}
	assert.Equal(t, int64(0), none.Score(c, 0, &s))
}
