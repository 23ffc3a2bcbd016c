package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Follow-up tests of the core's audit (issue 11): what the first round
// left open. Each failed before its fix.

// constScore is a plugin scorer that scores one node v and the others 0.
type constScore struct {
	hi NodeID
	v  int64
}

func (cs constScore) Name() string { return "const" }
func (cs constScore) Score(_ *Cluster, n NodeID, _ *Shape) int64 {
	if n == cs.hi {
		return cs.v
	}
	return 0
}

// A plugin's weighted scores stay below the tier: a weight too large for
// the packed score is refused by Validate (and so by PlaceJob), and a raw
// score out of any range is saturated within the sum's bits, so the tier
// still decides, on the index and on the scan.
func TestFollowupWeightedSumKeepsToItsBits(t *testing.T) {
	c := dfCluster(t, nil,
		Node{Name: "n0", CPUMilli: 8000, MemoryMiB: 8192},
		Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192})
	tier := constTier{"tier", 1, 1} // n1 is in the better tier
	s := dfShape(t, c, Task{CPUMilli: 1000})

	for _, w := range []int64{MaxWeight + 1, -MaxWeight - 1, 1 << 40} {
		p := &Policy{Name: "plugin", Tiers: []Scorer{tier}, Scorers: []Weighted{{Scorer: Zero{}, Weight: 1}, {Scorer: constScore{0, 1}, Weight: w}}}
		err := p.Validate()
		require.Error(t, err, "weight %d", w)
		assert.Contains(t, err.Error(), "policy plugin: field scorers[1].weight (const)")
		_, _, err = c.PlaceJob(p, &Job{ID: "j", Count: 1, Task: Task{CPUMilli: 1000}}, nil, nil)
		require.Error(t, err, "weight %d", w)
	}
	ok := &Policy{Name: "plugin", Scorers: []Weighted{{Scorer: constScore{0, 1}, Weight: MaxWeight}, {Scorer: constScore{0, 1}, Weight: -MaxWeight}}}
	require.NoError(t, ok.Validate(), "weights at the bound")

	tests := []struct {
		name    string
		scorers []Weighted
	}{
		{"a huge weight, not validated", []Weighted{{Scorer: constScore{0, 1}, Weight: 1 << 40}}},
		{"a huge raw score", []Weighted{{Scorer: constScore{0, 1 << 40}, Weight: MaxWeight}}},
		{"a huge negative raw score", []Weighted{{Scorer: constScore{1, -1 << 40}, Weight: 1}}},
		{"a score that would wrap int64", []Weighted{{Scorer: constScore{1, 1 << 62}, Weight: 2}}},
	}
	for _, tt := range tests {
		for _, scan := range []bool{false, true} {
			p := &Policy{Name: "plugin", Tiers: []Scorer{tier}, Scorers: tt.scorers, Scan: scan}
			assert.Equal(t, NodeID(1), c.Select(p, &s, nil), "%s, scan %v: the better tier wins", tt.name, scan)
		}
		p := &Policy{Name: "plugin", Tiers: []Scorer{tier}, Scorers: tt.scorers}
		n, _ := c.SelectScan(p, &s, nil)
		assert.Equal(t, NodeID(1), n, "%s: SelectScan", tt.name)
	}
}

// GPUPacking reads the one device rule: a free full-size (7g) MIG instance
// is an exclusive device, not a free whole GPU. A share scores it as it
// scores any MIG instance, by its free amount, and a whole-GPU task keeps
// only whole GPUs.
func TestFollowupGPUPackingFullMIGInstanceIsNotAWholeGPU(t *testing.T) {
	a100 := func(mig string) GPU { return GPU{Model: "A100", MIG: mig} }
	c := dfCluster(t, nil,
		Node{Name: "mig7", CPUMilli: 64000, MemoryMiB: 65536, GPUs: []GPU{a100("7g.80gb")}},
		Node{Name: "mig3", CPUMilli: 64000, MemoryMiB: 65536, GPUs: []GPU{a100("3g.40gb")}},
		Node{Name: "whole", CPUMilli: 64000, MemoryMiB: 65536, GPUs: []GPU{a100(""), a100("")}},
		Node{Name: "mixed", CPUMilli: 64000, MemoryMiB: 65536, GPUs: []GPU{a100("7g.80gb"), a100(""), a100(""), a100("")}},
	)
	// One GPU of "whole" and of "mixed" partly used: neither node is empty.
	require.NoError(t, c.Commit(Assign{Node: 2, Mask: 0b01, Take: 700, CPUMilli: 1000, MemMiB: 1024, Tag: -1}))
	require.NoError(t, c.Commit(Assign{Node: 3, Mask: 0b1000, Take: 700, CPUMilli: 1000, MemMiB: 1024, Tag: -1}))
	g := GPUPacking{}
	share := dfShape(t, c, Task{GPUs: 1, GPUMilli: 400, CPUMilli: 1000, MemoryMiB: 1024})
	two := dfShape(t, c, Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024})

	// A free 3g instance (428 milli): 100 − ⌊42/10⌋. A free 7g instance
	// (1000 milli) likewise: 100 − ⌊100/10⌋, not a free GPU's 50 − 1.
	assert.Equal(t, int64(96), g.Score(c, 1, &share), "free 3g instance")
	assert.Equal(t, int64(90), g.Score(c, 0, &share), "free 7g instance")
	// A free whole GPU on a partly used node is kept: 50 − 1.
	assert.Equal(t, int64(49), g.Score(c, 2, &share), "free whole GPU")
	// A two-GPU task keeps the two free whole GPUs, not the 7g instance:
	// 50 − 2.
	assert.Equal(t, int64(48), g.Score(c, 3, &two), "two whole GPUs beside a 7g instance")
	assert.Equal(t, int64(90), g.Score(c, 3, &share), "the 7g instance beside whole GPUs")

	// So a share goes to the 7g instance (a MIG slot made for shares)
	// before it opens a whole GPU, and takes the instance whole.
	p, err := NewPolicy(c, "gpu-packing", Options{})
	require.NoError(t, err)
	require.NoError(t, c.SetRanks([]NodeID{2, 3, 0, 1}))
	a, ok := c.PlaceTask(p, &share, nil)
	require.True(t, ok)
	assert.Equal(t, "mig3", c.Node(a.Node).Name, "the 3g instance scores highest (96)")
	a, ok = c.PlaceTask(p, &share, nil)
	require.True(t, ok)
	assert.Equal(t, "mixed", c.Node(a.Node).Name, "a 7g instance next (90, mixed ranks before mig7), before a whole GPU (49)")
	assert.Equal(t, uint64(0b0001), a.Mask, "the 7g instance")
	assert.Equal(t, int32(1000), a.Take, "taken whole")
}
