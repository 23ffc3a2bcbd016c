package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sim size's answer holds the SLO and answer−1 does not, each checked by
// an independent sim run on a fleet file written with that many nodes; the
// JSON is the same whatever --parallel.
func TestSimSizeAnswerBrackets(t *testing.T) {
	args := []string{"sim", "size", "--fleet", burstFleetFile, "--trace", section7File, "--add", "onprem:V100M32",
		"--slo", "p95-wait<=5m", "--growth", "1.5", "--seed", "42", "--json"}
	code, out, errOut := petite(t, nil, append(args, "--parallel", "1")...)
	require.Equal(t, 0, code, errOut)
	var got struct {
		Answer int
		Curve  []struct {
			Count int
			Pass  bool
		}
		Fail, Pass *struct {
			Wait struct{ P95 float64 } `json:"wait_h"`
		}
		Growth struct{ Factor float64 }
		Jobs   int
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Positive(t, got.Answer, out)
	require.NotNil(t, got.Fail)
	require.NotNil(t, got.Pass)
	assert.Equal(t, 1.5, got.Growth.Factor)
	assert.Greater(t, got.Jobs, 86, "the 86 jobs scaled by 1.5")
	_, again, _ := petite(t, nil, append(args, "--parallel", "4")...)
	assert.Equal(t, out, again, "the same bytes whatever --parallel")

	// An independent check: sim run over fleet files of 4 + n nodes and
	// the trace as it is (growth 1), with sim size's queue.
	args1 := []string{"sim", "size", "--fleet", burstFleetFile, "--trace", section7File, "--add", "onprem",
		"--slo", "p95-wait<=5m", "--growth", "1", "--json"}
	code, out, errOut = petite(t, nil, args1...)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Positive(t, got.Answer, out)
	p95 := func(nodes int) float64 {
		fleet := filepath.Join(t.TempDir(), "fleet.yaml")
		require.NoError(t, os.WriteFile(fleet, fmt.Appendf(nil, `pools:
  - name: onprem
    kind: onprem
    nodes:
      - {count: %d, prefix: gpu, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: V100M32, memory_mib: 32768}}
  - name: cloud
    kind: cloud
    price_per_gpu_hour: 1.00
    max_nodes: 1000
    nodes:
      - {count: 1, prefix: cloud, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: V100M32, memory_mib: 32768}}
`, nodes), 0o644))
		code, out, errOut := petite(t, nil, "sim", "run", "--fleet", fleet, "--trace", section7File, "--queue", "backfill", "--json")
		require.Equal(t, 0, code, errOut)
		var s struct {
			Wait struct{ P95 float64 } `json:"wait_h"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &s))
		return s.Wait.P95 * 60 // minutes
	}
	assert.LessOrEqual(t, p95(4+got.Answer), 5.0, "the answer keeps p95 ≤ 5 min")
	assert.Greater(t, p95(4+got.Answer-1), 5.0, "answer−1 does not")
	assert.InDelta(t, got.Pass.Wait.P95*60, p95(4+got.Answer), 1e-9)

	code, _, errOut = petite(t, nil, "sim", "size", "--fleet", burstFleetFile, "--trace", section7File, "--add", "onprem", "--slo", "p95-jct<=5m")
	assert.Equal(t, 2, code, errOut)
	code, _, errOut = petite(t, nil, "sim", "size", "--fleet", burstFleetFile, "--trace", section7File, "--slo", "p95-wait<=5m")
	assert.Equal(t, 2, code, errOut)
	code, _, errOut = petite(t, nil, "sim", "size", "--fleet", burstFleetFile, "--trace", section7File, "--add", "onprem", "--slo", "p95-wait<=5m")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--growth sets the factor", "a 3-hour trace is too short to forecast")
}
