package replay

// Starting a replay from a state machine's snapshot: the daemon's
// GET /v1/snapshot, or state.Machine.Snapshot.

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"petite/scheduler"
	"petite/scheduler/state"
)

// SnapshotOptions say how a snapshot becomes the start of a replay.
type SnapshotOptions struct {
	// At is the snapshot's instant on the driver's clock (seconds): the
	// run starts there. 0 takes the latest time the snapshot records (a
	// submission, start or end).
	At int64
	// DefaultDuration (nanoseconds) is the work of a live job that carries
	// no walltime: a running job's remaining work from At, a queued job's
	// whole work. 0 refuses such a job, naming it.
	DefaultDuration int64
}

// Start is a replay's starting point read from a snapshot: the fleet, the
// tenants and the live jobs, ready for a Config.
type Start struct {
	// At is the start on the virtual clock (nanoseconds).
	At int64
	// Pools, Nodes and Tenants are the snapshot's, nodes in rank order
	// (so the replay's tie-breaks are the daemon's) with their states.
	Pools   []scheduler.Pool
	Nodes   []scheduler.Node
	Tenants []scheduler.Tenant
	// Jobs are the live jobs in the snapshot's queue order (its seq), the
	// running ones with their placements (Job.Placed). Each arrives at At.
	Jobs []Job
	// Running and Queued count the live jobs; Ended those of the snapshot
	// that had ended (left out). FromWalltime and FromDefault count how
	// the live jobs' durations were set.
	Running, Queued, Ended    int
	FromWalltime, FromDefault int

	defaultDur int64 // SnapshotOptions.DefaultDuration
}

// ReadSnapshot reads a state machine snapshot (state.Restore checks it
// whole) and returns the replay's start. name is the file's name for errors.
func ReadSnapshot(r io.Reader, name string, o SnapshotOptions) (*Start, error) {
	m, err := state.Restore(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, err := FromMachine(m, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// FromMachine returns the replay's start from a state machine as it stands.
// It reads the machine only.
//
// A running job's placements are kept; its remaining work is its walltime
// less the time it has run (at least 0: a job past its walltime ends at the
// start), or DefaultDuration when it has none. A queued job's work is its
// walltime, or DefaultDuration. A training gang with tasks already done
// replays its running tasks as a smaller gang. A service missing replicas
// gets them back from the first pass.
func FromMachine(m *state.Machine, o SnapshotOptions) (*Start, error) {
	v := m.Cluster()
	s := &Start{Pools: v.Pools(), Tenants: m.Tenants(), defaultDur: o.DefaultDuration}
	ranked := make([]scheduler.Node, v.NumNodes())
	for i := range v.NumNodes() {
		id := scheduler.NodeID(i)
		ranked[v.Rank(id)] = v.Node(id)
	}
	s.Nodes = ranked
	infos := m.Jobs()
	at := o.At
	if at == 0 {
		for _, ji := range infos {
			at = max(at, ji.Job.Submitted, ji.Started, ji.Ended)
		}
	}
	t0, err := FromSeconds(at)
	if err != nil {
		return nil, fmt.Errorf("snapshot: the start %d s: %w", at, err)
	}
	s.At = t0
	slices.SortFunc(infos, func(a, b state.JobInfo) int { return cmp.Compare(a.Seq, b.Seq) })
	for i := range infos {
		ji := &infos[i]
		if ji.Status.Ended() {
			s.Ended++
			continue
		}
		j := Job{Job: ji.Job, Submit: t0, Source: "snapshot: job " + ji.Job.ID}
		if ji.Job.Submitted > 0 && ji.Job.Submitted <= at {
			j.Origin, _ = FromSeconds(ji.Job.Submitted)
		}
		var ran int64
		if ji.Status == state.Running {
			s.Running++
			j.Placed = slices.Clone(ji.Tasks)
			if ji.Started > 0 && ji.Started <= at {
				j.PlacedSince, _ = FromSeconds(ji.Started)
				ran = at - ji.Started
			}
			if ji.Job.Kind == scheduler.Training && len(ji.Done) > 0 {
				// the done tasks are over: the rest is a smaller gang
				j.Job.Count = len(j.Placed)
				for k := range j.Placed {
					j.Placed[k].Task = k
				}
			}
		} else {
			s.Queued++
		}
		switch {
		case ji.Job.Walltime > 0:
			j.Duration = max(ji.Job.Walltime-ran, 0) * Second
			s.FromWalltime++
		case o.DefaultDuration > 0:
			j.Duration = o.DefaultDuration
			s.FromDefault++
		default:
			return nil, fmt.Errorf("%s: field job.walltime: the job gives none; pass a default duration to replay it", j.Source)
		}
		s.Jobs = append(s.Jobs, j)
	}
	return s, nil
}

// Config returns a replay's Config of the start: its fleet, tenants and
// jobs, the rest left to the caller. Jobs added to it later (a workload on
// top) should submit at or after At.
func (s *Start) Config() Config {
	return Config{Pools: slices.Clone(s.Pools), Nodes: slices.Clone(s.Nodes),
		Tenants: slices.Clone(s.Tenants), Jobs: slices.Clone(s.Jobs)}
}

// registerTenants gives the state machine the run's tenants (quotas,
// fair-share weights), before any job.
func (e *engine) registerTenants() error {
	for i, t := range e.cfg.Tenants {
		if _, err := e.m.Apply(state.SetTenant{Tenant: t}); err != nil {
			return fmt.Errorf("tenants[%d]: %w", i, err)
		}
	}
	return nil
}

// checkPlaced checks a job that starts placed (its record's times before
// the run, the submission and first start it had, are newRecord's and
// arrivePlaced's).
func (e *engine) checkPlaced(src *Job) error {
	if len(src.Placed) == 0 {
		return nil
	}
	if e.cfg.Burst != nil {
		return fmt.Errorf("%s: field placed: the burst method starts from an empty cluster", src.Source)
	}
	if len(src.Placed) > src.Job.Count {
		return fmt.Errorf("%s: field placed: %d placements for %d tasks", src.Source, len(src.Placed), src.Job.Count)
	}
	return nil
}

// arrivePlaced starts job k, just submitted at t, on the placements it
// holds at the run's start, through a plan of the state machine (which
// checks them against the nodes as any plan).
func (e *engine) arrivePlaced(k int, src *Job, t int64) error {
	j := e.job(k)
	tasks := src.Placed
	id := e.machineID(k)
	// A plan places on ready nodes only; a node that keeps its work but
	// takes no more (draining, disconnected) is made ready for this plan
	// and set back after it.
	type kept struct {
		node string
		st   scheduler.NodeState
	}
	var back []kept
	for _, tp := range tasks {
		nid, ok := e.m.Cluster().NodeByName(tp.Node)
		if !ok {
			continue // the plan names it
		}
		st := e.m.Cluster().Node(nid).State
		if st != scheduler.NodeReady && st != scheduler.NodeDown && st != scheduler.NodeRetired &&
			!slices.ContainsFunc(back, func(k kept) bool { return k.node == tp.Node }) {
			back = append(back, kept{tp.Node, st})
		}
	}
	for _, k := range back {
		if _, err := e.m.Apply(state.SetNodeState{Node: k.node, State: scheduler.NodeReady, At: seconds(t)}); err != nil {
			return fmt.Errorf("replay: %s: %w", src.Source, err)
		}
	}
	res, err := e.m.Apply(state.ApplyPlan{Place: []scheduler.JobPlacement{{Job: id, Tasks: tasks}}, At: seconds(t)})
	for _, k := range back {
		if _, serr := e.m.Apply(state.SetNodeState{Node: k.node, State: k.st, At: seconds(t)}); serr != nil && err == nil {
			err = serr
		}
	}
	if err != nil {
		return fmt.Errorf("replay: %s: field placed: %w", src.Source, err)
	}
	if len(res.Started) != 1 {
		return fmt.Errorf("replay: %s: field placed: the state machine did not start it", src.Source)
	}
	e.start(k, t, tasks, nil) // found by name
	if s := src.PlacedSince; s != 0 && s < t {
		j.rec.Start = s
	}
	if src.Job.Kind == scheduler.Inference && len(tasks) < src.Job.Count {
		e.topUp = true // its missing replicas wait for the first pass
	}
	return nil
}
