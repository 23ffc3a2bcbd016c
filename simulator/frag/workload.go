package frag

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"petite/scheduler"
	"petite/traces"
	"petite/traces/samples"
)

// defaultCPUMilli is the CPU request the artifact's resource model gives a
// pod that asks for none (FRAG-METHOD §1).
const defaultCPUMilli = 100

// Pod is one pod of a workload, normalised as FRAG-METHOD §1 reads a row.
type Pod struct {
	// CPU is the request in milli-CPU (0 in the trace reads as 100).
	CPU int64
	// Mem is the memory request in MiB.
	Mem int64
	// GPUs is the number of GPUs (0 for a CPU-only pod).
	GPUs int32
	// Milli is the share taken on each GPU, 1..1000; 0 for a CPU-only pod.
	Milli int32
	// Models is the cleaned model list ("A|B", empty pieces dropped); empty
	// accepts any GPU node, and a CPU-only pod has none.
	Models string
}

// GPUMilli is the pod's total GPU request in milli-GPU.
func (p *Pod) GPUMilli() int64 { return int64(p.GPUs) * int64(p.Milli) }

// Task is the pod as the scheduler core's task.
func (p *Pod) Task() scheduler.Task {
	t := scheduler.Task{GPUs: int(p.GPUs), GPUMilli: int(p.Milli), CPUMilli: p.CPU, MemoryMiB: p.Mem}
	if p.Models != "" {
		t.Models = strings.Split(p.Models, "|")
	}
	return t
}

// Workload is one openb pod list, in file order, with the target workload
// (FRAG-METHOD §6) that fragmentation is measured against.
type Workload struct {
	// Name is the workload's name, e.g. "default" for openb_pod_list_default.csv.
	Name string
	// Pods are the normalised rows in file order.
	Pods []Pod
	// Target is the §6 target workload built from Pods.
	Target []scheduler.TargetType
}

// cleanModels applies §1 to a gpu_spec value: pieces separated by "|",
// empty pieces dropped, joined again by "|".
func cleanModels(spec string) string {
	if !strings.Contains(spec, "|") {
		return spec
	}
	var parts []string
	for m := range strings.SplitSeq(spec, "|") {
		if m != "" {
			parts = append(parts, m)
		}
	}
	return strings.Join(parts, "|")
}

// NewWorkload normalises the rows of an openb pod list (FRAG-METHOD §1) and
// builds its target workload (§6). file names the source in errors, at
// each row's Line; a row without one (built by hand) is taken to sit one
// per line after a header, row i on line i+2.
func NewWorkload(name, file string, rows []traces.OpenbPod) (*Workload, error) {
	w := &Workload{Name: name, Pods: make([]Pod, len(rows))}
	for i, r := range rows {
		p := Pod{CPU: r.CPUMilli, Mem: r.MemoryMiB}
		where := func(field string) string {
			return fmt.Sprintf("%s:%d: pod %s: field %s", file, rowLine(r.Line, i), r.Name, field)
		}
		switch {
		case r.CPUMilli < 0:
			return nil, fmt.Errorf("%s: want >= 0, got %d", where("cpu_milli"), r.CPUMilli)
		case r.MemoryMiB < 0:
			return nil, fmt.Errorf("%s: want >= 0, got %d", where("memory_mib"), r.MemoryMiB)
		case r.NumGPU < 0 || r.NumGPU > scheduler.MaxGPUsPerNode:
			return nil, fmt.Errorf("%s: want 0..%d, got %d", where("num_gpu"), scheduler.MaxGPUsPerNode, r.NumGPU)
		}
		if p.CPU == 0 {
			p.CPU = defaultCPUMilli
		}
		// A pod with GPUs but no positive share counts as CPU-only (§1).
		if r.NumGPU > 0 && r.GPUMilli > 0 {
			p.GPUs = int32(r.NumGPU)
			p.Milli = int32(min(r.GPUMilli, scheduler.MilliPerGPU))
			if p.GPUs > 1 && p.Milli != scheduler.MilliPerGPU {
				return nil, fmt.Errorf("%s: a pod of %d GPUs takes whole GPUs (1000), got %d", where("gpu_milli"), p.GPUs, r.GPUMilli)
			}
			p.Models = cleanModels(r.GPUSpec)
		}
		w.Pods[i] = p
	}
	w.Target = TargetOf(w.Pods)
	return w, nil
}

// TargetOf builds the target workload of FRAG-METHOD §6 from the original
// pods: one type per (CPU, per-GPU milli, GPU count, model list), CPU-only
// pods included, the most frequent types kept up to 95% of the pods.
func TargetOf(pods []Pod) []scheduler.TargetType {
	type key struct {
		cpu         int64
		milli, gpus int32
		models      string
	}
	counts := map[key]int{}
	var order []key
	for i := range pods {
		p := &pods[i]
		k := key{p.CPU, p.Milli, p.GPUs, p.Models}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	types := make([]scheduler.TargetType, len(order))
	for i, k := range order {
		types[i] = scheduler.TargetType{CPU: k.cpu, Milli: k.milli, GPUs: k.gpus, Models: k.models, Count: counts[k]}
	}
	return scheduler.TargetFromCounts(types)
}

// WorkloadName is the workload name of an openb pod list file:
// "openb_pod_list_default.csv" is "default".
func WorkloadName(path string) string {
	base := filepath.Base(path)
	base = strings.TrimSuffix(base, ".gz")
	base = strings.TrimSuffix(base, ".csv")
	return strings.TrimPrefix(base, "openb_pod_list_")
}

// LoadWorkload reads an openb pod list file and normalises it.
func LoadWorkload(path string) (*Workload, error) {
	rows, err := traces.LoadOpenbPods(path)
	if err != nil {
		return nil, fmt.Errorf("pods %s: %w", path, err)
	}
	return NewWorkload(WorkloadName(path), path, rows)
}

// Fleet is the cluster of the experiment: the nodes of an openb node list.
type Fleet struct {
	// Nodes are the scheduler nodes, in file order.
	Nodes []scheduler.Node
	// GPUs is the number of GPUs of the fleet.
	GPUs int
}

// NewFleet builds the fleet from the rows of an openb node list (FRAG-METHOD
// §1): CPU, memory, and that many GPUs of the node's model, each with 1000
// milli free. Every row given is a node; the method's fleet is the GPU node
// list, and a CPU-only row joins as a node without GPUs. Errors name file
// and the row's Line, as NewWorkload's do.
func NewFleet(file string, rows []traces.OpenbNode) (*Fleet, error) {
	f := &Fleet{Nodes: make([]scheduler.Node, 0, len(rows))}
	seen := make(map[string]int, len(rows))
	for i, r := range rows {
		where := func(field string) string {
			return fmt.Sprintf("%s:%d: node %s: field %s", file, rowLine(r.Line, i), r.Name, field)
		}
		switch {
		case r.CPUMilli < 0:
			return nil, fmt.Errorf("%s: want >= 0, got %d", where("cpu_milli"), r.CPUMilli)
		case r.MemoryMiB < 0:
			return nil, fmt.Errorf("%s: want >= 0, got %d", where("memory_mib"), r.MemoryMiB)
		case r.GPU < 0 || r.GPU > scheduler.MaxGPUsPerNode:
			return nil, fmt.Errorf("%s: want 0..%d, got %d", where("gpu"), scheduler.MaxGPUsPerNode, r.GPU)
		case r.GPU > 0 && r.Model == "":
			return nil, fmt.Errorf("%s: want a GPU model on a node with GPUs", where("model"))
		}
		if j, dup := seen[r.Name]; dup {
			return nil, fmt.Errorf("%s: repeats the node of line %d", where("sn"), rowLine(rows[j].Line, j))
		}
		seen[r.Name] = i
		n := scheduler.Node{Name: r.Name, CPUMilli: r.CPUMilli, MemoryMiB: r.MemoryMiB}
		if r.GPU > 0 {
			n.GPUs = make([]scheduler.GPU, r.GPU)
			for g := range n.GPUs {
				n.GPUs[g] = scheduler.GPU{Model: r.Model, MilliCap: scheduler.MilliPerGPU}
			}
		}
		f.Nodes = append(f.Nodes, n)
		f.GPUs += r.GPU
	}
	if f.GPUs == 0 {
		return nil, fmt.Errorf("nodes %s: no node has a GPU", file)
	}
	return f, nil
}

// rowLine is the file line of row i: the line its reader recorded, else
// (a row built by hand) line i+2, one row per line after a header.
func rowLine(line, i int) int {
	if line > 0 {
		return line
	}
	return i + 2
}

// LoadFleet reads an openb node list file.
func LoadFleet(path string) (*Fleet, error) {
	rows, err := traces.LoadOpenbNodes(path)
	if err != nil {
		return nil, fmt.Errorf("nodes %s: %w", path, err)
	}
	return NewFleet(path, rows)
}

// DefaultWorkload is the embedded openb default pod list.
func DefaultWorkload() (*Workload, error) {
	name := "embedded " + samples.OpenbDefaultPodsFile
	rows, err := traces.ReadOpenbPods(bytes.NewReader(samples.OpenbDefaultPods()), name)
	if err != nil {
		return nil, err
	}
	return NewWorkload(WorkloadName(samples.OpenbDefaultPodsFile), name, rows)
}

// DefaultFleet is the embedded openb GPU node list, the method's fleet.
func DefaultFleet() (*Fleet, error) {
	name := "embedded " + samples.OpenbGPUNodesFile
	rows, err := traces.ReadOpenbNodes(bytes.NewReader(samples.OpenbGPUNodes()), name)
	if err != nil {
		return nil, err
	}
	return NewFleet(name, rows)
}
