package replay

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestCutsMatchRecords: the summary's cuts by pool, tenant and size, kept
// from a few figures a job, count the jobs and GPU-hours that the records
// say, on a fleet of two priced pools, with preemptions and a horizon that
// leaves jobs running, queued and not yet submitted.
func TestCutsMatchRecords(t *testing.T) {
	pools := []scheduler.Pool{{Name: "a", Kind: scheduler.PoolOnPrem, PricePerGPUHour: 1}, {Name: "b", Kind: scheduler.PoolOnPrem, PricePerGPUHour: 3}}
	var nodes []scheduler.Node
	for i := range 6 {
		nodes = append(nodes, gpuNode(fmt.Sprintf("n%d", i), pools[i%2].Name, 64000, 8))
	}
	for _, horizon := range []int64{0, 2000 * Second} {
		res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: randomWorkload(5, 300), Seed: 3,
			Preempt: true, Victims: VictimsAll, Horizon: horizon})
		require.NoError(t, err)
		type cut struct {
			jobs      int
			gpuH, cst float64
		}
		byPool, byTenant, bySize := map[string]cut{}, map[string]cut{}, map[string]cut{}
		for _, r := range res.Jobs {
			for _, c := range []struct {
				m map[string]cut
				k string
			}{{byPool, orDash(r.Pool)}, {byTenant, orDash(r.Tenant)}, {bySize, SizeBucket(r.GPUs)}} {
				x := c.m[c.k]
				x.jobs++
				x.gpuH += r.GPUHours
				x.cst += r.Cost
				c.m[c.k] = x
			}
		}
		s := res.Summary
		require.NotEmpty(t, byPool["a"].jobs, "jobs ran in pool a")
		require.NotEmpty(t, byPool["b"].jobs, "jobs ran in pool b")
		for _, c := range []struct {
			name string
			want map[string]cut
			got  map[string]Cut
		}{{"pool", byPool, s.ByPool}, {"tenant", byTenant, s.ByTenant}, {"size", bySize, s.BySize}} {
			require.Len(t, c.got, len(c.want), "%s cuts (horizon %d)", c.name, horizon)
			for k, w := range c.want {
				g := c.got[k]
				assert.Equal(t, w.jobs, g.Jobs, "%s %s: jobs (horizon %d)", c.name, k, horizon)
				assert.InDelta(t, w.gpuH, g.GPUHours, 1e-9, "%s %s: GPU-hours (horizon %d)", c.name, k, horizon)
				assert.InDelta(t, w.cst, g.Cost, 1e-9, "%s %s: cost (horizon %d)", c.name, k, horizon)
			}
		}
	}
}
