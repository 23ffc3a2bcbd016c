// Package agent is petite's node agent: it registers its node with the
// servers, heartbeats, and runs the tasks the committed state places on the
// node as child processes under a small supervisor each, with
// CUDA_VISIBLE_DEVICES set to the devices given. The protocol, timeouts and
// what survives what are in docs/agent.md.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"petite/scheduler/api"
	"petite/scheduler/server"
)

// Config sets up an agent.
type Config struct {
	// Servers are clients of the servers (any of them: followers forward
	// to the leader); the agent calls the first and moves to the next when
	// one does not answer. All of the agent's calls go through them: TLS
	// and tokens belong there.
	Servers []*api.Client
	// Registration is the node as the agent's inventory makes it
	// (nvml.Inventory.Register) and the address of the agent's HTTP API,
	// where the servers read task logs.
	Registration server.AgentRegistration
	// DataDir holds the tasks' directories (DATA/tasks/JOB/TASK-GEN): their
	// logs, pids and exit statuses, what a restarted agent adopts.
	DataDir string
	// Supervisor is the command line that supervises one task, the task's
	// directory appended: `petite agent supervise`. It must call Supervise.
	Supervisor []string
	// KillOnClose stops every task when the agent closes (an in-process
	// dev agent); a real agent leaves them running, to adopt them again.
	KillOnClose bool
	// CrashBackoff delays the report of a run that fails within
	// crashWindow of its start, doubling with each such failure of the same
	// task on this node, up to a minute (default 2 s): the report frees the
	// task's devices and a service's replica is placed again at once, so a
	// command that cannot start would otherwise loop as fast as heartbeats.
	CrashBackoff time.Duration
	// KeepLogs is how long the directory of a run the servers took (its
	// logs too) is kept before the agent removes it (default a week;
	// negative keeps them all).
	KeepLogs time.Duration
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// Health, when set, reports the node's unhealthy GPUs (SourceHealth:
	// NVML's XID errors); each registration and heartbeat carries them,
	// read at most once a second. A read that fails keeps the last report.
	Health func() ([]server.GPUHealth, error)
}

// crashWindow: a run that fails sooner than this after its start crashed.
const crashWindow = 10 * time.Second

// jobTask is a task of a job, any run.
type jobTask struct {
	job  string
	task int
}

// Agent is one node's agent.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	node string
	wake chan struct{}

	mu      sync.Mutex
	current int // the server called (an index into Servers)
	tasks   map[server.TaskKey]*task
	crashes map[jobTask]int         // consecutive crashes of a task here
	refused map[server.TaskKey]bool // task entries refused (checkKey), logged once

	healthMu  sync.Mutex
	healthAt  time.Time          // when Config.Health was last read
	unhealthy []server.GPUHealth // what it said
	interval  time.Duration
	window    time.Duration
	grace     time.Duration
	contact   time.Time // when the last call that reached a server was sent
	nodeState string
	lost      bool // the lease ran out: the tasks were killed

	rung atomic.Bool // the leader rang: heartbeat now
}

// Ring makes the agent heartbeat now: the leader rings when the node's
// tasks changed (a placement, a stop), so they start or stop without
// waiting for the interval.
func (a *Agent) Ring() {
	a.rung.Store(true)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// New returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("agent: no server to talk to")
	}
	if cfg.Registration.Node.Name == "" {
		return nil, errors.New("agent: the node has no name")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent: a data dir is required")
	}
	if len(cfg.Supervisor) == 0 {
		return nil, errors.New("agent: no supervisor command")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CrashBackoff <= 0 {
		cfg.CrashBackoff = 2 * time.Second
	}
	if cfg.KeepLogs == 0 {
		cfg.KeepLogs = 7 * 24 * time.Hour
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "tasks"), 0o755); err != nil {
		return nil, fmt.Errorf("agent: data dir: %w", err)
	}
	d := server.DefaultLiveness
	return &Agent{
		cfg: cfg, log: cfg.Logger.With("node", cfg.Registration.Node.Name), node: cfg.Registration.Node.Name,
		wake: make(chan struct{}, 1), tasks: map[server.TaskKey]*task{}, crashes: map[jobTask]int{}, refused: map[server.TaskKey]bool{},
		interval: d.Interval, window: d.Window, grace: d.Grace,
	}, nil
}

// Node is the agent's node name.
func (a *Agent) Node() string { return a.node }

// NodeState is the node's state as the last answer gave it.
func (a *Agent) NodeState() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodeState
}

// Run adopts the tasks a previous agent left, registers the node and
// heartbeats until ctx ends; a registration the cluster refuses ends it
// with the error. When it returns, the tasks keep running unless
// KillOnClose is set.
func (a *Agent) Run(ctx context.Context) error {
	adopted, err := adopt(a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.mu.Lock()
	// The lease goes on from the last contact a previous agent recorded:
	// the servers count the node's silence from there.
	a.contact = time.Now()
	if c, w, ok := readLease(filepath.Join(a.cfg.DataDir, fileLease)); ok {
		a.contact, a.window = c, w
	}
	for _, t := range adopted {
		a.tasks[t.key] = t
		a.log.Info("adopted task", "task", t.key, "state", t.state)
	}
	a.mu.Unlock()
	defer a.closeTasks()

	registered := false
	var next time.Time      // when the next call is due
	var nextPrune time.Time // when old runs are next removed
	for {
		now := time.Now()
		if a.cfg.KeepLogs > 0 && !now.Before(nextPrune) {
			if n := prune(a.cfg.DataDir, a.cfg.KeepLogs, now); n > 0 {
				a.log.Info("removed old task runs", "runs", n, "older than", a.cfg.KeepLogs)
			}
			nextPrune = now.Add(time.Hour)
		}
		switch {
		case !registered && !now.Before(next):
			err := a.register(ctx)
			switch {
			case err == nil:
				registered = true
				next = now.Add(a.currentInterval())
			case errors.Is(err, errRefused):
				return err
			case ctx.Err() != nil:
				return nil
			default:
				a.log.Warn("register", "err", err)
				next = now.Add(min(a.currentInterval(), time.Second))
			}
		case registered && (!now.Before(next) || a.newlyEnded() || a.rung.Swap(false)):
			next = now.Add(a.currentInterval())
			if err := a.beat(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				var ae *api.Error
				if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
					registered, next = false, time.Time{} // the servers forgot the agent (a restore): register again
					continue
				}
				a.log.Warn("heartbeat", "err", err)
			}
		}
		a.checkLease()
		if !a.sleep(ctx, time.Until(next)) {
			return nil
		}
	}
}

func (a *Agent) currentInterval() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.interval
}

// newlyEnded says whether a run has ended since the last heartbeat
// reported it: its end goes out at once, not at the next interval.
func (a *Agent) newlyEnded() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for _, t := range a.tasks {
		a.pollTask(t, now)
		if t.ended && !t.endReported && !now.Before(t.holdUntil) {
			return true
		}
	}
	return false
}

// pollTask notes a run's end, and holds back the report of a crash: a run
// that failed within crashWindow of its start is reported after the
// backoff, which doubles with each crash of the same task here. a.mu is
// held.
func (a *Agent) pollTask(t *task, now time.Time) {
	was := t.ended
	t.poll()
	if was || !t.ended || t.state != server.TaskExited {
		return
	}
	k := jobTask{t.key.Job, t.key.Task}
	if t.code == 0 || now.Sub(t.started) >= crashWindow {
		delete(a.crashes, k)
		return
	}
	n := a.crashes[k]
	a.crashes[k] = n + 1
	t.holdUntil = now.Add(min(a.cfg.CrashBackoff<<min(n, 10), time.Minute))
	a.log.Info("task crashed: its end is reported after a backoff", "task", t.key, "exit", t.code, "backoff", t.holdUntil.Sub(now).Round(time.Millisecond))
}

// errRefused marks a registration the cluster refused.
var errRefused = errors.New("agent: registration refused")

func (a *Agent) register(ctx context.Context) error {
	sent := time.Now()
	reg := a.cfg.Registration
	reg.Unhealthy = a.health()
	ans, err := a.server().RegisterAgent(ctx, reg)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeRefused {
			return fmt.Errorf("%w: %w", errRefused, err)
		}
		a.failover(err)
		return err
	}
	a.log.Info("registered", "state", ans.NodeState, "server", a.server().Base)
	a.apply(ans, sent)
	return nil
}

// beat sends one heartbeat and applies the answer.
func (a *Agent) beat(ctx context.Context) error {
	a.mu.Lock()
	hb := server.Heartbeat{Tasks: []server.TaskReport{}}
	var ends []*task
	now := time.Now()
	for _, t := range a.tasks {
		a.pollTask(t, now)
		if t.ended {
			if now.Before(t.holdUntil) {
				continue // a crash, reported after its backoff
			}
			ends = append(ends, t)
		}
		hb.Tasks = append(hb.Tasks, t.report())
	}
	a.mu.Unlock()
	slices.SortFunc(hb.Tasks, func(x, y server.TaskReport) int { return compareKeys(x.TaskKey, y.TaskKey) })
	hb.Unhealthy = a.health()
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	defer cancel()
	ans, err := a.server().Heartbeat(cctx, a.node, hb)
	if err != nil {
		a.failover(err)
		return err
	}
	a.mu.Lock()
	for _, t := range ends {
		t.endReported = true
	}
	a.mu.Unlock()
	a.apply(ans, sent)
	return nil
}

// server is the client of the server the agent calls now.
func (a *Agent) server() *api.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.Servers[a.current]
}

// failover moves to the next server after a call that no server answered
// (an answer with an error code came from a live server: it stays).
func (a *Agent) failover(err error) {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code != api.CodeNoLeader && ae.Status < 500 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.current = (a.current + 1) % len(a.cfg.Servers)
}

// callTimeout bounds one call to the servers: well inside the lease, so a
// hung connection does not hold the agent past it.
func (a *Agent) callTimeout() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return max(a.interval, min(a.window/4, 10*time.Second))
}

// apply reconciles the node with an answer: tasks given and not held are
// started, tasks held and no longer given are stopped (SIGTERM, SIGKILL
// after the grace: the preemption path; at once for a cancelled job), and
// ended runs the servers took are forgotten.
func (a *Agent) apply(ans server.AgentAnswer, sent time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.contact, a.nodeState, a.lost = sent, ans.NodeState, false
	if ans.IntervalMS > 0 {
		a.interval = time.Duration(ans.IntervalMS) * time.Millisecond
	}
	if ans.WindowMS > 0 {
		a.window = time.Duration(ans.WindowMS) * time.Millisecond
	}
	if ans.GraceMS > 0 {
		a.grace = time.Duration(ans.GraceMS) * time.Millisecond
	}
	if err := writeLease(a.cfg.DataDir, sent, a.window); err != nil {
		a.log.Error("lease", "err", err)
	}
	for _, k := range ans.Acked {
		if t, ok := a.tasks[k]; ok && t.ended {
			t.ack()
			delete(a.tasks, k)
		}
	}
	given := make(map[server.TaskKey]bool, len(ans.Tasks))
	for _, as := range ans.Tasks {
		given[as.TaskKey] = true
		if _, ok := a.tasks[as.TaskKey]; ok {
			continue
		}
		if err := checkKey(as.TaskKey); err != nil {
			if !a.refused[as.TaskKey] {
				a.refused[as.TaskKey] = true // said once, not at every heartbeat
				a.log.Error("refused task", "err", err)
			}
			continue
		}
		t, err := start(a.cfg.DataDir, a.cfg.Supervisor, as, a.node)
		if err != nil {
			a.log.Error("start task", "task", as.TaskKey, "err", err)
			continue
		}
		a.log.Info("started task", "task", as.TaskKey, "devices", as.Devices)
		a.tasks[as.TaskKey] = t
		if t.pid != 0 {
			go a.notifyExit(t)
		}
	}
	grace := make(map[server.TaskKey]time.Duration, len(ans.Stop))
	for _, s := range ans.Stop {
		grace[s.TaskKey] = time.Duration(s.GraceMS) * time.Millisecond
	}
	for k, t := range a.tasks {
		if given[k] || t.ended {
			continue
		}
		g, ok := grace[k]
		if !ok {
			g = a.grace
		}
		if t.state != server.TaskStopping {
			a.log.Info("stopping task no longer given", "task", k, "grace", g)
		}
		t.stop(g, now)
	}
}

// notifyExit wakes the loop when a supervisor this agent started ends, so
// that the exit is reported at once.
func (a *Agent) notifyExit(t *task) {
	<-t.waited
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// checkLease kills the tasks once the agent has not reached a server for
// its node's disconnect window: by then the servers have marked the node
// down and placed its work elsewhere. Inside the window the tasks run on.
func (a *Agent) checkLease() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for _, t := range a.tasks {
		t.enforce(now)
	}
	if a.lost || now.Sub(a.contact) <= a.window {
		return
	}
	a.lost = true
	a.log.Warn("no server reached within the disconnect window: killing the node's tasks", "window", a.window)
	for _, t := range a.tasks {
		t.stop(0, now)
	}
}

// sleep waits for d, a task's exit, or ctx's end (false).
func (a *Agent) sleep(ctx context.Context, d time.Duration) bool {
	// Poll adopted tasks, stop deadlines and the lease more often than a
	// long interval.
	d = max(min(d, time.Second), time.Millisecond)
	select {
	case <-ctx.Done():
		return false
	case <-a.wake:
	case <-time.After(d):
	}
	return true
}

// closeTasks stops every task when KillOnClose is set, and waits a little
// for them to end.
func (a *Agent) closeTasks() {
	if !a.cfg.KillOnClose {
		return
	}
	a.mu.Lock()
	now := time.Now()
	var waits []chan struct{}
	for _, t := range a.tasks {
		t.stop(0, now)
		if t.waited != nil {
			waits = append(waits, t.waited)
		}
	}
	a.mu.Unlock()
	deadline := time.After(3 * time.Second)
	for _, w := range waits {
		select {
		case <-w:
		case <-deadline:
			return
		}
	}
}

// Tasks reports the runs the agent holds, sorted.
func (a *Agent) Tasks() []server.TaskReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]server.TaskReport, 0, len(a.tasks))
	now := time.Now()
	for _, t := range a.tasks {
		a.pollTask(t, now)
		out = append(out, t.report())
	}
	slices.SortFunc(out, func(x, y server.TaskReport) int { return compareKeys(x.TaskKey, y.TaskKey) })
	return out
}

func compareKeys(x, y server.TaskKey) int {
	switch {
	case x.Job != y.Job:
		if x.Job < y.Job {
			return -1
		}
		return 1
	case x.Task != y.Task:
		return x.Task - y.Task
	}
	if x.Gen != y.Gen {
		return x.Gen - y.Gen
	}
	return cmp.Compare(x.Alloc, y.Alloc)
}

// Registration is what the agent registers.
func (a *Agent) Registration() server.AgentRegistration { return a.cfg.Registration }
