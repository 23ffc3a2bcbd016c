package state

import (
	"fmt"
	"maps"
	"slices"

	"petite/scheduler"
)

// JobStatus is where a job is in its life.
type JobStatus uint8

// The statuses of a job. A job is in exactly one of them; the last three
// are final.
const (
	// Pending jobs wait in the queue for a placement.
	Pending JobStatus = iota
	// Running jobs have at least one task placed.
	Running
	// Succeeded jobs ended well.
	Succeeded
	// Failed jobs ended badly (a task of the gang failed).
	Failed
	// Cancelled jobs were ended by a Cancel command.
	Cancelled
)

var jobStatusNames = [...]string{"pending", "running", "succeeded", "failed", "cancelled"}

// String returns the status's name.
func (s JobStatus) String() string {
	if int(s) < len(jobStatusNames) {
		return jobStatusNames[s]
	}
	return fmt.Sprintf("JobStatus(%d)", s)
}

// Ended reports whether the status is final.
func (s JobStatus) Ended() bool { return s >= Succeeded }

// MarshalText writes the status by name, as the encoding carries it.
func (s JobStatus) MarshalText() ([]byte, error) {
	if int(s) >= len(jobStatusNames) {
		return nil, fmt.Errorf("job status %d: unknown", s)
	}
	return []byte(jobStatusNames[s]), nil
}

// UnmarshalText reads a status by name.
func (s *JobStatus) UnmarshalText(b []byte) error {
	for i, n := range jobStatusNames {
		if string(b) == n {
			*s = JobStatus(i)
			return nil
		}
	}
	return fmt.Errorf("unknown job status %q (want pending, running, succeeded, failed or cancelled)", b)
}

// JobInfo is the state machine's record of a job: the job as submitted, its
// status, where its tasks run and its times. It is also the form a job
// takes in a snapshot.
type JobInfo struct {
	Job    scheduler.Job `json:"job"`
	Status JobStatus     `json:"status"`
	// Seq is the job's place in submission order; the pending queue is
	// kept in this order, and a requeued job goes back to its place.
	Seq uint64 `json:"seq"`
	// Tasks are the running tasks' placements, in task order.
	Tasks []scheduler.TaskPlacement `json:"tasks,omitempty"`
	// Done are the tasks of a running training gang that have ended well.
	Done []int `json:"done,omitempty"`
	// Started is when the job last went from pending to running; Ended is
	// when it reached a final status (driver's clock).
	Started int64 `json:"started,omitempty"`
	Ended   int64 `json:"ended,omitempty"`
	// Requeues counts the times the job went back to the queue (node lost,
	// preempted).
	Requeues int `json:"requeues,omitempty"`
}

// Missing lists the tasks that wait to be placed: neither running nor
// done. For a running inference service these are its lost replicas.
func (j *JobInfo) Missing() []int {
	var out []int
	t, d := 0, 0
	for i := range j.Job.Count {
		switch {
		case t < len(j.Tasks) && j.Tasks[t].Task == i:
			t++
		case d < len(j.Done) && j.Done[d] == i:
			d++
		default:
			out = append(out, i)
		}
	}
	return out
}

// record is the machine's live form of a job. Its fields are laid out
// for a finish, the most frequent command of a replay: what it reads (the
// status, the live tasks and their assignments, the planner's copy, the
// job's id) lies in the first cache lines, the rest after.
type record struct {
	status JobStatus
	tag    int8 // the task's GPU tag, for AssignOf
	// inView: the record is listed in the machine's running view or in
	// the jobs started since it was built (see Machine.runningView).
	inView bool
	// slot is the record's index in the machine's recs (see Machine.Hint);
	// hash is its id's in the machine's jobIndex.
	slot int32
	hash uint32
	// ver counts the changes to status and run (see Machine.changed), so
	// that a Frozen copies a job once however often the log names it.
	ver   uint64
	ended int64
	run   scheduler.RunningJob // run.Job is &job; run.Tasks the live tasks by index
	// as holds the cluster assignments of run.Tasks, index for index, as
	// the plan that started the job worked them out; nil (or of another
	// length) when not kept, and they are worked out again (assignAt).
	as []scheduler.Assign
	// lean is what the machine's planner knows of the job (see
	// Frozen.lean).
	lean leanCopy
	// as1 holds the assignment of a job of one task (as is as1[:] then).
	as1 [1]scheduler.Assign
	job scheduler.Job
	seq uint64
	// planGen is the generation of the last plan that named the job (see
	// checkPlacements): a job named twice in one plan is refused.
	planGen  uint64
	done     []int // sorted
	requeues int
	// fz is a Frozen's copy of the job, a cache (see Frozen.copyOf).
	fz *frozenJob
}

// lines reads a word of each cache line of the record, for a submission
// about to fill it to find them fetched (see Machine.WarmSubmit).
func (r *record) lines() int64 {
	return int64(r.status) + int64(r.lean.gen) + int64(len(r.job.ID)) + int64(r.job.Task.GPUs) +
		int64(len(r.job.Task.Residency)) + r.job.Walltime + int64(r.seq)
}

func (r *record) info() JobInfo {
	return JobInfo{
		Job: cloneJob(r.job), Status: r.status, Seq: r.seq, Tasks: cloneTasks(r.run.Tasks),
		Done: slices.Clone(r.done), Started: r.run.Started, Ended: r.ended, Requeues: r.requeues,
	}
}

// live returns the position of task t in the live tasks, or -1.
func (r *record) live(t int) int {
	i, ok := slices.BinarySearchFunc(r.run.Tasks, t, func(p scheduler.TaskPlacement, t int) int { return p.Task - t })
	if !ok {
		return -1
	}
	return i
}

// isDone reports whether training task t has ended well.
func (r *record) isDone(t int) bool {
	_, ok := slices.BinarySearch(r.done, t)
	return ok
}

// cloneJob deep-copies a job so that the machine shares no memory with its
// callers.
func cloneJob(j scheduler.Job) scheduler.Job {
	t := &j.Task
	t.Models = slices.Clone(t.Models)
	t.Residency = slices.Clone(t.Residency)
	t.Constraints = slices.Clone(t.Constraints)
	for i := range t.Constraints {
		t.Constraints[i].Values = slices.Clone(t.Constraints[i].Values)
	}
	return j
}

func cloneTasks(ts []scheduler.TaskPlacement) []scheduler.TaskPlacement {
	out := slices.Clone(ts)
	for i := range out {
		out[i].GPUs = slices.Clone(out[i].GPUs)
	}
	return out
}

// samePlacement reports whether two placements of one task are identical;
// both have their GPUs sorted.
func samePlacement(a, b *scheduler.TaskPlacement) bool {
	return a.Task == b.Task && a.Node == b.Node && a.GPUMilli == b.GPUMilli &&
		a.CPUMilli == b.CPUMilli && a.MemoryMiB == b.MemoryMiB && slices.Equal(a.GPUs, b.GPUs)
}

// cloneNode deep-copies a node spec.
func cloneNode(n scheduler.Node) scheduler.Node {
	n.GPUs = slices.Clone(n.GPUs)
	n.Labels = maps.Clone(n.Labels)
	return n
}

// clonePool deep-copies a pool.
func clonePool(p scheduler.Pool) scheduler.Pool {
	p.Labels = maps.Clone(p.Labels)
	return p
}
