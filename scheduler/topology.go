package scheduler

import "math/rand/v2"

func newTopology(_ *Cluster, o Options) *Policy {
	return &Policy{
		Scorers: []Weighted{
			{Scorer: IslandFit{}, Weight: 1000},
			{Scorer: Tightness{CPUNorm: o.CPUNorm, GPUNorm: o.GPUNorm}, Weight: 1},
		},
		Picker:    IslandPicker{},
		GangLocal: true,
	}
}

// islandFree counts the completely free devices of each NVLink island of a
// node, returning the smallest island count that still holds need devices
// (or -1) and the largest count.
func islandFree(c *Cluster, n NodeID, need int32) (tightest, largest int32) {
	r := &c.nodes[n]
	var counts [MaxGPUsPerNode]int32
	maxIsland := int16(0)
	for i := int32(0); i < r.gpuN; i++ {
		g := r.gpuOff + i
		isl := c.gpuIsland[g]
		if isl < 0 || int(isl) >= MaxGPUsPerNode {
			isl = 0
		}
		maxIsland = max(maxIsland, isl)
		if c.wholeFree(g) {
			counts[isl]++
		}
	}
	tightest = -1
	for i := int16(0); i <= maxIsland; i++ {
		k := counts[i]
		largest = max(largest, k)
		if k >= need && (tightest < 0 || k < tightest) {
			tightest = k
		}
	}
	return tightest, largest
}

// IslandFit scores 100 a node where a multi-GPU task fits inside one NVLink
// island, minus how many free devices that island would have left, so the
// tightest island wins; nodes that need several islands score 0.
type IslandFit struct{}

// Name implements Scorer.
func (IslandFit) Name() string { return "island-fit" }

// Score implements Scorer.
func (IslandFit) Score(c *Cluster, n NodeID, s *Shape) int64 {
	if s.GPUs < 2 || s.Sharing() {
		return 0
	}
	t, _ := islandFree(c, n, s.GPUs)
	if t < 0 {
		return 0
	}
	return int64(100 - (t - s.GPUs))
}

// IslandPicker takes a multi-GPU task's devices from the tightest NVLink
// island that holds them all; failing that, from the fullest-free islands
// first so the task spans as few islands as it can.
type IslandPicker struct{}

// Pick implements Picker.
func (IslandPicker) Pick(c *Cluster, n NodeID, s *Shape, _ *rand.Rand) (uint64, int32) {
	if s.Sharing() {
		return pickDefault(c, n, s)
	}
	r := &c.nodes[n]
	var counts [MaxGPUsPerNode]int32
	for i := int32(0); i < r.gpuN; i++ {
		g := r.gpuOff + i
		if c.wholeFree(g) {
			counts[islandOf(c, g)]++
		}
	}
	var mask uint64
	need := s.GPUs
	for need > 0 {
		// The tightest island that holds what is still needed, else the largest.
		pick, pickN := -1, int32(0)
		for isl, k := range counts {
			if k == 0 {
				continue
			}
			better := pick < 0 ||
				(k >= need && (pickN < need || k < pickN)) ||
				(k < need && pickN < need && k > pickN)
			if better {
				pick, pickN = isl, k
			}
		}
		if pick < 0 {
			break
		}
		for i := int32(0); i < r.gpuN && need > 0 && counts[pick] > 0; i++ {
			g := r.gpuOff + i
			if islandOf(c, g) == pick && mask&(1<<uint(i)) == 0 && c.wholeFree(g) {
				mask |= 1 << uint(i)
				counts[pick]--
				need--
			}
		}
		counts[pick] = 0
	}
	return mask, MilliPerGPU
}

func islandOf(c *Cluster, g int32) int {
	isl := int(c.gpuIsland[g])
	if isl < 0 || isl >= MaxGPUsPerNode {
		return 0
	}
	return isl
}

// Tightness is best fit's raw score without its per-decision rescaling, so
// that it composes with other scorers under the score index.
type Tightness struct{ CPUNorm, GPUNorm int64 }

// Name implements Scorer.
func (Tightness) Name() string { return "tightness" }

// Score implements Scorer.
func (t Tightness) Score(c *Cluster, n NodeID, s *Shape) int64 {
	return BestFit(t).Score(c, n, s)
}
