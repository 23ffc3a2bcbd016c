package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"petite/nvml"
	"petite/scheduler"
	"petite/scheduler/api"
	"petite/scheduler/server"
)

// TestMain lets the test binary be the tasks' supervisor: the agents of
// these tests run `TESTBINARY supervise DIR`, as `petite agent supervise
// DIR` runs in production.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "supervise" {
		if err := Supervise(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// waitFor bounds the waits on conditions: milliseconds idle, seconds on a
// loaded 2-core machine.
const waitFor = 30 * time.Second

// fastLiveness makes heartbeats, deadlines and windows short enough for
// tests.
var fastLiveness = server.Liveness{
	Interval: 100 * time.Millisecond, Timeout: 600 * time.Millisecond, Window: 2 * time.Second,
	Grace: 2 * time.Second,
}

// fleet is one pool of n nodes of 8 H100, the shape of a mock DGX H100.
func fleet(n int) ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{{Name: "lab", Kind: scheduler.PoolOnPrem}}
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

var (
	givenMu sync.Mutex
	given   = map[string]bool{}
)

// freeAddr is a loopback address free now and never handed out before by
// this binary (two servers given one address refuse to bootstrap).
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

// cluster is n real servers on loopback TCP with raft-wal logs in temp
// dirs, serving the API, and the agents started on it.
type cluster struct {
	t    *testing.T
	ds   []*api.Daemon
	urls []string
}

func newCluster(t *testing.T, servers, nodes int, live server.Liveness) *cluster {
	t.Helper()
	pools, ns := fleet(nodes)
	cfgs := make([]server.Config, servers)
	https := make([]string, servers)
	peers := make([]server.Peer, servers)
	for i := range servers {
		cfgs[i] = server.Config{
			ID: fmt.Sprintf("s%d", i), DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true,
			Pools: pools, Nodes: ns, Policy: "best-fit", Coalesce: 2 * time.Millisecond, Fast: true,
			Liveness: live,
		}
		https[i] = freeAddr(t)
		peers[i] = server.Peer{ID: cfgs[i].ID, Addr: cfgs[i].RaftAddr}
	}
	c := &cluster{t: t}
	for i := range servers {
		cfgs[i].Peers = peers
		d, err := api.Start(cfgs[i], https[i], nil)
		require.NoError(t, err)
		c.ds = append(c.ds, d)
		c.urls = append(c.urls, d.URL)
	}
	t.Cleanup(func() {
		for _, d := range c.ds {
			if d != nil {
				d.Close()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, d := range c.ds {
		require.NoError(t, d.Ready(ctx))
	}
	return c
}

// leader is the index of the leading server, once one leads.
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

// kill stops server i.
func (c *cluster) kill(i int) {
	c.ds[i].Close()
	c.ds[i] = nil
}

func (c *cluster) client(i int) *api.Client {
	cl, err := api.NewClient(c.ds[i].URL)
	require.NoError(c.t, err)
	return cl
}

// follower is the index of a server that does not lead (the agents talk
// to it: their calls are forwarded to the leader).
func (c *cluster) follower() int {
	l := c.leader()
	for i, d := range c.ds {
		if d != nil && i != l {
			return i
		}
	}
	return l
}

// cuttable is a transport whose link to the servers can be cut.
type cuttable struct{ cut atomic.Bool }

func (c *cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("link cut")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// testAgent is an agent running in the test, with its logs API.
type testAgent struct {
	*Agent
	dir    string
	link   *cuttable
	cancel context.CancelFunc
	done   chan error
	logs   *httptest.Server
	mock   *nvml.Mock // its GPUs: XID errors are injected here
}

// startAgent starts an agent of a mock DGX H100 named node, whose data is
// in dir (a new temp dir when empty), talking to server i.
func (c *cluster) startAgent(node, dir string, i int) *testAgent {
	c.t.Helper()
	return c.startMockAgent(node, dir, i, "dgxh100", nvml.MockConfig{Node: node})
}

// startMockAgent starts an agent of the named mock, shaped by mc.
func (c *cluster) startMockAgent(node, dir string, i int, mock string, mc nvml.MockConfig) *testAgent {
	t := c.t
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	m, err := nvml.OpenMock(mock, mc)
	require.NoError(t, err)
	inv, err := m.Inventory()
	require.NoError(t, err)
	reg, err := inv.Register(nvml.NodeSpec{Name: node, Pool: "lab", CPUMilli: 64000, MemoryMiB: 512 << 10})
	require.NoError(t, err)
	ta := &testAgent{dir: dir, link: &cuttable{}, done: make(chan error, 1), mock: m}
	var logs API
	ta.logs = httptest.NewServer(logs.Handler())
	t.Cleanup(ta.logs.Close)
	// A client of every server, server i first: the agent moves on when
	// one does not answer.
	var servers []*api.Client
	for k := range c.ds {
		cl, err := api.NewClient(c.urls[(i+k)%len(c.ds)])
		require.NoError(t, err)
		cl.HTTP = &http.Client{Transport: ta.link, Timeout: 5 * time.Second}
		cl.Retry = 500 * time.Millisecond
		servers = append(servers, cl)
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	a, err := New(Config{
		Servers: servers, DataDir: dir, CrashBackoff: 100 * time.Millisecond, Supervisor: []string{exe, "supervise"},
		Registration: server.AgentRegistration{Node: reg.Node, Devices: reg.Devices, Addr: ta.logs.URL},
		Health:       SourceHealth(m, reg.Devices),
	})
	require.NoError(t, err)
	logs.Add(a)
	ta.Agent = a
	ctx, cancel := context.WithCancel(context.Background())
	ta.cancel = cancel
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(ta.stop)
	t.Cleanup(func() { killTasks(dir) })
	return ta
}

// stop ends the agent, leaving its tasks running (as a crash or a restart
// of the agent would).
func (ta *testAgent) stop() {
	if ta.cancel != nil {
		ta.cancel()
		<-ta.done
		ta.cancel = nil
	}
}

// killTasks kills every task process a data dir's runs started: the
// tests' clean-up, so that no sleep outlives them.
func killTasks(dir string) {
	runs, _ := filepath.Glob(filepath.Join(dir, "tasks", "*", "*"))
	for _, run := range runs {
		t := &task{dir: run}
		if pg := t.childGroup(); pg > 0 {
			_ = syscall.Kill(-pg, syscall.SIGKILL)
		}
		if b, err := os.ReadFile(filepath.Join(run, fileSupervisor)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	}
}

// waitJob waits until a job has the status.
func waitJob(t *testing.T, cl *api.Client, id, status string) api.Job {
	t.Helper()
	var j api.Job
	require.Eventually(t, func() bool {
		var err error
		j, err = cl.Job(context.Background(), id, false)
		return err == nil && j.Status == status
	}, waitFor, 10*time.Millisecond, "job %s never %s (last %+v)", id, status, j)
	return j
}

// waitNode waits until a node has the state.
func waitNode(t *testing.T, cl *api.Client, name, st string) {
	t.Helper()
	var n api.Node
	require.Eventually(t, func() bool {
		var err error
		n, err = cl.Node(context.Background(), name)
		return err == nil && n.State == st
	}, waitFor, 10*time.Millisecond, "node %s never %s (last %s)", name, st, n.State)
}

// jobSpec is a job of count tasks of gpus H100 each running a shell line.
func jobSpec(id string, count, gpus int, sh string) []byte {
	return fmt.Appendf(nil, "id: %s\ncount: %d\ntask:\n  gpus: %d\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [sh, -c, %q]\n", id, count, gpus, sh)
}
