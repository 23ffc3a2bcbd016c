// Package workload turns trace records into what the scheduler core
// places: the jobs of a trace (traces.Job, from any format the traces
// package reads) into scheduler jobs, and a machine list (openb nodes, PAI
// machine spec, Philly machine list) into a fleet of one default pool.
//
// It is the one place that knows how a trace's demand maps onto the core's
// model, so `petite place`, `petite validate` and the trace-replay
// simulator read traces the same way. It does no I/O: the traces package
// reads and validates the files.
package workload

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"

	"petite/scheduler"
	"petite/traces"
)

// DefaultTenant is the tenant of a job whose trace names none.
const DefaultTenant = "default"

// Dropped counts the trace jobs that Jobs could not turn into jobs to place.
type Dropped struct {
	// NoDemand counts jobs whose trace records no tasks.
	NoDemand int `json:"no_demand"`
	// Invalid counts jobs whose demand the core cannot hold (a task of more
	// GPUs than a node may have, a gang past the core's bounds).
	Invalid int `json:"invalid"`
	// Examples are the first MaxExamples reasons a job was dropped.
	Examples []string `json:"examples,omitempty"`
}

// MaxExamples is how many dropped jobs Dropped describes.
const MaxExamples = 10

// Total is the number of trace jobs dropped.
func (d *Dropped) Total() int { return d.NoDemand + d.Invalid }

// Jobs converts the jobs of a trace into the jobs the core places, in order
// of submission (file order among equal times). A trace job becomes one
// scheduler job per task group (Job). A job that cannot be placed (no
// demand recorded, or one the core cannot hold) is dropped and counted, as
// the traces package counts bad records, rather than ending the read.
func Jobs(src []traces.Job) ([]scheduler.Job, Dropped) {
	var d Dropped
	jobs := make([]scheduler.Job, 0, len(src))
	for i := range src {
		js, err := Job(&src[i])
		switch {
		case err != nil:
			d.Invalid++
			if len(d.Examples) < MaxExamples {
				d.Examples = append(d.Examples, err.Error())
			}
			continue
		case len(js) == 0:
			d.NoDemand++
			if len(d.Examples) < MaxExamples {
				d.Examples = append(d.Examples, fmt.Sprintf("job %s: no tasks recorded", src[i].ID))
			}
		}
		jobs = append(jobs, js...)
	}
	slices.SortStableFunc(jobs, func(a, b scheduler.Job) int { return cmp.Compare(a.Submitted, b.Submitted) })
	return jobs, d
}

// Job converts one trace job. The core's job has one task shape, so a trace
// job with several task groups (a PAI job's workers and parameter servers)
// becomes one scheduler job per group, named ID/NAME (or ID/INDEX when the
// group has no name); a job of one group keeps its ID. Each group is a
// gang of its instances: a training job places all of them or none.
//
// The kind is the trace's, and openb's latency-sensitive QoS ("LS") is a
// service; the rest trains. A job without a submit time is submitted at 0;
// a known duration becomes the walltime. The core shares single GPUs only,
// so a task that asks for a share of each of several GPUs (PAI's 1.5 GPUs
// as 2 × 750) gets those GPUs whole.
func Job(j *traces.Job) ([]scheduler.Job, error) {
	out, err := AppendJob(make([]scheduler.Job, 0, len(j.Tasks)), j)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendJob converts one trace job as Job does and appends its jobs to out,
// so that a caller converting a stream can reuse one buffer. On error out
// is returned as it came.
func AppendJob(out []scheduler.Job, j *traces.Job) ([]scheduler.Job, error) {
	n := len(out)
	for i := range j.Tasks {
		t := &j.Tasks[i]
		sj := scheduler.Job{
			ID:     j.ID,
			Tenant: cmp.Or(j.Tenant, DefaultTenant),
			Count:  t.Count,
			Task: scheduler.Task{
				GPUs:      t.GPUs,
				CPUMilli:  t.CPUMilli,
				MemoryMiB: t.MemoryMiB,
			},
			Priority: int32(max(math.MinInt32, min(math.MaxInt32, j.Priority))),
		}
		if len(j.Tasks) > 1 {
			sj.ID += "/" + cmp.Or(t.Name, strconv.Itoa(i))
		}
		if t.GPUs > 0 {
			sj.Task.GPUMilli = int(t.GPUMilli)
			if t.GPUs > 1 {
				sj.Task.GPUMilli = scheduler.MilliPerGPU
			}
			if len(t.GPUModels) > 0 {
				sj.Task.Models = slices.Clone(t.GPUModels)
			}
		}
		if j.Kind == traces.KindInference || (j.Kind == traces.KindUnknown && j.QoS == "LS") {
			sj.Kind = scheduler.Inference
		}
		if j.Submit != traces.NoTime {
			sj.Submitted = j.Submit
		}
		if j.Duration > 0 {
			sj.Walltime = j.Duration
		}
		if err := sj.Validate(); err != nil {
			clear(out[n:])
			return out[:n], fmt.Errorf("workload: %w", err)
		}
		out = append(out, sj)
	}
	return out, nil
}

// DefaultPool is the pool the machines of a machine list join: owned
// capacity, no price, no retirement date.
func DefaultPool() scheduler.Pool {
	return scheduler.Pool{Name: "default", Kind: scheduler.PoolOnPrem}
}

// UnknownModel is the GPU model of a machine whose list does not name it
// (Philly's machine list): such GPUs serve tasks that accept any model.
const UnknownModel = "unknown"

// Fleet builds the nodes of a machine list, all in pool, in list order.
// A machine whose list gives no CPU (or memory) has no CPU (memory) limit
// that a task could hit: its capacity is the core's maximum, so only its
// GPUs decide what fits. Names must be unique and GPU counts within what a
// node may hold; an error names the machine and its position (1-based).
func Fleet(ms []traces.Machine, pool scheduler.Pool) ([]scheduler.Pool, []scheduler.Node, error) {
	nodes := make([]scheduler.Node, 0, len(ms))
	seen := make(map[string]int, len(ms))
	for i, m := range ms {
		where := fmt.Sprintf("machine %d (%s)", i+1, m.Name)
		switch {
		case m.Name == "":
			return nil, nil, fmt.Errorf("machine %d: field name: want a name", i+1)
		case m.GPUs < 0 || m.GPUs > scheduler.MaxGPUsPerNode:
			return nil, nil, fmt.Errorf("%s: field gpus: want 0..%d, got %d", where, scheduler.MaxGPUsPerNode, m.GPUs)
		case m.CPUMilli < 0 || m.CPUMilli > scheduler.MaxNodeCPUMilli:
			return nil, nil, fmt.Errorf("%s: field cpu_milli: want 0..%d, got %d", where, int64(scheduler.MaxNodeCPUMilli), m.CPUMilli)
		case m.MemoryMiB < 0 || m.MemoryMiB > scheduler.MaxNodeMemoryMiB:
			return nil, nil, fmt.Errorf("%s: field memory_mib: want 0..%d, got %d", where, int64(scheduler.MaxNodeMemoryMiB), m.MemoryMiB)
		}
		if j, dup := seen[m.Name]; dup {
			return nil, nil, fmt.Errorf("%s: field name: repeats machine %d", where, j+1)
		}
		seen[m.Name] = i
		n := scheduler.Node{Name: m.Name, Pool: pool.Name, CPUMilli: m.CPUMilli, MemoryMiB: m.MemoryMiB}
		if n.CPUMilli == 0 {
			n.CPUMilli = scheduler.MaxNodeCPUMilli
		}
		if n.MemoryMiB == 0 {
			n.MemoryMiB = scheduler.MaxNodeMemoryMiB
		}
		if m.GPUs > 0 {
			n.GPUs = make([]scheduler.GPU, m.GPUs)
			for g := range n.GPUs {
				n.GPUs[g] = scheduler.GPU{Model: cmp.Or(m.GPUModel, UnknownModel), MemoryMiB: m.GPUMemMiB, MilliCap: scheduler.MilliPerGPU}
			}
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return nil, nil, fmt.Errorf("machine list: no machines")
	}
	return []scheduler.Pool{pool}, nodes, nil
}
