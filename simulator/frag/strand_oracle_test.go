package frag

import (
	"math"
	"math/bits"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// fgd-strand's oracle, written from docs/frag.md ("The policy") on the
// naive cluster of oracle_test.go and sharing no code with the scheduler
// core. A node's extended fragmentation is
//
//	F'(n) = F(n) + max(0, idle(n) − cpuFree(n)/ρ)
//
// with F of FRAG-METHOD §5 (oFrag), idle the node's free GPU milli and ρ
// the target's GPU types' probability-weighted CPU over their
// probability-weighted GPU request. A node scores the exact change
// F'(before) − F'(after) in thousandths of a milli-GPU, rounded; the
// highest score wins, the lowest rank among equals. Whole GPUs go on the
// lowest-numbered free devices; a share on the device whose trial gives
// the best change, the lowest number among equal changes.

// strandRho is ρ: 0 when the target has no GPU type.
func strandRho(target []targetT) float64 {
	var cpu, gpu float64
	for _, t := range target {
		if t.milli > 0 {
			cpu += t.p * float64(t.cpu)
			gpu += t.p * float64(t.milli) * float64(t.gpus)
		}
	}
	if cpu == 0 || gpu == 0 {
		return 0
	}
	return cpu / gpu
}

// strandF is F'.
func strandF(target []targetT, rho float64, cpu int64, free []int64, model string) float64 {
	F := oFrag(target, cpu, free, model)
	if rho == 0 {
		return F
	}
	var idle int64
	for _, f := range free {
		idle += f
	}
	return F + max(0, float64(idle)-float64(cpu)/rho)
}

// strandScore is a feasible node's score and, for a share, its device.
func strandScore(target []targetT, rho float64, n *oNode, p *Pod) (int64, int) {
	before := strandF(target, rho, n.cpu, n.free, n.model)
	free := append([]int64(nil), n.free...)
	cpu := n.cpu - p.CPU
	score := func(d float64) int64 { return int64(math.Round(d * 1000)) }
	switch {
	case p.GPUs == 0:
		return score(before - strandF(target, rho, cpu, free, n.model)), -1
	case p.Milli == 1000:
		k := int(p.GPUs)
		for i := range free {
			if k > 0 && free[i] == 1000 {
				free[i] = 0
				k--
			}
		}
		return score(before - strandF(target, rho, cpu, free, n.model)), -1
	}
	best, dev := math.Inf(-1), -1
	for i := range free {
		if free[i] < int64(p.Milli) {
			continue
		}
		free[i] -= int64(p.Milli)
		if d := before - strandF(target, rho, cpu, free, n.model); d > best {
			best, dev = d, i
		}
		free[i] += int64(p.Milli)
	}
	return score(best), dev
}

// strandPlace decides one pod under fgd-strand and applies it; it returns
// the node (-1 when the pod fails) and the GPUs taken.
func (c *oCluster) strandPlace(target []targetT, rho float64, p *Pod) (int, []int) {
	chosen, dev := -1, -1
	var best int64
	for _, id := range c.order {
		n := c.nodes[id]
		if !n.feasible(p) {
			continue
		}
		if s, d := strandScore(target, rho, n, p); chosen < 0 || s > best {
			chosen, dev, best = id, d, s
		}
	}
	if chosen < 0 {
		return -1, nil
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
	default:
		gpus = []int{dev}
	}
	n.cpu -= p.CPU
	n.mem -= p.Mem
	for _, g := range gpus {
		n.free[g] -= int64(p.Milli)
	}
	return chosen, gpus
}

// TestStrandMatchesOracle replays runs of fgd-strand through the core and
// through the oracle above, and requires the same node and GPUs for every
// pod: on the default workload, and on a CPU-heavy one where the strand
// term decides most.
func TestStrandMatchesOracle(t *testing.T) {
	fleet, err := DefaultFleet()
	require.NoError(t, err)
	def, err := DefaultWorkload()
	require.NoError(t, err)
	// CPU-heavy: every pod asks 2.5 times its CPU (the cpu250 workload's idea).
	heavy := *def
	heavy.Name = "cpu-heavy"
	heavy.Pods = append([]Pod(nil), def.Pods...)
	for i := range heavy.Pods {
		heavy.Pods[i].CPU = heavy.Pods[i].CPU * 5 / 2
	}
	limit := 2000
	switch {
	case os.Getenv("PETITE_LONG") == "1":
		limit = 1 << 30
	case testing.Short():
		limit = 600
	}
	for _, tc := range []struct {
		w    *Workload
		seed uint64
	}{{def, 42}, {&heavy, 43}} {
		t.Run(tc.w.Name, func(t *testing.T) {
			var target []targetT
			for _, tt := range tc.w.Target {
				target = append(target, targetT{cpu: tt.CPU, milli: int64(tt.Milli), gpus: int(tt.GPUs), models: tt.Models, p: tt.Prob})
			}
			rho := strandRho(target)
			require.Positive(t, rho)
			rng := NewRNG(tc.seed)
			capMilli := int64(fleet.GPUs) * 1000
			seq := Arrivals(tc.w.Pods, capMilli, DefaultInflate, true, rng)
			ranks := NodeRanks(len(fleet.Nodes), rng)
			perm := make([]int, len(ranks))
			for i, n := range ranks {
				perm[i] = int(n)
			}
			oc := newOCluster(fleet, perm)
			mismatch, compared, failed := 0, 0, 0
			_, err := run(fleet, tc.w, Config{Policy: "fgd-strand", Seed: tc.seed, Inflate: DefaultInflate}, func(i int, k int32, a scheduler.Assign, ok bool) {
				if i >= limit || mismatch > 0 {
					return
				}
				p := &tc.w.Pods[k]
				require.Equal(t, seq[i], k)
				node, gpus := oc.strandPlace(target, rho, p)
				var mask uint64
				for _, g := range gpus {
					mask |= 1 << uint(g)
				}
				if !ok {
					a.Node, mask = -1, 0
					failed++
				}
				compared++
				if int(a.Node) != node || a.Mask != mask {
					mismatch++
					t.Errorf("pod %d (#%d %+v): core node %d GPUs %b (%d), oracle node %d GPUs %b", i, k, *p, a.Node, a.Mask, bits.OnesCount64(a.Mask), node, mask)
				}
			})
			require.NoError(t, err)
			require.Equal(t, min(limit, len(seq)), compared)
			if limit >= len(seq) {
				require.Positive(t, failed, "a whole run reaches pods that fit nowhere")
			}
		})
	}
}
