package state

import (
	"fmt"
	"slices"

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
	pending []*scheduler.Job
	running []*scheduler.RunningJob
	tenants []scheduler.Tenant
	// Slabs of the running jobs' copies, reused by Refreeze.
	runs  []scheduler.RunningJob
	tasks []scheduler.TaskPlacement
	devs  []int
}

// Freeze copies the state for a scheduling pass. It reads the machine, so
// the driver serialises it with Apply; the copy is then independent of the
// machine. It costs a flat copy of the cluster's slabs (see
// scheduler.Cluster.Clone) and of the running jobs' placements. The jobs
// themselves are shared: the machine never writes a job after its
// submission, and a pass only reads them.
func (m *Machine) Freeze() *Frozen {
	f := &Frozen{rep: scheduler.NewReplica(m.c)}
	m.copyJobs(f)
	return f
}

// Refreeze brings f to the machine's present state, as Freeze would, but
// at the cost of the nodes changed since f was last frozen (see
// scheduler.Replica), and with f's score indexes kept warm. Like Freeze it
// reads the machine, so the driver serialises it with Apply; it must not
// run while a pass runs on f. What f handed out before (Pending, Running)
// is not valid after it.
func (m *Machine) Refreeze(f *Frozen) {
	if f.rep.Source() == m.c {
		f.rep.Sync()
	} else {
		f.rep = scheduler.NewReplica(m.c)
	}
	m.copyJobs(f)
}

// copyJobs copies the applied version, the queue, the running jobs and the
// tenants into f.
func (m *Machine) copyJobs(f *Frozen) {
	f.applied = m.applied
	f.pending = f.pending[:0]
	for _, r := range m.pending {
		f.pending = append(f.pending, &r.job)
	}
	f.tenants = m.Tenants()
	run := m.runningView()
	// The running jobs' placements go into two slabs, each piece clipped so
	// that an append to one never runs into the next.
	ntask, ndev := 0, 0
	for _, rj := range run {
		ntask += len(rj.Tasks)
		for _, tp := range rj.Tasks {
			ndev += len(tp.GPUs)
		}
	}
	tasks := slices.Grow(f.tasks[:0], ntask)
	devs := slices.Grow(f.devs[:0], ndev)
	runs := slices.Grow(f.runs[:0], len(run))[:len(run)]
	f.running = slices.Grow(f.running[:0], len(run))[:len(run)]
	for i, rj := range run {
		first := len(tasks)
		for _, tp := range rj.Tasks {
			if tp.GPUs != nil {
				d := len(devs)
				devs = append(devs, tp.GPUs...)
				tp.GPUs = devs[d:len(devs):len(devs)]
			}
			tasks = append(tasks, tp)
		}
		runs[i] = scheduler.RunningJob{Job: rj.Job, Tasks: tasks[first:len(tasks):len(tasks)], Started: rj.Started}
		f.running[i] = &runs[i]
	}
	f.runs, f.tasks, f.devs = runs, tasks, devs
}

// Plan runs a scheduling pass on a frozen copy of the state and returns its
// plan; the machine's cluster is not touched. The pass's Pending, Running
// and Tenants come from the machine and must be left empty. The machine
// keeps the copy for its next Plan, refrozen at the cost of what changed.
func (m *Machine) Plan(in scheduler.Pass) (scheduler.Plan, error) {
	if m.planner == nil {
		m.planner = m.Freeze()
	} else {
		m.Refreeze(m.planner)
	}
	return m.planner.Schedule(in)
}

// Applied is the machine's Applied when the state was frozen.
func (f *Frozen) Applied() uint64 { return f.applied }

// Cluster returns a read-only view of the frozen cluster.
func (f *Frozen) Cluster() scheduler.View { return f.rep.Cluster().View() }

// Pending returns the queued jobs in submission order (read-only).
func (f *Frozen) Pending() []*scheduler.Job { return slices.Clone(f.pending) }

// Running returns the running jobs sorted by id (read-only).
func (f *Frozen) Running() []*scheduler.RunningJob { return slices.Clone(f.running) }

// Tenants returns the tenants sorted by name.
func (f *Frozen) Tenants() []scheduler.Tenant { return slices.Clone(f.tenants) }

// Schedule runs one scheduling pass (scheduler.Cluster.Schedule) on the
// frozen state. The frozen queue, running jobs and tenants are the pass's
// Pending, Running and Tenants, which the caller leaves empty.
func (f *Frozen) Schedule(in scheduler.Pass) (scheduler.Plan, error) {
	if in.Pending != nil || in.Running != nil || in.Tenants != nil {
		return scheduler.Plan{}, fmt.Errorf("plan: fields pending, running, tenants: the frozen state supplies them; leave them empty")
	}
	in.Pending, in.Running, in.Tenants = f.Pending(), f.Running(), f.Tenants()
	plan, err := f.rep.Cluster().Schedule(in)
	if err != nil {
		return scheduler.Plan{}, fmt.Errorf("plan at applied %d: %w", f.applied, err)
	}
	return plan, nil
}
