package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScaleOptions(t *testing.T) {
	pools := []Pool{
		{Name: "own", Kind: PoolOnPrem, Region: "eu"},
		{Name: "dear", Kind: PoolCloud, Region: "eu", PricePerGPUHour: 4, MaxNodes: 10, ProvisionDelaySec: 60},
		{Name: "cheap", Kind: PoolCloud, Region: "us", PricePerGPUHour: 1, MaxNodes: 2, ProvisionDelaySec: 600},
		{Name: "fixed", Kind: PoolCloud, Region: "eu", PricePerGPUHour: 0.5},
	}
	eight := func(name, pool, model string) Node {
		g := make([]GPU, 8)
		for i := range g {
			g[i] = GPU{Model: model}
		}
		return Node{Name: name, Pool: pool, CPUMilli: 96000, MemoryMiB: 1 << 19, GPUs: g}
	}
	c, err := NewCluster(pools, []Node{
		eight("o", "own", "H100"), eight("d", "dear", "H100"), eight("c", "cheap", "A100"), eight("f", "fixed", "H100"),
	})
	require.NoError(t, err)

	// A gang of three 8-GPU tasks: three new nodes. "cheap" may add only one,
	// "fixed" cannot grow, so only "dear" can take it.
	gang := Job{ID: "g", Count: 3, Task: Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 8000}}
	opts, err := c.ScaleOptions(&gang)
	require.NoError(t, err)
	require.Equal(t, []ScaleOption{{Pool: "dear", Nodes: 3, GPUs: 24, CostPerHour: 96, DelaySec: 60}}, opts)

	// One 8-GPU task: both elastic pools can; the cheaper comes first.
	one := Job{ID: "one", Count: 1, Task: Task{GPUs: 8, GPUMilli: 1000}}
	opts, err = c.ScaleOptions(&one)
	require.NoError(t, err)
	require.Len(t, opts, 2)
	assert.Equal(t, "cheap", opts[0].Pool)

	// Eight shares of half a GPU fit one new node of either pool.
	shares := Job{ID: "s", Count: 16, Kind: Inference, Task: Task{GPUs: 1, GPUMilli: 500}}
	opts, err = c.ScaleOptions(&shares)
	require.NoError(t, err)
	require.Len(t, opts, 2)
	assert.Equal(t, 1, opts[0].Nodes)

	// Residency in the EU and an H100 rule out "cheap".
	eu := Job{ID: "eu", Count: 1, Task: Task{GPUs: 1, GPUMilli: 1000, Models: []string{"H100"}, Residency: []string{"eu"}}}
	opts, err = c.ScaleOptions(&eu)
	require.NoError(t, err)
	require.Len(t, opts, 1)
	assert.Equal(t, "dear", opts[0].Pool)
}

func TestFirstFitAndSpread(t *testing.T) {
	mk := func() *Cluster {
		c, err := NewCluster(nil, []Node{
			{Name: "a", CPUMilli: 16000, MemoryMiB: 1 << 16, GPUs: []GPU{{Model: "L4"}, {Model: "L4"}}},
			{Name: "b", CPUMilli: 16000, MemoryMiB: 1 << 16, GPUs: []GPU{{Model: "L4"}, {Model: "L4"}}},
			{Name: "c", CPUMilli: 16000, MemoryMiB: 1 << 16, GPUs: []GPU{{Model: "L4"}, {Model: "L4"}}},
		})
		require.NoError(t, err)
		require.NoError(t, c.SetRanks([]NodeID{2, 0, 1})) // c has rank 0
		return c
	}
	task := Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000}
	place := func(c *Cluster, policy string, k int) []string {
		p, err := NewPolicy(c, policy, Options{})
		require.NoError(t, err)
		s, err := c.ShapeOf(&task)
		require.NoError(t, err)
		var got []string
		for i := 0; i < k; i++ {
			a, ok := c.PlaceTask(p, &s, nil)
			require.True(t, ok)
			got = append(got, c.Node(a.Node).Name)
		}
		return got
	}
	// First fit fills the lowest rank first: c, c, then a (rank 1).
	assert.Equal(t, []string{"c", "c", "a", "a", "b", "b"}, place(mk(), "first-fit", 6))
	// Spread visits every node before doubling up, lowest rank first on ties.
	assert.Equal(t, []string{"c", "a", "b", "c", "a", "b"}, place(mk(), "spread", 6))
	// Best fit stacks on the node already in use.
	assert.Equal(t, []string{"c", "c", "a", "a"}, place(mk(), "best-fit", 4))
}
