package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --preempt on a trace with priorities evicts: a trace carries no
// Preemptible flag, so --preemptible (default all) says which jobs may go.
func TestSimRunPreemptibleRule(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(fleet, []byte(`pools:
  - name: onprem
    kind: onprem
    nodes:
      - {count: 1, prefix: gpu, cpu_milli: 64000, memory_mib: 524288, gpus: {count: 8, model: A100, memory_mib: 81920}}
`), 0o600))
	trace := filepath.Join(dir, "jobs.csv")
	require.NoError(t, os.WriteFile(trace, []byte(`#petite-trace v1 clock=relative zone=UTC
job_id,submit,start,end,duration,tenant,group,priority,qos,kind,status,task,count,gpus,gpu_milli,gpu_models,cpu_milli,memory_mib
low,0,,,1000,,,0,,training,,,1,8,1000,,0,0
high,300,,,100,,,5,,training,,,1,8,1000,,0,0
`), 0o600))
	base := []string{"sim", "run", "--fleet", fleet, "--trace", trace, "--json"}
	for _, c := range []struct {
		args        []string
		preemptions int
	}{
		{nil, 0},
		{[]string{"--preempt"}, 1},
		{[]string{"--preempt", "--preemptible", "all"}, 1},
		{[]string{"--preempt", "--preemptible", "training"}, 1},
		{[]string{"--preempt", "--preemptible", "none"}, 0},
	} {
		code, out, errOut := petite(t, nil, append(base, c.args...)...)
		require.Equal(t, exitOK, code, "%v: %s", c.args, errOut)
		var s struct{ Preemptions int }
		require.NoError(t, json.Unmarshal([]byte(out), &s))
		assert.Equal(t, c.preemptions, s.Preemptions, "%v", c.args)
	}
	code, _, errOut := petite(t, nil, append(base, "--preemptible", "all")...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--preemptible needs --preempt")
	code, _, errOut = petite(t, nil, append(base, "--preempt", "--preemptible", "services")...)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "want all, training or none")
}
