package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"petite/scheduler"
	"petite/scheduler/api"
	"petite/scheduler/fleet"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// needsServer marks, in a command's Annotations, a command whose examples
// talk to a running server: TestExamples leaves them to
// TestServerExamples, which runs them against a dev server.
const needsServer = "petite/needs-server"

// defaultAddr is where the CLI finds a server when neither --address nor
// PETITE_ADDR says otherwise; `petite server --dev` listens there.
const defaultAddr = "http://127.0.0.1:4646"

func serverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a replicated scheduler server (--dev: one in-process server to try petite).",
		Long: `Runs one server of petite's replicated scheduler: a raft node (TCP
transport, a durable log in --data-dir) that accepts jobs over the HTTP API
under /v1/, and, while it leads, places them with the placement core and
commits each scheduling pass's placements through the replicated log.

--dev runs a single server on loopback only, with the demo fleet (or --fleet),
its data in a temporary directory removed on exit: ready in about a second.
It prints the API address when ready; point the CLI at it with PETITE_ADDR.

A cluster: start every server of the first configuration with --bootstrap and
the same --peer list (ID=HOST:PORT of each raft listener); the first leader
registers --fleet. Add a server later by starting it without --bootstrap and
running 'petite operator raft add-peer' against the cluster.`,
		Example: examples(
			"# one server with the demo fleet, on loopback, data in a temporary directory",
			"petite server --dev",
			"# another fleet and policy",
			"petite server --dev --fleet scheduler/fleet/demo.yaml --policy best-fit",
			"# the first of three servers (run the other two alike with their --id, --data-dir and addresses)",
			"# petite server --id s1 --data-dir /var/lib/petite --raft-addr 10.0.0.1:4647 --http 10.0.0.1:4646 --bootstrap --peer s1=10.0.0.1:4647 --peer s2=10.0.0.2:4647 --peer s3=10.0.0.3:4647",
		),
		Args:        noArgs,
		Annotations: map[string]string{needsServer: "runs until stopped"},
	}
	fs := cmd.Flags()
	dev := fs.Bool("dev", false, "one in-process server on loopback with the demo fleet, data in a temporary directory")
	id := fs.String("id", "", "this server's ID in the cluster (default: the host name; \"dev\" with --dev)")
	dataDir := fs.String("data-dir", "", "directory of the raft log and snapshots (a temporary one with --dev)")
	raftAddr := fs.String("raft-addr", "127.0.0.1:4647", "TCP address raft listens on and advertises")
	httpAddr := fs.String("http", "127.0.0.1:4646", "address of the HTTP API (port 0 picks a free one)")
	bootstrap := fs.Bool("bootstrap", false, "create a new cluster of --peer (this server alone when none) if --data-dir is empty")
	var peers []string
	fs.StringArrayVar(&peers, "peer", nil, "ID=HOST:PORT of a server of the first configuration (repeat)")
	fleetFile := fs.String("fleet", "", "fleet YAML the first leader registers (default: the embedded demo fleet)")
	policy := fs.String("policy", "fgd", "placement policy: "+strings.Join(scheduler.PolicyNames(), ", "))
	coalesce := fs.Duration("coalesce", 5*time.Millisecond, "wait after a change before a scheduling pass, so bursts share one plan")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn or error")
	configFile := fs.String("config", "", "YAML config file (deploy/petite.yaml, docs/operations.md); flags given override it")
	secf := addServerSecurityFlags(fs) // --tls-*, --tokens, --audit-log, --insecure (tls.go)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		live, drain, cerr := applyServerConfig(fs, *configFile) // config.go
		if cerr != nil {
			return cerr
		}
		if *dev && !fs.Changed("log-level") {
			// A lone dev server's first election is routine, not a warning.
			*logLevel = "error"
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return usageErr("--log-level: want debug, info, warn or error, got %q", *logLevel)
		}
		if !contains(scheduler.PolicyNames(), *policy) {
			return usageErr("unknown policy %q (known: %s)", *policy, strings.Join(scheduler.PolicyNames(), ", "))
		}
		cfg := server.Config{
			ID: *id, DataDir: *dataDir, RaftAddr: *raftAddr, Bootstrap: *bootstrap,
			Policy: *policy, Coalesce: *coalesce,
			Logger:   slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})),
			Liveness: live, Drain: drain,
		}
		for _, p := range peers {
			pid, addr, ok := strings.Cut(p, "=")
			if !ok || pid == "" || addr == "" {
				return usageErr("--peer: want ID=HOST:PORT, got %q", p)
			}
			cfg.Peers = append(cfg.Peers, server.Peer{ID: pid, Addr: addr})
		}
		var err error
		if cfg.Pools, cfg.Nodes, err = fleet.Load(*fleetFile); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		if *dev {
			if !loopback(*httpAddr) || (fs.Changed("raft-addr") && !loopback(*raftAddr)) {
				return usageErr("--dev listens on loopback only; --http and --raft-addr must be 127.0.0.1 or localhost")
			}
			if fs.Changed("data-dir") || fs.Changed("bootstrap") || len(peers) > 0 {
				return usageErr("--dev runs one server in a temporary directory: no --data-dir, --bootstrap or --peer")
			}
			dir, err := os.MkdirTemp("", "petite-dev-")
			if err != nil {
				return fmt.Errorf("dev data dir: %w", err)
			}
			defer os.RemoveAll(dir)
			cfg.DataDir, cfg.Bootstrap, cfg.Fast = dir, true, true
			if !fs.Changed("raft-addr") {
				cfg.RaftAddr = "127.0.0.1:0"
			}
			if cfg.ID == "" {
				cfg.ID = "dev"
			}
		}
		if cfg.DataDir == "" {
			return usageErr("--data-dir is required (or --dev)")
		}
		if cfg.ID == "" {
			if cfg.ID, err = os.Hostname(); err != nil {
				return fmt.Errorf("server id: %w", err)
			}
		}
		opts, closeAudit, err := secf.setup(cmd, &cfg, *httpAddr, *dev)
		if err != nil {
			return err
		}
		defer closeAudit()
		return serve(cmd, cfg, *httpAddr, *dev, secf.describe(), opts...)
	}
	return cmd
}

// serve runs a server until the command's context ends or the process is
// interrupted.
func serve(cmd *cobra.Command, cfg server.Config, httpAddr string, dev bool, access string, opts ...api.Option) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := api.Start(cfg, httpAddr, cfg.Logger, opts...)
	if err != nil {
		return err
	}
	defer d.Close()
	out := cmd.OutOrStdout()
	rctx := ctx
	if dev {
		// A lone server elects itself at once; not so is a fault.
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	} else {
		// A cluster's server waits as long as it takes for its peers.
		fmt.Fprintf(out, "petite server %s: raft on %s, API on %s; waiting for a leader\n", cfg.ID, d.Server.RaftAddr(), d.URL)
	}
	if err := d.Ready(rctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while waiting
		}
		return err
	}
	if err := waitFleet(ctx, d, len(cfg.Nodes)); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if dev {
		defer startDevAgents(ctx, d, cfg)() // devagents.go: agents for the nodes given work
	}
	gpus := 0
	for _, n := range cfg.Nodes {
		gpus += len(n.GPUs)
	}
	if dev {
		fmt.Fprintf(out, "petite dev server: one server, %d pools, %d nodes, %d GPUs, policy %s\n", len(cfg.Pools), len(cfg.Nodes), gpus, cfg.Policy)
		fmt.Fprintf(out, "%s; data in %s (removed on exit)\n", access, cfg.DataDir)
	} else {
		fmt.Fprintf(out, "petite server %s: %s; %s\n", cfg.ID, strings.ToLower(d.Server.State()), access)
	}
	fmt.Fprintf(out, "API ready at %s\n", d.URL)
	fmt.Fprintf(out, "export PETITE_ADDR=%s\n", d.URL)
	if f, ok := out.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	<-ctx.Done()
	fmt.Fprintln(cmd.ErrOrStderr(), "petite: server stopping")
	return nil
}

// waitFleet waits, on a new cluster, until the leader has registered the
// fleet, so that "ready" means jobs can be placed.
func waitFleet(ctx context.Context, d *api.Daemon, nodes int) error {
	if nodes == 0 {
		return nil
	}
	// Read from this server's state, not its API: a secured API would ask
	// the server itself for credentials.
	for {
		var n int
		d.Server.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) { n = m.Cluster().NumNodes() })
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the fleet: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// loopback reports whether a listen address is on the loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// talksToServer reports whether c or a command above it is marked
// needsServer.
func talksToServer(c *cobra.Command) bool {
	for ; c != nil; c = c.Parent() {
		if c.Annotations[needsServer] != "" {
			return true
		}
	}
	return false
}
