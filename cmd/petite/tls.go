package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petite/scheduler/api"
	"petite/scheduler/pki"
	"petite/scheduler/server"
)

// defaultTLSDir is where `petite tls` keeps the dev CA and what it issues.
const defaultTLSDir = "petite-tls"

func tlsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Make a development CA and issue server, agent and client certificates.",
		Long: `A small certificate authority for mutual TLS between servers, agents and
clients. 'init' makes the CA (ECDSA P-256) in --dir; 'issue' signs a
certificate naming a role and a name: the URI SAN spiffe://petite/ROLE/NAME
(also written as OU=ROLE, CN=NAME). Servers accept raft traffic only from
server certificates; an agent's certificate names its node and lets it report
for that node alone. See docs/security.md.`,
		Example: examples(
			"petite tls init",
			"petite tls issue --role server --name s1 --ip 127.0.0.1",
		),
	}
	cmd.AddCommand(tlsInitCommand(), tlsIssueCommand())
	return cmd
}

func tlsInitCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a development CA: ca.pem and ca-key.pem (mode 0600) in --dir.",
		Long: `Makes a new CA in --dir (created if missing) and refuses to replace one that
exists there: every certificate it issued would stop being trusted. Keep
ca-key.pem off the servers; they need ca.pem and their own pair only.`,
		Example: examples("petite tls init --dir cluster-tls"),
		Args:    noArgs,
	}
	dir := cmd.Flags().String("dir", defaultTLSDir, "directory of the CA")
	name := cmd.Flags().String("name", "petite dev CA", "the CA's common name")
	days := cmd.Flags().Int("days", 5*365, "days the CA is valid")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *days <= 0 {
			return usageErr("--days must be positive, got %d", *days)
		}
		ca, err := pki.InitCA(*dir, *name, time.Now(), time.Duration(*days)*24*time.Hour)
		if err != nil {
			return fmt.Errorf("tls init: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "CA %q in %s (valid until %s)\n", ca.Cert.Subject.CommonName, *dir, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
		fmt.Fprintf(cmd.OutOrStdout(), "  %s  (give to every server, agent and client: --tls-ca)\n", filepath.Join(*dir, pki.CAFile))
		fmt.Fprintf(cmd.OutOrStdout(), "  %s  (keep private: it signs certificates)\n", filepath.Join(*dir, pki.CAKeyFile))
		return nil
	}
	return cmd
}

func tlsIssueCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issue --role server|agent|client --name NAME",
		Short: "Issue a certificate signed by the CA in --dir, naming a role and a name.",
		Long: `Writes ROLE-NAME.pem and ROLE-NAME-key.pem (mode 0600) into --dir.

  server  a petite server: its --name is its server ID; --dns/--ip list the
          names and addresses peers and clients dial it by (default: localhost,
          127.0.0.1 and ::1). Raft accepts server certificates only.
  agent   a node agent: --name is the node it runs on; it may report and run
          for that node and no other. --dns/--ip as for a server if the agent
          serves (job logs).
  client  a user or a program: --name is who the audit log records.`,
		Example: examples(
			"petite tls issue --role agent --name sh-h100-0001",
			"petite tls issue --role client --name alice",
			"petite tls issue --dir cluster-tls --role server --name s1 --dns s1.example.org --ip 10.0.0.1",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	dir := fs.String("dir", defaultTLSDir, "directory of the CA; the certificate is written there")
	role := fs.String("role", "", "server, agent or client")
	name := fs.String("name", "", "server ID, node name, or user name")
	dns := fs.StringSlice("dns", nil, "DNS name the certificate answers for (repeat or comma-separate)")
	ipFlags := fs.StringSlice("ip", nil, "IP address the certificate answers for (repeat or comma-separate)")
	days := fs.Int("days", 365, "days the certificate is valid (capped at the CA's end)")
	force := fs.Bool("force", false, "replace an existing certificate of the same role and name")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *role == "" || *name == "" {
			return usageErr("issue needs --role (%s) and --name", strings.Join(pki.Roles, ", "))
		}
		if *days <= 0 {
			return usageErr("--days must be positive, got %d", *days)
		}
		req := pki.Request{Identity: pki.Identity{Role: *role, Name: *name}, DNS: *dns, Validity: time.Duration(*days) * 24 * time.Hour}
		if err := req.Check(); err != nil {
			return usageErr("%v", err)
		}
		for _, s := range *ipFlags {
			ip := net.ParseIP(s)
			if ip == nil {
				return usageErr("--ip: %q is not an IP address", s)
			}
			req.IPs = append(req.IPs, ip)
		}
		if *role == pki.RoleServer && len(req.DNS) == 0 && len(req.IPs) == 0 {
			req.DNS, req.IPs = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		ca, err := pki.LoadCA(*dir)
		if err != nil {
			return fmt.Errorf("tls issue: %w", err)
		}
		f, err := ca.IssueFiles(*dir, req, time.Now(), *force)
		if err != nil {
			return fmt.Errorf("tls issue: %w", err)
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%s\n", req.Identity)
		fmt.Fprintf(out, "  --tls-ca %s --tls-cert %s --tls-key %s\n", f.CA, f.Cert, f.Key)
		var hosts []string
		hosts = append(hosts, req.DNS...)
		for _, ip := range req.IPs {
			hosts = append(hosts, ip.String())
		}
		if len(hosts) > 0 {
			fmt.Fprintf(out, "  answers for %s\n", strings.Join(hosts, ", "))
		}
		return nil
	}
	return cmd
}

// clientAuth is how a client (the CLI, an agent) proves who it is: a
// certificate of the cluster's CA and a bearer token, from flags, else
// from PETITE_TLS_CA, PETITE_TLS_CERT, PETITE_TLS_KEY and PETITE_TOKEN.
type clientAuth struct {
	ca, cert, key, token string
}

var (
	clientAuthMu sync.Mutex
	// clientAuths maps an address flag to the auth flags beside it, so
	// that clientFor(addr) finds them.
	clientAuths = map[*string]*clientAuth{}
)

// addClientAuthFlags adds --tls-ca, --tls-cert, --tls-key and --token to
// fs, beside the address flag addr; clientFor(addr) uses them.
func addClientAuthFlags(fs *pflag.FlagSet, addr *string) {
	a := &clientAuth{}
	fs.StringVar(&a.ca, "tls-ca", "", "CA certificate to verify the server with (default: $PETITE_TLS_CA); turns on TLS")
	fs.StringVar(&a.cert, "tls-cert", "", "client certificate (default: $PETITE_TLS_CERT)")
	fs.StringVar(&a.key, "tls-key", "", "client certificate's key (default: $PETITE_TLS_KEY)")
	fs.StringVar(&a.token, "token", "", "bearer token (default: $PETITE_TOKEN)")
	clientAuthMu.Lock()
	clientAuths[addr] = a
	clientAuthMu.Unlock()
}

// authFor returns the auth flags registered beside addr; none registered,
// the environment alone.
func authFor(addr *string) clientAuth {
	clientAuthMu.Lock()
	defer clientAuthMu.Unlock()
	var a clientAuth
	if f := clientAuths[addr]; f != nil {
		a = *f
	}
	for _, e := range []struct {
		v   *string
		env string
	}{{&a.ca, "PETITE_TLS_CA"}, {&a.cert, "PETITE_TLS_CERT"}, {&a.key, "PETITE_TLS_KEY"}, {&a.token, "PETITE_TOKEN"}} {
		if *e.v == "" {
			*e.v = os.Getenv(e.env)
		}
	}
	return a
}

// apply sets the client's TLS and token.
func (a clientAuth) apply(cl *api.Client) error {
	cl.Token = a.token
	f := pki.Files{CA: a.ca, Cert: a.cert, Key: a.key}
	if f.Empty() {
		return nil
	}
	if (f.Cert == "") != (f.Key == "") {
		return usageErr("--tls-cert and --tls-key go together")
	}
	if f.CA == "" {
		return usageErr("--tls-cert needs --tls-ca, the CA to verify the server with")
	}
	cfg, err := f.ClientConfig()
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	cl.UseTLS(cfg)
	return nil
}

// serverSecurity holds the server's TLS, token and audit flags.
type serverSecurity struct {
	ca, cert, key, tokens, audit string
	insecure                     bool
}

// addServerSecurityFlags adds the server's --tls-*, --tokens, --audit-log
// and --insecure flags.
func addServerSecurityFlags(fs *pflag.FlagSet) *serverSecurity {
	s := &serverSecurity{}
	fs.StringVar(&s.ca, "tls-ca", "", "CA certificate: turns on mutual TLS for the API and raft (with --tls-cert and --tls-key)")
	fs.StringVar(&s.cert, "tls-cert", "", "this server's certificate (petite tls issue --role server)")
	fs.StringVar(&s.key, "tls-key", "", "this server's certificate's key")
	fs.StringVar(&s.tokens, "tokens", "", "token file (names, roles, SHA-256 of each token): callers need a bearer token")
	fs.StringVar(&s.audit, "audit-log", "", "append an audit line (JSON) per state-changing request to this file ('-': standard error)")
	fs.BoolVar(&s.insecure, "insecure", false, "allow an open API (no --tokens, no TLS) or raft without TLS on an address other than loopback")
	return s
}

// setup checks the flags, sets raft's TLS in cfg and returns the API's
// options and a function that closes the audit log. Without TLS or tokens
// the API is open: allowed on loopback, elsewhere only with --insecure.
func (s *serverSecurity) setup(cmd *cobra.Command, cfg *server.Config, httpAddr string, dev bool) ([]api.Option, func(), error) {
	files := pki.Files{CA: s.ca, Cert: s.cert, Key: s.key}
	if dev && (!files.Empty() || s.tokens != "") {
		return nil, nil, usageErr("--dev is open on loopback; try TLS and tokens on a server with --data-dir")
	}
	if !files.Empty() && (files.CA == "" || files.Cert == "" || files.Key == "") {
		return nil, nil, usageErr("TLS needs --tls-ca, --tls-cert and --tls-key together")
	}
	sec, err := api.LoadSecurity(files, s.tokens)
	if err != nil {
		return nil, nil, err
	}
	if !files.Empty() {
		if cfg.RaftTLS, err = files.PeerConfig(); err != nil {
			return nil, nil, fmt.Errorf("raft TLS: %w", err)
		}
	}
	if !s.insecure {
		if sec.Open() && !loopback(httpAddr) {
			return nil, nil, usageErr("--http %s is not loopback and the API would be open to anyone: give --tokens and/or --tls-ca/--tls-cert/--tls-key (docs/security.md), or --insecure", httpAddr)
		}
		if cfg.RaftTLS == nil && !loopback(cfg.RaftAddr) {
			return nil, nil, usageErr("--raft-addr %s is not loopback and raft without TLS lets anyone who reaches it write the log: give --tls-ca/--tls-cert/--tls-key (docs/security.md), or --insecure", cfg.RaftAddr)
		}
	}
	closer := func() {}
	switch s.audit {
	case "":
	case "-":
		sec.Audit = api.NewAuditLogger(cmd.ErrOrStderr())
	default:
		f, err := os.OpenFile(s.audit, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("audit log: %w", err)
		}
		sec.Audit, closer = api.NewAuditLogger(f), func() { f.Close() }
	}
	stopReload := s.reloadOnHangup(cfg.Logger, sec)
	closer = func(c func()) func() { return func() { stopReload(); c() } }(closer)
	return []api.Option{api.WithSecurity(sec)}, closer, nil
}

// reloadOnHangup reads the token file again on each SIGHUP, so a token is
// revoked or added without a restart; a file with an error is refused with
// a log line and the tokens in use stay. A server without a token file
// logs that it has nothing to reload (rather than die of the signal, as a
// process that does not catch it would). The returned function stops it.
func (s *serverSecurity) reloadOnHangup(log *slog.Logger, sec *api.Security) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if sec.Tokens == nil {
					log.Info("SIGHUP: no token file to reload")
					continue
				}
				if err := sec.Tokens.Reload(s.tokens); err != nil {
					log.Error("SIGHUP: tokens not reloaded; the ones in use stay", "err", err)
					continue
				}
				log.Info("SIGHUP: tokens reloaded", "file", s.tokens, "tokens", sec.Tokens.Len())
				if sec.Audit != nil {
					sec.Audit.Info("tokens reloaded", "file", s.tokens, "tokens", sec.Tokens.Len())
				}
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// describe says, for the server's first lines, who may use the API.
func (s *serverSecurity) describe() string {
	var parts []string
	if s.ca != "" {
		parts = append(parts, "mutual TLS on the API and raft")
	}
	if s.tokens != "" {
		parts = append(parts, "bearer tokens of "+s.tokens)
	}
	if len(parts) == 0 {
		if s.insecure {
			return "OPEN to anyone who reaches it (--insecure: no TLS, no tokens)"
		}
		return "open (no TLS, no tokens), on loopback only"
	}
	return strings.Join(parts, ", ")
}

// authFileConfig is a config file's auth: section (the --tokens and
// --audit-log flags); --insecure has no key: an open server on a public
// address is asked for on the command line, each time.
type authFileConfig struct {
	Tokens   string `yaml:"tokens"`
	AuditLog string `yaml:"audit_log"`
}

// agentListener puts the agent's log API behind TLS when the agent has a
// certificate (the flags beside its --server address): only the cluster's
// servers may then read its logs. It returns the listener and the scheme
// the agent advertises.
func agentListener(ln net.Listener, srv *string) (net.Listener, string, error) {
	a := authFor(srv)
	if a.cert == "" {
		return ln, "http://", nil
	}
	cfg, err := pki.Files{CA: a.ca, Cert: a.cert, Key: a.key}.ServersOnlyConfig()
	if err != nil {
		return nil, "", fmt.Errorf("agent API TLS: %w", err)
	}
	return tls.NewListener(ln, cfg), "https://", nil
}
