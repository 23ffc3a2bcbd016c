package replay

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// The cost charged per pool sums to the cost of every record, whatever
// charged it: owned runs spread over pools, a price change, requeues, the
// burst cloud's runs, re-pricing and Star-Wait's paid stints.
func TestCostByPoolReconciles(t *testing.T) {
	js := []tj{{0, 600, 8}, {10, 900, 4}, {20, 300, 8}, {30, 1200, 2}, {40, 60, 8}, {50, 700, 6}, {60, 400, 1}}
	twoPools := func() Config {
		pools := []scheduler.Pool{{Name: "a", Kind: scheduler.PoolOnPrem, PricePerGPUHour: 1},
			{Name: "b", Kind: scheduler.PoolCloud, PricePerGPUHour: 3}}
		nodes := []scheduler.Node{gpuNode("a1", "a", 64000, 8), gpuNode("b1", "b", 64000, 8)}
		return Config{Pools: pools, Nodes: nodes, Jobs: jobsOf(js), Queue: QueueBackfill,
			NodeEvents:  []NodeEvent{{At: 100 * Second, Node: "a1", State: scheduler.NodeDown}, {At: 500 * Second, Node: "a1", State: scheduler.NodeReady}},
			PriceEvents: []PriceEvent{{At: 200 * Second, Pool: "b", PricePerGPUHour: 5}}}
	}
	burst := func(wait string, q Queue) Config {
		pools, nodes := burstFleet([]string{"n0"}, nil)
		wp, err := ParseWait(wait)
		require.NoError(t, err)
		return Config{Pools: pools, Nodes: nodes, Jobs: jobsOf(js), Queue: q, Burst: &Burst{Wait: wp},
			PriceEvents: []PriceEvent{{At: 250 * Second, Pool: "cloud", PricePerGPUHour: 2}}}
	}
	for name, cfg := range map[string]Config{
		"owned pools":     twoPools(),
		"burst, constant": burst("constant:30s", QueueFIFO),
		"burst, star":     burst("star:0.1:2m:1.8", QueueFIFOSkip),
	} {
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err, name)
		var records, pools float64
		for _, r := range res.Jobs {
			records += r.Cost
		}
		for _, c := range res.Summary.CostByPool {
			pools += c
		}
		assert.Positive(t, records, name)
		assert.InDelta(t, records, pools, 1e-9*math.Max(1, records), name)
		assert.Len(t, res.Summary.CostByPool, len(cfg.Pools), name)
	}
}
