package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/traces"
)

func ownedFleet(n, gpus int) ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{{Name: "onprem", Kind: scheduler.PoolOnPrem}}
	var nodes []scheduler.Node
	for i := range n {
		nodes = append(nodes, gpuNode(fmt.Sprintf("n%d", i), "onprem", 64000, gpus))
	}
	return pools, nodes
}

func collect(cfg *Config) *[]Event {
	var log []Event
	cfg.Observe = func(e Event) { log = append(log, e) }
	return &log
}

// randomWorkload mixes training and inference jobs over a few tenants.
func randomWorkload(seed uint64, n int) []Job {
	rng := rand.New(rand.NewPCG(seed, 3))
	var js []Job
	tm := int64(0)
	for i := range n {
		tm += int64(rng.IntN(30)) * Second
		j := scheduler.Job{ID: fmt.Sprintf("j%d", i), Kind: scheduler.Training, Count: 1 + rng.IntN(2),
			Tenant: []string{"a", "b", "c"}[rng.IntN(3)], Priority: int32(rng.IntN(2)),
			Task: scheduler.Task{GPUs: 1 + rng.IntN(4), GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}
		if rng.IntN(5) == 0 {
			j.Kind, j.Count = scheduler.Inference, 2
		}
		js = append(js, Job{Job: j, Submit: tm, Duration: int64(rng.IntN(600)) * Second})
	}
	return js
}

var kindOrder = map[EventKind]int{EventFinish: 0, EventCloudEnd: 0, EventNode: 1, EventRequeue: 1, EventDegrade: 1,
	EventCloud: 2, EventArrive: 3, EventStart: 4, EventReplace: 4}

func TestEventOrderAndClock(t *testing.T) {
	pools, nodes := ownedFleet(4, 8)
	cfg := Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(1, 300), Seed: 1, Preempt: true,
		Checkpoint: Checkpoint{Interval: 60 * Second, Restart: 10 * Second},
		NodeEvents: []NodeEvent{{At: 500 * Second, Node: "n1", State: scheduler.NodeDown}, {At: 900 * Second, Node: "n1", State: scheduler.NodeReady}}}
	log := collect(&cfg)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.NotEmpty(t, *log)
	// The clock never goes back; within an instant a step applies
	// completions, node events, expiries and arrivals in that order, then
	// the pass's starts (a later step at the same instant starts over).
	for i := 1; i < len(*log); i++ {
		a, b := (*log)[i-1], (*log)[i]
		require.LessOrEqual(t, a.At, b.At, "event %d", i)
		if a.At == b.At && kindOrder[b.Kind] < kindOrder[a.Kind] {
			// only a new step may go back in phase: after a pass's starts.
			require.Contains(t, []EventKind{EventStart, EventReplace, EventRequeue}, a.Kind, "event %d: %v after %v", i, b, a)
		}
	}
	// Every start happens at or after the job's submit; every end after its
	// start by at least its duration.
	for _, r := range res.Jobs {
		require.Equal(t, "ended", r.State)
		require.GreaterOrEqual(t, r.Start, r.Submit)
		require.GreaterOrEqual(t, r.End-r.Start, r.Duration, "job %s", r.ID)
	}
}

// reconcile checks the summary against the event log: every job arrives
// once, ends at most once, and the counts and waits agree.
func reconcile(t *testing.T, log []Event, res *Result, w int) {
	t.Helper()
	arrive := map[int]int64{}
	first := map[int]int64{}
	ends := map[int]int{}
	running := map[int]bool{}
	cloud := map[int]bool{}
	for _, e := range log {
		switch e.Kind {
		case EventArrive:
			_, dup := arrive[e.Job]
			require.False(t, dup, "job %d arrives twice", e.Job)
			arrive[e.Job] = e.At
		case EventStint:
			running[e.Job], cloud[e.Job] = true, true
		case EventReturn:
			running[e.Job] = false
		case EventStart, EventCloud:
			if _, ok := first[e.Job]; !ok {
				first[e.Job] = e.At
			}
			running[e.Job] = true
			cloud[e.Job] = e.Kind == EventCloud
		case EventRequeue:
			running[e.Job] = false
		case EventFinish, EventCloudEnd:
			ends[e.Job]++
			require.Equal(t, 1, ends[e.Job], "job %d ends twice", e.Job)
			running[e.Job] = false
		}
	}
	s := res.Summary
	assert.Equal(t, len(res.Jobs), s.Total)
	assert.Equal(t, s.Total-s.Future, len(arrive), "arrivals")
	assert.Equal(t, s.Ended, len(ends), "ends")
	nRun, nCloud := 0, 0
	for k, r := range running {
		if r && ends[k] == 0 {
			if cloud[k] {
				nCloud++
			} else {
				nRun++
			}
		}
	}
	assert.Equal(t, s.Running, nRun, "running")
	assert.Equal(t, s.InCloud, nCloud, "in cloud")
	assert.Equal(t, s.Total, s.Ended+s.Running+s.Queued+s.InCloud+s.Future)
	// The measured waits, from the log alone.
	sum, n, clouds := 0.0, 0, 0
	for k := w; k <= min(len(res.Jobs)-w, len(res.Jobs)-1); k++ {
		if st, ok := first[k]; ok {
			sum += hours(st - arrive[k])
			n++
			if cloud[k] {
				clouds++
			}
		}
	}
	if n > 0 {
		assert.InDelta(t, sum/float64(n), s.AvgWaitH, 1e-9)
	}
	assert.Equal(t, clouds, s.CloudJobs)
}

func TestConservationAndReconcile(t *testing.T) {
	for _, horizon := range []int64{0, 2000 * Second} {
		pools, nodes := ownedFleet(3, 8)
		cfg := Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(2, 400), Seed: 2, Horizon: horizon, WarmupJobs: 3,
			NodeEvents: []NodeEvent{{At: 700 * Second, Node: "n0", State: scheduler.NodeDown}, {At: 800 * Second, Node: "n0", State: scheduler.NodeReady}}}
		log := collect(&cfg)
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		reconcile(t, *log, res, 3)
		if horizon > 0 {
			s := res.Summary
			assert.Positive(t, s.Future+s.Queued+s.Running, "the horizon cuts the run")
			for _, e := range *log {
				assert.LessOrEqual(t, e.At, horizon)
			}
		} else {
			assert.Equal(t, len(res.Jobs), res.Summary.Ended)
		}
	}
	// and with bursting, to the end and cut at 1.5 h (jobs still in the cloud)
	for _, horizon := range []int64{0, 5400 * Second} {
		js := genSection7(4, 32, 3)
		pools, nodes := burstFleet([]string{"n0", "n1", "n2", "n3"}, nil)
		cfg := Config{Pools: pools, Nodes: nodes, Jobs: jobsOf(js), Burst: &Burst{Wait: WaitPolicy{Kind: WaitConstant, Budget: 15 * Second}}, WarmupJobs: 5, Horizon: horizon}
		log := collect(&cfg)
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		require.Positive(t, res.Summary.CloudJobs)
		if horizon > 0 {
			require.Positive(t, res.Summary.InCloud)
		}
		reconcile(t, *log, res, 5)
	}
}

func TestCheckpointRestart(t *testing.T) {
	// One 8-GPU node; an 8-GPU training job of 1000 s work starts at 0.
	// The node goes down at 350 and back at 400; checkpoints every 100 s,
	// restart cost 20 s. At 350 the work up to 300 is saved, 50 s lost
	// (8·50 GPU-s). It restarts at 400: 20 s loading, then 700 s of work:
	// it ends at 1120. GPU time held: 8·(350 + 720) s. Without checkpoints
	// (interval 0) all 350 s are lost and it ends at 400 + 20 + 1000 = 1420.
	// A second loss at 410, inside the restart, saves nothing more and
	// loses 10 s.
	cases := []struct {
		name                 string
		interval             int64
		events               []NodeEvent
		end                  int64
		held, lost           float64 // GPU-seconds
		preemptions, restart int
	}{
		{"checkpointed", 100, []NodeEvent{{At: 350, Node: "n0", State: scheduler.NodeDown}, {At: 400, Node: "n0", State: scheduler.NodeReady}}, 1120, 8 * (350 + 720), 8 * 50, 1, 1},
		{"no checkpoints", 0, []NodeEvent{{At: 350, Node: "n0", State: scheduler.NodeDown}, {At: 400, Node: "n0", State: scheduler.NodeReady}}, 1420, 8 * (350 + 1020), 8 * 350, 1, 1},
		{"lost during restart", 100, []NodeEvent{{At: 350, Node: "n0", State: scheduler.NodeDown}, {At: 400, Node: "n0", State: scheduler.NodeReady},
			{At: 410, Node: "n0", State: scheduler.NodeDown}, {At: 500, Node: "n0", State: scheduler.NodeReady}}, 500 + 20 + 700, 8 * (350 + 10 + 720), 8 * (50 + 10), 2, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pools, nodes := ownedFleet(1, 8)
			for i := range c.events {
				c.events[i].At *= Second
			}
			js := []Job{{Job: scheduler.Job{ID: "train", Kind: scheduler.Training, Count: 1, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}},
				Duration: 1000 * Second}}
			res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js,
				Checkpoint: Checkpoint{Interval: c.interval * Second, Restart: 20 * Second}, NodeEvents: c.events})
			require.NoError(t, err)
			r := res.Jobs[0]
			assert.Equal(t, c.end*Second, r.End)
			assert.Equal(t, int64(0), r.Start)
			assert.InDelta(t, c.held/h, r.GPUHours, 1e-12)
			assert.InDelta(t, c.lost/h, r.LostGPUHours, 1e-12)
			assert.Equal(t, c.preemptions, r.Preemptions)
			assert.Equal(t, c.restart, r.Restarts)
		})
	}
}

func TestServiceReplicaReplaced(t *testing.T) {
	// A service of 2 one-GPU replicas for 1000 s on 3 nodes (spread: n0 and
	// n1). n0 goes down at 100: the replica there is lost and put back at
	// once on n2; the service keeps its lifetime and ends at 1000, with
	// no requeue.
	pools, nodes := ownedFleet(3, 1)
	js := []Job{{Job: scheduler.Job{ID: "svc", Kind: scheduler.Inference, Count: 2, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}},
		Duration: 1000 * Second}}
	cfg := Config{Pools: pools, Nodes: nodes, Jobs: js, NodeEvents: []NodeEvent{{At: 100 * Second, Node: "n0", State: scheduler.NodeDown}}}
	log := collect(&cfg)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	var kinds []string
	for _, e := range *log {
		kinds = append(kinds, fmt.Sprintf("%d %s %s", e.At/Second, e.Kind, e.Node))
	}
	assert.Equal(t, []string{"0 arrive ", "0 start n0", "100 node n0", "100 degrade ", "100 replace n2", "1000 finish "}, kinds)
	assert.Equal(t, 1000*Second, res.Jobs[0].End)
	assert.Equal(t, 0, res.Jobs[0].Preemptions)
}

func TestPreemptionRequeuesLowerPriority(t *testing.T) {
	// One 8-GPU node: a preemptible low-priority job (8 GPUs, 1000 s) runs
	// from 0; a high-priority one (8 GPUs, 100 s) arrives at 300 and evicts
	// it. Checkpoints every 100 s: the low job keeps 300 s, restarts at 400
	// (when the high one ends) with 10 s of loading: ends 400+10+700 = 1110.
	pools, nodes := ownedFleet(1, 8)
	js := []Job{
		{Job: scheduler.Job{ID: "low", Kind: scheduler.Training, Count: 1, Preemptible: true, Checkpointable: true, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Duration: 1000 * Second},
		{Job: scheduler.Job{ID: "high", Kind: scheduler.Training, Count: 1, Priority: 5, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Submit: 300 * Second, Duration: 100 * Second},
	}
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Preempt: true,
		Checkpoint: Checkpoint{Interval: 100 * Second, Restart: 10 * Second}})
	require.NoError(t, err)
	assert.Equal(t, 300*Second, res.Jobs[1].Start)
	assert.Equal(t, 1110*Second, res.Jobs[0].End)
	assert.Equal(t, 1, res.Jobs[0].Preemptions)
}

func TestDeterministicAcrossRuns(t *testing.T) {
	for _, pol := range []string{"best-fit", "random", "fgd"} {
		pools, nodes := ownedFleet(6, 8)
		run := func(seed uint64) []byte {
			res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(9, 300), Policy: pol, Seed: seed, Queue: QueueBackfill})
			require.NoError(t, err)
			b, err := json.Marshal(res)
			require.NoError(t, err)
			return b
		}
		assert.Equal(t, run(1), run(1), pol)
	}
}

func TestFromTraceDurations(t *testing.T) {
	src := []traces.Job{
		{ID: "a", Submit: 10, Duration: 0, Start: -1, End: -1, Tasks: []traces.Task{{Count: 1, GPUs: 1, GPUMilli: 1000}}},
		{ID: "b", Submit: 20, Duration: -1, Start: -1, End: -1, Tasks: []traces.Task{{Count: 1, GPUs: 2, GPUMilli: 1000}}},
	}
	_, err := FromTrace(src, "jobs.csv", 0)
	require.ErrorContains(t, err, "jobs.csv: record 2 (job b): field duration")
	js, err := FromTrace(src, "jobs.csv", 60*Second)
	require.NoError(t, err)
	require.Len(t, js, 2)
	assert.Equal(t, int64(0), js[0].Duration, "a recorded zero stays zero")
	assert.Equal(t, 60*Second, js[1].Duration)
	assert.Equal(t, 20*Second, js[1].Submit)
}

// The naive once-a-second mode runs more passes and, on a strict FIFO queue
// where nothing changes between events, places every job exactly as the
// event-driven run does.
func TestPassEveryMatchesEventDriven(t *testing.T) {
	pools, nodes := ownedFleet(3, 8)
	js := randomWorkload(5, 150)
	ev, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Seed: 1})
	require.NoError(t, err)
	naive, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Seed: 1, PassEvery: Second})
	require.NoError(t, err)
	assert.Greater(t, naive.Summary.Passes, ev.Summary.Passes)
	assert.Equal(t, ev.Jobs, naive.Jobs)
}

// Runs share nothing: several at once give what each gives alone (run with
// -race), as forecasting's parallel evaluation of fleets needs.
func TestRunConcurrently(t *testing.T) {
	pools, nodes := ownedFleet(4, 8)
	cfgs := []Config{
		{Pools: pools, Nodes: nodes, Jobs: randomWorkload(21, 120), Policy: "best-fit", Seed: 1},
		{Pools: pools, Nodes: nodes, Jobs: randomWorkload(22, 120), Policy: "fgd", Seed: 2},
		{Pools: pools, Nodes: nodes, Jobs: randomWorkload(23, 120), Policy: "random", Seed: 3, Queue: QueueBackfill},
	}
	want := make([][]byte, len(cfgs))
	for i, c := range cfgs {
		res, err := Run(context.Background(), c)
		require.NoError(t, err)
		want[i], err = json.Marshal(res)
		require.NoError(t, err)
	}
	got := make([][]byte, len(cfgs))
	errs := make([]error, len(cfgs))
	done := make(chan int)
	for i, c := range cfgs {
		go func() {
			res, err := Run(context.Background(), c)
			if err == nil {
				got[i], err = json.Marshal(res)
			}
			errs[i] = err
			done <- i
		}()
	}
	for range cfgs {
		<-done
	}
	for i := range cfgs {
		require.NoError(t, errs[i])
		assert.Equal(t, string(want[i]), string(got[i]), "config %d", i)
	}
}

func TestRunStopsOnCancelledContext(t *testing.T) {
	pools, nodes := ownedFleet(2, 8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(1, 50)})
	require.ErrorIs(t, err, context.Canceled)
}

func TestProgressReportsEveryArrival(t *testing.T) {
	pools, nodes := ownedFleet(4, 8)
	var seen [][2]int
	_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(3, 2100),
		Progress: func(a, n int) { seen = append(seen, [2]int{a, n}) }})
	require.NoError(t, err)
	assert.Equal(t, [][2]int{{1024, 2100}, {2048, 2100}, {2100, 2100}}, seen)
}

func TestGangOverTwoPoolsChargedPerPool(t *testing.T) {
	// A gang of two 8-GPU tasks on two 8-GPU nodes, one in a pool priced
	// 1 per GPU-hour, one priced 3: one hour costs 8·1 + 8·3 = 32, and the
	// run's record holds 8 GPUs in each pool.
	pools := []scheduler.Pool{{Name: "cheap", Kind: scheduler.PoolOnPrem, PricePerGPUHour: 1}, {Name: "dear", Kind: scheduler.PoolOutposts, PricePerGPUHour: 3}}
	nodes := []scheduler.Node{gpuNode("a", "cheap", 64000, 8), gpuNode("b", "dear", 64000, 8)}
	js := []Job{{Job: scheduler.Job{ID: "gang", Kind: scheduler.Training, Count: 2, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Duration: 3600 * Second}}
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, RecordRuns: true})
	require.NoError(t, err)
	r := res.Jobs[0]
	assert.InDelta(t, 32.0, r.Cost, 1e-12)
	assert.InDelta(t, 16.0, r.GPUHours, 1e-12)
	require.Len(t, r.Runs, 1)
	assert.Equal(t, int64(0), r.Runs[0].Start)
	assert.Equal(t, 3600*Second, r.Runs[0].End)
	assert.ElementsMatch(t, []PoolGPUs{{"cheap", 8}, {"dear", 8}}, r.Runs[0].Pools)

	// Without RecordRuns the records carry no runs, and the cost is the same.
	res, err = Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js})
	require.NoError(t, err)
	assert.Nil(t, res.Jobs[0].Runs)
	assert.InDelta(t, 32.0, res.Jobs[0].Cost, 1e-12)
}

func TestRecordRunsAcrossARequeue(t *testing.T) {
	// The checkpoint case: runs [0, 350] and [400, 1120], each with 8 GPUs
	// in the one pool.
	pools, nodes := ownedFleet(1, 8)
	js := []Job{{Job: scheduler.Job{ID: "train", Kind: scheduler.Training, Count: 1, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Duration: 1000 * Second}}
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, RecordRuns: true,
		Checkpoint: Checkpoint{Interval: 100 * Second, Restart: 20 * Second},
		NodeEvents: []NodeEvent{{At: 350 * Second, Node: "n0", State: scheduler.NodeDown}, {At: 400 * Second, Node: "n0", State: scheduler.NodeReady}}})
	require.NoError(t, err)
	one := []PoolGPUs{{"onprem", 8}}
	assert.Equal(t, []Segment{{0, 350 * Second, one}, {400 * Second, 1120 * Second, one}}, res.Jobs[0].Runs)
}

func TestCutsPartitionTheMeasuredJobs(t *testing.T) {
	pools := []scheduler.Pool{{Name: "hall", Kind: scheduler.PoolOnPrem, PricePerGPUHour: 0.5}, {Name: "racks", Kind: scheduler.PoolOutposts, PricePerGPUHour: 2}}
	nodes := []scheduler.Node{gpuNode("h0", "hall", 64000, 8), gpuNode("h1", "hall", 64000, 8), gpuNode("r0", "racks", 64000, 8)}
	res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(8, 300), WarmupJobs: 10})
	require.NoError(t, err)
	s := res.Summary
	for name, cuts := range map[string]map[string]Cut{"tenant": s.ByTenant, "size": s.BySize, "pool": s.ByPool} {
		jobs, gpuH, cost := 0, 0.0, 0.0
		for _, c := range cuts {
			jobs += c.Jobs
			gpuH += c.GPUHours
			cost += c.Cost
		}
		assert.Equal(t, s.Jobs, jobs, name)
		assert.InDelta(t, s.GPUHours, gpuH, 1e-9, name)
		assert.InDelta(t, s.Cost, cost, 1e-9, name)
	}
	assert.Len(t, s.ByTenant, 3)
	assert.Contains(t, s.ByPool, "racks")
	// One cut recomputed from the records: tenant a's mean wait.
	sum, n := 0.0, 0
	for i, r := range res.Jobs {
		if i >= 10 && i <= len(res.Jobs)-10 && r.Tenant == "a" {
			d, ok := r.Wait()
			require.True(t, ok)
			sum += hours(d)
			n++
		}
	}
	assert.Equal(t, n, s.ByTenant["a"].Jobs)
	assert.InDelta(t, sum/float64(n), s.ByTenant["a"].WaitH.Mean, 1e-12)
	assert.Equal(t, "2-4", SizeBucket(3))
	assert.Equal(t, "share", SizeBucket(0.5))
	assert.Equal(t, "cpu", SizeBucket(0))
	assert.Equal(t, ">64", SizeBucket(65))
}
