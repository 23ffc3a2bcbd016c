package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
		return p
	}
	header := "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
	early := write("early.csv", header+"ok,1000,1024,1,1000,,BE,Running,0,10,0\nearly,1000,1024,1,1000,,BE,Running,100,200,50\n")
	wide := write("wide.csv", header+"wide,1000,1024,8,1000,,BE,Running,0,10,0\nsmall,1000,1024,1,1000,,BE,Running,0,10,0\n")
	t4 := write("t4.yaml", "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: 2, cpu_milli: 8000, memory_mib: 65536, gpus: {count: 2, model: T4}}\n")
	badFleet := write("bad.yaml", "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: 1, cpu_milli: x}\n")
	demo := filepath.Join(repo, "scheduler/fleet/demo.yaml")
	pods := filepath.Join(repo, "traces/samples/openb_pod_list_default.csv")

	tests := []struct {
		name string
		args []string
		code int
		out  []string // lines (or parts) of stdout
		err  string   // the stderr line
	}{
		{"the demo inputs", []string{"--fleet", demo, "--pods", pods}, exitOK, []string{
			"fleet " + demo + ": valid: 4 pools, 1110 nodes, 5760 GPUs + 960 MIG instances (models A10, A100, G2, H100, T4, V100M32)\n",
			"workload " + pods + " (openb): valid: 8152 jobs read, 8152 to place (7064 use GPUs)\n",
		}, ""},
		{"a pod scheduled before its creation", []string{"--pods", early}, exitError, []string{
			"workload " + early + " (openb): invalid: 1 jobs read, 1 to place (1 use GPUs)\n",
			"early.csv:3: field scheduled_time: want a time not before creation_time 100, got \"50\"",
		}, "petite: workload " + early + " is invalid: 1 bad records, 0 jobs the scheduler cannot hold\n"},
		{"a fleet that does not load", []string{"--fleet", badFleet}, exitError, []string{"fleet " + badFleet + ": invalid: ", "bad.yaml:5: field pools[0].nodes[0].cpu_milli: cannot unmarshal"},
			"petite: fleet " + badFleet + " is invalid\n"},
		{"a job no node takes is a warning", []string{"--fleet", t4, "--pods", wide}, exitOK, []string{
			"warning: 1 jobs fit no node of the fleet, even empty\n    job wide asks for 8 GPU, 1 CPU, 1 GiB\n",
		}, ""},
		{"a machine list on stdin", []string{"--fleet", "-"}, exitOK, []string{
			`fleet stdin (philly-machines, one pool "default"): valid: 1 pools, 9 nodes, 24 GPUs (models unknown)`,
		}, ""},
		{"nothing to check", nil, exitUsage, nil, "nothing to check"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdin, err := os.Open(filepath.Join(repo, "traces/testdata/philly/cluster_machine_list"))
			require.NoError(t, err)
			defer stdin.Close()
			code, out, errOut := petite(t, stdin, append([]string{"validate"}, tc.args...)...)
			assert.Equal(t, tc.code, code, errOut)
			for _, want := range tc.out {
				assert.Contains(t, out, want)
			}
			if tc.err == "" {
				assert.Empty(t, errOut)
			} else {
				assert.Contains(t, errOut, tc.err)
				assert.Equal(t, 1, strings.Count(errOut, "\n"))
			}
		})
	}

	code, out, _ := petite(t, nil, "validate", "--pods", early, "-o", "json")
	assert.Equal(t, exitError, code)
	var v validation
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.False(t, v.Valid)
	assert.Nil(t, v.Fleet)
	require.NotNil(t, v.Pods)
	assert.Equal(t, 1, v.Pods.BadRecords.Skipped)
}

func TestValidateScenario(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
		return p
	}
	retire := filepath.Join(repo, "examples/scenarios/retire-onprem.yaml")
	head := "fleet: demo\nworkload: {trace: embedded:openb, jobs: 20, default_duration: 1h}\n"
	badField := write("bad.yaml", head+"actions:\n  - {at: +1h, do: retire, pool: hz-onprem, fraction: 0.5}\n")
	noFleet := write("nofleet.yaml", "fleet: missing.yaml\nworkload: {trace: embedded:openb}\n")

	tests := []struct {
		name string
		args []string
		code int
		out  []string
		err  string
	}{
		{"a shipped scenario", []string{"--scenario", retire}, exitOK, []string{
			"scenario " + retire + ": valid: \"retire-onprem\": 8152 jobs over 4 pools, 1110 nodes; 1 actions compile to 470 node events\n",
			"  actions[0] (line 23): retire at +1h30m0s: 470 nodes, 470 events\n",
		}, ""},
		{"a field error names file and line", []string{"--scenario", badField}, exitError, []string{
			"bad.yaml:4: field actions[0].fraction: only reclaim takes a fraction",
		}, "petite: scenario " + badField + " is invalid\n"},
		{"the fleet it names is checked", []string{"--scenario", noFleet}, exitError, []string{
			"nofleet.yaml:1: field fleet: fleet: open " + filepath.Join(dir, "missing.yaml"),
		}, "is invalid"},
		{"from stdin", []string{"--scenario", "-"}, exitOK, []string{"scenario stdin: valid"}, ""},
		{"alone", []string{"--scenario", retire, "--fleet", "x"}, exitUsage, nil, "--scenario names its own fleet and workload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := petite(t, strings.NewReader(head), append([]string{"validate"}, tc.args...)...)
			assert.Equal(t, tc.code, code, errOut)
			for _, want := range tc.out {
				assert.Contains(t, out, want)
			}
			if tc.err == "" {
				assert.Empty(t, errOut)
			} else {
				assert.Contains(t, errOut, tc.err)
			}
		})
	}

	code, out, _ := petite(t, nil, "validate", "--scenario", badField, "-o", "json")
	assert.Equal(t, exitError, code)
	var v validation
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.NotNil(t, v.Scenario)
	assert.False(t, v.Scenario.Valid)
	assert.False(t, v.Scenario.NeedsEngine, "every action runs now")
}
