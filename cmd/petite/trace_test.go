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

// runTrace runs "petite trace ARGS..." in-process.
func runTrace(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newTraceCommand(strings.NewReader(stdin), &out, &errb)
	err = cmd.execute("petite trace", args, &out, &errb)
	return out.String(), errb.String(), err
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

func TestTraceHelp(t *testing.T) {
	for _, sub := range []string{"", "convert", "stats", "head", "sample", "gen"} {
		t.Run(sub, func(t *testing.T) {
			args := []string{"--help"}
			if sub != "" {
				args = []string{sub, "--help"}
			}
			out, _, err := runTrace(t, "", args...)
			require.NoError(t, err)
			assert.Contains(t, out, "Usage:")
			assert.Contains(t, out, "petite trace "+sub)
		})
	}
}

func TestTraceStatsOpenbDefault(t *testing.T) {
	data := samples.OpenbDefaultPods()
	path := writeTemp(t, samples.OpenbDefaultPodsFile, data)
	out, _, err := runTrace(t, "", "stats", "--json", path)
	require.NoError(t, err)
	var st struct {
		Jobs     int `json:"jobs"`
		Problems struct {
			Skipped int `json:"skipped"`
		} `json:"problems"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, bytes.Count(data, []byte("\n"))-1, st.Jobs, "one job per data row of the file")
	assert.Zero(t, st.Problems.Skipped)

	out, _, err = runTrace(t, "", "stats", path)
	require.NoError(t, err)
	assert.Contains(t, out, "8152 (7064 use GPUs")
}

func TestTraceStatsFleet(t *testing.T) {
	path := writeTemp(t, "nodes.csv", samples.OpenbGPUNodes())
	out, _, err := runTrace(t, "", "stats", "--json", path)
	require.NoError(t, err)
	var st struct {
		Format   string `json:"format"`
		Machines int    `json:"machines"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, "openb-nodes", st.Format)
	assert.Equal(t, bytes.Count(samples.OpenbGPUNodes(), []byte("\n"))-1, st.Machines)
}

func TestTraceConvertRoundTrip(t *testing.T) {
	src := writeTemp(t, "pods.csv", samples.OpenbDefaultPods())
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.jsonl"), filepath.Join(dir, "c.csv")
	_, errOut, err := runTrace(t, "", "convert", src, a)
	require.NoError(t, err)
	assert.Contains(t, errOut, "8152 jobs written as petite-csv")
	_, _, err = runTrace(t, "", "convert", a, b)
	require.NoError(t, err)
	_, _, err = runTrace(t, "", "convert", b, c)
	require.NoError(t, err)
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	cb, err := os.ReadFile(c)
	require.NoError(t, err)
	assert.Equal(t, string(ab), string(cb), "canonical → JSONL → canonical is the identity")
}

func TestTraceStrict(t *testing.T) {
	in := "name,cpu_milli,memory_mib,num_gpu\np0,1,1,1\np1,abc,1,1\np2,1,1,1\n"
	out, errOut, err := runTrace(t, in, "convert", "-", "-")
	require.NoError(t, err)
	assert.Contains(t, out, "p0,")
	assert.Contains(t, out, "p2,")
	assert.NotContains(t, out, "p1,")
	assert.Contains(t, errOut, `stdin:3: field cpu_milli: want a non-negative integer, got "abc"`)

	_, _, err = runTrace(t, in, "convert", "--strict", "-", "-")
	assert.EqualError(t, err, `stdin:3: field cpu_milli: want a non-negative integer, got "abc"`)
}

func TestTraceGenAndSampleDeterministic(t *testing.T) {
	a, _, err := runTrace(t, "", "gen", "--jobs", "500", "--seed", "3")
	require.NoError(t, err)
	b, _, err := runTrace(t, "", "gen", "--jobs", "500", "--seed", "3")
	require.NoError(t, err)
	assert.Equal(t, a, b)
	assert.Equal(t, 502, strings.Count(a, "\n"), "meta line, header and 500 jobs")

	path := writeTemp(t, "gen.csv", []byte(a))
	s1, _, err := runTrace(t, "", "sample", "--jobs", "20", "--seed", "9", path)
	require.NoError(t, err)
	s2, _, err := runTrace(t, "", "sample", "--jobs", "20", "--seed", "9", path)
	require.NoError(t, err)
	assert.Equal(t, s1, s2)
	assert.Equal(t, 22, strings.Count(s1, "\n"))

	fit := writeTemp(t, "pods.csv", samples.OpenbDefaultPods())
	spec, _, err := runTrace(t, "", "gen", "--fit", fit, "--print-spec")
	require.NoError(t, err)
	assert.Contains(t, spec, `"jobs": 8152`)
	specPath := writeTemp(t, "spec.json", []byte(spec))
	out, _, err := runTrace(t, "", "gen", "--spec", specPath, "--jobs", "5", "--to", "petite-jsonl")
	require.NoError(t, err)
	assert.Equal(t, 6, strings.Count(out, "\n"))
}

func TestTraceHead(t *testing.T) {
	path := writeTemp(t, "pods.csv", samples.OpenbDefaultPods())
	out, _, err := runTrace(t, "", "head", "-n", "2", path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	assert.Contains(t, lines[1], "openb-pod-0000")
	assert.Contains(t, lines[2], "1×0.46 GPU")
}

func TestTraceUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"convert", "one"},
		{"stats"},
		{"sample", "x"},
		{"gen", "--fit", "a", "--spec", "b"},
		{"convert", "--format", "parquet", "a", "b"},
	} {
		_, _, err := runTrace(t, "", args...)
		assert.ErrorIs(t, err, errUsage, "%v", args)
	}
}
