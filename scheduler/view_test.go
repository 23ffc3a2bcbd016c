package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestViewReturnsCopies writes into everything a View hands out: the
// cluster does not change.
func TestViewReturnsCopies(t *testing.T) {
	c, _ := cloneWorld(t)
	v := c.View()
	before := clusterState(c)
	n := v.Node(0)
	n.GPUs[0].MilliCap, n.GPUs[0].Model = 1, "X"
	n.Labels["zone"] = "moved"
	v.Labels(0)["zone"] = "moved"
	pools := v.Pools()
	pools[0].Name, pools[0].Labels["tier"] = "renamed", "lead"
	p := v.PoolOf(0)
	p.Labels["tier"] = "lead"
	u := v.Usage(0)
	u.GPUs[0] = -1
	v.Models()[0] = "X"
	require.Equal(t, before, clusterState(c))
	require.Equal(t, "gold", v.Labels(0)["tier"], "the pool's labels reach the node's")
}
