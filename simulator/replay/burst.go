package replay

// The burst method's moves: a job whose budget expires leaves for the
// cloud, or under Star-Wait for a stint that brings it back once.

import (
	"fmt"

	"petite/scheduler/state"
)

// expire applies the end of job k's waiting budget: a job still queued
// leaves for the cloud (or for its Star-Wait stint).
func (e *engine) expire(k int, t int64) (bool, error) {
	if !e.isLive(k) {
		return false, nil
	}
	j := e.job(k)
	if j.status != stQueued {
		return false, nil
	}
	if _, err := e.m.Apply(state.Cancel{Job: e.machineID(k), At: seconds(t)}); err != nil {
		return false, fmt.Errorf("replay: send %s to the cloud: %w", j.rec.ID, err)
	}
	if w := e.cfg.Burst.Wait; w.Kind == WaitStar && !j.returned && j.rec.Duration > w.L {
		// Star-Wait: a stint of L in the cloud, then back to the queue
		// once. Its cost is booked when it is known whether it counts.
		// A provisioning delay comes first: the stint runs L after it.
		e.setStatus(k, stStint)
		back := t + e.cloudDelay() + w.L
		j.stintCost, j.stintEnd = e.cloud*j.gpus*hours(w.L), back
		j.rec.State = "cloud"
		e.emit(Event{At: t, Kind: EventStint, Job: k, ID: j.rec.ID})
		e.q.push(item{at: back, phase: phaseReturn, job: int32(k)})
		return true, nil
	}
	// The job leaves the queue now and starts in the cloud once its node
	// is provisioned: its wait runs to that start, the bill from it.
	e.setStatus(k, stCloud)
	start := t + e.cloudDelay()
	j.runStart = start
	r := &j.rec
	r.Start, r.Where, r.State, r.Pool = start, "cloud", "cloud", e.cloudAt
	j.poolAt = int16(e.poolIdx[e.cloudAt]) + 1
	d := j.rec.Duration
	r.GPUHours += j.gpus * hours(d)
	c := e.cloud * j.gpus * hours(d)
	r.Cost += c
	r.CloudCost += c
	e.cloudCharge(c)
	e.util.system += j.gpus * e.win.overlap(start, start+d)
	e.emit(Event{At: t, Kind: EventCloud, Job: k, ID: j.rec.ID})
	e.q.push(item{at: start + d, phase: phaseFinish, job: e.slot[k], epoch: j.epoch, cloud: true})
	return true, nil
}

// cloudDelay is the burst cloud pool's provision_delay_sec on the clock:
// the time from a job's leaving the queue to its start in the cloud.
func (e *engine) cloudDelay() int64 {
	return int64(e.cfg.Pools[e.poolIdx[e.cloudAt]].ProvisionDelaySec) * Second
}

// comeBack resubmits a job back from its Star-Wait stint, under a new id,
// with its second budget.
func (e *engine) comeBack(k int, t int64) error {
	j := e.job(k)
	j.returned = true
	e.renumber(k)
	if _, err := e.m.Apply(state.Submit{Job: e.coreJob(k, t), At: seconds(t)}); err != nil {
		return fmt.Errorf("replay: resubmit %s: %w", j.rec.ID, err)
	}
	e.setStatus(k, stQueued)
	j.rec.State = "queued"
	e.emit(Event{At: t, Kind: EventReturn, Job: k, ID: j.rec.ID})
	e.q.push(item{at: t + e.cfg.Burst.Wait.returnBudget(j.src, j.gpus, t), phase: phaseExpire, job: int32(k)})
	return nil
}
