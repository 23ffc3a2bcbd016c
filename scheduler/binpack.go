package scheduler

import "math/rand/v2"

// Each scorer below is written to the exact rule of the FGD artifact
// (shared/FRAG-METHOD.md §4): integer scores truncated toward zero, free
// amounts taken before the placement.

// newRandom draws a feasible node uniformly; a share goes on a device drawn
// uniformly among those with room.
func newRandom(*Cluster, Options) *Policy {
	return &Policy{Uniform: true, Picker: RandomPicker{}}
}

// newFirstFit scores every node alike, so the lowest rank wins.
func newFirstFit(*Cluster, Options) *Policy {
	return &Policy{Scorers: []Weighted{{Scorer: Zero{}, Weight: 1}}}
}

func newBestFit(_ *Cluster, o Options) *Policy {
	return &Policy{Scorers: []Weighted{{Scorer: BestFit{CPUNorm: o.CPUNorm, GPUNorm: o.GPUNorm}, Weight: 1}}}
}

func newSpread(_ *Cluster, o Options) *Policy {
	return &Policy{Scorers: []Weighted{{Scorer: Spread{CPUNorm: o.CPUNorm, GPUNorm: o.GPUNorm}, Weight: 1}}}
}

func newDotProduct(_ *Cluster, o Options) *Policy {
	return &Policy{Scorers: []Weighted{{Scorer: DotProduct{CPUNorm: o.CPUNorm, GPUNorm: o.GPUNorm}, Weight: 1}}}
}

func newGPUClustering(_ *Cluster, o Options) *Policy {
	return &Policy{Scorers: []Weighted{{Scorer: GPUClustering{GPUNorm: o.GPUNorm}, Weight: 1}}}
}

func newGPUPacking(*Cluster, Options) *Policy {
	return &Policy{Scorers: []Weighted{{Scorer: GPUPacking{}, Weight: 1}}}
}

// Zero scores every node 0: the rank alone decides (first fit).
type Zero struct{}

// Name implements Scorer.
func (Zero) Name() string { return "zero" }

// Score implements Scorer.
func (Zero) Score(*Cluster, NodeID, *Shape) int64 { return 0 }

// BestFit prefers the node left with the least free CPU and GPU after the
// placement, each scaled by its normaliser and weighted one half. Its raw
// scores are min-max rescaled to 0..100 over the candidates of a decision.
type BestFit struct{ CPUNorm, GPUNorm int64 }

// Name implements Scorer.
func (BestFit) Name() string { return "best-fit" }

// Score implements Scorer.
func (b BestFit) Score(c *Cluster, n NodeID, s *Shape) int64 {
	r := &c.nodes[n]
	left := 0.5*float64(r.cpuFree-s.CPU)/float64(b.CPUNorm) + 0.5*float64(r.gpuFreeSum-s.GPUMilli())/float64(b.GPUNorm)
	return int64(100 * (1 - left))
}

// Normalize rescales to 0..100 in integer arithmetic; all equal gives all 0.
// For raw scores within a span of 100 this is strictly monotone, so the
// winner never changes.
func (BestFit) Normalize(v []int64) { minMax(v) }

func minMax(v []int64) {
	if len(v) == 0 {
		return
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	for i, x := range v {
		if hi == lo {
			v[i] = 0
		} else {
			v[i] = (x - lo) * 100 / (hi - lo)
		}
	}
}

// Spread is worst fit: the node left with the most free CPU and GPU.
type Spread struct{ CPUNorm, GPUNorm int64 }

// Name implements Scorer.
func (Spread) Name() string { return "spread" }

// Score implements Scorer.
func (sp Spread) Score(c *Cluster, n NodeID, s *Shape) int64 {
	r := &c.nodes[n]
	left := 0.5*float64(r.cpuFree-s.CPU)/float64(sp.CPUNorm) + 0.5*float64(r.gpuFreeSum-s.GPUMilli())/float64(sp.GPUNorm)
	return int64(100 * left)
}

// DotProduct scores the alignment of the node's free (CPU, GPU) vector with
// the request, both scaled by the largest node shape. As the FGD artifact
// runs it, the smallest product wins: score = trunc(100 (1 - d/2)).
type DotProduct struct{ CPUNorm, GPUNorm int64 }

// Name implements Scorer.
func (DotProduct) Name() string { return "dot-product" }

// Score implements Scorer.
func (d DotProduct) Score(c *Cluster, n NodeID, s *Shape) int64 {
	r := &c.nodes[n]
	cn, gn := float64(d.CPUNorm), float64(d.GPUNorm)
	dot := float64(r.cpuFree)/cn*(float64(s.CPU)/cn) + float64(r.gpuFreeSum)/gn*(float64(s.GPUMilli())/gn)
	return int64(100 * (1 - dot/2))
}

// GPUClustering keeps tasks of one GPU shape together: a node whose tasks
// all share the task's tag is best, one that also has it next, an empty
// node after, and a node of other tags last; a base term adds how full the
// node is against GPUNorm (the method fixes it at 8000, 8 GPUs, which
// Options.GPUNorm sets; by default it is the largest node, so 16-GPU nodes
// keep the base in 0..25).
type GPUClustering struct{ GPUNorm int64 }

// Name implements Scorer.
func (GPUClustering) Name() string { return "gpu-clustering" }

// Score implements Scorer.
func (g GPUClustering) Score(c *Cluster, n NodeID, s *Shape) int64 {
	if s.Tag < 0 {
		return 0
	}
	r := &c.nodes[n]
	base := 25 * (g.GPUNorm - r.gpuFreeSum) / g.GPUNorm
	bit := uint64(1) << uint(s.Tag)
	switch {
	case r.tags == bit:
		return base + 75
	case r.tags&bit != 0:
		return base + 50
	case r.tags == 0:
		return base + 25
	}
	return base
}

// GPUPacking fills partly used GPUs first, then partly used nodes, then
// empty nodes (with the artifact's odd floor for empty ones). A free GPU is
// a whole one (devices.go's rule): a MIG instance, a full-size 7g one too,
// counts by its free amount as a partly used GPU does, and a whole-GPU task
// keeps only whole GPUs.
type GPUPacking struct{}

// Name implements Scorer.
func (GPUPacking) Name() string { return "gpu-packing" }

// Score implements Scorer.
func (GPUPacking) Score(c *Cluster, n NodeID, s *Shape) int64 {
	if s.GPUs == 0 {
		return 0
	}
	r := &c.nodes[n]
	free, excl := c.devs(n)
	if r.fullFree == r.gpuN {
		ff := int64(r.fullFree)
		return max(33-ff, ff)
	}
	// Walk the devices by increasing free amount (lower number first among
	// equals) and keep the first GPUs that fit.
	var order [MaxGPUsPerNode]int32
	k := sortedByFree(free, order[:0])
	kept, fullKept, sum := int32(0), int64(0), int64(0)
	for _, i := range k {
		if kept == s.GPUs {
			break
		}
		f := free[i]
		if f < s.Milli || !s.Sharing() && !wholeDev(excl[i], f) {
			continue
		}
		kept++
		if wholeDev(excl[i], f) {
			fullKept++
		}
		sum += int64(f) * 100 / MilliPerGPU
	}
	if fullKept > 0 {
		return max(50-fullKept, 33)
	}
	return max(100-sum/10, 50)
}

// sortedByFree appends the device numbers ordered by free amount, then by
// number (insertion sort: at most a few dozen devices, no allocation).
func sortedByFree(free []int32, out []int32) []int32 {
	for i := range free {
		out = append(out, int32(i))
		for j := len(out) - 1; j > 0 && free[out[j]] < free[out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// RandomPicker puts a share on a device drawn uniformly among those with
// room, and whole GPUs on the lowest-numbered free devices.
type RandomPicker struct{}

// Pick implements Picker.
func (RandomPicker) Pick(c *Cluster, n NodeID, s *Shape, rng *rand.Rand) (uint64, int32) {
	if !s.Sharing() {
		return pickDefault(c, n, s)
	}
	r := &c.nodes[n]
	k := 0
	for i := int32(0); i < r.gpuN; i++ {
		if c.gpuFree[r.gpuOff+i] >= s.Milli {
			k++
		}
	}
	if k == 0 {
		return 0, 0
	}
	j := rng.IntN(k)
	for i := int32(0); i < r.gpuN; i++ {
		if c.gpuFree[r.gpuOff+i] >= s.Milli {
			if j == 0 {
				return 1 << uint(i), shareTakes(c.gpuExcl[r.gpuOff+i], c.gpuFree[r.gpuOff+i], s.Milli)
			}
			j--
		}
	}
	return 0, 0
}

// costWeightScale turns a price per GPU-hour into tier steps (a tenth of a cent).
const costWeightScale = 1000

// CostScore is the cost-aware pool choice, used as a tier: owned capacity
// (onprem, outposts) before cloud, and cheaper cloud before dearer.
type CostScore struct{}

// Name implements Scorer.
func (CostScore) Name() string { return "cost" }

// Score implements Scorer.
func (CostScore) Score(c *Cluster, n NodeID, _ *Shape) int64 {
	p := &c.pools[c.nodes[n].pool]
	const top = 1<<20 - 1
	if p.Kind.Owned() {
		return top
	}
	return max(top-1-int64(p.PricePerGPUHour*costWeightScale), 0)
}

func (Zero) stateOnly()          {}
func (BestFit) stateOnly()       {}
func (Spread) stateOnly()        {}
func (DotProduct) stateOnly()    {}
func (GPUClustering) stateOnly() {}
func (GPUPacking) stateOnly()    {}
func (CostScore) stateOnly()     {}
func (*FGD) stateOnly()          {}
func (*FGD) costly()             {}
