package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// testFleet is a small fleet: one pool, n nodes of 8 H100.
func testFleet(n int) ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{{Name: "lab", Kind: scheduler.PoolOnPrem, Zone: "z1"}}
	var nodes []scheduler.Node
	for i := range n {
		gpus := make([]scheduler.GPU, 8)
		for g := range gpus {
			gpus[g] = scheduler.GPU{Model: "H100", MemoryMiB: 81920}
		}
		nodes = append(nodes, scheduler.Node{Name: fmt.Sprintf("n%d", i), Pool: "lab", CPUMilli: 64000, MemoryMiB: 512 << 10, GPUs: gpus})
	}
	return pools, nodes
}

// startCluster starts n servers bootstrapped together on loopback TCP,
// each with its data in its own temp dir, and waits for a leader.
func startCluster(t *testing.T, n int) []*Server {
	t.Helper()
	pools, nodes := testFleet(4)
	// Reserve the raft addresses first: every server bootstraps with all.
	cfgs := make([]Config, n)
	peers := make([]Peer, n)
	for i := range n {
		addr := freeAddr(t)
		cfgs[i] = Config{
			ID: fmt.Sprintf("s%d", i), DataDir: t.TempDir(), RaftAddr: addr, Bootstrap: true,
			HTTPAddr: fmt.Sprintf("http://s%d.invalid", i), Pools: pools, Nodes: nodes,
			Policy: "best-fit", Coalesce: time.Millisecond, Fast: true,
		}
		peers[i] = Peer{ID: cfgs[i].ID, Addr: addr}
	}
	servers := make([]*Server, n)
	for i := range n {
		cfgs[i].Peers = peers
		s, err := New(cfgs[i])
		require.NoError(t, err)
		servers[i] = s
		t.Cleanup(func() { s.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		require.NoError(t, s.Ready(ctx))
	}
	return servers
}

func TestClusterPlacesSubmittedJob(t *testing.T) {
	servers := startCluster(t, 3)
	leader := waitLeader(t, servers)
	ctx := context.Background()
	job := scheduler.Job{ID: "j1", Kind: scheduler.Training, Count: 2, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}
	_, err := leader.Submit(ctx, job, JobRecord{Command: []string{"true"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, s := range servers {
			var st state.JobStatus
			s.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
				info, _ := m.Job("j1")
				st = info.Status
			})
			if st != state.Running {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
}

// Passes run when something changed, not on a tick, and a burst of submits
// within the coalescing delay is placed by one pass, in one plan.
func TestPassesFollowChanges(t *testing.T) {
	pools, nodes := testFleet(4)
	s, err := New(Config{ID: "s", DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true,
		Pools: pools, Nodes: nodes, Policy: "best-fit", Coalesce: 200 * time.Millisecond, Fast: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Ready(ctx))
	require.Eventually(t, func() bool { return s.Stats().Passes > 0 }, 5*time.Second, 5*time.Millisecond, "a pass on taking office")
	time.Sleep(100 * time.Millisecond)
	idle := s.Stats()
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, idle, s.Stats(), "no pass without a change")

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			_, err := s.Submit(ctx, scheduler.Job{ID: fmt.Sprintf("b%d", i), Kind: scheduler.Training, Count: 1,
				Task: scheduler.Task{GPUs: 2, GPUMilli: 1000}}, JobRecord{})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		running := 0
		s.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) { running = len(m.Running()) })
		return running == 10
	}, 5*time.Second, 5*time.Millisecond)
	st := s.Stats()
	assert.Equal(t, idle.Plans+1, st.Plans, "ten submits, one plan: %+v", st)
	assert.Zero(t, st.Refused)
}
