package replay

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oracleRun is BURST-METHOD §3–§5 written down literally, with no state
// machine and no index: a list of nodes' free GPUs, a FIFO queue and the
// clock jumping from instant to instant. It is the reference the engine
// (the core's best-fit through the state machine) must agree with.
type oracleJob struct {
	submit, dur int64 // ns
	budget      int64 // the current expiry is submit + budget
	gpus        int
	returned    bool
	returnAt    int64
	start, end  int64
	cloud       bool
	state       int // 0 future, 1 queued, 2 running, 3 cloud, 4 done, 5 stint
}

func oracleRun(js []tj, nodes int, budget int64) []oracleJob {
	return oracleRunWith(js, nodes, func(tj) int64 { return budget }, false, nil)
}

// starParams are Star-Wait's K (hours per GPU), L and R for the oracle.
type starParams struct {
	K float64
	L int64
	R float64
}

// oracleRunWith takes a budget per job, and skip for the out-of-order queue
// (§8): the pass looks at every queued job in order and starts those that fit.
func oracleRunWith(js []tj, nodes int, budgetOf func(tj) int64, skip bool, star *starParams) []oracleJob {
	jobs := make([]oracleJob, len(js))
	for i, j := range js {
		jobs[i] = oracleJob{submit: j.submit * Second, dur: j.dur * Second, budget: budgetOf(j), gpus: j.gpus, start: -1, end: -1}
	}
	// jobs are given in submit order (the tests make them so).
	free := make([]int, nodes)
	for i := range free {
		free[i] = 8
	}
	node := make([]int, len(jobs))
	var queue []int
	next := 0
	t := int64(0)
	if len(jobs) > 0 {
		t = jobs[0].submit
	}
	for {
		// 1. completions
		for i := range jobs {
			j := &jobs[i]
			if j.state == 2 && j.start+j.dur <= t {
				j.state, j.end = 4, j.start+j.dur
				free[node[i]] += j.gpus
			}
			if j.state == 3 && j.start+j.dur <= t {
				j.state, j.end = 4, j.start+j.dur
			}
		}
		// 2. expiries
		kept := queue[:0]
		for _, i := range queue {
			if jobs[i].submit+jobs[i].budget == t {
				if star != nil && !jobs[i].returned && jobs[i].dur > star.L {
					jobs[i].state, jobs[i].returnAt = 5, t+star.L
					continue
				}
				jobs[i].state, jobs[i].start, jobs[i].cloud = 3, t, true
				continue
			}
			kept = append(kept, i)
		}
		queue = kept
		// 3. arrivals
		for next < len(jobs) && jobs[next].submit == t {
			jobs[next].state = 1
			queue = append(queue, next)
			next++
		}
		// Star-Wait: back from the stint, after the arrivals, in order
		for i := range jobs {
			j := &jobs[i]
			if j.state == 5 && j.returnAt == t {
				j.state, j.returned = 1, true
				b := star.R * max(0, star.K*float64(j.gpus)*float64(Hour)-float64(t-j.submit))
				j.budget = t - j.submit + int64(math.Round(b))
				queue = append(queue, i)
			}
		}
		// 4. strict FIFO pass (or, with skip, over the whole queue), best
		// fit by fewest free GPUs, lowest node
		left := queue[:0:0]
		for q, i := range queue {
			best := -1
			for n, f := range free {
				if f >= jobs[i].gpus && (best < 0 || f < free[best]) {
					best = n
				}
			}
			if best < 0 {
				if !skip {
					left = append(left, queue[q:]...)
					break
				}
				left = append(left, i)
				continue
			}
			free[best] -= jobs[i].gpus
			node[i] = best
			jobs[i].state, jobs[i].start = 2, t
		}
		queue = left
		// 5. next instant
		nt := int64(math.MaxInt64)
		for _, j := range jobs {
			if j.state == 2 || j.state == 3 {
				nt = min(nt, j.start+j.dur)
			}
			if j.state == 1 {
				nt = min(nt, j.submit+j.budget)
			}
			if j.state == 5 {
				nt = min(nt, j.returnAt)
			}
		}
		if next < len(jobs) {
			nt = min(nt, jobs[next].submit)
		}
		if nt == math.MaxInt64 {
			return jobs
		}
		t = nt
	}
}

// genSection7 makes a trace like BURST-METHOD §7's: Poisson arrivals at
// rate per hour for the given hours with gaps of at least 3 s; GPUs 1, 2,
// 4, 8 with probabilities 0.70, 0.15, 0.10, 0.05; durations exponential
// with mean 45 min, clipped to [30, 10000] s, whole seconds.
func genSection7(seed uint64, rate, hoursLong float64) []tj {
	rng := rand.New(rand.NewPCG(seed, 7))
	var out []tj
	t := int64(0)
	for {
		gap := int64(math.Round(rng.ExpFloat64() * 3600 / rate))
		t += max(3, gap)
		if float64(t) > hoursLong*3600 {
			return out
		}
		g := 1
		switch u := rng.Float64(); {
		case u < 0.70:
			g = 1
		case u < 0.85:
			g = 2
		case u < 0.95:
			g = 4
		default:
			g = 8
		}
		d := int64(math.Round(rng.ExpFloat64() * 45 * 60))
		d = min(max(d, 30), 10000)
		out = append(out, tj{submit: t, dur: d, gpus: g})
	}
}

func TestBurstMatchesOracleOnSection7Trace(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		js := genSection7(seed, 32, 3)
		require.Greater(t, len(js), 60)
		mean := 0.0
		for _, j := range js {
			mean += float64(j.dur)
		}
		mean /= float64(len(js))
		for _, budget := range []int64{0, 15 * Second, int64(mean / 4 * float64(Second))} {
			wp := WaitPolicy{Kind: WaitConstant, Budget: budget}
			pools, nodes := burstFleet([]string{"n0", "n1", "n2", "n3"}, nil)
			res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf(js), Burst: &Burst{Wait: wp}, WarmupJobs: 5})
			require.NoError(t, err)
			want := oracleRun(js, 4, budget)
			for i, o := range want {
				r := res.Jobs[i]
				require.Equal(t, o.start, r.Start, "seed %d budget %d job %d start", seed, budget, i)
				require.Equal(t, o.end, r.End, "seed %d budget %d job %d end", seed, budget, i)
				require.Equal(t, o.cloud, r.Where == "cloud", "seed %d budget %d job %d cloud", seed, budget, i)
			}
			checkSummary(t, want, res.Summary, 5, 4*8)
		}
	}
}

// checkSummary recomputes the §5 metrics from the oracle's jobs.
func checkSummary(t *testing.T, jobs []oracleJob, s Summary, w, ownedGPUs int) {
	t.Helper()
	n := len(jobs)
	ws, we := jobs[w].submit, jobs[n-w-1].submit
	T := hours(we - ws)
	over := func(a, b int64) float64 { return hours(max(0, min(b, we)-max(a, ws))) }
	var waits, jcts []float64
	cost, cluster, system := 0.0, 0.0, 0.0
	cloud := 0
	for i, j := range jobs {
		if j.cloud {
			system += float64(j.gpus) * over(j.start, j.start+j.dur)
		} else {
			cluster += float64(j.gpus) * over(j.start, j.start+j.dur)
			system += float64(j.gpus) * over(j.start, j.start+j.dur)
		}
		if i < w || i > n-w {
			continue
		}
		waits = append(waits, hours(j.start-j.submit))
		jcts = append(jcts, hours(j.start-j.submit+j.dur))
		if j.cloud {
			cloud++
			cost += float64(j.gpus) * hours(j.dur)
		}
	}
	slices.Sort(jcts)
	mean := func(v []float64) float64 {
		x := 0.0
		for _, y := range v {
			x += y
		}
		return x / float64(len(v))
	}
	assert.Equal(t, n-2*w+1, s.Jobs)
	assert.Equal(t, cloud, s.CloudJobs)
	assert.InDelta(t, cost, s.CloudCost, 1e-9)
	assert.InDelta(t, cost/T, s.AvgCloudCost, 1e-9)
	assert.InDelta(t, mean(waits), s.AvgWaitH, 1e-12)
	assert.InDelta(t, mean(jcts), s.AvgJCTH, 1e-12)
	assert.Equal(t, jcts[int(math.RoundToEven(0.9*float64(len(jcts)-1)))], s.P90JCTH)
	assert.Equal(t, jcts[int(math.RoundToEven(0.99*float64(len(jcts)-1)))], s.P99JCTH)
	assert.InDelta(t, cluster/(float64(ownedGPUs)*T), s.ClusterUtilization, 1e-12)
	assert.InDelta(t, system/(float64(ownedGPUs)*T), s.SystemUtilization, 1e-12)
}

// Small random traces with the method's corner cases made likely: equal
// submit times, zero durations, 8-GPU jobs, zero budgets.
func TestBurstMatchesOracleOnRandomSmallTraces(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 99))
		n := 1 + rng.IntN(30)
		js := make([]tj, n)
		tm := int64(0)
		for i := range js {
			tm += int64(rng.IntN(4)) * 5
			js[i] = tj{submit: tm, dur: int64(rng.IntN(4)) * 10, gpus: []int{1, 2, 4, 8}[rng.IntN(4)]}
		}
		nodes := 1 + rng.IntN(3)
		names := []string{"n0", "n1", "n2"}[:nodes]
		budget := int64(rng.IntN(4)) * 5 * Second
		wait := WaitPolicy{Kind: WaitConstant, Budget: budget}
		budgetOf := func(tj) int64 { return budget }
		if seed%3 == 1 { // cost:K, K = 0.05 h per GPU-hour: B = 0.05 × g × d
			wait = WaitPolicy{Kind: WaitCost, K: 0.05}
			budgetOf = func(j tj) int64 { return int64(math.Round(0.05 * float64(j.gpus) * float64(j.dur*Second))) }
		}
		var star *starParams
		if seed%5 == 2 { // star:0.01:10s:1.5 (budget 0 on arrival)
			star = &starParams{K: 0.01, L: 10 * Second, R: 1.5}
			wait = WaitPolicy{Kind: WaitStar, K: star.K, L: star.L, R: star.R}
			budgetOf = func(tj) int64 { return 0 }
		}
		queue, skip := QueueFIFO, seed%2 == 1
		if skip {
			queue = QueueFIFOSkip
		}
		pools, fl := burstFleet(names, nil)
		res, err := Run(context.Background(), Config{Pools: pools, Nodes: fl, Jobs: jobsOf(js), Queue: queue,
			Burst: &Burst{Wait: wait}})
		require.NoError(t, err)
		want := oracleRunWith(js, nodes, budgetOf, skip, star)
		for i, o := range want {
			r := res.Jobs[i]
			require.Equal(t, []any{o.start, o.end, o.cloud}, []any{r.Start, r.End, r.Where == "cloud"}, "seed %d job %d of %v", seed, i, js)
			cost := 0.0
			switch {
			case o.cloud:
				cost = float64(o.gpus) * hours(o.dur)
			case o.returned:
				cost = float64(o.gpus) * hours(star.L)
			}
			require.InDelta(t, cost, r.CloudCost, 1e-12, "seed %d job %d cloud cost", seed, i)
		}
	}
}

func TestBurstDeterministicBytes(t *testing.T) {
	js := genSection7(11, 32, 3)
	pools, nodes := burstFleet([]string{"n0", "n1", "n2", "n3"}, nil)
	run := func() []byte {
		res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf(js), Seed: 5,
			Burst: &Burst{Wait: WaitPolicy{Kind: WaitConstant, Budget: 15 * Second}}, WarmupJobs: 5})
		require.NoError(t, err)
		b, err := json.Marshal(res)
		require.NoError(t, err)
		return b
	}
	a, b := run(), run()
	assert.Equal(t, a, b)
}
