package scenario

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/simulator/replay"
)

// writeFiles writes files into a temp folder and returns its path.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	return dir
}

const labFleet = `pools:
  - name: lab
    kind: onprem
    nodes:
      - {count: 1, prefix: lab, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: H100, memory_mib: 81920}}
`

// busyGen is a workload of 8-GPU jobs arriving faster than one node serves.
const busyGen = `workload:
  gen: {jobs: 120, seed: 3, clock: relative, zone: UTC, tenants: 2, kind: training,
        arrival: {process: poisson, rate_per_hour: 12},
        duration: {dist: lognormal, mu: 7.5, sigma: 0.3, min: 600, max: 7200},
        shapes: [{weight: 1, tasks: [{count: 1, gpus: 8, gpu_milli: 1000, cpu_milli: 1000, memory_mib: 1024}]}]}
`

// TestAddBringsCapacityAtItsTime: the nodes of an add action (one in a pool
// of the fleet, one in a pool the fleet lacks) take no work before the
// action and some after; the queue waits less than without them.
func TestAddBringsCapacityAtItsTime(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"fleet.yaml": labFleet,
		"more.yaml": `pools:
  - name: lab
    kind: onprem
    nodes:
      - {count: 1, prefix: lab-new, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: H100, memory_mib: 81920}}
  - name: annex
    kind: onprem
    nodes:
      - {count: 1, prefix: annex, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: H100, memory_mib: 81920}}
`,
		"s.yaml": "fleet: fleet.yaml\n" + busyGen + "actions:\n  - {at: +2h, do: add, fleet: more.yaml}\n",
	})
	s, err := Load(filepath.Join(dir, "s.yaml"))
	require.NoError(t, err)
	in, err := s.LoadInputs()
	require.NoError(t, err)
	c, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	require.Len(t, c.Actions, 1)
	assert.Equal(t, []string{"lab-new-0000", "annex-0000"}, c.Actions[0].Nodes)
	assert.Len(t, in.Pools, 1, "the inputs keep their pools")
	at := c.Actions[0].At
	res, evs := logged(t, c.Config)
	added := map[string]bool{"lab-new-0000": true, "annex-0000": true}
	after := 0
	for _, e := range evs {
		if e.Kind == replay.EventStart && added[e.Node] {
			assert.GreaterOrEqual(t, e.At, at, "%s starts on %s before the add", e.ID, e.Node)
			after++
		}
	}
	assert.Positive(t, after, "the added nodes take work")
	assert.Contains(t, res.Summary.ByPool, "annex")

	without, err := s.CompileWith(in, func(int) bool { return true })
	require.NoError(t, err)
	base, _ := logged(t, without.Config)
	assert.Less(t, res.Summary.WaitH.Mean, base.Summary.WaitH.Mean)

	dup := writeFiles(t, map[string]string{"fleet.yaml": labFleet, "more.yaml": labFleet,
		"s.yaml": "fleet: fleet.yaml\n" + busyGen + "actions:\n  - {at: +2h, do: add, fleet: more.yaml}\n"})
	s, err = Load(filepath.Join(dup, "s.yaml"))
	require.NoError(t, err)
	_, err = s.Compile()
	require.ErrorContains(t, err, "s.yaml:8: field actions[0].fleet: node lab-0000 of more.yaml is already in the fleet")
}

const twoPools = `pools:
  - name: a
    kind: onprem
    nodes:
      - {count: 2, prefix: a, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: H100, memory_mib: 81920}}
  - name: b
    kind: onprem
    nodes:
      - {count: 2, prefix: b, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: H100, memory_mib: 81920}}
`

// TestMoveAllMovesLiveWork: at a move of scope all, the tenant's jobs
// running outside its new pools lose their place and its queued jobs are
// resubmitted; from then on it starts only in those pools, its jobs
// running there stay, the other tenant is untouched, every job still ends
// once, and the impact counts the requeues as the move's disruption.
func TestMoveAllMovesLiveWork(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"fleet.yaml": twoPools,
		"s.yaml": "fleet: fleet.yaml\n" + `workload:
  gen: {jobs: 300, seed: 5, clock: relative, zone: UTC, tenants: 2, kind: training,
        arrival: {process: poisson, rate_per_hour: 60},
        duration: {dist: lognormal, mu: 7.5, sigma: 0.4, min: 600, max: 7200},
        shapes: [{weight: 1, tasks: [{count: 1, gpus: 2, gpu_milli: 1000, cpu_milli: 1000, memory_mib: 1024}]}]}
queue: {checkpoint_interval: 10m}
actions:
  - {at: +2h, do: move, tenant: tenant-0, to: [b], scope: all}
`,
	})
	s, err := Load(filepath.Join(dir, "s.yaml"))
	require.NoError(t, err)
	in, err := s.LoadInputs()
	require.NoError(t, err)
	c, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	at := c.Actions[0].At
	res, evs := logged(t, c.Config)
	pool := poolOf(&c.Config)
	tenant := func(k int) string { return res.Jobs[k].Tenant }
	where := map[int]string{} // job → pool it runs in
	requeued, resubmitted := 0, 0
	ends := map[int]int{}
	for _, e := range evs {
		switch e.Kind {
		case replay.EventStart:
			where[e.Job] = pool[e.Node]
			if tenant(e.Job) == "tenant-0" && e.At >= at {
				assert.Equal(t, "b", pool[e.Node], "job %s starts in %s after the move", e.ID, pool[e.Node])
			}
		case replay.EventRequeue:
			assert.Equal(t, at, e.At, "only the move requeues")
			assert.Equal(t, "tenant-0", tenant(e.Job))
			assert.Equal(t, "a", where[e.Job], "only work outside the new pools moves")
			requeued++
		case replay.EventFinish:
			ends[e.Job]++
		}
	}
	for _, e := range evs {
		if e.Kind == replay.EventArrive && e.At < at && tenant(e.Job) == "tenant-0" && res.Jobs[e.Job].Start >= at {
			resubmitted++ // queued at the move, started after it
		}
	}
	assert.Positive(t, requeued, "tenant-0 ran in pool a at the move")
	assert.Positive(t, resubmitted, "tenant-0 had queued work at the move")
	assert.Len(t, ends, len(res.Jobs))
	for k, n := range ends {
		assert.Equal(t, 1, n, "job %d ends once", k)
	}

	im, err := s.Impacts(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, im, 1)
	assert.Equal(t, requeued, im[0].Disrupted["training"])
	assert.Positive(t, im[0].LostGPUHours.After)
}
