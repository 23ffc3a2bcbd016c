package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces"
	"petite/traces/samples"
)

// runTrace runs "petite trace ARGS..." in-process.
func runTrace(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = execute(context.Background(), append([]string{"trace"}, args...), strings.NewReader(stdin), &out, &errb)
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
	assert.Equal(t, 503, strings.Count(a, "\n"), "meta line, header, 500 jobs and the trailer")

	path := writeTemp(t, "gen.csv", []byte(a))
	s1, _, err := runTrace(t, "", "sample", "--jobs", "20", "--seed", "9", path)
	require.NoError(t, err)
	s2, _, err := runTrace(t, "", "sample", "--jobs", "20", "--seed", "9", path)
	require.NoError(t, err)
	assert.Equal(t, s1, s2)
	assert.Equal(t, 23, strings.Count(s1, "\n"))

	fit := writeTemp(t, "pods.csv", samples.OpenbDefaultPods())
	spec, _, err := runTrace(t, "", "gen", "--fit", fit, "--print-spec")
	require.NoError(t, err)
	assert.Contains(t, spec, `"jobs": 8152`)
	specPath := writeTemp(t, "spec.json", []byte(spec))
	out, _, err := runTrace(t, "", "gen", "--spec", specPath, "--jobs", "5", "--to", "petite-jsonl")
	require.NoError(t, err)
	assert.Equal(t, 7, strings.Count(out, "\n"), "meta line, 5 jobs and the trailer")
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

// An output that is one of the inputs (by any path to it) is refused before
// anything is read or written, and the file is left as it was.
func TestTraceOutputIsAnInput(t *testing.T) {
	dir := t.TempDir()
	pods := samples.OpenbDefaultPods()
	in := filepath.Join(dir, "pods.csv")
	require.NoError(t, os.WriteFile(in, pods, 0o644))
	link := filepath.Join(dir, "pods-link.csv")
	require.NoError(t, os.Link(in, link))
	spec, _, err := runTrace(t, "", "gen", "--jobs", "5", "--print-spec")
	require.NoError(t, err)
	specPath := filepath.Join(dir, "spec.json")
	require.NoError(t, os.WriteFile(specPath, []byte(spec), 0o644))
	paiJobs := filepath.Join(dir, "jobs.csv")
	require.NoError(t, os.WriteFile(paiJobs, []byte("j1,i1,u1,Terminated,100.0,200.0\n"), 0o644))
	paiTasks := filepath.Join(dir, "tasks.csv")
	require.NoError(t, os.WriteFile(paiTasks, []byte("j1,t,1.0,Terminated,110.0,190.0,100.0,1.0,100.0,V100\n"), 0o644))

	tests := []struct {
		name    string
		args    []string
		in, out string // the paths the error must name
	}{
		{"convert IN IN", []string{"convert", in, in}, in, in},
		{"convert through a second name", []string{"convert", in, link}, in, link},
		{"convert onto --pai-jobs", []string{"convert", "--pai-jobs", paiJobs, paiTasks, paiJobs}, paiJobs, paiJobs},
		{"sample IN IN", []string{"sample", "--jobs", "3", in, in}, in, in},
		{"gen onto --fit", []string{"gen", "--fit", in, "--jobs", "3", link}, in, link},
		{"gen onto --spec", []string{"gen", "--spec", specPath, specPath}, specPath, specPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(tc.out)
			require.NoError(t, err)
			_, _, err = runTrace(t, "", tc.args...)
			require.ErrorIs(t, err, errUsage)
			assert.ErrorContains(t, err, "input "+tc.in+" and output "+tc.out+" are the same file")
			after, err := os.ReadFile(tc.out)
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after), "the file is untouched")
		})
	}
}

// A run that fails part way leaves the output as it was (or absent), and
// no temporary file behind; a run that succeeds replaces it whole.
func TestTraceOutputWholeOrNothing(t *testing.T) {
	bad := "name,cpu_milli,memory_mib,num_gpu\np0,1,1,1\np1,abc,1,1\n"
	good := "name,cpu_milli,memory_mib,num_gpu\np0,1,1,1\n"
	tests := []struct {
		name    string
		input   string
		args    func(in, out string) []string
		old     string // the output file's content before; "" for none
		wantErr string
		want    string // a line the output must have after a success
	}{
		{"strict convert fails over an old file", bad, func(in, out string) []string { return []string{"convert", "--strict", in, out} },
			"old content\n", `field cpu_milli: want a non-negative integer, got "abc"`, ""},
		{"strict convert fails, no file before", bad, func(in, out string) []string { return []string{"convert", "--strict", in, out} },
			"", `field cpu_milli`, ""},
		{"gen running out of time after 950 jobs makes no file", "", func(_, out string) []string {
			// 1000 jobs at 1 an hour, 1001 hours before the last int64
			// second: the spec passes, and with seed 1 the clock runs
			// out at job 951.
			spec := traces.DefaultSpec()
			spec.Jobs, spec.Start, spec.Seed = 1000, math.MaxInt64-1001*3600, 1
			spec.Arrival = traces.Arrival{Process: "poisson", RatePerHour: 1}
			b, err := json.Marshal(spec)
			require.NoError(t, err)
			path := filepath.Join(filepath.Dir(out), "spec.json")
			require.NoError(t, os.WriteFile(path, b, 0o644))
			return []string{"gen", "--spec", path, out}
		}, "", "gen: job 951 arrives past the last time a trace can hold", ""},
		{"a success replaces the old file", good, func(in, out string) []string { return []string{"convert", in, out} },
			"old content\n", "", "p0,"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.csv")
			require.NoError(t, os.WriteFile(in, []byte(tc.input), 0o644))
			out := filepath.Join(dir, "out.csv")
			if tc.old != "" {
				require.NoError(t, os.WriteFile(out, []byte(tc.old), 0o640))
			}
			_, _, err := runTrace(t, "", tc.args(in, out)...)
			got, rerr := os.ReadFile(out)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.ErrorContains(t, err, tc.wantErr)
				if tc.old == "" {
					assert.True(t, os.IsNotExist(rerr), "no output file")
				} else {
					require.NoError(t, rerr)
					assert.Equal(t, tc.old, string(got), "the old file is untouched")
				}
			} else {
				require.NoError(t, err)
				require.NoError(t, rerr)
				assert.Contains(t, string(got), tc.want)
				st, err := os.Stat(out)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "the replaced file keeps its mode")
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			for _, n := range names {
				assert.Contains(t, []string{"in.csv", "out.csv", "spec.json"}, n, "no temporary file left")
			}
		})
	}
}

// Rates too low for any arrival to be a time are refused, as a wrong call
// (exit 2); before, gen wrote submit times wrapped around to
// -9223372036854775808.
func TestTraceGenRateBounds(t *testing.T) {
	for rate, shown := range map[string]string{"1e-300": "1e-300", "1e-7": "1e-07", "-5": "-5", "NaN": "NaN", "Inf": "+Inf"} {
		t.Run(rate, func(t *testing.T) {
			code, out, errOut := petite(t, nil, "trace", "gen", "--rate", rate, "--jobs", "3", "-")
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, errOut, "--rate "+shown+": want a finite number >= 1e-06")
			assert.Empty(t, out)
		})
	}
}
