package agent

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// TestUnhealthyGPUWithheld: GPUs the agent reports unhealthy (XID 79) are
// withheld from placement on every server: a new job gets the one healthy
// GPU, the next waits; once the agent reports them healthy (a restart
// reopens NVML with no XID) the waiting job is placed on one of them.
func TestUnhealthyGPUWithheld(t *testing.T) {
	c := newCluster(t, 3, 1, fastLiveness)
	dir := t.TempDir()
	a := c.startAgent("n0", dir, 0)
	cl := c.client(c.leader())
	ctx := context.Background()
	waitNode(t, cl, "n0", "ready")
	for g := range 7 {
		require.NoError(t, a.mock.InjectXID(g, 79))
	}
	for i := range c.ds {
		cli := c.client(i)
		require.Eventually(t, func() bool {
			n, err := cli.Node(ctx, "n0")
			return err == nil && len(n.Withheld) == 7
		}, waitFor, 20*time.Millisecond, "server %d never withheld the GPUs", i)
		n, err := cli.Node(ctx, "n0")
		require.NoError(t, err)
		assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6}, n.Withheld, "server %d", i)
		assert.Equal(t, int64(1000), n.GPUMilliFree, "server %d: only GPU 7 offers capacity", i)
	}

	resp, err := http.Get(c.urls[c.leader()] + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(body), `petite_gpus_unhealthy{model="H100",pool="lab"} 7`+"\n")

	// Heartbeats that say the same commit nothing more.
	applied := func() (n uint64) {
		c.ds[c.leader()].Server.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) { n = m.Applied() })
		return n
	}
	before := applied()
	time.Sleep(5 * fastLiveness.Interval)
	assert.Equal(t, before, applied(), "the state changed with no change of health")

	_, err = cl.Submit(ctx, jobSpec("first", 1, 1, "sleep 60"))
	require.NoError(t, err)
	j := waitJob(t, cl, "first", api.StatusRunning)
	require.Len(t, j.Tasks, 1)
	assert.Equal(t, []int{7}, j.Tasks[0].GPUs, "the healthy GPU")
	_, err = cl.Submit(ctx, jobSpec("second", 1, 1, "sleep 60"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := cl.Job(ctx, "second", false)
		return err == nil && j.Pending != nil && j.Pending.Reasons["unhealthy GPU"] == 1
	}, waitFor, 20*time.Millisecond, "the second job never waited for the unhealthy GPUs")
	j, err = cl.Job(ctx, "second", false)
	require.NoError(t, err)
	assert.Equal(t, api.StatusQueued, j.Status)

	// Healthy again: the agent restarts on a fresh NVML session.
	a.stop()
	c.startAgent("n0", dir, 1)
	j = waitJob(t, cl, "second", api.StatusRunning)
	require.Len(t, j.Tasks, 1)
	assert.Less(t, j.Tasks[0].GPUs[0], 7, "a GPU healthy again")
	n, err := cl.Node(ctx, "n0")
	require.NoError(t, err)
	assert.Empty(t, n.Withheld)
	f, err := cl.Job(ctx, "first", false)
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, f.Status, "the running job kept running")
}
