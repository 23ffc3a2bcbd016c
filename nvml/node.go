package nvml

import (
	"fmt"

	"petite/scheduler"
	"petite/scheduler/state"
)

// NodeSpec is what a node's registration takes beyond its GPUs: NVML
// knows nothing of the node's name, pool, CPU or memory.
type NodeSpec struct {
	// Name is the node's name in the cluster; Pool and Rack place it.
	Name string
	Pool string
	Rack string
	// CPUMilli and MemoryMiB are the node's allocatable CPU and memory.
	CPUMilli  int64
	MemoryMiB int64
	// Labels are the node's own labels (zone, compliance tags).
	Labels map[string]string
}

// Registration is a node as the scheduler models it, with the device ids
// the node's agent hands to a task's processes.
type Registration struct {
	// Node is the scheduler's node: one device per whole GPU, one per MIG
	// instance of a GPU in MIG mode.
	Node scheduler.Node `json:"node"`
	// Devices[i] is the UUID of Node.GPUs[i]: "GPU-..." for a whole GPU,
	// "MIG-..." for a MIG instance; what CUDA_VISIBLE_DEVICES takes.
	Devices []string `json:"devices"`
}

// Command is the state machine's command that registers the node.
func (r Registration) Command() state.RegisterNode {
	return state.RegisterNode{Node: r.Node}
}

// Register turns the inventory into the scheduler's node. A GPU not in MIG
// mode is one device; a GPU in MIG mode is one exclusive device per MIG
// instance, with the instance's profile, memory and share of the GPU (its
// compute slices of seven), so that one task takes a whole instance. A GPU
// in MIG mode without instances has nothing a task could use and adds no
// device, and neither does an unhealthy GPU. Every device keeps its GPU's
// NVLink island. The scheduler puts one GPU model on a node, so an
// inventory that mixes models is an error.
func (inv *Inventory) Register(spec NodeSpec) (Registration, error) {
	n := scheduler.Node{
		Name: spec.Name, Pool: spec.Pool, Rack: spec.Rack,
		CPUMilli: spec.CPUMilli, MemoryMiB: spec.MemoryMiB, Labels: spec.Labels,
	}
	var devices []string
	for i := range inv.GPUs {
		g := &inv.GPUs[i]
		if g.Model != inv.GPUs[0].Model {
			return Registration{}, fmt.Errorf("node %s: GPU %d is a %s, GPU %d a %s; a node has one GPU model",
				spec.Name, inv.GPUs[0].Index, inv.GPUs[0].Model, g.Index, g.Model)
		}
		if g.Health.Status == Unhealthy {
			continue
		}
		if !g.MIG.Enabled {
			n.GPUs = append(n.GPUs, scheduler.GPU{Model: g.Model, MemoryMiB: g.MemoryMiB, Island: g.Island})
			devices = append(devices, g.UUID)
			continue
		}
		for _, mi := range g.Instances {
			if mi.Slices < 1 || mi.Slices > 7 {
				return Registration{}, fmt.Errorf("node %s: GPU %d: MIG instance %s: %d compute slices, want 1..7",
					spec.Name, g.Index, mi.UUID, mi.Slices)
			}
			n.GPUs = append(n.GPUs, scheduler.GPU{
				Model: g.Model, MemoryMiB: mi.MemoryMiB, Island: g.Island, MIG: mi.Profile,
				MilliCap: int32(mi.Slices * scheduler.MilliPerGPU / 7),
			})
			devices = append(devices, mi.UUID)
		}
	}
	if len(n.GPUs) > scheduler.MaxGPUsPerNode {
		return Registration{}, fmt.Errorf("node %s: %d GPU devices, the scheduler takes at most %d per node",
			spec.Name, len(n.GPUs), scheduler.MaxGPUsPerNode)
	}
	return Registration{Node: n, Devices: devices}, nil
}
