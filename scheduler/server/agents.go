package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"petite/scheduler"
	"petite/scheduler/state"
)

// entryAgent: an agent's record (AgentRecord, JSON): the node it runs on,
// where its HTTP API answers (task logs), the device UUIDs of the node.
// The record is replicated so that every leader knows which nodes have an
// agent whose heartbeats it must watch.
const entryAgent byte = 'g'

// AgentRecord is what the daemon keeps about a node's agent beside the
// state machine.
type AgentRecord struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Addr is the agent's HTTP base URL (logs are read there); empty when
	// the agent serves none.
	Addr string `json:"addr,omitempty"`
	// Devices[i] is the UUID of the node's device i ("GPU-..." or
	// "MIG-..."): what a task's CUDA_VISIBLE_DEVICES is set to.
	Devices []string `json:"devices,omitempty"`
}

// applyAgent applies an agent record entry.
func (f *FSM) applyAgent(body []byte) (ApplyResult, bool) {
	var rec AgentRecord
	if err := unmarshalStrict(body, &rec); err != nil {
		return ApplyResult{Err: fmt.Errorf("decode agent entry: %w", err)}, false
	}
	if rec.Node == "" {
		return ApplyResult{Err: fmt.Errorf("decode agent entry: field node: empty")}, false
	}
	if f.agents == nil {
		f.agents = map[string]AgentRecord{}
	}
	f.agents[rec.Node] = rec
	return ApplyResult{}, false
}

// Agent returns the record of the agent of a node, if one registered.
func (f *FSM) Agent(node string) (AgentRecord, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.agents[node]
	return rec, ok
}

// Agents returns the nodes that have an agent, sorted.
func (f *FSM) Agents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.agents))
}

// noteRuns records, in the jobs' records, the node each task of a plan is
// placed on: where its logs are once the task has ended and the state
// machine has let go of its placement.
func (f *FSM) noteRuns(cmd state.Command) {
	p, ok := cmd.(state.ApplyPlan)
	if !ok {
		return
	}
	for _, jp := range p.Place {
		rec, ok := f.jobs[jp.Job]
		if !ok {
			continue
		}
		grown := false
		for _, tp := range jp.Tasks {
			if tp.Task < 0 {
				continue
			}
			if tp.Task >= len(rec.Ran) || tp.Task >= len(rec.RanAt) {
				// Once per job, mostly: a task placed again is written in
				// place (the record's slices are the FSM's own).
				rec.Ran = append(rec.Ran, make([]string, max(tp.Task+1-len(rec.Ran), 0))...)
				rec.RanAt = append(rec.RanAt, make([]uint64, max(tp.Task+1-len(rec.RanAt), 0))...)
				grown = true
			}
			rec.Ran[tp.Task], rec.RanAt[tp.Task] = tp.Node, f.index
		}
		if grown {
			f.jobs[jp.Job] = rec
		}
	}
}

// placedAt is the raft index of the plan that last placed a task, 0 when
// unknown (a job without the daemon's record).
func (r JobRecord) placedAt(task int) uint64 {
	if task < 0 || task >= len(r.RanAt) {
		return 0
	}
	return r.RanAt[task]
}

// RanOn returns the node a job's task was last placed on.
func (f *FSM) RanOn(job string, task int) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ran := f.jobs[job].Ran
	if task < 0 || task >= len(ran) || ran[task] == "" {
		return "", false
	}
	return ran[task], true
}

// sameDevices says why a registered node and an agent's inventory differ,
// or "" when they agree: the same devices in the same order (model, MIG
// profile, share), so that device i of the state machine is the agent's
// device i.
func sameDevices(have, got *scheduler.Node) string {
	if have.Pool != got.Pool {
		return fmt.Sprintf("node %s is in pool %s, the agent says %s", have.Name, have.Pool, got.Pool)
	}
	if len(have.GPUs) != len(got.GPUs) {
		return fmt.Sprintf("node %s is registered with %d GPU devices, the agent found %d", have.Name, len(have.GPUs), len(got.GPUs))
	}
	for i := range have.GPUs {
		h, g := &have.GPUs[i], &got.GPUs[i]
		if h.Model != g.Model || h.MIG != g.MIG {
			return fmt.Sprintf("node %s: device %d is registered as %s%s, the agent found %s%s", have.Name, i, h.Model, migSuffix(h.MIG), g.Model, migSuffix(g.MIG))
		}
	}
	return ""
}

func migSuffix(p string) string {
	if p == "" {
		return ""
	}
	return " " + p
}

// marshalAgent returns the log entry of an agent record.
func marshalAgent(rec AgentRecord) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode agent entry: %w", err)
	}
	return append([]byte{entryAgent}, b...), nil
}
