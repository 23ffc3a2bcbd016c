package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
	"petite/traces"
)

// Jobs run on a dev server and ended through the API (one succeeded, one
// failed, one stopped) come out of `petite trace export` as a canonical
// trace that the traces reader reads back strictly and `petite sim run`
// replays.
func TestTraceExportReplays(t *testing.T) {
	repo := inShippedTree(t)
	t.Setenv("PETITE_ADDR", devServer(t, "server", "--dev", "--http", "127.0.0.1:0", "--policy", "best-fit"))
	run := func(args ...string) string {
		t.Helper()
		code, out, errOut := petite(t, nil, args...)
		require.Equal(t, exitOK, code, "%v: %s", args, errOut)
		return out
	}
	sleepSpecs(t, repo)
	submit := func(spec string) string {
		var j api.Job
		require.NoError(t, json.Unmarshal([]byte(run("job", "run", spec, "--json")), &j))
		return j.ID
	}
	train, serve, other := submit("train.yaml"), submit("serve.yaml"), submit("train.yaml")
	run("job", "finish", train)
	run("job", "finish", other, "--failed")
	run("job", "stop", serve)
	queued := submit("train.yaml") // still running: only with --live

	run("trace", "export", "-o", "history.csv")
	r, err := traces.Open("history.csv", traces.Options{Strict: true})
	require.NoError(t, err)
	got := map[string]traces.Job{}
	for j, err := range r.All() {
		require.NoError(t, err)
		got[j.ID] = j
	}
	require.NoError(t, r.Close())
	require.Len(t, got, 3, "ended jobs only")
	assert.Equal(t, traces.StatusSucceeded, got[train].Status)
	assert.Equal(t, traces.StatusFailed, got[other].Status)
	assert.Equal(t, traces.StatusKilled, got[serve].Status)
	tj := got[train]
	assert.Equal(t, "research", tj.Tenant)
	assert.Equal(t, traces.KindTraining, tj.Kind)
	assert.Equal(t, 10, tj.Priority)
	assert.Equal(t, []traces.Task{{Count: 2, GPUs: 8, GPUMilli: 1000, GPUModels: []string{"H100"}, CPUMilli: 32000, MemoryMiB: 262144}}, tj.Tasks)
	assert.Positive(t, tj.Submit)
	assert.GreaterOrEqual(t, tj.Start, tj.Submit)
	assert.GreaterOrEqual(t, tj.End, tj.Start)
	assert.Equal(t, tj.End-tj.Start, tj.Duration)
	assert.Equal(t, traces.KindInference, got[serve].Kind)
	assert.Equal(t, int64(500), got[serve].Tasks[0].GPUMilli)

	out := run("sim", "run", "--trace", "history.csv", "--policy", "best-fit", "--json")
	var res struct {
		Jobs  int `json:"jobs"`
		Ended int `json:"ended"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, 3, res.Jobs, out)
	assert.Equal(t, 3, res.Ended, out)

	live := run("trace", "export", "--live", "--format", "petite-jsonl")
	assert.Contains(t, live, `"id":"`+queued+`"`)
	assert.Contains(t, live, `"status":"running"`)
	code, _, errOut := petite(t, nil, "trace", "export", "--since", "yesterday")
	assert.Equal(t, exitUsage, code)
	assert.True(t, strings.Contains(errOut, "--since"), errOut)
}

// sleepSpecs writes train.yaml and serve.yaml here: the examples' specs
// with a command that neither ends nor fails on its own, so that a dev
// server's agents keep the jobs running until the test ends them.
func sleepSpecs(t *testing.T, repo string) {
	t.Helper()
	for _, name := range []string{"train.yaml", "serve.yaml"} {
		b, err := os.ReadFile(filepath.Join(repo, "examples", name))
		require.NoError(t, err)
		var out []string
		inCommand := false
		for _, l := range strings.Split(string(b), "\n") {
			if inCommand && strings.HasPrefix(l, "    ") {
				continue // the rest of a block-style command
			}
			inCommand = false
			if strings.HasPrefix(strings.TrimSpace(l), "command:") {
				l, inCommand = "  command: [sleep, \"600\"]", true
			}
			out = append(out, l)
		}
		require.NoError(t, os.WriteFile(name, []byte(strings.Join(out, "\n")), 0o644))
	}
}
