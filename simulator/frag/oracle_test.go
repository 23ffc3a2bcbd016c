package frag

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// This file is a second, deliberately naive implementation of FRAG-METHOD
// §3–§5, written from the method's text alone and sharing no code with the
// scheduler core: every decision scans every node in rank order and keeps
// the first of the highest scores. The tests replay whole runs through both
// and require the same node and GPUs for every pod.

type oNode struct {
	cpu, mem int64
	free     []int64
	model    string
	tags     map[string]bool
}

type oCluster struct {
	nodes []*oNode
	order []int // order[r] is the node of rank r
}

func newOCluster(f *Fleet, perm []int) *oCluster {
	c := &oCluster{order: perm}
	for _, n := range f.Nodes {
		on := &oNode{cpu: n.CPUMilli, mem: n.MemoryMiB, tags: map[string]bool{}}
		for _, g := range n.GPUs {
			on.free = append(on.free, 1000)
			on.model = g.Model
		}
		c.nodes = append(c.nodes, on)
	}
	return c
}

func (n *oNode) gpuFree() int64 {
	var s int64
	for _, f := range n.free {
		s += f
	}
	return s
}

func (n *oNode) fullFree() int {
	k := 0
	for _, f := range n.free {
		if f == 1000 {
			k++
		}
	}
	return k
}

func modelOK(list, model string) bool {
	return list == "" || slices.Contains(strings.Split(list, "|"), model)
}

// feasible is §3.
func (n *oNode) feasible(p *Pod) bool {
	if n.cpu < p.CPU || n.mem < p.Mem {
		return false
	}
	if p.GPUs == 0 {
		return true
	}
	if len(n.free) == 0 || !modelOK(p.Models, n.model) {
		return false
	}
	k := 0
	for _, f := range n.free {
		if f >= int64(p.Milli) {
			k++
		}
	}
	return k >= int(p.GPUs)
}

func podTag(p *Pod) string {
	switch {
	case p.GPUs == 0:
		return ""
	case p.Milli < 1000:
		return "share"
	}
	return strings.Repeat("g", int(p.GPUs))
}

// oFrag is F of §5 for free CPU cpu and GPU free amounts free.
func oFrag(target []targetT, cpu int64, free []int64, model string) float64 {
	var idle int64
	for _, f := range free {
		idle += f
	}
	var F float64
	for _, t := range target {
		if t.milli == 0 || !modelOK(t.models, model) {
			F += t.p * float64(idle)
			continue
		}
		cnt := 0
		var small int64
		for _, f := range free {
			if f >= t.milli {
				cnt++
			} else {
				small += f
			}
		}
		if cnt >= t.gpus && cpu >= t.cpu {
			F += t.p * float64(small)
		} else {
			F += t.p * float64(idle)
		}
	}
	return F
}

type targetT struct {
	cpu, milli int64
	gpus       int
	models     string
	p          float64
}

// bestGPU is "best" of §4: least free among those with room, lowest number.
func (n *oNode) bestGPU(milli int64) int {
	bi := -1
	for i, f := range n.free {
		if f >= milli && (bi < 0 || f < n.free[bi]) {
			bi = i
		}
	}
	return bi
}

// score returns the node's §4 integer score and, for a sharing pod under
// fgd, the GPU it chose.
func (c *oCluster) score(policy string, target []targetT, n *oNode, p *Pod) (int64, int) {
	cpuF, gpuF := float64(n.cpu), float64(n.gpuFree())
	req := float64(p.GPUMilli())
	switch policy {
	case "dot-product":
		d := (cpuF/128000)*(float64(p.CPU)/128000) + (gpuF/8000)*(req/8000)
		return int64(100 * (1 - d/2)), -1
	case "best-fit":
		return int64(100 * (1 - (0.5*(cpuF-float64(p.CPU))/128000 + 0.5*(gpuF-req)/8000))), -1
	case "gpu-clustering":
		if p.GPUs == 0 {
			return 0, -1
		}
		base := 25 * (8000 - n.gpuFree()) / 8000
		tag := podTag(p)
		switch {
		case len(n.tags) == 1 && n.tags[tag]:
			return base + 75, -1
		case n.tags[tag]:
			return base + 50, -1
		case len(n.tags) == 0:
			return base + 25, -1
		}
		return base, -1
	case "gpu-packing":
		if p.GPUs == 0 {
			return 0, -1
		}
		ff := n.fullFree()
		if ff == len(n.free) {
			return int64(max(33-ff, ff)), -1
		}
		idx := make([]int, len(n.free))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return int(n.free[a] - n.free[b]) })
		var kept []int
		for _, i := range idx {
			if len(kept) < int(p.GPUs) && n.free[i] >= int64(p.Milli) {
				kept = append(kept, i)
			}
		}
		full := 0
		var r int64
		for _, i := range kept {
			if n.free[i] == 1000 {
				full++
			}
			r += n.free[i] * 100 / 1000
		}
		if full > 0 {
			return int64(max(50-full, 33)), -1
		}
		return max(100-r/10, 50), -1
	case "fgd":
		before := oFrag(target, n.cpu, n.free, n.model)
		sig := func(after float64) int64 { return int64(100 / (1 + math.Exp(-(before-after)/1000))) }
		free := slices.Clone(n.free)
		cpu := n.cpu - p.CPU
		switch {
		case p.GPUs == 0:
			return sig(oFrag(target, cpu, free, n.model)), -1
		case p.Milli == 1000:
			k := int(p.GPUs)
			for i := range free {
				if k > 0 && free[i] == 1000 {
					free[i] = 0
					k--
				}
			}
			return sig(oFrag(target, cpu, free, n.model)), -1
		}
		best, dev := int64(-1), -1
		for i := range free {
			if free[i] < int64(p.Milli) {
				continue
			}
			free[i] -= int64(p.Milli)
			if s := sig(oFrag(target, cpu, free, n.model)); s > best {
				best, dev = s, i
			}
			free[i] += int64(p.Milli)
		}
		return best, dev
	}
	panic("oracle: no policy " + policy)
}

// place decides one pod and applies it; it returns the node (-1 when the
// pod fails) and the GPUs taken.
func (c *oCluster) place(policy string, target []targetT, p *Pod, rng *rand.Rand) (int, []int) {
	var cands []int
	for _, id := range c.order {
		if c.nodes[id].feasible(p) {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		return -1, nil
	}
	chosen, dev := -1, -1
	if policy == "random" {
		chosen = cands[rng.IntN(len(cands))]
	} else {
		scores := make([]int64, len(cands))
		devs := make([]int, len(cands))
		for i, id := range cands {
			scores[i], devs[i] = c.score(policy, target, c.nodes[id], p)
		}
		if policy == "best-fit" {
			lo, hi := slices.Min(scores), slices.Max(scores)
			for i := range scores {
				if hi == lo {
					scores[i] = 0
				} else {
					scores[i] = (scores[i] - lo) * 100 / (hi - lo)
				}
			}
		}
		bi := 0
		for i := range scores {
			if scores[i] > scores[bi] {
				bi = i
			}
		}

		chosen, dev = cands[bi], devs[bi]
	}
	n := c.nodes[chosen]
	var gpus []int
	switch {
	case p.GPUs == 0:
	case p.Milli == 1000:
		for i, f := range n.free {
			if len(gpus) < int(p.GPUs) && f == 1000 {
				gpus = append(gpus, i)
			}
		}
	case policy == "random":
		var room []int
		for i, f := range n.free {
			if f >= int64(p.Milli) {
				room = append(room, i)
			}
		}
		gpus = []int{room[rng.IntN(len(room))]}
	case policy == "fgd":
		gpus = []int{dev}
	default:
		gpus = []int{n.bestGPU(int64(p.Milli))}
	}
	n.cpu -= p.CPU
	n.mem -= p.Mem
	for _, g := range gpus {
		n.free[g] -= int64(p.Milli)
	}
	if t := podTag(p); t != "" {
		n.tags[t] = true
	}
	return chosen, gpus
}
