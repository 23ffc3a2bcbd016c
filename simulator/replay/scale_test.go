package replay

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// elasticFleet is one owned 8-GPU node and a cloud pool "cl" at 2 per
// GPU-hour, 300 s to provision, capped at maxNodes, listing one 8-GPU node.
func elasticFleet(maxNodes int) ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{
		{Name: "op", Kind: scheduler.PoolOnPrem},
		{Name: "cl", Kind: scheduler.PoolCloud, PricePerGPUHour: 2, MaxNodes: maxNodes, ProvisionDelaySec: 300},
	}
	return pools, []scheduler.Node{gpuNode("op1", "op", 64000, 8), gpuNode("cl-0", "cl", 64000, 8)}
}

func runScale(t *testing.T, cfg Config) (*Result, []Event) {
	t.Helper()
	var log []Event
	cfg.Observe = func(e Event) { log = append(log, e) }
	cfg.Options.Cost = true // owned nodes first
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	return res, log
}

func startOf(log []Event, job int) (int64, string) {
	for _, e := range log {
		if e.Kind == EventStart && e.Job == job {
			return e.At, e.Node
		}
	}
	return -1, ""
}

// A job that does not fit the owned node waits the provisioning delay and
// runs on a cloud node; idle nodes are released and stop costing. By hand:
// cl-0 is up [0, 600) (idle, released at 600), asked for again at 1000 for
// job 1, up [1300, 5500) (job 1 runs 1300–4900, then 600 s idle):
// 4,800 s × 8 GPUs = 10.667 GPU-hours, 21.333 at 2; job 1 used 8 GPU-hours
// (16), so 5.333 was paid for idle GPUs.
func TestScaleProvisionsAndReleases(t *testing.T) {
	pools, nodes := elasticFleet(2)
	res, log := runScale(t, Config{Pools: pools, Nodes: nodes, Scale: &Scale{},
		Jobs: jobsOf([]tj{{0, 7200, 8}, {1000, 3600, 8}})})
	at, node := startOf(log, 0)
	assert.Equal(t, int64(0), at)
	assert.Equal(t, "op1", node)
	at, node = startOf(log, 1)
	assert.Equal(t, sec(1300), at, "job 1 waits the 300 s delay")
	assert.Equal(t, "cl-0", node, "the released node is asked for again")
	wait, ok := res.Jobs[1].Wait()
	require.True(t, ok)
	assert.Equal(t, sec(300), wait)
	a := res.Summary.Scaling["cl"]
	assert.Equal(t, ScalePool{Provisioned: 1, Released: 2, PeakNodes: 1}, ScalePool{Provisioned: a.Provisioned, Released: a.Released, PeakNodes: a.PeakNodes})
	assert.InDelta(t, 4800.0/3600*8, a.UpGPUHours, 1e-9)
	assert.InDelta(t, 8.0, a.UsedGPUHours, 1e-9)
	assert.InDelta(t, 4800.0/3600*8*2, a.NodeCost, 1e-9)
	assert.InDelta(t, 16.0, a.UsedCost, 1e-9)
	assert.InDelta(t, 4800.0/3600*8*2-16, a.IdleCost, 1e-9)
	assert.Equal(t, 2, res.Summary.Ended)
	var released []int64
	for _, e := range log {
		if e.Kind == EventNode && e.State == "released" {
			released = append(released, e.At)
		}
	}
	assert.Equal(t, []int64{sec(600), sec(5500)}, released)
}

// max_nodes caps the pool: of three jobs asking at once, two get a node
// (cl-0 again and a new one) and the third waits for one to free at 4,900.
// Up: cl-0 [0, 600), then two nodes from 1300 to 5500 and 9100 (the one
// that runs job 3 until 8500): 600 + 4200 + 7800 = 12,600 s × 8 GPUs × 2
// = 56; used 3 × 8 GPU-hours = 48.
func TestScaleMaxNodesCaps(t *testing.T) {
	pools, nodes := elasticFleet(2)
	res, log := runScale(t, Config{Pools: pools, Nodes: nodes, Scale: &Scale{},
		Jobs: jobsOf([]tj{{0, 10800, 8}, {1000, 3600, 8}, {1000, 3600, 8}, {1000, 3600, 8}})})
	for k, want := range map[int]int64{1: sec(1300), 2: sec(1300), 3: sec(4900)} {
		at, _ := startOf(log, k)
		assert.Equal(t, want, at, "job %d", k)
	}
	a := res.Summary.Scaling["cl"]
	assert.Equal(t, 2, a.PeakNodes)
	assert.Equal(t, 2, a.Provisioned)
	assert.InDelta(t, 56.0, a.NodeCost, 1e-9)
	assert.InDelta(t, 48.0, a.UsedCost, 1e-9)
	assert.InDelta(t, 8.0, a.IdleCost, 1e-9)
	assert.Equal(t, 4, res.Summary.Ended)
}

// Spot nodes are taken back at random: the work on them is requeued (and
// resumes from its checkpoint), the pool asks for a node again, every job
// still ends, and the same seed gives the same run.
func TestScaleSpotReclaim(t *testing.T) {
	cfg := func(seed uint64) Config {
		pools := []scheduler.Pool{{Name: "sp", Kind: scheduler.PoolCloud, Pricing: scheduler.Spot, PricePerGPUHour: 1, MaxNodes: 1, ProvisionDelaySec: 60}}
		return Config{Pools: pools, Nodes: []scheduler.Node{gpuNode("sp-0", "sp", 64000, 8)}, Seed: seed,
			Scale:      &Scale{SpotReclaim: Hour},
			Checkpoint: Checkpoint{Interval: 600 * Second},
			Jobs:       jobsOf([]tj{{0, 7200, 8}, {0, 7200, 8}, {0, 7200, 8}})}
	}
	res, log := runScale(t, cfg(1))
	again, log2 := runScale(t, cfg(1))
	assert.Equal(t, log, log2, "same seed, same run")
	assert.Equal(t, res.Summary, again.Summary)
	_, other := runScale(t, cfg(2))
	assert.NotEqual(t, log, other, "another seed, other reclaims")
	a := res.Summary.Scaling["sp"]
	requeues, reclaims := 0, 0
	for _, e := range log {
		switch {
		case e.Kind == EventRequeue:
			requeues++
		case e.Kind == EventNode && e.State == "reclaimed":
			reclaims++
		}
	}
	require.Positive(t, a.Reclaimed)
	assert.Equal(t, a.Reclaimed, reclaims)
	assert.Equal(t, res.Summary.Preemptions, requeues)
	assert.Positive(t, requeues)
	assert.Equal(t, 3, res.Summary.Ended)
	assert.Positive(t, res.Summary.LostGPUHours)
	// a checkpoint every 600 s: no requeue loses more than 600 s of 8 GPUs
	assert.LessOrEqual(t, res.Summary.LostGPUHours, float64(requeues)*8*600/3600+1e-9)
}

// Scaling refuses what it cannot honour.
func TestScaleRefuses(t *testing.T) {
	pools, nodes := elasticFleet(2)
	for _, c := range []struct {
		name, want string
		cfg        Config
	}{
		{"negative idle", "must not be negative", Config{Scale: &Scale{IdleRelease: -1}}},
		{"burst", "burst method's cloud is unlimited", Config{Scale: &Scale{}, Burst: &Burst{}}},
		{"node event", `"cl-0" is in a cloud pool`, Config{Scale: &Scale{}, NodeEvents: []NodeEvent{{At: 0, Node: "cl-0", State: scheduler.NodeDown}}}},
	} {
		cfg := c.cfg
		cfg.Pools, cfg.Nodes, cfg.Jobs = pools, nodes, jobsOf([]tj{{0, 60, 1}})
		_, err := Run(context.Background(), cfg)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
}

// With elastic and spot pools, every job is still accounted for, the log
// reconciles with the summary, idle and used spend add up to the bill, and
// the run is the same bytes for the same seed.
func TestScaleConservationAndDeterminism(t *testing.T) {
	for _, horizon := range []int64{0, 2000 * Second} {
		run := func() ([]byte, *Result) {
			pools, nodes := ownedFleet(2, 8)
			pools = append(pools,
				scheduler.Pool{Name: "od", Kind: scheduler.PoolCloud, PricePerGPUHour: 3, MaxNodes: 3, ProvisionDelaySec: 120},
				scheduler.Pool{Name: "sp", Kind: scheduler.PoolCloud, Pricing: scheduler.Spot, PricePerGPUHour: 1, MaxNodes: 2, ProvisionDelaySec: 60})
			nodes = append(nodes, gpuNode("od-0", "od", 64000, 8), gpuNode("sp-0", "sp", 64000, 8))
			cfg := Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(2, 300), Seed: 5, Horizon: horizon, WarmupJobs: 3,
				Scale: &Scale{IdleRelease: 300 * Second, SpotReclaim: 900 * Second}, Checkpoint: Checkpoint{Interval: 300 * Second},
				PriceEvents: []PriceEvent{{At: 500 * Second, Pool: "od", PricePerGPUHour: 4}}}
			log := collect(&cfg)
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			reconcile(t, *log, res, 3)
			b, err := json.Marshal(res)
			require.NoError(t, err)
			return b, res
		}
		b, res := run()
		b2, _ := run()
		assert.Equal(t, b, b2, "horizon %d", horizon)
		s := res.Summary
		if horizon == 0 {
			assert.Equal(t, len(res.Jobs), s.Ended)
		}
		assert.Positive(t, s.Scaling["sp"].Reclaimed, "horizon %d", horizon)
		assert.Positive(t, s.Scaling["od"].Provisioned, "horizon %d", horizon)
		for name, a := range s.Scaling {
			assert.InDelta(t, a.NodeCost, a.UsedCost+a.IdleCost, 1e-9, name)
			assert.LessOrEqual(t, a.UsedGPUHours, a.UpGPUHours+1e-9, name)
			assert.LessOrEqual(t, a.UsedCost, a.NodeCost+1e-9, name)
		}
	}
}

// A quota event raises the cap mid-run: job 2, held back by max_nodes 1,
// asks at the event (2,000 s) and starts 300 s later, not when job 1 ends
// (4,900 s). A pool of max_nodes 0 named by a quota event grows too.
func TestScaleQuotaEvent(t *testing.T) {
	js := jobsOf([]tj{{0, 10800, 8}, {1000, 3600, 8}, {1000, 3600, 8}})
	for _, c := range []struct {
		name  string
		start int64
		max   int
		quota []QuotaEvent
	}{
		{"no quota event", sec(4900), 1, nil},
		{"raised at 2000 s", sec(2300), 1, []QuotaEvent{{At: 2000 * Second, Pool: "cl", MaxNodes: 2}}},
		{"from 0, raised at 0 and 2000 s", sec(2300), 0, []QuotaEvent{{At: 0, Pool: "cl", MaxNodes: 1}, {At: 2000 * Second, Pool: "cl", MaxNodes: 2}}},
	} {
		pools, nodes := elasticFleet(c.max)
		res, log := runScale(t, Config{Pools: pools, Nodes: nodes, Scale: &Scale{}, Jobs: js, QuotaEvents: c.quota})
		at, _ := startOf(log, 1)
		assert.Equal(t, sec(1300), at, c.name)
		at, _ = startOf(log, 2)
		assert.Equal(t, c.start, at, c.name)
		assert.Equal(t, 3, res.Summary.Ended, c.name)
		quotas := 0
		for _, e := range log {
			if e.Kind == EventQuota {
				quotas++
			}
		}
		assert.Equal(t, len(c.quota), quotas, c.name)
	}
	pools, nodes := elasticFleet(1)
	for name, cfg := range map[string]Config{
		"without scaling": {QuotaEvents: []QuotaEvent{{Pool: "cl", MaxNodes: 2}}},
		"owned pool":      {Scale: &Scale{}, QuotaEvents: []QuotaEvent{{Pool: "op", MaxNodes: 2}}},
		"negative":        {Scale: &Scale{}, QuotaEvents: []QuotaEvent{{Pool: "cl", MaxNodes: -1}}},
	} {
		cfg.Pools, cfg.Nodes, cfg.Jobs = pools, nodes, js
		_, err := Run(context.Background(), cfg)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "quota event 0", name)
	}
}
