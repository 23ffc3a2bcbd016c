package scheduler

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
)

// TargetType is one kind of task of the expected workload that
// fragmentation is measured against (FRAG-METHOD §6), with its share.
type TargetType struct {
	CPU    int64   // milli-CPU request
	Milli  int32   // milli-GPU on each device; 0 for a CPU-only type
	GPUs   int32   // devices
	Models string  // accepted models joined by "|"; empty accepts any
	Count  int     // how many tasks of the trace have this type
	Prob   float64 // share of the type in the kept workload
}

// TargetFromCounts builds the target workload from counted task types: the
// most frequent types, largest first (equal counts by CPU, GPU share, GPU
// count, then model string, larger first), kept until they cover 95% of all
// tasks, with probabilities renormalised over the kept types.
func TargetFromCounts(types []TargetType) []TargetType {
	ts := slices.Clone(types)
	slices.SortStableFunc(ts, func(a, b TargetType) int {
		return cmp.Or(
			cmp.Compare(b.Count, a.Count),
			cmp.Compare(b.CPU, a.CPU),
			cmp.Compare(b.Milli, a.Milli),
			cmp.Compare(b.GPUs, a.GPUs),
			strings.Compare(b.Models, a.Models),
		)
	})
	total := 0
	for _, t := range ts {
		total += t.Count
	}
	kept, sum := 0, 0
	for _, t := range ts {
		if sum*100 >= 95*total {
			break
		}
		sum += t.Count
		kept++
	}
	ts = ts[:kept]
	for i := range ts {
		ts[i].Prob = float64(ts[i].Count) / float64(sum)
	}
	return ts
}

// defaultTarget is the expected workload when none is given: a mix of
// whole-GPU gangs, shares and CPU-only tasks.
func defaultTarget() []TargetType {
	return []TargetType{
		{CPU: 8000, Milli: 1000, GPUs: 1, Count: 30},
		{CPU: 4000, Milli: 500, GPUs: 1, Count: 20},
		{CPU: 2000, Milli: 250, GPUs: 1, Count: 10},
		{CPU: 16000, Milli: 1000, GPUs: 2, Count: 10},
		{CPU: 32000, Milli: 1000, GPUs: 4, Count: 10},
		{CPU: 64000, Milli: 1000, GPUs: 8, Count: 10},
		{CPU: 4000, Count: 10},
	}
}

// fgdType is a target type compiled against one cluster's model ids.
type fgdType struct {
	cpu    int64
	milli  int32
	gpus   int32
	models uint64
	p      float64
	share  int // index of milli in FGD.shares (GPU types only)
}

// FGD is fragmentation gradient descent (Weng et al., ATC'23): it scores a
// node by how much placing the task grows the node's fragmentation, the GPU
// capacity that tasks of the expected workload could not use. Scores are
// trunc(100 σ(Δ/1000)) with Δ = F(before) − F(after) in milli-GPU.
//
// An FGD value caches per-node fragmentation for the last cluster it scored;
// use one value per cluster.
type FGD struct {
	Target []TargetType

	c       *Cluster
	nmodels int // the models of c when the target was compiled
	types   []fgdType
	// shares are the distinct per-GPU shares of the GPU types; frag counts
	// the devices that hold each once, whatever the number of types.
	shares      []int32
	fits, small []int64
	fnode       []float64 // F of each node's current state
	fvalid      []uint64  // node seq+1 that fnode was computed at
}

// Name implements Scorer.
func (*FGD) Name() string { return "fgd" }

func newFGD(_ *Cluster, o Options) *Policy {
	f := &FGD{Target: o.Target}
	return &Policy{Scorers: []Weighted{{Scorer: f, Weight: 1}}, Picker: f}
}

// prepare compiles the target workload for c and sizes the caches.
func (f *FGD) prepare(c *Cluster) {
	if f.c == c && len(f.fnode) == len(c.nodes) && f.nmodels == len(c.models) {
		return
	}
	if f.c != c || f.nmodels != len(c.models) {
		f.nmodels = len(c.models)
		target := f.Target
		if len(target) == 0 {
			target = TargetFromCounts(defaultTarget())
		}
		f.types, f.shares = f.types[:0], f.shares[:0]
		for _, t := range target {
			ft := fgdType{cpu: t.CPU, milli: t.Milli, gpus: t.GPUs, p: t.Prob}
			if t.Milli > 0 && t.Models != "" {
				ft.models = c.ModelMask(strings.Split(t.Models, "|"))
			}
			if t.Milli > 0 {
				ft.share = slices.Index(f.shares, t.Milli)
				if ft.share < 0 {
					ft.share = len(f.shares)
					f.shares = append(f.shares, t.Milli)
				}
			}
			f.types = append(f.types, ft)
		}
		f.fits = make([]int64, len(f.shares))
		f.small = make([]int64, len(f.shares))
		f.c = c
	}
	f.fnode = make([]float64, len(c.nodes))
	f.fvalid = make([]uint64, len(c.nodes))
}

// Frag is the fragmentation of a node's current state against the
// target workload, in milli-GPU (FRAG-METHOD §5).
func (f *FGD) Frag(c *Cluster, n NodeID) float64 {
	f.prepare(c)
	return f.nodeFrag(c, n)
}

func (f *FGD) nodeFrag(c *Cluster, n NodeID) float64 {
	r := &c.nodes[n]
	if f.fvalid[n] == r.seq+1 {
		return f.fnode[n]
	}
	v := f.frag(r.cpuFree, c.gpuFree[r.gpuOff:r.gpuOff+r.gpuN], r.model)
	f.fnode[n], f.fvalid[n] = v, r.seq+1
	return v
}

// frag computes F for free CPU cpu and device free amounts free.
func (f *FGD) frag(cpu int64, free []int32, model int32) float64 {
	var idle int64
	for _, x := range free {
		idle += int64(x)
	}
	if idle == 0 {
		return 0
	}
	// For each distinct share: the devices that hold it and the free
	// milli of those that do not.
	for j, m := range f.shares {
		var cnt, small int64
		for _, x := range free {
			if x >= m {
				cnt++
			} else {
				small += int64(x)
			}
		}
		f.fits[j], f.small[j] = cnt, small
	}
	bit := uint64(1) << uint(max(model, 0))
	fi := float64(idle)
	var sum float64
	for i := range f.types {
		t := &f.types[i]
		if t.milli == 0 || (t.models != 0 && t.models&bit == 0) {
			sum += t.p * fi
			continue
		}
		if f.fits[t.share] >= int64(t.gpus) && cpu >= t.cpu {
			sum += t.p * float64(f.small[t.share])
		} else {
			sum += t.p * fi
		}
	}
	return sum
}

// sigmoidScore is trunc(100 σ(Δ/1000)), read from a table of unit bins of
// Δ where a bin lies wholly between two of the points where the score
// steps (sigmoidExact found them), and computed near those points and
// outside the table. It returns what sigmoidExact returns.
func sigmoidScore(delta float64) int64 {
	if delta == 0 {
		// A placement that leaves F as it was, the commonest Δ, sits on
		// the step to 50 (σ(0) = 1/2 exactly); the table leaves that bin.
		return 50
	}
	sigmoidOnce.Do(sigmoidInit)
	if x := delta - sigmoidLo; x >= 0 && x < sigmoidBins {
		if k := sigmoidBin[int(x)]; k >= 0 {
			return int64(k)
		}
	}
	return sigmoidExact(delta)
}

// sigmoidExact computes the score, the rule of the FGD artifact.
func sigmoidExact(delta float64) int64 {
	return int64(100 / (1 + math.Exp(-delta/1000)))
}

// The score table: bin b holds the score of Δ in [sigmoidLo+b,
// sigmoidLo+b+1), or -1 where that is not one score clear of sigmoidGuard
// around the steps. Past ±4·10^4 the score is 0 or 100 (sigmoidExact).
const (
	sigmoidLo    = -40960
	sigmoidBins  = 2 * 40960
	sigmoidGuard = 1e-6
)

var (
	sigmoidOnce sync.Once
	sigmoidBin  []int8
)

// sigmoidInit finds, for each score k from 1 to 100, the least Δ that
// scores k (by bisection over the float64 values, the score being
// monotone) and fills the table.
func sigmoidInit() {
	var cut [102]float64 // cut[k]: the least Δ scoring k; cut[0] -inf, cut[101] +inf
	cut[0], cut[101] = math.Inf(-1), math.Inf(1)
	for k := int64(1); k <= 100; k++ {
		lo, hi := -1e6, 1e6 // sigmoidExact(lo) < k <= sigmoidExact(hi)
		for {
			mid := lo + (hi-lo)/2
			if mid == lo || mid == hi {
				break
			}
			if sigmoidExact(mid) >= k {
				hi = mid
			} else {
				lo = mid
			}
		}
		cut[k] = hi
	}
	sigmoidBin = make([]int8, sigmoidBins)
	k := 0
	for b := range sigmoidBin {
		x0 := float64(sigmoidLo + b)
		for k < 100 && cut[k+1] <= x0+sigmoidGuard {
			k++
		}
		// [x0, x0+1) scores k when it starts past cut[k] and ends before
		// cut[k+1], each with the guard to spare.
		if x0-cut[k] >= sigmoidGuard && cut[k+1]-(x0+1) >= sigmoidGuard {
			sigmoidBin[b] = int8(k)
		} else {
			sigmoidBin[b] = -1
		}
	}
}

// Score implements Scorer.
func (f *FGD) Score(c *Cluster, n NodeID, s *Shape) int64 {
	score, _ := f.score(c, n, s)
	return score
}

// score returns the node's score and, for a share, the lowest-numbered
// device that reaches it.
func (f *FGD) score(c *Cluster, n NodeID, s *Shape) (int64, int32) {
	f.prepare(c)
	r := &c.nodes[n]
	before := f.nodeFrag(c, n)
	var buf [MaxGPUsPerNode]int32
	live, excl := c.devs(n)
	free := buf[:len(live)]
	copy(free, live)
	cpu := r.cpuFree - s.CPU
	switch {
	case s.GPUs == 0:
		return sigmoidScore(before - f.frag(cpu, free, r.model)), -1
	case !s.Sharing():
		takeDevices(free, excl, s)
		return sigmoidScore(before - f.frag(cpu, free, r.model)), -1
	}
	best, bestDev := int64(-1), int32(-1)
	// F reads the free amounts as a multiset, so a device as free (and as
	// exclusive) as one tried before scores as it did, and the earlier
	// one keeps the tie: each such pair is tried once.
	var tried [MaxGPUsPerNode]int32
	nt := 0
	for i := range free {
		x := free[i]
		if x < s.Milli {
			continue
		}
		key := x<<1 | int32(b2i(excl[i]))
		if slices.Contains(tried[:nt], key) {
			continue
		}
		tried[nt] = key
		nt++
		free[i] = x - shareTakes(excl[i], x, s.Milli)
		if sc := sigmoidScore(before - f.frag(cpu, free, r.model)); sc > best {
			best, bestDev = sc, int32(i)
		}
		free[i] = x
	}
	return best, bestDev
}

// Pick implements Picker: whole GPUs on the lowest-numbered free devices; a
// share on the lowest-numbered device that reaches the node's score.
func (f *FGD) Pick(c *Cluster, n NodeID, s *Shape, _ *rand.Rand) (uint64, int32) {
	return pickTrial(c, n, s, func() int32 { _, dev := f.score(c, n, s); return dev })
}

// pickTrial is the Picker of a policy that chooses a share's device by its
// own trials: whole GPUs on the lowest-numbered free devices, a share on the
// device trial names (none when it names -1).
func pickTrial(c *Cluster, n NodeID, s *Shape, trial func() int32) (uint64, int32) {
	if !s.Sharing() {
		return pickDefault(c, n, s)
	}
	dev := trial()
	if dev < 0 {
		return 0, 0
	}
	free, excl := c.devs(n)
	return 1 << uint(dev), shareTakes(excl[dev], free[dev], s.Milli)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
