package replay

import (
	"fmt"

	"petite/scheduler"
)

// pass runs one scheduling pass and applies its plan through the state
// machine.
func (e *engine) pass(t int64) error {
	e.passes++
	// The replay reads no reasons: a pass need not list every waiting job.
	in := scheduler.Pass{Now: seconds(t), Policy: e.pol, Rng: e.rng,
		Backfill: e.cfg.Queue == QueueBackfill, Preempt: e.cfg.Preempt, NoUnplaced: true}
	if e.cfg.Queue == QueueFIFOSkip {
		// one decision per queued job: the whole queue is looked at
		in.Limits.Decisions = max(scheduler.DefaultDecisions, e.queued+1)
	}
	// The pass runs on the machine's own state and its plan is applied at
	// once (Step): what Plan and Apply of the plan would do.
	plan, res, err := e.m.Step(in, seconds(t))
	if err != nil {
		return fmt.Errorf("replay: pass at %d ns: %w", t, err)
	}
	if plan.Empty() {
		return e.checkTopUp()
	}
	if err := e.requeued(res.Requeued, t); err != nil {
		return err
	}
	started := 0
	as := e.m.StepAssigns() // by task placement, in the plan's order
	for _, jp := range plan.Place {
		tas := as[:len(jp.Tasks)]
		as = as[len(jp.Tasks):]
		k, err := e.number(jp.Job)
		if err != nil {
			return err
		}
		if e.job(k).status != stQueued { // lost replicas of a running service put back
			e.emit(Event{At: t, Kind: EventReplace, Job: k, ID: e.job(k).rec.ID, Node: jp.Tasks[0].Node})
			continue
		}
		e.start(k, t, jp.Tasks, tas)
		started++
	}
	if started != len(res.Started) {
		return fmt.Errorf("replay: the plan at %d ns started %d jobs, the state machine %d", t, started, len(res.Started))
	}
	return e.checkTopUp()
}

// start books job k's start on owned nodes at t with the placements of its
// tasks (as their assignments, which name the nodes by id), and schedules
// its end: a training job after its restart time and remaining work, a
// service once, at its first start plus its duration.
func (e *engine) start(k int, t int64, tasks []scheduler.TaskPlacement, as []scheduler.Assign) {
	j := e.job(k)
	r := &j.rec
	node := tasks[0].Node
	e.setStatus(k, stRunning)
	j.runStart, j.costFrom = t, t
	e.share(j, tasks, as)
	for _, p := range j.shares {
		e.alloc[p.pool] += p.gpus
	}
	if e.cfg.RecordRuns {
		r.Runs = append(r.Runs, Segment{Start: t, End: -1, Pools: e.poolGPUs(j.shares)})
	}
	if r.Start < 0 {
		r.Start, r.Where = t, "onprem"
		best := 0
		for i, p := range j.shares {
			if p.gpus > j.shares[best].gpus {
				best = i
			}
		}
		r.Pool, j.poolAt = e.cfg.Pools[j.shares[best].pool].Name, int16(j.shares[best].pool)+1
		if j.returned { // Star-Wait: the stint in the cloud is paid for
			r.Cost += j.stintCost
			r.CloudCost += j.stintCost
			e.cloudCharge(j.stintCost)
			r.GPUHours += j.gpus * hours(e.cfg.Burst.Wait.L)
		}
	}
	r.State = "running"
	j.overhead = 0
	if r.Preemptions > 0 {
		r.Restarts++
		if j.kind == scheduler.Training {
			j.overhead = e.cfg.Checkpoint.Restart
		}
	}
	if e.log != nil {
		e.emit(Event{At: t, Kind: EventStart, Job: k, ID: j.rec.ID, Node: node})
	}
	switch {
	case j.kind == scheduler.Training:
		e.q.push(item{at: t + j.overhead + j.work, phase: phaseFinish, job: e.slot[k], epoch: j.epoch})
	case !j.started:
		e.q.push(item{at: t + j.rec.Duration, phase: phaseFinish, job: e.slot[k], epoch: j.epoch})
	}
	j.started = true
}

// checkTopUp clears the top-up flag once no running service misses a
// replica, so that passes run again only when something changes.
func (e *engine) checkTopUp() error {
	if !e.topUp {
		return nil
	}
	for _, rj := range e.m.Running() {
		if rj.Job.Kind == scheduler.Inference && len(rj.Tasks) < rj.Job.Count {
			return nil
		}
	}
	e.topUp = false
	return nil
}
