package scheduler

import (
	"cmp"
	"slices"
	"strings"
)

// reservation is where and when a blocked queue head is expected to start:
// EASY backfill's shadow. It is computed once, when the head blocks, by
// releasing the live jobs in order of expected end until the head fits;
// the head's trial placement at that moment names the nodes it reserves.
//
// A later start of the pass (a job behind the head, or any other tenant's
// job) is admitted only if it cannot delay the head:
//
//   - it ends before the shadow time (Now + Walltime <= shadow, both
//     known), so it is gone when the head starts; or
//   - on every reserved node it takes only what the head leaves free at
//     the shadow time: the free CPU, memory and per-device GPU of the node
//     in the trial, after the head, less what earlier admitted starts took.
//
// Nodes the head's trial does not use are not reserved. If the head fits
// only once a job of unknown walltime ends, the shadow time is unknown and
// only the second rule applies: the head may start whenever that job ends.
// Walltimes are trusted as EASY does (a job ends by Started+Walltime).
//
// A placement the policy puts on a reserved node and the rule refuses is
// tried once more with the reserved nodes hidden (see pass.place); it is
// not searched for further.
type reservation struct {
	job    *Job
	timed  bool  // the shadow time is known
	shadow int64 // when the head is expected to start, if timed
	nodes  []resvNode
	// trial is the head's placement at the shadow time; upTo is the last
	// live job the walk released (byEnd order) and nLive the number of live
	// jobs then. Tests rebuild the shadow state from them.
	trial []Assign
	upTo  *liveJob
	nLive int
}

// resvNode is what the head leaves free on one reserved node.
type resvNode struct {
	n   NodeID
	cpu int64
	mem int64
	dev []int32 // free milli-GPU per device
}

func (r *reservation) find(n NodeID) int {
	i, ok := slices.BinarySearchFunc(r.nodes, n, func(x resvNode, n NodeID) int { return cmp.Compare(x.n, n) })
	if !ok {
		return -1
	}
	return i
}

// byEnd orders live jobs for the shadow walk: by expected end (unknown
// last), then start, then id.
func byEnd(a, b *liveJob) int {
	if a.end != b.end {
		return cmp.Compare(a.end, b.end)
	}
	if a.started != b.started {
		return cmp.Compare(a.started, b.started)
	}
	return strings.Compare(a.job.ID, b.job.ID)
}

// reserve computes a blocked head's reservation. never is true when the
// head does not fit even with every live job gone; r is nil and never
// false when the walk ran past its limits (the head then blocks its queue).
// The cluster is left as it was.
func (s *pass) reserve(h *Job) (r *reservation, never bool, err error) {
	mark := len(s.undo)
	defer s.rollback(mark)
	order := s.walkOrder()
	need := amount{gpu: h.GPUMilliTotal(), cpu: int64(h.Count) * h.Task.CPUMilli, mem: int64(h.Count) * h.Task.MemoryMiB}
	timed, shadow, fits := true, s.in.Now, 0
	for i, lj := range order {
		if i >= s.lim.ShadowWalk {
			return nil, false, nil
		}
		if lj.nAlive == 0 {
			continue // evicted by the pass
		}
		for k, a := range lj.assigns {
			if lj.alive[k] {
				s.release(a)
			}
		}
		if lj.end == noEnd {
			timed = false
		} else {
			shadow = max(shadow, lj.end)
		}
		f := &s.l.free
		if f.gpu < need.gpu || f.cpu < need.cpu || f.mem < need.mem {
			continue
		}
		if fits >= s.lim.ShadowFits {
			return nil, false, nil
		}
		fits++
		as, ok, err := s.c.PlaceJob(s.in.Policy, h, s.in.Rng, s.buf[:0])
		s.buf = as[:0]
		if err != nil {
			return nil, false, err
		}
		if ok {
			s.applied(as)
			r := s.snapshot(h, as, timed, shadow)
			r.upTo, r.nLive = lj, len(s.live)
			return r, false, nil
		}
	}
	// Every live job is gone (each release was followed by a trial unless
	// the free totals ruled it out) and the head still does not fit.
	return nil, true, nil
}

// walkOrder lists the live jobs in byEnd order. The running jobs are
// sorted once per pass; the few the pass started are sorted and merged in.
func (s *pass) walkOrder() []*liveJob {
	if s.byEnd == nil {
		for _, lj := range s.live {
			if lj.running {
				s.byEnd = append(s.byEnd, lj)
			}
		}
		slices.SortFunc(s.byEnd, byEnd)
	}
	started := slices.Clone(s.live[s.nRun:])
	slices.SortFunc(started, byEnd)
	out := make([]*liveJob, 0, len(s.byEnd)+len(started))
	i, k := 0, 0
	for i < len(s.byEnd) || k < len(started) {
		if k == len(started) || (i < len(s.byEnd) && byEnd(s.byEnd[i], started[k]) <= 0) {
			out = append(out, s.byEnd[i])
			i++
		} else {
			out = append(out, started[k])
			k++
		}
	}
	return out
}

// snapshot records what the head's trial placement leaves free on its nodes.
func (s *pass) snapshot(h *Job, as []Assign, timed bool, shadow int64) *reservation {
	r := &reservation{job: h, timed: timed, shadow: shadow, trial: slices.Clone(as)}
	for i := range as {
		n := as[i].Node
		if slices.ContainsFunc(r.nodes, func(x resvNode) bool { return x.n == n }) {
			continue
		}
		rec := &s.c.nodes[n]
		r.nodes = append(r.nodes, resvNode{n: n, cpu: rec.cpuFree, mem: rec.memFree,
			dev: slices.Clone(s.c.gpuFree[rec.gpuOff : rec.gpuOff+rec.gpuN])})
	}
	slices.SortFunc(r.nodes, func(a, b resvNode) int { return cmp.Compare(a.n, b.n) })
	return r
}

// admit checks a placement, applied already and expected to end at end,
// against every reservation of the pass, and if it delays none, charges it
// to them. It is all or nothing.
func (s *pass) admit(as []Assign, end int64) bool {
	type change struct {
		r *reservation
		k int
		v resvNode
	}
	var changes []change
	for _, r := range s.resv {
		if r.timed && end != noEnd && end <= r.shadow {
			continue
		}
		for i := range as {
			a := &as[i]
			k := r.find(a.Node)
			if k < 0 {
				continue
			}
			ci := slices.IndexFunc(changes, func(c change) bool { return c.r == r && c.k == k })
			if ci < 0 {
				v := r.nodes[k]
				v.dev = slices.Clone(v.dev)
				changes = append(changes, change{r: r, k: k, v: v})
				ci = len(changes) - 1
			}
			v := &changes[ci].v
			v.cpu -= a.CPUMilli
			v.mem -= a.MemMiB
			if v.cpu < 0 || v.mem < 0 {
				return false
			}
			for m := a.Mask; m != 0; m &= m - 1 {
				d := trailingZeros(m)
				if v.dev[d] -= a.Take; v.dev[d] < 0 {
					return false
				}
			}
		}
	}
	for _, c := range changes {
		c.r.nodes[c.k] = c.v
	}
	return true
}

// hideReserved takes the ready nodes of every reservation that a job ending
// at end must respect out of placement (as if draining) and returns the
// function that puts them back. Nothing may be applied or released on
// them in between.
func (s *pass) hideReserved(end int64) (show func()) {
	var hidden []NodeID
	for _, r := range s.resv {
		if r.timed && end != noEnd && end <= r.shadow {
			continue
		}
		for _, rn := range r.nodes {
			if s.c.nodes[rn.n].state == NodeReady {
				s.c.SetState(rn.n, NodeDraining)
				hidden = append(hidden, rn.n)
			}
		}
	}
	return func() {
		for _, n := range hidden {
			s.c.SetState(n, NodeReady)
		}
	}
}
