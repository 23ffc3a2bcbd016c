package replay

// The engine's books: job statuses and their counts, runs charged per
// pool and price, requeues with checkpoints.

import (
	"fmt"
	"slices"
	"strconv"

	"petite/scheduler"
)

// priceEvent changes a pool's price: owned runs on it are booked up to now
// at the old price, and the cloud runs and stints still to come are
// re-priced for what remains of them (they were booked in advance). It
// visits every job: price changes are rare.
func (e *engine) priceEvent(i int, t int64) {
	pe := e.cfg.PriceEvents[i]
	old, now := e.price[pe.Pool], pe.PricePerGPUHour
	e.emit(Event{At: t, Kind: EventPrice, Job: -1, ID: pe.Pool, State: strconv.FormatFloat(now, 'g', -1, 64)})
	if old == now {
		return
	}
	if e.sc != nil {
		e.sc.billPool(e, pe.Pool, t) // node bills at the old price up to now
	}
	e.billTo(e.poolIdx[pe.Pool], t) // a reservation at the old price up to now
	cloud := pe.Pool == e.cloudAt
	for _, sl := range e.slot { // the live jobs, in job order, as the sums always went
		if sl < 0 {
			continue
		}
		j := e.live.at(int(sl))
		r := &j.rec
		switch {
		case j.status == stRunning && slices.ContainsFunc(j.shares, func(p poolShare) bool { return p.pool == int32(e.poolIdx[pe.Pool]) }):
			r.Cost += e.runCost(j, t) // at the prices until now
			j.costFrom = t
		case j.status == stCloud && cloud:
			// what is left of its run (all of it while it is provisioned)
			d := (now - old) * j.gpus * hours(max(0, min(j.rec.Duration, j.runStart+j.rec.Duration-t)))
			r.Cost += d
			r.CloudCost += d
			e.cloudCharge(d)
		case j.status == stStint && cloud:
			j.stintCost += (now - old) * j.gpus * hours(max(0, min(e.cfg.Burst.Wait.L, j.stintEnd-t)))
		}
	}
	e.price[pe.Pool] = now
	e.prices[e.poolIdx[pe.Pool]] = now
	if cloud {
		e.cloud = now
	}
}

// requeued books jobs sent back to the queue: training keeps the work up to
// its last checkpoint, the rest of the run is lost; a service keeps its
// lifetime.
func (e *engine) requeued(ids []string, t int64) error {
	for _, id := range ids {
		k, err := e.number(id)
		if err != nil {
			return err
		}
		j := e.job(k)
		if j.status != stRunning {
			return fmt.Errorf("replay: job %s requeued but not running", j.rec.ID)
		}
		ran := t - j.runStart
		e.closeRun(j, t)
		r := &j.rec
		r.Preemptions++
		if j.kind == scheduler.Training {
			useful := max(0, ran-j.overhead)
			saved := int64(0)
			if iv := e.cfg.Checkpoint.Interval; iv > 0 {
				saved = (j.done+useful)/iv*iv - j.done
			}
			r.LostGPUHours += j.gpus * hours(ran-saved)
			j.done += saved
			j.work = j.rec.Duration - j.done
			j.epoch++
		}
		e.setStatus(k, stQueued)
		r.State = "queued"
		e.emit(Event{At: t, Kind: EventRequeue, Job: k, ID: j.rec.ID})
		if j.stale { // a move confined it while it ran: it comes back confined
			if err := e.resubmit(k, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// setStatus moves job k to st, keeping the counts of queued and running
// jobs, pending GPUs and GPUs in the burst cloud.
func (e *engine) setStatus(k int, st status) { e.setStatusOf(e.job(k), st) }

// setStatusOf is setStatus of the job whose book is j.
func (e *engine) setStatusOf(j *jobState, st status) {
	e.count(j.status, -1, j.gpus) // leave the old status first, always
	e.count(st, 1, j.gpus)
	j.status = st
}

func (e *engine) count(s status, sign int, gpus float64) {
	switch s {
	case stQueued:
		e.queued += sign
		e.pending += float64(sign) * gpus
	case stRunning:
		e.running += sign
	case stCloud, stStint:
		e.inCloud += float64(sign) * gpus
	}
}

// closeRun books the owned run that ends at t of the job whose book is j.
func (e *engine) closeRun(j *jobState, t int64) {
	r := &j.rec
	d := t - j.runStart
	r.GPUHours += j.gpus * hours(d)
	r.Cost += e.runCost(j, t)
	j.costFrom = t
	for _, p := range j.shares {
		e.alloc[p.pool] -= p.gpus
		e.poolGPUH[p.pool] += p.gpus * hours(d)
	}
	if e.cfg.RecordRuns {
		r.Runs[len(r.Runs)-1].End = t
	}
	o := j.gpus * e.win.overlap(j.runStart, t)
	e.util.cluster += o
	e.util.system += o
}

// runCost is the cost of job j's owned run from costFrom to t at the
// pools' present prices, booked to each pool as it is to the job (every
// caller charges the job what it returns).
func (e *engine) runCost(j *jobState, t int64) float64 {
	c := 0.0
	for _, p := range j.shares {
		x := e.prices[p.pool] * p.gpus * hours(t-j.costFrom)
		e.poolCost[p.pool] += x
		c += x
	}
	return c
}

// cloudCharge books cost c of the burst cloud pool.
func (e *engine) cloudCharge(c float64) { e.poolCost[e.poolIdx[e.cloudAt]] += c }

// share splits a job's GPUs over the pools its tasks were placed in.
func (e *engine) share(j *jobState, tasks []scheduler.TaskPlacement, as []scheduler.Assign) {
	j.shares = j.buf[:0] // beside the job's other hot fields (books never move)
	var total int64
	for k, tp := range tasks {
		id := scheduler.NoNode
		if as != nil {
			id = as[k].Node
		}
		pool := e.poolAt(id, tp.Node)
		m := int64(len(tp.GPUs)) * int64(tp.GPUMilli)
		total += m
		i := slices.IndexFunc(j.shares, func(p poolShare) bool { return p.pool == pool })
		if i < 0 {
			j.shares = append(j.shares, poolShare{pool: pool})
			i = len(j.shares) - 1
		}
		j.shares[i].gpus += float64(m)
	}
	for i := range j.shares {
		if total > 0 {
			j.shares[i].gpus *= j.gpus / float64(total)
		}
	}
}

// notePool records that node name, registered with the state machine, is
// in pool (fleet order): by name, and by the machine's id of the node.
func (e *engine) notePool(name string, pool int32) {
	e.poolOf[name] = pool
	if id, ok := e.m.Cluster().NodeByName(name); ok {
		for len(e.nodePool) <= int(id) {
			e.nodePool = append(e.nodePool, -1)
		}
		e.nodePool[id] = pool
	}
}

// poolOfNode is the pool of the node named name, poolOf's answer. It asks
// the state machine for the node's id, a look-up the machine has just
// made for the node as it took the plan, whose table is in the cache
// where the engine's own would not be, and reads the pool from a slice.
func (e *engine) poolOfNode(name string) int32 {
	if id, ok := e.m.Cluster().NodeByName(name); ok && int(id) < len(e.nodePool) && e.nodePool[id] >= 0 {
		return e.nodePool[id]
	}
	return e.poolOf[name]
}

// poolAt is poolOfNode for a node the machine knows by id (NoNode: by its
// name alone).
func (e *engine) poolAt(id scheduler.NodeID, name string) int32 {
	if id >= 0 && int(id) < len(e.nodePool) && e.nodePool[id] >= 0 {
		return e.nodePool[id]
	}
	return e.poolOfNode(name)
}

// poolShare is how many GPUs a run holds in one pool (fleet order).
type poolShare struct {
	pool int32
	gpus float64
}

// poolGPUs names the pools of a run's shares.
func (e *engine) poolGPUs(shares []poolShare) []PoolGPUs {
	out := make([]PoolGPUs, len(shares))
	for i, p := range shares {
		out[i] = PoolGPUs{Pool: e.cfg.Pools[p.pool].Name, GPUs: p.gpus}
	}
	return out
}
