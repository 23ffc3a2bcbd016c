package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/agent"
	"petite/scheduler/api"
)

// TestMain lets the test binary be the tasks' supervisor as petite is:
// agents started by these tests (a dev server's, `petite agent`'s) run
// `BINARY agent supervise DIR`.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "agent" && os.Args[2] == "supervise" {
		if err := agent.Supervise(os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "petite:", err)
			os.Exit(exitError)
		}
		os.Exit(exitOK)
	}
	os.Exit(m.Run())
}

// TestAgentCommand: `petite agent` as typed registers a mock DGX H100 with
// a dev server whose fleet has no GPU, a job run through the CLI runs on it
// (queued, running, succeeded), and `petite job logs` prints its output.
func TestAgentCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev server and an agent")
	}
	dir := t.TempDir()
	addr := labDevServer(t, dir)

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	data := filepath.Join(dir, "agent")
	go func() {
		done <- run(ctx, []string{"agent", "--server", addr, "--pool", "lab", "--nvml-mock", "dgxh100", "--name", "gpu-1",
			"--data-dir", data, "--http", "127.0.0.1:0", "--cpu-milli", "64000", "--memory-mib", "262144", "--log-level", "warn", "--label", "zone=z9"}, strings.NewReader(""), &out, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, exitOK, <-done, "agent exit; stderr: %s", errb.String())
	})
	cl, err := api.NewClient(addr)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, err := cl.Node(context.Background(), "gpu-1")
		return err == nil && n.State == "ready" && n.GPUs == 8
	}, 30*time.Second, 10*time.Millisecond, "agent never registered; stdout %q stderr %q", out.String(), errb.String())
	assert.Contains(t, out.String(), "petite agent gpu-1: 8 GPU devices (H100), pool lab")

	spec := filepath.Join(dir, "hello.yaml")
	require.NoError(t, os.WriteFile(spec, []byte("name: hello\ntask:\n  gpus: 2\n  models: [H100]\n  cpu_milli: 1000\n  memory_mib: 1024\n"+
		"  constraints: [{key: zone, op: in, values: [z9]}]\n"+
		"  command: [sh, -c, 'echo \"hello from $PETITE_NODE, GPUs $CUDA_VISIBLE_DEVICES\"; echo warn >&2']\n"), 0o644))
	code, stdout, stderr := petite(t, nil, "job", "run", spec, "--json")
	require.Equal(t, exitOK, code, stderr)
	var j api.Job
	require.NoError(t, json.Unmarshal([]byte(stdout), &j))
	require.Eventually(t, func() bool {
		code, stdout, _ := petite(t, nil, "job", "status", j.ID, "--json")
		return code == exitOK && json.Unmarshal([]byte(stdout), &j) == nil && j.Status == api.StatusSucceeded
	}, 30*time.Second, 20*time.Millisecond, "job never succeeded (last %+v)", j)

	code, stdout, stderr = petite(t, nil, "job", "logs", j.ID)
	require.Equal(t, exitOK, code, stderr)
	assert.Regexp(t, `^hello from gpu-1, GPUs GPU-[0-9a-f-]+,GPU-[0-9a-f-]+\n$`, stdout)
	code, stdout, stderr = petite(t, nil, "job", "logs", "hello", "--stderr", "--tail", "3")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "rn\n", stdout, "the last 3 bytes of standard error")
	code, _, stderr = petite(t, nil, "job", "logs", j.ID, "--task", "3")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "has not been placed")
	code, _, stderr = petite(t, nil, "job", "logs")
	assert.Equal(t, exitUsage, code, stderr)

	// --follow prints the log as it grows, each line once, and returns
	// when the job has ended, with the last lines.
	slow := filepath.Join(dir, "slow.yaml")
	require.NoError(t, os.WriteFile(slow, []byte("name: slow\ntask:\n  gpus: 1\n  models: [H100]\n  cpu_milli: 1000\n  memory_mib: 1024\n"+
		"  command: [sh, -c, 'for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done']\n"), 0o644))
	code, stdout, stderr = petite(t, nil, "job", "run", slow, "--json")
	require.Equal(t, exitOK, code, stderr)
	var sj api.Job
	require.NoError(t, json.Unmarshal([]byte(stdout), &sj))
	code, stdout, stderr = petite(t, nil, "job", "logs", sj.ID, "--follow", "--poll", "50ms")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "line 1\nline 2\nline 3\nline 4\nline 5\n", stdout)
	got, err := cl.Job(context.Background(), sj.ID, false)
	require.NoError(t, err)
	assert.Equal(t, api.StatusSucceeded, got.Status, "--follow returned once the job ended")
	code, stdout, stderr = petite(t, nil, "job", "logs", sj.ID, "-f", "--tail", "7")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "line 5\n", stdout, "a tail, and nothing after it of a job ended")
	code, _, stderr = petite(t, nil, "job", "logs", sj.ID, "-f", "--poll", "0s")
	assert.Equal(t, exitUsage, code, stderr)

	// --once checks a node's setup and changes nothing.
	code, stdout, stderr = petite(t, nil, "agent", "--pool", "lab", "--nvml-mock", "dgxh100", "--name", "gpu-2", "--once", "--cpu-milli", "1000", "--memory-mib", "1024")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "node gpu-2 (8 GPU devices, H100; pool lab) can register with "+addr+": now unregistered, 0 task(s)")
	_, err = cl.Node(context.Background(), "gpu-2")
	assert.ErrorContains(t, err, "no node", "a check registers nothing")
	code, _, stderr = petite(t, nil, "agent", "--pool", "lab", "--nvml-mock", "dgxa100", "--name", "gpu-1", "--once", "--cpu-milli", "1000", "--memory-mib", "1024")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "device 0 is registered as H100, the agent found A100")
	code, _, stderr = petite(t, nil, "agent", "--pool", "nowhere", "--nvml-mock", "dgxh100", "--name", "gpu-3", "--once", "--cpu-milli", "1000", "--memory-mib", "1024")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, `pool "nowhere" does not exist`)
}

// TestAgentUsage: the agent's usage errors exit 2 with one line.
func TestAgentUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--nvml-mock", "dgxh100"}, "--pool is required"},
		{[]string{"agent", "--pool", "lab", "--nvml-mock", "dgx9"}, `unknown mock "dgx9"`},
		{[]string{"agent", "--pool", "lab", "--log-level", "loud"}, "--log-level"},
		{[]string{"agent", "supervise"}, "supervise takes a task directory"},
		{[]string{"agent", "--pool", "lab", "--nvml-mock", "dgxh100", "--label", "zone"}, "--label: want KEY=VALUE"},
	} {
		code, _, stderr := petite(t, nil, tt.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", tt.args, stderr)
		assert.Contains(t, stderr, tt.want, tt.args)
	}
}

// labDevServer starts a dev server whose fleet is one CPU-only node in pool
// lab (an agent brings the GPUs), points PETITE_ADDR at it and returns its
// address.
func labDevServer(t *testing.T, dir string) string {
	t.Helper()
	fleet := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(fleet, []byte("pools:\n  - name: lab\n    kind: onprem\n    nodes:\n      - {count: 1, prefix: cpu, cpu_milli: 8000, memory_mib: 16384}\n"), 0o644))
	addr := devServer(t, "server", "--dev", "--http", "127.0.0.1:0", "--fleet", fleet)
	t.Setenv("PETITE_ADDR", addr)
	return addr
}
