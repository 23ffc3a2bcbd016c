package scheduler

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
)

// Pass is the input of one scheduling pass: the queue, the running work
// and the settings. The cluster it runs on must already hold the running
// jobs' tasks.
type Pass struct {
	// Now is the driver's clock, in seconds.
	Now int64
	// Policy places every job of the pass.
	Policy *Policy
	// Rng is the pass's only source of chance (random policies draw from it).
	Rng *rand.Rand
	// Pending are the jobs waiting to start, in any order.
	Pending []*Job
	// Running are the jobs with live tasks, as the state machine holds them.
	Running []*RunningJob
	// Tenants carry quotas and fair-share weights. A tenant a job names but
	// this list lacks is best-effort: no guarantee, no maximum, weight one.
	Tenants []Tenant
	// Preempt lets a job that does not fit evict running jobs of strictly
	// lower priority (see the package's preemption rules in preempt.go).
	Preempt bool
	// Backfill turns on EASY backfill: a queue head that cannot start holds
	// a reservation, and jobs behind it (and every later decision of the
	// pass, whatever its tenant) may start only if they cannot delay it.
	// Backfill jobs never preempt. With or without backfill, a head found
	// not to fit the ready nodes even with every running job gone
	// (WhyNever) holds nothing up: the job behind it becomes the head.
	Backfill bool
	// Limits bound the work of the pass; zero fields take the defaults.
	Limits Limits
	// NoUnplaced leaves Plan.Unplaced empty and counts no reasons (Explain
	// is O(nodes)), for a driver that does not read why jobs wait, as the
	// simulator does not: listing every waiting job costs O(queue) a pass.
	// The placements and evictions are the same.
	NoUnplaced bool
}

// Limits bound the work of one pass on a big fleet. A placement costs
// O(tasks · log nodes) through the score index; the limits cap how many of
// them a pass makes and bound the few steps that are not indexed.
type Limits struct {
	// Decisions caps the placement attempts of a pass (default 4096). Jobs
	// not reached are unplaced with WhyBudget.
	Decisions int
	// Explain is how many unplaced queue heads get their reasons counted
	// over the nodes (Cluster.Explain is O(nodes)); default 4.
	Explain int
	// Reservations caps the backfill reservations of a pass (default 8): a
	// blocked head beyond them blocks its tenant's queue outright.
	Reservations int
	// BackfillDepth caps the jobs tried behind one blocked head (default 64).
	BackfillDepth int
	// ShadowWalk caps the running jobs released, in order of expected end,
	// to find when and where a blocked head would start (default 4096).
	// Past it the head gets no reservation and blocks its queue.
	ShadowWalk int
	// ShadowFits caps the trial placements of one such walk (default 32).
	ShadowFits int
	// Preemptions caps the preemption attempts of a pass (default 16);
	// each is O(running tasks + candidate nodes · gang size).
	Preemptions int
}

// The default limits of a pass.
const (
	DefaultDecisions     = 4096
	DefaultExplain       = 4
	DefaultReservations  = 8
	DefaultBackfillDepth = 64
	DefaultShadowWalk    = 4096
	DefaultShadowFits    = 32
	DefaultPreemptions   = 16
)

func (l *Limits) withDefaults() (Limits, error) {
	// Values, not pointers into out: out then stays off the heap (a pass
	// sets its limits up each time).
	names := [...]string{"decisions", "explain", "reservations", "backfill_depth", "shadow_walk", "shadow_fits", "preemptions"}
	defs := [...]int{DefaultDecisions, DefaultExplain, DefaultReservations, DefaultBackfillDepth, DefaultShadowWalk, DefaultShadowFits, DefaultPreemptions}
	v := [...]int{l.Decisions, l.Explain, l.Reservations, l.BackfillDepth, l.ShadowWalk, l.ShadowFits, l.Preemptions}
	for i := range v {
		switch {
		case v[i] < 0:
			return *l, fmt.Errorf("pass: field limits.%s: want >= 0 (0 takes the default), got %d", names[i], v[i])
		case v[i] == 0:
			v[i] = defs[i]
		}
	}
	out := *l
	out.Decisions, out.Explain, out.Reservations, out.BackfillDepth = v[0], v[1], v[2], v[3]
	out.ShadowWalk, out.ShadowFits, out.Preemptions = v[4], v[5], v[6]
	return out, nil
}

// The notes an Unplaced job carries in Why.
const (
	// WhyNoFit: the job does not fit the free capacity (Reasons, when
	// present, count why over the nodes).
	WhyNoFit = "does not fit"
	// WhyNever: the job does not fit the ready nodes even with every
	// running job gone.
	WhyNever = "does not fit the fleet even when empty"
	// WhyQuotaNever: the job alone asks more GPU than its tenant's maximum.
	WhyQuotaNever = "quota: asks more than the tenant's maximum"
	// WhyQuotaMax: the tenant's running jobs leave no room under its maximum.
	WhyQuotaMax = "quota: the tenant is at its maximum"
	// WhyQuotaBorrow: the job must borrow GPU that other tenants' unused
	// guarantees claim.
	WhyQuotaBorrow = "quota: no idle quota to borrow"
	// WhyReserved: the job would delay a blocked head's reservation.
	WhyReserved = "would delay a reserved head job"
	// WhyBehindHead: the tenant's queue is blocked by its head job (FIFO).
	WhyBehindHead = "waits behind the head job"
	// WhyBudget: the pass spent its decisions before reaching the job.
	WhyBudget = "decision budget spent"
)

// noEnd is the expected end of a job of unknown walltime: never.
const noEnd = math.MaxInt64

// endOf is when a job started at start is expected to end.
func endOf(start, walltime int64) int64 {
	if walltime <= 0 || start > noEnd-walltime {
		return noEnd
	}
	return start + walltime
}

// liveJob is a job holding resources during the pass: a running job from
// the input or a job the pass placed. The fields a stop reads come first,
// with room for one task's assignment: a Standing's entries keep a
// one-task job's lists in the entry itself (see newLiveBlock), so that
// taking it back reads one or two adjacent cache lines. Assigning a whole
// entry zeroes those lists' contents: fill them after.
type liveJob struct {
	job     *Job
	tenant  int
	assigns []Assign // their assignments, parallel to tasks
	inA     [1]Assign
	// slot is the job's index in a Standing's live list; touched is set
	// while a pass on a Standing has changed this copy (see pass.touch).
	slot   int
	nAlive int
	// nInput is how many of tasks came from Pass.Running: only those may
	// be preempted (a replica the pass itself tops up is not running yet).
	nInput  int
	tasks   []int  // task indices of the tasks held
	alive   []bool // false once the pass evicted the task
	inT     [1]int
	started int64
	end     int64 // expected end; noEnd when unknown
	running bool  // from Pass.Running, so a possible victim
	touched bool
	inL     [1]bool
}

// liveBlock is how many entries a Standing allocates at once.
const liveBlock = 32

// newLiveBlock returns liveBlock empty entries, each with its lists in
// itself, room for one task.
func newLiveBlock() []liveJob {
	b := make([]liveJob, liveBlock)
	for i := range b {
		lj := &b[i]
		lj.assigns, lj.tasks, lj.alive = lj.inA[:0], lj.inT[:0], lj.inL[:0]
	}
	return b
}

// undoOp is one change the pass made to the cluster.
type undoOp struct {
	a       Assign
	applied bool // true: the pass applied a; false: it released a
}

// pass is the state of one scheduling pass.
type pass struct {
	c    *Cluster
	in   *Pass
	lim  Limits
	l    *ledger
	live []*liveJob
	// undo records every change to the cluster, so that any suffix can be
	// rolled back and the whole pass undone before Schedule returns.
	undo  []undoOp
	plan  Plan
	resv  []*reservation
	byEnd []*liveJob // the running jobs in byEnd order, once needed
	vict  *victimIndex
	buf   []Assign
	// emptyFit caches, per task shape, how many tasks the ready nodes
	// would hold empty (capped at MaxTasksPerJob), for neverFits.
	emptyFit map[Shape]int
	explains int
	preempts int
	// nRun is how many of live are running jobs (the rest the pass started).
	nRun int
	// st is the kept set-up the pass runs on (ScheduleStanding), nil for a
	// set-up built from the Pass; touched lists its running jobs' copies
	// the pass changed, given back as they were when it ends.
	st      *Standing
	touched []*liveJob
	// tps and devs are the slabs the plan's task placements and their
	// device lists are carved from (see placements), and jps that of its
	// list of placed jobs: memory no other plan holds, since a piece is
	// carved once. A pass on a kept set-up carves the rest of the last
	// pass's slabs, in blocks of slabMin at least; another starts empty
	// and sizes them by what it places.
	tps  []TaskPlacement
	devs []int
	jps  []JobPlacement
	// expect is how many jobs the pass may place, as far as the plan's
	// first allocations are sized by it: the jobs queued when it first
	// places one, at most 16.
	expect int
}

// slabMin is the smallest block a pass on a kept set-up carves its plans
// from: passes that place a few jobs each then allocate once in many. A
// variable for tests, which carve many blocks with small ones.
var slabMin = 256

// slab is the smallest block the pass carves its plan from.
func (s *pass) slab() int {
	if s.st != nil {
		return slabMin
	}
	return 0
}

// placements returns n zero task placements for the plan, from the pass's
// slab; their capacity is clipped so that an append to one never runs into
// the next.
func (s *pass) placements(n int) []TaskPlacement {
	if len(s.tps) < n {
		s.tps = make([]TaskPlacement, max(n, s.expect, 2*len(s.plan.Place), s.slab()))
		if s.st != nil && s.st.reuse {
			s.st.tps0 = s.tps
		}
	}
	out := s.tps[:n:n]
	s.tps = s.tps[n:]
	return out
}

// devices returns room for n device indices from the pass's slab (nil for
// none), clipped as placements are.
func (s *pass) devices(n int) []int {
	if n == 0 {
		return nil
	}
	if len(s.devs) < n {
		s.devs = make([]int, max(n*max(s.expect, 1), 2*len(s.plan.Place), 2*s.slab()))
		if s.st != nil && s.st.reuse {
			s.st.devs0 = s.devs
		}
	}
	out := s.devs[:0:n]
	s.devs = s.devs[n:]
	return out
}

// Schedule runs one scheduling pass and returns its plan: the evictions,
// the placements and, for every pending job not placed, why.
//
// Tenants take turns by dominant-resource fair share: the tenant of
// smallest weighted dominant share (GPU, CPU and memory, each relative to
// the ready capacity) goes next, and its share grows with what it starts.
// Within a tenant the queue is FIFO by priority (higher first), then
// submission time, then id. A queue head that cannot start blocks its
// tenant's queue, except that with Pass.Backfill jobs behind it may start
// when they cannot delay it (see reservation). Quotas are checked before
// every start (see Tenant). With Pass.Preempt a head that does not fit may
// evict lower-priority work (see preempt.go). Before the queue, running
// services get their missing replicas back (see topUp).
//
// The cluster must reflect the running jobs. Schedule applies its decisions
// to the cluster as it goes, so that later decisions see earlier ones, and
// undoes all of them before it returns: the free capacity of every node
// and device is exactly what it was (only internal caches move). The state
// machine applies the returned plan: evictions first, then placements.
//
// Work per decision is bounded (see Limits): each placement goes through
// the score index; Explain, backfill shadows and preemption are capped per
// pass. Setting up costs O(nodes + running tasks + pending log pending).
// The same inputs give the same plan, byte for byte.
func (c *Cluster) Schedule(in Pass) (Plan, error) {
	s, err := c.newPass(&in)
	if err != nil {
		return Plan{}, err
	}
	defer s.rollback(0)
	s.topUp()
	if err := s.run(); err != nil {
		return Plan{}, err
	}
	s.finish()
	return s.plan, nil
}

// check checks a pass's settings and returns its limits.
func (in *Pass) check() (Limits, error) {
	if in.Policy == nil {
		return Limits{}, fmt.Errorf("pass: field policy: want a policy")
	}
	if err := in.Policy.Validate(); err != nil {
		return Limits{}, fmt.Errorf("pass: field policy: %w", err)
	}
	if in.Rng == nil {
		return Limits{}, fmt.Errorf("pass: field rng: want a seeded *rand.Rand")
	}
	return in.Limits.withDefaults()
}

func (c *Cluster) newPass(in *Pass) (*pass, error) {
	lim, err := in.check()
	if err != nil {
		return nil, err
	}
	l, err := newLedger(in.Tenants)
	if err != nil {
		return nil, err
	}
	s := &pass{c: c, in: in, lim: lim, l: l, nRun: len(in.Running)}
	// The GPU capacity of the ready nodes is that of every device less the
	// few on nodes not ready, so the walk reads no device of a ready node.
	l.cap.gpu = c.gpuCapAll
	for i := range c.nodes {
		r := &c.nodes[i]
		if r.state != NodeReady {
			for g := r.gpuOff; g < r.gpuOff+r.gpuN; g++ {
				l.cap.gpu -= int64(c.gpuCap[g])
			}
			continue
		}
		for m := r.sick; m != 0; m &= m - 1 { // unhealthy devices hold nothing new
			l.cap.gpu -= int64(c.gpuCap[r.gpuOff+int32(trailingZeros(m))])
		}
		l.cap.cpu += r.cpuCap
		l.cap.mem += r.memCap
		l.free.cpu += r.cpuFree
		l.free.mem += r.memFree
		l.free.gpu += r.gpuFreeSum
	}
	// The running jobs come sorted by id from the state machine: while they
	// are, an id greater than the last is new, and the map of ids is built
	// only if the order breaks (ids then holds every running id before i)
	// or for the pending jobs.
	var ids map[string]bool
	sorted := true
	// The running jobs' copies share a few slabs, each piece clipped so that
	// topUp's appends to one never run into the next.
	ntask := 0
	for _, rj := range in.Running {
		if rj != nil {
			ntask += len(rj.Tasks)
		}
	}
	sl := liveSlab{jobs: make([]liveJob, 0, len(in.Running)), tasks: make([]int, 0, ntask),
		assigns: make([]Assign, 0, ntask), alive: make([]bool, 0, ntask)}
	s.live = make([]*liveJob, 0, len(in.Running))
	for i, rj := range in.Running {
		if rj == nil || rj.Job == nil {
			return nil, fmt.Errorf("pass: field running[%d]: want a job", i)
		}
		if sorted && i > 0 && rj.Job.ID <= in.Running[i-1].Job.ID {
			sorted = false
			ids = make(map[string]bool, len(in.Running)+len(in.Pending))
			for _, prev := range in.Running[:i] {
				ids[prev.Job.ID] = true
			}
		}
		if !sorted {
			if ids[rj.Job.ID] {
				return nil, fmt.Errorf("pass: field running[%d]: job %s listed twice", i, rj.Job.ID)
			}
			ids[rj.Job.ID] = true
		}
		// The pass sizes its work by the job's counts (topUp walks them).
		if err := rj.Job.CheckBounds(); err != nil {
			return nil, fmt.Errorf("pass: field running[%d]: %w", i, err)
		}
		lj, err := s.liveOf(rj, &sl)
		if err != nil {
			return nil, fmt.Errorf("pass: field running[%d]: %w", i, err)
		}
		s.live = append(s.live, lj)
	}
	if err := s.checkHeld(); err != nil {
		return nil, err
	}
	if sorted {
		ids = make(map[string]bool, len(in.Pending))
	}
	for i, j := range in.Pending {
		if j == nil {
			return nil, fmt.Errorf("pass: field pending[%d]: want a job", i)
		}
		if err := j.Validate(); err != nil {
			return nil, fmt.Errorf("pass: field pending[%d]: %w", i, err)
		}
		if _, err := c.ShapeOf(&j.Task); err != nil {
			return nil, fmt.Errorf("pass: field pending[%d]: job %s: %w", i, j.ID, err)
		}
		if ids[j.ID] || sorted && s.runningID(j.ID) {
			return nil, fmt.Errorf("pass: field pending[%d]: job %s is listed twice or also running", i, j.ID)
		}
		ids[j.ID] = true
		t := &l.tenants[l.tenant(j.Tenant)]
		t.queue = append(t.queue, j)
	}
	for i := range l.tenants {
		t := &l.tenants[i]
		slices.SortFunc(t.queue, fifo)
		t.out = make([]*Unplaced, len(t.queue))
	}
	return s, nil
}

// runningID reports whether a running job has the id, by binary search of
// the running jobs sorted by id.
func (s *pass) runningID(id string) bool {
	_, ok := slices.BinarySearchFunc(s.in.Running, id, func(rj *RunningJob, id string) int { return strings.Compare(rj.Job.ID, id) })
	return ok
}

// fifo orders a tenant's queue: priority desc, submitted asc, id asc.
func fifo(a, b *Job) int {
	if a.Priority != b.Priority {
		return cmp.Compare(b.Priority, a.Priority)
	}
	if a.Submitted != b.Submitted {
		return cmp.Compare(a.Submitted, b.Submitted)
	}
	return strings.Compare(a.ID, b.ID)
}

// liveSlab holds the running jobs' copies for one pass, in a few slabs.
type liveSlab struct {
	jobs    []liveJob
	tasks   []int
	assigns []Assign
	alive   []bool
}

// liveOf converts a running job into the slabs and charges its tasks to
// its tenant.
func (s *pass) liveOf(rj *RunningJob, sl *liveSlab) (*liveJob, error) {
	j := rj.Job
	sh, err := s.c.ShapeOf(&j.Task)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	sl.jobs = append(sl.jobs, liveJob{job: j, tenant: s.l.tenant(j.Tenant), started: rj.Started,
		end: endOf(rj.Started, j.Walltime), running: true})
	lj := &sl.jobs[len(sl.jobs)-1]
	t := &s.l.tenants[lj.tenant]
	first := len(sl.tasks)
	for _, tp := range rj.Tasks {
		a, err := s.c.AssignOf(tp, sh.Tag)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		sl.tasks = append(sl.tasks, tp.Task)
		sl.assigns = append(sl.assigns, a)
		sl.alive = append(sl.alive, true)
		t.used.add(amountOf(&a))
	}
	end := len(sl.tasks)
	lj.tasks = sl.tasks[first:end:end]
	lj.assigns = sl.assigns[first:end:end]
	lj.alive = sl.alive[first:end:end]
	lj.nAlive = end - first
	lj.nInput = end - first
	return lj, nil
}

// heldScratch is checkHeld's scratch, kept with the cluster so that a pass
// neither allocates nor clears slabs the size of the fleet: every entry is
// zero between checks, and a check zeroes again only the nodes it touched.
type heldScratch struct {
	cpu, mem []int64  // per node
	gpu      []int64  // per device
	tags     []int32  // per node and tag
	tagBits  []uint64 // per node: a bit per tag whose count may be non-zero
	seen     []bool   // per node: listed in nodes
	nodes    []NodeID // the nodes touched, in order of first touch
}

// clear zeroes what the last check touched.
func (h *heldScratch) clear(c *Cluster) {
	for _, n := range h.nodes {
		r := &c.nodes[n]
		h.cpu[n], h.mem[n], h.seen[n] = 0, 0, false
		clear(h.gpu[r.gpuOff : r.gpuOff+r.gpuN])
		clear(h.tags[int(n)*numTags : (int(n)+1)*numTags])
		h.tagBits[n] = 0
	}
	h.nodes = h.nodes[:0]
}

// checkHeld verifies that the cluster holds the running jobs' tasks: on
// no node and device do they add up to more than is allocated there. The
// pass releases them tentatively, so a cluster that does not reflect them
// is broken input. Only the nodes the tasks name can fail (a node holds
// nothing of theirs otherwise, and the cluster's own apply and release
// never leave more free than its capacity), so it costs O(running tasks);
// the first failing node in node order is reported.
func (s *pass) checkHeld() error {
	c := s.c
	h := &c.held
	if len(h.cpu) != len(c.nodes) || len(h.gpu) != len(c.gpuFree) || len(h.tags) != len(c.tagCount) {
		// First use, or the fleet grew: all zero again.
		*h = heldScratch{
			cpu: make([]int64, len(c.nodes)), mem: make([]int64, len(c.nodes)),
			gpu: make([]int64, len(c.gpuFree)), tags: make([]int32, len(c.tagCount)),
			seen: make([]bool, len(c.nodes)), nodes: h.nodes[:0], tagBits: make([]uint64, len(c.nodes)),
		}
	}
	for _, lj := range s.live {
		for i := range lj.assigns {
			a := &lj.assigns[i]
			r := &c.nodes[a.Node]
			if !h.seen[a.Node] {
				h.seen[a.Node] = true
				h.nodes = append(h.nodes, a.Node)
			}
			h.cpu[a.Node] += a.CPUMilli
			h.mem[a.Node] += a.MemMiB
			for m := a.Mask; m != 0; m &= m - 1 {
				h.gpu[r.gpuOff+int32(trailingZeros(m))] += int64(a.Take)
			}
			if a.Tag >= 0 {
				h.tags[int(a.Node)*numTags+int(a.Tag)]++
				h.tagBits[a.Node] |= 1 << uint(a.Tag)
			}
		}
	}
	bad := NodeID(-1)
	for _, n := range h.nodes {
		if (bad < 0 || n < bad) && h.over(c, n) {
			bad = n
		}
	}
	h.clear(c)
	if bad >= 0 {
		return fmt.Errorf("pass: field running: the tasks on node %s hold more than the cluster has allocated there; the cluster must reflect the running jobs", c.specs[bad].Name)
	}
	return nil
}

// over reports whether the running tasks counted on node n add up to
// more than the cluster has allocated there.
func (h *heldScratch) over(c *Cluster, n NodeID) bool {
	return overHeld(c, n, h.cpu[n], h.mem[n], h.gpu[c.nodes[n].gpuOff:], h.tags[int(n)*numTags:], h.tagBits[n])
}

// overHeld reports whether running tasks holding cpu and mem on node n,
// gpu[i] on its device i and tags[t] tasks of each tag t of tagBits (a
// bit per tag counted) add up to more than the cluster has allocated there.
func overHeld(c *Cluster, n NodeID, cpu, mem int64, gpu []int64, tags []int32, tagBits uint64) bool {
	r := &c.nodes[n]
	if cpu > r.cpuCap-r.cpuFree || mem > r.memCap-r.memFree {
		return true
	}
	for i, g := range gpu[:r.gpuN] {
		if g > int64(c.devUsed(r, int32(i))) {
			return true
		}
	}
	// Only a tag counted here can exceed the cluster's count (never below 0).
	for m := tagBits; m != 0; m &= m - 1 {
		if t := trailingZeros(m); tags[t] > c.tagCount[int(n)*numTags+t] {
			return true
		}
	}
	return false
}

// count keeps the free amounts of the ready nodes current: sign -1 when a
// is applied, +1 when it is released.
func (s *pass) count(a *Assign, sign int64) {
	if s.c.nodes[a.Node].state != NodeReady {
		return
	}
	am := amountOf(a)
	s.l.free.gpu += sign * am.gpu
	s.l.free.cpu += sign * am.cpu
	s.l.free.mem += sign * am.mem
}

// applied records assignments that PlaceJob or PlaceTask applied already.
func (s *pass) applied(as []Assign) {
	for i := range as {
		s.count(&as[i], -1)
		s.undo = append(s.undo, undoOp{a: as[i], applied: true})
	}
}

// release gives an assignment's resources back, for the rest of the pass.
func (s *pass) release(a Assign) {
	s.c.release(&a)
	s.count(&a, +1)
	s.undo = append(s.undo, undoOp{a: a})
}

// rollback undoes the changes to the cluster after undo position mark.
func (s *pass) rollback(mark int) {
	for i := len(s.undo) - 1; i >= mark; i-- {
		op := &s.undo[i]
		if op.applied {
			s.c.release(&op.a)
			s.count(&op.a, +1)
		} else {
			s.c.apply(&op.a)
			s.count(&op.a, -1)
		}
	}
	s.undo = s.undo[:mark]
}

// run takes the queues in fair-share order until they are spent.
func (s *pass) run() error {
	decisions := 0
	s.l.order()
	for {
		// The tenant that took the last turn, and any whose holdings that
		// turn changed, take their place again.
		for _, k := range s.l.moved {
			s.l.fix(k)
		}
		s.l.moved = s.l.moved[:0]
		ti := s.l.pick()
		if ti < 0 {
			return nil
		}
		s.l.moved = append(s.l.moved, ti)
		t := &s.l.tenants[ti]
		if t.backfill && t.depth >= s.lim.BackfillDepth {
			t.done = true
			continue
		}
		if decisions >= s.lim.Decisions {
			return nil // the rest is unplaced with WhyBudget
		}
		decisions++
		var err error
		if t.backfill {
			t.depth++
			err = s.backfillStep(ti)
		} else {
			err = s.headStep(ti)
		}
		if err != nil {
			return err
		}
	}
}

// unplaced records why the job at the tenant's position did not start and
// moves past it.
func (s *pass) unplaced(t *tenantState, why string, reasons map[string]int) {
	j := t.queue[t.pos]
	t.out[t.pos] = &Unplaced{Job: j.ID, Why: why, Reasons: reasons}
	t.pos++
}

// headStep tries the head of a tenant's queue: quota, placement,
// preemption; a head that cannot start blocks the queue.
func (s *pass) headStep(ti int) error {
	t := &s.l.tenants[ti]
	j := t.queue[t.pos]
	ok, why, err := s.place(ti, j)
	if err != nil || ok {
		if ok {
			t.pos++
		}
		return err
	}
	if why == WhyQuotaNever {
		// It can never start; it does not hold up the jobs behind it.
		s.unplaced(t, why, nil)
		return nil
	}
	if why == WhyNoFit && s.neverFits(j) {
		// Nor can a job the ready nodes could not hold even empty: it
		// would block its queue forever (backfill or not).
		var reasons map[string]int
		if !s.in.NoUnplaced && s.explains < s.lim.Explain {
			s.explains++
			reasons = s.explain(j)
		}
		s.unplaced(t, WhyNever, reasons)
		return nil
	}
	if s.in.Preempt && (why == WhyNoFit || why == WhyQuotaBorrow) {
		ok, err := s.preempt(ti, j)
		if err != nil || ok {
			if ok {
				t.pos++
			}
			return err
		}
	}
	// The head is blocked.
	var reasons map[string]int
	if why == WhyNoFit && !s.in.NoUnplaced && s.explains < s.lim.Explain {
		s.explains++
		reasons = s.explain(j)
	}
	s.unplaced(t, why, reasons)
	t.head, t.done = j, true
	if why != WhyNoFit || !s.in.Backfill || len(s.resv) >= s.lim.Reservations {
		return nil
	}
	r, never, err := s.reserve(j)
	switch {
	case err != nil:
		return err
	case never:
		// Nothing running holds it up, so it holds up nothing: the next
		// job is the head.
		t.out[t.pos-1].Why = WhyNever
		t.head, t.done = nil, false
	case r != nil:
		s.resv = append(s.resv, r)
		t.done, t.backfill = false, true
	}
	return nil
}

// backfillStep tries a job behind a blocked head: it starts only if the
// quotas allow and it delays no reservation. Backfill never preempts.
func (s *pass) backfillStep(ti int) error {
	t := &s.l.tenants[ti]
	ok, why, err := s.place(ti, t.queue[t.pos])
	switch {
	case err != nil:
		return err
	case ok:
		t.pos++
	default:
		s.unplaced(t, why, nil)
	}
	return nil
}

var quotaWhy = [...]string{quotaNever: WhyQuotaNever, quotaMax: WhyQuotaMax, quotaBorrow: WhyQuotaBorrow}

// place tries to start a job where the policy puts it, within the quotas.
// The quotas are checked on the request first and then on what the
// placement takes (a share placed on a MIG instance takes all of it). A
// placement that would delay a reservation is undone and tried once more
// with the nodes of the reservations it must respect hidden from the
// policy; if that fails too the job does not start (WhyReserved).
func (s *pass) place(ti int, j *Job) (bool, string, error) {
	if v := s.l.check(ti, j.GPUMilliTotal()); v != quotaOK {
		return false, quotaWhy[v], nil
	}
	end := endOf(s.in.Now, j.Walltime)
	for try := 0; try < 2; try++ {
		mark := len(s.undo)
		var show func()
		if try == 1 {
			show = s.hideReserved(end)
		}
		as, ok, err := s.c.PlaceJob(s.in.Policy, j, s.in.Rng, s.buf[:0])
		s.buf = as[:0]
		if show != nil {
			show()
		}
		switch {
		case err != nil:
			return false, "", fmt.Errorf("schedule: %w", err)
		case !ok && try == 0:
			return false, WhyNoFit, nil
		case !ok:
			return false, WhyReserved, nil
		}
		s.applied(as)
		if v := s.quotaAfter(ti, as); v != quotaOK {
			s.rollback(mark)
			return false, quotaWhy[v], nil
		}
		if s.admit(as, end) {
			s.start(ti, j, as)
			return true, "", nil
		}
		s.rollback(mark)
	}
	return false, WhyReserved, nil
}

// quotaAfter checks the quotas of tenant ti for assignments just applied,
// as they stood before them.
func (s *pass) quotaAfter(ti int, as []Assign) quotaVerdict {
	var took, ready int64
	for i := range as {
		g := amountOf(&as[i]).gpu
		took += g
		if s.c.nodes[as[i].Node].state == NodeReady {
			ready += g
		}
	}
	s.l.free.gpu += ready
	v := s.l.check(ti, took)
	s.l.free.gpu -= ready
	return v
}

// start commits a placement: the tenant is charged, the job is live and
// the plan places it.
func (s *pass) start(ti int, j *Job, as []Assign) {
	var lj *liveJob
	if s.st != nil {
		lj = s.st.spareJob() // given back when the pass ends (restore)
	} else {
		lj = &liveJob{}
		lj.assigns, lj.tasks, lj.alive = lj.inA[:0], lj.inT[:0], lj.inL[:0]
	}
	n := len(as)
	switch {
	case s.st != nil:
		s.st.fit(lj, n)
	case cap(lj.tasks) < n || cap(lj.alive) < n || cap(lj.assigns) < n:
		lj.tasks, lj.alive, lj.assigns = make([]int, 0, n), make([]bool, 0, n), make([]Assign, 0, n)
	}
	*lj = liveJob{job: j, tenant: ti, started: s.in.Now, end: endOf(s.in.Now, j.Walltime),
		assigns: lj.assigns[:0], alive: lj.alive[:0], tasks: lj.tasks[:0], nAlive: n}
	lj.assigns = append(lj.assigns, as...) // after: the assignment above zeroes inA
	if s.plan.Place == nil {
		// The plan's first placement: size its lists for the queue.
		for i := range s.l.tenants {
			s.expect += len(s.l.tenants[i].queue)
		}
		s.expect = min(max(s.expect, 1), 16)
		if len(s.jps) < s.expect {
			s.jps = make([]JobPlacement, max(s.expect, s.slab()))
			if s.st != nil && s.st.reuse {
				s.st.jps0 = s.jps
			}
		}
		s.plan.Place = s.jps[:0:s.expect]
		s.jps = s.jps[s.expect:]
	}
	jp := JobPlacement{Job: j.ID, Tasks: s.placements(len(as))}
	t := &s.l.tenants[ti]
	for k := range as {
		lj.tasks, lj.alive = append(lj.tasks, k), append(lj.alive, true)
		t.used.add(amountOf(&as[k]))
		jp.Tasks[k] = s.c.placementIn(k, as[k], s.devices(bits.OnesCount64(as[k].Mask)))
	}
	s.live = append(s.live, lj)
	s.plan.Place = append(s.plan.Place, jp)
	if s.st != nil {
		s.st.planAs = append(s.st.planAs, as...)
	}
}

// neverFits reports whether a job could not start even if every running
// job were gone: the ready nodes that could host its task, each empty,
// hold fewer than Count of its tasks. The count per node is exact for
// alike tasks (see tasksPerEmptyNode), and the policy's own filters are
// not applied, so "never" is only said when it is certain. It costs
// O(nodes) once per task shape and pass.
func (s *pass) neverFits(j *Job) bool {
	sh, err := s.c.ShapeOf(&j.Task)
	if err != nil {
		return false // validated when the pass began
	}
	if s.emptyFit == nil {
		s.emptyFit = map[Shape]int{}
	}
	total, ok := s.emptyFit[sh]
	if !ok {
		for n := range s.c.nodes {
			if !s.c.couldHost(NodeID(n), &sh) {
				continue
			}
			if total += s.c.tasksPerEmptyNode(NodeID(n), &sh); total >= MaxTasksPerJob {
				total = MaxTasksPerJob
				break
			}
		}
		s.emptyFit[sh] = total
	}
	return total < j.Count
}

// explain counts over the nodes why a job's task does not fit now.
func (s *pass) explain(j *Job) map[string]int {
	sh, err := s.c.ShapeOf(&j.Task)
	if err != nil {
		return nil // validated when the pass began
	}
	out := map[string]int{}
	for r, k := range s.c.Explain(s.in.Policy, &sh) {
		out[r.String()] += k
	}
	return out
}

// finish lists every pending job that did not start, tenant by tenant in
// name order and each queue in FIFO order.
func (s *pass) finish() {
	if s.in.NoUnplaced {
		return
	}
	var order []int
	if s.st != nil {
		order = s.st.nameOrder()
	} else {
		order = make([]int, len(s.l.tenants))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(s.l.tenants[a].Name, s.l.tenants[b].Name) })
	}
	for _, i := range order {
		t := &s.l.tenants[i]
		behind := "" // one string for the tenant's queue, not one a job
		for k := range t.queue {
			u := Unplaced{Job: t.queue[k].ID}
			switch {
			case t.out[k] != nil:
				u = *t.out[k]
			case k < t.pos:
				continue // placed
			case t.head != nil && (t.done || t.backfill):
				if behind == "" {
					behind = WhyBehindHead + " " + t.head.ID
				}
				u.Why = behind
			default:
				u.Why = WhyBudget
			}
			s.plan.Unplaced = append(s.plan.Unplaced, u)
		}
	}
}
