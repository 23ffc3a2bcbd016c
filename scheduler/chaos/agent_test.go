package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
)

// agentFleet has no H100: the jobs of the agent test (8 H100 each) fit
// only on the nodes the agents register (mock DGX H100).
const agentFleet = `pools:
  - name: lab
    kind: onprem
    region: r1
    nodes:
      - {count: 1, prefix: a10, cpu_milli: 32000, memory_mib: 262144,
         gpus: {count: 4, model: A10, memory_mib: 24576}}
`

// heartbeatConfig shortens the liveness timeouts so that a node goes
// disconnected and down within seconds.
const heartbeatConfig = `server:
  heartbeat:
    interval: 300ms
    timeout: 1500ms
    disconnect_window: 4s
    grace: 500ms
`

// startAgent runs `petite agent` for node name in namespace slot k (or on
// loopback), against every server.
func (c *cluster) startAgent(t *testing.T, k int, name string) *srv {
	t.Helper()
	var urls []string
	for _, s := range c.srvs {
		urls = append(urls, s.url)
	}
	dir := t.TempDir()
	a := &srv{id: name, log: filepath.Join(dir, "agent.log")}
	http := "127.0.0.1:0"
	if c.lab.ok {
		c.lab.addServer(t, 10+k)
		a.ns, http = c.lab.ns(10+k), c.lab.ip(10+k)+":4648"
	}
	a.args = []string{"agent", "--server", strings.Join(urls, ","), "--pool", "lab", "--nvml-mock", "dgxh100",
		"--name", name, "--data-dir", filepath.Join(dir, "data"), "--http", http, "--log-level", "info",
		"--cpu-milli", "64000", "--memory-mib", "524288"}
	require.NoError(t, a.start())
	c.agents = append(c.agents, a)
	t.Cleanup(func() {
		a.pause(false)
		a.kill()
		// Task runs outlive their agent by design: end them with it.
		pids, _ := filepath.Glob(filepath.Join(dir, "data", "tasks", "*", "*", "*.pid"))
		for _, p := range pids {
			if b, err := os.ReadFile(p); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	return a
}

// childPID is the pid of a task run's command on an agent, 0 when none.
func childPID(a *srv, job string) int {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(a.log), "data", "tasks", job, "*", "child.pid"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
			return pid
		}
	}
	return 0
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// An agent killed with SIGKILL, or cut off from every server, leaves its
// running task running: when it comes back (restarted on its data dir, or
// its link up again) it adopts the task and the job goes on where it was.
// An agent cut off past its node's disconnect window stops its task by
// itself, at the end of its lease, while the servers reschedule the work:
// no task runs longer than its lease on a node the committed state no
// longer gives it.
func TestChaosAgents(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "petite.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(heartbeatConfig), 0o644))
	c := newClusterOpts(t, 3, clusterOpts{fleet: agentFleet, args: []string{"--config", cfg}})
	if !c.lab.ok {
		t.Skip("cutting an agent off needs network namespaces (root and ip netns)")
	}
	agents := []*srv{c.startAgent(t, 0, "ag-0"), c.startAgent(t, 1, "ag-1")}
	cl := c.client(0)
	cl.Retry = 30 * time.Second
	ctx := context.Background()
	require.Eventually(t, func() bool {
		ns, err := cl.Nodes(ctx, "")
		return err == nil && len(ns) == 3
	}, 30*time.Second, 100*time.Millisecond, "agents registered")
	for k := range agents {
		_, err := cl.SubmitKey(ctx, fmt.Appendf(nil, "id: j%d\ntask: {gpus: 8, models: [H100], cpu_milli: 1000, memory_mib: 1024, command: [sleep, '600']}\n", k), fmt.Sprintf("agent-j%d", k))
		require.NoError(t, err)
	}
	onNode := map[string]string{}
	pids := map[string]int{}
	require.Eventually(t, func() bool {
		for k := range agents {
			j, err := cl.Job(ctx, fmt.Sprintf("j%d", k), false)
			if err != nil || j.Status != api.StatusRunning || len(j.Tasks) == 0 {
				return false
			}
			onNode[j.ID] = j.Tasks[0].Node
		}
		for _, a := range agents {
			for job, node := range onNode {
				if node == a.id && childPID(a, job) == 0 {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "both jobs running under their agents")
	agentOf := map[string]*srv{}
	for job, node := range onNode {
		for _, a := range agents {
			if a.id == node {
				agentOf[job] = a
				pids[job] = childPID(a, job)
			}
		}
	}
	t.Logf("placed: %v, pids %v", onNode, pids)

	// Kill an agent: its task keeps running; the agent, started again,
	// adopts it.
	a := agentOf["j0"]
	a.kill()
	time.Sleep(time.Second)
	assert.True(t, alive(pids["j0"]), "the task outlives its agent")
	require.NoError(t, a.start())
	time.Sleep(2 * time.Second)
	j, err := cl.Job(ctx, "j0", false)
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, j.Status)
	assert.Equal(t, onNode["j0"], j.Tasks[0].Node)
	assert.Equal(t, pids["j0"], childPID(a, "j0"), "adopted, not started again")

	// Cut an agent off past the timeout, within the window: the node is
	// disconnected, the task runs on, and when the link returns nothing moved.
	b := agentOf["j1"]
	k := 1
	if b.id == "ag-0" {
		k = 0
	}
	require.NoError(t, c.lab.cut(10+k, true))
	require.Eventually(t, func() bool {
		n, err := cl.Node(ctx, b.id)
		return err == nil && n.State == "disconnected"
	}, 10*time.Second, 100*time.Millisecond, "the node is disconnected")
	assert.True(t, alive(pids["j1"]), "a disconnected node's work runs on")
	require.NoError(t, c.lab.cut(10+k, false))
	require.Eventually(t, func() bool {
		n, err := cl.Node(ctx, b.id)
		return err == nil && n.State == "ready"
	}, 10*time.Second, 100*time.Millisecond, "reconciled: ready again")
	j, err = cl.Job(ctx, "j1", false)
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, j.Status)
	assert.Equal(t, onNode["j1"], j.Tasks[0].Node)
	assert.Equal(t, pids["j1"], childPID(b, "j1"), "the same run")

	// Cut it off past the window: the servers take the work off the node
	// (down), and the agent, hearing nothing, ends the task at its lease's
	// end, by itself.
	require.NoError(t, c.lab.cut(10+k, true))
	cut := time.Now()
	require.Eventually(t, func() bool {
		n, err := cl.Node(ctx, b.id)
		return err == nil && n.State == "down"
	}, 15*time.Second, 100*time.Millisecond, "the node is down")
	down := time.Since(cut)
	// The lease runs the disconnect window (4 s) from the last contact,
	// at most a heartbeat (0.3 s) before the cut; a second of slack for a
	// loaded machine.
	lease := time.Until(cut.Add(4*time.Second + 300*time.Millisecond + time.Second))
	require.Eventually(t, func() bool { return !alive(pids["j1"]) }, max(lease, 50*time.Millisecond), 20*time.Millisecond,
		"the task outlived its lease on a node the state no longer gives it")
	t.Logf("cut off: node down after %s, task ended after %s", down.Round(100*time.Millisecond), time.Since(cut).Round(100*time.Millisecond))
	j, err = cl.Job(ctx, "j1", false)
	require.NoError(t, err)
	assert.False(t, j.Status == api.StatusRunning && firstNode(j) == onNode["j1"], "rescheduled off the lost node: %s on %s", j.Status, firstNode(j))
	require.NoError(t, c.lab.cut(10+k, false))
	require.Eventually(t, func() bool {
		n, err := cl.Node(ctx, b.id)
		return err == nil && n.State == "ready"
	}, 15*time.Second, 100*time.Millisecond, "the node comes back")
}

func firstNode(j api.Job) string {
	if len(j.Tasks) == 0 {
		return ""
	}
	return j.Tasks[0].Node
}
