package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"petite/scheduler"
	"petite/scheduler/server"
)

// fileConfig is a petite config file (deploy/petite.yaml is the sample):
// what a deployed server, and its agents, would otherwise take as flags.
// Flags given on the command line override it.
type fileConfig struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string           `yaml:"log_level"`
	Server   serverFileConfig `yaml:"server"`
	// Agent is what petite agent --config reads; a server ignores it.
	Agent agentFileConfig `yaml:"agent"`
	// TLS is the server's certificate paths (--tls-ca, --tls-cert,
	// --tls-key): mutual TLS for the API and raft.
	TLS tlsFileConfig `yaml:"tls"`
	// Auth is the token file and the audit log (tls.go).
	Auth authFileConfig `yaml:"auth"`
}

// serverFileConfig is the server: section; each key is the flag of the same
// name (data_dir is --data-dir, peers are --peer).
type serverFileConfig struct {
	ID        string        `yaml:"id"`
	DataDir   string        `yaml:"data_dir"`
	RaftAddr  string        `yaml:"raft_addr"`
	HTTP      string        `yaml:"http"`
	Bootstrap bool          `yaml:"bootstrap"`
	Peers     []string      `yaml:"peers"`
	Fleet     string        `yaml:"fleet"`
	Policy    string        `yaml:"policy"`
	Coalesce  time.Duration `yaml:"coalesce"`
	// Heartbeat is how the leader watches its agents.
	Heartbeat heartbeatFileConfig `yaml:"heartbeat"`
	// Drain is how draining nodes are emptied and pools retired.
	Drain drainFileConfig `yaml:"drain"`
}

// agentFileConfig is the agent: section, read by petite agent --config;
// each key is the flag of the same name (servers is --server).
type agentFileConfig struct {
	Servers   []string `yaml:"servers"`
	Pool      string   `yaml:"pool"`
	Rack      string   `yaml:"rack"`
	Name      string   `yaml:"name"`
	DataDir   string   `yaml:"data_dir"`
	HTTP      string   `yaml:"http"`
	Advertise string   `yaml:"advertise"`
	CPUMilli  int64    `yaml:"cpu_milli"`
	MemoryMiB int64    `yaml:"memory_mib"`
	NVMLMock  string   `yaml:"nvml_mock"`
}

// heartbeatFileConfig maps to server.Liveness; zero keeps its default.
type heartbeatFileConfig struct {
	Interval         time.Duration            `yaml:"interval"`
	Timeout          time.Duration            `yaml:"timeout"`
	DisconnectWindow time.Duration            `yaml:"disconnect_window"`
	Windows          map[string]time.Duration `yaml:"windows"`
	Grace            time.Duration            `yaml:"grace"`
}

// drainFileConfig maps to server.Drain.
type drainFileConfig struct {
	Deadline   time.Duration `yaml:"deadline"`
	RetireLead time.Duration `yaml:"retire_lead"`
}

// tlsFileConfig is the certificate paths.
type tlsFileConfig struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// maxConfigBytes caps a config file.
const maxConfigBytes = 1 << 20

// configError is a config file error: FILE:LINE: FIELD: what is wrong.
type configError struct {
	file, field, msg string
	line             int
}

func (e *configError) Error() string {
	var b strings.Builder
	b.WriteString("config " + e.file)
	if e.line > 0 {
		fmt.Fprintf(&b, ":%d", e.line)
	}
	b.WriteString(": ")
	if e.field != "" {
		b.WriteString(e.field + ": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

// loadConfig reads and checks a config file. Unknown and repeated keys,
// values of the wrong type and invalid settings are refused with the file,
// line and key.
func loadConfig(path string) (*fileConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return parseConfig(f, path)
}

func parseConfig(r io.Reader, file string) (*fileConfig, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, &configError{file: file, msg: fmt.Sprintf("read: %v", err)}
	}
	if len(data) > maxConfigBytes {
		return nil, &configError{file: file, msg: fmt.Sprintf("larger than %d bytes", maxConfigBytes)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &configError{file: file, msg: "empty config file"}
		}
		return nil, yamlConfigError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &configError{file: file, line: extra.Line, msg: "more than one document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	lines := map[string]int{}
	if err := checkConfigKeys(root, reflect.TypeFor[fileConfig](), "", lines); err != nil {
		err.file = file
		return nil, err
	}
	var c fileConfig
	if err := root.Decode(&c); err != nil {
		return nil, yamlConfigError(file, err)
	}
	if err := c.validate(); err != nil {
		err.file, err.line = file, lines[err.field]
		return nil, err
	}
	return &c, nil
}

// yamlConfigError turns the YAML library's error into a configError.
func yamlConfigError(file string, err error) *configError {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &configError{file: file, msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if _, err := fmt.Sscanf(rest, "%d:", &e.line); err == nil {
			e.msg = strings.TrimSpace(rest[strings.Index(rest, ":")+1:])
		}
	}
	return e
}

// checkConfigKeys walks a YAML mapping against a struct's yaml tags, so
// that an unknown or repeated key is named with its dotted path and line;
// it records the line of every key in lines.
func checkConfigKeys(n *yaml.Node, t reflect.Type, path string, lines map[string]int) *configError {
	if t.Kind() != reflect.Struct {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return nil // an empty section
		}
		return &configError{line: n.Line, field: path, msg: "want a mapping of keys"}
	}
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		fields[name] = t.Field(i).Type
		names = append(names, name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := strings.TrimPrefix(path+"."+k.Value, ".")
		ft, ok := fields[k.Value]
		if !ok {
			return &configError{line: k.Line, field: key, msg: "unknown key (known: " + strings.Join(names, ", ") + ")"}
		}
		if seen[k.Value] {
			return &configError{line: k.Line, field: key, msg: "repeated key"}
		}
		seen[k.Value] = true
		lines[key] = k.Line
		if err := checkConfigKeys(v, ft, key, lines); err != nil {
			return err
		}
	}
	return nil
}

// validate checks the settings a flag would have checked, naming the key.
func (c *fileConfig) validate() *configError {
	bad := func(field, format string, a ...any) *configError {
		return &configError{field: field, msg: fmt.Sprintf(format, a...)}
	}
	if c.LogLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
			return bad("log_level", "want debug, info, warn or error, got %q", c.LogLevel)
		}
	}
	s := &c.Server
	if s.Policy != "" && !contains(scheduler.PolicyNames(), s.Policy) {
		return bad("server.policy", "unknown policy %q (known: %s)", s.Policy, strings.Join(scheduler.PolicyNames(), ", "))
	}
	for _, p := range s.Peers {
		if id, addr, ok := strings.Cut(p, "="); !ok || id == "" || addr == "" {
			return bad("server.peers", "want ID=HOST:PORT, got %q", p)
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"server.coalesce", s.Coalesce}, {"server.heartbeat.interval", s.Heartbeat.Interval},
		{"server.heartbeat.timeout", s.Heartbeat.Timeout}, {"server.heartbeat.disconnect_window", s.Heartbeat.DisconnectWindow},
		{"server.heartbeat.grace", s.Heartbeat.Grace}, {"server.drain.deadline", s.Drain.Deadline},
		{"server.drain.retire_lead", s.Drain.RetireLead},
	} {
		if d.v < 0 {
			return bad(d.field, "want a positive duration, got %s", d.v)
		}
	}
	if err := s.liveness().Check(); err != nil {
		return bad("server.heartbeat", "%v", err)
	}
	switch {
	case c.Agent.CPUMilli < 0:
		return bad("agent.cpu_milli", "want 0 (this machine's) or more, got %d", c.Agent.CPUMilli)
	case c.Agent.MemoryMiB < 0:
		return bad("agent.memory_mib", "want 0 (this machine's) or more, got %d", c.Agent.MemoryMiB)
	}
	return nil
}

func (s *serverFileConfig) liveness() server.Liveness {
	return server.Liveness{
		Interval: s.Heartbeat.Interval, Timeout: s.Heartbeat.Timeout, Window: s.Heartbeat.DisconnectWindow,
		Windows: s.Heartbeat.Windows, Grace: s.Heartbeat.Grace,
	}
}

// applyAgentConfig reads --config, when given, into the agent's flags the
// command line left unset (its agent: section, log_level, tls:): flags
// override the file.
func applyAgentConfig(fs *pflag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	c, err := loadConfig(path)
	if err != nil {
		return err
	}
	a := &c.Agent
	num := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	for _, kv := range [][2]string{
		{"server", strings.Join(a.Servers, ",")}, {"pool", a.Pool}, {"rack", a.Rack}, {"name", a.Name},
		{"data-dir", a.DataDir}, {"http", a.HTTP}, {"advertise", a.Advertise},
		{"cpu-milli", num(a.CPUMilli)}, {"memory-mib", num(a.MemoryMiB)}, {"nvml-mock", a.NVMLMock},
		{"log-level", c.LogLevel},
		{"tls-ca", c.TLS.CA}, {"tls-cert", c.TLS.Cert}, {"tls-key", c.TLS.Key},
	} {
		if kv[1] == "" || fs.Changed(kv[0]) || fs.Lookup(kv[0]) == nil {
			continue
		}
		if err := fs.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("config: %s: %w", kv[0], err)
		}
	}
	return nil
}

// setFlags gives each server flag not set on the command line the file's
// value: flags override the file.
func (c *fileConfig) setFlags(fs *pflag.FlagSet) error {
	s := &c.Server
	set := func(name, v string) error {
		if v == "" || fs.Changed(name) {
			return nil
		}
		return fs.Set(name, v)
	}
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	boolean := func(b bool) string {
		if !b {
			return ""
		}
		return "true"
	}
	for _, kv := range [][2]string{
		{"id", s.ID}, {"data-dir", s.DataDir}, {"raft-addr", s.RaftAddr}, {"http", s.HTTP},
		{"bootstrap", boolean(s.Bootstrap)}, {"fleet", s.Fleet}, {"policy", s.Policy},
		{"coalesce", dur(s.Coalesce)}, {"log-level", c.LogLevel},
		{"tls-ca", c.TLS.CA}, {"tls-cert", c.TLS.Cert}, {"tls-key", c.TLS.Key},
		{"tokens", c.Auth.Tokens}, {"audit-log", c.Auth.AuditLog},
	} {
		if err := set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("config: %s: %w", kv[0], err)
		}
	}
	if !fs.Changed("peer") {
		for _, p := range s.Peers {
			if err := fs.Set("peer", p); err != nil {
				return fmt.Errorf("config: peers: %w", err)
			}
		}
	}
	return nil
}

// applyServerConfig reads --config, when given, into the flags the command
// line left unset, and returns the settings that have no flag (heartbeat
// and drain); with no file it returns the defaults.
func applyServerConfig(fs *pflag.FlagSet, path string) (server.Liveness, server.Drain, error) {
	if path == "" {
		return server.Liveness{}, server.Drain{}, nil
	}
	if fs.Changed("dev") {
		return server.Liveness{}, server.Drain{}, usageErr("--config is for a deployed server; --dev takes none")
	}
	c, err := loadConfig(path)
	if err != nil {
		return server.Liveness{}, server.Drain{}, err
	}
	if err := c.setFlags(fs); err != nil {
		return server.Liveness{}, server.Drain{}, err
	}
	return c.Server.liveness(), server.Drain{Deadline: c.Server.Drain.Deadline, RetireLead: c.Server.Drain.RetireLead}, nil
}
