package replay

// Moving a tenant's live work to other pools during the run (a scenario's
// move with scope all).

import (
	"fmt"
	"slices"
	"strings"

	"petite/scheduler"
	"petite/scheduler/state"
)

// MoveEvent confines a tenant's live work to pools from a time on: its
// queued jobs are resubmitted with the constraint pool in (Pools), and its
// running jobs with a task outside them lose their place (training keeps
// its last checkpoint, a service all its replicas) and are resubmitted
// so. The state machine has no command that changes a queued job's
// constraints, so the driver cancels the job and submits it again under a
// new id with its first submission time: it keeps its place in the
// queue's order. Jobs submitted later are the caller's to constrain (a
// scenario adds the constraint to arrivals from At on).
type MoveEvent struct {
	At     int64
	Tenant string
	Pools  []string
}

// EventMove: a tenant's live work was confined to pools (ID is the
// tenant, State the pools, comma-separated); the requeues it causes follow
// at the same instant.
const EventMove EventKind = "move"

// pushMoves checks the move events and puts them on the heap.
func (e *engine) pushMoves() error {
	for i, mv := range e.cfg.MoveEvents {
		if len(mv.Pools) == 0 {
			return fmt.Errorf("move event %d: field pools: want the pools the work moves to", i)
		}
		for _, p := range mv.Pools {
			if _, ok := e.poolIdx[p]; !ok {
				return fmt.Errorf("move event %d: field pools: unknown pool %q", i, p)
			}
		}
		e.q.push(item{at: mv.At, phase: phaseNode, job: int32(i), move: true})
	}
	return nil
}

// moveEvent applies move event i at t; changed says whether the queue or
// the cluster changed.
func (e *engine) moveEvent(i int, t int64) (bool, error) {
	mv := &e.cfg.MoveEvents[i]
	e.emit(Event{At: t, Kind: EventMove, Job: -1, ID: mv.Tenant, State: strings.Join(mv.Pools, ",")})
	con := scheduler.Constraint{Key: "pool", Op: scheduler.OpIn, Values: slices.Clone(mv.Pools)}
	changed := false
	for k, sl := range e.slot { // the live jobs, in job order
		if sl < 0 {
			continue
		}
		j := e.live.at(int(sl))
		if j.rec.Tenant != mv.Tenant || (j.status != stQueued && j.status != stRunning) {
			continue
		}
		if e.cons == nil {
			e.cons = map[int][]scheduler.Constraint{}
		}
		e.cons[k] = append(slices.Clip(e.constraintsOf(k)), con)
		if j.status == stQueued {
			if err := e.resubmit(k, t); err != nil {
				return false, err
			}
			changed = true
			continue
		}
		// Running: it comes back confined whenever it loses its place
		// (requeued resubmits a stale job); now, if a task is outside.
		j.stale = true
		info, ok := e.m.Job(e.machineID(k))
		if !ok {
			return false, fmt.Errorf("replay: move: job %s runs but the state machine lost it", j.rec.ID)
		}
		if !slices.ContainsFunc(info.Tasks, func(tp scheduler.TaskPlacement) bool {
			return !slices.Contains(mv.Pools, e.cfg.Pools[e.poolOf[tp.Node]].Name)
		}) {
			continue
		}
		res, err := e.m.Apply(state.Preempt{Job: info.Job.ID, For: "move", At: seconds(t)})
		if err != nil {
			return false, fmt.Errorf("replay: move %s: %w", j.rec.ID, err)
		}
		if err := e.requeued(res.Requeued, t); err != nil {
			return false, err
		}
		if j.status != stQueued || j.stale {
			return false, fmt.Errorf("replay: move %s: evicted but not requeued", j.rec.ID)
		}
		changed = true
	}
	return changed, nil
}

// constraintsOf is job k's constraints as it is submitted now.
func (e *engine) constraintsOf(k int) []scheduler.Constraint {
	if c, ok := e.cons[k]; ok {
		return c
	}
	return e.job(k).src.Job.Task.Constraints // kept under moves (engine.keepSrc)
}

// resubmit cancels queued job k and submits it again with its
// constraints (engine.cons), under its next id, as of its first
// submission.
func (e *engine) resubmit(k int, t int64) error {
	j := e.job(k)
	if _, err := e.m.Apply(state.Cancel{Job: e.machineID(k), At: seconds(t)}); err != nil {
		return fmt.Errorf("replay: move %s: %w", j.rec.ID, err)
	}
	j.gen++
	j.stale = false
	e.renumber(k)
	if _, err := e.m.Apply(state.Submit{Job: e.coreJob(k, j.src.Submit), At: seconds(j.src.Submit)}); err != nil {
		return fmt.Errorf("replay: move %s: resubmit: %w", j.rec.ID, err)
	}
	return nil
}
