package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRetakeUndoesRelease: a release undone by Retake leaves the node as
// it was, on a healthy device as on an unhealthy one (whose released share
// is withheld, not free, so that Commit refuses it), and Retake takes no
// more than the release gave back.
func TestRetakeUndoesRelease(t *testing.T) {
	for _, sick := range []bool{false, true} {
		c, err := NewCluster(nil, []Node{{Name: "a", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "H100"}, {Model: "H100"}}}})
		require.NoError(t, err)
		a, err := c.AssignOn(0, &TaskPlacement{Node: "a", GPUs: []int{1}, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}, -1)
		require.NoError(t, err)
		require.NoError(t, c.Commit(a))
		if sick {
			_, err := c.SetDeviceHealth(0, []int{1}, false)
			require.NoError(t, err)
		}
		before := c.Clone().View()
		require.NoError(t, c.Release(a))
		if sick {
			require.ErrorContains(t, c.Commit(a), "oversubscribed", "new work onto a withheld share")
		}
		require.NoError(t, c.Retake(a))
		require.Equal(t, before.Usage(0), c.View().Usage(0))
		require.Equal(t, before.UnhealthyDevices(0), c.View().UnhealthyDevices(0))
		require.Error(t, c.Retake(a), "taken twice")
	}
}
