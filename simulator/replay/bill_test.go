package replay

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// integral is the spend series summed over its steps (GPU-hours × price):
// the series samples the rate from each step's start on.
func integral(s *Series) float64 {
	sum := 0.0
	for _, sm := range s.Samples[:len(s.Samples)-1] {
		sum += sm.SpendPerHour * hours(s.Step)
	}
	return sum
}

// Under pool scaling the cloud pool's bill is its nodes' up-time, idle
// included (TestScaleProvisionsAndReleases' 21.333, against the 16 its job
// was charged), and the spend series integrates to the bills.
func TestBillsFromNodesUnderScaling(t *testing.T) {
	pools, nodes := elasticFleet(2)
	res, _ := runScale(t, Config{Pools: pools, Nodes: nodes, Scale: &Scale{}, SeriesStep: 100 * Second,
		Jobs: jobsOf([]tj{{0, 7200, 8}, {1000, 3600, 8}})})
	s := res.Summary
	assert.InDelta(t, 4800.0/3600*8*2, s.BillByPool["cl"], 1e-9)
	assert.InDelta(t, 16.0, s.CostByPool["cl"], 1e-9)
	assert.Equal(t, 0.0, s.BillByPool["op"])
	assert.InDelta(t, s.BillByPool["cl"], integral(res.Series), 1e-6)
}

// A reserved pool bills all its nodes for the whole run, used or not,
// piecewise across a price change, and a node added to it from its
// arrival; a use-billed pool beside it bills its jobs' GPU-hours.
func TestBillsReservedPool(t *testing.T) {
	pools := []scheduler.Pool{
		{Name: "rs", Kind: scheduler.PoolCloud, Pricing: scheduler.Reserved, PricePerGPUHour: 1},
		{Name: "od", Kind: scheduler.PoolCloud, PricePerGPUHour: 3},
	}
	nodes := []scheduler.Node{gpuNode("rs-0", "rs", 64000, 8), gpuNode("rs-1", "rs", 64000, 8), gpuNode("od-0", "od", 64000, 8)}
	added := gpuNode("rs-2", "rs", 64000, 8)
	// two 8-GPU jobs fill rs for 1 h, a third runs on od for 30 min.
	jobs := jobsOf([]tj{{0, 3600, 8}, {0, 3600, 8}, {0, 1800, 8}})
	cfg := Config{Pools: pools, Nodes: nodes, Jobs: jobs, SeriesStep: 60 * Second,
		PriceEvents: []PriceEvent{{At: 1800 * Second, Pool: "rs", PricePerGPUHour: 2}},
		NodeEvents:  []NodeEvent{{At: 1800 * Second, Node: "rs-2", State: scheduler.NodeReady, Add: &added}}}
	res, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	s := res.Summary
	// 16 GPUs × 0.5 h × 1 + 16 × 0.5 × 2, and rs-2's 8 GPUs × 0.5 h × 2.
	assert.InDelta(t, 8+16+8, s.BillByPool["rs"], 1e-9)
	assert.InDelta(t, 3*8*0.5, s.BillByPool["od"], 1e-12, "on-demand without scaling bills use")
	assert.InDelta(t, s.CostByPool["od"], s.BillByPool["od"], 1e-12)
	assert.Less(t, s.CostByPool["rs"], s.BillByPool["rs"], "the jobs used less than the reservation")
	assert.InDelta(t, s.BillByPool["rs"]+s.BillByPool["od"], integral(res.Series), 1e-6)
}
