package state

import "petite/scheduler"

// Command is one change to the state machine. The set is closed: only the
// types of this package implement it, and each has a stable wire name (see
// Encode). Every command that records a time carries it (At, on the
// driver's clock); the machine reads none.
type Command interface {
	// Type is the command's wire name, e.g. "submit".
	Type() string
	command()
}

// RegisterPool adds a pool to the fleet.
type RegisterPool struct {
	Pool scheduler.Pool `json:"pool"`
}

// RegisterNode adds a node to an existing pool (or, in a fleet without
// pools, to an implicit onprem pool "default").
type RegisterNode struct {
	Node scheduler.Node `json:"node"`
}

// SetNodeState changes a node's health. A node going down or retired loses
// its tasks: a training gang with a task there is released everywhere and
// requeued whole; an inference replica there is dropped and its service
// runs under-replicated, its missing replicas waiting to be placed again.
// A draining node keeps its work and takes no new work.
type SetNodeState struct {
	Node  string              `json:"node"`
	State scheduler.NodeState `json:"state"`
	At    int64               `json:"at"`
}

// SetDeviceHealth marks devices of a node (indexes into its GPUs)
// unhealthy, or healthy again. An unhealthy device takes no new work; the
// tasks running on it keep running (draining moves them), and once healthy
// again it offers its capacity less what runs there.
type SetDeviceHealth struct {
	Node    string `json:"node"`
	Devices []int  `json:"devices"`
	Healthy bool   `json:"healthy,omitempty"`
	At      int64  `json:"at"`
}

// SetRanks sets the nodes' tie-break ranks: Nodes lists every registered
// node once, the node of rank 0 first. Drivers draw the order from their
// seed.
type SetRanks struct {
	Nodes []string `json:"nodes"`
}

// SetTenant registers a tenant or replaces its settings.
type SetTenant struct {
	Tenant scheduler.Tenant `json:"tenant"`
}

// Submit adds a job to the pending queue. The job's Submitted time is set
// to At.
type Submit struct {
	Job scheduler.Job `json:"job"`
	At  int64         `json:"at"`
}

// Cancel ends a pending or running job, releasing what it holds. Cancelling
// a job that has already ended changes nothing.
type Cancel struct {
	Job string `json:"job"`
	At  int64  `json:"at"`
	// Hint is Machine.Hint of the job, or 0: it only speeds the look-up
	// up, is checked against Job, and is never encoded.
	Hint int32 `json:"-"`
}

// ApplyPlan applies the evictions and then the placements of a scheduling
// pass, all or nothing. Every placement is checked again against the state
// at hand: a node that is not ready, or a device, CPU or memory that the
// placement would oversubscribe, rejects the whole plan. Applying a plan a
// second time changes nothing: tasks already placed exactly so are skipped,
// and so are evictions of tasks already gone.
type ApplyPlan struct {
	Evict []scheduler.Eviction     `json:"evict,omitempty"`
	Place []scheduler.JobPlacement `json:"place,omitempty"`
	At    int64                    `json:"at"`
}

// PlanCommand is the command that applies a plan at time at. The plan's
// Unplaced list is advice for users, not state, and is left out.
func PlanCommand(p scheduler.Plan, at int64) ApplyPlan {
	return ApplyPlan{Evict: p.Evict, Place: p.Place, At: at}
}

// Finish records that a running job, or some of its tasks, ended. Without
// Tasks the whole job ends. A training task that ends well is done, and
// the gang ends when all its tasks are; a training task that fails fails
// the whole gang. An inference replica that ends is dropped and waits to be
// placed again (a service ends only as a whole). Finishing a job that has
// already ended, or tasks no longer running, changes nothing.
type Finish struct {
	Job    string `json:"job"`
	Tasks  []int  `json:"tasks,omitempty"`
	Failed bool   `json:"failed,omitempty"`
	At     int64  `json:"at"`
	// Hint is as Cancel's: never encoded.
	Hint int32 `json:"-"`
}

// Preempt evicts a running job outside a plan: a training gang whole
// (Tasks empty) and requeued; inference replicas one by one (Tasks, or all
// of them when empty). For names the job the room is made for, for the
// record. Evicting tasks already gone changes nothing.
type Preempt struct {
	Job   string `json:"job"`
	Tasks []int  `json:"tasks,omitempty"`
	For   string `json:"for,omitempty"`
	At    int64  `json:"at"`
	// Hint is as Cancel's: never encoded.
	Hint int32 `json:"-"`
}

// Prune forgets the jobs that ended before a time, so that the job table
// stays bounded on a long-lived server; their ids may then be used again.
type Prune struct {
	Before int64 `json:"before"`
}

// The wire names of the commands.
const (
	TypeRegisterPool = "register_pool"
	TypeRegisterNode = "register_node"
	TypeSetNodeState = "set_node_state"
	TypeSetRanks     = "set_ranks"
	TypeSetTenant    = "set_tenant"
	TypeSubmit       = "submit"
	TypeCancel       = "cancel"
	TypeApplyPlan    = "apply_plan"
	TypeFinish       = "finish"
	TypePreempt      = "preempt"
	TypePrune        = "prune"
	// TypeSetDeviceHealth is SetDeviceHealth's wire name.
	TypeSetDeviceHealth = "set_device_health"
)

// Type returns "register_pool".
func (RegisterPool) Type() string { return TypeRegisterPool }

// Type returns "register_node".
func (RegisterNode) Type() string { return TypeRegisterNode }

// Type returns "set_node_state".
func (SetNodeState) Type() string { return TypeSetNodeState }

// Type returns "set_device_health".
func (SetDeviceHealth) Type() string { return TypeSetDeviceHealth }

// Type returns "set_ranks".
func (SetRanks) Type() string { return TypeSetRanks }

// Type returns "set_tenant".
func (SetTenant) Type() string { return TypeSetTenant }

// Type returns "submit".
func (Submit) Type() string { return TypeSubmit }

// Type returns "cancel".
func (Cancel) Type() string { return TypeCancel }

// Type returns "apply_plan".
func (ApplyPlan) Type() string { return TypeApplyPlan }

// Type returns "finish".
func (Finish) Type() string { return TypeFinish }

// Type returns "preempt".
func (Preempt) Type() string { return TypePreempt }

// Type returns "prune".
func (Prune) Type() string { return TypePrune }

func (RegisterPool) command()    {}
func (RegisterNode) command()    {}
func (SetNodeState) command()    {}
func (SetRanks) command()        {}
func (SetDeviceHealth) command() {}
func (SetTenant) command()       {}
func (Submit) command()          {}
func (Cancel) command()          {}
func (ApplyPlan) command()       {}
func (Finish) command()          {}
func (Preempt) command()         {}
func (Prune) command()           {}

// newCommand returns a pointer to a zero command of a wire type, for
// decoding, or nil for an unknown type.
func newCommand(typ string) any {
	switch typ {
	case TypeRegisterPool:
		return &RegisterPool{}
	case TypeRegisterNode:
		return &RegisterNode{}
	case TypeSetNodeState:
		return &SetNodeState{}
	case TypeSetRanks:
		return &SetRanks{}
	case TypeSetTenant:
		return &SetTenant{}
	case TypeSubmit:
		return &Submit{}
	case TypeCancel:
		return &Cancel{}
	case TypeApplyPlan:
		return &ApplyPlan{}
	case TypeFinish:
		return &Finish{}
	case TypePreempt:
		return &Preempt{}
	case TypePrune:
		return &Prune{}
	case TypeSetDeviceHealth:
		return &SetDeviceHealth{}
	}
	return nil
}

// commandTypes lists the wire names in a stable order.
var commandTypes = []string{
	TypeRegisterPool, TypeRegisterNode, TypeSetNodeState, TypeSetRanks, TypeSetTenant,
	TypeSubmit, TypeCancel, TypeApplyPlan, TypeFinish, TypePreempt, TypePrune, TypeSetDeviceHealth,
}
