package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/nvml"
	"petite/scheduler/api"
)

// TestAgentReportsXID: an XID error that points at the hardware (79, the
// GPU fell off the bus) makes the agent report its GPU unhealthy; the
// servers record it in the replicated agent record and GET
// /v1/nodes/{name} shows it on every server, while an application's XID
// (13) does not count.
func TestAgentReportsXID(t *testing.T) {
	c := newCluster(t, 3, 1, fastLiveness)
	a := c.startAgent("gpu-x", "", c.follower())
	ctx := context.Background()
	waitNode(t, c.client(c.leader()), "gpu-x", "ready")
	n, err := c.client(0).Node(ctx, "gpu-x")
	require.NoError(t, err)
	assert.Empty(t, n.Unhealthy, "all well at first")

	require.NoError(t, a.mock.InjectXID(5, 13)) // an application's fault
	require.NoError(t, a.mock.InjectXID(3, 79))
	for i := range c.ds {
		cl := c.client(i)
		require.Eventually(t, func() bool {
			n, err := cl.Node(ctx, "gpu-x")
			return err == nil && len(n.Unhealthy) > 0
		}, waitFor, 20*time.Millisecond, "server %d never showed the XID", i)
		n, err := cl.Node(ctx, "gpu-x")
		require.NoError(t, err)
		assert.Equal(t, []api.GPUHealth{{GPU: 3, UUID: a.Registration().Devices[3], XIDs: []uint64{79}}}, n.Unhealthy, "server %d", i)
		nodes, err := cl.Nodes(ctx, "")
		require.NoError(t, err)
		for _, nn := range nodes {
			if nn.Name == "gpu-x" {
				assert.Equal(t, n.Unhealthy, nn.Unhealthy, "the list says the same")
			}
		}
	}
	rec, ok := c.ds[c.leader()].Server.FSM().Agent("gpu-x")
	require.True(t, ok)
	assert.Len(t, rec.Unhealthy, 1, "in the replicated record")
}

// TestHealthOf: a MIG instance is as healthy as its GPU.
func TestHealthOf(t *testing.T) {
	inv := &nvml.Inventory{GPUs: []nvml.GPU{
		{UUID: "GPU-a", Health: nvml.Health{Status: nvml.Healthy}},
		{UUID: "GPU-b", Health: nvml.Health{Status: nvml.Unhealthy, XIDs: []uint64{48}}, Instances: []nvml.MIGInstance{{UUID: "MIG-b1"}, {UUID: "MIG-b2"}}},
	}}
	hs := HealthOf(inv, []string{"GPU-a", "MIG-b1", "MIG-b2"})
	require.Len(t, hs, 2)
	assert.Equal(t, []int{1, 2}, []int{hs[0].GPU, hs[1].GPU})
	assert.Equal(t, []uint64{48}, hs[1].XIDs)
}
