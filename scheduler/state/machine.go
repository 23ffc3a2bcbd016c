package state

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"petite/scheduler"
)

// Machine is the deterministic state machine: the cluster (pools, nodes,
// free capacity), the job table and the tenants, changed only by Apply.
// It is not safe for concurrent use; drivers serialise access, as raft does.
type Machine struct {
	c *scheduler.Cluster
	// jobs finds a record by its job's id (over recs, below).
	jobs jobIndex
	// pending is the queue in submission order (seq); a job that leaves
	// it from within leaves a hole (r nil, its seq kept, so that the
	// order still bisects), holes counting them, squeezed out once they
	// are half the slice: a job leaves the queue in O(log n), not O(n).
	pending []queued
	holes   int
	nrun    int // running jobs
	// view lists the running jobs by id as of the last runningView, with
	// their records in viewRec; viewAdd lists the jobs started since (each
	// record once: inView marks those in either list), and dirty says a
	// job started or stopped since. Starts and stops cost O(1); the view
	// is brought up to date when read, in one merge.
	view    []*scheduler.RunningJob
	viewRec []*record
	viewAdd []*record
	viewOn  bool
	dirty   bool
	tenants map[string]scheduler.Tenant
	applied uint64
	nextSeq uint64
	planner *Frozen // Plan's copy of the state, kept warm between passes
	// sets are scratch sets of task indices for the checks of task lists
	// (see taskSet); work counts the elements those checks and the changes
	// they lead to visit, so that a test can bound a command's work
	// without a clock.
	sets [2]taskSet
	work uint64
	// planGen numbers the plans checked (see checkPlacements); undo is
	// applyPlan's scratch log of the changes to roll back.
	planGen uint64
	undo    []undo
	ops     []placeOp // checkPlacements's scratch, its skip marks and assignments
	skip    []bool
	opAs    []scheduler.Assign
	// asBlock is a block that the records of starting jobs of several
	// tasks take their assignments from (see keepAs).
	asBlock []scheduler.Assign
	// ids is a block of strings that results' job lists are carved from
	// (see idList): a finish or a plan allocates no list of its own.
	ids []string
	// lastName is the node a placement named last, lastNode its id.
	lastName string
	lastNode scheduler.NodeID
	// ended lists the ended jobs the table still holds, in no order, for
	// Prune to visit them and not every job.
	ended []*record
	// recs holds each record of the table at its slot (record.slot), and
	// free the slots of the records pruned: a command's hint (see Hint)
	// finds its job here without hashing its id. Slots are not state: a
	// machine restored from a snapshot numbers them afresh.
	recs []*record
	free []int32
	// lastSub is the record the last Submit added, which Hint finds
	// first (checked, as any hint: pruned, its slot holds another).
	lastSub *record
	// A stepping machine reuses the records Prune lets go (see
	// recycles): limbo holds those its planner's log may still name,
	// spare those the planner has read past, for Submit to fill again.
	// shared says a Frozen other than the machine's own planner was made,
	// which may keep records: none is reused then.
	limbo, spare []*record
	shared       bool
	// warmed keeps what Warm read, so that the reads stay.
	warmed int64
	// stepAs is the last Step's plan's assignments (StepAssigns).
	stepAs   []scheduler.Assign
	recycled int // records filled again, for tests
	// jlog lists the jobs whose status or live tasks changed, in order;
	// jlogBase is the position of jlog[0] in the whole history. A Frozen
	// reads it from where it last stopped (see Refreeze); it is trimmed as
	// the cluster's change log is. tver counts the changes to tenants.
	jlog     []*record
	jlogBase uint64
	tver     uint64
}

// queued is a pending job with its place in the queue, kept beside it so
// that finding a job's place reads only the queue.
type queued struct {
	seq uint64
	r   *record
}

// bySeq orders the queue.
func bySeq(q queued, seq uint64) int { return cmp.Compare(q.seq, seq) }

// changed records that a job's status or live tasks changed.
func (m *Machine) changed(r *record) {
	r.ver++
	m.jlog = append(m.jlog, r)
	if limit := 4*m.jobs.n + 1024; len(m.jlog) > 2*limit {
		m.trimLog(limit)
	}
}

// trimLog keeps the last keep entries of the job log; a Frozen that had
// not read the rest copies every job again.
func (m *Machine) trimLog(keep int) {
	drop := max(0, len(m.jlog)-keep)
	n := copy(m.jlog, m.jlog[drop:])
	clear(m.jlog[n:]) // let pruned records go
	m.jlog = m.jlog[:n]
	m.jlogBase += uint64(drop)
}

// New returns an empty machine: no pools, nodes, tenants or jobs.
func New() *Machine {
	c, err := scheduler.NewCluster(nil, nil)
	if err != nil {
		panic(fmt.Sprintf("state: empty cluster: %v", err)) // cannot happen: nothing to reject
	}
	return newMachine(c)
}

func newMachine(c *scheduler.Cluster) *Machine {
	return &Machine{c: c, jobs: newJobIndex(), tenants: map[string]scheduler.Tenant{}}
}

// Result says what an applied command did.
type Result struct {
	// Changed is false when the command changed nothing (a plan applied a
	// second time, a node set to the state it has).
	Changed bool
	// Started lists the jobs that went from pending to running, Requeued the
	// jobs sent back to the queue, Degraded the running services that lost
	// replicas, and Ended the jobs that reached a final status; each sorted.
	Started  []string
	Requeued []string
	Degraded []string
	Ended    []string
}

func (r *Result) finish() {
	for _, l := range [...]*[]string{&r.Started, &r.Requeued, &r.Degraded, &r.Ended} {
		if len(*l) > 1 { // most commands name a job or none
			slices.Sort(*l)
			*l = slices.Compact(*l)
		}
	}
}

// Apply applies one command. It is deterministic: the result and the new
// state depend only on the state and the command. A rejected command
// returns an error and changes nothing.
//
// The command does not escape (a type switch, no reflection on the
// value), so a driver's command literal needs no allocation.
func (m *Machine) Apply(cmd Command) (Result, error) {
	var (
		res Result
		err error
		typ string
	)
	switch c := cmd.(type) {
	case RegisterPool:
		typ, err = c.Type(), m.registerPool(c, &res)
	case RegisterNode:
		typ, err = c.Type(), m.registerNode(c, &res)
	case SetNodeState:
		typ, err = c.Type(), m.setNodeState(c, &res)
	case SetRanks:
		typ, err = c.Type(), m.setRanks(c, &res)
	case SetTenant:
		typ, err = c.Type(), m.setTenant(c, &res)
	case Submit:
		return m.applySubmit(c)
	case Cancel:
		typ, err = c.Type(), m.cancel(c, &res)
	case ApplyPlan:
		typ, err = c.Type(), m.applyPlan(c, &res)
	case Finish:
		typ, err = c.Type(), m.finish(c, &res)
	case Preempt:
		typ, err = c.Type(), m.preempt(c, &res)
	case Prune:
		typ, err = c.Type(), m.prune(c, &res)
	case SetDeviceHealth:
		typ, err = c.Type(), m.setDeviceHealth(c, &res)
	case *RegisterPool:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.registerPool(*c, &res)
	case *RegisterNode:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.registerNode(*c, &res)
	case *SetNodeState:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.setNodeState(*c, &res)
	case *SetRanks:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.setRanks(*c, &res)
	case *SetTenant:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.setTenant(*c, &res)
	case *Submit:
		if c == nil {
			return nilCommand(cmd)
		}
		return m.applySubmit(*c)
	case *Cancel:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.cancel(*c, &res)
	case *ApplyPlan:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.applyPlan(*c, &res)
	case *Finish:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.finish(*c, &res)
	case *Preempt:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.preempt(*c, &res)
	case *Prune:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.prune(*c, &res)
	case *SetDeviceHealth:
		if c == nil {
			return nilCommand(cmd)
		}
		typ, err = c.Type(), m.setDeviceHealth(*c, &res)
	case nil:
		return Result{}, errors.New("apply: nil command")
	default: // cannot happen: the set is closed
		return Result{}, fmt.Errorf("apply: unknown command %s", reflect.TypeOf(cmd))
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", typ, err)
	}
	if res.Changed {
		m.applied++
	}
	res.finish()
	return res, nil
}

// nilCommand is Apply's refusal of a nil pointer to a command.
func nilCommand(cmd Command) (Result, error) {
	return Result{}, fmt.Errorf("apply: nil %s", reflect.TypeOf(cmd))
}

// String summarises the machine in one line, for logs.
func (m *Machine) String() string {
	return fmt.Sprintf("applied %d, %d nodes, %d pending, %d running, %d jobs", m.applied, m.c.NumNodes(), len(m.pending)-m.holes, m.nrun, m.jobs.n)
}

// Cluster returns a read-only view of the cluster the machine keeps: only
// Apply changes it. A scheduling pass runs on a copy (see Freeze and Plan).
func (m *Machine) Cluster() scheduler.View { return m.c.View() }

// Applied counts the commands that changed the state: a version of the
// state. Rejected commands and commands that changed nothing leave it, so
// equal histories give equal snapshots even when a plan was applied twice.
func (m *Machine) Applied() uint64 { return m.applied }

// Pending returns the queued jobs in submission order (a requeued job at
// its original place). The jobs are the machine's own: read-only, valid
// until the next Apply (a stepping machine fills a pruned job's record
// again).
func (m *Machine) Pending() []*scheduler.Job {
	out := make([]*scheduler.Job, 0, len(m.pending)-m.holes)
	for _, q := range m.pending {
		if q.r != nil {
			out = append(out, &q.r.job)
		}
	}
	return out
}

// Running returns the running jobs sorted by id, with their live tasks.
// A running service with fewer tasks than its Count is under-replicated; a
// running training gang with fewer has tasks done (see Job). The values
// are the machine's own: read-only, valid until the next Apply.
func (m *Machine) Running() []*scheduler.RunningJob { return slices.Clone(m.runningView()) }

// dropView forgets the running view; runningView builds it again.
func (m *Machine) dropView() {
	for _, l := range [][]*record{m.viewRec, m.viewAdd} {
		for _, r := range l {
			r.inView = false
		}
		clear(l)
	}
	clear(m.view)
	m.viewRec, m.viewAdd, m.view = m.viewRec[:0], m.viewAdd[:0], m.view[:0]
	m.viewOn, m.dirty = false, false
}

// runningView is the machine's own sorted view of the running jobs, built
// when first needed and then kept as jobs start and stop.
func (m *Machine) runningView() []*scheduler.RunningJob {
	byID := func(a, b *record) int { return strings.Compare(a.job.ID, b.job.ID) }
	switch {
	case !m.viewOn:
		m.viewOn = true
		m.viewRec = m.viewRec[:0]
		for _, r := range m.recs {
			if r != nil && r.status == Running {
				r.inView = true
				m.viewRec = append(m.viewRec, r)
			}
		}
		slices.SortFunc(m.viewRec, byID)
	case m.dirty:
		// Drop the jobs stopped since, merge in those started.
		keep := m.viewRec[:0]
		for _, r := range m.viewRec {
			if r.status == Running {
				keep = append(keep, r)
			} else {
				r.inView = false
			}
		}
		add := m.viewAdd[:0]
		for _, r := range m.viewAdd {
			if r.status == Running {
				add = append(add, r)
			} else {
				r.inView = false
			}
		}
		slices.SortFunc(add, byID)
		n := len(keep)
		merged := slices.Grow(keep, len(add))[:n+len(add)]
		for i, k, w := n-1, len(add)-1, len(merged)-1; k >= 0; w-- {
			if i >= 0 && byID(merged[i], add[k]) > 0 {
				merged[w] = merged[i]
				i--
			} else {
				merged[w] = add[k]
				k--
			}
		}
		clear(m.viewAdd)
		m.viewRec, m.viewAdd = merged, m.viewAdd[:0]
	default:
		return m.view
	}
	m.dirty = false
	m.view = slices.Grow(m.view[:0], len(m.viewRec))
	for _, r := range m.viewRec {
		m.view = append(m.view, &r.run)
	}
	clear(m.view[len(m.view):cap(m.view)])
	return m.view
}

// Job returns a copy of a job's record.
func (m *Machine) Job(id string) (JobInfo, bool) {
	r, ok := m.jobs.get(m.recs, id)
	if !ok {
		return JobInfo{}, false
	}
	return r.info(), true
}

// NumJobs is the number of jobs the machine remembers (not pruned).
func (m *Machine) NumJobs() int { return m.jobs.n }

// Jobs returns copies of every job record, sorted by id.
func (m *Machine) Jobs() []JobInfo {
	out := make([]JobInfo, 0, m.jobs.n)
	for _, r := range m.recs {
		if r != nil {
			out = append(out, r.info())
		}
	}
	slices.SortFunc(out, func(a, b JobInfo) int { return strings.Compare(a.Job.ID, b.Job.ID) })
	return out
}

// Tenants returns the tenants sorted by name.
func (m *Machine) Tenants() []scheduler.Tenant {
	out := make([]scheduler.Tenant, 0, len(m.tenants))
	for _, t := range m.tenants {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b scheduler.Tenant) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Tenant returns one tenant's settings.
func (m *Machine) Tenant(name string) (scheduler.Tenant, bool) {
	t, ok := m.tenants[name]
	return t, ok
}

func (m *Machine) registerPool(c RegisterPool, res *Result) error {
	if err := m.c.AddPool(clonePool(c.Pool)); err != nil {
		return err
	}
	res.Changed = true
	return nil
}

func (m *Machine) registerNode(c RegisterNode, res *Result) error {
	n := cloneNode(c.Node)
	if !n.State.Valid() {
		return fmt.Errorf("node %s: field state: unknown node state %d", n.Name, n.State)
	}
	if n.Pool == "" && !slices.ContainsFunc(m.c.Pools(), func(p scheduler.Pool) bool { return p.Name == "default" }) {
		// The cluster adds its implicit default pool before it checks the
		// rest of the node; check on a scratch cluster first, so that a
		// rejected node leaves no pool behind (with other pools or none).
		scratch, _ := scheduler.NewCluster(nil, nil)
		if _, err := scratch.AddNode(cloneNode(n)); err != nil {
			return err
		}
	}
	if _, err := m.c.AddNode(n); err != nil {
		return err
	}
	res.Changed = true
	return nil
}

func (m *Machine) setNodeState(c SetNodeState, res *Result) error {
	id, ok := m.c.NodeByName(c.Node)
	if !ok {
		return fmt.Errorf("field node: unknown node %q", c.Node)
	}
	if !c.State.Valid() {
		return fmt.Errorf("node %s: field state: unknown node state %d", c.Node, c.State)
	}
	if m.c.Node(id).State == c.State {
		return nil
	}
	m.c.SetState(id, c.State)
	res.Changed = true
	if c.State != scheduler.NodeDown && c.State != scheduler.NodeRetired {
		return nil
	}
	// The node's tasks are lost: gangs go back whole, services lose replicas.
	for _, rj := range m.Running() {
		r, _ := m.jobs.get(m.recs, rj.Job.ID)
		var lost []int
		for _, tp := range r.run.Tasks {
			if tp.Node == c.Node {
				lost = append(lost, tp.Task)
			}
		}
		switch {
		case len(lost) == 0:
		case r.job.Kind == scheduler.Training:
			m.requeue(r, res)
		default:
			m.dropTasks(r, lost, res)
		}
	}
	return nil
}

func (m *Machine) setDeviceHealth(c SetDeviceHealth, res *Result) error {
	id, ok := m.c.NodeByName(c.Node)
	if !ok {
		return fmt.Errorf("field node: unknown node %q", c.Node)
	}
	changed, err := m.c.SetDeviceHealth(id, c.Devices, c.Healthy)
	if err != nil {
		return err
	}
	res.Changed = changed
	return nil
}

func (m *Machine) setRanks(c SetRanks, res *Result) error {
	perm := make([]scheduler.NodeID, len(c.Nodes))
	same := true
	for i, name := range c.Nodes {
		id, ok := m.c.NodeByName(name)
		if !ok {
			return fmt.Errorf("field nodes[%d]: unknown node %q", i, name)
		}
		perm[i] = id
		same = same && m.c.Rank(id) == int32(i)
	}
	if err := m.c.SetRanks(perm); err != nil {
		return fmt.Errorf("field nodes: %w", err)
	}
	res.Changed = !same
	return nil
}

func (m *Machine) setTenant(c SetTenant, res *Result) error {
	if err := c.Tenant.Validate(); err != nil {
		return err
	}
	if old, ok := m.tenants[c.Tenant.Name]; ok && old == c.Tenant {
		return nil
	}
	m.tenants[c.Tenant.Name] = c.Tenant
	m.tver++
	res.Changed = true
	return nil
}

// applySubmit is Apply of a Submit, whose result names no job. The result
// is made at the return, not copied out of one filled in place: that copy
// reads the flag the submission had just written, and waits for all its
// writes to a cold record to land first (1M jobs: 3% of a run).
func (m *Machine) applySubmit(c Submit) (Result, error) {
	if err := m.submit(c); err != nil {
		return Result{}, fmt.Errorf("%s: %w", c.Type(), err)
	}
	m.applied++
	return Result{Changed: true}, nil
}

func (m *Machine) submit(c Submit) error {
	j := cloneJob(c.Job)
	if err := j.Validate(); err != nil {
		return err
	}
	if old, ok := m.jobs.get(m.recs, j.ID); ok {
		return fmt.Errorf("job %s: field id: already submitted (%s)", j.ID, old.status)
	}
	s, err := m.c.ShapeOf(&j.Task)
	if err != nil {
		return fmt.Errorf("job %s: field task: %w", j.ID, err)
	}
	j.Submitted = c.At
	var r *record
	if n := len(m.spare); n > 0 {
		r = m.spare[n-1]
		m.spare[n-1] = nil
		m.spare = m.spare[:n-1]
		if n > 1 {
			// The next submission fills the next spare record: read a word
			// of each of its cache lines now, so that they arrive while this
			// one is filled rather than when that one is.
			nx := m.spare[n-2]
			m.warmed += nx.lines()
		}
		*r = record{job: j, seq: m.nextSeq, status: Pending, tag: s.Tag}
		m.recycled++
	} else {
		r = &record{job: j, seq: m.nextSeq, status: Pending, tag: s.Tag}
	}
	r.run.Job = &r.job
	m.nextSeq++
	m.slot(r)
	m.jobs.put(r)
	m.lastSub = r
	m.pending = append(m.pending, queued{r.seq, r}) // the newest seq goes last
	m.changed(r)
	return nil
}

func (m *Machine) cancel(c Cancel, res *Result) error {
	r, ok := m.lookup(c.Job, c.Hint)
	if !ok {
		return fmt.Errorf("field job: unknown job %q", c.Job)
	}
	switch r.status {
	case Pending:
		m.unqueue(r)
	case Running:
		m.releaseAll(r)
	default:
		return nil // ended already
	}
	m.end(r, Cancelled, c.At, res)
	return nil
}

func (m *Machine) finish(c Finish, res *Result) error {
	r, ok := m.lookup(c.Job, c.Hint)
	if !ok {
		return fmt.Errorf("field job: unknown job %q", c.Job)
	}
	if err := m.checkTasks(r, c.Tasks); err != nil {
		return err
	}
	switch {
	case r.status.Ended():
		return nil
	case r.status == Pending:
		return fmt.Errorf("job %s: is pending, not running", c.Job)
	}
	status := Succeeded
	if c.Failed {
		status = Failed
	}
	if len(c.Tasks) == 0 {
		m.releaseAll(r)
		m.end(r, status, c.At, res)
		return nil
	}
	live := m.liveOf(r, c.Tasks)
	switch {
	case len(live) == 0:
		return nil // those tasks are gone already
	case r.job.Kind == scheduler.Inference:
		m.dropTasks(r, live, res)
	case c.Failed:
		m.releaseAll(r)
		m.end(r, Failed, c.At, res)
	default:
		m.releaseTasks(r, live)
		r.done = append(r.done, live...)
		slices.Sort(r.done)
		m.work += uint64(len(r.done))
		res.Changed = true
		if len(r.run.Tasks) == 0 {
			m.end(r, Succeeded, c.At, res)
		}
	}
	return nil
}

func (m *Machine) preempt(c Preempt, res *Result) error {
	r, ok := m.lookup(c.Job, c.Hint)
	if !ok {
		return fmt.Errorf("field job: unknown job %q", c.Job)
	}
	if err := m.checkEviction(r, c.Tasks); err != nil {
		return err
	}
	if r.status != Running {
		return nil // gone already
	}
	if r.job.Kind == scheduler.Training {
		m.requeue(r, res)
		return nil
	}
	var gone []int
	if len(c.Tasks) == 0 {
		for _, tp := range r.run.Tasks {
			gone = append(gone, tp.Task)
		}
		m.work += uint64(len(gone))
	} else {
		gone = m.liveOf(r, c.Tasks)
	}
	if len(gone) > 0 {
		m.dropTasks(r, gone, res)
	}
	return nil
}

func (m *Machine) prune(c Prune, res *Result) error {
	keep := m.ended[:0]
	for _, r := range m.ended {
		if r.ended < c.Before {
			m.jobs.del(r)
			m.recs[r.slot] = nil
			m.free = append(m.free, r.slot)
			res.Changed = true
			if m.recycles() && !r.inView {
				m.limbo = append(m.limbo, r)
			}
		} else {
			keep = append(keep, r)
		}
	}
	clear(m.ended[len(keep):]) // let the pruned records go
	m.ended = keep
	return nil
}

// recycles says whether the records of pruned jobs are reused: on a
// machine driven by Step alone, whose only reader of records besides its
// own tables is its planner, which reads the job log before each pass.
// A record still listed in the running view is not.
func (m *Machine) recycles() bool {
	return !m.shared && m.planner != nil && m.planner.direct
}

// slot gives a record entering the table a slot.
func (m *Machine) slot(r *record) {
	if n := len(m.free); n > 0 {
		r.slot = m.free[n-1]
		m.free = m.free[:n-1]
		m.recs[r.slot] = r
		return
	}
	r.slot = int32(len(m.recs))
	m.recs = append(m.recs, r)
}

// Hint returns a hint for the commands that will name job id (Finish.Hint,
// Cancel.Hint, Preempt.Hint): with it the machine finds the job without
// looking its id up, which a driver that keeps its own table of jobs (the
// simulator) saves on every command. 0 when the job is unknown. A hint is
// no part of the state: valid on this machine only (a replica, or a
// machine restored from a snapshot, may give the job another), checked
// against the id where used, never encoded; a stale one only costs the
// look-up.
func (m *Machine) Hint(id string) int32 {
	if r := m.lastSub; r != nil && r.job.ID == id && m.recs[r.slot] == r {
		return r.slot + 1 // asked of the job just submitted, as drivers do
	}
	if r, ok := m.jobs.get(m.recs, id); ok {
		return r.slot + 1
	}
	return 0
}

// Warm reads what a command naming a job by its hint (Hint) reads first
// (the job's record, its first task's node, the planner's entry of it) and
// changes nothing. A driver about to apply a batch of commands, a replay's
// finishes at one instant, warms their jobs side by side first: the cache
// misses of a million jobs' scattered records overlap rather than come one
// after another.
func (m *Machine) Warm(hint int32) {
	i := int(hint) - 1
	if i < 0 || i >= len(m.recs) || m.recs[i] == nil {
		return
	}
	r := m.recs[i]
	// The record's head, its planner entry and, on its last line, the done
	// tasks a finish clears.
	v := int64(r.status) + int64(r.lean.ref.Warm()) + int64(len(r.done))
	if len(r.as) > 0 {
		v += m.c.Warm(&r.as[0])
	}
	m.warmed += v
}

// WarmSubmit reads what the k-th next Submit, of a job of that id, reads
// first (the id's entry in the job table's index and, on a machine that
// reuses records, the record it will fill) and changes nothing. A driver
// about to submit a batch of jobs, a replay's arrivals at one instant,
// warms them side by side first, k = 0, 1, ...: their cache misses overlap.
func (m *Machine) WarmSubmit(id string, k int) {
	v := m.jobs.warm(id)
	if n := len(m.spare); k >= 0 && k < n {
		r := m.spare[n-1-k]
		v += r.lines()
	}
	m.warmed += v
}

// lookup finds a job by id, through its hint when the hint names the
// record of that id.
func (m *Machine) lookup(id string, hint int32) (*record, bool) {
	if i := int(hint) - 1; i >= 0 && i < len(m.recs) {
		if r := m.recs[i]; r != nil && r.job.ID == id {
			return r, true
		}
	}
	return m.jobs.get(m.recs, id)
}

// checkTasks checks a list of task indices of a job: in range, no repeats.
// It leaves the tasks in m.sets[0], for the caller to test against; an
// empty list (a whole job named, as most commands name it) leaves the set
// as it was and reads nothing of the job, whose count lies on a cache line
// the command would not read otherwise.
func (m *Machine) checkTasks(r *record, tasks []int) error {
	if len(tasks) == 0 {
		return nil
	}
	set := &m.sets[0]
	set.reset(r.job.Count)
	m.work += uint64(len(tasks))
	for i, t := range tasks {
		if t < 0 || t >= r.job.Count {
			return fmt.Errorf("job %s: field tasks[%d]: task %d out of range 0..%d", r.job.ID, i, t, r.job.Count-1)
		}
		if !set.add(t) {
			return fmt.Errorf("job %s: field tasks[%d]: task %d repeated", r.job.ID, i, t)
		}
	}
	return nil
}

// liveOf returns the tasks of a checked list that run now, sorted.
func (m *Machine) liveOf(r *record, tasks []int) []int {
	var live []int
	for _, t := range tasks {
		if r.live(t) >= 0 {
			live = append(live, t)
		}
	}
	slices.Sort(live)
	m.work += uint64(len(tasks))
	return live
}

// checkEviction checks the tasks an eviction names: a training gang is
// evicted whole.
func (m *Machine) checkEviction(r *record, tasks []int) error {
	if r.job.Kind == scheduler.Training && len(tasks) > 0 {
		return fmt.Errorf("job %s: field tasks: a training gang is evicted whole; name no tasks", r.job.ID)
	}
	return m.checkTasks(r, tasks)
}

// assignAt is the cluster assignment of the live task at index i of
// r.run.Tasks: kept from the plan that placed it when r.as holds them.
func (m *Machine) assignAt(r *record, i int) scheduler.Assign {
	if len(r.as) == len(r.run.Tasks) {
		return r.as[i]
	}
	a, err := m.c.AssignOf(r.run.Tasks[i], r.tag)
	if err != nil {
		panic(fmt.Sprintf("state: job %s: live task does not map to the cluster: %v", r.job.ID, err))
	}
	return a
}

// releaseAll releases every live task of a running job, the last first,
// and forgets them: one change to the job.
func (m *Machine) releaseAll(r *record) {
	if len(r.run.Tasks) == 0 {
		return
	}
	for i := len(r.run.Tasks) - 1; i >= 0; i-- {
		if err := m.c.Release(m.assignAt(r, i)); err != nil {
			panic(fmt.Sprintf("state: job %s task %d: %v", r.job.ID, r.run.Tasks[i].Task, err))
		}
	}
	// Dropped, not cleared: the placements may share a block with other
	// jobs' (see checkPlacements), which is let go when none holds it.
	r.run.Tasks, r.as = nil, nil
	m.changed(r)
}

// requeue sends a running job back to the queue, whole.
func (m *Machine) requeue(r *record, res *Result) {
	m.releaseAll(r)
	m.stopRunning(r)
	r.done = nil
	r.requeues++
	m.enqueue(r)
	res.Changed = true
	res.Requeued = append(res.Requeued, r.job.ID)
}

// releaseTasks gives some live tasks' resources back and forgets the
// tasks, in one pass over the job's tasks. tasks are live, each once.
func (m *Machine) releaseTasks(r *record, tasks []int) {
	set := &m.sets[0]
	set.reset(r.job.Count)
	for _, t := range tasks {
		set.add(t)
		if err := m.c.Release(m.assignAt(r, r.live(t))); err != nil {
			panic(fmt.Sprintf("state: job %s task %d: %v", r.job.ID, t, err))
		}
	}
	m.work += uint64(len(tasks) + len(r.run.Tasks))
	r.run.Tasks = slices.DeleteFunc(r.run.Tasks, func(tp scheduler.TaskPlacement) bool { return set.has(tp.Task) })
	r.as = nil
	m.changed(r)
}

// dropTasks takes some replicas of a running service away; a service left
// with none goes back to the queue. tasks are live, each once.
func (m *Machine) dropTasks(r *record, tasks []int, res *Result) {
	m.releaseTasks(r, tasks)
	res.Changed = true
	if len(r.run.Tasks) > 0 {
		res.Degraded = append(res.Degraded, r.job.ID)
		return
	}
	m.stopRunning(r)
	r.requeues++
	m.enqueue(r)
	res.Requeued = append(res.Requeued, r.job.ID)
}

// end gives a job its final status; it holds nothing any more.
func (m *Machine) end(r *record, s JobStatus, at int64, res *Result) {
	if r.status == Running {
		m.stopRunning(r)
	}
	r.status, r.ended, r.done = s, at, nil
	m.ended = append(m.ended, r)
	m.changed(r)
	res.Changed = true
	if res.Ended == nil {
		res.Ended = m.idList(1)
	}
	res.Ended = append(res.Ended, r.job.ID)
}

// idList returns an empty list of job ids with room for n, carved from a
// block shared by the results of many commands (each list's capacity
// clipped, so an append past it copies rather than runs into the next).
// A block is let go when spent; results still holding lists keep it.
func (m *Machine) idList(n int) []string {
	const block = 256
	if n > block/4 {
		return make([]string, 0, n)
	}
	if len(m.ids) < n {
		m.ids = make([]string, block)
	}
	l := m.ids[:0:n]
	m.ids = m.ids[n:]
	return l
}

// start makes a pending job running.
func (m *Machine) start(r *record, at int64, res *Result) {
	m.unqueue(r)
	r.status = Running
	r.run.Started = at
	m.nrun++
	if m.viewOn {
		m.dirty = true
		if !r.inView {
			r.inView = true
			m.viewAdd = append(m.viewAdd, r)
		}
		if len(m.viewAdd) > len(m.viewRec)+1024 {
			// Nobody read the view for long: drop it rather than keep
			// every job started since (built again when next read).
			m.dropView()
		}
	}
	m.changed(r)
	res.Started = append(res.Started, r.job.ID)
}

// stopRunning counts a job out of the running ones; its callers go on to
// queue or end it, which records the change.
func (m *Machine) stopRunning(r *record) {
	m.nrun--
	m.dirty = m.dirty || m.viewOn
	r.run.Started = 0
}

// enqueue puts a job in the pending queue at its submission place.
func (m *Machine) enqueue(r *record) {
	r.status = Pending
	i, found := slices.BinarySearchFunc(m.pending, r.seq, bySeq)
	if found { // the hole it left when it started
		m.pending[i].r = r
		m.holes--
	} else {
		m.pending = slices.Insert(m.pending, i, queued{r.seq, r})
	}
	m.changed(r)
}

// unqueue takes a job out of the pending queue.
func (m *Machine) unqueue(r *record) {
	i, ok := 0, len(m.pending) > 0 && m.pending[0].r == r // the head leaves most
	if !ok {
		i, ok = slices.BinarySearchFunc(m.pending, r.seq, bySeq)
		ok = ok && m.pending[i].r == r
	}
	if !ok {
		panic(fmt.Sprintf("state: job %s is not in the queue", r.job.ID))
	}
	m.pending[i].r = nil
	m.holes++
	// Holes at either end go at once; those within once they are half.
	for len(m.pending) > 0 && m.pending[0].r == nil {
		m.pending = m.pending[1:]
		m.holes--
	}
	for n := len(m.pending); n > 0 && m.pending[n-1].r == nil; n-- {
		m.pending = m.pending[:n-1]
		m.holes--
	}
	if m.holes > 16 && 2*m.holes > len(m.pending) {
		kept := slices.DeleteFunc(m.pending, func(q queued) bool { return q.r == nil })
		m.pending, m.holes = kept, 0
		m.work += uint64(len(kept))
	}
	// Its callers (start, cancel) record the change.
}
