package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
	"petite/scheduler/server"
)

// The sample config shipped in deploy/ loads, so that it never rots.
func TestSampleConfigLoads(t *testing.T) {
	c, err := loadConfig(filepath.Join("..", "..", "deploy", "petite.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "s1", c.Server.ID)
	assert.Equal(t, "/var/lib/petite", c.Server.DataDir)
	assert.Len(t, c.Server.Peers, 3)
	assert.Equal(t, 20*time.Second, c.Server.Heartbeat.Timeout)
	assert.Equal(t, time.Hour, c.Server.Heartbeat.Windows["outposts"])
	assert.Equal(t, 72*time.Hour, c.Server.Drain.RetireLead)
	assert.NoError(t, c.Server.liveness().Check())
	assert.Equal(t, "hz-onprem", c.Agent.Pool)
	assert.Len(t, c.Agent.Servers, 3)
	for _, unit := range []string{"petite-server.service", "petite-agent.service"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", unit))
		require.NoError(t, err)
		assert.Contains(t, string(b), "ExecStart=/usr/local/bin/petite ")
	}
}

// A bad config is refused with one line: the file, the line and the key.
func TestConfigRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "server:\n  id: s1\n  data_dri: /x\n", "config c.yaml:3: server.data_dri: unknown key (known: id, data_dir, "},
		{"unknown top key", "logging: info\n", "config c.yaml:1: logging: unknown key"},
		{"repeated key", "server:\n  id: a\n  id: b\n", "config c.yaml:3: server.id: repeated key"},
		{"wrong type", "server:\n  bootstrap: maybe\n", "config c.yaml:2: cannot unmarshal !!str `maybe` into bool"},
		{"not a duration", "server:\n  coalesce: 5\n", "config c.yaml:2: cannot unmarshal !!int `5` into time.Duration"},
		{"section not a mapping", "server: [a]\n", "config c.yaml:1: server: want a mapping of keys"},
		{"bad policy", "server:\n  id: a\n  policy: fastest\n", `config c.yaml:3: server.policy: unknown policy "fastest"`},
		{"bad peer", "server:\n  peers: [s1]\n", `config c.yaml:2: server.peers: want ID=HOST:PORT, got "s1"`},
		{"bad log level", "log_level: loud\n", `config c.yaml:1: log_level: want debug, info, warn or error, got "loud"`},
		{"negative", "server:\n  drain:\n    deadline: -1h\n", "config c.yaml:3: server.drain.deadline: want a positive duration, got -1h0m0s"},
		{"heartbeat", "server:\n  heartbeat:\n    interval: 30s\n    timeout: 10s\n", "config c.yaml:2: server.heartbeat: heartbeat timeout 10s must be longer than the heartbeat interval 30s"},
		{"unknown tls key", "tls:\n  crt: /etc/petite/s1.pem\n", "config c.yaml:2: tls.crt: unknown key (known: ca, cert, key)"},
		{"two documents", "log_level: info\n---\nlog_level: warn\n", "config c.yaml:2: more than one document"},
		{"empty", "", "config c.yaml: empty config file"},
		{"syntax", "server:\n  id: [\n", "config c.yaml:2: did not find expected node content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(strings.NewReader(tc.yaml), "c.yaml")
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), "%q", err.Error())
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

// petite server --config starts a server from the file; a flag given on
// the command line wins over the file's key; a bad file stops start-up
// with one line.
func TestServerConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "petite.yaml")
	// The file's http address could not be listened on: the flag's must win.
	require.NoError(t, os.WriteFile(cfgPath, []byte(`log_level: error
server:
  id: from-file
  data_dir: `+filepath.Join(dir, "data")+`
  raft_addr: 127.0.0.1:0
  http: 256.0.0.1:4646
  bootstrap: true
  policy: best-fit
  heartbeat:
    timeout: 30s
`), 0o644))
	addr := devServer(t, "server", "--config", cfgPath, "--http", "127.0.0.1:0")
	cl, err := api.NewClient(addr)
	require.NoError(t, err)
	h, err := cl.Health(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "from-file", h.Server)

	require.NoError(t, os.WriteFile(cfgPath, []byte("server:\n  data_dir: /x\n  polcy: fgd\n"), 0o644))
	code, _, errOut := petite(t, nil, "server", "--config", cfgPath)
	assert.Equal(t, exitError, code)
	assert.Equal(t, "petite: config "+cfgPath+":3: server.polcy: unknown key (known: id, data_dir, raft_addr, http, bootstrap, peers, fleet, policy, coalesce, heartbeat, drain)\n", errOut)
	code, _, errOut = petite(t, nil, "server", "--dev", "--config", cfgPath)
	assert.Equal(t, exitUsage, code, errOut)
}

// The file's heartbeat and drain settings reach the server's config.
func TestApplyServerConfig(t *testing.T) {
	cmd := serverCommand()
	fs := cmd.Flags()
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("server:\n  policy: best-fit\n  coalesce: 9ms\n  heartbeat: {interval: 2s, timeout: 9s, grace: 1m}\n  drain: {deadline: 1h, retire_lead: 24h}\n"), 0o644))
	require.NoError(t, fs.Parse([]string{"--policy", "fgd"}))
	live, drain, err := applyServerConfig(fs, path)
	require.NoError(t, err)
	assert.Equal(t, server.Liveness{Interval: 2 * time.Second, Timeout: 9 * time.Second, Grace: time.Minute}, live)
	assert.Equal(t, server.Drain{Deadline: time.Hour, RetireLead: 24 * time.Hour}, drain)
	p, _ := fs.GetString("policy")
	assert.Equal(t, "fgd", p, "the flag wins")
	c, _ := fs.GetDuration("coalesce")
	assert.Equal(t, 9*time.Millisecond, c, "the file fills what the flags leave")
}

// petite agent --config fills the agent's flags from the agent: section;
// a flag given wins.
func TestApplyAgentConfig(t *testing.T) {
	cmd := agentCommand()
	fs := cmd.Flags()
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("log_level: debug\nagent:\n  servers: [http://a:4646, http://b:4646]\n  pool: p1\n  cpu_milli: 64000\n  nvml_mock: dgxh100\nserver:\n  id: ignored-by-agents\n"), 0o644))
	require.NoError(t, fs.Parse([]string{"--pool", "p2"}))
	require.NoError(t, applyAgentConfig(fs, path))
	for flag, want := range map[string]string{
		"server": "http://a:4646,http://b:4646", "pool": "p2", "cpu-milli": "64000", "nvml-mock": "dgxh100", "log-level": "debug",
	} {
		assert.Equal(t, want, fs.Lookup(flag).Value.String(), flag)
	}
	require.NoError(t, os.WriteFile(path, []byte("agent:\n  pool: p1\n  gpus: 8\n"), 0o644))
	err := applyAgentConfig(fs, path)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "config "+path+":3: agent.gpus: unknown key"), err.Error())
}
