package scheduler

import (
	"fmt"
	"slices"
)

// TaskPlacement is where one task of a job runs: its node, the devices it
// uses and what it takes. It is the durable, readable form of an Assign.
type TaskPlacement struct {
	// Task is the task's index within its job (the replica number).
	Task int    `json:"task"`
	Node string `json:"node"`
	// GPUs are the device indices on the node.
	GPUs []int `json:"gpus,omitempty"`
	// GPUMilli is the milli-GPU taken on each device.
	GPUMilli  int32 `json:"gpu_milli,omitempty"`
	CPUMilli  int64 `json:"cpu_milli,omitempty"`
	MemoryMiB int64 `json:"memory_mib,omitempty"`
}

// JobPlacement places tasks of one job.
type JobPlacement struct {
	Job   string          `json:"job"`
	Tasks []TaskPlacement `json:"tasks"`
}

// Eviction preempts a job, or trims some replicas of a service.
type Eviction struct {
	Job string `json:"job"`
	// Tasks are the task indices evicted; empty evicts the whole job.
	Tasks []int `json:"tasks,omitempty"`
	// For is the job the room is made for.
	For string `json:"for,omitempty"`
	// Seen are the placements of the evicted tasks as the pass saw them
	// (node, devices and amounts), by task index. The state machine refuses
	// the eviction if one of those tasks runs elsewhere now: a stale plan
	// must not evict a job wherever it has moved to. Schedule always fills
	// it, and the state machine refuses an eviction without it.
	Seen []TaskPlacement `json:"seen,omitempty"`
}

// Unplaced is a job the pass could not place, with the reasons counted over
// the nodes for its task shape ("not enough free GPUs": 812).
type Unplaced struct {
	Job     string         `json:"job"`
	Reasons map[string]int `json:"reasons,omitempty"`
	// Why is a short note: "quota", "waits behind the head job", ...
	Why string `json:"why,omitempty"`
}

// Plan is the outcome of one scheduling pass, applied atomically: the
// evictions first, then the placements.
type Plan struct {
	Evict    []Eviction     `json:"evict,omitempty"`
	Place    []JobPlacement `json:"place,omitempty"`
	Unplaced []Unplaced     `json:"unplaced,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Evict) == 0 && len(p.Place) == 0 }

// Placement converts an assignment into its durable form.
func (c *Cluster) Placement(task int, a Assign) TaskPlacement { return c.placementIn(task, a, nil) }

// placementIn is Placement with the device list appended to gpus (empty,
// with room for the devices: no allocation).
func (c *Cluster) placementIn(task int, a Assign, gpus []int) TaskPlacement {
	tp := TaskPlacement{Task: task, Node: c.names[a.Node], CPUMilli: a.CPUMilli, MemoryMiB: a.MemMiB, GPUs: gpus}
	for m := a.Mask; m != 0; m &= m - 1 {
		tp.GPUs = append(tp.GPUs, trailingZeros(m))
	}
	if a.Mask != 0 {
		tp.GPUMilli = a.Take
	}
	return tp
}

// AssignOf converts a durable placement back into an assignment for the
// cluster, checking its node and devices exist. tag is the task's GPU tag
// (Shape.Tag) as tag-aware policies count it.
func (c *Cluster) AssignOf(tp TaskPlacement, tag int8) (Assign, error) {
	n, ok := c.byName[tp.Node]
	if !ok {
		return Assign{}, fmt.Errorf("placement of task %d: unknown node %q", tp.Task, tp.Node)
	}
	return c.AssignOn(n, &tp, tag)
}

// AssignOn is AssignOf for a placement whose node the caller has looked up
// already: n is the node named by tp.Node.
func (c *Cluster) AssignOn(n NodeID, tp *TaskPlacement, tag int8) (Assign, error) {
	a := Assign{Node: n, Take: tp.GPUMilli, CPUMilli: tp.CPUMilli, MemMiB: tp.MemoryMiB, Tag: tag}
	gpuN := int(c.nodes[n].gpuN)
	for _, g := range tp.GPUs {
		if g < 0 || g >= gpuN {
			return Assign{}, fmt.Errorf("placement of task %d on %s: no GPU %d (node has %d)", tp.Task, tp.Node, g, gpuN)
		}
		if a.Mask&(1<<uint(g)) != 0 {
			return Assign{}, fmt.Errorf("placement of task %d on %s: GPU %d named twice", tp.Task, tp.Node, g)
		}
		a.Mask |= 1 << uint(g)
	}
	if len(tp.GPUs) > 0 && tp.GPUMilli <= 0 {
		return Assign{}, fmt.Errorf("placement of task %d on %s: field gpu_milli: want > 0 with GPUs", tp.Task, tp.Node)
	}
	return a, nil
}

// RunningJob is a job with the tasks it has running, as the state machine
// hands it to a scheduling pass.
type RunningJob struct {
	Job *Job
	// Tasks are the live tasks' placements, in task order.
	Tasks []TaskPlacement
	// Started is when the job started on the driver's clock.
	Started int64
}

// GPUMilli is the milli-GPU the running tasks hold.
func (r *RunningJob) GPUMilli() int64 {
	var s int64
	for _, t := range r.Tasks {
		s += int64(len(t.GPUs)) * int64(t.GPUMilli)
	}
	return s
}

// TaskIndexes lists the indices of the running tasks.
func (r *RunningJob) TaskIndexes() []int {
	out := make([]int, len(r.Tasks))
	for i, t := range r.Tasks {
		out[i] = t.Task
	}
	slices.Sort(out)
	return out
}
