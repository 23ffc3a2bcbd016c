package scheduler

import (
	"fmt"
	"math"
	"strings"
)

// MilliPerGPU is one whole GPU in milli-GPU, the unit of every GPU amount.
const MilliPerGPU = 1000

// MaxModels bounds the distinct GPU models of a cluster: a task's accepted
// models are a bit mask over them, with one bit kept for "a model no node
// has".
const MaxModels = 63

// The bounds of what one job may ask. They keep every total a job can
// make (tasks times GPUs times milli, tasks times CPU or memory) far inside
// int64, so no sum wraps, and they bound what a pass may allocate for a
// job (topUp, JobInfo.Missing walk its task indices).
const (
	// MaxTasksPerJob bounds Job.Count: a gang's size or a service's replicas.
	MaxTasksPerJob = 1 << 16
	// MaxTaskCPUMilli bounds Task.CPUMilli (about a billion cores).
	MaxTaskCPUMilli = 1 << 40
	// MaxTaskMemoryMiB bounds Task.MemoryMiB (an exbibyte).
	MaxTaskMemoryMiB = 1 << 40
	// MaxNodeCPUMilli and MaxNodeMemoryMiB bound a node's capacity the same
	// way, so that fleet totals stay far inside int64.
	MaxNodeCPUMilli  = 1 << 40
	MaxNodeMemoryMiB = 1 << 40
)

// MaxGPUsPerNode bounds the GPU devices of one node (MIG instances count
// one each); a task's GPUs are kept as a bit mask over them.
const MaxGPUsPerNode = 64

// PoolKind is the operating model of a pool.
type PoolKind uint8

// The kinds of pool.
const (
	// PoolOnPrem is owned hardware of fixed size that may carry a retirement date.
	PoolOnPrem PoolKind = iota
	// PoolOutposts is cloud-managed racks on the premises, tied to a parent region.
	PoolOutposts
	// PoolCloud is elastic capacity in a cloud region or zone, paid per GPU-hour.
	PoolCloud
)

var poolKindNames = [...]string{"onprem", "outposts", "cloud"}

// String returns the kind's name.
func (k PoolKind) String() string {
	if int(k) < len(poolKindNames) {
		return poolKindNames[k]
	}
	return fmt.Sprintf("PoolKind(%d)", k)
}

// ParsePoolKind reads a pool kind by name.
func ParsePoolKind(s string) (PoolKind, error) {
	for i, n := range poolKindNames {
		if strings.EqualFold(s, n) {
			return PoolKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown pool kind %q (want onprem, outposts or cloud)", s)
}

// Owned reports whether the pool's capacity is already paid for.
func (k PoolKind) Owned() bool { return k != PoolCloud }

// PriceModel is how a cloud pool is billed.
type PriceModel uint8

// The price models of a cloud pool.
const (
	// OnDemand is billed per GPU-hour of use.
	OnDemand PriceModel = iota
	// Reserved is committed capacity at a discount.
	Reserved
	// Spot is cheap capacity that the provider may take back.
	Spot
)

// Pool is a set of nodes with one operating model.
type Pool struct {
	// Name identifies the pool.
	Name string `json:"name"`
	// Kind is cloud, outposts or onprem.
	Kind PoolKind `json:"kind"`
	// Region and Zone locate the pool; an outposts pool's Region is its parent region.
	Region string `json:"region,omitempty"`
	Zone   string `json:"zone,omitempty"`
	// Labels apply to every node of the pool (compliance tags, for instance).
	Labels map[string]string `json:"labels,omitempty"`
	// PricePerGPUHour is what a GPU-hour costs here; zero for owned pools.
	PricePerGPUHour float64 `json:"price_per_gpu_hour,omitempty"`
	// Pricing is the billing model of a cloud pool.
	Pricing PriceModel `json:"pricing,omitempty"`
	// MaxNodes caps an elastic cloud pool; zero means fixed size.
	MaxNodes int `json:"max_nodes,omitempty"`
	// ProvisionDelaySec is how long a new cloud node takes to join.
	ProvisionDelaySec int64 `json:"provision_delay_sec,omitempty"`
	// RetireAt is when an onprem pool leaves the fleet (seconds on the
	// driver's clock); zero means never.
	RetireAt int64 `json:"retire_at,omitempty"`
}

// NodeState is a node's health as the scheduler sees it.
type NodeState uint8

// The states of a node. Only a ready node takes new work.
const (
	NodeReady NodeState = iota
	NodeDraining
	NodeDown
	NodeRetired
	// NodeDisconnected is a node whose agent missed its heartbeat deadline:
	// like a draining node it keeps its work and takes no new work, until
	// its agent is heard from again (ready) or its disconnect window ends
	// (down, its work rescheduled).
	NodeDisconnected
)

var nodeStateNames = [...]string{"ready", "draining", "down", "retired", "disconnected"}

// Valid reports whether s is one of the node states above.
func (s NodeState) Valid() bool { return int(s) < len(nodeStateNames) }

// String returns the state's name.
func (s NodeState) String() string {
	if int(s) < len(nodeStateNames) {
		return nodeStateNames[s]
	}
	return fmt.Sprintf("NodeState(%d)", s)
}

// ParseNodeState reads a node state by name.
func ParseNodeState(s string) (NodeState, error) {
	for i, n := range nodeStateNames {
		if strings.EqualFold(s, n) {
			return NodeState(i), nil
		}
	}
	return 0, fmt.Errorf("unknown node state %q (want ready, draining, down, retired or disconnected)", s)
}

// GPU is one schedulable GPU device of a node: a whole GPU, or one MIG
// instance of a partitioned GPU.
type GPU struct {
	// Model is the GPU model label, e.g. "H100" or "V100M32".
	Model string `json:"model"`
	// MemoryMiB is the device memory.
	MemoryMiB int64 `json:"memory_mib,omitempty"`
	// Island is the NVLink island the GPU belongs to; GPUs of one island talk
	// over NVLink, across islands over PCIe.
	Island int `json:"island,omitempty"`
	// MIG names the MIG profile of an instance ("3g.40gb"); empty for a
	// whole GPU. A MIG instance is exclusive: one task takes all of it.
	MIG string `json:"mig,omitempty"`
	// MilliCap is the capacity in milli-GPU: 1000 for a whole GPU, the
	// instance's share of the GPU for MIG (derived from MIG when zero; a
	// stated one must be that share).
	MilliCap int32 `json:"milli_cap,omitempty"`
}

// Exclusive reports whether the device is taken whole by one task: a MIG
// instance (a full-size 7g instance too, though it holds 1000 milli), or a
// device of less than a whole GPU. An exclusive device never serves a
// whole-GPU task, and a share placed on it takes all of it. This is the
// one place that decides it; the cluster records it per device when the
// node registers.
func (g *GPU) Exclusive() bool {
	return g.MIG != "" || (g.MilliCap > 0 && g.MilliCap < MilliPerGPU)
}

// migMilli returns the share of a GPU that a MIG profile holds, in
// milli-GPU: its compute slices of seven. A GPU instance's profile
// ("3g.40gb") computes on its g slices; a compute instance's ("1c.2g.20gb",
// c slices of a g-slice GPU instance) on its c.
func migMilli(profile string) (int32, error) {
	var ci, gi int
	if _, err := fmt.Sscanf(profile, "%dc.%dg.", &ci, &gi); err == nil && ci >= 1 && ci <= gi && gi <= 7 {
		return int32(ci * MilliPerGPU / 7), nil
	}
	if _, err := fmt.Sscanf(profile, "%dg.", &gi); err != nil || gi < 1 || gi > 7 {
		return 0, fmt.Errorf("MIG profile %q: want NgX with N in 1..7 (e.g. 3g.40gb), or CcNgX with C in 1..N (e.g. 1c.2g.20gb)", profile)
	}
	return int32(gi * MilliPerGPU / 7), nil
}

// Node is one machine of the fleet.
type Node struct {
	// Name is unique in the cluster.
	Name string `json:"name"`
	// Pool is the name of the node's pool.
	Pool string `json:"pool"`
	// Rack groups nodes that share a top-of-rack switch and power.
	Rack string `json:"rack,omitempty"`
	// CPUMilli and MemoryMiB are the node's allocatable CPU and memory.
	CPUMilli  int64 `json:"cpu_milli"`
	MemoryMiB int64 `json:"memory_mib"`
	// GPUs are the node's devices, numbered by their index. All share one model.
	GPUs []GPU `json:"gpus,omitempty"`
	// Labels add to (and override) the pool's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// State is ready, draining, down or retired.
	State NodeState `json:"state,omitempty"`
}

// JobKind says what a job is for.
type JobKind uint8

// The kinds of job.
const (
	// Training is a gang of tasks, all placed or none.
	Training JobKind = iota
	// Inference is a long-running service of replicas spread over failure domains.
	Inference
)

var jobKindNames = [...]string{"training", "inference"}

// String returns the kind's name.
func (k JobKind) String() string {
	if int(k) < len(jobKindNames) {
		return jobKindNames[k]
	}
	return fmt.Sprintf("JobKind(%d)", k)
}

// ParseJobKind reads a job kind by name.
func ParseJobKind(s string) (JobKind, error) {
	for i, n := range jobKindNames {
		if strings.EqualFold(s, n) {
			return JobKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown job kind %q (want training or inference)", s)
}

// Op is how a label constraint compares.
type Op uint8

// The label constraint operators.
const (
	// OpIn holds when the label's value is one of Values.
	OpIn Op = iota
	// OpNotIn holds when the label is absent or its value is none of Values.
	OpNotIn
	// OpExists holds when the label is present.
	OpExists
)

// Constraint restricts a task to nodes whose labels match.
type Constraint struct {
	Key    string   `json:"key"`
	Op     Op       `json:"op,omitempty"`
	Values []string `json:"values,omitempty"`
}

// Task is what one task of a job asks for. All tasks of a job are alike.
type Task struct {
	// GPUs is how many GPU devices the task takes (0 for a CPU-only task).
	GPUs int `json:"gpus,omitempty"`
	// GPUMilli is the share taken on each of its GPUs: 1000 for whole
	// GPUs, less for a fraction of one GPU (then GPUs is 1).
	GPUMilli int `json:"gpu_milli,omitempty"`
	// Models, when set, are the GPU models the task accepts.
	Models []string `json:"models,omitempty"`
	// CPUMilli and MemoryMiB are the task's requests.
	CPUMilli  int64 `json:"cpu_milli,omitempty"`
	MemoryMiB int64 `json:"memory_mib,omitempty"`
	// Constraints must all hold on the node's labels.
	Constraints []Constraint `json:"constraints,omitempty"`
	// Residency, when set, lists the regions the task's data may live in.
	Residency []string `json:"residency,omitempty"`
}

// Job is a unit of work submitted by a tenant.
type Job struct {
	// ID is unique among live jobs.
	ID string `json:"id"`
	// Kind is training or inference.
	Kind JobKind `json:"kind"`
	// Tenant owns the job and is charged its quota.
	Tenant string `json:"tenant,omitempty"`
	// Priority orders jobs: higher runs first and may preempt lower.
	Priority int32 `json:"priority,omitempty"`
	// Count is the gang size of a training job or the replicas of a service.
	Count int `json:"count"`
	// Task is what each task asks for.
	Task Task `json:"task"`
	// Checkpointable training loses little when preempted.
	Checkpointable bool `json:"checkpointable,omitempty"`
	// Preemptible jobs may be evicted for higher-priority work.
	Preemptible bool `json:"preemptible,omitempty"`
	// MinReplicas is how far an inference service may be trimmed by preemption.
	MinReplicas int `json:"min_replicas,omitempty"`
	// SpreadLabel is the failure domain replicas spread over (default "zone").
	SpreadLabel string `json:"spread_label,omitempty"`
	// Submitted is the submission time on the driver's clock.
	Submitted int64 `json:"submitted,omitempty"`
	// Walltime is the expected run time in seconds, used by backfill; zero is unknown.
	Walltime int64 `json:"walltime,omitempty"`
}

// CheckBounds checks the counts and amounts of a job against the Max
// limits: the part of Validate that keeps every total inside int64 and
// bounds what may be allocated for the job. Decoders call it before
// anything is sized by those numbers.
func (j *Job) CheckBounds() error {
	t := &j.Task
	switch {
	case j.Count < 1:
		return fmt.Errorf("job %s: field count: want at least 1, got %d", j.ID, j.Count)
	case j.Count > MaxTasksPerJob:
		return fmt.Errorf("job %s: field count: want at most %d, got %d", j.ID, MaxTasksPerJob, j.Count)
	case t.GPUs < 0 || t.GPUs > MaxGPUsPerNode:
		return fmt.Errorf("job %s: field task.gpus: want 0..%d, got %d", j.ID, MaxGPUsPerNode, t.GPUs)
	case t.GPUMilli < 0 || t.GPUMilli > MilliPerGPU:
		return fmt.Errorf("job %s: field task.gpu_milli: want 0..%d, got %d", j.ID, MilliPerGPU, t.GPUMilli)
	case t.CPUMilli < 0 || t.CPUMilli > MaxTaskCPUMilli:
		return fmt.Errorf("job %s: field task.cpu_milli: want 0..%d, got %d", j.ID, int64(MaxTaskCPUMilli), t.CPUMilli)
	case t.MemoryMiB < 0 || t.MemoryMiB > MaxTaskMemoryMiB:
		return fmt.Errorf("job %s: field task.memory_mib: want 0..%d, got %d", j.ID, int64(MaxTaskMemoryMiB), t.MemoryMiB)
	case j.MinReplicas < 0 || j.MinReplicas > j.Count:
		return fmt.Errorf("job %s: field min_replicas: want 0..count, got %d", j.ID, j.MinReplicas)
	}
	return nil
}

// Validate checks a job for values no placement could honour, and its
// bounds (CheckBounds).
func (j *Job) Validate() error {
	t := &j.Task
	if j.ID == "" {
		return fmt.Errorf("job: field id: want a non-empty id")
	}
	if err := j.CheckBounds(); err != nil {
		return err
	}
	switch {
	case t.GPUs > 0 && (t.GPUMilli < 1 || t.GPUMilli > MilliPerGPU):
		return fmt.Errorf("job %s: field task.gpu_milli: want 1..1000 for a GPU task, got %d", j.ID, t.GPUMilli)
	case t.GPUs > 1 && t.GPUMilli != MilliPerGPU:
		return fmt.Errorf("job %s: field task.gpu_milli: a task of %d GPUs takes whole GPUs (1000), got %d", j.ID, t.GPUs, t.GPUMilli)
	case t.GPUs == 0 && t.GPUMilli != 0:
		return fmt.Errorf("job %s: field task.gpu_milli: a CPU-only task takes no GPU share, got %d", j.ID, t.GPUMilli)
	}
	return nil
}

// GPUMilliTotal is the job's whole GPU request in milli-GPU. A valid job's
// total is far inside int64; an invalid one saturates at math.MaxInt64
// rather than wrap, so no quota check can mistake it for a small job.
func (j *Job) GPUMilliTotal() int64 {
	return mulSat(mulSat(int64(max(j.Count, 0)), int64(max(j.Task.GPUs, 0))), int64(max(j.Task.GPUMilli, 0)))
}

// mulSat multiplies two non-negative numbers, saturating at math.MaxInt64.
func mulSat(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// addSat adds two non-negative numbers, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}
