package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
func startCluster(t *testing.T, n int, opts ...func(*Config)) []*Server {
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
		for _, o := range opts {
			o(&cfgs[i])
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
	// An election and the leader taking office take well under a second
	// idle; the deadline allows for a loaded 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, s := range servers {
		require.NoError(t, s.Ready(ctx))
	}
	return servers
}

// submitOnLeader submits through whichever server leads, again on the new
// leader when leadership moved during the call, as the API's forwarding
// and client retries do.
func submitOnLeader(t *testing.T, servers []*Server, job scheduler.Job) {
	t.Helper()
	for deadline := time.Now().Add(waitFor); ; {
		_, err := waitLeader(t, servers).Submit(context.Background(), job, JobRecord{Command: []string{"true"}})
		if !errors.Is(err, ErrNotLeader) || time.Now().After(deadline) {
			require.NoError(t, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClusterPlacesSubmittedJob(t *testing.T) {
	servers := startCluster(t, 3)
	job := scheduler.Job{ID: "j1", Kind: scheduler.Training, Count: 2, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}
	submitOnLeader(t, servers, job)
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
	}, waitFor, 10*time.Millisecond)
}

// Passes run when something changed, not on a tick, and a burst of submits
// within the coalescing delay is placed by one pass, in one plan. The delay
// is 1 s so that the ten concurrent commits fall within it on a loaded
// machine too.
func TestPassesFollowChanges(t *testing.T) {
	pools, nodes := testFleet(4)
	s, err := New(Config{ID: "s", DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true,
		Pools: pools, Nodes: nodes, Policy: "best-fit", Coalesce: time.Second, Fast: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, s.Ready(ctx))
	require.Eventually(t, func() bool { return s.Stats().Passes > 0 }, waitFor, 5*time.Millisecond, "a pass on taking office")
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
	}, waitFor, 5*time.Millisecond)
	st := s.Stats()
	assert.Equal(t, idle.Plans+1, st.Plans, "ten submits, one plan: %+v", st)
	assert.Zero(t, st.Refused)
}

// A plan made on a frozen state that the log has since moved past is
// refused by every server alike when it no longer fits, and goes through
// when it still does: the state machine re-checks each plan as it commits.
func TestStalePlanThroughRaft(t *testing.T) {
	servers := startCluster(t, 3, func(c *Config) { c.NoScheduling = true; c.HTTPAddr = "" })
	leader := waitLeader(t, servers)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		_, err := leader.Submit(ctx, scheduler.Job{ID: id, Kind: scheduler.Training, Count: 1, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, JobRecord{})
		require.NoError(t, err)
	}
	// One pass on a frozen state, its placements committed one by one
	// while the state moves on.
	var frozen *state.Frozen
	leader.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) { frozen = m.Freeze() })
	p1, err := Schedule(frozen, "first-fit", 1, rand.New(rand.NewPCG(1, 2)))
	require.NoError(t, err)
	require.Len(t, p1.Place, 3)
	first := state.PlanCommand(scheduler.Plan{Place: p1.Place[:1]}, 1) // a on n0
	_, err = leader.Apply(ctx, first)
	require.NoError(t, err)
	// Stale: b on n1 still fits; a plan giving n0 to c does not.
	stillFits := state.PlanCommand(scheduler.Plan{Place: p1.Place[1:2]}, 2)
	_, err = leader.Apply(ctx, stillFits)
	require.NoError(t, err)
	clash := p1.Place[2]
	clash.Tasks = append([]scheduler.TaskPlacement(nil), clash.Tasks...)
	clash.Tasks[0].Node = first.Place[0].Tasks[0].Node
	_, err = leader.Apply(ctx, state.PlanCommand(scheduler.Plan{Place: []scheduler.JobPlacement{clash}}, 3))
	require.ErrorContains(t, err, "oversubscribed")
	hashes := func() []string {
		var out []string
		for _, s := range servers {
			var b bytes.Buffer
			require.NoError(t, s.FSM().StateSnapshot(&b))
			out = append(out, b.String())
		}
		return out
	}
	require.Eventually(t, func() bool { h := hashes(); return h[0] == h[1] && h[1] == h[2] }, waitFor, 5*time.Millisecond)
	leader.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		c, _ := m.Job("c")
		assert.Equal(t, state.Pending, c.Status)
		assert.Len(t, m.Running(), 2)
	})
}

// Ready means the leader has taken office, its fleet registered, on every
// server, with an API to forward to or without: the first read after Ready
// sees every node.
func TestReadyMeansFleetRegistered(t *testing.T) {
	for _, api := range []bool{true, false} {
		for range 5 {
			servers := startCluster(t, 3, func(c *Config) {
				c.NoScheduling = true
				if !api {
					c.HTTPAddr = ""
				}
			})
			for _, s := range servers {
				var nodes int
				s.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) { nodes = m.Cluster().NumNodes() })
				require.Equal(t, 4, nodes, "api %v, server %s", api, s.ID())
				require.NoError(t, s.Close())
			}
		}
	}
}
