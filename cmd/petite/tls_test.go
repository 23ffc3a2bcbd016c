package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
	"petite/scheduler/pki"
)

func TestTLSInitIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	code, out, errOut := petite(t, nil, "tls", "init", "--dir", dir)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, filepath.Join(dir, "ca.pem"))

	code, _, errOut = petite(t, nil, "tls", "init", "--dir", dir)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "exists")

	code, out, errOut = petite(t, nil, "tls", "issue", "--dir", dir, "--role", "agent", "--name", "gpu-7", "--ip", "10.0.0.7")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "spiffe://petite/agent/gpu-7")
	f := pki.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "agent-gpu-7.pem"), Key: filepath.Join(dir, "agent-gpu-7-key.pem")}
	cfg, err := f.ClientConfig()
	require.NoError(t, err)
	leaf := cfg.Certificates[0].Leaf
	id, err := pki.IdentityOf(leaf)
	require.NoError(t, err)
	assert.Equal(t, pki.Identity{Role: "agent", Name: "gpu-7"}, id)
	assert.Equal(t, "10.0.0.7", leaf.IPAddresses[0].String())

	code, out, errOut = petite(t, nil, "tls", "issue", "--dir", dir, "--role", "server", "--name", "s1")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "answers for localhost, 127.0.0.1, ::1", "a server without --dns/--ip answers on loopback")

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--role", "agent"}, exitUsage, "issue needs --role"},
		{[]string{"--role", "admin", "--name", "x"}, exitUsage, `role "admin"`},
		{[]string{"--role", "agent", "--name", "a/b"}, exitUsage, `name "a/b"`},
		{[]string{"--role", "agent", "--name", "x", "--ip", "nope"}, exitUsage, `--ip: "nope"`},
		{[]string{"--role", "agent", "--name", "gpu-7"}, exitError, "exists (--force replaces it)"},
		{[]string{"--role", "agent", "--name", "gpu-8", "--days", "0"}, exitUsage, "--days must be positive"},
	} {
		code, _, errOut := petite(t, nil, append([]string{"tls", "issue", "--dir", dir}, tc.args...)...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, errOut)
		assert.Contains(t, errOut, tc.want, tc.args)
	}
	code, _, errOut = petite(t, nil, "tls", "issue", "--dir", filepath.Join(t.TempDir(), "none"), "--role", "client", "--name", "bob")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "run 'petite tls init' first")

	code, _, errOut = petite(t, nil, "tls", "issue", "--dir", dir, "--role", "agent", "--name", "gpu-7", "--force")
	require.Equal(t, exitOK, code, errOut)
	st, err := os.Stat(f.Key)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

// A server with mutual TLS and tokens: the CLI reaches it with the TLS
// flags and a token (flags or PETITE_ variables), is refused without the
// token, and the audit log records what it changed.
func TestServerWithTLSAndTokens(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	for _, args := range [][]string{
		{"tls", "init", "--dir", ca},
		{"tls", "issue", "--dir", ca, "--role", "server", "--name", "s1"},
		{"tls", "issue", "--dir", ca, "--role", "client", "--name", "alice"},
	} {
		code, _, errOut := petite(t, nil, args...)
		require.Equal(t, exitOK, code, errOut)
	}
	admin, sum, err := api.NewToken()
	require.NoError(t, err)
	tokens := filepath.Join(dir, "tokens.yaml")
	require.NoError(t, os.WriteFile(tokens, []byte("tokens:\n  - name: ops\n    role: admin\n    sha256: "+sum+"\n"), 0o600))
	audit := filepath.Join(dir, "audit.log")
	tlsFlags := func(role, name string) []string {
		return []string{"--tls-ca", filepath.Join(ca, "ca.pem"), "--tls-cert", filepath.Join(ca, role+"-"+name+".pem"), "--tls-key", filepath.Join(ca, role+"-"+name+"-key.pem")}
	}
	addr := devServer(t, append([]string{"server", "--id", "s1", "--data-dir", filepath.Join(dir, "data"), "--bootstrap",
		"--raft-addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--tokens", tokens, "--audit-log", audit}, tlsFlags("server", "s1")...)...)
	require.True(t, strings.HasPrefix(addr, "https://"), addr)

	client := append([]string{"--address", addr}, tlsFlags("client", "alice")...)
	code, _, errOut := petite(t, nil, append([]string{"node", "status"}, client...)...)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "a bearer token is required")

	code, out, errOut := petite(t, nil, append([]string{"node", "status", "--json", "--token", admin}, client...)...)
	require.Equal(t, exitOK, code, errOut)
	var nodes []api.Node
	require.NoError(t, json.Unmarshal([]byte(out), &nodes))
	require.NotEmpty(t, nodes)
	code, out, errOut = petite(t, nil, append([]string{"node", "drain", nodes[0].Name, "--token", admin}, client...)...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "draining")

	t.Setenv("PETITE_TOKEN", admin)
	t.Setenv("PETITE_TLS_CA", filepath.Join(ca, "ca.pem"))
	t.Setenv("PETITE_TLS_CERT", filepath.Join(ca, "client-alice.pem"))
	t.Setenv("PETITE_TLS_KEY", filepath.Join(ca, "client-alice-key.pem"))
	code, _, errOut = petite(t, nil, "pool", "list", "--address", addr)
	require.Equal(t, exitOK, code, "PETITE_ variables: %s", errOut)

	b, err := os.ReadFile(audit)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"who":"ops"`)
	assert.Contains(t, string(b), `"route":"POST /v1/nodes/{name}/state"`)
	assert.Contains(t, string(b), `"cert":"spiffe://petite/client/alice"`)
	assert.NotContains(t, string(b), admin)

	// SIGHUP reloads the token file: ops revoked, a reader added, and no
	// restart.
	reader, rsum, err := api.NewToken()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(tokens, []byte("tokens:\n  - name: rd\n    role: reader\n    sha256: "+rsum+"\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		code, _, _ := petite(t, nil, "pool", "list", "--address", addr, "--token", reader)
		return code == exitOK
	}, 10*time.Second, 20*time.Millisecond, "the reader's token works after SIGHUP")
	code, _, errOut = petite(t, nil, "pool", "list", "--address", addr, "--token", admin)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "unknown token", "ops's token is revoked")
	// A broken file is refused: the tokens in use stay.
	require.NoError(t, os.WriteFile(tokens, []byte("tokens:\n  - name: rd\n    role: boss\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	time.Sleep(200 * time.Millisecond)
	code, _, errOut = petite(t, nil, "pool", "list", "--address", addr, "--token", reader)
	assert.Equal(t, exitOK, code, errOut)
}

// Without tokens or TLS a server listens on loopback only, unless told
// --insecure; a dev server says it is open.
func TestServerRefusesOpenPublicAddress(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", "0.0.0.0:0", "--raft-addr", "127.0.0.1:0"}, "--http 0.0.0.0:0 is not loopback and the API would be open to anyone"},
		{[]string{"--http", "127.0.0.1:0", "--raft-addr", "0.0.0.0:0"}, "--raft-addr 0.0.0.0:0 is not loopback and raft without TLS"},
		{[]string{"--http", "10.1.2.3:0", "--raft-addr", "127.0.0.1:0", "--tokens", filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{[]string{"--http", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--tls-ca", "ca.pem"}, "TLS needs --tls-ca, --tls-cert and --tls-key together"},
	} {
		// A server that does start (the check gone) is stopped, not waited on forever.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var out, errb syncBuffer
		code := run(ctx, append([]string{"server", "--id", "x", "--data-dir", filepath.Join(dir, "d"), "--bootstrap"}, tc.args...), strings.NewReader(""), &out, &errb)
		cancel()
		assert.NotEqual(t, exitOK, code, tc.args)
		assert.Contains(t, errb.String(), tc.want, tc.args)
	}
	code, _, errOut := petite(t, nil, "server", "--dev", "--tokens", "t.yaml")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--dev is open on loopback")

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "--dev", "--http", "127.0.0.1:0"}, strings.NewReader(""), &out, &errb)
	}()
	defer func() {
		cancel()
		assert.Equal(t, exitOK, <-done, errb.String())
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "API ready at") }, 30*time.Second, 10*time.Millisecond, errb.String())
	assert.Contains(t, out.String(), "open (no TLS, no tokens), on loopback only; data in ")
}

// petite token new prints a token and the entry a server accepts for it.
func TestTokenNew(t *testing.T) {
	code, out, errOut := petite(t, nil, "token", "new", "--name", "ci", "--role", "submitter", "--tenant", "research")
	require.Equal(t, exitOK, code, errOut)
	tok, entry, ok := strings.Cut(out, "\n")
	require.True(t, ok)
	tok = strings.TrimPrefix(tok, "token: ")
	ts, err := api.ParseTokens([]byte("tokens:\n"+entry), "out")
	require.NoError(t, err)
	got, ok := ts.Lookup(tok)
	require.True(t, ok, "the printed token matches the printed entry")
	assert.Equal(t, api.Token{Name: "ci", Role: api.RoleSubmitter, Tenants: []string{"research"}, SHA256: api.HashToken(tok)}, withoutHash(got))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "x"}, "new needs --name and --role"},
		{[]string{"--name", "x", "--role", "root"}, `--role "root"`},
		{[]string{"--name", "x", "--role", "agent"}, "an agent's token names its node"},
	} {
		code, _, errOut := petite(t, nil, append([]string{"token", "new"}, tc.args...)...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, errOut, tc.want)
	}
}

// withoutHash drops the unexported decoded hash, to compare entries.
func withoutHash(t api.Token) api.Token {
	return api.Token{Name: t.Name, Role: t.Role, Tenants: t.Tenants, Node: t.Node, SHA256: t.SHA256}
}

// The config file's tls: and auth: sections fill the server's flags; the
// command line wins.
func TestConfigFileTLSAndAuth(t *testing.T) {
	cmd := serverCommand()
	fs := cmd.Flags()
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("tls:\n  ca: /etc/petite/ca.pem\n  cert: /etc/petite/s1.pem\n  key: /etc/petite/s1-key.pem\nauth:\n  tokens: /etc/petite/tokens.yaml\n  audit_log: /var/lib/petite/audit.log\n"), 0o644))
	require.NoError(t, fs.Parse([]string{"--tls-key", "/flag/key.pem"}))
	_, _, err := applyServerConfig(fs, path)
	require.NoError(t, err)
	for flag, want := range map[string]string{
		"tls-ca": "/etc/petite/ca.pem", "tls-cert": "/etc/petite/s1.pem", "tls-key": "/flag/key.pem",
		"tokens": "/etc/petite/tokens.yaml", "audit-log": "/var/lib/petite/audit.log",
	} {
		got, err := fs.GetString(flag)
		require.NoError(t, err)
		assert.Equal(t, want, got, flag)
	}
	require.NoError(t, os.WriteFile(path, []byte("auth:\n  insecure: true\n"), 0o644))
	_, _, err = applyServerConfig(fs, path)
	require.ErrorContains(t, err, "auth.insecure: unknown key", "an open public server is asked for on the command line only")
}
