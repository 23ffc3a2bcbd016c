package api

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/simulator/replay"
)

// A queued job behind a running job of known walltime is estimated to
// start when that job ends; a job behind it without walltime says what
// was assumed; a running job gets no estimate.
func TestEstimatedStart(t *testing.T) {
	c := newCluster(t, 1, 1)
	cl := c.client(0)
	ctx := context.Background()
	withWall := func(id, wall string) []byte {
		return fmt.Appendf(spec(id, 1, 8), "walltime: %s\n", wall)
	}
	_, err := cl.Submit(ctx, withWall("first", "1h"))
	require.NoError(t, err)
	run := waitStatus(t, cl, "first", StatusRunning)
	assert.Empty(t, run.EstimatedStart)
	assert.Empty(t, run.EstimateNote)
	_, err = cl.Submit(ctx, withWall("second", "10m"))
	require.NoError(t, err)
	_, err = cl.Submit(ctx, spec("third", 1, 8))
	require.NoError(t, err)

	j, err := cl.Job(ctx, "second", false)
	require.NoError(t, err)
	require.Equal(t, StatusQueued, j.Status)
	want := time.Unix(run.Started+3600, 0).UTC().Format(time.RFC3339)
	assert.Equal(t, want, j.EstimatedStart, j.EstimateNote)
	assert.Contains(t, j.EstimateNote, "replay of the live queue")

	j, err = cl.Job(ctx, "third", false)
	require.NoError(t, err)
	assert.Equal(t, time.Unix(run.Started+3600+600, 0).UTC().Format(time.RFC3339), j.EstimatedStart)
	assert.Contains(t, j.EstimateNote, "1 job(s) without a walltime assumed to run 1h0m0s")

	// A gang larger than the fleet never starts: the estimate says so
	// rather than blaming the replay's horizon.
	_, err = cl.Submit(ctx, spec("huge", 4096, 8))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err = cl.Job(ctx, "huge", false)
		return err == nil && j.Pending != nil && j.Pending.Why == scheduler.WhyNever
	}, 30*time.Second, 20*time.Millisecond)
	assert.Empty(t, j.EstimatedStart)
	assert.Equal(t, "never starts: "+scheduler.WhyNever, j.EstimateNote)
}

// The daemon's GET /v1/snapshot starts a replay (sim run --from-snapshot):
// its running job keeps its node at the start and ends after the rest of
// its walltime, the queued one starts then.
func TestSnapshotStartsAReplay(t *testing.T) {
	c := newCluster(t, 1, 1)
	cl := c.client(0)
	ctx := context.Background()
	_, err := cl.Submit(ctx, fmt.Appendf(spec("first", 1, 8), "walltime: 1h\n"))
	require.NoError(t, err)
	run := waitStatus(t, cl, "first", StatusRunning)
	_, err = cl.Submit(ctx, fmt.Appendf(spec("second", 1, 8), "walltime: 10m\n"))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, cl.Snapshot(ctx, &buf))
	at := run.Started + 100
	st, err := replay.ReadSnapshot(&buf, "GET /v1/snapshot", replay.SnapshotOptions{At: at})
	require.NoError(t, err)
	require.Equal(t, []int{1, 1}, []int{st.Running, st.Queued})
	cfg := st.Config()
	var startNode string
	cfg.Observe = func(e replay.Event) {
		if e.Kind == replay.EventStart && e.ID == "first" {
			startNode = e.Node
		}
	}
	res, err := replay.Run(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, run.Tasks[0].Node, startNode)
	byID := map[string]replay.JobRecord{}
	for _, r := range res.Jobs {
		byID[r.ID] = r
	}
	assert.Equal(t, (run.Started+3600)*replay.Second, byID["first"].End)
	assert.Equal(t, (run.Started+3600)*replay.Second, byID["second"].Start)
	assert.Equal(t, 2, res.Summary.Ended)
}
