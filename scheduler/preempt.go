package scheduler

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// Preemption (Pass.Preempt). A queue head that does not fit may evict
// running work to start. Victims are running, Preemptible jobs of strictly
// lower priority. A head that would borrow beyond its tenant's guarantee
// may take victims only from its own tenant or from tenants that are
// themselves borrowing, and starts only if the quotas hold once the victims
// are gone, so no tenant's guarantee is given to a borrower. Victims are
// chosen to make room, not quota: a head refused only because the idle
// capacity is claimed by guarantees gains nothing here.
//
// The unit of eviction, cheapest class first:
//
//	0. one replica of an inference service above its MinReplicas (a trim);
//	1. a checkpointable training job, its whole gang on every node;
//	2. a non-checkpointable training job, its whole gang.
//
// Within a class: lower priority first, then less GPU time lost
// ((Now-Started) × milli-GPU held), then job id and task.
//
// The victim set is chosen greedily and bounded: the tasks that fit without
// eviction are placed first; then, one round at a time, for every candidate
// node (a node that hosts victims and that the job's shape could use) the
// cheapest prefix of its victims, in unit order, that makes one more task
// fit there, pruned of units it does not need. The node with the cheapest
// prefix wins the round (its victims' worst class, then their highest
// priority, then the GPU time lost, then their number, then the unit order
// of its costliest victim, then the node's rank); gang victims free their other nodes too, which later rounds see.
// The set is then verified: the victims are released and the job placed by
// the policy, the quotas and reservations checked; if anything fails the
// pass rolls back and evicts nothing.

// victimUnit is one thing preemption can evict.
type victimUnit struct {
	lj      *liveJob
	k       int // the replica's position in lj.tasks; -1 for the whole job
	class   int8
	prio    int32
	lost    int64
	nodes   []NodeID // the nodes the unit's tasks are on
	evicted bool
}

// victimPart is a unit's tasks on one node.
type victimPart struct {
	u  int32
	as []Assign
}

// victimIndex holds the possible victims of a pass, built at its first
// preemption: units in cost order, and for every node the parts of the
// units on it, in the same order.
type victimIndex struct {
	units []victimUnit
	nodes []NodeID // nodes hosting a unit, ascending
	on    map[NodeID][]victimPart
	byJob map[*liveJob][]int32
}

// unitLess is the cost order of victim units.
func unitLess(a, b *victimUnit) int {
	if c := cmp.Compare(a.class, b.class); c != 0 {
		return c
	}
	if c := cmp.Compare(a.prio, b.prio); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lost, b.lost); c != 0 {
		return c
	}
	if c := strings.Compare(a.lj.job.ID, b.lj.job.ID); c != 0 {
		return c
	}
	return cmp.Compare(a.task(), b.task())
}

func (u *victimUnit) task() int {
	if u.k < 0 {
		return -1
	}
	return u.lj.tasks[u.k]
}

// assigns calls f with each live assignment of the unit.
func (u *victimUnit) each(f func(a *Assign)) {
	for k := range u.lj.assigns {
		if u.lj.alive[k] && (u.k < 0 || u.k == k) {
			f(&u.lj.assigns[k])
		}
	}
}

func (s *pass) buildVictims() *victimIndex {
	v := &victimIndex{on: map[NodeID][]victimPart{}, byJob: map[*liveJob][]int32{}}
	for _, lj := range s.live {
		j := lj.job
		if !lj.running || !j.Preemptible || lj.nAlive == 0 {
			continue
		}
		age := max(0, s.in.Now-lj.started)
		switch {
		case j.Kind == Inference && lj.nAlive > j.MinReplicas && len(lj.tasks) == lj.nInput:
			// (A service this pass is topping up offers no victims: the pass
			// would evict replicas it is adding back.)
			for k := range lj.tasks[:lj.nInput] {
				if lj.alive[k] {
					a := amountOf(&lj.assigns[k])
					v.units = append(v.units, victimUnit{lj: lj, k: k, prio: j.Priority, lost: age * a.gpu})
				}
			}
		case j.Kind == Training:
			var held int64
			for k := range lj.assigns {
				if lj.alive[k] {
					held += amountOf(&lj.assigns[k]).gpu
				}
			}
			class := int8(2)
			if j.Checkpointable {
				class = 1
			}
			v.units = append(v.units, victimUnit{lj: lj, k: -1, class: class, prio: j.Priority, lost: age * held})
		}
	}
	slices.SortFunc(v.units, func(a, b victimUnit) int { return unitLess(&a, &b) })
	for i := range v.units {
		u := &v.units[i]
		id := int32(i)
		v.byJob[u.lj] = append(v.byJob[u.lj], id)
		u.each(func(a *Assign) {
			parts := v.on[a.Node]
			if n := len(parts); n > 0 && parts[n-1].u == id {
				parts[n-1].as = append(parts[n-1].as, *a)
			} else {
				v.on[a.Node] = append(parts, victimPart{u: id, as: []Assign{*a}})
				u.nodes = append(u.nodes, a.Node)
			}
		})
	}
	for n := range v.on {
		v.nodes = append(v.nodes, n)
	}
	slices.Sort(v.nodes)
	return v
}

// victimCost is the cost of a set of victims, compared field by field:
// its costliest class, its highest priority, the GPU time it loses, its
// size, and last the position of its costliest unit in the unit order
// (so that job ids break ties).
type victimCost struct {
	class int8
	prio  int32
	lost  int64
	n     int
	worst int32
}

func (a victimCost) compare(b victimCost) int {
	if c := cmp.Compare(a.class, b.class); c != 0 {
		return c
	}
	if c := cmp.Compare(a.prio, b.prio); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lost, b.lost); c != 0 {
		return c
	}
	if c := cmp.Compare(a.n, b.n); c != 0 {
		return c
	}
	return cmp.Compare(a.worst, b.worst)
}

// acctNode is a candidate node's free resources as the victim choice
// counts them, with its cheapest option for one more task.
type acctNode struct {
	n     NodeID
	cpu   int64
	mem   int64
	dev   []int32
	sick  uint64 // devices withheld as unhealthy: what victims free there stays out
	valid bool   // opt and cost are current
	ok    bool   // some prefix of eligible victims makes a task fit
	opt   []int32
	cost  victimCost
}

func (a *acctNode) add(as []Assign, sign int64) {
	for i := range as {
		a.cpu += sign * as[i].CPUMilli
		a.mem += sign * as[i].MemMiB
		for m := as[i].Mask &^ a.sick; m != 0; m &= m - 1 {
			a.dev[trailingZeros(m)] += int32(sign) * as[i].Take
		}
	}
}

// fitCount is how many tasks of shape s fit in a node's free resources.
// Placing one lowers it by exactly one, whatever devices the picker takes,
// which is why counting is enough to know a job will fit.
func (c *Cluster) fitCount(a *acctNode, s *Shape) int64 {
	k := int64(math.MaxInt64)
	if a.cpu < 0 || a.mem < 0 {
		return 0
	}
	if s.CPU > 0 {
		k = min(k, a.cpu/s.CPU)
	}
	if s.Mem > 0 {
		k = min(k, a.mem/s.Mem)
	}
	if s.GPUs > 0 {
		_, excl := c.devs(a.n)
		k = fitDevices(a.dev, excl, s, k)
	}
	return k
}

// takeOne counts one task of shape s as placed on a candidate node, taking
// devices as the default picker would.
func (c *Cluster) takeOne(a *acctNode, s *Shape) {
	a.cpu -= s.CPU
	a.mem -= s.Mem
	if s.GPUs > 0 {
		_, excl := c.devs(a.n)
		takeDevices(a.dev, excl, s)
	}
}

// couldHost reports whether a node could ever take a task of shape s
// (ready, labels, GPU model), whatever it runs.
func (c *Cluster) couldHost(n NodeID, s *Shape) bool {
	r := &c.nodes[n]
	switch {
	case r.state != NodeReady:
		return false
	case s.Sel != 0 && !c.selectors[s.Sel].ok[n]:
		return false
	case s.GPUs > 0 && (r.gpuN == 0 || (s.Models != 0 && s.Models&(1<<uint(r.model)) == 0)):
		return false
	}
	return true
}

// chooser is one preemption attempt's victim choice.
type chooser struct {
	s        *pass
	v        *victimIndex
	sh       *Shape
	eligible func(u *victimUnit) bool
	selected []bool // by unit
	trims    map[*liveJob]int
	accts    []*acctNode
	byNode   []*acctNode // by node id; nil for a node that is no candidate
	// scratch for cheapest
	free  acctNode
	local []*liveJob // services trimmed by the prefix being built, once per replica
}

// trimsLeft is how many more replicas of a service may go, besides those
// the prefix being built takes.
func (ch *chooser) trimsLeft(lj *liveJob) int {
	n := lj.nAlive - lj.job.MinReplicas - ch.trims[lj]
	for _, x := range ch.local {
		if x == lj {
			n--
		}
	}
	return n
}

// cheapest finds a candidate node's cheapest victim prefix for one task.
func (ch *chooser) cheapest(a *acctNode) {
	c := ch.s.c
	a.valid, a.ok, a.opt, a.cost = true, false, a.opt[:0], victimCost{class: -1, prio: math.MinInt32, worst: -1}
	free := &ch.free
	free.n, free.cpu, free.mem, free.dev = a.n, a.cpu, a.mem, append(free.dev[:0], a.dev...)
	if c.fitCount(free, ch.sh) >= 1 {
		a.ok = true
		return
	}
	var parts []victimPart
	ch.local = ch.local[:0]
	for _, p := range ch.v.on[a.n] {
		u := &ch.v.units[p.u]
		if ch.selected[p.u] || !ch.eligible(u) {
			continue
		}
		if u.k >= 0 {
			if ch.trimsLeft(u.lj) <= 0 {
				continue
			}
			ch.local = append(ch.local, u.lj)
		}
		free.add(p.as, +1)
		parts = append(parts, p)
		if c.fitCount(free, ch.sh) >= 1 {
			a.ok = true
			break
		}
	}
	if !a.ok {
		return
	}
	// Drop the units the task does not need, the costliest kept longest:
	// the last unit was needed given all before it, an earlier one may not be.
	keep := make([]bool, len(parts))
	for i := len(parts) - 1; i >= 0; i-- {
		free.add(parts[i].as, -1)
		if keep[i] = c.fitCount(free, ch.sh) < 1; keep[i] {
			free.add(parts[i].as, +1)
		}
	}
	for i, p := range parts {
		if !keep[i] {
			continue
		}
		u := &ch.v.units[p.u]
		a.opt = append(a.opt, p.u)
		a.cost.class = max(a.cost.class, u.class)
		a.cost.prio = max(a.cost.prio, u.prio)
		a.cost.lost += u.lost
		a.cost.n++
		a.cost.worst = max(a.cost.worst, p.u)
	}
}

// choose picks victims so that need more tasks fit; nil when no set does.
// Units come back in the order they were chosen.
func (ch *chooser) choose(need int) []int32 {
	c := ch.s.c
	var out []int32
	for need > 0 {
		var best *acctNode
		for _, a := range ch.accts {
			if !a.valid {
				ch.cheapest(a)
			}
			if !a.ok {
				continue
			}
			if best == nil {
				best = a
				continue
			}
			if d := a.cost.compare(best.cost); d < 0 || (d == 0 && c.rank[a.n] < c.rank[best.n]) {
				best = a
			}
		}
		if best == nil {
			return nil
		}
		for _, id := range slices.Clone(best.opt) {
			ch.take(id)
			out = append(out, id)
		}
		k := min(c.fitCount(best, ch.sh), int64(need))
		if k < 1 {
			return nil // cannot happen: the option made a task fit
		}
		for range k {
			c.takeOne(best, ch.sh)
		}
		need -= int(k)
		best.valid = false
	}
	return out
}

// take selects a unit: its resources come back on every candidate node it
// holds, and those nodes, with the nodes of its job's other units, choose
// again.
func (ch *chooser) take(id int32) {
	u := &ch.v.units[id]
	ch.selected[id] = true
	if u.k >= 0 {
		ch.trims[u.lj]++
	}
	u.each(func(a *Assign) {
		if an := ch.byNode[a.Node]; an != nil {
			an.add([]Assign{*a}, +1)
		}
	})
	for _, other := range ch.v.byJob[u.lj] {
		for _, n := range ch.v.units[other].nodes {
			if an := ch.byNode[n]; an != nil {
				an.valid = false
			}
		}
	}
}

// preempt tries to start a queue head by evicting lower-priority work. It
// changes nothing unless it succeeds.
func (s *pass) preempt(ti int, j *Job) (bool, error) {
	if s.vict == nil {
		s.vict = s.buildVictims()
	}
	v := s.vict
	gpu := j.GPUMilliTotal()
	borrow := s.l.borrowing(ti, gpu)
	eligible := func(u *victimUnit) bool {
		if u.evicted || u.prio >= j.Priority {
			return false
		}
		if borrow && u.lj.tenant != ti {
			vt := &s.l.tenants[u.lj.tenant]
			return vt.used.gpu > vt.GuaranteedMilli
		}
		return true
	}
	found := false
	for i := range v.units {
		if found = eligible(&v.units[i]); found {
			break
		}
	}
	if !found {
		return false, nil
	}
	if s.preempts >= s.lim.Preemptions {
		return false, nil
	}
	s.preempts++
	sh, err := s.c.ShapeOf(&j.Task)
	if err != nil {
		return false, nil // validated when the pass began
	}
	mark := len(s.undo)
	placed := 0
	for placed < j.Count {
		a, ok := s.c.PlaceTask(s.in.Policy, &sh, s.in.Rng)
		if !ok {
			break
		}
		s.applied([]Assign{a})
		placed++
	}
	var chosen []int32
	if placed < j.Count {
		ch := &chooser{s: s, v: v, sh: &sh, eligible: eligible, selected: make([]bool, len(v.units)),
			trims: map[*liveJob]int{}, byNode: make([]*acctNode, len(s.c.nodes))}
		for _, n := range v.nodes {
			if !s.c.couldHost(n, &sh) {
				continue
			}
			r := &s.c.nodes[n]
			a := &acctNode{n: n, cpu: r.cpuFree, mem: r.memFree, dev: slices.Clone(s.c.gpuFree[r.gpuOff : r.gpuOff+r.gpuN]), sick: r.sick}
			ch.accts = append(ch.accts, a)
			ch.byNode[n] = a
		}
		chosen = ch.choose(j.Count - placed)
	}
	s.rollback(mark)
	if len(chosen) == 0 {
		return false, nil
	}
	return s.evictAndPlace(ti, j, chosen)
}

// evictAndPlace verifies a victim set: it releases the victims, checks the
// quotas, places the job and checks the reservations; on success it
// commits the evictions and the placement, else it undoes everything.
func (s *pass) evictAndPlace(ti int, j *Job, chosen []int32) (bool, error) {
	v := s.vict
	mark := len(s.undo)
	var freed []amount
	for _, id := range chosen {
		u := &v.units[id]
		var am amount
		u.each(func(a *Assign) {
			s.release(*a)
			am.add(amountOf(a))
		})
		s.l.tenants[u.lj.tenant].used.sub(am)
		s.l.moved = append(s.l.moved, u.lj.tenant)
		freed = append(freed, am)
	}
	undo := func() {
		for i, id := range chosen {
			s.l.tenants[v.units[id].lj.tenant].used.add(freed[i])
			s.l.moved = append(s.l.moved, v.units[id].lj.tenant)
		}
		s.rollback(mark)
	}
	if s.l.check(ti, j.GPUMilliTotal()) != quotaOK {
		undo()
		return false, nil
	}
	as, ok, err := s.c.PlaceJob(s.in.Policy, j, s.in.Rng, s.buf[:0])
	s.buf = as[:0]
	if err != nil || !ok {
		undo()
		return false, err
	}
	s.applied(as)
	if s.quotaAfter(ti, as) != quotaOK || !s.admit(as, endOf(s.in.Now, j.Walltime)) {
		undo()
		return false, nil
	}
	// Commit: mark the victims gone and record the evictions, one per job.
	tasks := map[*liveJob][]int{}
	seen := map[*liveJob][]TaskPlacement{}
	var jobs []*liveJob
	for _, id := range chosen {
		u := &v.units[id]
		if _, seen := tasks[u.lj]; !seen {
			jobs = append(jobs, u.lj)
			tasks[u.lj] = nil
		}
		if u.k >= 0 {
			tasks[u.lj] = append(tasks[u.lj], u.lj.tasks[u.k])
		}
		for k := range u.lj.alive {
			if u.lj.alive[k] && (u.k < 0 || u.k == k) {
				seen[u.lj] = append(seen[u.lj], s.c.Placement(u.lj.tasks[k], u.lj.assigns[k]))
				s.touch(u.lj)
				u.lj.alive[k] = false
				u.lj.nAlive--
			}
		}
		u.evicted = true
	}
	slices.SortFunc(jobs, func(a, b *liveJob) int { return strings.Compare(a.job.ID, b.job.ID) })
	for _, lj := range jobs {
		ts := tasks[lj]
		slices.Sort(ts)
		// The placements as the pass saw them, so that a stale plan is refused.
		sn := seen[lj]
		slices.SortFunc(sn, func(a, b TaskPlacement) int { return a.Task - b.Task })
		s.plan.Evict = append(s.plan.Evict, Eviction{Job: lj.job.ID, Tasks: ts, For: j.ID, Seen: sn})
	}
	s.start(ti, j, as)
	return true, nil
}
