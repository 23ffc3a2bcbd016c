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
