package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"petite/scheduler"
	"petite/scheduler/state"
)

// retryPause is the wait before planning again after a refused plan.
const retryPause = 20 * time.Millisecond

// leaderLoop waits for leadership and, while it lasts, runs lead.
func (s *Server) leaderLoop() {
	defer close(s.done)
	var cancel context.CancelFunc = func() {}
	leading := make(chan struct{}) // closed when lead returns
	close(leading)
	for {
		select {
		case <-s.stop:
			cancel()
			<-leading
			return
		case isLeader := <-s.raft.LeaderCh():
			cancel()
			<-leading
			if !isLeader {
				continue
			}
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			leading = make(chan struct{})
			go func(done chan struct{}) {
				defer close(done)
				s.lead(ctx)
			}(leading)
		}
	}
}

// lead is the leader's work: make sure its own entries are applied,
// record its HTTP address, register the fleet of a new cluster, then run a
// scheduling pass each time something changed.
func (s *Server) lead(ctx context.Context) {
	log := s.log.With("server", s.cfg.ID)
	log.Info("leading")
	// The barrier applies every entry of earlier terms here before the
	// leader reads the state. The fleet of a new cluster goes in before
	// the leader's address: servers count as ready (Ready, /v1/health) once
	// they know that address, so a ready cluster has its nodes. Both are
	// retried while the leadership lasts (a slow disk, a full queue).
	if !s.retry(ctx, "leader barrier", s.Barrier) {
		return
	}
	if err := s.registerFleet(ctx); err != nil {
		log.Error("register fleet", "err", err)
	}
	if !s.retry(ctx, "record address", s.recordAddress) {
		return
	}
	go s.watchAgents(ctx) // agents' heartbeats (liveness.go)
	if s.cfg.NoScheduling {
		<-ctx.Done()
		return
	}
	wait := s.startDrain(ctx) // drain.go: work off draining nodes, retirement dates
	defer wait()
	var pl planner
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))
	s.fsm.signal() // a pass on taking office: the old leader may have left work queued
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.fsm.Changed():
		}
		if s.cfg.Coalesce > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.cfg.Coalesce):
			}
		}
		err := s.pass(ctx, &pl, rng)
		switch {
		case errors.Is(err, ErrNotLeader), ctx.Err() != nil:
			return
		case err != nil:
			// A plan refused as stale: plan again on the newer state, after
			// a pause so that a plan refused for another reason does not
			// spin.
			log.Info("scheduling pass", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryPause):
			}
			s.fsm.signal()
		}
	}
}

// retry calls fn until it succeeds or ctx ends, and reports which.
func (s *Server) retry(ctx context.Context, what string, fn func(context.Context) error) bool {
	for {
		err := fn(ctx)
		if err == nil {
			return true
		}
		s.log.Warn(what, "server", s.cfg.ID, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(retryPause):
		}
	}
}

// recordAddress writes the leader's HTTP address into the log, unless it
// is already there, so followers can forward to it. A server without an
// API records an empty address: the record also tells every server that
// this leader took office (Ready waits for it).
func (s *Server) recordAddress(ctx context.Context) error {
	if a, ok := s.fsm.ServerHTTP(s.cfg.ID); ok && a == s.cfg.HTTPAddr {
		return nil
	}
	entry, err := marshalEntry(entryServer, ServerInfo{ID: s.cfg.ID, HTTP: s.cfg.HTTPAddr})
	if err != nil {
		return err
	}
	_, err = s.apply(ctx, entry)
	return err
}

// registerFleet registers the configured pools and nodes, as one log
// entry, when the cluster has no node yet.
func (s *Server) registerFleet(ctx context.Context) error {
	var empty bool
	s.fsm.Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		empty = m.Cluster().NumNodes() == 0 && len(m.Cluster().Pools()) == 0
	})
	if !empty || len(s.cfg.Nodes) == 0 {
		return nil
	}
	cmds := make([]state.Command, 0, len(s.cfg.Pools)+len(s.cfg.Nodes))
	for _, p := range s.cfg.Pools {
		cmds = append(cmds, state.RegisterPool{Pool: p})
	}
	for _, n := range s.cfg.Nodes {
		cmds = append(cmds, state.RegisterNode{Node: n})
	}
	entry, err := encodeBatch(cmds)
	if err != nil {
		return err
	}
	if _, err := s.apply(ctx, entry); err != nil {
		return fmt.Errorf("%d pools, %d nodes: %w", len(s.cfg.Pools), len(s.cfg.Nodes), err)
	}
	s.log.Info("fleet registered", "pools", len(s.cfg.Pools), "nodes", len(s.cfg.Nodes))
	return nil
}

// pass runs one scheduling pass on a frozen copy of the state, refrozen
// under the FSM's lock at the cost of what changed, planned outside it
// while the log applies, and commits the plan as one log entry. The state
// machine checks the plan again when it applies it: a plan made on a state
// that has moved on since is refused whole if it no longer fits.
func (s *Server) pass(ctx context.Context, pl *planner, rng *rand.Rand) error {
	s.fsm.Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		if pl.frozen == nil || pl.machine != m {
			// A restored snapshot replaced the machine: start afresh.
			pl.frozen, pl.machine, pl.policy = m.Freeze(), m, nil
		} else {
			m.Refreeze(pl.frozen)
		}
	})
	s.stats.passes.Add(1)
	if len(pl.frozen.Pending()) == 0 && !underReplicated(pl.frozen) {
		s.setUnplaced(nil)
		return nil
	}
	now := s.Now()
	began := time.Now()
	plan, err := pl.schedule(s.cfg.Policy, now, rng)
	if err != nil {
		return err
	}
	s.observe().Planned(time.Since(began))
	s.setUnplaced(plan.Unplaced)
	if len(plan.Place) == 0 && len(plan.Evict) == 0 {
		return nil
	}
	return s.commitPlan(ctx, plan, now)
}

// DefaultPlanEntry is the most task placements a plan's log entry carries
// unless Config.PlanEntry says otherwise. An entry of 1,000 placements is
// about 85 KB, committed and applied in 2-3 ms (BenchmarkRaftCommit, whose
// batched shape is this one: the commit latency of a placement), so that
// a pass placing a queue of tens of thousands does not hold every
// server's state machine lock for tens of milliseconds at a time, keeping
// heartbeats and reads waiting behind it. Larger entries commit a little
// more a second for a longer wait each (2,000: 10-15% less CPU per
// placement, a p50 of 4.2-4.7 ms instead of 2.5-3.3 on a shared 2-core
// machine).
const DefaultPlanEntry = 1000

// commitPlan commits a pass's plan as log entries of at most PlanEntry
// task placements, one entry at a time: each is checked against the state
// the ones before it left, as one whole plan would have been, so a GPU is
// never given twice. The evictions go with the first entry, before any
// placement that may need their room. An entry refused (the state moved
// on) stops the rest; what went before stays, and the next pass plans the
// remainder on the newer state.
func (s *Server) commitPlan(ctx context.Context, plan scheduler.Plan, now int64) error {
	parts := splitPlan(plan, cmp.Or(s.cfg.PlanEntry, DefaultPlanEntry))
	for i := range parts {
		began := time.Now()
		_, err := s.Apply(ctx, state.PlanCommand(parts[i], now))
		s.observe().Committed(time.Since(began), &parts[i], err)
		if err != nil {
			s.stats.refused.Add(1)
			return fmt.Errorf("plan of %d placements, entry %d of %d: %w", len(plan.Place), i+1, len(parts), err)
		}
		s.stats.plans.Add(1)
	}
	return nil
}

// splitPlan cuts a plan into plans of at most per task placements each (a
// job's placement is never cut: one larger than per goes alone), in order,
// the evictions in the first. The parts share the plan's arrays.
func splitPlan(plan scheduler.Plan, per int) []scheduler.Plan {
	var parts []scheduler.Plan
	lo, tasks := 0, 0
	for i, jp := range plan.Place {
		if i > lo && tasks+len(jp.Tasks) > per {
			parts = append(parts, scheduler.Plan{Place: plan.Place[lo:i:i]})
			lo, tasks = i, 0
		}
		tasks += len(jp.Tasks)
	}
	if n := len(plan.Place); lo < n || len(parts) == 0 {
		parts = append(parts, scheduler.Plan{Place: plan.Place[lo:n:n]})
	}
	parts[0].Evict = plan.Evict
	return parts
}

// planner is the leader's frozen copy of the state and the policy built
// for it, kept from pass to pass so that its score indexes stay warm.
type planner struct {
	machine *state.Machine
	frozen  *state.Frozen
	policy  *scheduler.Policy
	nodes   int // the fleet size the policy was built for
}

func (pl *planner) schedule(policy string, now int64, rng *rand.Rand) (scheduler.Plan, error) {
	v := pl.frozen.Cluster()
	if pl.policy == nil || pl.nodes != v.NumNodes() {
		p, err := v.NewPolicy(policy, scheduler.Options{})
		if err != nil {
			return scheduler.Plan{}, fmt.Errorf("policy: %w", err)
		}
		pl.policy, pl.nodes = p, v.NumNodes()
	}
	return schedule(pl.frozen, pl.policy, now, rng)
}

// underReplicated reports whether a running job misses tasks a pass may
// place again (a service's lost replicas).
func underReplicated(f *state.Frozen) bool {
	for _, r := range f.Running() {
		if r.Job.Kind == scheduler.Inference && len(r.Tasks) < r.Job.Count {
			return true
		}
	}
	return false
}

// Schedule runs one scheduling pass of the named policy on a frozen
// state, as the leader does: the dry run of a plan.
func Schedule(f *state.Frozen, policy string, now int64, rng *rand.Rand) (scheduler.Plan, error) {
	pol, err := f.Cluster().NewPolicy(policy, scheduler.Options{})
	if err != nil {
		return scheduler.Plan{}, fmt.Errorf("policy: %w", err)
	}
	return schedule(f, pol, now, rng)
}

func schedule(f *state.Frozen, pol *scheduler.Policy, now int64, rng *rand.Rand) (scheduler.Plan, error) {
	plan, err := f.Schedule(scheduler.Pass{Now: now, Policy: pol, Rng: rng, Backfill: true, Preempt: true})
	if err != nil {
		return scheduler.Plan{}, fmt.Errorf("scheduling pass: %w", err)
	}
	return plan, nil
}

func (s *Server) setUnplaced(us []scheduler.Unplaced) {
	m := make(map[string]scheduler.Unplaced, len(us))
	for _, u := range us {
		m[u.Job] = u
	}
	s.mu.Lock()
	s.unplaced = m
	s.mu.Unlock()
}
