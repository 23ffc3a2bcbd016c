package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"petite/scheduler"
	"petite/scheduler/state"
)

// Drain sets how the leader moves work off draining nodes and retires
// pools on their date.
type Drain struct {
	// Deadline is how long a node may drain before the work still on it
	// is evicted (0: no deadline; work leaves only as it can be moved).
	Deadline time.Duration
	// RetireLead is how long before a retirement date (a pool's
	// retire_at, a node's own) the nodes start draining (default 72 h).
	RetireLead time.Duration
	// Interval is how often the leader looks at draining nodes and
	// retirement dates (default 1 s).
	Interval time.Duration
}

// DefaultRetireLead is the lead time of a Drain that sets none.
const DefaultRetireLead = 72 * time.Hour

func (d Drain) withDefaults() Drain {
	if d.RetireLead <= 0 {
		d.RetireLead = DefaultRetireLead
	}
	if d.Interval <= 0 {
		d.Interval = time.Second
	}
	return d
}

// startDrain runs the drain loop beside the leader's scheduling loop while
// ctx lasts; the function it returns waits for the loop's end.
func (s *Server) startDrain(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.drainLoop(ctx)
	}()
	return wg.Wait
}

// drainLoop, on the leader, retires pools on their date and moves work off
// draining nodes, every Drain.Interval. Everything it does is a state
// command through the log (SetNodeState, ApplyPlan), checked by the state
// machine like any plan: a move made on a state that changed since is
// refused whole and tried again on the next round.
func (s *Server) drainLoop(ctx context.Context) {
	d := s.cfg.Drain.withDefaults()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0xd7a1))
	since := map[string]int64{} // node -> when this leader first saw it draining
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.drainRound(ctx, d, since, rng); err != nil {
			if errors.Is(err, ErrNotLeader) || ctx.Err() != nil {
				return
			}
			s.log.Info("drain", "server", s.cfg.ID, "err", err)
		}
	}
}

// move is a running job with tasks on draining nodes: what to evict (a
// gang whole, a service's replicas there) and whether a deadline passed.
type move struct {
	ev      scheduler.Eviction
	kind    scheduler.JobKind
	expired bool
}

// drainRound does one round: retirement dates first, then one plan that
// moves what can be placed elsewhere and evicts what outstayed a deadline.
func (s *Server) drainRound(ctx context.Context, d Drain, since map[string]int64, rng *rand.Rand) error {
	now := s.Now()
	var retire []state.Command
	var moves []move
	var snap bytes.Buffer
	var snapErr error
	s.fsm.Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		v := m.Cluster()
		retire = retirements(v, s.fsm.retire, now, int64(d.RetireLead/time.Second)) // Read holds the FSM's lock
		draining := map[string]bool{}
		for i := range v.NumNodes() {
			if n := v.Node(scheduler.NodeID(i)); n.State == scheduler.NodeDraining {
				draining[n.Name] = true
				if _, ok := since[n.Name]; !ok {
					since[n.Name] = now
				}
			}
		}
		for name := range since {
			if !draining[name] {
				delete(since, name)
			}
		}
		deadline := int64(d.Deadline / time.Second)
		for _, rj := range m.Running() {
			mv := move{ev: scheduler.Eviction{Job: rj.Job.ID}, kind: rj.Job.Kind}
			for _, tp := range rj.Tasks {
				if !draining[tp.Node] {
					continue
				}
				mv.ev.Tasks = append(mv.ev.Tasks, tp.Task)
				mv.ev.Seen = append(mv.ev.Seen, tp)
				mv.expired = mv.expired || d.Deadline > 0 && now-since[tp.Node] >= deadline
			}
			if len(mv.ev.Tasks) == 0 {
				continue
			}
			if rj.Job.Kind == scheduler.Training {
				// A gang leaves whole: evicted everywhere, requeued, placed
				// again (it resumes from its checkpoint).
				mv.ev.Tasks, mv.ev.Seen = nil, slices.Clone(rj.Tasks)
			}
			moves = append(moves, mv)
		}
		if len(moves) > 0 {
			snapErr = m.Snapshot(&snap)
		}
	})
	if len(retire) > 0 {
		if err := s.ApplyBatch(ctx, retire); err != nil {
			return fmt.Errorf("retire: %w", err)
		}
	}
	if len(moves) == 0 {
		return nil
	}
	if snapErr != nil {
		return fmt.Errorf("drain: %w", snapErr)
	}
	plan, err := s.drainPlan(&snap, moves, now, rng)
	if err != nil || (len(plan.Evict) == 0 && len(plan.Place) == 0) {
		return err
	}
	if _, err := s.Apply(ctx, plan); err != nil {
		return fmt.Errorf("drain plan of %d moves: %w", len(plan.Place), err)
	}
	return nil
}

// retirements are the node state changes the retirement dates ask for
// now: a node's own date (own, by name), else its pool's retire_at. A node
// drains from lead seconds before its date and retires on it.
func retirements(v scheduler.View, own map[string]int64, now, lead int64) []state.Command {
	var out []state.Command
	for i := range v.NumNodes() {
		id := scheduler.NodeID(i)
		n := v.Node(id)
		at, ok := own[n.Name]
		if !ok {
			at = v.PoolOf(id).RetireAt
		}
		if at <= 0 {
			continue
		}
		switch {
		case now >= at && n.State != scheduler.NodeRetired:
			out = append(out, state.SetNodeState{Node: n.Name, State: scheduler.NodeRetired, At: now})
		case now >= at-lead && n.State == scheduler.NodeReady:
			out = append(out, state.SetNodeState{Node: n.Name, State: scheduler.NodeDraining, At: now})
		}
	}
	return out
}

// drainPlan works out where the work on draining nodes can go: on a copy
// of the state, the work is evicted and a pass (no preemption: a move must
// not push other work out) places it; a job the pass placed is moved by
// evicting it and placing it there in one plan, so a service never runs
// fewer replicas than it did, and a gang restarts at once. A job the pass
// could not place stays until there is room, or until its node's deadline,
// when it is evicted all the same.
func (s *Server) drainPlan(snap *bytes.Buffer, moves []move, now int64, rng *rand.Rand) (state.ApplyPlan, error) {
	m, err := state.Restore(snap)
	if err != nil {
		return state.ApplyPlan{}, fmt.Errorf("drain: copy the state: %w", err)
	}
	for _, mv := range moves {
		if _, err := m.Apply(state.Preempt{Job: mv.ev.Job, Tasks: mv.ev.Tasks, At: now}); err != nil {
			return state.ApplyPlan{}, fmt.Errorf("drain: %w", err)
		}
	}
	f := m.Freeze()
	pol, err := f.Cluster().NewPolicy(s.cfg.Policy, scheduler.Options{})
	if err != nil {
		return state.ApplyPlan{}, fmt.Errorf("drain: policy: %w", err)
	}
	p, err := f.Schedule(scheduler.Pass{Now: now, Policy: pol, Rng: rng})
	if err != nil {
		return state.ApplyPlan{}, fmt.Errorf("drain: scheduling pass: %w", err)
	}
	placed := map[string]scheduler.JobPlacement{}
	for _, jp := range p.Place {
		placed[jp.Job] = jp
	}
	out := state.ApplyPlan{At: now}
	for _, mv := range moves {
		jp, ok := placed[mv.ev.Job]
		ev := mv.ev
		if ok && mv.kind == scheduler.Inference {
			// Only the replicas that move, each placed elsewhere as it
			// leaves: a pass may also top the service up, which is the
			// scheduling loop's to do.
			jp.Tasks = slices.DeleteFunc(slices.Clone(jp.Tasks), func(tp scheduler.TaskPlacement) bool {
				return !slices.Contains(mv.ev.Tasks, tp.Task)
			})
			ok = len(jp.Tasks) > 0
			if ok && !mv.expired {
				ev.Tasks, ev.Seen = nil, nil
				for _, tp := range jp.Tasks {
					ev.Tasks = append(ev.Tasks, tp.Task)
				}
				for _, tp := range mv.ev.Seen {
					if slices.Contains(ev.Tasks, tp.Task) {
						ev.Seen = append(ev.Seen, tp)
					}
				}
			}
		}
		switch {
		case ok:
			out.Evict = append(out.Evict, ev)
			out.Place = append(out.Place, jp)
		case mv.expired:
			out.Evict = append(out.Evict, ev)
		}
	}
	return out, nil
}
