package frag

import (
	"math/bits"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestCoreMatchesOracle replays runs of the default workload through the
// core and through the naive oracle, and requires the same node and GPUs
// for every pod.
func TestCoreMatchesOracle(t *testing.T) {
	fleet, err := DefaultFleet()
	require.NoError(t, err)
	w, err := DefaultWorkload()
	require.NoError(t, err)
	var target []targetT
	for _, tt := range w.Target {
		target = append(target, targetT{cpu: tt.CPU, milli: int64(tt.Milli), gpus: int(tt.GPUs), models: tt.Models, p: tt.Prob})
	}
	limit := 12000
	if testing.Short() {
		limit = 1500
	}
	for _, policy := range PublishedPolicies {
		t.Run(policy, func(t *testing.T) {
			const seed = 42
			rng := NewRNG(seed)
			capMilli := int64(fleet.GPUs) * 1000
			seq := Arrivals(w.Pods, capMilli, DefaultInflate, true, rng)
			ranks := NodeRanks(len(fleet.Nodes), rng)
			perm := make([]int, len(ranks))
			for i, n := range ranks {
				perm[i] = int(n)
			}
			oc := newOCluster(fleet, perm)
			mismatch := 0
			_, err := run(fleet, w, Config{Policy: policy, Seed: seed, Inflate: DefaultInflate}, func(i int, k int32, a scheduler.Assign, ok bool) {
				if i >= limit || mismatch > 0 {
					return
				}
				p := &w.Pods[k]
				require.Equal(t, seq[i], k)
				node, gpus := oc.place(policy, target, p, rng)
				var mask uint64
				for _, g := range gpus {
					mask |= 1 << uint(g)
				}
				if !ok {
					a.Node, mask = -1, 0
				}
				if int(a.Node) != node || a.Mask != mask {
					mismatch++
					t.Errorf("pod %d (#%d %+v): core node %d GPUs %b (%d), oracle node %d GPUs %b", i, k, *p, a.Node, a.Mask, bits.OnesCount64(a.Mask), node, mask)
				}
			})
			require.NoError(t, err)
		})
	}
}
