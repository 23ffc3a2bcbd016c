package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// unfitWorkload is n jobs of 1 to 4 GPUs on a fleet of 4-GPU nodes, and
// among them, at random, bad jobs of 5 to 16 GPUs, which fit no node.
func unfitWorkload(seed uint64, n, bad int) (jobs []Job, unfitIDs []string) {
	r := rand.New(rand.NewPCG(seed, 1))
	var js []tj
	isBad := map[int]bool{}
	for len(isBad) < bad {
		isBad[r.IntN(n+bad)] = true
	}
	at := int64(0)
	for i := range n + bad {
		at += int64(r.IntN(40))
		g := 1 + r.IntN(4)
		if isBad[i] {
			g = 5 + r.IntN(12)
		}
		js = append(js, tj{submit: at, dur: 30 + int64(r.IntN(600)), gpus: g})
	}
	jobs = jobsOf(js)
	for i := range jobs {
		if isBad[i] {
			unfitIDs = append(unfitIDs, jobs[i].Job.ID)
		}
	}
	return jobs, unfitIDs
}

func unfitFleet() ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{{Name: "onprem", Kind: scheduler.PoolOnPrem}}
	var nodes []scheduler.Node
	for i := range 3 {
		nodes = append(nodes, gpuNode(fmt.Sprintf("n%d", i), "onprem", 64000, 4))
	}
	return pools, nodes
}

// Under UnfitStop (the default) a job that fits no node stops the run with
// an *UnfitError naming the first such job in submission order; under
// UnfitSkip the run leaves those jobs out and counts them: Total + Unfit is
// the workload, the first few are listed in order, every other job arrives
// once and ends or is still live, and the rest of the run is the run of
// the workload without them, byte for byte, from a slice or a Source, to
// the end and to a horizon.
func TestUnfitJobs(t *testing.T) {
	pools, nodes := unfitFleet()
	for _, tc := range []struct {
		n, bad  int
		horizon int64
		queue   Queue
	}{{40, 3, 0, QueueFIFO}, {200, maxUnfitListed + 5, 0, QueueBackfill}, {200, 20, 1500 * Second, QueueFIFOSkip}} {
		name := fmt.Sprintf("%d jobs, %d unfit, horizon %d, %s", tc.n, tc.bad, tc.horizon, tc.queue)
		jobs, unfitIDs := unfitWorkload(uint64(tc.n+tc.bad), tc.n, tc.bad)
		base := Config{Pools: pools, Nodes: nodes, Policy: "best-fit", Queue: tc.queue, Horizon: tc.horizon, WarmupJobs: 2}

		// the default stops at the first, naming it
		cfg := base
		cfg.Jobs = jobs
		_, err := Run(context.Background(), cfg)
		var ue *UnfitError
		require.True(t, errors.As(err, &ue), "%s: %v", name, err)
		require.Equal(t, unfitIDs[0], ue.Job.ID, name)
		require.Contains(t, err.Error(), "test job", name)
		require.Contains(t, err.Error(), "fits no empty node of the fleet", name)

		// the workload without them, as a user would cut it by hand
		fit := slices.DeleteFunc(slices.Clone(jobs), func(j Job) bool { return slices.Contains(unfitIDs, j.Job.ID) })
		want := base
		want.Jobs = fit
		wantRes, wantLog, err := runBytes(t, want)
		require.NoError(t, err, name)

		for _, stream := range []bool{false, true} {
			cfg := base
			cfg.Unfit = UnfitSkip
			if stream {
				cfg.Source, cfg.NoRecords = &listSource{jobs: jobs}, true
			} else {
				cfg.Jobs = jobs
			}
			var log []Event
			cfg.Observe = func(e Event) { log = append(log, e) }
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err, name)
			s := res.Summary
			require.Equal(t, tc.bad, s.Unfit, name)
			require.Equal(t, len(jobs), s.Total+s.Unfit, "%s: every job of the workload replayed or left out", name)
			require.Len(t, s.UnfitJobs, min(tc.bad, maxUnfitListed), name)
			for i, u := range s.UnfitJobs {
				require.Equal(t, unfitIDs[i], u.ID, name)
				require.Equal(t, fmt.Sprintf("test job %d", slices.IndexFunc(jobs, func(j Job) bool { return j.Job.ID == u.ID })), u.Where, name)
				require.Contains(t, u.Reason, "fits no empty node", name)
			}
			arrived, ended := map[string]int{}, map[string]int{}
			for _, e := range log {
				switch e.Kind {
				case EventArrive:
					arrived[e.ID]++
				case EventFinish:
					ended[e.ID]++
				}
			}
			for _, id := range unfitIDs {
				require.Zero(t, arrived[id], "%s: unfit job %s arrived", name, id)
			}
			require.Equal(t, s.Total-s.Future, len(arrived), name)
			require.Equal(t, s.Ended, len(ended), name)
			require.Equal(t, s.Total, s.Ended+s.Running+s.Queued+s.InCloud+s.Future, name)
			for id, c := range arrived {
				require.Equal(t, 1, c, "%s: job %s arrived %d times", name, id, c)
			}

			// the rest is the run without them
			res.Summary.Unfit, res.Summary.UnfitJobs = 0, nil
			if stream { // a Source's run keeps no records; compare what it has
				var w Result
				require.NoError(t, json.Unmarshal(wantRes, &w))
				w.Jobs = nil
				wantRes2, err := json.Marshal(w)
				require.NoError(t, err)
				got, err := json.Marshal(res)
				require.NoError(t, err)
				require.JSONEq(t, string(wantRes2), string(got), name)
			} else {
				got, err := json.Marshal(res)
				require.NoError(t, err)
				require.JSONEq(t, string(wantRes), string(got), name)
			}
			gotLog, err := json.Marshal(log)
			require.NoError(t, err)
			require.JSONEq(t, string(wantLog), string(gotLog), "%s: event log", name)
		}
	}
}

// A workload whose every job is unfit leaves no window, and says why.
func TestUnfitAllLeavesNoWindow(t *testing.T) {
	pools, nodes := unfitFleet()
	jobs := jobsOf([]tj{{0, 10, 8}, {5, 10, 9}})
	_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: jobs, Unfit: UnfitSkip})
	require.ErrorContains(t, err, "workload: no jobs (2 more left out: they fit no node of the fleet)")
	_, err = Run(context.Background(), Config{Pools: pools, Nodes: nodes, Source: &listSource{jobs: jobs}, Unfit: UnfitSkip})
	require.ErrorContains(t, err, "workload: no jobs (2 more left out: they fit no node of the fleet)")
}

func TestParseUnfit(t *testing.T) {
	for s, want := range map[string]Unfit{"": UnfitStop, "error": UnfitStop, "skip": UnfitSkip} {
		got, err := ParseUnfit(s)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseUnfit("drop")
	require.ErrorContains(t, err, "want error or skip")
}

// A streamed workload out of submission order is refused even where the
// job out of place follows one left out as unfit (first or not).
func TestUnfitStreamOrder(t *testing.T) {
	pools, nodes := unfitFleet()
	for _, js := range [][]tj{
		{{0, 10, 1}, {50, 10, 8}, {20, 10, 1}},
		{{50, 10, 8}, {10, 10, 1}, {60, 10, 1}},
	} {
		_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Source: &listSource{jobs: jobsOf(js)}, Unfit: UnfitSkip})
		require.ErrorContains(t, err, "is before the job before it", "%v", js)
	}
}

// The check for unfit jobs, run on every job pulled, allocates nothing
// for a job that fits (nor under UnfitStop).
func TestSkipUnfitAllocatesNothing(t *testing.T) {
	for _, u := range []Unfit{UnfitStop, UnfitSkip} {
		e := &engine{cfg: &Config{Unfit: u}}
		require.Zero(t, testing.AllocsPerRun(100, func() { _ = e.skipUnfit(nil) }), "unfit %d", u)
	}
	e := &engine{cfg: &Config{}}
	err := &UnfitError{}
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = e.skipUnfit(err) }))
}
