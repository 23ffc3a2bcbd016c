package server

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/pki"
	"petite/scheduler/state"
)

// testPKI is a CA in a temp dir that issues certificates on demand.
type testPKI struct {
	t   *testing.T
	ca  *pki.CA
	dir string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.InitCA(dir, "test CA", time.Now(), time.Hour)
	require.NoError(t, err)
	return &testPKI{t: t, ca: ca, dir: dir}
}

func (p *testPKI) files(role, name string) pki.Files {
	p.t.Helper()
	f, err := p.ca.IssueFiles(p.dir, pki.Request{Identity: pki.Identity{Role: role, Name: name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour}, time.Now(), true)
	require.NoError(p.t, err)
	return f
}

// peerConfig is a raft TLS configuration for any certificate, as an
// attacker holding a client's or an agent's certificate would build it.
func (p *testPKI) peerConfig(role, name string) *tls.Config {
	p.t.Helper()
	cfg, err := p.files(role, name).ClientConfig()
	require.NoError(p.t, err)
	return cfg
}

func withRaftTLS(p *testPKI) func(*Config) {
	return func(c *Config) {
		cfg, err := p.files(pki.RoleServer, c.ID).PeerConfig()
		require.NoError(p.t, err)
		c.RaftTLS = cfg
	}
}

func TestClusterOverRaftTLS(t *testing.T) {
	p := newTestPKI(t)
	servers := startCluster(t, 3, withRaftTLS(p))
	submitOnLeader(t, servers, scheduler.Job{ID: "tls-job", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}})
	for _, s := range servers {
		require.Eventually(t, func() bool {
			var ok bool
			s.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) { _, ok = m.Job("tls-job") })
			return ok
		}, waitFor, 10*time.Millisecond, "server %s never saw the job", s.ID())
	}
}

// dialRaft returns a raft transport over TLS with cfg, as another server
// of the cluster would use.
func dialRaft(t *testing.T, cfg *tls.Config) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tr := raft.NewNetworkTransport(&tlsStream{Listener: tls.NewListener(ln, cfg), cfg: cfg}, 1, 2*time.Second, nil)
	t.Cleanup(func() { tr.Close() })
	return tr
}

// Raft traffic is refused from every certificate but a server's: a client
// or an agent of the same CA can neither append nor call an election.
func TestRaftRefusesNonServerCertificates(t *testing.T) {
	p := newTestPKI(t)
	servers := startCluster(t, 1, withRaftTLS(p))
	leader := waitLeader(t, servers)
	target := raft.ServerAddress(leader.RaftAddr())
	term := func() uint64 {
		n, err := strconv.ParseUint(leader.raft.Stats()["term"], 10, 64)
		require.NoError(t, err)
		return n
	}
	before := term()
	header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")}

	for _, role := range []string{pki.RoleClient, pki.RoleAgent} {
		t.Run(role, func(t *testing.T) {
			tr := dialRaft(t, p.peerConfig(role, "intruder-"+role))
			var vote raft.RequestVoteResponse
			err := tr.RequestVote("s0", target, &raft.RequestVoteRequest{RPCHeader: header, Term: before + 100, LastLogIndex: 1 << 40, LastLogTerm: before + 100}, &vote)
			require.Error(t, err, "a %s certificate called an election", role)
			var app raft.AppendEntriesResponse
			err = tr.AppendEntries("s0", target, &raft.AppendEntriesRequest{RPCHeader: header, Term: before + 100, Entries: []*raft.Log{{Index: 1 << 40, Term: before + 100, Type: raft.LogCommand, Data: []byte("x")}}}, &app)
			require.Error(t, err, "a %s certificate appended", role)
			assert.Equal(t, before, term(), "the leader's term moved")
			assert.True(t, leader.IsLeader())
		})
	}

	t.Run("another CA's server", func(t *testing.T) {
		f := newTestPKI(t).files(pki.RoleServer, "s0")
		f.CA = p.files(pki.RoleServer, "s8").CA // trusts the cluster's CA
		cfg, err := f.PeerConfig()
		require.NoError(t, err)
		tr := dialRaft(t, cfg)
		var app raft.AppendEntriesResponse
		require.Error(t, tr.AppendEntries("s0", target, &raft.AppendEntriesRequest{RPCHeader: header, Term: before + 100}, &app))
		assert.Equal(t, before, term())
	})

	// The same call from a server certificate goes through (a stale term,
	// refused by raft itself, not by the transport): the refusals above
	// are the certificates', not a broken dial.
	t.Run("server", func(t *testing.T) {
		cfg, err := p.files(pki.RoleServer, "s9").PeerConfig()
		require.NoError(t, err)
		tr := dialRaft(t, cfg)
		var app raft.AppendEntriesResponse
		require.NoError(t, tr.AppendEntries("s0", target, &raft.AppendEntriesRequest{RPCHeader: header, Term: 0}, &app))
		assert.False(t, app.Success)
		assert.Equal(t, before, term())
	})
}

func TestRaftTLSNeedsPeerConfig(t *testing.T) {
	_, err := newTransport(Config{RaftAddr: "127.0.0.1:0", RaftTLS: &tls.Config{}}, nil)
	require.ErrorContains(t, err, "pki.Files.PeerConfig")
	p := newTestPKI(t)
	cfg, err := p.files(pki.RoleServer, "s0").PeerConfig()
	require.NoError(t, err)
	_, err = newTransport(Config{RaftAddr: "0.0.0.0:0", RaftTLS: cfg}, nil)
	require.ErrorContains(t, err, "not one peers can dial")
}
