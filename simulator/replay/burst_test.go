package replay

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

const h = 3600.0 // seconds per hour, for expected values written in seconds

// The hand-made cases of the burst method's [!] rules (BURST-METHOD §7).
// Every expected figure was worked out on paper from the rules; the working
// is in the comments.

func TestBurstExpiryAtCompletionGoesToCloud(t *testing.T) {
	// One 8-GPU node. job 0 (8 GPUs, 100 s) runs [0,100]. job 1 (8 GPUs,
	// 50 s) arrives at 10 with budget 90 s: its expiry, 100, is the instant
	// job 0 frees the node. Expiries come before the pass, so job 1 leaves
	// for the cloud at 100: wait 90 s, JCT 140 s, cloud cost 8 × 50/3600.
	// W = 0: both jobs measured, window [0, 10] s. Utilisation: job 0 holds
	// 8 GPUs over the whole window: 8·10 / (8·10) = 1.
	res, log := runBurst(t, []string{"n0"}, []tj{{0, 100, 8}, {10, 50, 8}}, "constant:90s", 0)
	s := res.Summary
	assert.Equal(t, 2, s.Jobs)
	assert.Equal(t, 1, s.CloudJobs)
	assert.Equal(t, "cloud", res.Jobs[1].Where)
	assert.Equal(t, sec(100), res.Jobs[1].Start)
	assert.InDelta(t, 8*50/h, s.CloudCost, 1e-12)
	assert.InDelta(t, 45/h, s.AvgWaitH, 1e-12)
	assert.InDelta(t, 120/h, s.AvgJCTH, 1e-12)
	assert.InDelta(t, 140/h, s.P90JCTH, 1e-12) // n=2: 0.9·1 = 0.9 → k=1
	assert.InDelta(t, 1.0, s.ClusterUtilization, 1e-12)
	assert.InDelta(t, 1.0, s.SystemUtilization, 1e-12)
	assert.InDelta(t, 8*50/h/(10/h), s.AvgCloudCost, 1e-9)
	_, started := startsOn(log)[1]
	assert.False(t, started, "job 1 must not start on-prem")
}

func TestBurstBlockedHeadBlocksSmallJob(t *testing.T) {
	// One 8-GPU node, budgets of 1000 s (no cloud). job 0 takes 6 GPUs for
	// 100 s; job 1 (4 GPUs) arrives at 1 and cannot fit in the 2 left; job 2
	// (1 GPU) arrives at 2 and would fit, but strict FIFO stops at the
	// blocked head. At 100 job 0 ends: job 1 then job 2 start. Waits 99 s
	// and 98 s; JCTs 109 s and 108 s.
	res, _ := runBurst(t, []string{"n0"}, []tj{{0, 100, 6}, {1, 10, 4}, {2, 10, 1}}, "constant:1000s", 0)
	assert.Equal(t, sec(100), res.Jobs[1].Start)
	assert.Equal(t, sec(100), res.Jobs[2].Start, "no backfill: the 1-GPU job waits behind the blocked head")
	assert.Equal(t, 0, res.Summary.CloudJobs)
	assert.InDelta(t, (0+99+98)/3.0/h, res.Summary.AvgWaitH, 1e-12)
	assert.InDelta(t, (100+109+108)/3.0/h, res.Summary.AvgJCTH, 1e-12)
}

func TestBurstPercentileHalfRoundsToEven(t *testing.T) {
	// Six 1-GPU jobs that start at once on an 8-GPU node: JCT = duration =
	// 10..60 s. n = 6: p90 is x[round(0.9·5 = 4.5)] = x[4] = 50 s (not the
	// interpolated 55 s, nor the ceil-rank 60 s); p99 is x[round(4.95)] =
	// x[5] = 60 s.
	js := []tj{{0, 10, 1}, {1, 20, 1}, {2, 30, 1}, {3, 40, 1}, {4, 50, 1}, {5, 60, 1}}
	res, _ := runBurst(t, []string{"n0"}, js, "constant:15s", 0)
	assert.Equal(t, 6, res.Summary.Jobs)
	assert.InDelta(t, 50/h, res.Summary.P90JCTH, 1e-12)
	assert.InDelta(t, 60/h, res.Summary.P99JCTH, 1e-12)
	assert.InDelta(t, 35/h, res.Summary.AvgJCTH, 1e-12)
}

func TestQuantileRule(t *testing.T) {
	// x[round-half-to-even(q·(n−1))] with n = 6: 0.9·5 = 4.5 → 4; 0.99·5 =
	// 4.95 → 5; 0.5·5 = 2.5 → 2; 0.1·5 = 0.5 → 0; 0.3·5 = 1.5 → 2.
	x := []float64{1, 2, 3, 4, 5, 6}
	for _, c := range []struct{ q, want float64 }{{0.9, 5}, {0.99, 6}, {0.5, 3}, {0.1, 1}, {0.3, 3}, {0, 1}, {1, 6}} {
		assert.Equal(t, c.want, Quantile(x, c.q), "q=%v", c.q)
	}
	assert.Equal(t, 0.0, Quantile(nil, 0.9))
}

func TestBurstWarmupJobRunsIntoWindow(t *testing.T) {
	// W = 1, N = 4: measured jobs 1..3 (N − W = 3: one left out at the
	// start, none at the end), window = [submit 1, submit N−W−1 = 2] =
	// [100, 200] s. job 0 (warm-up, 4 GPUs, [0, 1000]) counts in the
	// utilisation for its 100 s inside the window: 4·100; job 1 (2 GPUs,
	// [100, 150]) adds 2·50; job 2 starts at 200, at the window's end: 0.
	// (400 + 100) / (8·100) = 0.625. job 3 (8 GPUs) waits for job 0 until
	// 1000: wait 700 s, JCT 800 s. Averages over jobs 1..3: wait 700/3 s,
	// JCT (50+50+800)/3 = 300 s; p90 = x[round(1.8)] = x[2] = 800 s.
	js := []tj{{0, 1000, 4}, {100, 50, 2}, {200, 50, 2}, {300, 100, 8}}
	res, _ := runBurst(t, []string{"n0"}, js, "constant:10000s", 1)
	s := res.Summary
	assert.Equal(t, 3, s.Jobs)
	assert.InDelta(t, 100/h, s.WindowH, 1e-12)
	assert.InDelta(t, 0.625, s.ClusterUtilization, 1e-12)
	assert.InDelta(t, 0.625, s.SystemUtilization, 1e-12)
	assert.InDelta(t, 700.0/3/h, s.AvgWaitH, 1e-12)
	assert.InDelta(t, 300/h, s.AvgJCTH, 1e-12)
	assert.InDelta(t, 800/h, s.P90JCTH, 1e-12)
}

func TestBurstZeroBudgets(t *testing.T) {
	// none: job 0 takes the 8 GPUs for 100 s; job 1 (t=0) and job 2 (t=50)
	// do not start in their arrival pass and leave for the cloud at once,
	// wait 0; job 3 (t=200) finds the node free and starts, wait 0.
	// Window [0, 200]. cloud cost 2 × 1·10/3600. cluster utilisation
	// 8·100 / (8·200) = 0.5; system adds the two cloud runs [0,10] and
	// [50,60]: (800 + 20) / 1600 = 0.5125. JCTs 100, 10, 10, 10: mean 32.5 s.
	js := []tj{{0, 100, 8}, {0, 10, 1}, {50, 10, 1}, {200, 10, 1}}
	for _, wait := range []string{"none", "constant:0s"} {
		res, _ := runBurst(t, []string{"n0"}, js, wait, 0)
		s := res.Summary
		assert.Equal(t, 2, s.CloudJobs, wait)
		assert.Equal(t, sec(0), res.Jobs[1].Start, wait)
		assert.Equal(t, sec(50), res.Jobs[2].Start, wait)
		assert.Equal(t, "onprem", res.Jobs[3].Where, wait)
		assert.InDelta(t, 0.0, s.AvgWaitH, 1e-15, wait)
		assert.InDelta(t, 2*10/h, s.CloudCost, 1e-12, wait)
		assert.InDelta(t, 32.5/h, s.AvgJCTH, 1e-12, wait)
		assert.InDelta(t, 0.5, s.ClusterUtilization, 1e-12, wait)
		assert.InDelta(t, 0.5125, s.SystemUtilization, 1e-12, wait)
	}
}

func TestBurstZeroDurations(t *testing.T) {
	// job 0 (8 GPUs, duration 0) starts and ends at 0 but holds the node for
	// the rest of its pass, so job 1 (8 GPUs, t=0) does not start in it. A
	// second step at 0 frees the node, then: with none, job 1's budget has
	// expired at 0 and it leaves for the cloud (wait 0); with 1 s it starts
	// on-prem at 0 in the second pass.
	js := []tj{{0, 0, 8}, {0, 5, 8}}
	res, log := runBurst(t, []string{"n0"}, js, "none", 0)
	assert.Equal(t, "onprem", res.Jobs[0].Where)
	assert.Equal(t, sec(0), res.Jobs[0].End)
	assert.Equal(t, "cloud", res.Jobs[1].Where)
	assert.Equal(t, sec(0), res.Jobs[1].Start)
	assert.Equal(t, sec(5), res.Jobs[1].End)
	kinds := []EventKind{}
	for _, e := range log {
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, []EventKind{EventArrive, EventArrive, EventStart, EventFinish, EventCloud, EventCloudEnd}, kinds)

	res, _ = runBurst(t, []string{"n0"}, js, "constant:1s", 0)
	assert.Equal(t, "onprem", res.Jobs[1].Where)
	assert.Equal(t, sec(0), res.Jobs[1].Start)
	assert.Equal(t, sec(5), res.Jobs[1].End)
	assert.Equal(t, 2, res.Summary.Passes, "one pass per step at t=0")
}

func TestBurstBestFitTies(t *testing.T) {
	// Nodes listed z, a, m (names sort otherwise), with different CPUs
	// (which must play no part). job 0 (4): all have 8 free → z, the first
	// listed. job 1 (4): z has 4, the fewest → z. job 2 (2): a and m tie at 8
	// → a. job 3 (2): a 6 < m 8 → a. job 4 (6): a has 4 → m. job 5 (2):
	// a 4, m 2 → m.
	pools, nodes := burstFleet([]string{"z", "a", "m"}, []int64{64000, 32000, 128000})
	js := jobsOf([]tj{{0, 1000, 4}, {1, 1000, 4}, {2, 1000, 2}, {3, 1000, 2}, {4, 1000, 6}, {5, 1000, 2}})
	var log []Event
	_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Burst: &Burst{Wait: WaitPolicy{Kind: WaitConstant, Budget: sec(15)}},
		Observe: func(e Event) { log = append(log, e) }})
	require.NoError(t, err)
	assert.Equal(t, map[int]string{0: "z", 1: "z", 2: "a", 3: "a", 4: "m", 5: "m"}, startsOn(log))
}

func TestBurstEqualSubmitKeepsFileOrder(t *testing.T) {
	// Ten jobs at t=0 (ids sort 0,1,10,2,... as strings, which must not
	// matter): 8-GPU node, each 1 GPU except job 0 (8): FIFO in file order,
	// so jobs 1..9 all wait for job 0 and start at 100 in order 1..8, job 9
	// waiting for one of them.
	js := []tj{{0, 100, 8}}
	for range 9 {
		js = append(js, tj{0, 10, 1})
	}
	res, log := runBurst(t, []string{"n0"}, js, "constant:1000s", 0)
	var order []int
	for _, e := range log {
		if e.Kind == EventStart {
			order = append(order, e.Job)
		}
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, order)
	assert.Equal(t, sec(110), res.Jobs[9].Start)
}

func TestBurstRefusesBadInput(t *testing.T) {
	pools, nodes := burstFleet([]string{"n0"}, nil)
	big := jobsOf([]tj{{0, 10, 9}})
	_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: big, Burst: &Burst{}})
	require.ErrorContains(t, err, "test job 0")
	require.ErrorContains(t, err, "fits no empty node")

	noCloud := pools[:1]
	_, err = Run(context.Background(), Config{Pools: noCloud, Nodes: nodes[:1], Jobs: jobsOf([]tj{{0, 10, 1}}), Burst: &Burst{}})
	require.ErrorContains(t, err, "cloud pool")

	_, err = Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 10, 1}, {1, 1, 1}}), Burst: &Burst{}, WarmupJobs: 1})
	require.ErrorContains(t, err, "need at least 3 jobs")
}

func TestParseWait(t *testing.T) {
	for _, c := range []struct {
		in   string
		want WaitPolicy
		err  string
	}{
		{"none", WaitPolicy{Kind: WaitNone}, ""},
		{"constant:15s", WaitPolicy{Kind: WaitConstant, Budget: 15 * Second}, ""},
		{"constant:598.711s", WaitPolicy{Kind: WaitConstant, Budget: 598711000000}, ""},
		{"constant:10m", WaitPolicy{Kind: WaitConstant, Budget: 600 * Second}, ""},
		{"constant:90", WaitPolicy{Kind: WaitConstant, Budget: 90 * Second}, ""},
		{"constant:-1s", WaitPolicy{}, "negative"},
		{"constant:soon", WaitPolicy{}, "want a duration"},
		{"cost:0.25", WaitPolicy{Kind: WaitCost, K: 0.25}, ""},
		{"cost:-1", WaitPolicy{}, "K must be"},
		{"star:0.1:5m:1.8", WaitPolicy{Kind: WaitStar, K: 0.1, L: 300 * Second, R: 1.8}, ""},
		{"star:1:2", WaitPolicy{}, "want star:K:L:R"},
		{"star:x:5m:1", WaitPolicy{}, "K (hours per GPU) and R"},
		{"later", WaitPolicy{}, "want none, constant:DURATION, cost:K or star:K:L:R"},
	} {
		got, err := ParseWait(c.in)
		if c.err != "" {
			assert.ErrorContains(t, err, c.err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
}

func TestBurstFIFOSkipStartsJobsBehindABlockedHead(t *testing.T) {
	// The blocked-head case under the out-of-order queue: job 0 takes 6 of
	// 8 GPUs for 100 s; job 1 (4) cannot start; job 2 (1, t=2) and job 3
	// (1, t=3) are skipped past it and start at once; job 4 (1, t=4) finds
	// no GPU and waits. At 100, 6 GPUs free: job 1 then job 4 start, in
	// queue order. Waits: 0, 99, 0, 0, 96 s.
	pools, nodes := burstFleet([]string{"n0"}, nil)
	js := jobsOf([]tj{{0, 100, 6}, {1, 10, 4}, {2, 500, 1}, {3, 500, 1}, {4, 10, 1}})
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Queue: QueueFIFOSkip,
		Burst: &Burst{Wait: WaitPolicy{Kind: WaitConstant, Budget: 1000 * Second}}})
	require.NoError(t, err)
	var starts []int64
	for _, r := range res.Jobs {
		starts = append(starts, r.Start/Second)
	}
	assert.Equal(t, []int64{0, 100, 2, 3, 100}, starts)
	assert.InDelta(t, (99+96)/5.0/h, res.Summary.AvgWaitH, 1e-12)
}

func TestBurstCostBudget(t *testing.T) {
	// cost:0.5: B = 0.5 × GPUs × duration. One 8-GPU node held by job 0
	// (8 GPUs, 1000 s). job 1 (2 GPUs, 100 s, t=0): B = 100 s, so it leaves
	// for the cloud at 100. job 2 (1 GPU, 3000 s, t=0): B = 1500 s, past
	// 1000, so it starts on-prem at 1000 (wait 1000 s).
	res, _ := runBurst(t, []string{"n0"}, []tj{{0, 1000, 8}, {0, 100, 2}, {0, 3000, 1}}, "cost:0.5", 0)
	assert.Equal(t, "cloud", res.Jobs[1].Where)
	assert.Equal(t, sec(100), res.Jobs[1].Start)
	assert.Equal(t, "onprem", res.Jobs[2].Where)
	assert.Equal(t, sec(1000), res.Jobs[2].Start)
	assert.InDelta(t, 2*100/h, res.Summary.CloudCost, 1e-12)
}

func TestBurstStarWait(t *testing.T) {
	// star:0.1:60s:2 on one 8-GPU node; budgets start at 0.
	// job 0 (8 GPUs, 1000 s, t=0) runs [0, 1000].
	// job 1 (1, 30 s, t=0): not started in its arrival pass, expires at 0;
	//   30 ≤ L: cloud as usual, wait 0, cost 30 GPU-s.
	// job 2 (2, 500 s, t=10): stint [10, 70], back at 70 with budget
	//   2 × (0.1·2 h − 60 s) = 2 × (720 − 60) = 1320 s: expiry 1390. Starts
	//   on-prem at 1000: wait 990 s; pays the stint, 2·60 GPU-s.
	// job 3 (4, 100 s, t=20): stint [20, 80], back at 80, budget
	//   2 × (1440 − 60) = 2760 s; starts at 1000 beside job 2: wait 980 s;
	//   pays 4·60.
	// job 4 (8, 200 s, t=30): stint [30, 90], back at 90, budget
	//   2 × (2880 − 60) = 5640 s; blocked at 1000 (2 GPUs left), starts when
	//   job 2 ends at 1500: wait 1470 s; pays 8·60.
	// job 5 (1, 1000 s, t=40): stint [40, 100], back at 100, budget
	//   2 × (360 − 60) = 600 s: expires again at 700 and runs its full
	//   duration in the cloud from 700: wait 660 s; pays 1·1000 only (the
	//   stint is not counted again).
	// cloud cost = (30 + 120 + 240 + 480 + 1000) / 3600; cloud jobs (whose
	// run is in the cloud): 1 and 5; mean wait (990+980+1470+660)/6 s.
	js := []tj{{0, 1000, 8}, {0, 30, 1}, {10, 500, 2}, {20, 100, 4}, {30, 200, 8}, {40, 1000, 1}}
	res, log := runBurst(t, []string{"n0"}, js, "star:0.1:60s:2", 0)
	var starts []int64
	var where []string
	for _, r := range res.Jobs {
		starts = append(starts, r.Start/Second)
		where = append(where, r.Where)
	}
	assert.Equal(t, []int64{0, 0, 1000, 1000, 1500, 700}, starts)
	assert.Equal(t, []string{"onprem", "cloud", "onprem", "onprem", "onprem", "cloud"}, where)
	s := res.Summary
	assert.Equal(t, 2, s.CloudJobs)
	assert.InDelta(t, 1870/h, s.CloudCost, 1e-12)
	assert.InDelta(t, 4100/6.0/h, s.AvgWaitH, 1e-12)
	returns := 0
	for _, e := range log {
		if e.Kind == EventReturn {
			returns++
		}
	}
	assert.Equal(t, 4, returns)
}

func TestPriceEventsChargePiecewise(t *testing.T) {
	// Owned pool priced 2 per GPU-hour, cloud 1; none. job 0 (8 GPUs,
	// 100 s) runs on-prem [0, 100]; job 1 (4 GPUs, 100 s) leaves for the
	// cloud at 0 and runs [0, 100]. At 40 the cloud price goes to 3, at 50
	// the owned one to 4. job 0 costs 8·(50·2 + 50·4) GPU-s·price = 2400/3600;
	// job 1 costs 4·(40·1 + 60·3) = 880/3600, all of it cloud cost.
	pools, nodes := burstFleet([]string{"n0"}, nil)
	pools[0].PricePerGPUHour = 2
	var log []Event
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 100, 8}, {0, 100, 4}}),
		Burst:       &Burst{Wait: WaitPolicy{Kind: WaitNone}},
		PriceEvents: []PriceEvent{{At: 50 * Second, Pool: "onprem", PricePerGPUHour: 4}, {At: 40 * Second, Pool: "cloud", PricePerGPUHour: 3}},
		Observe:     func(e Event) { log = append(log, e) }})
	require.NoError(t, err)
	assert.InDelta(t, 2400/h, res.Jobs[0].Cost, 1e-12)
	assert.InDelta(t, 0.0, res.Jobs[0].CloudCost, 1e-12)
	assert.InDelta(t, 880/h, res.Jobs[1].Cost, 1e-12)
	assert.InDelta(t, 880/h, res.Jobs[1].CloudCost, 1e-12)
	assert.InDelta(t, 880/h, res.Summary.CloudCost, 1e-12)
	assert.InDelta(t, 3280/h, res.Summary.Cost, 1e-12)
	prices := 0
	for _, e := range log {
		if e.Kind == EventPrice {
			prices++
		}
	}
	assert.Equal(t, 2, prices)

	_, err = Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 100, 8}}),
		PriceEvents: []PriceEvent{{At: 1, Pool: "nowhere", PricePerGPUHour: 1}}})
	require.ErrorContains(t, err, `price event 0: field pool: unknown pool "nowhere"`)
	_, err = Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 100, 8}}),
		PriceEvents: []PriceEvent{{At: 1, Pool: "cloud", PricePerGPUHour: -1}}})
	require.ErrorContains(t, err, "want a finite number ≥ 0")
}

func TestPriceEventDuringStarStint(t *testing.T) {
	// star:0.1:60s:2, cloud price 1 until 40, then 2. job 0 holds the node
	// [0, 1000]; job 1 (2 GPUs, 500 s, t=10) has its stint [10, 70] and,
	// back, starts on-prem at 1000: it pays the stint piecewise,
	// 2·(30·1 + 30·2) = 180 GPU-s·price.
	pools, nodes := burstFleet([]string{"n0"}, nil)
	wp, err := ParseWait("star:0.1:60s:2")
	require.NoError(t, err)
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 1000, 8}, {10, 500, 2}}),
		Burst: &Burst{Wait: wp}, PriceEvents: []PriceEvent{{At: 40 * Second, Pool: "cloud", PricePerGPUHour: 2}}})
	require.NoError(t, err)
	assert.Equal(t, sec(1000), res.Jobs[1].Start)
	assert.InDelta(t, 180/h, res.Jobs[1].CloudCost, 1e-12)
}

func TestNodeAddedDuringTheRun(t *testing.T) {
	// One 8-GPU node n0; a 16-GPU node n1 joins the owned pool at 10.
	// job 0 (8, 500 s) runs on n0 from 0. job 1 (8, 100 s) arrives at 10,
	// after the add (node events come before arrivals), and starts on n1.
	// job 2 (16, 50 s, t=30) fits only n1, which the fit check knows from
	// the start; it waits for job 1 and starts at 110.
	// Window [0, 30]: capacity 8·30 + 16·20 = 560 GPU-s, used 8·30 + 8·20 =
	// 400: utilisation 400/560.
	pools, nodes := burstFleet([]string{"n0"}, nil)
	add := gpuNode("n1", "onprem", 64000, 16)
	var log []Event
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 500, 8}, {10, 100, 8}, {30, 50, 16}}),
		Burst:      &Burst{Wait: WaitPolicy{Kind: WaitConstant, Budget: 1000 * Second}},
		NodeEvents: []NodeEvent{{At: 10 * Second, Node: "n1", State: scheduler.NodeReady, Add: &add}},
		Observe:    func(e Event) { log = append(log, e) }})
	require.NoError(t, err)
	assert.Equal(t, map[int]string{0: "n0", 1: "n1", 2: "n1"}, startsOn(log))
	assert.Equal(t, sec(110), res.Jobs[2].Start)
	assert.Equal(t, 24.0, res.Summary.OwnedGPUs)
	assert.InDelta(t, 400.0/560, res.Summary.ClusterUtilization, 1e-12)

	for _, c := range []struct {
		ev   NodeEvent
		want string
	}{
		{NodeEvent{Node: "n9", Add: &scheduler.Node{Name: "n9", Pool: "nowhere"}}, `field add.pool: unknown pool "nowhere"`},
		{NodeEvent{Node: "n0", Add: &scheduler.Node{Name: "n0", Pool: "onprem"}}, `node "n0" is already in the fleet`},
		{NodeEvent{Node: "c1", Add: &scheduler.Node{Name: "c1", Pool: "cloud"}}, "unlimited"},
		{NodeEvent{Node: "x", Add: &scheduler.Node{Name: "y", Pool: "onprem"}}, "is not the added node's name"},
	} {
		_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 10, 1}}),
			Burst: &Burst{}, NodeEvents: []NodeEvent{c.ev}})
		assert.ErrorContains(t, err, c.want)
	}
}

func TestRunLeavesItsConfigAlone(t *testing.T) {
	pools, nodes := burstFleet([]string{"n0"}, nil)
	add := gpuNode("n1", "onprem", 1000, 8)
	evs := []NodeEvent{{At: 5 * Second, Node: "n1", Add: &add}}
	_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 10, 1}}), Burst: &Burst{}, NodeEvents: evs})
	require.NoError(t, err)
	assert.Same(t, &add, evs[0].Add)
	assert.Equal(t, int64(1000), add.CPUMilli)
}

func TestSeriesSamplesTheState(t *testing.T) {
	// Owned pool priced 2, cloud 1, budgets of 8 s, samples every 10 s.
	// job 0 (8 GPUs) holds the node [0, 25]; job 1 (4, 30 s, t=5) leaves for
	// the cloud at 13 and runs to 43; job 2 (2, 10 s, t=12) waits behind it
	// and leaves at 20, running to 30. Samples show the state after their
	// instant: at 10 job 1 waits (4 pending); at 20 both are in the cloud
	// (6 GPUs, spend 2·8 + 6 = 22); at 30 and 40 only job 1 (spend 4).
	pools, nodes := burstFleet([]string{"n0"}, nil)
	pools[0].PricePerGPUHour = 2
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 25, 8}, {5, 30, 4}, {12, 10, 2}}),
		Burst: &Burst{Wait: WaitPolicy{Kind: WaitConstant, Budget: 8 * Second}}, SeriesStep: 10 * Second})
	require.NoError(t, err)
	require.NotNil(t, res.Series)
	assert.Equal(t, []string{"onprem", "cloud"}, res.Series.Pools)
	want := []Sample{
		{At: 0, Allocated: []float64{8, 0}, Stranded: []float64{0, 0}, Running: 1, SpendPerHour: 16},
		{At: 10 * Second, Allocated: []float64{8, 0}, Stranded: []float64{0, 0}, Pending: 4, Running: 1, Queued: 1, SpendPerHour: 16},
		{At: 20 * Second, Allocated: []float64{8, 0}, Stranded: []float64{0, 0}, Cloud: 6, Running: 1, SpendPerHour: 22},
		{At: 30 * Second, Allocated: []float64{0, 0}, Stranded: []float64{0, 0}, Cloud: 4, SpendPerHour: 4},
		{At: 40 * Second, Allocated: []float64{0, 0}, Stranded: []float64{0, 0}, Cloud: 4, SpendPerHour: 4},
	}
	assert.Equal(t, want, res.Series.Samples)

	_, err = Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 25, 8}, {5, 30, 4}}), SeriesStep: 1})
	require.ErrorContains(t, err, "take a longer step")
}
