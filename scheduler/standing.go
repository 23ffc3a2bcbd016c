package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// Standing is the set-up of a scheduling pass kept from pass to pass: the
// running jobs' live copies (assignments, tenants, expected ends), what
// each tenant holds, each tenant's queue in FIFO order, the running tasks
// summed per node and device (for the held check) and the capacity and
// free amounts of the ready nodes. Schedule builds all of it from a Pass's
// lists, at a cost of O(nodes + running tasks + pending log pending) per
// pass; a driver that plans again and again (the state machine's Frozen)
// keeps a Standing instead, tells it what changed (Run, Stop, Queue,
// Unqueue, SetTenants) and calls ScheduleStanding, which sets a pass up at
// the cost of what changed since the last one. The decisions are the same
// either way: the same pass runs on the same set-up.
//
// A Standing serves one cluster and its replicas (node ids are never
// reused, so a running job's assignments hold in each). It is not safe for
// concurrent use; changes must not run during a pass.
type Standing struct {
	given []Tenant // SetTenants's list, sorted by name
	l     ledger   // tenants (given, then best-effort), used amounts, queues
	run   map[string]*liveJob
	live  []*liveJob // the running jobs, in no order; liveJob.slot indexes it
	spare []*liveJob // stopped entries, their buffers kept for reuse
	// slabT, slabA and slabL are what is left of the blocks that entries
	// too small for a job's tasks take new lists from (see fit).
	slabT  []int
	slabA  []Assign
	slabL  []bool
	err    error // the first change refused, reported by the next pass
	inited bool  // the ledger was built (SetTenants ran once)
	// trusted: no held sums are kept nor checked (NewTrustedStanding).
	trusted bool
	// reuse: each pass carves its plan from the start of the newest slabs
	// (tps0, devs0, jps0) again (see ReusePlans).
	reuse bool
	tps0  []TaskPlacement
	devs0 []int
	jps0  []JobPlacement
	// jobs counts each tenant's running and pending jobs; idle is the
	// number of best-effort tenants with none. order lists the tenants by
	// name, short the running services missing replicas (topUp's work).
	jobs     []int
	idle     int
	rebuilds int // ledger rebuilds, for tests
	order    []int
	short    int

	// nodes holds, node by node, the running tasks' sums (the held check
	// compares them with the cluster on the nodes that changed on either
	// side since the last pass) and the node's share of ready; gpu and
	// tags the sums per device and per node and tag. They are kept as
	// jobs run and stop (not by a trusted set-up, whose nodes keep only
	// their ready share). dirty lists the nodes to take again.
	nodes []standNode
	gpu   []int64
	tags  []int32
	dirty []NodeID
	// The cluster the node sums were taken from, and its change sequence
	// then.
	c     *Cluster
	cseq  uint64
	ready readyPart

	// Per-pass scratch: the pass's copy of the ledger and each tenant's
	// outcomes, cleared after the pass.
	passL ledger
	outs  [][]*Unplaced
	p     pass
	in    Pass // the pass's input, a copy: ScheduleStanding's does not escape
	// planAs holds the assignments of the last pass's plan, its placed
	// tasks in plan order (see ScheduleKeptAssigns), reused pass to pass.
	planAs []Assign

	// emptyFit is the passes' count, per task shape, of the tasks the
	// ready nodes would hold empty (see neverFits): it holds while no node
	// becomes ready or stops being ready, no node registers and the
	// cluster's label selectors stay the ones it was counted with (sel0,
	// nsel).
	emptyFit map[Shape]int
	sel0     *selector
	nsel     int
}

// standNode is what a Standing keeps of one node, in one place, since a
// job's run or stop and a pass's set-up read all of it: the running tasks'
// CPU and memory there, a bit per tag they count (in Standing.tags), their
// sums per device (in gpu for up to inDevs devices, else in Standing.gpu
// from gpuOff on), and its share of the ready amounts.
type standNode struct {
	cpu, mem  int64
	tagBits   uint64
	cap, free amount // zero unless ready
	gpuOff    int32  // -1: the sums are in gpu
	dirty     bool   // listed in Standing.dirty
	ready     bool
	gpu       [inDevs]int64
}

// inDevs is how many devices' sums a standNode holds in itself.
const inDevs = 8

// gpuSums is node sn's sums per device.
func (st *Standing) gpuSums(sn *standNode) []int64 {
	if sn.gpuOff < 0 {
		return sn.gpu[:]
	}
	return st.gpu[sn.gpuOff:]
}

// readyPart is the capacity and free amounts of the ready nodes (or of one
// node, zero when it is not ready; ready says which).
type readyPart struct {
	cap, free amount
	ready     bool
}

// NewStanding returns an empty set-up: no tenants, no jobs.
func NewStanding() *Standing {
	return &Standing{l: ledger{byName: map[string]int{}}, run: map[string]*liveJob{}}
}

// NewTrustedStanding returns an empty set-up that trusts its driver: one
// whose passes run on a cluster of its own that holds exactly the tasks of
// the running jobs it tells the set-up of, since the driver itself
// committed and released them there (the state machine's Step). It keeps
// no per-node sums of the running tasks and makes no held check: a run or
// a stop costs the job's own entry and its tenant's amounts, not a cold
// record per node, device and tag. Everything a decision reads is kept as
// in NewStanding's (the ready amounts, taken again on the nodes the
// cluster's change log names), so the plans are the same. The trade: a
// driver that breaks the promise (a running task the cluster does not
// hold, or one told twice) is not refused with an error; its passes decide
// on the cluster as it is. A driver that plans on a copy, or is told of
// jobs by others (the daemon's Plan and Freeze), keeps the check.
func NewTrustedStanding() *Standing {
	st := NewStanding()
	st.trusted = true
	return st
}

// ReusePlans makes each plan of a pass on st valid until st's next pass
// only: the pass carves the plan's lists (its placements, their task
// placements and device lists) from the memory of the last plan again,
// rather than from memory no other plan holds, so that passes allocate
// nothing for their plans. It is for a driver that is done with a plan
// before it runs the next pass and keeps nothing of it (the state
// machine's Step, which copies what it keeps).
func (st *Standing) ReusePlans() { st.reuse = true }

// refuse keeps the first error of a change for the next pass to report.
func (st *Standing) refuse(err error) {
	if st.err == nil {
		st.err = err
	}
}

// SetTenants sets the tenants' quotas and weights (as Pass.Tenants). A new
// list rebuilds the ledger, at the cost of the jobs held.
func (st *Standing) SetTenants(ts []Tenant) {
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b Tenant) int { return strings.Compare(a.Name, b.Name) })
	if st.inited && slices.Equal(sorted, st.given) {
		return
	}
	l, err := newLedger(sorted)
	if err != nil {
		st.refuse(err)
		return
	}
	st.given, st.inited = sorted, true
	st.rebuild(l)
}

// rebuild moves the jobs to a new ledger l: the running jobs are charged
// and the pending ones queued again; the best-effort tenants are those the
// jobs name.
func (st *Standing) rebuild(l *ledger) {
	old := st.l
	st.l = *l
	st.rebuilds++
	st.jobs = make([]int, len(st.l.tenants), len(st.l.tenants)+8)
	st.order = nil
	for _, lj := range st.live {
		lj.tenant = st.tenantOf(lj.job.Tenant)
		st.jobs[lj.tenant]++
		t := &st.l.tenants[lj.tenant]
		for k := range lj.assigns {
			t.used.add(amountOf(&lj.assigns[k]))
		}
	}
	for i := range old.tenants {
		for _, j := range old.tenants[i].queue {
			ti := st.tenantOf(j.Tenant)
			st.jobs[ti]++
			st.l.tenants[ti].queue = append(st.l.tenants[ti].queue, j)
		}
	}
	st.idle = 0
	for i := range st.l.tenants {
		slices.SortFunc(st.l.tenants[i].queue, fifo)
		if st.jobs[i] == 0 && i >= len(st.given) {
			st.idle++
		}
	}
}

// count counts a job in or out of tenant ti. A best-effort tenant left
// with no job is idle; once idle tenants are most of the ledger (a tenant
// per job, as the simulator's fifo-skip queue makes), the ledger is
// rebuilt without them, so that it stays as large as the live work.
func (st *Standing) count(ti, d int) {
	st.jobs[ti] += d
	if ti < len(st.given) {
		return
	}
	switch {
	case d > 0 && st.jobs[ti] == d:
		st.idle--
	case d < 0 && st.jobs[ti] == 0:
		st.idle++
		if st.idle > 16 && 2*st.idle > len(st.l.tenants) {
			l, _ := newLedger(st.given) // checked when given
			st.rebuild(l)
		}
	}
}

// nameOrder lists the ledger's tenants in name order.
func (st *Standing) nameOrder() []int {
	if len(st.order) != len(st.l.tenants) {
		st.order = st.order[:0]
		for i := range st.l.tenants {
			st.order = append(st.order, i)
		}
		slices.SortFunc(st.order, func(a, b int) int { return strings.Compare(st.l.tenants[a].Name, st.l.tenants[b].Name) })
	}
	return st.order
}

// Run records a running job with its live tasks, as Pass.Running lists it,
// in place of what was recorded of it before. The job and its placements
// are copied into the Standing's own buffers; c maps the placements to
// nodes.
func (st *Standing) Run(c *Cluster, rj *RunningJob) { st.RunAssigned(c, rj, nil) }

// RunAssigned is Run with the tasks' assignments already worked out
// (Cluster.AssignOf of each of rj.Tasks, index for index), as the state
// machine keeps them; nil, or a list of another length, works them out.
func (st *Standing) RunAssigned(c *Cluster, rj *RunningJob, as []Assign) {
	if rj == nil || rj.Job == nil {
		st.refuse(fmt.Errorf("pass: field running: want a job"))
		return
	}
	st.Stop(rj.Job.ID)
	if lj := st.run1(c, rj, as); lj != nil {
		st.run[rj.Job.ID] = lj
	}
}

// RunRef names a running job recorded by RunByRef, for StopRef.
type RunRef struct{ lj *liveJob }

// RunByRef is RunAssigned for a driver that keeps its own table of jobs
// (the state machine's frozen copy): the job must not be recorded as
// running already, and the driver stops it with StopRef and the returned
// reference, not by id. A Standing is driven by ids (Run, RunAssigned,
// Stop) or by references, not both: Stop does not know the jobs recorded
// by reference, nor does Queue check against them. It saves the look-ups
// by id. The zero RunRef (a job refused) stops nothing.
func (st *Standing) RunByRef(c *Cluster, rj *RunningJob, as []Assign) RunRef {
	if rj == nil || rj.Job == nil {
		st.refuse(fmt.Errorf("pass: field running: want a job"))
		return RunRef{}
	}
	return RunRef{st.run1(c, rj, as)}
}

// StopRef forgets a running job recorded by RunByRef. The reference is
// spent: its entry is reused.
func (st *Standing) StopRef(r RunRef) {
	if r.lj != nil {
		st.stop(r.lj)
	}
}

// run1 records a running job, not recorded yet, and returns its entry
// (nil when refused).
func (st *Standing) run1(c *Cluster, rj *RunningJob, as []Assign) *liveJob {
	j := rj.Job
	if err := j.CheckBounds(); err != nil {
		st.refuse(fmt.Errorf("pass: field running: %w", err))
		return nil
	}
	sh, err := c.ShapeOf(&j.Task)
	if err != nil {
		st.refuse(fmt.Errorf("pass: field running: job %s: %w", j.ID, err))
		return nil
	}
	lj := st.spareJob()
	*lj = liveJob{job: j, tenant: st.tenantOf(j.Tenant), started: rj.Started, end: endOf(rj.Started, j.Walltime),
		running: true, tasks: lj.tasks[:0], assigns: lj.assigns[:0], alive: lj.alive[:0], slot: len(st.live)}
	st.fit(lj, len(rj.Tasks))
	t := &st.l.tenants[lj.tenant]
	known := len(as) == len(rj.Tasks)
	for i, tp := range rj.Tasks {
		var a Assign
		if known {
			a = as[i]
		} else if a, err = c.AssignOf(tp, sh.Tag); err != nil {
			st.refuse(fmt.Errorf("pass: field running: job %s: %w", j.ID, err))
			continue
		}
		lj.tasks = append(lj.tasks, tp.Task)
		lj.assigns = append(lj.assigns, a)
		lj.alive = append(lj.alive, true)
		t.used.add(amountOf(&a))
		if !st.trusted {
			st.hold(c, &a, 1)
		}
	}
	// Not clipped: the lists are the entry's own (in itself, or a piece
	// carved clipped by fit), so a pass's topUp may append in place, past
	// what restore takes back.
	n := len(lj.tasks)
	lj.nAlive, lj.nInput = n, n
	if j.Kind == Inference && n < j.Count {
		st.short++
	}
	st.live = append(st.live, lj)
	st.count(lj.tenant, 1)
	return lj
}

// Stop forgets a running job; a job not recorded as running is ignored.
func (st *Standing) Stop(id string) {
	lj, ok := st.run[id]
	if !ok {
		return
	}
	delete(st.run, id)
	st.stop(lj)
}

// stop forgets a running job's entry.
func (st *Standing) stop(lj *liveJob) {
	t := &st.l.tenants[lj.tenant]
	for k := range lj.assigns {
		t.used.sub(amountOf(&lj.assigns[k]))
		if !st.trusted {
			st.hold(nil, &lj.assigns[k], -1)
		}
	}
	last := st.live[len(st.live)-1]
	st.live[lj.slot], last.slot = last, lj.slot
	st.live[len(st.live)-1] = nil
	st.live = st.live[:len(st.live)-1]
	if lj.job.Kind == Inference && lj.nInput < lj.job.Count {
		st.short--
	}
	ti := lj.tenant
	// The entry is reused with its buffers: run1 and start set every field
	// again, so only the job is let go here (the rest of the entry is not
	// written, nor read into the cache).
	lj.job = nil
	st.spare = append(st.spare, lj)
	st.count(ti, -1)
}

// fit gives entry lj's lists room for n tasks (the caller empties them):
// its own lists when they have it, else pieces of the Standing's slabs,
// which it keeps for its next jobs.
func (st *Standing) fit(lj *liveJob, n int) {
	if cap(lj.tasks) >= n && cap(lj.assigns) >= n && cap(lj.alive) >= n {
		return
	}
	if len(st.slabT) < n {
		k := max(n, 256)
		st.slabT, st.slabA, st.slabL = make([]int, k), make([]Assign, k), make([]bool, k)
	}
	lj.tasks, lj.assigns, lj.alive = st.slabT[:0:n], st.slabA[:0:n], st.slabL[:0:n]
	st.slabT, st.slabA, st.slabL = st.slabT[n:], st.slabA[n:], st.slabL[n:]
}

// spareJob returns a stopped entry to reuse, or a new one: its buffers
// keep their capacity, the rest is stale (the caller sets every field).
func (st *Standing) spareJob() *liveJob {
	n := len(st.spare)
	if n == 0 {
		b := newLiveBlock()
		for i := len(b) - 1; i >= 1; i-- {
			st.spare = append(st.spare, &b[i])
		}
		return &b[0]
	}
	lj := st.spare[n-1]
	st.spare[n-1] = nil
	st.spare = st.spare[:n-1]
	return lj
}

// Queue records a pending job (as Pass.Pending lists it). The job is read
// during passes, not copied: the caller must not change it while queued.
func (st *Standing) Queue(c *Cluster, j *Job) {
	if j == nil {
		st.refuse(fmt.Errorf("pass: field pending: want a job"))
		return
	}
	if err := j.Validate(); err != nil {
		st.refuse(fmt.Errorf("pass: field pending: %w", err))
		return
	}
	if _, err := c.ShapeOf(&j.Task); err != nil {
		st.refuse(fmt.Errorf("pass: field pending: job %s: %w", j.ID, err))
		return
	}
	ti := st.tenantOf(j.Tenant)
	t := &st.l.tenants[ti]
	i, queued := len(t.queue), false
	// Jobs mostly come in FIFO order: after the tail, one comparison.
	if i > 0 && fifo(t.queue[i-1], j) >= 0 {
		i, queued = slices.BinarySearchFunc(t.queue, j, fifo)
	}
	if _, running := st.run[j.ID]; queued || running {
		st.refuse(fmt.Errorf("pass: field pending: job %s is listed twice or also running", j.ID))
		return
	}
	t.qbuf, t.queue = insertAt(t.qbuf, t.queue, i, j)
	st.count(ti, 1)
}

// Unqueue forgets a pending job, the one Queue was given; a job not
// recorded as pending is ignored.
func (st *Standing) Unqueue(j *Job) {
	ti, ok := st.l.byName[j.Tenant]
	if !ok {
		return
	}
	t := &st.l.tenants[ti]
	// Jobs mostly leave at the head: no search then.
	i, ok := 0, len(t.queue) > 0 && t.queue[0] == j
	if !ok {
		i, ok = slices.BinarySearchFunc(t.queue, j, fifo)
		ok = ok && t.queue[i] == j
	}
	if ok {
		t.queue = deleteAt(t.queue, i)
		st.count(ti, -1)
	}
}

// deleteAt removes q[i], moving whichever side of it is shorter: jobs
// mostly leave a queue at its head, and a long queue would otherwise move
// its whole tail for each of them. The slots freed at the head stay in the
// queue's buffer, for insertAt to take back.
func deleteAt(q []*Job, i int) []*Job {
	if i >= len(q)/2 {
		return slices.Delete(q, i, i+1)
	}
	copy(q[1:i+1], q[:i])
	q[0] = nil // let the job go
	return q[1:]
}

// insertAt inserts j at q[i], q being a suffix of buf (a nil buf, or one
// of another buffer, is none): a full queue moves back to the head of its
// buffer when at least a quarter of its length was freed there, so that a
// queue that jobs enter at the tail and leave at the head neither grows
// its buffer nor allocates. It returns the buffer and the queue.
func insertAt(buf, q []*Job, i int, j *Job) ([]*Job, []*Job) {
	n := len(q)
	if n < cap(q) {
		return buf, slices.Insert(q, i, j)
	}
	if free := cap(buf) - n; n > 0 && free > 0 && free >= n/4 && &buf[:cap(buf)][cap(buf)-1] == &q[:cap(q)][n-1] {
		copy(buf, q)
		clear(buf[n:])
		return buf, slices.Insert(buf[:n], i, j)
	}
	q = slices.Insert(q, i, j) // a new buffer
	return q[:cap(q)], q
}

// tenantOf is the ledger index of a tenant, a best-effort one added on
// first use (as the pass's ledger does).
func (st *Standing) tenantOf(name string) int {
	if !st.inited {
		st.SetTenants(nil)
	}
	i := st.l.tenant(name)
	if i == len(st.jobs) {
		st.jobs = append(st.jobs, 0)
		st.idle++
	}
	return i
}

// hold adds (sign 1) or takes back (-1) an assignment from the per-node
// sums, and marks its node for the next held check. c sizes the sums on
// first use; it may be nil when taking back.
func (st *Standing) hold(c *Cluster, a *Assign, sign int64) {
	n := int(a.Node)
	if n >= len(st.nodes) {
		if c == nil {
			return
		}
		st.grow(c)
	}
	sn := &st.nodes[n]
	sn.cpu += sign * a.CPUMilli
	sn.mem += sign * a.MemMiB
	gpu := st.gpuSums(sn)
	for m := a.Mask; m != 0; m &= m - 1 {
		gpu[trailingZeros(m)] += sign * int64(a.Take)
	}
	if a.Tag >= 0 {
		t := &st.tags[n*numTags+int(a.Tag)]
		*t += int32(sign)
		if *t != 0 {
			sn.tagBits |= 1 << uint(a.Tag)
		} else {
			sn.tagBits &^= 1 << uint(a.Tag)
		}
	}
	if !sn.dirty {
		sn.dirty = true
		st.dirty = append(st.dirty, NodeID(n))
	}
}

// grow sizes the per-node sums for c's nodes (ids only grow).
func (st *Standing) grow(c *Cluster) {
	more := len(c.nodes) - len(st.nodes)
	st.nodes, st.tags = slices.Grow(st.nodes, more), slices.Grow(st.tags, more*numTags)
	for n := len(st.nodes); n < len(c.nodes); n++ {
		sn := standNode{gpuOff: -1}
		if k := c.nodes[n].gpuN; k > inDevs {
			sn.gpuOff = int32(len(st.gpu))
			st.gpu = append(st.gpu, make([]int64, k)...)
		}
		st.nodes = append(st.nodes, sn)
		// append(s, make(...)...) extends s in place: no allocation.
		st.tags = append(st.tags, make([]int32, numTags)...)
		st.markDirty(NodeID(n))
	}
}

func (st *Standing) markDirty(n NodeID) {
	if int(n) < len(st.nodes) && !st.nodes[n].dirty {
		st.nodes[n].dirty = true
		st.dirty = append(st.dirty, n)
	}
}

// sync brings the node sums to c: the nodes changed in c since the last
// pass, and those whose running tasks changed, have their ready amounts
// taken again and the running tasks on them checked against what c has
// allocated there (see checkHeld). A cluster other than the last one, or a
// change log trimmed past the last pass, takes every node.
func (st *Standing) sync(c *Cluster) error {
	if len(st.nodes) < len(c.nodes) {
		st.grow(c)
	}
	if len(st.nodes) != len(c.nodes) {
		return fmt.Errorf("pass: the set-up knows %d nodes, the cluster %d; a set-up serves one cluster", len(st.nodes), len(c.nodes))
	}
	if st.c != c || c.logBase > st.cseq {
		for n := range c.nodes {
			st.markDirty(NodeID(n))
		}
	} else {
		for _, n := range c.log[st.cseq-c.logBase:] {
			st.markDirty(n)
		}
	}
	if st.c != c {
		clear(st.emptyFit)
	}
	bad := NoNode
	for _, n := range st.dirty {
		sn := &st.nodes[n]
		sn.dirty = false
		st.ready.cap.sub(sn.cap)
		st.ready.free.sub(sn.free)
		p := c.readyPart(n)
		if p.ready != sn.ready {
			clear(st.emptyFit)
		}
		sn.cap, sn.free, sn.ready = p.cap, p.free, p.ready
		st.ready.cap.add(p.cap)
		st.ready.free.add(p.free)
		if !st.trusted && (bad < 0 || n < bad) && overHeld(c, n, sn.cpu, sn.mem, st.gpuSums(sn), st.tags[int(n)*numTags:], sn.tagBits) {
			bad = n
		}
	}
	st.dirty = st.dirty[:0]
	st.c, st.cseq = c, c.seq
	if bad >= 0 {
		// Checked again next pass.
		st.markDirty(bad)
		return fmt.Errorf("pass: field running: the tasks on node %s hold more than the cluster has allocated there; the cluster must reflect the running jobs", c.specs[bad].Name)
	}
	return nil
}

// readyPart is node n's share of the ready capacity and free amounts.
func (c *Cluster) readyPart(n NodeID) readyPart {
	r := &c.nodes[n]
	if r.state != NodeReady {
		return readyPart{}
	}
	var g int64
	if r.devCap != 0 { // an unhealthy device holds nothing new
		g = int64(r.devCap) * int64(r.gpuN-int32(popcount(r.sick)))
	} else {
		for i := r.gpuOff; i < r.gpuOff+r.gpuN; i++ {
			if r.sick&(1<<uint(i-r.gpuOff)) == 0 {
				g += int64(c.gpuCap[i])
			}
		}
	}
	return readyPart{cap: amount{gpu: g, cpu: r.cpuCap, mem: r.memCap},
		free: amount{gpu: r.gpuFreeSum, cpu: r.cpuFree, mem: r.memFree}, ready: true}
}

// ScheduleStanding runs one scheduling pass, as Schedule does, on a kept
// set-up: the running jobs, queue and tenants come from st, and the Pass
// leaves Pending, Running and Tenants empty. The set-up is left as it was
// (the pass's own changes are undone), ready for its next changes.
func (c *Cluster) ScheduleStanding(in Pass, st *Standing) (Plan, error) {
	return c.scheduleStanding(in, st, false)
}

// ScheduleKept is ScheduleStanding on a Replica's cluster that leaves the
// plan's placements and evictions on it instead of undoing them: when the
// driver applies the plan to the source, the replica's next Sync finds
// those nodes equal to the source's and neither copies nor re-scores them
// (a placement is then scored once, not again after an undo and a copy).
// A plan not applied is undone by that Sync like any other change made to
// the replica. The plan is the one ScheduleStanding returns.
func (c *Cluster) ScheduleKept(in Pass, st *Standing) (Plan, error) {
	return c.scheduleStanding(in, st, true)
}

// ScheduleKeptAssigns is ScheduleKept that also hands back the plan's
// assignments: those of plan.Place's tasks, job after job and each job's
// tasks in order (AssignOf of each placement, with the task's tag), as the
// pass applied them. A driver whose pass ran on its own cluster (the state
// machine's Step) keeps them without looking each placement's node up by
// name again. The list is the Standing's, reused: valid until its next
// pass, and not to be written.
func (c *Cluster) ScheduleKeptAssigns(in Pass, st *Standing) (Plan, []Assign, error) {
	plan, err := c.scheduleStanding(in, st, true)
	if err != nil {
		return Plan{}, nil, err
	}
	return plan, st.planAs, nil
}

func (c *Cluster) scheduleStanding(in Pass, st *Standing, keep bool) (Plan, error) {
	if in.Pending != nil || in.Running != nil || in.Tenants != nil {
		return Plan{}, fmt.Errorf("pass: fields pending, running, tenants: the set-up supplies them; leave them empty")
	}
	s, err := c.passFrom(&in, st)
	if err != nil {
		return Plan{}, err
	}
	defer s.restore()
	ok := false
	defer func() {
		if !keep || !ok {
			s.rollback(0)
		}
	}()
	s.topUp()
	if err := s.run(); err != nil {
		return Plan{}, err
	}
	s.finish()
	ok = true
	return s.plan, nil
}

// passFrom sets a pass up from a kept set-up.
func (c *Cluster) passFrom(in *Pass, st *Standing) (*pass, error) {
	lim, err := in.check()
	if err != nil {
		return nil, err
	}
	if st.err != nil {
		return nil, st.err
	}
	if !st.inited {
		st.SetTenants(nil)
	}
	if err := st.sync(c); err != nil {
		return nil, err
	}
	l := &st.passL
	l.tenants = append(l.tenants[:0], st.l.tenants...)
	l.byName, l.guaranteed = st.l.byName, slices.Clip(st.l.guaranteed)
	l.cap, l.free = st.ready.cap, st.ready.free
	for len(st.outs) < len(l.tenants) {
		st.outs = append(st.outs, nil)
	}
	for i := range l.tenants {
		t := &l.tenants[i]
		o := st.outs[i]
		if cap(o) < len(t.queue) {
			o = make([]*Unplaced, len(t.queue), len(t.queue)+len(t.queue)/4)
			st.outs[i] = o
		}
		t.out = o[:len(t.queue)]
	}
	if st.emptyFit == nil {
		st.emptyFit = map[Shape]int{}
	}
	if len(c.selectors) != st.nsel || &c.selectors[0] != st.sel0 {
		clear(st.emptyFit) // shapes name selectors by index
		st.nsel, st.sel0 = len(c.selectors), &c.selectors[0]
	}
	// The pass itself and its undo log are reused from pass to pass.
	s := &st.p
	st.in = *in
	st.planAs = st.planAs[:0]
	tps, devs, jps := s.tps, s.devs, s.jps // the rest of the slabs, never carved yet
	if st.reuse {
		tps, devs, jps = st.tps0, st.devs0, st.jps0 // the newest slabs, whole
	}
	*s = pass{c: c, in: &st.in, lim: lim, l: l, live: st.live, nRun: len(st.live), st: st,
		undo: s.undo[:0], buf: s.buf[:0], touched: s.touched[:0], emptyFit: st.emptyFit,
		tps: tps, devs: devs, jps: jps}
	return s, nil
}

// restore undoes what a pass on a kept set-up changed of it: the running
// jobs it evicted or topped up, and the outcomes it recorded.
func (s *pass) restore() {
	for _, lj := range s.touched {
		n := lj.nInput
		lj.tasks, lj.assigns, lj.alive = lj.tasks[:n], lj.assigns[:n], lj.alive[:n]
		for k := range lj.alive {
			lj.alive[k] = true
		}
		lj.nAlive, lj.touched = n, false
	}
	s.touched = s.touched[:0]
	for i := range s.l.tenants {
		t := &s.l.tenants[i]
		clear(t.out[:t.pos])
	}
	s.st.in = Pass{} // let the policy and the random stream go
	// The jobs the pass started: their entries are reused.
	for _, lj := range s.live[s.nRun:] {
		*lj = liveJob{tasks: lj.tasks[:0], assigns: lj.assigns[:0], alive: lj.alive[:0]}
		s.st.spare = append(s.st.spare, lj)
	}
	clear(s.live[s.nRun:]) // the entries this pass appended
}

// touch records that the pass changed a running job's live copy, so that
// a kept set-up gets it back as it was.
func (s *pass) touch(lj *liveJob) {
	if s.st != nil && lj.running && !lj.touched {
		lj.touched = true
		s.touched = append(s.touched, lj)
	}
}
