package replay

import (
	"strings"

	"petite/scheduler"
)

// stranding measures the GPUs stranded on each pool at the series' steps:
// FRAG-METHOD §5's fragmentation of every node that takes work, against
// the workload's own task mix (§6), summed per pool. The core's FGD
// measure does the arithmetic and caches each node's value until the node
// changes, so a sample costs a pass over the node ids plus the nodes that
// changed since the last one.
type stranding struct {
	f     *scheduler.FGD
	pool  []int32 // pool index of each node id, in fleet order
	ready []bool  // whether each node takes work
}

// newStranding builds the target workload from the jobs as the state
// machine gets them (under bursting: whole GPUs, no CPU), one pod per task
// of each job.
func newStranding(e *engine) *stranding {
	type key struct {
		cpu         int64
		milli, gpus int32
		models      string
	}
	counts := map[key]int{}
	var order []key
	for _, i := range e.order {
		src := &e.cfg.Jobs[i]
		j := e.makeJob(src, "", src.Submit, nil, false)
		t := &j.Task
		kk := key{cpu: t.CPUMilli}
		if t.GPUs > 0 {
			kk.milli, kk.gpus = int32(min(t.GPUMilli, scheduler.MilliPerGPU)), int32(t.GPUs)
			if kk.milli == 0 {
				kk.milli = scheduler.MilliPerGPU
			}
			kk.models = strings.Join(t.Models, "|")
		}
		if counts[kk] == 0 {
			order = append(order, kk)
		}
		counts[kk] += max(j.Count, 1)
	}
	types := make([]scheduler.TargetType, len(order))
	for i, k := range order {
		types[i] = scheduler.TargetType{CPU: k.cpu, Milli: k.milli, GPUs: k.gpus, Models: k.models, Count: counts[k]}
	}
	return &stranding{f: &scheduler.FGD{Target: scheduler.TargetFromCounts(types)}}
}

// setState notes a node's new state, if the node is known yet.
func (s *stranding) setState(v scheduler.View, name string, st scheduler.NodeState) {
	if id, ok := v.NodeByName(name); ok && int(id) < len(s.ready) {
		s.ready[id] = st == scheduler.NodeReady
	}
}

// measure writes the stranded GPUs of each pool into out (fleet order).
func (s *stranding) measure(e *engine, out []float64) {
	v := e.m.Cluster()
	n := v.NumNodes()
	for id := len(s.pool); id < n; id++ { // nodes registered since the last sample
		nid := scheduler.NodeID(id)
		s.pool = append(s.pool, int32(e.poolIdx[v.PoolOf(nid).Name]))
		s.ready = append(s.ready, v.Node(nid).State == scheduler.NodeReady)
	}
	for i := range out {
		out[i] = 0
	}
	for id := range n {
		if s.ready[id] {
			out[s.pool[id]] += v.Frag(s.f, scheduler.NodeID(id))
		}
	}
	for i := range out {
		out[i] = round6(out[i] / scheduler.MilliPerGPU)
	}
}
