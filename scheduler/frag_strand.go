package scheduler

import (
	"math"
	"math/rand/v2"
)

// FGDStrand is petite's own fragmentation-aware policy. It scores a node
// by the exact (untruncated) change of an extended fragmentation measure:
//
//	F'(n) = F(n) + max(0, idle(n) − cpuFree(n)/ρ)
//
// F is FGD's fragmentation against the target workload (FRAG-METHOD §5),
// idle the node's free GPU milli, and ρ the CPU milli that the target's GPU
// tasks ask per milli-GPU (their probability-weighted CPU over their
// probability-weighted GPU). The second term is the GPU capacity that the
// node's free CPU can no longer feed at the workload's usual ratio: F sees
// CPU only as the threshold of one target task, so it cannot tell that a
// CPU-only task on a GPU-dense node will strand GPUs once a few more tasks
// arrive. Ties (exact equal deltas) go to the lowest node rank, which keeps
// FGD's stacking of equal-score tasks. A share goes on the device whose
// trial gives the best delta, the lowest number on a tie.
//
// It knows what FGD knows: the task being placed, the current state and the
// target workload; nothing about future arrivals. docs/frag.md tells why it
// works and where it does not.
type FGDStrand struct {
	FGD
	rho  float64  // CPU milli per GPU milli of the target's GPU types; 0: no term
	rhoC *Cluster // the cluster rho was derived for
}

func newFGDStrand(_ *Cluster, o Options) *Policy {
	f := &FGDStrand{FGD: FGD{Target: o.Target}}
	return &Policy{Scorers: []Weighted{{Scorer: f, Weight: 1}}, Picker: f}
}

// Name implements Scorer.
func (*FGDStrand) Name() string { return "fgd-strand" }

// strandScale turns a delta in milli-GPU into the integer score: thousandths
// of a milli-GPU, far below any difference that matters.
const strandScale = 1000

// prepare compiles the target and derives ρ from it.
func (f *FGDStrand) prepare(c *Cluster) {
	f.FGD.prepare(c)
	if f.rhoC == c {
		return
	}
	f.rhoC = c
	var cpu, gpu float64
	for _, t := range f.types {
		if t.milli > 0 {
			cpu += t.p * float64(t.cpu)
			gpu += t.p * float64(t.milli) * float64(t.gpus)
		}
	}
	f.rho = 0
	if cpu > 0 && gpu > 0 {
		f.rho = cpu / gpu
	}
}

// strand is the idle GPU milli that cpu milli of free CPU cannot feed at ρ.
func (f *FGDStrand) strand(cpu int64, free []int32) float64 {
	if f.rho == 0 {
		return 0
	}
	var idle int64
	for _, x := range free {
		idle += int64(x)
	}
	return max(0, float64(idle)-float64(cpu)/f.rho)
}

// delta is F'(before) − F'(after) for the task on node n and, for a share,
// the device whose trial gives the best delta (lowest number on a tie).
func (f *FGDStrand) delta(c *Cluster, n NodeID, s *Shape) (float64, int32) {
	f.prepare(c)
	r := &c.nodes[n]
	var buf [MaxGPUsPerNode]int32
	live, excl := c.devs(n)
	free := buf[:len(live)]
	copy(free, live)
	before := f.nodeFrag(c, n) + f.strand(r.cpuFree, free)
	cpu := r.cpuFree - s.CPU
	after := func() float64 { return f.frag(cpu, free, r.model) + f.strand(cpu, free) }
	switch {
	case s.GPUs == 0:
		return before - after(), -1
	case !s.Sharing():
		takeDevices(free, excl, s)
		return before - after(), -1
	}
	best, dev := math.Inf(-1), int32(-1)
	for i := range free {
		x := free[i]
		if x < s.Milli {
			continue
		}
		free[i] = x - shareTakes(excl[i], x, s.Milli)
		if d := before - after(); d > best {
			best, dev = d, int32(i)
		}
		free[i] = x
	}
	return best, dev
}

// Score implements Scorer: the delta in thousandths of a milli-GPU.
func (f *FGDStrand) Score(c *Cluster, n NodeID, s *Shape) int64 {
	d, _ := f.delta(c, n, s)
	return int64(math.Round(d * strandScale))
}

// Pick implements Picker: whole GPUs on the lowest-numbered free devices; a
// share on the device of the best delta.
func (f *FGDStrand) Pick(c *Cluster, n NodeID, s *Shape, _ *rand.Rand) (uint64, int32) {
	return pickTrial(c, n, s, func() int32 { _, dev := f.delta(c, n, s); return dev })
}

func (*FGDStrand) stateOnly() {}
