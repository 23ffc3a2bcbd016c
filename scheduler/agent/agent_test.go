package agent

import (
	"bytes"
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

	"petite/nvml"
	"petite/scheduler/api"
	"petite/scheduler/server"
)

// runDir is the directory of a job's task's latest run on an agent.
func runDir(t *testing.T, ta *testAgent, job string, task int) string {
	t.Helper()
	dir, ok := latestRun(ta.dir, job, task)
	require.True(t, ok, "no run of %s/%d on %s", job, task, ta.node)
	return dir
}

// pidOf reads a pid file of a run.
func pidOf(t *testing.T, dir, file string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return !bytes.Contains(b, []byte(") Z")) // a zombie has ended
}

// agentOf returns the agent of the node a job's first task is placed on.
func agentOf(t *testing.T, j api.Job, agents ...*testAgent) *testAgent {
	t.Helper()
	require.NotEmpty(t, j.Tasks)
	for _, a := range agents {
		if a.node == j.Tasks[0].Node {
			return a
		}
	}
	t.Fatalf("job %s on %s, which has no agent", j.ID, j.Tasks[0].Node)
	return nil
}

// TestAgentsRunJobs: jobs submitted through the API of a 3-server cluster
// are placed on agents' nodes, their commands run with the placement's GPU
// UUIDs in CUDA_VISIBLE_DEVICES, end with the right status, and their logs
// are read through any server; a node new to the cluster registers.
func TestAgentsRunJobs(t *testing.T) {
	c := newCluster(t, 3, 1, fastLiveness)
	f := c.follower()
	a0 := c.startAgent("n0", "", f)
	a1 := c.startAgent("new-node", "", f) // not in the fleet: registered by its agent
	cl := c.client(f)
	ctx := context.Background()
	waitNode(t, cl, "new-node", "ready")

	_, err := cl.Submit(ctx, jobSpec("ok", 2, 4, `echo "gpus=$CUDA_VISIBLE_DEVICES nv=$NVIDIA_VISIBLE_DEVICES"; echo oops >&2`))
	require.NoError(t, err)
	_, err = cl.Submit(ctx, jobSpec("bad", 1, 1, "exit 3"))
	require.NoError(t, err)
	waitJob(t, cl, "ok", api.StatusSucceeded)
	waitJob(t, cl, "bad", api.StatusFailed)

	// Each task of "ok" saw its own devices' UUIDs, as the servers placed
	// them: the union of the two tasks' devices has no repeat.
	var all []string
	for task := range 2 {
		node, ok := c.ds[0].Server.FSM().RanOn("ok", task)
		require.True(t, ok)
		ta := map[string]*testAgent{"n0": a0, "new-node": a1}[node]
		require.NotNil(t, ta)
		out, err := os.ReadFile(filepath.Join(runDir(t, ta, "ok", task), fileStdout))
		require.NoError(t, err)
		var gpus, nv string
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "gpus="); ok {
				gpus = v
			}
			if v, ok := strings.CutPrefix(f, "nv="); ok {
				nv = v
			}
		}
		devs := strings.Split(gpus, ",")
		assert.Len(t, devs, 4)
		assert.Equal(t, gpus, nv)
		for _, d := range devs {
			assert.True(t, strings.HasPrefix(d, "GPU-"), d)
			assert.Contains(t, ta.Registration().Devices, d, "a device of the task's node")
		}
		all = append(all, devs...)

		var logs bytes.Buffer
		require.NoError(t, c.client((f+1)%3).Logs(ctx, "ok", api.LogsQuery{Task: task}, &logs))
		assert.Equal(t, string(out), logs.String(), "logs through a server are the task's stdout")
		logs.Reset()
		require.NoError(t, cl.Logs(ctx, "ok", api.LogsQuery{Task: task, Stream: api.StreamStderr}, &logs))
		assert.Equal(t, "oops\n", logs.String())
	}
	if a0.node == a1.node {
		t.Fatal("unreachable")
	}
	seen := map[string]bool{}
	for _, d := range all {
		assert.False(t, seen[d], "device %s given twice", d)
		seen[d] = true
	}
	var logs bytes.Buffer
	err = cl.Logs(ctx, "ok", api.LogsQuery{Task: 5}, &logs)
	assert.ErrorContains(t, err, "not been placed")
}

// TestAgentCancelKills: cancelling a job kills its process at once (no
// grace), and the agent reports the run stopped, not failed.
func TestAgentCancelKills(t *testing.T) {
	c := newCluster(t, 3, 1, fastLiveness)
	a := c.startAgent("n0", "", 0)
	cl := c.client(0)
	ctx := context.Background()
	_, err := cl.Submit(ctx, jobSpec("long", 1, 1, "trap '' TERM; sleep 60"))
	require.NoError(t, err)
	waitJob(t, cl, "long", api.StatusRunning)
	var dir string
	require.Eventually(t, func() bool {
		d, ok := latestRun(a.dir, "long", 0)
		dir = d
		return ok && fileExists(filepath.Join(d, fileChild))
	}, waitFor, 10*time.Millisecond)
	child := pidOf(t, dir, fileChild)
	require.True(t, alive(child))

	_, err = cl.Cancel(ctx, "long")
	require.NoError(t, err)
	// The command ignores SIGTERM: only a kill ends it, well before the
	// 2 s grace a preemption would give.
	start := time.Now()
	require.Eventually(t, func() bool { return !alive(child) }, waitFor, 10*time.Millisecond)
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "a cancel kills without the grace")
	waitJob(t, cl, "long", api.StatusCancelled)
	require.Eventually(t, func() bool { return len(a.Tasks()) == 0 }, waitFor, 10*time.Millisecond, "the stopped run is acked")
	var rec exitRecord
	require.NoError(t, readJSON(filepath.Join(dir, fileExit), &rec))
	assert.Equal(t, 137, rec.Code, "SIGKILL")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestStopGrace: the preemption path. A task no longer given gets SIGTERM
// and its grace to write a checkpoint; one that ignores SIGTERM is killed
// once the grace is over.
func TestStopGrace(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	data := t.TempDir()
	t.Cleanup(func() { killTasks(data) })
	tests := []struct {
		name     string
		sh       string
		grace    time.Duration
		min, max time.Duration
		out      string
	}{
		{"checkpoints on SIGTERM", `trap 'echo checkpoint; exit 0' TERM; echo up; sleep 30 & wait`, 3 * time.Second, 0, 2500 * time.Millisecond, "up\ncheckpoint\n"},
		{"ignores SIGTERM: killed after the grace", `trap '' TERM; echo up; sleep 30`, 700 * time.Millisecond, 600 * time.Millisecond, 5 * time.Second, "up\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := server.TaskKey{Job: "j", Task: i}
			tk, err := start(data, []string{exe, "supervise"}, server.Assignment{TaskKey: k, Command: []string{"sh", "-c", tt.sh}}, "n0")
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				b, _ := os.ReadFile(filepath.Join(tk.dir, fileStdout))
				return string(b) == "up\n"
			}, waitFor, 10*time.Millisecond)
			begin := time.Now()
			tk.stop(tt.grace, begin)
			require.Eventually(t, func() bool { tk.poll(); return tk.ended }, waitFor, 10*time.Millisecond)
			took := time.Since(begin)
			assert.GreaterOrEqual(t, took, tt.min)
			assert.Less(t, took, tt.max)
			assert.Equal(t, server.TaskStopped, tk.state, "a stopped run is never a finish")
			b, _ := os.ReadFile(filepath.Join(tk.dir, fileStdout))
			assert.Equal(t, tt.out, string(b))
		})
	}
}

// TestAgentRestartAdopts: an agent stopped while its task runs leaves it
// running; a new agent on the same data dir adopts it (the task is not
// started twice) and reports its end, which the supervisor wrote.
func TestAgentRestartAdopts(t *testing.T) {
	c := newCluster(t, 3, 1, fastLiveness)
	dir := t.TempDir()
	a := c.startAgent("n0", dir, 0)
	cl := c.client(0)
	ctx := context.Background()
	gate := filepath.Join(t.TempDir(), "gate")
	_, err := cl.Submit(ctx, jobSpec("adopt", 1, 1, "echo started >> starts; while [ ! -e "+gate+" ]; do sleep 0.05; done; exit 4"))
	require.NoError(t, err)
	waitJob(t, cl, "adopt", api.StatusRunning)
	require.Eventually(t, func() bool {
		d, ok := latestRun(dir, "adopt", 0)
		return ok && fileExists(filepath.Join(d, "starts"))
	}, waitFor, 10*time.Millisecond)
	run := runDir(t, a, "adopt", 0)
	child := pidOf(t, run, fileChild)

	a.stop() // the agent goes; its task stays
	time.Sleep(200 * time.Millisecond)
	require.True(t, alive(child), "the task outlives its agent")

	b := c.startAgent("n0", dir, 1)
	require.Eventually(t, func() bool { return len(b.Tasks()) == 1 }, waitFor, 10*time.Millisecond)
	assert.Equal(t, server.TaskRunning, b.Tasks()[0].State, "adopted, running")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	waitJob(t, cl, "adopt", api.StatusFailed) // exit 4, learnt from the supervisor's file
	starts, err := os.ReadFile(filepath.Join(run, "starts"))
	require.NoError(t, err)
	assert.Equal(t, "started\n", string(starts), "started once")
}

// TestAgentSilentNodeRescheduled: an agent that stops heartbeating has its
// node disconnected past the heartbeat timeout, then down past the
// disconnect window; its training gang goes back to the queue and runs on
// the other node.
func TestAgentSilentNodeRescheduled(t *testing.T) {
	c := newCluster(t, 3, 2, fastLiveness)
	a0 := c.startAgent("n0", "", 0)
	a1 := c.startAgent("n1", "", 1)
	cl := c.client(2)
	ctx := context.Background()
	waitNode(t, cl, "n0", "ready")
	waitNode(t, cl, "n1", "ready")
	_, err := cl.Submit(ctx, jobSpec("gang", 1, 8, "sleep 60"))
	require.NoError(t, err)
	j := waitJob(t, cl, "gang", api.StatusRunning)
	dead := agentOf(t, j, a0, a1)
	other := map[*testAgent]*testAgent{a0: a1, a1: a0}[dead]
	require.Eventually(t, func() bool { return len(dead.Tasks()) == 1 }, waitFor, 10*time.Millisecond)

	require.Eventually(t, func() bool { return fileExists(filepath.Join(runDir(t, dead, "gang", 0), fileChild)) }, waitFor, 10*time.Millisecond)
	child := pidOf(t, runDir(t, dead, "gang", 0), fileChild)
	dead.stop()
	waitNode(t, cl, dead.node, "disconnected")
	j, err = cl.Job(ctx, "gang", false)
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, j.Status, "inside the window the work stays")
	assert.Equal(t, dead.node, j.Tasks[0].Node)

	waitNode(t, cl, dead.node, "down")
	// With no agent left, the task's supervisor kills it once the lease
	// the agent recorded has run out: the gang never runs twice for long.
	require.Eventually(t, func() bool { return !alive(child) }, 5*time.Second, 10*time.Millisecond, "the orphaned task is killed at the end of the window")
	var rec exitRecord
	require.NoError(t, readJSON(filepath.Join(runDir(t, dead, "gang", 0), fileExit), &rec))
	assert.Equal(t, 137, rec.Code)
	require.Eventually(t, func() bool {
		j, err = cl.Job(ctx, "gang", false)
		return err == nil && j.Status == api.StatusRunning && len(j.Tasks) == 1 && j.Tasks[0].Node == other.node
	}, waitFor, 10*time.Millisecond, "the gang runs again on %s (last %+v)", other.node, j)
	assert.Equal(t, 1, j.Requeues)
	require.Eventually(t, func() bool {
		ts := other.Tasks()
		return len(ts) == 1 && ts[0].Gen == 1 && ts[0].State == server.TaskRunning
	}, waitFor, 10*time.Millisecond, "the other agent runs the requeued gang")
}

// TestAgentLinkCut: a link cut shorter than the disconnect window leaves the
// task running (the node disconnected meanwhile); when the link returns the
// node is ready and the task goes on to finish. A cut longer than the
// window makes the agent kill its task (its lease is over) while the
// servers place the work elsewhere.
func TestAgentLinkCut(t *testing.T) {
	c := newCluster(t, 3, 2, fastLiveness)
	a0 := c.startAgent("n0", "", 0)
	a1 := c.startAgent("n1", "", 0)
	cl := c.client(1)
	ctx := context.Background()
	waitNode(t, cl, "n0", "ready")
	waitNode(t, cl, "n1", "ready")
	gate := filepath.Join(t.TempDir(), "gate")
	_, err := cl.Submit(ctx, jobSpec("short-cut", 1, 8, "while [ ! -e "+gate+" ]; do sleep 0.05; done"))
	require.NoError(t, err)
	j := waitJob(t, cl, "short-cut", api.StatusRunning)
	cut := agentOf(t, j, a0, a1)
	require.Eventually(t, func() bool { return len(cut.Tasks()) == 1 }, waitFor, 10*time.Millisecond)
	child := pidOf(t, runDir(t, cut, "short-cut", 0), fileSupervisor)

	cut.link.cut.Store(true)
	waitNode(t, cl, cut.node, "disconnected")
	time.Sleep(300 * time.Millisecond)
	assert.True(t, alive(child), "inside the window the task runs on")
	cut.link.cut.Store(false)
	waitNode(t, cl, cut.node, "ready")
	j, err = cl.Job(ctx, "short-cut", false)
	require.NoError(t, err)
	assert.Equal(t, 0, j.Requeues, "reconciled, not rescheduled")
	assert.True(t, alive(child), "the same process, kept")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	waitJob(t, cl, "short-cut", api.StatusSucceeded)

	// Past the window: the agent kills, the servers reschedule.
	_, err = cl.Submit(ctx, jobSpec("long-cut", 1, 8, "sleep 60"))
	require.NoError(t, err)
	j = waitJob(t, cl, "long-cut", api.StatusRunning)
	cut = agentOf(t, j, a0, a1)
	require.Eventually(t, func() bool { return len(cut.Tasks()) == 1 }, waitFor, 10*time.Millisecond)
	sup := pidOf(t, runDir(t, cut, "long-cut", 0), fileSupervisor)
	cut.link.cut.Store(true)
	require.Eventually(t, func() bool { return !alive(sup) }, waitFor, 10*time.Millisecond, "the agent kills its task past its lease")
	require.Eventually(t, func() bool {
		j, err = cl.Job(ctx, "long-cut", false)
		return err == nil && j.Status == api.StatusRunning && j.Requeues == 1
	}, waitFor, 10*time.Millisecond)
	assert.NotEqual(t, cut.node, j.Tasks[0].Node)
	cut.link.cut.Store(false)
	waitNode(t, cl, cut.node, "ready")
	require.Eventually(t, func() bool { return len(cut.Tasks()) == 0 }, waitFor, 10*time.Millisecond, "the killed run is acked, not finished")
	j, err = cl.Job(ctx, "long-cut", false)
	require.NoError(t, err)
	assert.Equal(t, api.StatusRunning, j.Status)
}

// TestAgentLeaderChange: the leader the agent talks to dies; the agent
// moves to another server, the new leader grants its node a fresh
// deadline (the node is never marked down, the task never requeued), and
// the task's end is taken by the new leader.
func TestAgentLeaderChange(t *testing.T) {
	c := newCluster(t, 3, 1, fastLiveness)
	l := c.leader()
	a := c.startAgent("n0", "", l) // the leader first
	other := (l + 1) % 3
	cl := c.client(other)
	ctx := context.Background()
	gate := filepath.Join(t.TempDir(), "gate")
	_, err := cl.Submit(ctx, jobSpec("through", 1, 1, "while [ ! -e "+gate+" ]; do sleep 0.05; done"))
	require.NoError(t, err)
	waitJob(t, cl, "through", api.StatusRunning)
	require.Eventually(t, func() bool { return len(a.Tasks()) == 1 }, waitFor, 10*time.Millisecond)

	c.kill(l)
	nl := c.leader()
	require.NotEqual(t, l, nl)
	cl = c.client(nl)
	// Heartbeats reach the new leader.
	require.Eventually(t, func() bool { return c.ds[nl].Server.Stats().Passes > 0 && a.NodeState() == "ready" }, waitFor, 10*time.Millisecond)
	time.Sleep(2 * fastLiveness.Window / 2)
	n, err := cl.Node(ctx, "n0")
	require.NoError(t, err)
	assert.Equal(t, "ready", n.State, "a new leader grants the node a fresh deadline")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	j := waitJob(t, cl, "through", api.StatusSucceeded)
	assert.Equal(t, 0, j.Requeues)
}

// TestSupervisorKilled: a run whose supervisor is killed ends with an
// unknown status (-1), and its command, left unwatched in its own process
// group, is killed.
func TestSupervisorKilled(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	data := t.TempDir()
	t.Cleanup(func() { killTasks(data) })
	tk, err := start(data, []string{exe, "supervise"}, server.Assignment{TaskKey: server.TaskKey{Job: "j"}, Command: []string{"sleep", "60"}}, "n0")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return fileExists(filepath.Join(tk.dir, fileChild)) }, waitFor, 10*time.Millisecond)
	child := pidOf(t, tk.dir, fileChild)
	require.NoError(t, syscall.Kill(tk.pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { tk.poll(); return tk.ended }, waitFor, 10*time.Millisecond)
	assert.Equal(t, server.TaskExited, tk.state)
	assert.Equal(t, -1, tk.code)
	require.Eventually(t, func() bool { return !alive(child) }, waitFor, 10*time.Millisecond, "the unwatched command is killed")
}

// TestAgentStartsWithoutWaitingForHeartbeat: the leader rings an agent
// whose node's tasks changed, so a task placed on it starts at once, not
// at its next heartbeat (10 s apart here), and a cancel stops it at once.
func TestAgentStartsWithoutWaitingForHeartbeat(t *testing.T) {
	slow := server.Liveness{Interval: 10 * time.Second, Timeout: 30 * time.Second, Window: time.Minute, Grace: time.Second}
	c := newCluster(t, 3, 1, slow)
	a := c.startAgent("n0", "", 0)
	cl := c.client(1)
	ctx := context.Background()
	waitNode(t, cl, "n0", "ready")
	require.Eventually(t, func() bool { return a.NodeState() == "ready" }, waitFor, 10*time.Millisecond)
	for _, id := range []string{"first", "second"} {
		_, err := cl.Submit(ctx, jobSpec(id, 1, 1, "sleep 60"))
		require.NoError(t, err)
		begin := time.Now()
		require.Eventually(t, func() bool {
			for _, r := range a.Tasks() {
				if r.Job == id && r.State == server.TaskRunning {
					return true
				}
			}
			return false
		}, waitFor, 10*time.Millisecond)
		assert.Less(t, time.Since(begin), 2*time.Second, "%s started long before the next heartbeat", id)
	}
	_, err := cl.Cancel(ctx, "first")
	require.NoError(t, err)
	begin := time.Now()
	require.Eventually(t, func() bool {
		for _, r := range a.Tasks() {
			if r.Job == "first" && r.State == server.TaskRunning {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond)
	assert.Less(t, time.Since(begin), 2*time.Second, "a cancel reaches the agent at once")
}

// TestDuplicateExitReport: an exit report that reaches the leader again
// (its answer was lost) after the service's replica was placed anew on the
// same node ends nothing: the report names the placement it ran under.
func TestDuplicateExitReport(t *testing.T) {
	c := newCluster(t, 1, 1, fastLiveness)
	cl := c.client(0)
	ctx := context.Background()
	_, nodes := fleet(1)
	devs := make([]string, len(nodes[0].GPUs))
	for i := range devs {
		devs[i] = fmt.Sprintf("GPU-dup-%d", i)
	}
	_, err := cl.RegisterAgent(ctx, server.AgentRegistration{Node: nodes[0], Devices: devs})
	require.NoError(t, err)
	_, err = cl.Submit(ctx, []byte("id: svc\nkind: inference\ncount: 2\ntask:\n  gpus: 1\n  cpu_milli: 100\n  memory_mib: 100\n  command: [x]\n"))
	require.NoError(t, err)
	waitJob(t, cl, "svc", api.StatusRunning)
	first := givenTask(t, cl, "svc", 0, nil)

	exit := server.Heartbeat{Tasks: []server.TaskReport{{TaskKey: first, State: server.TaskExited, ExitCode: 1}}}
	_, err = cl.Heartbeat(ctx, nodes[0].Name, exit)
	require.NoError(t, err)
	again := givenTask(t, cl, "svc", 0, &first)     // the replica placed anew, here
	_, err = cl.Heartbeat(ctx, nodes[0].Name, exit) // the same report, once more
	require.NoError(t, err)
	ans, err := cl.Heartbeat(ctx, nodes[0].Name, server.Heartbeat{})
	require.NoError(t, err)
	assert.Contains(t, keys(ans.Tasks), again, "the new replica is not ended by the old run's report")
}

// givenTask waits until the node's agent is given task i of a job (another
// run than not, when set) and returns its key.
func givenTask(t *testing.T, cl *api.Client, job string, i int, not *server.TaskKey) server.TaskKey {
	t.Helper()
	var k server.TaskKey
	require.Eventually(t, func() bool {
		ans, err := cl.Heartbeat(context.Background(), "n0", server.Heartbeat{})
		if err != nil {
			return false
		}
		for _, a := range ans.Tasks {
			if a.Job == job && a.Task == i && (not == nil || a.TaskKey != *not) {
				k = a.TaskKey
				return true
			}
		}
		return false
	}, waitFor, 10*time.Millisecond, "%s/%d never given", job, i)
	return k
}

func keys(as []server.Assignment) []server.TaskKey {
	out := make([]server.TaskKey, len(as))
	for i, a := range as {
		out[i] = a.TaskKey
	}
	return out
}

// TestAgentMIG: a node whose GPUs are in MIG mode registers one device per
// MIG instance, and a task placed on an instance sees its MIG UUID.
func TestAgentMIG(t *testing.T) {
	c := newCluster(t, 1, 1, fastLiveness)
	a := c.startMockAgent("mig-0", "", 0, "dgxh100", nvml.MockConfig{Node: "mig-0", MIGAll: []string{"3g.40gb", "2g.20gb", "2g.20gb"}})
	cl := c.client(0)
	ctx := context.Background()
	waitNode(t, cl, "mig-0", "ready")
	n, err := cl.Node(ctx, "mig-0")
	require.NoError(t, err)
	assert.Equal(t, 24, n.GPUs, "3 MIG instances on each of 8 GPUs")
	// The fleet's node of whole GPUs drains: the share goes to an instance.
	_, err = cl.SetNodeState(ctx, "n0", "draining")
	require.NoError(t, err)
	_, err = cl.Submit(ctx, []byte("id: mig\ncount: 1\ntask:\n  gpus: 1\n  gpu_milli: 428\n  cpu_milli: 100\n  memory_mib: 100\n  command: [sh, -c, 'echo $CUDA_VISIBLE_DEVICES']\n"))
	require.NoError(t, err)
	waitJob(t, cl, "mig", api.StatusSucceeded)
	out, err := os.ReadFile(filepath.Join(runDir(t, a, "mig", 0), fileStdout))
	require.NoError(t, err)
	dev := strings.TrimSpace(string(out))
	assert.True(t, strings.HasPrefix(dev, "MIG-"), dev)
	assert.Contains(t, a.Registration().Devices, dev)
}
