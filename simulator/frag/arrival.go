package frag

import (
	"math"
	"math/rand/v2"

	"petite/scheduler"
)

// Arrivals draws the arrival sequence of one run (FRAG-METHOD §2.1–2.2): the
// original pods in a uniformly random order (or file order when shuffle is
// false), then tuned to a total GPU request of ratio × capMilli. It returns
// indexes into pods.
//
// Below the target, originals drawn uniformly with replacement are appended
// until the first draw whose per-GPU share would pass the target, which is
// thrown away; above it, pods drawn uniformly from the sequence are removed
// while the total passes the target. A ratio of 0 or less keeps the
// originals as they are.
func Arrivals(pods []Pod, capMilli int64, ratio float64, shuffle bool, rng *rand.Rand) []int32 {
	seq := make([]int32, len(pods), len(pods)+len(pods)/2)
	for i := range seq {
		seq[i] = int32(i)
	}
	if shuffle {
		rng.Shuffle(len(seq), func(i, j int) { seq[i], seq[j] = seq[j], seq[i] })
	}
	if ratio <= 0 || len(pods) == 0 {
		return seq
	}
	target := int64(math.Round(ratio * float64(capMilli)))
	var sum int64
	for i := range pods {
		sum += pods[i].GPUMilli()
	}
	if sum < target {
		for sum < target {
			k := rng.IntN(len(pods))
			p := &pods[k]
			if sum+int64(p.Milli) > target {
				break
			}
			seq = append(seq, int32(k))
			sum += p.GPUMilli()
		}
		// A multi-GPU pod may leave the total past the target: it stays.
		return seq
	}
	if sum > target {
		// Mark the removed pods, then compact once, keeping the order.
		gone := make([]bool, len(seq))
		left := len(seq)
		for sum > target && left > 0 {
			k := rng.IntN(len(seq))
			if gone[k] {
				continue
			}
			gone[k] = true
			left--
			sum -= pods[seq[k]].GPUMilli()
		}
		out := seq[:0]
		for i, k := range seq {
			if !gone[i] {
				out = append(out, k)
			}
		}
		seq = out
	}
	return seq
}

// NodeRanks draws the fixed node priority of one run (FRAG-METHOD §2.3): a
// uniformly random permutation of the nodes, perm[i] being the node of rank i.
func NodeRanks(n int, rng *rand.Rand) []scheduler.NodeID {
	perm := make([]scheduler.NodeID, n)
	for i := range perm {
		perm[i] = scheduler.NodeID(i)
	}
	rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return perm
}
