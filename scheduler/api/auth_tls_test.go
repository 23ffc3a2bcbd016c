package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/pki"
	"petite/scheduler/server"
)

// testCA issues certificates for the tests in a temp dir.
type testCA struct {
	t   *testing.T
	ca  *pki.CA
	dir string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.InitCA(dir, "test CA", time.Now(), time.Hour)
	require.NoError(t, err)
	return &testCA{t: t, ca: ca, dir: dir}
}

func (c *testCA) files(role, name string) pki.Files {
	c.t.Helper()
	f, err := c.ca.IssueFiles(c.dir, pki.Request{Identity: pki.Identity{Role: role, Name: name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour}, time.Now(), true)
	require.NoError(c.t, err)
	return f
}

// client returns an HTTP client presenting role/name's certificate (none
// when role is empty) and trusting the CA.
func (c *testCA) client(role, name string) *http.Client {
	c.t.Helper()
	f := pki.Files{CA: c.files(pki.RoleServer, "ca-holder").CA}
	if role != "" {
		f = c.files(role, name)
	}
	cfg, err := f.ClientConfig()
	require.NoError(c.t, err)
	cl := &Client{Base: "http://x"}
	cl.UseTLS(cfg)
	return cl.HTTP
}

// secureCluster is n servers with mutual TLS on raft and the API, the
// tokens of testTokens, and an audit log each.
func secureCluster(t *testing.T, n int) (*cluster, *testCA, map[string]string, []*syncBuffer) {
	t.Helper()
	ca := newTestCA(t)
	ts, toks := testTokens(t)
	pools, ns := testFleet(2)
	c := &cluster{t: t, cfgs: make([]server.Config, n), https: make([]string, n), ds: make([]*Daemon, n)}
	audits := make([]*syncBuffer, n)
	peers := make([]server.Peer, n)
	for i := range n {
		id := fmt.Sprintf("s%d", i)
		peer, err := ca.files(pki.RoleServer, id).PeerConfig()
		require.NoError(t, err)
		c.cfgs[i] = server.Config{
			ID: id, DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true, RaftTLS: peer,
			Pools: pools, Nodes: ns, Policy: "best-fit", Coalesce: 2 * time.Millisecond, Fast: true,
		}
		c.https[i] = freeAddr(t)
		peers[i] = server.Peer{ID: id, Addr: c.cfgs[i].RaftAddr}
	}
	for i := range n {
		c.cfgs[i].Peers = peers
		sec, err := LoadSecurity(ca.files(pki.RoleServer, c.cfgs[i].ID), "")
		require.NoError(t, err)
		audits[i] = &syncBuffer{}
		sec.Tokens, sec.Audit = ts, NewAuditLogger(audits[i])
		d, err := Start(c.cfgs[i], c.https[i], nil, WithSecurity(sec))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(d.URL, "https://"), d.URL)
		c.ds[i] = d
	}
	t.Cleanup(func() {
		for i := range c.ds {
			c.kill(i)
		}
	})
	c.ready()
	return c, ca, toks, audits
}

func tlsCall(t *testing.T, hc *http.Client, url, token, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// A cluster with mutual TLS everywhere and tokens: a follower forwards a
// caller it authenticated, and the leader believes the follower (a server
// certificate) but not a client that claims to be forwarded.
func TestMutualTLSCluster(t *testing.T) {
	c, ca, toks, audits := secureCluster(t, 3)
	l, f := c.leader(), c.follower()
	leader, follower := c.ds[l].URL, c.ds[f].URL
	user := ca.client(pki.RoleClient, "alice")

	st, body := tlsCall(t, ca.client("", ""), follower, "", "GET", "/v1/health", "")
	require.Equal(t, http.StatusOK, st, "health is open, without a certificate: %s", body)
	st, body = tlsCall(t, ca.client("", ""), follower, toks["admin"], "GET", "/v1/jobs", "")
	require.Equal(t, http.StatusUnauthorized, st, "a token without a certificate: %s", body)
	assert.Contains(t, body, "client certificate")
	st, body = tlsCall(t, user, follower, "", "GET", "/v1/jobs", "")
	require.Equal(t, http.StatusUnauthorized, st, "a client certificate without a token, when tokens are configured: %s", body)

	// Submitted through a follower: the leader records who, forwarded by whom.
	st, body = tlsCall(t, user, follower, toks["research"], "POST", "/v1/jobs", "id: fwd\ntenant: research\ntask: {gpus: 1}\n")
	require.Equal(t, http.StatusCreated, st, body)
	st, body = tlsCall(t, user, follower, toks["other"], "DELETE", "/v1/jobs/fwd", "")
	require.Equal(t, http.StatusForbidden, st, body)
	require.Eventually(t, func() bool { return strings.Contains(audits[l].String(), `"forwarded_by":"s`+fmt.Sprint(f)+`"`) }, waitFor, 10*time.Millisecond, audits[l].String())
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(audits[l].String(), "\n", 2)[0]), &line))
	assert.Equal(t, "research", line["who"])
	assert.Equal(t, "spiffe://petite/client/alice", line["cert"])
	assert.Equal(t, 201.0, line["status"])

	// A client cannot pose as a forwarding server.
	forged := `{"name":"mallory","role":"admin","via":"token"}`
	st, body = tlsCall(t, user, leader, toks["reader"], "DELETE", "/v1/operator/raft/peers/s9", "", ForwardedHeader, "s1", callerHeader, forged)
	require.Equal(t, http.StatusForbidden, st, body)
	assert.Contains(t, body, "reader reader")

	// An agent's certificate acts for its node only, through any server.
	agent := ca.client(pki.RoleAgent, "n0")
	st, body = tlsCall(t, agent, follower, "", "POST", "/v1/agents/n1/heartbeat", "{}")
	require.Equal(t, http.StatusForbidden, st, body)
	st, body = tlsCall(t, agent, follower, "", "POST", "/v1/agents/n0/heartbeat", "{}")
	assert.NotContains(t, []int{401, 403}, st, body)
	st, body = tlsCall(t, agent, follower, "", "GET", "/v1/jobs", "")
	require.Equal(t, http.StatusForbidden, st, body)

	// A certificate of another CA does not get a connection.
	other := newTestCA(t)
	f2 := other.files(pki.RoleClient, "eve")
	f2.CA = ca.files(pki.RoleServer, "ca-holder").CA
	cfg, err := f2.ClientConfig()
	require.NoError(t, err)
	cl := &Client{Base: leader, Token: toks["admin"]}
	cl.UseTLS(cfg)
	_, err = cl.Jobs(context.Background(), true)
	require.Error(t, err)
	var ae *Error
	assert.False(t, errors.As(err, &ae) && ae.Status == http.StatusOK)

	// The Client type, with a certificate and a token, works end to end.
	good, err := ca.files(pki.RoleClient, "bob").ClientConfig()
	require.NoError(t, err)
	cl = &Client{Base: strings.Replace(follower, "https://", "http://", 1), Token: toks["admin"]}
	cl.UseTLS(good)
	jobs, err := cl.Jobs(context.Background(), false)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
}

// With TLS and no token file, the CA's client certificates are admins and
// its agents' are agents; nothing gets in without a certificate.
func TestTLSWithoutTokens(t *testing.T) {
	c := newCluster(t, 1, 2)
	ca := newTestCA(t)
	sec, err := LoadSecurity(ca.files(pki.RoleServer, "s0"), "")
	require.NoError(t, err)
	hd := NewHandler(c.ds[0].Server, nil, WithSecurity(sec))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: hd, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(tls.NewListener(ln, sec.TLS))
	t.Cleanup(func() { srv.Close() })
	url := "https://" + ln.Addr().String()

	st, body := tlsCall(t, ca.client(pki.RoleClient, "ops"), url, "", "POST", "/v1/nodes/n0/state", `{"state":"draining"}`)
	require.Equal(t, http.StatusOK, st, body)
	st, body = tlsCall(t, ca.client(pki.RoleAgent, "n1"), url, "", "POST", "/v1/nodes/n0/state", `{"state":"ready"}`)
	require.Equal(t, http.StatusForbidden, st, body)
	st, body = tlsCall(t, ca.client("", ""), url, "", "GET", "/v1/nodes", "")
	require.Equal(t, http.StatusUnauthorized, st, body)
	st, body = tlsCall(t, ca.client(pki.RoleClient, "ops"), url, "ptk_x", "GET", "/v1/nodes", "")
	require.Equal(t, http.StatusUnauthorized, st, body)
	assert.Contains(t, body, "takes no tokens")
}

// In a TLS cluster an agent's log API answers servers only: `petite job
// logs` goes through a server, which dials the agent with its own
// certificate; a client's certificate cannot read the agent directly.
func TestAgentLogsOverTLS(t *testing.T) {
	c, ca, toks, _ := secureCluster(t, 1)
	url := c.ds[0].URL
	cfg, err := ca.files(pki.RoleAgent, "logs").ServersOnlyConfig()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	logs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "log of %s", r.URL.Path)
	})}
	go logs.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { logs.Close() })
	agentURL := "https://" + ln.Addr().String()

	admin, err := ca.files(pki.RoleClient, "alice").ClientConfig()
	require.NoError(t, err)
	cl := &Client{Base: url, Token: toks["admin"]}
	cl.UseTLS(admin)
	_, nodes := testFleet(2)
	for _, n := range nodes {
		devs := make([]string, len(n.GPUs))
		for i := range devs {
			devs[i] = fmt.Sprintf("GPU-%s-%d", n.Name, i)
		}
		_, err := cl.RegisterAgent(context.Background(), AgentRegistration{Node: n, Devices: devs, Addr: agentURL})
		require.NoError(t, err)
	}
	_, err = cl.Submit(context.Background(), []byte("id: logged\ntask: {gpus: 1, command: [true]}\n"))
	require.NoError(t, err)
	waitStatus(t, cl, "logged", StatusRunning)

	var out strings.Builder
	require.NoError(t, cl.Logs(context.Background(), "logged", LogsQuery{}, &out))
	assert.Contains(t, out.String(), "log of /v1/agent/n")

	direct := &Client{Base: agentURL}
	direct.UseTLS(admin)
	err = direct.once(context.Background(), http.MethodGet, "/v1/agent/n0/logs", nil, nil, io.Discard)
	require.Error(t, err, "a client's certificate read an agent's logs")
}
