package state

import (
	"fmt"
	"slices"

	"petite/scheduler"
)

// undo is one change a plan made to the cluster, to roll it back.
type undo struct {
	a       scheduler.Assign
	release bool // true: undo by releasing, false: by committing again
}

// placeOp is one job's placements of a plan, checked.
type placeOp struct {
	r     *record
	tasks []scheduler.TaskPlacement // by task index, GPUs sorted
	as    []scheduler.Assign
	skip  []bool // placed exactly so already
	// gangThere: a running gang that the plan places exactly where it runs
	// (exactGang, worked out once).
	gangThere bool
}

// applyPlan applies a plan all or nothing. It checks the plan's form
// against the job table, works out what is already done (the idempotence
// rule), then changes the cluster (releases, then commits that re-check
// every device), undoing it all on the first refusal, and only then
// updates the job table.
func (m *Machine) applyPlan(p ApplyPlan, res *Result) error {
	return m.applyPlanAs(p, res, false, nil)
}

// applyPlanAs is applyPlan, or with kept the plan of Step, whose pass left
// its changes on the cluster already: the job table alone is checked and
// updated. given, with kept, is the assignments of the plan's tasks in
// plan order as the pass applied them (scheduler.Cluster.
// ScheduleKeptAssigns): no placement's node is looked up by name then, nor
// its assignment worked out again.
func (m *Machine) applyPlanAs(p ApplyPlan, res *Result, kept bool, given []scheduler.Assign) error {
	ops, err := m.checkPlacements(p.Place, kept, given)
	defer func() {
		clear(ops) // let the records go
		m.ops = ops[:0]
	}()
	if err != nil {
		return err
	}
	evict, err := m.evictions(p.Evict, ops)
	if err != nil {
		return err
	}
	if err := m.decidePlacements(ops, evict); err != nil {
		return err
	}

	// Change the cluster: release the evicted tasks, commit the new ones,
	// logging each change in the machine's reused undo log.
	log := m.undo[:0]
	defer func() { m.undo = log[:0] }()
	rollback := func() {
		for i := len(log) - 1; i >= 0; i-- {
			var err error
			if log[i].release {
				err = m.c.Release(log[i].a)
			} else {
				err = m.c.Retake(log[i].a) // an evicted task's, withheld or free
			}
			if err != nil {
				panic(fmt.Sprintf("state: rolling a plan back: %v", err))
			}
		}
	}
	for _, e := range evict {
		if kept {
			break
		}
		for _, t := range e.tasks {
			a := m.assignAt(e.r, e.r.live(t))
			if err := m.c.Release(a); err != nil {
				rollback()
				return fmt.Errorf("evict job %s task %d: %w", e.r.job.ID, t, err)
			}
			log = append(log, undo{a, false})
		}
	}
	for i := range ops {
		op := &ops[i]
		if kept || !slices.Contains(op.skip, false) {
			continue
		}
		s, err := m.c.ShapeOf(&op.r.job.Task)
		if err != nil {
			rollback()
			return fmt.Errorf("place job %s: %w", op.r.job.ID, err)
		}
		for k := range op.tasks {
			if op.skip[k] {
				continue
			}
			if err := m.commit(op, k, &s); err != nil {
				rollback()
				return err
			}
			log = append(log, undo{op.as[k], true})
		}
	}

	// The cluster took it all: update the job table. The started jobs'
	// ids go in one list sized for the plan.
	if res.Started == nil && len(ops) > 0 {
		res.Started = m.idList(len(ops))
	}
	for _, e := range evict {
		if e.r.job.Kind == scheduler.Training || len(e.tasks) == len(e.r.run.Tasks) {
			e.r.run.Tasks, e.r.as = nil, nil
			if e.r.job.Kind == scheduler.Training {
				e.r.done = nil
			}
			m.stopRunning(e.r)
			e.r.requeues++
			m.enqueue(e.r)
			res.Requeued = append(res.Requeued, e.r.job.ID)
		} else {
			set := &m.sets[0]
			set.reset(e.r.job.Count)
			for _, t := range e.tasks {
				set.add(t)
			}
			m.work += uint64(len(e.tasks) + len(e.r.run.Tasks))
			e.r.run.Tasks = slices.DeleteFunc(e.r.run.Tasks, func(tp scheduler.TaskPlacement) bool { return set.has(tp.Task) })
			e.r.as = nil
			m.changed(e.r)
			res.Degraded = append(res.Degraded, e.r.job.ID)
		}
		res.Changed = true
	}
	for i := range ops {
		op := &ops[i]
		if !slices.Contains(op.skip, false) {
			continue
		}
		starting := len(op.r.run.Tasks) == 0 && !slices.Contains(op.skip, true)
		op.r.run.Tasks = mergeTasks(op.r.run.Tasks, op.tasks, op.skip)
		op.r.as = nil
		if starting {
			// The tasks are op.tasks: keep their assignments.
			m.keepAs(op.r, op.as)
		}
		m.work += uint64(len(op.skip) + len(op.r.run.Tasks))
		res.Changed = true
		if op.r.status == Pending {
			m.start(op.r, p.At, res) // which records the change
		} else {
			m.changed(op.r)
		}
	}
	if len(res.Started) == 0 {
		res.Started = nil // none started: as Apply always reported it
	}
	return nil
}

// keepAs gives a starting job's record a copy of its tasks' assignments
// (the plan's are scratch): a single task's in the record itself, read
// with it at the finish; more from a block shared by the records of many
// jobs, each part's capacity clipped, let go when no record holds a part.
func (m *Machine) keepAs(r *record, as []scheduler.Assign) {
	if len(as) == 1 {
		r.as1[0] = as[0]
		r.as = r.as1[:]
		return
	}
	n := len(as)
	if len(m.asBlock) < n {
		m.asBlock = make([]scheduler.Assign, max(n, 256))
	}
	r.as = m.asBlock[:n:n]
	m.asBlock = m.asBlock[n:]
	copy(r.as, as)
}

// commit re-checks one placement against the state at hand and takes its
// resources: the node must be ready and match the task (labels, model),
// and every device, CPU and memory must have room.
// s is the shape of the job's task.
func (m *Machine) commit(op *placeOp, k int, s *scheduler.Shape) error {
	tp := &op.tasks[k]
	id := op.as[k].Node // checkPlacements found the node
	switch why := m.c.Why(id, s); why {
	case scheduler.ReasonNotReady:
		return fmt.Errorf("place job %s task %d on %s: node is %s", op.r.job.ID, tp.Task, tp.Node, m.c.Node(id).State)
	case scheduler.ReasonConstraint, scheduler.ReasonNoGPU, scheduler.ReasonModel:
		// Capacity is left to Commit, which names the device.
		return fmt.Errorf("place job %s task %d on %s: %s", op.r.job.ID, tp.Task, tp.Node, why)
	}
	if err := m.c.Commit(op.as[k]); err != nil {
		return fmt.Errorf("place job %s task %d: %w", op.r.job.ID, tp.Task, err)
	}
	return nil
}

// checkPlacements checks the form of a plan's placements: known, live
// jobs, each once; task indices in range, each once; known nodes and
// devices; and resources that are exactly what the task asks for (unless
// kept: the cluster took them already, which checked them). given, when
// kept, holds the tasks' assignments in plan order (see applyPlan); a job
// whose placements are not in task order has its own worked out. The ops
// are the machine's scratch (m.ops), returned with an error too, for
// applyPlan to clear.
func (m *Machine) checkPlacements(place []scheduler.JobPlacement, kept bool, given []scheduler.Assign) ([]placeOp, error) {
	ops := slices.Grow(m.ops[:0], len(place)) // applyPlan clears it
	// The plan's copies of the placements, their devices, assignments and
	// skip marks come from one slab each: a plan allocates per plan, not
	// per placement. A job that starts keeps its part of the slabs (its
	// live tasks and their assignments), capacity capped so that nothing
	// appends into a neighbour's part.
	ntask, ngpu := 0, 0
	for _, jp := range place {
		ntask += len(jp.Tasks)
		for k := range jp.Tasks {
			ngpu += len(jp.Tasks[k].GPUs)
		}
	}
	if !kept || len(given) != ntask {
		given = nil
	}
	taskSlab, gpuSlab := make([]scheduler.TaskPlacement, ntask), make([]int, ngpu)
	// The skip marks and assignments are scratch, reused from plan to
	// plan: a starting job's record takes a copy of its assignments
	// (keepAs).
	skipSlab := slices.Grow(m.skip[:0], ntask)[:ntask]
	clear(skipSlab)
	m.skip = skipSlab
	asSlab := slices.Grow(m.opAs[:0], ntask)[:ntask]
	m.opAs = asSlab
	// A job placed twice: each record the plan names is marked with the
	// plan's generation.
	m.planGen++
	for i, jp := range place {
		r := m.nearHead(jp.Job)
		ok := r != nil
		if !ok {
			r, ok = m.jobs.get(m.recs, jp.Job)
		}
		switch {
		case !ok:
			return ops, fmt.Errorf("field place[%d].job: unknown job %q", i, jp.Job)
		case r.status.Ended():
			return ops, fmt.Errorf("field place[%d].job: job %s has ended (%s)", i, jp.Job, r.status)
		case r.planGen == m.planGen:
			return ops, fmt.Errorf("field place[%d].job: job %s placed twice in one plan", i, jp.Job)
		case len(jp.Tasks) == 0:
			return ops, fmt.Errorf("field place[%d].tasks: job %s: no tasks", i, jp.Job)
		}
		r.planGen = m.planGen
		n := len(jp.Tasks)
		op := placeOp{r: r, tasks: taskSlab[:n:n], as: asSlab[:n:n], skip: skipSlab[:n:n]}
		taskSlab, asSlab, skipSlab = taskSlab[n:], asSlab[n:], skipSlab[n:]
		copy(op.tasks, jp.Tasks)
		for k := range op.tasks {
			tp := &op.tasks[k]
			g := len(tp.GPUs)
			if g == 0 {
				tp.GPUs = tp.GPUs[:0:0] // nil stays nil, as slices.Clone keeps it
				continue
			}
			tp.GPUs = gpuSlab[:g:g]
			gpuSlab = gpuSlab[g:]
			copy(tp.GPUs, jp.Tasks[k].GPUs)
		}
		var gas []scheduler.Assign // the job's assignments, given
		if len(given) >= n {
			gas, given = given[:n], given[n:]
		}
		if !slices.IsSortedFunc(op.tasks, byTask) {
			slices.SortFunc(op.tasks, byTask)
			gas = nil
		}
		for k := range op.tasks {
			tp := &op.tasks[k]
			if !slices.IsSorted(tp.GPUs) {
				slices.Sort(tp.GPUs)
			}
			if k > 0 && op.tasks[k-1].Task == tp.Task {
				return ops, fmt.Errorf("field place[%d].tasks: job %s: task %d placed twice", i, jp.Job, tp.Task)
			}
			if gas != nil {
				// The pass's own: its node and devices are the cluster's,
				// and tp.Node the cluster's string already.
				if err := m.checkTaskOf(r, tp); err != nil {
					return ops, fmt.Errorf("field place[%d].tasks: job %s task %d: %w", i, jp.Job, tp.Task, err)
				}
				op.as[k] = gas[k]
				continue
			}
			id, err := m.checkTask(r, tp, kept)
			if err != nil {
				return ops, fmt.Errorf("field place[%d].tasks: job %s task %d: %w", i, jp.Job, tp.Task, err)
			}
			// The cluster's own string: the machine keeps nothing of the
			// command (a decoded entry's strings share its memory).
			tp.Node = m.c.NodeName(id)
			a, err := m.c.AssignOn(id, tp, r.tag)
			if err != nil {
				return ops, fmt.Errorf("field place[%d].tasks: job %s: %w", i, jp.Job, err)
			}
			op.as[k] = a
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// nearHead returns the job of that id among the first of the queue, nil
// if none is: a pass places mostly jobs from there (in the order of the
// tenants' shares, not the queue's), and Step's plan names them by their
// records' own strings, so that each comparison is one of pointers, where
// the table's look-up reads a cold entry.
func (m *Machine) nearHead(id string) *record {
	for _, q := range m.pending[:min(len(m.pending), nearHeadScan)] {
		if q.r != nil && q.r.job.ID == id {
			return q.r
		}
	}
	return nil
}

// nearHeadScan is how many of the queue's first entries nearHead reads.
const nearHeadScan = 16

// byTask orders placements by task index.
func byTask(a, b scheduler.TaskPlacement) int { return a.Task - b.Task }

// checkTask checks that a placement gives a task exactly what it asks for.
// A share of a GPU takes that share, or a whole MIG instance that holds it.
// It returns the node's id. The shares of a placement the cluster took
// already (kept) are not checked again.
func (m *Machine) checkTask(r *record, tp *scheduler.TaskPlacement, kept bool) (scheduler.NodeID, error) {
	t := &r.job.Task
	if err := m.checkTaskOf(r, tp); err != nil {
		return 0, err
	}
	// Plans name the same node many times over: the last one found is
	// kept (a node's name and id never change).
	id, ok := m.lastNode, tp.Node != "" && tp.Node == m.lastName
	if !ok {
		if id, ok = m.c.NodeByName(tp.Node); !ok {
			return 0, fmt.Errorf("field node: unknown node %q", tp.Node)
		}
		m.lastName, m.lastNode = m.c.NodeName(id), id
	}
	if kept {
		return id, nil
	}
	return id, m.checkShare(t, id, tp)
}

// checkTaskOf checks that a placement names a task of the job, in range
// and not done.
func (m *Machine) checkTaskOf(r *record, tp *scheduler.TaskPlacement) error {
	if tp.Task < 0 || tp.Task >= r.job.Count {
		return fmt.Errorf("field task: out of range 0..%d", r.job.Count-1)
	}
	if r.isDone(tp.Task) {
		return fmt.Errorf("field task: the task is done")
	}
	return nil
}

// checkShare checks the resources of a placement on node id against the
// task's.
func (m *Machine) checkShare(t *scheduler.Task, id scheduler.NodeID, tp *scheduler.TaskPlacement) error {
	switch {
	case tp.CPUMilli != t.CPUMilli:
		return fmt.Errorf("field cpu_milli: want the task's %d, got %d", t.CPUMilli, tp.CPUMilli)
	case tp.MemoryMiB != t.MemoryMiB:
		return fmt.Errorf("field memory_mib: want the task's %d, got %d", t.MemoryMiB, tp.MemoryMiB)
	case len(tp.GPUs) != t.GPUs:
		return fmt.Errorf("field gpus: want %d device indices, got %d", t.GPUs, len(tp.GPUs))
	case t.GPUs == 0 && tp.GPUMilli != 0:
		return fmt.Errorf("field gpu_milli: want 0 for a CPU-only task, got %d", tp.GPUMilli)
	case t.GPUs == 0:
		return nil
	}
	gpus := m.c.NodeGPUs(id)
	for _, g := range tp.GPUs {
		if g < 0 || g >= len(gpus) {
			return fmt.Errorf("field gpus: node %s has no GPU %d", tp.Node, g)
		}
	}
	want := int32(t.GPUMilli)
	for _, g := range tp.GPUs {
		dev := &gpus[g]
		switch {
		case !dev.Exclusive():
		case want >= scheduler.MilliPerGPU:
			return fmt.Errorf("field gpus: GPU %d of %s is a MIG instance; a whole-GPU task takes whole GPUs", g, tp.Node)
		case dev.MilliCap < want:
			return fmt.Errorf("field gpus: MIG instance %d of %s holds %d milli, the task wants %d", g, tp.Node, dev.MilliCap, want)
		default:
			want = dev.MilliCap // a MIG instance is taken whole
		}
	}
	if tp.GPUMilli != want {
		return fmt.Errorf("field gpu_milli: want %d, got %d", want, tp.GPUMilli)
	}
	return nil
}

// eviction is what a plan takes from one running job.
type eviction struct {
	r     *record
	tasks []int // live tasks to release, sorted
	whole bool  // an eviction of the whole job was seen
}

// evictions works out what the plan's evictions take, in plan order, one
// entry per job. Tasks already gone are skipped, and so are tasks that the
// same plan places exactly where they run (a plan applied twice). A
// training gang is evicted whole, unless the plan places every live task
// of it exactly where it runs. The work is linear in the plan and the
// jobs it names, however many evictions name one job.
func (m *Machine) evictions(evs []scheduler.Eviction, ops []placeOp) ([]eviction, error) {
	for i := range ops {
		op := &ops[i]
		op.gangThere = op.r.job.Kind == scheduler.Training && op.exactGang()
		m.work += uint64(len(op.tasks))
	}
	if len(evs) == 0 {
		return nil, nil
	}
	placed := make(map[*record]*placeOp, len(ops))
	for i := range ops {
		placed[ops[i].r] = &ops[i]
	}
	var out []eviction
	at := map[*record]int{}
	for i := range evs {
		ev := &evs[i]
		r, ok := m.jobs.get(m.recs, ev.Job)
		if !ok {
			return nil, fmt.Errorf("field evict[%d].job: unknown job %q", i, ev.Job)
		}
		if err := m.checkEviction(r, ev.Tasks); err != nil {
			return nil, fmt.Errorf("field evict[%d]: %w", i, err)
		}
		k, again := at[r]
		if !again {
			k = len(out)
			at[r] = k
			out = append(out, eviction{r: r})
		}
		e := &out[k]
		op := placed[r]
		if err := m.checkSeen(r, ev, op, e.whole); err != nil {
			return nil, fmt.Errorf("field evict[%d].%w", i, err)
		}
		if r.status != Running || e.whole {
			continue // nothing to take, or all taken already
		}
		if len(ev.Tasks) == 0 {
			e.whole = true
			e.tasks = e.tasks[:0]
			for k := range r.run.Tasks {
				e.tasks = append(e.tasks, r.run.Tasks[k].Task)
			}
			m.work += uint64(len(r.run.Tasks))
		} else {
			for _, t := range ev.Tasks {
				if r.live(t) >= 0 {
					e.tasks = append(e.tasks, t)
				}
			}
			m.work += uint64(len(ev.Tasks))
		}
	}
	// Each job's tasks once, sorted, less those the plan places where they
	// run; a job left with none is not evicted.
	n := 0
	for _, e := range out {
		op := placed[e.r]
		switch {
		case e.r.status != Running, op != nil && op.gangThere:
			continue
		case !e.whole:
			slices.Sort(e.tasks)
			e.tasks = slices.Compact(e.tasks)
		}
		m.work += uint64(len(e.tasks))
		if e.r.job.Kind == scheduler.Inference && op != nil {
			e.tasks = slices.DeleteFunc(e.tasks, func(t int) bool { return op.exact(&e.r.run.Tasks[e.r.live(t)]) })
		}
		if len(e.tasks) > 0 {
			out[n] = e
			n++
		}
	}
	return out[:n], nil
}

// decidePlacements marks the placements already in force, and rejects
// those that clash with the state as the evictions leave it: a task
// running elsewhere, or part of a training gang.
func (m *Machine) decidePlacements(ops []placeOp, evict []eviction) error {
	var gone map[*record][]int // nil (read as empty) without evictions
	if len(evict) > 0 {
		gone = make(map[*record][]int, len(evict))
	}
	for _, e := range evict {
		gone[e.r] = e.tasks
	}
	for i := range ops {
		op := &ops[i]
		r := op.r
		ev, evicted := gone[r]
		if r.job.Kind == scheduler.Training {
			switch {
			case r.status == Running && !evicted:
				if op.gangThere {
					for k := range op.skip {
						op.skip[k] = true
					}
					continue
				}
				return fmt.Errorf("place job %s: the training gang is running; evict it to place it again", r.job.ID)
			case len(op.tasks) != r.job.Count:
				return fmt.Errorf("place job %s: a training gang is placed whole: want %d tasks, got %d", r.job.ID, r.job.Count, len(op.tasks))
			}
			continue
		}
		set := &m.sets[0]
		set.reset(r.job.Count)
		for _, t := range ev {
			set.add(t)
		}
		m.work += uint64(len(ev) + len(op.tasks))
		for k := range op.tasks {
			tp := &op.tasks[k]
			j := r.live(tp.Task)
			if j < 0 || set.has(tp.Task) {
				continue
			}
			if !samePlacement(&r.run.Tasks[j], tp) {
				return fmt.Errorf("place job %s task %d: runs on %s already; evict it to place it again", r.job.ID, tp.Task, r.run.Tasks[j].Node)
			}
			op.skip[k] = true
		}
	}
	return nil
}

// checkSeen checks an eviction against the placements its plan saw. The
// plan must name them, each task the eviction covers once: the tasks it
// names, or for a whole job every task that ran when it was made. A task
// that still runs must run exactly where seen says; a task gone since is
// skipped, as evictions of tasks gone are, and so is a task that runs
// where op, the same plan's placement of the job, puts it (the plan
// applied already). A task running elsewhere now, or running unseen,
// makes the plan stale, and it is refused rather than evict the task where
// it moved to. Plans reach the machine through the replicated log, so an
// eviction without seen is refused too: nothing could tell it from a
// stale one. checkEviction has left the tasks the eviction names in
// m.sets[0]; wholeDone says an eviction of the whole job was checked
// already, every running task against its seen list.
func (m *Machine) checkSeen(r *record, ev *scheduler.Eviction, op *placeOp, wholeDone bool) error {
	if len(ev.Seen) == 0 {
		return fmt.Errorf("seen: job %s: an eviction names the placements its plan saw; none given", r.job.ID)
	}
	// A live task placed exactly where it runs by the same plan: a replica
	// placed there, or a task of a gang running exactly as placed.
	there := func(live *scheduler.TaskPlacement) bool {
		return op != nil && (op.gangThere || r.job.Kind == scheduler.Inference && op.exact(live))
	}
	named, seenSet := &m.sets[0], &m.sets[1]
	seenSet.reset(r.job.Count)
	m.work += uint64(len(ev.Seen) + len(ev.Tasks))
	for k := range ev.Seen {
		seen := ev.Seen[k]
		switch {
		case seen.Task < 0 || seen.Task >= r.job.Count:
			return fmt.Errorf("seen[%d]: job %s task %d: out of range 0..%d", k, r.job.ID, seen.Task, r.job.Count-1)
		case len(ev.Tasks) > 0 && !named.has(seen.Task):
			return fmt.Errorf("seen[%d]: job %s task %d: not a task the eviction names", k, r.job.ID, seen.Task)
		case !seenSet.add(seen.Task):
			return fmt.Errorf("seen[%d]: job %s task %d: named twice", k, r.job.ID, seen.Task)
		}
		if r.status != Running {
			continue
		}
		j := r.live(seen.Task)
		if j < 0 || there(&r.run.Tasks[j]) {
			continue
		}
		seen.GPUs = slices.Sorted(slices.Values(seen.GPUs))
		if live := &r.run.Tasks[j]; !samePlacement(live, &seen) {
			return fmt.Errorf("seen[%d]: job %s task %d runs on %s %v now, not on %s %v as the plan saw; the plan is stale",
				k, r.job.ID, seen.Task, live.Node, live.GPUs, seen.Node, seen.GPUs)
		}
	}
	for _, t := range ev.Tasks {
		if !seenSet.has(t) {
			return fmt.Errorf("seen: job %s task %d: named by the eviction, not seen", r.job.ID, t)
		}
	}
	if len(ev.Tasks) == 0 && r.status == Running && !wholeDone {
		m.work += uint64(len(r.run.Tasks))
		for k := range r.run.Tasks {
			if live := &r.run.Tasks[k]; !seenSet.has(live.Task) && !there(live) {
				return fmt.Errorf("seen: job %s task %d runs on %s %v, which the plan did not see; the plan is stale",
					r.job.ID, live.Task, live.Node, live.GPUs)
			}
		}
	}
	return nil
}

// exact reports whether the plan places a live task exactly where it runs.
func (op *placeOp) exact(live *scheduler.TaskPlacement) bool {
	i, ok := slices.BinarySearchFunc(op.tasks, live.Task, func(p scheduler.TaskPlacement, t int) int { return p.Task - t })
	return ok && samePlacement(&op.tasks[i], live)
}

// exactGang reports whether a running gang runs exactly as placed: the
// plan names each live task where it runs, and no other task.
func (op *placeOp) exactGang() bool {
	r := op.r
	if r.status != Running || len(op.tasks) != len(r.run.Tasks) {
		return false
	}
	for i := range op.tasks {
		if !samePlacement(&op.tasks[i], &r.run.Tasks[i]) {
			return false
		}
	}
	return true
}

// mergeTasks merges the placements of new tasks (sorted by task, those
// with skip set left out) into a job's live tasks (sorted by task, none of
// the new tasks among them), in one pass.
func mergeTasks(live, add []scheduler.TaskPlacement, skip []bool) []scheduler.TaskPlacement {
	if len(live) == 0 && !slices.Contains(skip, true) {
		return add // a job starting: its placements, already the plan's own copy
	}
	out := make([]scheduler.TaskPlacement, 0, len(live)+len(add))
	i := 0
	for k := range add {
		if skip[k] {
			continue
		}
		for i < len(live) && live[i].Task < add[k].Task {
			out = append(out, live[i])
			i++
		}
		out = append(out, add[k])
	}
	return append(out, live[i:]...)
}
