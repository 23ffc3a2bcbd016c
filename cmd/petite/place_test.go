package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces/samples"
)

func placeJSON(t *testing.T, fleetPath, podsPath, policy string, cost bool) (placeSummary, []byte) {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, runPlace(&out, fleetPath, podsPath, policy, cost, 42, true))
	var s placeSummary
	require.NoError(t, json.Unmarshal(out.Bytes(), &s))
	return s, out.Bytes()
}

func TestPlaceDemo(t *testing.T) {
	s, first := placeJSON(t, "", "", "fgd", true)
	rows := strings.Count(strings.TrimSpace(string(samples.OpenbDefaultPods())), "\n") // less the header
	assert.Equal(t, rows, s.Jobs, "every pod of the embedded workload is a job")
	assert.Equal(t, s.Jobs, s.Placed+s.Unplaced)
	assert.Greater(t, s.Placed, s.Jobs/2)
	assert.LessOrEqual(t, s.GPUAllocPct, 100.0)
	require.Len(t, s.Pools, 4)
	tasks := 0
	for _, p := range s.Pools {
		tasks += p.Tasks
		if p.Kind != "cloud" {
			assert.Zero(t, p.CostPerHour, "owned capacity costs nothing more")
		}
	}
	assert.Equal(t, s.Placed, tasks, "one task per openb job")
	if s.Unplaced > 0 {
		assert.NotEmpty(t, s.UnplacedWhy, "unplaced jobs say why")
	}
	_, again := placeJSON(t, "", "", "fgd", true)
	assert.Equal(t, string(first), string(again), "same inputs, same bytes")
}

func TestPlaceCostFillsOwnedFirst(t *testing.T) {
	dir := t.TempDir()
	fleetPath := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(fleetPath, []byte(`
pools:
  - name: own
    kind: onprem
    nodes:
      - {count: 1, cpu_milli: 64000, memory_mib: 65536, gpus: {count: 4, model: L4}}
  - name: cloud
    kind: cloud
    price_per_gpu_hour: 2.5
    nodes:
      - {count: 1, cpu_milli: 64000, memory_mib: 65536, gpus: {count: 4, model: L4}}
`), 0o644))
	podsPath := filepath.Join(dir, "pods.csv")
	var b strings.Builder
	b.WriteString("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n")
	for i := 0; i < 4; i++ {
		b.WriteString("p" + string(rune('0'+i)) + ",1000,1024,1,1000,,BE,Running,0,10,0\n")
	}
	require.NoError(t, os.WriteFile(podsPath, []byte(b.String()), 0o644))

	// Spread alone puts half the work on the cloud node.
	s, _ := placeJSON(t, fleetPath, podsPath, "spread", false)
	assert.Equal(t, 4, s.Placed)
	assert.Equal(t, 5.0, s.CostPerHour)
	// With the cost tier the owned node takes all four first.
	s, _ = placeJSON(t, fleetPath, podsPath, "spread", true)
	assert.Equal(t, 4, s.Placed)
	assert.Zero(t, s.CostPerHour)
	assert.Equal(t, 4, s.Pools[0].Tasks)
}

func TestPlaceBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,x,1,0,0\n"), 0o644))
	err := runPlace(&bytes.Buffer{}, "", bad, "fgd", true, 1, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.csv:2")
	assert.Contains(t, err.Error(), "cpu_milli")
	err = runPlace(&bytes.Buffer{}, "", "", "no-such-policy", true, 1, true)
	require.ErrorContains(t, err, "unknown policy")
}
