package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"petite/nvml"
	"petite/scheduler/agent"
	"petite/scheduler/api"
	"petite/scheduler/server"
)

// agentCommand is `petite agent`: the node agent.
func agentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node's agent: register its GPUs, heartbeat, run the tasks placed on it.",
		Long: `Runs the agent of one GPU node. It reads the node's GPUs through NVML
(--nvml-mock reads one of go-nvml's mock DGX servers instead), registers the
node with the servers (--server, any of them), heartbeats, and runs the tasks
the committed state places on the node as child processes with
CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES set to their GPU or MIG UUIDs.
Their output is kept in --data-dir (read it with 'petite job logs'). Tasks
run under a supervisor each and outlive the agent: an agent restarted on the
same --data-dir adopts them. See docs/agent.md.`,
		Example: examples(
			"# check a node's setup against the server (a mock DGX H100 of the demo fleet), changing nothing",
			"petite agent --pool cloud-sh-ondemand --nvml-mock dgxh100 --name sh-h100-0001 --once",
			"# run it: a mock DGX H100 node of the demo fleet's cloud pool, against a dev server",
			"# petite agent --server http://127.0.0.1:4646 --pool cloud-sh-ondemand --nvml-mock dgxh100 --name sh-h100-0001 --data-dir /tmp/agent-1",
			"# a real node",
			"# petite agent --server http://10.0.0.1:4646 --pool hz-onprem --data-dir /var/lib/petite/agent",
		),
		Args:        noArgs,
		Annotations: map[string]string{needsServer: "registers with a server"},
	}
	fs := cmd.Flags()
	once := fs.Bool("once", false, "check the node's setup and exit: what registering would find (its state, its tasks, or why it is refused), changing nothing")
	srv := fs.String("server", "", "the servers' API addresses, commas between them (default: $PETITE_ADDR, else "+defaultAddr+")")
	addClientAuthFlags(fs, srv) // --tls-ca, --tls-cert, --tls-key, --token (tls.go)
	pool := fs.String("pool", "", "the node's pool (required)")
	rack := fs.String("rack", "", "the node's rack")
	var labels []string
	fs.StringArrayVar(&labels, "label", nil, "KEY=VALUE: a label of the node, for job constraints (repeat)")
	dataDir := fs.String("data-dir", "", "where task logs and state are kept (default: $XDG_STATE_HOME/petite/agent/NODE)")
	httpAddr := fs.String("http", "127.0.0.1:4648", "address of the agent's API, where servers read task logs (port 0 picks one)")
	advertise := fs.String("advertise", "", "the URL servers reach the agent's API at (default: http:// and --http's address)")
	cpu := fs.Int64("cpu-milli", 0, "allocatable CPU in milli-cores (default: this machine's)")
	mem := fs.Int64("memory-mib", 0, "allocatable memory in MiB (default: this machine's)")
	keepLogs := fs.Duration("keep-logs", 7*24*time.Hour, "how long an ended task's directory and logs are kept once the servers took its end (0: for ever)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	nf := addNVMLFlags(fs)
	fs.StringVar(&nf.node, "name", "", "the node's name (as --node)")
	configFile := fs.String("config", "", "YAML config file: its agent: section, log_level and tls: (deploy/petite.yaml); flags given override it")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyAgentConfig(fs, *configFile); err != nil { // config.go
			return err
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return usageErr("--log-level: want debug, info, warn or error, got %q", *logLevel)
		}
		if *pool == "" {
			return usageErr("--pool is required: the pool the node joins")
		}
		servers, err := agentServers(srv)
		if err != nil {
			return err
		}
		cl := servers[0]
		src, node, err := nf.open(fs)
		if err != nil {
			return err
		}
		defer src.Close()
		inv, err := src.Inventory()
		if err != nil {
			return fmt.Errorf("read the GPUs: %w", err)
		}
		spec := nvml.NodeSpec{Name: node, Pool: *pool, Rack: *rack, CPUMilli: *cpu, MemoryMiB: *mem}
		for _, l := range labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				return usageErr("--label: want KEY=VALUE, got %q", l)
			}
			if spec.Labels == nil {
				spec.Labels = map[string]string{}
			}
			spec.Labels[k] = v
		}
		if spec.CPUMilli == 0 {
			spec.CPUMilli = int64(runtime.NumCPU()) * 1000
		}
		if spec.MemoryMiB == 0 {
			if spec.MemoryMiB, err = memTotalMiB(); err != nil {
				return fmt.Errorf("%w (give --memory-mib)", err)
			}
		}
		reg, err := inv.Register(spec)
		if err != nil {
			return err
		}
		if *once {
			return registerOnce(cmd, servers, server.AgentRegistration{Node: reg.Node, Devices: reg.Devices, Check: true})
		}
		if *dataDir == "" {
			if *dataDir, err = stateDir(node); err != nil {
				return err
			}
		}
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find petite's binary for the task supervisors: %w", err)
		}
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("listen for the agent's API on %s: %w", *httpAddr, err)
		}
		defer ln.Close()
		ln, scheme, err := agentListener(ln, srv) // TLS, servers only, with a certificate (tls.go)
		if err != nil {
			return err
		}
		url := *advertise
		if url == "" {
			url = scheme + ln.Addr().String()
		}
		log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
		a, err := agent.New(agent.Config{
			Servers: servers, DataDir: *dataDir, KeepLogs: keepFor(*keepLogs), Supervisor: []string{exe, "agent", "supervise"}, Logger: log,
			Registration: server.AgentRegistration{Node: reg.Node, Devices: reg.Devices, Addr: url},
			Health:       agent.SourceHealth(src, reg.Devices), // XID errors, in every heartbeat
		})
		if err != nil {
			return err
		}
		var logs agent.API
		logs.Add(a)
		hs := logs.Server(api.DefaultTimeouts) // as the servers' API: slow or idle clients are cut off
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		fmt.Fprintf(cmd.OutOrStdout(), "petite agent %s: %d GPU devices (%s), pool %s, server %s, logs API at %s, data in %s\n",
			node, len(reg.Devices), modelOf(reg), *pool, cl.Base, url, *dataDir)
		if err := a.Run(ctx); err != nil {
			return err
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "petite: agent stopping; its tasks run on and the next agent on this data dir adopts them")
		return nil
	}
	cmd.AddCommand(agentSuperviseCommand())
	return cmd
}

// registerOnce asks the first server that answers what registering the
// node would find, and prints it: a check that changes nothing.
func registerOnce(cmd *cobra.Command, servers []*api.Client, reg server.AgentRegistration) error {
	var err error
	for _, cl := range servers {
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
		var ans api.AgentAnswer
		ans, err = cl.RegisterAgent(ctx, reg)
		cancel()
		if err != nil {
			err = clientError(cl, err)
			continue
		}
		model := "no GPU"
		if len(reg.Node.GPUs) > 0 {
			model = reg.Node.GPUs[0].Model
		}
		fmt.Fprintf(cmd.OutOrStdout(), "node %s (%d GPU devices, %s; pool %s) can register with %s: now %s, %d task(s) placed on it; disconnect window %s\n",
			reg.Node.Name, len(reg.Devices), model, reg.Node.Pool, cl.Base, ans.NodeState, len(ans.Tasks), time.Duration(ans.WindowMS)*time.Millisecond)
		return nil
	}
	return err
}

// agentServers returns a client of each server --server lists (commas
// between them), each with the TLS and token flags: the agent moves to the
// next when one does not answer.
func agentServers(srv *string) ([]*api.Client, error) {
	one := *srv
	if one == "" {
		one = os.Getenv("PETITE_ADDR")
	}
	var out []*api.Client
	if one == "" {
		one = defaultAddr
	}
	for addr := range strings.SplitSeq(one, ",") {
		cl, err := api.NewClient(strings.TrimSpace(addr))
		if err != nil {
			return nil, usageErr("--server: %v", err)
		}
		// The TLS and token flags registered beside --server (tls.go).
		if err := authFor(srv).apply(cl); err != nil {
			return nil, err
		}
		out = append(out, cl)
	}
	return out, nil
}

// keepFor maps --keep-logs to agent.Config.KeepLogs: 0 keeps for ever.
func keepFor(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

func modelOf(reg nvml.Registration) string {
	if len(reg.Node.GPUs) == 0 {
		return "no GPU"
	}
	return reg.Node.GPUs[0].Model
}

// agentSuperviseCommand is the task supervisor the agent runs per task.
func agentSuperviseCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "supervise DIR",
		Short:  "Run one task from its directory and record its exit status (the agent runs this).",
		Hidden: true,
		Args:   exactArgs(1, "supervise takes a task directory"),
		RunE: func(_ *cobra.Command, args []string) error {
			return agent.Supervise(args[0])
		},
	}
}

// stateDir is the agent's default data dir.
func stateDir(node string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --data-dir and no home directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "petite", "agent", node), nil
}

// memTotalMiB reads the machine's memory from /proc/meminfo.
func memTotalMiB() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read the machine's memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: MemTotal %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("/proc/meminfo: no MemTotal")
}

// jobLogsCommand is `petite job logs`: a task's output, kept by the agent
// of the node it ran on and read through the servers.
func jobLogsCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a task's output (stdout, or --stderr), kept by its node's agent.",
		Example: examples(
			"petite job logs train-llm",
			"petite job logs train-llm --task 1 --stderr --tail 4096",
			"petite job logs train-llm --follow",
		),
		Args: exactArgs(1, "logs takes one job ID"),
	}
	task := cmd.Flags().Int("task", 0, "the task's index in its job")
	stderr := cmd.Flags().Bool("stderr", false, "print the task's standard error instead of its output")
	tail := cmd.Flags().Int64("tail", 0, "print only the last BYTES of the log")
	follow := cmd.Flags().BoolP("follow", "f", false, "keep printing the log as it grows until the job ends")
	every := cmd.Flags().Duration("poll", 500*time.Millisecond, "with --follow, how often to ask for more")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *task < 0 || *tail < 0 {
			return usageErr("--task and --tail take 0 or more")
		}
		if *every <= 0 {
			return usageErr("--poll takes a duration above 0")
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
		defer cancel()
		j, err := findJob(ctx, cl, args[0], false)
		if err != nil {
			return err
		}
		q := api.LogsQuery{Task: *task, Stream: api.StreamStdout, Tail: *tail}
		if *stderr {
			q.Stream = api.StreamStderr
		}
		if *follow && *tail == 0 {
			return followLogs(cmd, cl, j, q, cmd.OutOrStdout(), false, *every)
		}
		w := &countingWriter{w: cmd.OutOrStdout()}
		if err := cl.Logs(ctx, j.ID, q, w); err != nil {
			return clientError(cl, err)
		}
		if *follow {
			return followLogs(cmd, cl, j, q, cmd.OutOrStdout(), true, *every)
		}
		if w.n == 0 {
			// Say so on stderr: an empty log is not a hung command.
			fmt.Fprintf(cmd.ErrOrStderr(), "petite: job %s task %d (%s): %s log empty so far\n", j.ID, *task, j.Status, q.Stream)
		}
		return nil
	}
	return cmd
}

// followLogs prints a task's log and what it writes next, asking every
// interval from the byte where the output so far ends, until the job has
// ended; the read after that prints what the task wrote last. With a
// tail, the output starts with the tail printed already (w), the rest of
// the log skipped.
func followLogs(cmd *cobra.Command, cl *api.Client, j api.Job, q api.LogsQuery, w io.Writer, skip bool, every time.Duration) error {
	ctx := cmd.Context()
	q.Tail, q.FromOffset = 0, true
	// drain reads from offset on, a capped answer at a time, into out.
	drain := func(offset int64, out io.Writer) (int64, error) {
		for {
			q.Offset = offset
			c := &countingWriter{w: out}
			if err := cl.Logs(ctx, j.ID, q, c); err != nil {
				var ae *api.Error
				if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
					return offset, nil // not placed yet: wait on
				}
				return offset, clientError(cl, err)
			}
			if c.n == 0 {
				return offset, nil
			}
			offset += c.n
		}
	}
	var offset int64
	if skip {
		var err error
		if offset, err = drain(0, io.Discard); err != nil {
			return err
		}
	}
	for {
		got, err := cl.Job(ctx, j.ID, true)
		if err != nil {
			return clientError(cl, err)
		}
		ended := got.Status != api.StatusQueued && got.Status != api.StatusRunning
		if offset, err = drain(offset, w); err != nil {
			return err
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// printUnhealthy lists, under the nodes' table, the GPUs their agents
// report unhealthy, with NVML's XID errors, and which of them the
// scheduler withholds from placement.
func printUnhealthy(w io.Writer, nodes []api.Node) error {
	for _, n := range nodes {
		for _, h := range n.Unhealthy {
			xids := make([]string, len(h.XIDs))
			for i, x := range h.XIDs {
				xids[i] = strconv.FormatUint(x, 10)
			}
			held := ""
			if slices.Contains(n.Withheld, h.GPU) {
				held = ", withheld from placement"
			}
			if _, err := fmt.Fprintf(w, "node %s: GPU %d (%s) unhealthy, XID %s%s\n", n.Name, h.GPU, orDash(h.UUID), strings.Join(xids, ", "), held); err != nil {
				return err
			}
		}
		for _, g := range n.Withheld { // withheld while the report says it is well again
			if !slices.ContainsFunc(n.Unhealthy, func(h api.GPUHealth) bool { return h.GPU == g }) {
				if _, err := fmt.Fprintf(w, "node %s: GPU %d withheld from placement\n", n.Name, g); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
