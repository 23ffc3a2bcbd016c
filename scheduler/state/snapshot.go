package state

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"petite/scheduler"
)

// snapshot is the encoded form of a machine: one JSON object in the same
// versioned, strictly decoded encoding as the commands.
type snapshot struct {
	V       int    `json:"v"`
	Type    string `json:"type"`
	Applied uint64 `json:"applied"`
	NextSeq uint64 `json:"next_seq"`
	// Pools and Nodes are in registration order, which fixes node ids.
	Pools []scheduler.Pool `json:"pools,omitempty"`
	Nodes []scheduler.Node `json:"nodes,omitempty"`
	// Ranks lists the nodes by tie-break rank; absent while the ranks are
	// the registration order.
	Ranks   []string           `json:"ranks,omitempty"`
	Tenants []scheduler.Tenant `json:"tenants,omitempty"`
	Jobs    []JobInfo          `json:"jobs,omitempty"` // by id
	// Unhealthy lists the nodes with devices withheld as unhealthy, in
	// registration order; absent when none, so such a state encodes as
	// before the field existed.
	Unhealthy []nodeDevices `json:"unhealthy,omitempty"`
}

// nodeDevices names devices of one node.
type nodeDevices struct {
	Node    string `json:"node"`
	Devices []int  `json:"devices"`
}

const snapshotType = "snapshot"

// Snapshot writes the whole state: the pools and nodes in registration
// order with their states, the node ranks, the tenants by name and the
// jobs by id with their placements. The same state always gives the same
// bytes, which is what lets tests and replicas compare states.
func (m *Machine) Snapshot(w io.Writer) error {
	s := snapshot{V: Version, Type: snapshotType, Applied: m.applied, NextSeq: m.nextSeq, Tenants: m.Tenants(), Jobs: m.Jobs()}
	for _, p := range m.c.Pools() {
		s.Pools = append(s.Pools, clonePool(p))
	}
	n := m.c.NumNodes()
	ranked := make([]string, n)
	identity := true
	for i := range n {
		id := scheduler.NodeID(i)
		s.Nodes = append(s.Nodes, cloneNode(m.c.Node(id)))
		r := m.c.Rank(id)
		ranked[r] = s.Nodes[i].Name
		identity = identity && r == int32(i)
		if d := m.c.UnhealthyDevices(id); d != nil {
			s.Unhealthy = append(s.Unhealthy, nodeDevices{Node: s.Nodes[i].Name, Devices: d})
		}
	}
	if !identity {
		s.Ranks = ranked
	}
	b, err := marshal(&s)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Restore reads a snapshot written by Snapshot and rebuilds the machine,
// checking it as it goes: every job must be well formed, in one status,
// and its running tasks must fit the nodes together (each is committed
// again). A snapshot that fails a check is an error naming the field.
func Restore(r io.Reader) (*Machine, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var s snapshot
	if err := unmarshalStrict(data, &s, func() ([]byte, error) { return marshal(&s) }); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	switch {
	case s.V != Version:
		return nil, fmt.Errorf("restore: field v: unsupported version %d (this build reads %d)", s.V, Version)
	case s.Type != snapshotType:
		return nil, fmt.Errorf("restore: field type: want %q, got %q", snapshotType, s.Type)
	}
	c, err := scheduler.NewCluster(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for i, p := range s.Pools {
		if err := c.AddPool(p); err != nil {
			return nil, fmt.Errorf("restore: field pools[%d]: %w", i, err)
		}
	}
	for i, n := range s.Nodes {
		if n.Pool == "" {
			return nil, fmt.Errorf("restore: field nodes[%d].pool: want the node's pool", i)
		}
		if !n.State.Valid() {
			return nil, fmt.Errorf("restore: field nodes[%d].state: unknown node state %d", i, n.State)
		}
		if _, err := c.AddNode(n); err != nil {
			return nil, fmt.Errorf("restore: field nodes[%d]: %w", i, err)
		}
	}
	if s.Ranks != nil {
		perm := make([]scheduler.NodeID, len(s.Ranks))
		for i, name := range s.Ranks {
			id, ok := c.NodeByName(name)
			if !ok {
				return nil, fmt.Errorf("restore: field ranks[%d]: unknown node %q", i, name)
			}
			perm[i] = id
		}
		if err := c.SetRanks(perm); err != nil {
			return nil, fmt.Errorf("restore: field ranks: %w", err)
		}
	}
	m := newMachine(c)
	m.applied, m.nextSeq = s.Applied, s.NextSeq
	for i, t := range s.Tenants {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("restore: field tenants[%d]: %w", i, err)
		}
		if _, dup := m.tenants[t.Name]; dup {
			return nil, fmt.Errorf("restore: field tenants[%d]: tenant %s repeated", i, t.Name)
		}
		m.tenants[t.Name] = t
	}
	seqs := map[uint64]string{}
	for i := range s.Jobs {
		if err := m.restoreJob(&s.Jobs[i], seqs); err != nil {
			return nil, fmt.Errorf("restore: field jobs[%d]: %w", i, err)
		}
	}
	slices.SortFunc(m.pending, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
	// Devices are withheld once the running tasks are back on them.
	for i, u := range s.Unhealthy {
		id, ok := c.NodeByName(u.Node)
		if !ok {
			return nil, fmt.Errorf("restore: field unhealthy[%d].node: unknown node %q", i, u.Node)
		}
		if changed, err := c.SetDeviceHealth(id, u.Devices, false); err != nil || !changed {
			if err == nil {
				err = fmt.Errorf("node %s repeated or no device named", u.Node)
			}
			return nil, fmt.Errorf("restore: field unhealthy[%d]: %w", i, err)
		}
	}
	return m, nil
}

// restoreJob checks one job record of a snapshot and adds it, committing
// its running tasks to the cluster.
func (m *Machine) restoreJob(ji *JobInfo, seqs map[uint64]string) error {
	j := ji.Job
	if err := j.Validate(); err != nil {
		return err
	}
	id := j.ID
	if _, dup := m.jobs.get(m.recs, id); dup {
		return fmt.Errorf("job %s: repeated", id)
	}
	if other, dup := seqs[ji.Seq]; dup || ji.Seq >= m.nextSeq {
		return fmt.Errorf("job %s: field seq: %d is taken by %s or not below next_seq %d", id, ji.Seq, other, m.nextSeq)
	}
	seqs[ji.Seq] = id
	s, err := m.c.ShapeOf(&j.Task)
	if err != nil {
		return fmt.Errorf("job %s: field job.task: %w", id, err)
	}
	r := &record{job: j, seq: ji.Seq, status: ji.Status, done: slices.Clone(ji.Done), ended: ji.Ended, requeues: ji.Requeues, tag: s.Tag}
	r.run = scheduler.RunningJob{Job: &r.job, Started: ji.Started}
	if err := checkRecord(ji); err != nil {
		return fmt.Errorf("job %s: %w", id, err)
	}
	for k := range ji.Tasks {
		tp := ji.Tasks[k]
		nid, err := m.checkTask(r, &tp, false)
		if err != nil {
			return fmt.Errorf("job %s: field tasks[%d]: %w", id, k, err)
		}
		if st := m.c.Node(nid).State; st == scheduler.NodeDown || st == scheduler.NodeRetired {
			return fmt.Errorf("job %s: field tasks[%d]: runs on %s, which is %s", id, k, tp.Node, st)
		}
		a, err := m.c.AssignOf(tp, r.tag)
		if err != nil {
			return fmt.Errorf("job %s: field tasks[%d]: %w", id, k, err)
		}
		if err := m.c.Commit(a); err != nil {
			return fmt.Errorf("job %s: field tasks[%d]: %w", id, k, err)
		}
		r.run.Tasks = append(r.run.Tasks, tp)
	}
	m.slot(r)
	m.jobs.put(r)
	if r.status.Ended() {
		m.ended = append(m.ended, r)
	}
	switch r.status {
	case Pending:
		m.pending = append(m.pending, queued{r.seq, r}) // sorted once all are in
	case Running:
		m.nrun++
	}
	return nil
}

// checkRecord checks that a job record is in one consistent status: only
// a running job has tasks, in task order with sorted devices; only a
// running training gang has done tasks, and its running and done tasks
// make the whole gang.
func checkRecord(ji *JobInfo) error {
	if ji.Status > Cancelled {
		return fmt.Errorf("field status: unknown status %d", ji.Status)
	}
	running := ji.Status == Running
	switch {
	case running != (len(ji.Tasks) > 0):
		return fmt.Errorf("field tasks: a %s job has %d running tasks", ji.Status, len(ji.Tasks))
	case len(ji.Done) > 0 && (!running || ji.Job.Kind != scheduler.Training):
		return fmt.Errorf("field done: only a running training gang has done tasks")
	case ji.Job.Kind == scheduler.Training && running && len(ji.Tasks)+len(ji.Done) != ji.Job.Count:
		return fmt.Errorf("field tasks: a running gang of %d has %d running and %d done tasks", ji.Job.Count, len(ji.Tasks), len(ji.Done))
	case !running && ji.Started != 0:
		return fmt.Errorf("field started: a %s job has a start time", ji.Status)
	case !ji.Status.Ended() && ji.Ended != 0:
		return fmt.Errorf("field ended: a %s job has an end time", ji.Status)
	case ji.Requeues < 0:
		return fmt.Errorf("field requeues: want >= 0, got %d", ji.Requeues)
	}
	for k, tp := range ji.Tasks {
		if k > 0 && ji.Tasks[k-1].Task >= tp.Task {
			return fmt.Errorf("field tasks[%d]: want tasks in increasing order", k)
		}
		if !slices.IsSorted(tp.GPUs) {
			return fmt.Errorf("field tasks[%d].gpus: want sorted devices", k)
		}
	}
	for k, t := range ji.Done {
		if t < 0 || t >= ji.Job.Count || (k > 0 && ji.Done[k-1] >= t) {
			return fmt.Errorf("field done[%d]: want increasing task indices in 0..%d", k, ji.Job.Count-1)
		}
		if slices.ContainsFunc(ji.Tasks, func(tp scheduler.TaskPlacement) bool { return tp.Task == t }) {
			return fmt.Errorf("field done[%d]: task %d is also running", k, t)
		}
	}
	return nil
}
