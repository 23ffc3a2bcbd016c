package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/server"
)

// waitFor bounds every wait of these tests: an election, a commit or a pass
// takes milliseconds idle but seconds on a loaded 2-core machine, and a
// wait that ends early is a spurious failure.
const waitFor = 30 * time.Second

// testFleet is one pool of n nodes with 8 H100 each, in two zones.
func testFleet(n int) ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{{Name: "lab", Kind: scheduler.PoolOnPrem, Region: "r1"}}
	var nodes []scheduler.Node
	for i := range n {
		gpus := make([]scheduler.GPU, 8)
		for g := range gpus {
			gpus[g] = scheduler.GPU{Model: "H100", MemoryMiB: 81920}
		}
		nodes = append(nodes, scheduler.Node{
			Name: fmt.Sprintf("n%d", i), Pool: "lab", CPUMilli: 64000, MemoryMiB: 512 << 10, GPUs: gpus,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%2)},
		})
	}
	return pools, nodes
}

// cluster is n real servers on loopback TCP, each with its raft log and
// snapshots in its own temp dir, serving the API.
type cluster struct {
	t     *testing.T
	cfgs  []server.Config
	https []string
	ds    []*Daemon
}

// freeAddr returns a loopback address free now and not handed out before
// by this test binary: the kernel may hand a port just closed out again,
// and two servers of one cluster given the same address refuse to
// bootstrap ("found duplicate address").
func freeAddr(t *testing.T) string {
	t.Helper()
	givenMu.Lock()
	defer givenMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		if !given[addr] {
			given[addr] = true
			return addr
		}
	}
}

var (
	givenMu sync.Mutex
	given   = map[string]bool{}
)

func newCluster(t *testing.T, n, nodes int, opts ...func(*server.Config)) *cluster {
	t.Helper()
	pools, ns := testFleet(nodes)
	c := &cluster{t: t, cfgs: make([]server.Config, n), https: make([]string, n), ds: make([]*Daemon, n)}
	peers := make([]server.Peer, n)
	for i := range n {
		c.cfgs[i] = server.Config{
			ID: fmt.Sprintf("s%d", i), DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true,
			Pools: pools, Nodes: ns, Policy: "best-fit", Coalesce: 2 * time.Millisecond, Fast: true,
		}
		for _, o := range opts {
			o(&c.cfgs[i])
		}
		c.https[i] = freeAddr(t)
		peers[i] = server.Peer{ID: c.cfgs[i].ID, Addr: c.cfgs[i].RaftAddr}
	}
	for i := range n {
		c.cfgs[i].Peers = peers
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.ds {
			c.kill(i)
		}
	})
	c.ready()
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	d, err := Start(c.cfgs[i], c.https[i], nil)
	require.NoError(c.t, err)
	c.ds[i] = d
}

func (c *cluster) kill(i int) {
	if c.ds[i] != nil {
		c.ds[i].Close()
		c.ds[i] = nil
	}
}

// ready waits until every running server knows a leader.
func (c *cluster) ready() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, d := range c.ds {
		if d != nil {
			require.NoError(c.t, d.Ready(ctx))
		}
	}
}

// leader returns the index of the leading server.
func (c *cluster) leader() int {
	c.t.Helper()
	at := -1
	require.Eventually(c.t, func() bool {
		for i, d := range c.ds {
			if d != nil && d.Server.IsLeader() {
				at = i
				return true
			}
		}
		return false
	}, waitFor, 5*time.Millisecond, "no leader")
	return at
}

// follower returns the index of a running server that does not lead.
func (c *cluster) follower() int {
	l := c.leader()
	for i, d := range c.ds {
		if d != nil && i != l {
			return i
		}
	}
	c.t.Fatal("no follower")
	return -1
}

func (c *cluster) client(i int) *Client {
	cl, err := NewClient(c.ds[i].URL)
	require.NoError(c.t, err)
	return cl
}

// stateHash is the hash of a server's state machine snapshot.
func (c *cluster) stateHash(i int) [32]byte {
	var b bytes.Buffer
	require.NoError(c.t, c.ds[i].Server.FSM().StateSnapshot(&b))
	return sha256.Sum256(b.Bytes())
}

// converged waits until every running server holds the same state as the
// leader, having applied all the leader has.
func (c *cluster) converged() {
	c.t.Helper()
	l := c.leader()
	require.Eventually(c.t, func() bool {
		want := c.stateHash(l)
		for i, d := range c.ds {
			if d != nil && c.stateHash(i) != want {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "servers did not converge")
}

func spec(id string, count, gpus int) []byte {
	return fmt.Appendf(nil, "id: %s\ncount: %d\ntask:\n  gpus: %d\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [sleep, \"60\"]\n", id, count, gpus)
}

// waitStatus waits until a job has the status, read through server i.
func waitStatus(t *testing.T, cl *Client, id, status string) Job {
	t.Helper()
	var j Job
	require.Eventually(t, func() bool {
		var err error
		j, err = cl.Job(context.Background(), id, false)
		return err == nil && j.Status == status
	}, waitFor, 5*time.Millisecond, "job %s never %s (last %+v)", id, status, j)
	return j
}
