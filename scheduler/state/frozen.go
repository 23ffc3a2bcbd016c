package state

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"petite/scheduler"
)

// Frozen is a copy of the machine's state at one applied version: the
// cluster, the queue, the running jobs and the tenants. It shares no memory
// that the machine writes, so a scheduling pass runs on it while the
// machine keeps applying commands: the daemon's leader freezes the state
// under its lock, plans outside it, and sends the plan through the log,
// where Apply checks it again against the state of that moment (a plan made
// on an older state may be refused, never misapplied).
//
// A Frozen serves one pass at a time; its own cluster is changed during a
// pass and restored before Schedule returns. Refreeze brings it up to date
// for the next pass at the cost of what changed, keeping its score indexes
// warm.
type Frozen struct {
	rep     *scheduler.Replica
	applied uint64
	// st is the pass's set-up, kept between passes (scheduler.Standing):
	// it is told the jobs and tenants that changed, not built again.
	st *scheduler.Standing
	// src is the machine copied; jpos is where its job log was read up
	// to, tver its tenants' version then.
	src  *Machine
	jpos uint64
	tver uint64
	// The queue and the running jobs, with their own copies of the
	// placements (the jobs themselves are shared: the machine never writes
	// a job after its submission, and a pass only reads them). jobs finds
	// a record's copy; a record caches its copy in fz too, for the Frozen
	// last refrozen from it (gen tells that cache from one made for an
	// earlier copy of f). runs lists the running copies in no order
	// (frozenJob.slot indexes it).
	jobs    map[*record]*frozenJob
	gen     uint64
	pending []*frozenJob // by submission (seq)
	runs    []*frozenJob
	// running lists the running jobs by id, built when Running is called
	// after a change (passes read the set-up, not this list).
	running []*scheduler.RunningJob
	stale   bool
	tenants []scheduler.Tenant
	spare   []*frozenJob
	// lean marks the machine's own planner (Machine.Plan): it keeps only
	// what its passes read, the set-up, and not the lists that Pending and
	// Running hand out (pending, runs, the copies of the live tasks), nor
	// the jobs map nor frozenJobs: what it knows of a job is in the
	// record's lean (see updateLean), which no other Frozen writes (a
	// machine has one planner).
	lean bool
	// direct marks the planner of Step: its passes run on the machine's
	// own cluster, and it has no replica.
	direct bool
}

// frozenJob is a Frozen's copy of one queued or running job.
type frozenJob struct {
	rec    *record // the record it copies: read in Refreeze, later only its job
	owner  *Frozen
	gen    uint64 // owner.gen when made
	slot   int    // index in owner.runs while running
	ver    uint64 // rec.ver when copied
	seq    uint64
	status JobStatus // Pending or Running
	run    scheduler.RunningJob
	devs   []int // the GPUs of run.Tasks, in one slab
	// ref is the set-up's record of the job while running: the Frozen
	// tells its Standing of runs and stops by reference, not by id.
	ref scheduler.RunRef
}

// Freeze copies the state for a scheduling pass. It reads the machine, so
// the driver serialises it with Apply; the copy is then independent of the
// machine. It costs a flat copy of the cluster's slabs (see
// scheduler.Cluster.Clone) and of the running jobs' placements.
func (m *Machine) Freeze() *Frozen {
	f := &Frozen{}
	m.Refreeze(f)
	return f
}

// Refreeze brings f to the machine's present state, as Freeze would, but
// at the cost of what changed since f was last frozen: the nodes changed
// (see scheduler.Replica) and the jobs whose status or live tasks changed
// (the machine's job log), with f's score indexes and pass set-up kept
// warm. Like Freeze it reads the machine, so the driver serialises it with
// Apply; it must not run while a pass runs on f. What f handed out before
// (Pending, Running) is not valid after it.
func (m *Machine) Refreeze(f *Frozen) {
	if f != m.planner {
		m.shared = true // f may keep records: none is reused from now on
		m.limbo = nil
	}
	if f.rep != nil && f.rep.Source() == m.c {
		f.rep.Sync()
	} else {
		f.rep = scheduler.NewReplica(m.c)
	}
	m.readLog(f, f.rep.Cluster())
}

// readLog brings f's jobs, tenants and pass set-up to the machine's
// present state, c being the cluster f's passes run on (its replica's, or
// the machine's own for Step).
func (m *Machine) readLog(f *Frozen, c *scheduler.Cluster) {
	f.applied = m.applied
	if f.src != m || f.jpos < m.jlogBase {
		// Another machine, or a log trimmed past f: copy every job.
		f.src, f.st, f.jobs = m, scheduler.NewStanding(), nil
		if f.direct {
			// Step's passes run on the machine's own cluster, which holds
			// exactly the running jobs' tasks (the machine committed
			// them): no held sums to keep and check.
			f.st = scheduler.NewTrustedStanding()
			// Step copies what it keeps of a plan, and its plan is the
			// driver's until the next Step only.
			f.st.ReusePlans()
		}
		if !f.lean {
			f.jobs = map[*record]*frozenJob{}
		}
		f.gen++
		clear(f.runs)
		f.pending, f.runs, f.stale = f.pending[:0], f.runs[:0], true
		f.tenants = m.Tenants()
		f.tver = m.tver
		f.st.SetTenants(f.tenants)
		for _, q := range m.pending {
			if q.r != nil {
				f.update(c, q.r)
			}
		}
		var run []*record
		for _, r := range m.recs {
			if r != nil && r.status == Running {
				run = append(run, r)
			}
		}
		slices.SortFunc(run, func(a, b *record) int { return strings.Compare(a.job.ID, b.job.ID) })
		for _, r := range run {
			f.update(c, r)
		}
	} else {
		if f.tver != m.tver {
			f.tenants = m.Tenants()
			f.tver = m.tver
			f.st.SetTenants(f.tenants)
		}
		for _, r := range m.jlog[f.jpos-m.jlogBase:] {
			f.update(c, r)
		}
	}
	f.jpos = m.jlogBase + uint64(len(m.jlog))
	if f == m.planner {
		// The machine's own copy has read the log: let it go, and the
		// pruned records it names with it. Another copy of the same
		// machine that had not read it copies every job at its next
		// Refreeze (the same state, at the cost of a Freeze).
		m.trimLog(0)
		// Nothing names the records pruned before now: Submit may fill
		// them again.
		m.spare = append(m.spare, m.limbo...)
		clear(m.limbo)
		m.limbo = m.limbo[:0]
	}
}

// leanCopy is what the machine's planner (a lean Frozen) knows of a job,
// kept in the job's record: no object of its own to reach.
type leanCopy struct {
	owner  *Frozen
	gen    uint64 // owner.gen when made
	ver    uint64 // record.ver when copied
	status JobStatus
	ref    scheduler.RunRef // while running
}

// updateLean is update for the lean planner.
func (f *Frozen) updateLean(c *scheduler.Cluster, r *record) {
	lc := &r.lean
	if lc.owner == f && lc.gen == f.gen { // f knows the job
		switch {
		case lc.ver == r.ver:
			return // copied already
		case lc.status == Running && r.status == Running:
			// Its live tasks changed.
			lc.ver = r.ver
			f.st.StopRef(lc.ref)
			lc.ref = f.st.RunByRef(c, &r.run, r.as)
			return
		case lc.status == Pending:
			f.st.Unqueue(&r.job)
		default:
			f.st.StopRef(lc.ref)
		}
	}
	*lc = leanCopy{}
	switch r.status {
	case Pending:
		*lc = leanCopy{owner: f, gen: f.gen, ver: r.ver, status: Pending}
		f.st.Queue(c, &r.job)
	case Running:
		// The set-up copies what it keeps of the live tasks.
		*lc = leanCopy{owner: f, gen: f.gen, ver: r.ver, status: Running}
		lc.ref = f.st.RunByRef(c, &r.run, r.as)
	}
}

// copyOf finds f's copy of a record, nil when it has none.
func (f *Frozen) copyOf(r *record) *frozenJob {
	if fj := r.fz; fj != nil && fj.owner == f && fj.gen == f.gen && fj.rec == r {
		return fj
	}
	return f.jobs[r]
}

// update brings f's copy of one job to the record's present state.
func (f *Frozen) update(c *scheduler.Cluster, r *record) {
	if f.lean {
		f.updateLean(c, r)
		return
	}
	fj := f.copyOf(r)
	switch {
	case fj != nil && fj.ver == r.ver:
		return // copied already
	case fj != nil && fj.status == Running && r.status == Running:
		// Its live tasks changed: copy them in place.
		fj.ver = r.ver
		f.run(c, fj, r)
		return
	case fj != nil:
		f.drop(fj)
	}
	if r.status != Pending && r.status != Running {
		if fj != nil {
			delete(f.jobs, r)
			*fj = frozenJob{run: scheduler.RunningJob{Tasks: fj.run.Tasks[:0]}, devs: fj.devs[:0]}
			f.spare = append(f.spare, fj)
		}
		return
	}
	if fj == nil {
		if n := len(f.spare); n > 0 {
			fj = f.spare[n-1]
			f.spare = f.spare[:n-1]
		} else {
			fj = &frozenJob{}
		}
		fj.rec, fj.owner, fj.gen = r, f, f.gen
		f.jobs[r] = fj
		r.fz = fj
	}
	fj.ver, fj.seq, fj.status = r.ver, r.seq, r.status
	if r.status == Pending {
		i, _ := slices.BinarySearchFunc(f.pending, r.seq, func(p *frozenJob, s uint64) int { return cmp.Compare(p.seq, s) })
		f.pending = slices.Insert(f.pending, i, fj)
		f.st.Queue(c, &r.job)
		return
	}
	fj.slot = len(f.runs)
	f.runs = append(f.runs, fj)
	f.run(c, fj, r)
}

// run gives the set-up a running job's live tasks, and keeps f's own copy
// of them (for Running).
func (f *Frozen) run(c *scheduler.Cluster, fj *frozenJob, r *record) {
	f.st.StopRef(fj.ref) // the tasks it had, if it ran already
	fj.copyRun(r)
	f.stale = true
	fj.ref = f.st.RunByRef(c, &fj.run, r.as)
}

// drop takes a job's copy out of the queue or the running jobs.
func (f *Frozen) drop(fj *frozenJob) {
	if fj.status == Pending {
		if i, ok := slices.BinarySearchFunc(f.pending, fj.seq, func(p *frozenJob, s uint64) int { return cmp.Compare(p.seq, s) }); ok {
			f.pending = slices.Delete(f.pending, i, i+1)
		}
		f.st.Unqueue(&fj.rec.job)
		return
	}
	last := f.runs[len(f.runs)-1]
	f.runs[fj.slot], last.slot = last, fj.slot
	f.runs[len(f.runs)-1] = nil
	f.runs = f.runs[:len(f.runs)-1]
	f.stale = true
	f.st.StopRef(fj.ref)
	fj.ref = scheduler.RunRef{}
}

// copyRun copies a running record's job, start and live tasks into fj's
// own buffers, each task's GPUs clipped so that an append to one never
// runs into the next.
func (fj *frozenJob) copyRun(r *record) {
	ndev := 0
	for _, tp := range r.run.Tasks {
		ndev += len(tp.GPUs)
	}
	devs := slices.Grow(fj.devs[:0], ndev)
	tasks := slices.Grow(fj.run.Tasks[:0], len(r.run.Tasks))
	for _, tp := range r.run.Tasks {
		if tp.GPUs != nil {
			d := len(devs)
			devs = append(devs, tp.GPUs...)
			tp.GPUs = devs[d:len(devs):len(devs)]
		}
		tasks = append(tasks, tp)
	}
	fj.devs = devs
	fj.run = scheduler.RunningJob{Job: r.run.Job, Tasks: tasks[:len(tasks):len(tasks)], Started: r.run.Started}
}

// Plan runs a scheduling pass on a frozen copy of the state and returns its
// plan; the machine's cluster is not touched. The pass's Pending, Running
// and Tenants come from the machine and must be left empty. The machine
// keeps the copy for its next Plan, refrozen at the cost of what changed.
func (m *Machine) Plan(in scheduler.Pass) (scheduler.Plan, error) {
	if m.planner == nil || m.planner.direct {
		m.planner = &Frozen{lean: true}
	}
	m.Refreeze(m.planner)
	return m.planner.Schedule(in)
}

// Step runs a scheduling pass and applies its plan at time at, in one
// call: the plan, the result and the state it leaves are those of Plan
// followed by Apply(PlanCommand(plan, at)) (an empty plan is not applied:
// a zero Result). It is for drivers that apply their own plans at once,
// in process (the simulator): the pass runs on the machine's own cluster,
// not on a copy, and what it places and evicts there stays, so the plan's
// changes to the cluster are made once, not again by Apply, and no copy of
// the cluster is kept in step. The plan's changes to the job table are
// checked as Apply checks them; a refusal there would mean the pass and
// the machine disagree, and panics. A driver that replicates its commands
// must log the plan (PlanCommand) as the command Step applied. The plan's
// lists are valid until the next Step, which reuses their memory: the
// machine keeps none of it.
func (m *Machine) Step(in scheduler.Pass, at int64) (scheduler.Plan, Result, error) {
	if in.Pending != nil || in.Running != nil || in.Tenants != nil {
		return scheduler.Plan{}, Result{}, fmt.Errorf("plan: fields pending, running, tenants: the machine supplies them; leave them empty")
	}
	f := m.planner
	if f == nil || !f.direct {
		f = &Frozen{lean: true, direct: true}
		m.planner = f
	}
	m.readLog(f, m.c)
	plan, as, err := m.c.ScheduleKeptAssigns(in, f.st)
	m.stepAs = as
	if err != nil {
		return scheduler.Plan{}, Result{}, fmt.Errorf("plan at applied %d: %w", m.applied, err)
	}
	if plan.Empty() {
		return plan, Result{}, nil
	}
	var res Result
	if err := m.applyPlanAs(PlanCommand(plan, at), &res, true, as); err != nil {
		panic(fmt.Sprintf("state: the machine refused its own plan, which its cluster holds already: %v", err))
	}
	if res.Changed {
		m.applied++
	}
	res.finish()
	return plan, res, nil
}

// StepAssigns returns the cluster assignments of the last Step's plan,
// one per task placement in the plan's order (placement by placement, task
// by task), each naming its node by id: a driver that books the plan's
// placements by node finds them without looking names up. Read-only,
// valid until the next Step.
func (m *Machine) StepAssigns() []scheduler.Assign { return m.stepAs }

// Applied is the machine's Applied when the state was frozen.
func (f *Frozen) Applied() uint64 { return f.applied }

// Cluster returns a read-only view of the frozen cluster.
func (f *Frozen) Cluster() scheduler.View { return f.rep.Cluster().View() }

// Pending returns the queued jobs in submission order (read-only).
func (f *Frozen) Pending() []*scheduler.Job {
	out := make([]*scheduler.Job, len(f.pending))
	for i, fj := range f.pending {
		out[i] = &fj.rec.job
	}
	return out
}

// Running returns the running jobs sorted by id (read-only).
func (f *Frozen) Running() []*scheduler.RunningJob {
	if f.stale {
		f.running = f.running[:0]
		for _, fj := range f.runs {
			f.running = append(f.running, &fj.run)
		}
		slices.SortFunc(f.running, func(a, b *scheduler.RunningJob) int { return strings.Compare(a.Job.ID, b.Job.ID) })
		f.stale = false
	}
	return slices.Clone(f.running)
}

// Tenants returns the tenants sorted by name.
func (f *Frozen) Tenants() []scheduler.Tenant { return slices.Clone(f.tenants) }

// Schedule runs one scheduling pass (scheduler.Cluster.Schedule) on the
// frozen state. The frozen queue, running jobs and tenants are the pass's
// Pending, Running and Tenants, which the caller leaves empty.
func (f *Frozen) Schedule(in scheduler.Pass) (scheduler.Plan, error) {
	if in.Pending != nil || in.Running != nil || in.Tenants != nil {
		return scheduler.Plan{}, fmt.Errorf("plan: fields pending, running, tenants: the frozen state supplies them; leave them empty")
	}
	var plan scheduler.Plan
	var err error
	if f.lean {
		// The machine's own planner is refrozen before every pass and
		// hands out no view of its cluster: its pass leaves the plan on
		// the copy, which the next Refreeze finds applied (or undoes).
		plan, err = f.rep.Cluster().ScheduleKept(in, f.st)
	} else {
		plan, err = f.rep.Cluster().ScheduleStanding(in, f.st)
	}
	if err != nil {
		return scheduler.Plan{}, fmt.Errorf("plan at applied %d: %w", f.applied, err)
	}
	return plan, nil
}
