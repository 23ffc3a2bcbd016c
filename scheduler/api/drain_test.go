package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

func serviceSpec(id string, replicas int) []byte {
	return fmt.Appendf(nil, "id: %s\nkind: inference\ncount: %d\ntask:\n  gpus: 1\n  gpu_milli: 500\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [serve]\n", id, replicas)
}

// nodesOf lists the nodes a job's tasks run on.
func nodesOf(j Job) map[string]bool {
	out := map[string]bool{}
	for _, tp := range j.Tasks {
		out[tp.Node] = true
	}
	return out
}

// Draining a node moves its work off: the training gang is evicted and
// placed again elsewhere in one plan (one requeue), the service's replicas
// there are each placed elsewhere as they leave, and the service never
// runs fewer replicas than it asks for while capacity exists elsewhere.
func TestDrainMovesWorkOff(t *testing.T) {
	c := newCluster(t, 3, 6, func(cfg *server.Config) { cfg.Drain.Interval = 20 * time.Millisecond })
	ctx := context.Background()
	cl := c.client(c.leader())
	_, err := cl.Submit(ctx, spec("gang", 1, 8))
	require.NoError(t, err)
	_, err = cl.Submit(ctx, serviceSpec("web", 3))
	require.NoError(t, err)
	gang := waitStatus(t, cl, "gang", StatusRunning)
	web := waitStatus(t, cl, "web", StatusRunning)
	require.Eventually(t, func() bool {
		j, err := cl.Job(ctx, "web", false)
		web = j
		return err == nil && len(j.Tasks) == 3
	}, waitFor, 5*time.Millisecond)

	// Watch the service on the leader's state machine while the drains
	// run: the fewest replicas it ever runs.
	l := c.ds[c.leader()].Server
	var fewest atomic.Int64
	fewest.Store(3)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
				if info, ok := m.Job("web"); ok && int64(len(info.Tasks)) < fewest.Load() {
					fewest.Store(int64(len(info.Tasks)))
				}
			})
		}
	}()

	drain := map[string]bool{}
	for n := range nodesOf(gang) {
		drain[n] = true
	}
	for n := range nodesOf(web) {
		drain[n] = true
	}
	require.LessOrEqual(t, len(drain), 4, "room elsewhere: %v", drain)
	for n := range drain {
		_, err := cl.SetNodeState(ctx, n, "draining")
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		for n := range drain {
			node, err := cl.Node(ctx, n)
			if err != nil || node.GPUMilliFree != node.GPUMilliCap {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "the drained nodes never emptied")
	close(stop)
	<-watched

	g, err := cl.Job(ctx, "gang", false)
	require.NoError(t, err)
	assert.Equal(t, StatusRunning, g.Status)
	assert.Equal(t, 1, g.Requeues, "evicted once, placed again at once")
	w, err := cl.Job(ctx, "web", false)
	require.NoError(t, err)
	assert.Len(t, w.Tasks, 3)
	for n := range drain {
		assert.False(t, nodesOf(g)[n] || nodesOf(w)[n], "work left on %s", n)
	}
	assert.Equal(t, int64(3), fewest.Load(), "the service ran fewer replicas than it asks for")
	c.converged()
}

// With no room elsewhere, a draining node keeps its work until the drain
// deadline, then the work is evicted (the gang goes back to the queue).
func TestDrainDeadlineEvicts(t *testing.T) {
	c := newCluster(t, 1, 1, func(cfg *server.Config) {
		cfg.Drain = server.Drain{Interval: 20 * time.Millisecond, Deadline: 2 * time.Second}
	})
	ctx := context.Background()
	cl := c.client(0)
	_, err := cl.Submit(ctx, spec("stay", 1, 8))
	require.NoError(t, err)
	waitStatus(t, cl, "stay", StatusRunning)
	drained := time.Now()
	_, err = cl.SetNodeState(ctx, "n0", "draining")
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // within the deadline: nowhere to go, it stays
	j, err := cl.Job(ctx, "stay", false)
	require.NoError(t, err)
	if time.Since(drained) < time.Second { // a machine stalled past it proves nothing
		assert.Equal(t, StatusRunning, j.Status)
	}
	j = waitStatus(t, cl, "stay", StatusQueued)
	assert.Equal(t, 1, j.Requeues)
}

// A pool with a retirement date drains its nodes from the lead time
// before it and retires them on it; their work moves to other pools.
func TestRetireOnDate(t *testing.T) {
	pools, nodes := testFleet(2)
	now := time.Now().Unix()
	pools = append(pools, scheduler.Pool{Name: "old", Kind: scheduler.PoolOnPrem, Region: "r1", RetireAt: now + 4})
	old := nodes[0]
	old.Name, old.Pool = "old0", "old"
	nodes = append(nodes, old)
	c := newCluster(t, 1, 0, func(cfg *server.Config) {
		cfg.Pools, cfg.Nodes = pools, nodes
		cfg.Drain = server.Drain{Interval: 20 * time.Millisecond, RetireLead: 2 * time.Second}
	})
	ctx := context.Background()
	cl := c.client(0)
	asked := time.Now().Unix()
	n, err := cl.Node(ctx, "old0")
	require.NoError(t, err)
	if asked < now+4-2-1 { // clearly before the lead time (whole seconds)
		assert.Equal(t, "ready", n.State, "before the lead time")
	}
	require.Eventually(t, func() bool {
		n, err := cl.Node(ctx, "old0")
		return err == nil && n.State == "draining"
	}, waitFor, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		n, err := cl.Node(ctx, "old0")
		return err == nil && n.State == "retired"
	}, waitFor, 20*time.Millisecond)
	assert.GreaterOrEqual(t, time.Now().Unix(), now+4, "retired on the date, not before")
}
