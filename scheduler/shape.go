package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// Shape is a task's request in the cluster's own ids: what filters and
// scores read, and the key of the per-shape score index.
type Shape struct {
	CPU   int64 // milli-CPU
	Mem   int64 // MiB
	GPUs  int32 // devices
	Milli int32 // milli-GPU on each device
	// Models has bit m set for each accepted model id; zero accepts any.
	Models uint64
	// Sel is the interned selector (label constraints and residency); 0 is none.
	Sel int32
	// Tag is the task's GPU tag: -1 CPU-only, 0 sharing, k for k whole GPUs.
	Tag int8
}

// unknownModel is the Models bit of a model that no node has.
const unknownModel = uint64(1) << 63

// GPUMilli is the shape's whole GPU request in milli-GPU.
func (s *Shape) GPUMilli() int64 { return int64(s.GPUs) * int64(s.Milli) }

// Sharing reports whether the shape takes a fraction of one GPU.
func (s *Shape) Sharing() bool { return s.GPUs == 1 && s.Milli < MilliPerGPU }

// taskTag is the GPU tag of a task: "share" for a fraction of one GPU, else
// the number of whole GPUs; CPU-only tasks have none.
func taskTag(gpus, milli int32) int8 {
	switch {
	case gpus == 0:
		return -1
	case milli < MilliPerGPU:
		return 0
	case gpus >= numTags-1:
		return numTags - 1
	}
	return int8(gpus)
}

// ShapeOf translates a task request into the cluster's shape, interning its
// models and constraints.
func (c *Cluster) ShapeOf(t *Task) (Shape, error) {
	s := Shape{CPU: t.CPUMilli, Mem: t.MemoryMiB, GPUs: int32(t.GPUs), Milli: int32(t.GPUMilli)}
	if s.GPUs == 0 {
		s.Milli = 0
	}
	s.Tag = taskTag(s.GPUs, s.Milli)
	if s.GPUs > 0 && len(t.Models) > 0 {
		s.Models = c.ModelMask(t.Models)
	}
	if len(t.Constraints) > 0 || len(t.Residency) > 0 {
		id, err := c.selectorID(t.Constraints, t.Residency)
		if err != nil {
			return Shape{}, err
		}
		s.Sel = id
	}
	return s, nil
}

// ModelMask is the model bit mask of a list of model names. Names that no
// node carries map to a bit that no node has.
func (c *Cluster) ModelMask(models []string) uint64 {
	var m uint64
	for _, name := range models {
		if name == "" {
			continue
		}
		if id, ok := c.modelByNm[name]; ok {
			m |= 1 << uint(id)
		} else {
			m |= unknownModel
		}
	}
	return m
}

// selector is an interned set of label constraints and residency regions,
// with its verdict for every node (labels do not change after registration).
type selector struct {
	cons      []Constraint
	residency []string
	ok        []bool
}

func (s *selector) match(l map[string]string) bool {
	if len(s.residency) > 0 && !slices.Contains(s.residency, l["region"]) {
		return false
	}
	for _, c := range s.cons {
		v, has := l[c.Key]
		switch c.Op {
		case OpIn:
			if !has || !slices.Contains(c.Values, v) {
				return false
			}
		case OpNotIn:
			if has && slices.Contains(c.Values, v) {
				return false
			}
		case OpExists:
			if !has {
				return false
			}
		}
	}
	return true
}

func (c *Cluster) selectorID(cons []Constraint, residency []string) (int32, error) {
	var b strings.Builder
	for _, k := range cons {
		if k.Key == "" {
			return 0, fmt.Errorf("constraint: field key: want a label key")
		}
		if k.Op > OpExists {
			return 0, fmt.Errorf("constraint %s: field op: unknown operator %d", k.Key, k.Op)
		}
		vals := slices.Clone(k.Values)
		slices.Sort(vals)
		fmt.Fprintf(&b, "%s\x00%d\x00%s\x01", k.Key, k.Op, strings.Join(vals, "\x00"))
	}
	res := slices.Clone(residency)
	slices.Sort(res)
	b.WriteString("\x02" + strings.Join(res, "\x00"))
	key := b.String()
	if id, ok := c.selByKey[key]; ok {
		return id, nil
	}
	s := selector{cons: slices.Clone(cons), residency: res, ok: make([]bool, len(c.nodes))}
	for i := range c.nodes {
		s.ok[i] = s.match(c.labels[i])
	}
	id := int32(len(c.selectors))
	c.selectors = append(c.selectors, s)
	c.selByKey[key] = id
	return id, nil
}

// Fits reports whether a ready node has room for a task of shape s: the
// filter every policy starts with.
func (c *Cluster) Fits(n NodeID, s *Shape) bool {
	r := &c.nodes[n]
	if r.state != NodeReady || r.cpuFree < s.CPU || r.memFree < s.Mem {
		return false
	}
	if s.Sel != 0 && !c.selectors[s.Sel].ok[n] {
		return false
	}
	if s.GPUs == 0 {
		return true
	}
	if r.gpuN == 0 || (s.Models != 0 && s.Models&(1<<uint(r.model)) == 0) {
		return false
	}
	if !s.Sharing() {
		// fullFree counts the devices that serve a whole GPU (wholeDev),
		// kept current by apply and release.
		return r.fullFree >= s.GPUs
	}
	free, _ := c.devs(n)
	return shareFits(free, s)
}

// Reason says why a node cannot take a task; "does not fit" is an answer,
// not an error.
type Reason uint8

// The reasons a node is out.
const (
	Fit Reason = iota
	ReasonNotReady
	ReasonConstraint
	ReasonCPU
	ReasonMemory
	ReasonNoGPU
	ReasonModel
	ReasonGPUs
	ReasonPolicy
	ReasonUnhealthyGPU
	numReasons
)

var reasonText = [...]string{
	"fits", "node not ready", "labels or residency do not match", "not enough free CPU",
	"not enough free memory", "node has no GPU", "GPU model not accepted",
	"not enough free GPUs", "excluded by the policy", "unhealthy GPU",
}

// String says the reason in words.
func (r Reason) String() string { return reasonText[r] }

// Why returns the first reason a node cannot take a task of shape s.
func (c *Cluster) Why(n NodeID, s *Shape) Reason {
	r := &c.nodes[n]
	switch {
	case r.state != NodeReady:
		return ReasonNotReady
	case s.Sel != 0 && !c.selectors[s.Sel].ok[n]:
		return ReasonConstraint
	case r.cpuFree < s.CPU:
		return ReasonCPU
	case r.memFree < s.Mem:
		return ReasonMemory
	case s.GPUs > 0 && r.gpuN == 0:
		return ReasonNoGPU
	case s.GPUs > 0 && s.Models != 0 && s.Models&(1<<uint(r.model)) == 0:
		return ReasonModel
	case !c.Fits(n, s):
		if c.fitsIfHealthy(n, s) {
			return ReasonUnhealthyGPU
		}
		return ReasonGPUs
	}
	return Fit
}

// fitsIfHealthy reports whether a task's GPUs would fit node n were its
// unhealthy devices healthy again: then they are why it does not.
func (c *Cluster) fitsIfHealthy(n NodeID, s *Shape) bool {
	r := &c.nodes[n]
	if r.sick == 0 {
		return false
	}
	var free [MaxGPUsPerNode]int32
	for i := range r.gpuN {
		free[i] = c.gpuFree[r.gpuOff+i] + c.gpuHeld[r.gpuOff+i]
	}
	return fitDevices(free[:r.gpuN], c.gpuExcl[r.gpuOff:r.gpuOff+r.gpuN], s, 1) >= 1
}
