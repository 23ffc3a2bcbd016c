package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Now()

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := InitCA(dir, "petite test CA", now, 24*time.Hour)
	require.NoError(t, err)
	return ca, dir
}

func TestInitCARefusesToOverwrite(t *testing.T) {
	ca, dir := newCA(t)
	st, err := os.Stat(filepath.Join(dir, CAKeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the CA key is private")
	_, err = InitCA(dir, "again", now, time.Hour)
	require.ErrorContains(t, err, "exists")
	back, err := LoadCA(dir)
	require.NoError(t, err)
	assert.True(t, back.Cert.Equal(ca.Cert), "the CA on disk is the first one")
}

func TestIssueNamesRoleAndName(t *testing.T) {
	ca, dir := newCA(t)
	for _, role := range Roles {
		t.Run(role, func(t *testing.T) {
			f, err := ca.IssueFiles(dir, Request{Identity: Identity{Role: role, Name: "n-1"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour}, now, false)
			require.NoError(t, err)
			pair, id, err := f.pair()
			require.NoError(t, err)
			assert.Equal(t, Identity{Role: role, Name: "n-1"}, id)
			assert.Equal(t, "spiffe://petite/"+role+"/n-1", id.String())
			assert.Equal(t, []string{role}, pair.Leaf.Subject.OrganizationalUnit)
			assert.Equal(t, "n-1", pair.Leaf.Subject.CommonName)
			_, err = pair.Leaf.Verify(x509.VerifyOptions{Roots: poolOf(ca), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			require.NoError(t, err)
			_, err = pair.Leaf.Verify(x509.VerifyOptions{Roots: poolOf(ca), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if role == RoleClient {
				require.Error(t, err, "a client certificate cannot serve")
			} else {
				require.NoError(t, err)
			}
			st, err := os.Stat(f.Key)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			_, err = ca.IssueFiles(dir, Request{Identity: Identity{Role: role, Name: "n-1"}, Validity: time.Hour}, now, false)
			require.ErrorContains(t, err, "exists")
		})
	}
}

func TestIssueRefusesBadIdentity(t *testing.T) {
	ca, _ := newCA(t)
	for _, tc := range []struct {
		id   Identity
		want string
	}{
		{Identity{Role: "admin", Name: "x"}, `role "admin"`},
		{Identity{Role: RoleAgent, Name: "a/b"}, `name "a/b"`},
		{Identity{Role: RoleAgent, Name: ""}, `name ""`},
		{Identity{Role: RoleAgent, Name: "-x"}, `name "-x"`},
	} {
		_, err := ca.Issue(Request{Identity: tc.id, Validity: time.Hour}, now)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestIdentityOfRefusesForeignCertificates(t *testing.T) {
	ca, _ := newCA(t)
	is, err := ca.Issue(Request{Identity: Identity{Role: RoleAgent, Name: "gpu-1"}, Validity: time.Hour}, now)
	require.NoError(t, err)
	c := *is.Cert
	c.URIs = nil
	_, err = IdentityOf(&c)
	require.ErrorContains(t, err, "names no petite identity")
	u := *is.Cert.URIs[0]
	u.Path = "/agent"
	c.URIs = append(c.URIs, &u)
	_, err = IdentityOf(&c)
	require.ErrorContains(t, err, "want spiffe://petite/ROLE/NAME")
}

func poolOf(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// handshake runs a TLS handshake between a server and a client config
// over a pipe and returns the two ends' errors.
func handshake(t *testing.T, server, client *tls.Config) (serr, cerr error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3: the client's certificate is checked by the server
			// after the client's handshake returns; a read sees it.
			_, err = s.Write([]byte{1})
		}
		a.Close()
		done <- err
	}()
	c := tls.Client(b, client)
	cerr = c.Handshake()
	if cerr == nil {
		_, cerr = c.Read(make([]byte, 1))
	}
	b.Close()
	return <-done, cerr
}

func TestPeerConfigAcceptsOnlyServers(t *testing.T) {
	ca, dir := newCA(t)
	issue := func(role, name string) Files {
		f, err := ca.IssueFiles(dir, Request{Identity: Identity{Role: role, Name: name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour}, time.Now(), false)
		require.NoError(t, err)
		return f
	}
	s1, s2 := issue(RoleServer, "s1"), issue(RoleServer, "s2")
	srv, err := s1.PeerConfig()
	require.NoError(t, err)
	peer, err := s2.PeerConfig()
	require.NoError(t, err)
	peer = peer.Clone()
	peer.ServerName = "127.0.0.1"
	serr, cerr := handshake(t, srv, peer)
	require.NoError(t, serr)
	require.NoError(t, cerr)

	for _, role := range []string{RoleAgent, RoleClient} {
		t.Run(role, func(t *testing.T) {
			f := issue(role, "x-"+role)
			_, err := f.PeerConfig()
			require.ErrorContains(t, err, "raft needs a server certificate")
			// Even dialing with a hand-made configuration, the server refuses it.
			cc, err := f.ClientConfig()
			require.NoError(t, err)
			cc.ServerName = "127.0.0.1"
			serr, _ := handshake(t, srv, cc)
			require.ErrorContains(t, serr, "role "+role+" not allowed")
		})
	}

	t.Run("another CA", func(t *testing.T) {
		other, odir := newCA(t)
		f, err := other.IssueFiles(odir, Request{Identity: Identity{Role: RoleServer, Name: "s9"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour}, time.Now(), false)
		require.NoError(t, err)
		f.CA = s1.CA // trusts our CA, presents the other's certificate
		cc, err := f.PeerConfig()
		require.NoError(t, err)
		cc.ServerName = "127.0.0.1"
		serr, _ := handshake(t, srv, cc)
		require.ErrorContains(t, serr, "certificate")
	})

	t.Run("no certificate", func(t *testing.T) {
		cc, err := Files{CA: s1.CA}.ClientConfig()
		require.NoError(t, err)
		cc.ServerName = "127.0.0.1"
		serr, _ := handshake(t, srv, cc)
		require.ErrorContains(t, serr, "certificate")
	})
}

func TestServerConfigNeedsServerCertificate(t *testing.T) {
	ca, dir := newCA(t)
	f, err := ca.IssueFiles(dir, Request{Identity: Identity{Role: RoleAgent, Name: "gpu-1"}, Validity: time.Hour}, now, false)
	require.NoError(t, err)
	_, err = f.ServerConfig()
	require.ErrorContains(t, err, "a server needs a server certificate")
	_, err = Files{}.ClientConfig()
	require.ErrorContains(t, err, "--tls-ca")
}

// An agent's log API answers servers only.
func TestServersOnlyConfig(t *testing.T) {
	ca, dir := newCA(t)
	issue := func(role, name string) Files {
		f, err := ca.IssueFiles(dir, Request{Identity: Identity{Role: role, Name: name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour}, time.Now(), false)
		require.NoError(t, err)
		return f
	}
	agent := issue(RoleAgent, "gpu-1")
	srv, err := agent.ServersOnlyConfig()
	require.NoError(t, err)
	for _, tc := range []struct {
		role string
		ok   bool
	}{{RoleServer, true}, {RoleAgent, false}, {RoleClient, false}} {
		cc, err := issue(tc.role, "caller-"+tc.role).ClientConfig()
		require.NoError(t, err)
		cc.ServerName = "127.0.0.1"
		serr, _ := handshake(t, srv, cc)
		if tc.ok {
			require.NoError(t, serr, tc.role)
		} else {
			require.ErrorContains(t, serr, "not allowed", tc.role)
		}
	}
	_, err = issue(RoleClient, "c").ServersOnlyConfig()
	require.ErrorContains(t, err, "a client certificate cannot serve")
}
