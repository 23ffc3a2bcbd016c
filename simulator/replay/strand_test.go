package replay

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// Stranded GPUs per pool, checked by hand. Two 4-GPU nodes, one per pool;
// the workload is three 3-GPU jobs of 600 s, so its task mix is that one
// type: a node holding one job has 1 idle GPU no 3-GPU task can use (F =
// 1000 milli), an empty node strands nothing. Jobs 0 and 1 start at 0 on na
// and nb, job 2 waits and starts on na at 600. nb is drained at 100: a
// node that takes no work is not counted, though its idle GPU is still
// there.
func TestSeriesStrandedGPUs(t *testing.T) {
	pools := []scheduler.Pool{{Name: "a", Kind: scheduler.PoolOnPrem}, {Name: "b", Kind: scheduler.PoolOnPrem}}
	nodes := []scheduler.Node{gpuNode("na", "a", 64000, 4), gpuNode("nb", "b", 64000, 4)}
	cfg := Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 600, 3}, {0, 600, 3}, {0, 600, 3}}), SeriesStep: 300 * Second}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	var got [][]float64
	for _, sm := range res.Series.Samples {
		got = append(got, sm.Stranded)
	}
	assert.Equal(t, [][]float64{{1, 1}, {1, 1}, {1, 0}, {1, 0}, {0, 0}}, got)

	cfg.NodeEvents = []NodeEvent{{At: 100 * Second, Node: "nb", State: scheduler.NodeDraining}}
	res, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	got = got[:0]
	for _, sm := range res.Series.Samples {
		got = append(got, sm.Stranded)
	}
	assert.Equal(t, [][]float64{{1, 1}, {1, 0}, {1, 0}, {1, 0}, {0, 0}}, got)

	// A mix: one 1-GPU job beside them makes the 1-GPU type a quarter of
	// the target, which fits the lone idle GPU: F = ¾ × 1000.
	cfg.NodeEvents = nil
	cfg.Jobs = jobsOf([]tj{{0, 600, 3}, {0, 600, 3}, {0, 600, 3}, {1200, 60, 1}})
	res, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, []float64{0.75, 0.75}, res.Series.Samples[0].Stranded)
}
