package replay

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// midRun is a state machine driven by commands to the middle of a run: two
// 8-GPU nodes, a (8 GPUs, walltime 1 h) on one, b (4 GPUs, 30 min) and the
// service c (2 replicas of 2 GPUs, no walltime) on the other, d (8 GPUs,
// 10 min) and e (8 GPUs, no walltime) queued behind them, f ended. Every
// placement is forced by the sizes. Times are seconds: a pass at 1100,
// f ends at 1200.
func midRun(t *testing.T) *state.Machine {
	t.Helper()
	m := state.New()
	apply := func(c state.Command) state.Result {
		res, err := m.Apply(c)
		require.NoError(t, err)
		return res
	}
	apply(state.RegisterPool{Pool: scheduler.Pool{Name: "onprem", Kind: scheduler.PoolOnPrem}})
	apply(state.RegisterNode{Node: gpuNode("n1", "onprem", 64000, 8)})
	apply(state.RegisterNode{Node: gpuNode("n2", "onprem", 64000, 8)})
	apply(state.SetTenant{Tenant: scheduler.Tenant{Name: "t", Weight: 2}})
	job := func(id string, kind scheduler.JobKind, count, gpus int, wall int64) scheduler.Job {
		j := scheduler.Job{ID: id, Kind: kind, Tenant: "t", Count: count, Walltime: wall,
			Task: scheduler.Task{GPUs: gpus, CPUMilli: 1000, MemoryMiB: 1024}}
		if gpus > 0 {
			j.Task.GPUMilli = 1000
		}
		return j
	}
	apply(state.Submit{Job: job("f", scheduler.Training, 1, 0, 0), At: 1000})
	apply(state.Submit{Job: job("a", scheduler.Training, 1, 8, 3600), At: 1001})
	apply(state.Submit{Job: job("b", scheduler.Training, 1, 4, 1800), At: 1002})
	apply(state.Submit{Job: job("c", scheduler.Inference, 2, 2, 0), At: 1003})
	apply(state.Submit{Job: job("d", scheduler.Training, 1, 8, 600), At: 1004})
	apply(state.Submit{Job: job("e", scheduler.Training, 1, 8, 0), At: 1005})
	pol, err := m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	require.NoError(t, err)
	plan, err := m.Plan(scheduler.Pass{Now: 1100, Policy: pol, Rng: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, err)
	res := apply(state.PlanCommand(plan, 1100))
	require.ElementsMatch(t, []string{"f", "a", "b", "c"}, res.Started)
	apply(state.Finish{Job: "f", At: 1200})
	return m
}

// TestFromSnapshotKeepsPlacementsAndConserves starts replays from a
// snapshot of midRun written as the daemon writes it: the running jobs hold
// their placements from the start and end after their remaining walltime
// (or the default), the queue starts in its order when they free room, a
// workload on top arrives after, and every job ends once or is still there
// at the horizon.
func TestFromSnapshotKeepsPlacementsAndConserves(t *testing.T) {
	m := midRun(t)
	var buf bytes.Buffer
	require.NoError(t, m.Snapshot(&buf))
	snapBytes := buf.Bytes()
	const at = 1500
	st, err := ReadSnapshot(bytes.NewReader(snapBytes), "snap.json", SnapshotOptions{At: at, DefaultDuration: 2 * Hour})
	require.NoError(t, err)
	assert.Equal(t, []int{3, 2, 1}, []int{st.Running, st.Queued, st.Ended})
	assert.Equal(t, []int{3, 2}, []int{st.FromWalltime, st.FromDefault}, "a, b, d by walltime; c, e by the default")
	require.Len(t, st.Tenants, 1)

	placed := map[string]string{} // job → node of its first task in the snapshot
	for _, ji := range m.Jobs() {
		if ji.Status == state.Running {
			placed[ji.Job.ID] = ji.Tasks[0].Node
		}
	}
	t0 := int64(at) * Second
	for _, tc := range []struct {
		name    string
		horizon int64
	}{{"to the end", 0}, {"to a horizon", t0 + 4000*Second}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := st.Config()
			extra := jobsOf([]tj{{submit: at + 100, dur: 60, gpus: 1}})
			extra[0].Job.ID = "late"
			cfg.Jobs = append(cfg.Jobs, extra...)
			cfg.Horizon = tc.horizon
			var log []Event
			cfg.Observe = func(e Event) { log = append(log, e) }
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)

			arrive, end := map[string]int{}, map[string]int{}
			startAt := map[string]int64{}
			for _, e := range log {
				switch e.Kind {
				case EventArrive:
					arrive[e.ID]++
				case EventFinish, EventCloudEnd:
					end[e.ID]++
				case EventStart:
					if _, ok := startAt[e.ID]; !ok {
						startAt[e.ID] = e.At
						if n, ok := placed[e.ID]; ok {
							assert.Equal(t, t0, e.At, "%s starts at t0", e.ID)
							assert.Equal(t, n, e.Node, "%s keeps its node", e.ID)
						}
					}
				case EventRequeue:
					t.Errorf("%s requeued: nothing should move", e.ID)
				}
			}
			ended := 0
			for _, id := range []string{"a", "b", "c", "d", "e", "late"} {
				assert.Equal(t, 1, arrive[id], "%s arrives once", id)
				assert.LessOrEqual(t, end[id], 1, "%s ends at most once", id)
				ended += end[id]
			}
			assert.Zero(t, arrive["f"], "an ended job is not replayed")
			s := res.Summary
			assert.Equal(t, 6, s.Total)
			assert.Equal(t, s.Total, s.Ended+s.Running+s.Queued+s.InCloud+s.Future)
			assert.Equal(t, ended, s.Ended)

			// a ran 400 s of its hour before t0: it ends 3200 s after, and
			// d, the queue's head, starts there; e after d's 600 s.
			byID := map[string]JobRecord{}
			for _, r := range res.Jobs {
				byID[r.ID] = r
			}
			assert.Equal(t, int64(1100)*Second, byID["a"].Start, "the record keeps the real start")
			assert.Equal(t, int64(1001)*Second, byID["a"].Submit, "and the real submission")
			if tc.horizon == 0 {
				assert.Equal(t, t0+3200*Second, byID["a"].End)
				assert.Equal(t, t0+1400*Second, byID["b"].End)
				assert.Equal(t, t0+2*Hour, byID["c"].End)
				assert.Equal(t, t0+3200*Second, startAt["d"])
				assert.Equal(t, t0+3800*Second, startAt["e"])
				assert.Equal(t, 6, s.Ended)
			} else {
				assert.Equal(t, []int{4, 0, 2}, []int{s.Ended, s.Queued, s.Running}, "a, b, d and late ended; c and e still running at the horizon")
			}
		})
	}
}

// TestFromSnapshotErrors: a live job without walltime and no default is
// refused by name; a broken snapshot names the file and field.
func TestFromSnapshotErrors(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, midRun(t).Snapshot(&buf))
	_, err := ReadSnapshot(bytes.NewReader(buf.Bytes()), "snap.json", SnapshotOptions{At: 1500})
	require.ErrorContains(t, err, "snap.json: snapshot: job c: field job.walltime")
	bad := strings.Replace(buf.String(), `"v":`, `"vv":`, 1)
	_, err = ReadSnapshot(strings.NewReader(bad), "snap.json", SnapshotOptions{})
	require.ErrorContains(t, err, "snap.json: restore")
}

// A node that keeps its work but takes no more (draining) keeps its jobs
// from the snapshot and takes nothing new in the replay.
func TestFromSnapshotDrainingNode(t *testing.T) {
	m := midRun(t)
	_, err := m.Apply(state.SetNodeState{Node: "n2", State: scheduler.NodeDraining, At: 1300})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, m.Snapshot(&buf))
	st, err := ReadSnapshot(&buf, "snap.json", SnapshotOptions{At: 1500, DefaultDuration: Hour})
	require.NoError(t, err)
	cfg := st.Config()
	var log []Event
	cfg.Observe = func(e Event) { log = append(log, e) }
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	onN2 := map[string]bool{}
	for _, e := range log {
		if e.Kind == EventStart && e.Node == "n2" {
			onN2[e.ID] = true
			assert.Equal(t, int64(1500)*Second, e.At, "only the snapshot's own work starts on n2, at t0")
		}
	}
	assert.Equal(t, map[string]bool{"b": true, "c": true}, onN2)
	assert.Equal(t, 5, res.Summary.Ended)
}
