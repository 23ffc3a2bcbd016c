package scenario

import (
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
