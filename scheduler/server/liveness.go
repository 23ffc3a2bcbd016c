package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"petite/scheduler"
	"petite/scheduler/state"
)

// ErrUnknownAgent answers a heartbeat from a node no agent registered: the
// agent registers again.
var ErrUnknownAgent = errors.New("no agent registered for this node")

// ErrAgentRefused is a registration the cluster refuses (a node registered
// with other devices, a retired node): the agent must not run.
var ErrAgentRefused = errors.New("agent refused")

// Liveness sets how the leader watches its agents. The defaults suit a
// data centre; tests shorten them.
type Liveness struct {
	// Interval is how often an agent heartbeats (default 5 s).
	Interval time.Duration
	// Timeout is how long a node's agent may stay silent before the node
	// is disconnected: it takes no new work, its work keeps running
	// (default 20 s).
	Timeout time.Duration
	// Window is how long a node may stay disconnected, counted from its
	// last heartbeat, before it is marked down and its work rescheduled;
	// the agent kills its own tasks once it has not reached a server for
	// that long, so a task never runs twice for long (default 5 min).
	Window time.Duration
	// Windows overrides Window by pool name, then by pool kind ("outposts":
	// a rack that may lose its region link for an hour keeps its work).
	Windows map[string]time.Duration
	// Grace is how long a task that is no longer given to its node (a
	// preemption, a drain, a requeue) has between SIGTERM and SIGKILL, so
	// that training can write a checkpoint; a cancelled job's tasks are
	// killed at once (default 30 s).
	Grace time.Duration
}

// DefaultLiveness is the liveness of a server whose config sets none.
var DefaultLiveness = Liveness{
	Interval: 5 * time.Second, Timeout: 20 * time.Second, Window: 5 * time.Minute,
	Windows: map[string]time.Duration{scheduler.PoolOutposts.String(): time.Hour},
	Grace:   30 * time.Second,
}

// withDefaults fills what l leaves zero.
func (l Liveness) withDefaults() Liveness {
	d := DefaultLiveness
	if l.Interval > 0 {
		d.Interval = l.Interval
	}
	if l.Timeout > 0 {
		d.Timeout = l.Timeout
	}
	if l.Window > 0 {
		d.Window = l.Window
	}
	if l.Windows != nil {
		d.Windows = maps.Clone(d.Windows)
		maps.Copy(d.Windows, l.Windows)
	}
	if l.Grace > 0 {
		d.Grace = l.Grace
	}
	return d
}

// Check refuses settings under which a node would be down before it is
// disconnected, or disconnected between two heartbeats.
func (l Liveness) Check() error {
	l = l.withDefaults()
	if l.Timeout <= l.Interval {
		return fmt.Errorf("heartbeat timeout %s must be longer than the heartbeat interval %s", l.Timeout, l.Interval)
	}
	for name, w := range l.Windows {
		if w <= l.Timeout {
			return fmt.Errorf("disconnect window of %s (%s) must be longer than the heartbeat timeout %s", name, w, l.Timeout)
		}
	}
	if l.Window <= l.Timeout {
		return fmt.Errorf("disconnect window %s must be longer than the heartbeat timeout %s", l.Window, l.Timeout)
	}
	return nil
}

// window is the disconnect window of a pool.
func (l *Liveness) window(p scheduler.Pool) time.Duration {
	if w, ok := l.Windows[p.Name]; ok {
		return w
	}
	if w, ok := l.Windows[p.Kind.String()]; ok {
		return w
	}
	return l.Window
}

// The agent protocol: an agent registers its node, then heartbeats with
// the tasks it runs; each answer gives the tasks the committed state
// places on the node. See docs/agent.md.

// AgentRegistration is what an agent sends when it starts.
type AgentRegistration struct {
	// Node is the node as the agent's inventory makes it (nvml.Register).
	Node scheduler.Node `json:"node"`
	// Devices[i] is the UUID of Node.GPUs[i].
	Devices []string `json:"devices"`
	// Addr is the agent's HTTP base URL, where the servers read task logs.
	Addr string `json:"addr,omitempty"`
	// Check asks what a registration would find, changing nothing: the
	// node's state and tasks, or why it would be refused (`petite agent
	// --once`).
	Check bool `json:"check,omitempty"`
	// Unhealthy are the GPUs the agent finds unhealthy (as in Heartbeat).
	Unhealthy []GPUHealth `json:"unhealthy,omitempty"`
}

// Task states an agent reports.
const (
	TaskRunning  = "running"  // the process runs
	TaskStopping = "stopping" // SIGTERM sent, waiting for it to exit
	TaskExited   = "exited"   // the process ended; ExitCode says how
	TaskStopped  = "stopped"  // ended by the agent (a stop order, its lease): no finish
)

// TaskKey names one run of a task: a job's task index, the job's requeue
// count when it was placed, and the raft index of the plan that placed it
// (Alloc): a task placed again, even on the same node and with the same
// requeue count (a service's replica), is a new run, and a report of an
// old run never ends a new one.
type TaskKey struct {
	Job   string `json:"job"`
	Task  int    `json:"task"`
	Gen   int    `json:"gen"`
	Alloc uint64 `json:"alloc,omitempty"`
}

// String is job/task.gen@alloc.
func (k TaskKey) String() string { return fmt.Sprintf("%s/%d.%d@%d", k.Job, k.Task, k.Gen, k.Alloc) }

// TaskReport is one task an agent holds.
type TaskReport struct {
	TaskKey
	State string `json:"state"`
	// ExitCode is the exit status of an exited task: 0 succeeded; a
	// signal's number plus 128 when one ended it; -1 when unknown (the
	// supervisor itself was killed).
	ExitCode int `json:"exit_code,omitempty"`
}

// Heartbeat is what an agent sends every interval, and at once when a
// task exits.
type Heartbeat struct {
	Tasks []TaskReport `json:"tasks"`
	// Unhealthy are the node's GPUs NVML reports unhealthy now: the
	// servers record them in the agent record when they change.
	Unhealthy []GPUHealth `json:"unhealthy,omitempty"`
}

// Assignment is a task the committed state places on the node.
type Assignment struct {
	TaskKey
	// Devices are the UUIDs of the task's devices (empty for a task
	// without GPUs); GPUs their indexes on the node.
	Devices []string `json:"devices,omitempty"`
	GPUs    []int    `json:"gpus,omitempty"`
	// Command is the task's command line.
	Command []string `json:"command"`
}

// StopOrder tells an agent to stop a task it reported: SIGTERM, then
// SIGKILL after Grace (zero: SIGKILL at once, a cancelled job).
type StopOrder struct {
	TaskKey
	GraceMS int64 `json:"grace_ms"`
}

// AgentAnswer answers a registration and every heartbeat.
type AgentAnswer struct {
	// NodeState is the node's state after the call.
	NodeState string `json:"node_state"`
	// Tasks are what the node must run; the agent starts those it lacks.
	Tasks []Assignment `json:"tasks"`
	// Stop are reported tasks no longer given: the agent stops them. A
	// task the agent holds that is neither in Tasks nor in Stop is
	// stopped with GraceMS.
	Stop []StopOrder `json:"stop,omitempty"`
	// Acked are the exited tasks whose end the state machine has taken:
	// the agent stops reporting them.
	Acked []TaskKey `json:"acked,omitempty"`
	// IntervalMS is how often to heartbeat; WindowMS the node's
	// disconnect window (the agent's lease: past it without a server, it
	// kills its tasks); GraceMS the default grace of a stop.
	IntervalMS int64 `json:"interval_ms"`
	WindowMS   int64 `json:"window_ms"`
	GraceMS    int64 `json:"grace_ms"`
}

// agentWatch is the leader's record of when it last heard from each agent.
// It lives only on the leader: a new leader grants every agent a fresh
// deadline.
type agentWatch struct {
	mu     sync.Mutex
	seen   map[string]time.Time // node -> last heartbeat or registration
	active bool                 // the leader's watch has started (after its barrier)
	term   uint64               // counts the watches started, so a late end clears only its own
	ring   func(node, addr string)
}

// SetDoorbell sets how the leader tells a node's agent, at addr, that the
// tasks the state places on its node changed, so that it heartbeats now
// rather than at its next interval (the API rings over HTTP). The agent
// learns what changed from that heartbeat's answer, so a lost ring costs
// only time.
func (s *Server) SetDoorbell(ring func(node, addr string)) {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	s.watch.ring = ring
}

func (w *agentWatch) heard(node string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]time.Time{}
	}
	w.seen[node] = at
}

func (w *agentWatch) isActive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.active
}

// liveness returns the server's liveness settings, defaults filled.
func (s *Server) liveness() Liveness { return s.cfg.Liveness.withDefaults() }

// RegisterAgent records a node's agent and makes the node ready: a node
// new to the cluster is registered; a known one must have the devices the
// agent found, in the same order. A node an admin drains stays draining;
// a retired node is refused.
func (s *Server) RegisterAgent(ctx context.Context, reg AgentRegistration) (AgentAnswer, error) {
	if !s.watch.isActive() {
		return AgentAnswer{}, fmt.Errorf("%w: agents are served once the leader has taken office", ErrNotLeader)
	}
	n := &reg.Node
	if n.Name == "" {
		return AgentAnswer{}, fmt.Errorf("%w: field node.name: empty", ErrAgentRefused)
	}
	if len(reg.Devices) != len(n.GPUs) {
		return AgentAnswer{}, fmt.Errorf("%w: field devices: %d UUIDs for %d GPU devices", ErrAgentRefused, len(reg.Devices), len(n.GPUs))
	}
	var cmd state.Command
	var refused string
	s.fsm.Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		v := m.Cluster()
		id, ok := v.NodeByName(n.Name)
		if !ok {
			cmd = state.RegisterNode{Node: *n}
			return
		}
		have := v.Node(id)
		if refused = sameDevices(&have, n); refused != "" {
			return
		}
		switch have.State {
		case scheduler.NodeRetired:
			refused = fmt.Sprintf("node %s is retired", n.Name)
		case scheduler.NodeDown, scheduler.NodeDisconnected:
			cmd = state.SetNodeState{Node: n.Name, State: scheduler.NodeReady, At: s.Now()}
		}
	})
	if refused != "" {
		return AgentAnswer{}, fmt.Errorf("%w: %s", ErrAgentRefused, refused)
	}
	if reg.Check {
		return s.checkAgent(reg)
	}
	rec := AgentRecord{Node: n.Name, Addr: reg.Addr, Devices: reg.Devices}
	if old, ok := s.fsm.Agent(n.Name); ok && slices.Equal(old.Devices, rec.Devices) {
		rec.Unhealthy = old.Unhealthy // the heartbeat below updates it
	}
	if old, ok := s.fsm.Agent(n.Name); !ok || old.Addr != rec.Addr || !slices.Equal(old.Devices, rec.Devices) {
		entry, err := marshalAgent(rec)
		if err != nil {
			return AgentAnswer{}, err
		}
		if _, err := s.apply(ctx, entry); err != nil {
			return AgentAnswer{}, fmt.Errorf("record agent of %s: %w", n.Name, err)
		}
	}
	s.watch.heard(n.Name, time.Now())
	if cmd != nil {
		if _, err := s.Apply(ctx, cmd); err != nil {
			if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrCommit) {
				return AgentAnswer{}, err
			}
			return AgentAnswer{}, fmt.Errorf("%w: %w", ErrAgentRefused, err)
		}
		s.log.Info("agent registered", "node", n.Name, "command", cmd.Type())
	}
	return s.Heartbeat(ctx, n.Name, Heartbeat{Unhealthy: reg.Unhealthy})
}

// checkAgent answers a registration made to check a node's setup: what a
// registration would find, changing nothing (no record, no node).
func (s *Server) checkAgent(reg AgentRegistration) (AgentAnswer, error) {
	live := s.liveness()
	ans := AgentAnswer{NodeState: "unregistered", Tasks: []Assignment{}, IntervalMS: live.Interval.Milliseconds(), GraceMS: live.Grace.Milliseconds()}
	var refused string
	s.fsm.Read(func(m *state.Machine, recs map[string]JobRecord, index uint64) {
		v := m.Cluster()
		if id, ok := v.NodeByName(reg.Node.Name); ok {
			ans.NodeState = v.Node(id).State.String()
			ans.WindowMS = live.window(v.PoolOf(id)).Milliseconds()
			ans.Tasks = append(ans.Tasks, s.placed.of(m, recs, index, reg.Node.Name)...)
			return
		}
		for _, p := range v.Pools() {
			if p.Name == reg.Node.Pool {
				ans.WindowMS = live.window(p).Milliseconds()
				return
			}
		}
		refused = fmt.Sprintf("node %s: pool %q does not exist", reg.Node.Name, reg.Node.Pool)
	})
	if refused != "" {
		return AgentAnswer{}, fmt.Errorf("%w: %s", ErrAgentRefused, refused)
	}
	return ans, nil
}

// Heartbeat takes an agent's report: the node is alive (a disconnected or
// down node is ready again), the tasks it reports exited end through the
// state machine's Finish, and the answer gives the tasks the committed
// state places on the node and the reported ones to stop.
func (s *Server) Heartbeat(ctx context.Context, node string, hb Heartbeat) (AgentAnswer, error) {
	if !s.watch.isActive() {
		return AgentAnswer{}, fmt.Errorf("%w: agents are served once the leader has taken office", ErrNotLeader)
	}
	rec, ok := s.fsm.Agent(node)
	if !ok {
		return AgentAnswer{}, fmt.Errorf("node %s: %w", node, ErrUnknownAgent)
	}
	s.watch.heard(node, time.Now())
	live := s.liveness()
	now := s.Now()
	if err := s.recordHealth(ctx, rec, hb.Unhealthy); err != nil {
		return AgentAnswer{}, err
	}

	var cmds []state.Command
	var acked []TaskKey
	var nodeState scheduler.NodeState
	s.fsm.Read(func(m *state.Machine, recs map[string]JobRecord, _ uint64) {
		id, ok := m.Cluster().NodeByName(node)
		if !ok {
			return
		}
		nodeState = m.Cluster().Node(id).State
		if nodeState == scheduler.NodeDisconnected || nodeState == scheduler.NodeDown {
			cmds = append(cmds, state.SetNodeState{Node: node, State: scheduler.NodeReady, At: now})
		}
		for _, t := range hb.Tasks {
			if t.State != TaskExited && t.State != TaskStopped {
				continue
			}
			acked = append(acked, t.TaskKey)
			if t.State == TaskExited && placedHere(m, recs, t.TaskKey, node) {
				cmds = append(cmds, state.Finish{Job: t.Job, Tasks: []int{t.Task}, Failed: t.ExitCode != 0, At: now})
			}
		}
	})
	if len(cmds) > 0 {
		// Each command stands alone: a finish the machine refuses (the
		// task ended meanwhile) does not hold back the others.
		if err := s.ApplyBatch(ctx, cmds); err != nil && (errors.Is(err, ErrNotLeader) || errors.Is(err, ErrCommit)) {
			return AgentAnswer{}, err
		}
	}

	ans := AgentAnswer{
		Acked:      acked,
		IntervalMS: live.Interval.Milliseconds(),
		GraceMS:    live.Grace.Milliseconds(),
		Tasks:      []Assignment{},
	}
	s.fsm.Read(func(m *state.Machine, recs map[string]JobRecord, index uint64) {
		v := m.Cluster()
		id, ok := v.NodeByName(node)
		if !ok {
			ans.NodeState = "unknown"
			return
		}
		ans.NodeState = v.Node(id).State.String()
		ans.WindowMS = live.window(v.PoolOf(id)).Milliseconds()
		given := map[TaskKey]bool{}
		for _, a := range s.placed.of(m, recs, index, node) {
			a.Devices = make([]string, 0, len(a.GPUs))
			for _, g := range a.GPUs {
				if g >= 0 && g < len(rec.Devices) {
					a.Devices = append(a.Devices, rec.Devices[g])
				}
			}
			ans.Tasks = append(ans.Tasks, a)
			given[a.TaskKey] = true
		}
		for _, t := range hb.Tasks {
			if t.State == TaskExited || t.State == TaskStopped || given[t.TaskKey] {
				continue
			}
			stop := StopOrder{TaskKey: t.TaskKey, GraceMS: ans.GraceMS}
			if info, ok := m.Job(t.Job); !ok || info.Status.Ended() {
				// Cancelled, or a gang whose other task failed, or
				// forgotten: killed at once. A preempted, drained or
				// requeued job has its grace to checkpoint.
				stop.GraceMS = 0
			}
			ans.Stop = append(ans.Stop, stop)
		}
	})
	return ans, nil
}

// placements indexes the committed state's tasks by node, rebuilt when
// the state has moved on: heartbeats between two changes share one scan of
// the running jobs instead of one each.
type placements struct {
	mu     sync.Mutex
	m      *state.Machine
	index  uint64
	byNode map[string][]Assignment // Devices left empty: the agent record has them
}

// of returns the tasks the state places on a node (shared: read-only).
// The caller holds the FSM's lock.
func (p *placements) of(m *state.Machine, recs map[string]JobRecord, index uint64, node string) []Assignment {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byNode == nil || p.m != m || p.index != index {
		p.m, p.index = m, index
		p.byNode = map[string][]Assignment{}
		for _, rj := range m.Running() {
			info, _ := m.Job(rj.Job.ID)
			cmd := recs[rj.Job.ID].Command
			for _, tp := range rj.Tasks {
				p.byNode[tp.Node] = append(p.byNode[tp.Node], Assignment{
					TaskKey: TaskKey{Job: rj.Job.ID, Task: tp.Task, Gen: info.Requeues, Alloc: recs[rj.Job.ID].placedAt(tp.Task)},
					GPUs:    tp.GPUs, Command: cmd,
				})
			}
		}
	}
	return p.byNode[node]
}

// all returns the tasks of every node (shared: read-only). The caller
// holds the FSM's lock.
func (p *placements) all(m *state.Machine, recs map[string]JobRecord, index uint64) map[string][]Assignment {
	p.of(m, recs, index, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byNode
}

// placedHere says whether the committed state places this run of a task
// on the node.
func placedHere(m *state.Machine, recs map[string]JobRecord, k TaskKey, node string) bool {
	info, ok := m.Job(k.Job)
	if !ok || info.Status != state.Running || info.Requeues != k.Gen || recs[k.Job].placedAt(k.Task) != k.Alloc {
		return false
	}
	for _, tp := range info.Tasks {
		if tp.Task == k.Task {
			return tp.Node == node
		}
	}
	return false
}

// watchAgents runs on the leader while it leads: it grants every agent a
// fresh deadline, then disconnects the nodes whose agent is silent past the
// heartbeat timeout and marks down those silent past their disconnect
// window (their work is rescheduled).
func (s *Server) watchAgents(ctx context.Context) {
	live := s.liveness()
	start := time.Now()
	s.watch.mu.Lock()
	s.watch.seen = map[string]time.Time{}
	for _, n := range s.fsm.Agents() {
		s.watch.seen[n] = start
	}
	s.watch.active = true
	s.watch.term++
	term := s.watch.term
	s.watch.mu.Unlock()
	defer func() {
		s.watch.mu.Lock()
		if s.watch.term == term { // not a newer term's watch
			s.watch.active = false
		}
		s.watch.mu.Unlock()
	}()
	tick := time.NewTicker(min(max(live.Timeout/5, 5*time.Millisecond), time.Second))
	defer tick.Stop()
	bell := time.NewTicker(doorbellPoll)
	defer bell.Stop()
	var rung ringState
	for {
		select {
		case <-ctx.Done():
			return
		case <-bell.C:
			s.ringChanged(&rung)
			continue
		case <-tick.C:
		}
		if cmds := s.silentAgents(live, time.Now()); len(cmds) > 0 {
			if err := s.ApplyBatch(ctx, cmds); err != nil {
				s.log.Warn("agent liveness", "server", s.cfg.ID, "err", err)
			}
		}
	}
}

// doorbellPoll is how often the leader looks for nodes whose tasks changed.
const doorbellPoll = 20 * time.Millisecond

// ringState is what the leader last rang agents for: the state version and
// each node's tasks then.
type ringState struct {
	m     *state.Machine
	index uint64
	tasks map[string]string // node -> its task runs, as text
}

// ringChanged rings the agents of the nodes whose tasks changed since the
// last call: a task placed, stopped, requeued or cancelled.
func (s *Server) ringChanged(r *ringState) {
	s.watch.mu.Lock()
	ring := s.watch.ring
	s.watch.mu.Unlock()
	if ring == nil {
		return
	}
	var changed []string
	s.fsm.Read(func(m *state.Machine, recs map[string]JobRecord, index uint64) {
		if m == r.m && index == r.index {
			return
		}
		r.m, r.index = m, index
		now := make(map[string]string, len(r.tasks))
		var b strings.Builder
		for node, as := range s.placed.all(m, recs, index) {
			b.Reset()
			for _, a := range as {
				b.WriteString(a.TaskKey.String())
				b.WriteByte(' ')
			}
			now[node] = b.String()
		}
		for node, t := range now {
			if r.tasks[node] != t {
				changed = append(changed, node)
			}
		}
		for node := range r.tasks {
			if _, ok := now[node]; !ok {
				changed = append(changed, node)
			}
		}
		r.tasks = now
	})
	for _, node := range changed {
		if rec, ok := s.fsm.Agent(node); ok && rec.Addr != "" {
			go ring(node, rec.Addr)
		}
	}
}

// silentAgents returns the node state changes that silence calls for.
func (s *Server) silentAgents(live Liveness, now time.Time) []state.Command {
	agents := s.fsm.Agents()
	s.watch.mu.Lock()
	age := make(map[string]time.Duration, len(agents))
	for _, n := range agents {
		t, ok := s.watch.seen[n]
		if !ok {
			// Registered through another leader a moment ago: a fresh
			// deadline, as for every agent when this leader took office.
			s.watch.seen[n], t = now, now
		}
		age[n] = now.Sub(t)
	}
	s.watch.mu.Unlock()

	var cmds []state.Command
	at := s.Now()
	s.fsm.Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		v := m.Cluster()
		for _, n := range agents {
			id, ok := v.NodeByName(n)
			if !ok {
				continue
			}
			st := v.Node(id).State
			switch a := age[n]; {
			case a > live.window(v.PoolOf(id)) && st != scheduler.NodeDown && st != scheduler.NodeRetired:
				s.log.Warn("agent silent past its disconnect window: node down, its work rescheduled", "node", n, "silent", a.Round(time.Millisecond))
				cmds = append(cmds, state.SetNodeState{Node: n, State: scheduler.NodeDown, At: at})
			case a > live.Timeout && st == scheduler.NodeReady:
				s.log.Warn("agent missed its heartbeat deadline: node disconnected", "node", n, "silent", a.Round(time.Millisecond))
				cmds = append(cmds, state.SetNodeState{Node: n, State: scheduler.NodeDisconnected, At: at})
			}
		}
	})
	return cmds
}

// ParseWindows reads NAME=DURATION pairs, NAME a pool's name or kind, into
// Liveness.Windows.
func ParseWindows(pairs []string) (map[string]time.Duration, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]time.Duration{}
	for _, p := range pairs {
		name, dur, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("disconnect window %q: want POOL=DURATION (a pool's name or kind)", p)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("disconnect window %q: want a positive duration such as 30m", p)
		}
		out[name] = d
	}
	return out, nil
}
