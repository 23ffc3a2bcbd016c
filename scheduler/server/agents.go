package server

import (
	"context"
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
	// Unhealthy are the node's GPUs its agent last reported unhealthy (an
	// XID error that points at the hardware), by index; none when all are
	// well or the agent cannot tell.
	Unhealthy []GPUHealth `json:"unhealthy,omitempty"`
}

// GPUHealth is a GPU an agent reports unhealthy: its index on the node,
// its UUID and the XID errors NVML gave (the latest, at most maxXIDs).
type GPUHealth struct {
	GPU  int      `json:"gpu"`
	UUID string   `json:"uuid,omitempty"`
	XIDs []uint64 `json:"xids,omitempty"`
}

// maxXIDs bounds the XIDs kept per GPU in an agent record (nvml.MaxXIDs).
const maxXIDs = 32

// checkHealth refuses a health report that names no GPU of the node, or
// one twice, and keeps each GPU's latest maxXIDs errors.
func checkHealth(rec AgentRecord, hs []GPUHealth) ([]GPUHealth, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	out := make([]GPUHealth, 0, len(hs))
	seen := map[int]bool{}
	for i, h := range hs {
		if h.GPU < 0 || h.GPU >= len(rec.Devices) {
			return nil, fmt.Errorf("unhealthy[%d].gpu: %d: the node has %d devices", i, h.GPU, len(rec.Devices))
		}
		if seen[h.GPU] {
			return nil, fmt.Errorf("unhealthy[%d].gpu: %d named twice", i, h.GPU)
		}
		seen[h.GPU] = true
		h.UUID = rec.Devices[h.GPU] // the record's, not what the report says
		if len(h.XIDs) > maxXIDs {
			h.XIDs = h.XIDs[len(h.XIDs)-maxXIDs:]
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b GPUHealth) int { return a.GPU - b.GPU })
	return out, nil
}

// sameHealth says whether two health lists say the same.
func sameHealth(a, b []GPUHealth) bool {
	return slices.EqualFunc(a, b, func(x, y GPUHealth) bool {
		return x.GPU == y.GPU && x.UUID == y.UUID && slices.Equal(x.XIDs, y.XIDs)
	})
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

// recordHealth commits the agent record anew when the GPUs its agent
// reports unhealthy changed. A report naming no GPU of the node is
// refused (the record keeps what it had).
func (s *Server) recordHealth(ctx context.Context, rec AgentRecord, hs []GPUHealth) error {
	hs, err := checkHealth(rec, hs)
	if err != nil {
		return fmt.Errorf("%w: node %s: %w", ErrAgentRefused, rec.Node, err)
	}
	if err := s.withholdDevices(ctx, rec.Node, hs); err != nil {
		return err
	}
	if sameHealth(rec.Unhealthy, hs) {
		return nil
	}
	rec.Unhealthy = hs
	entry, err := marshalAgent(rec)
	if err != nil {
		return err
	}
	if _, err := s.apply(ctx, entry); err != nil {
		return fmt.Errorf("record GPU health of %s: %w", rec.Node, err)
	}
	s.log.Warn("GPU health changed", "node", rec.Node, "unhealthy", len(hs))
	return nil
}

// withholdDevices brings the state machine's unhealthy devices of a node
// to those its agent reports (checked), committing a SetDeviceHealth only
// where they differ: once per change, not per heartbeat. An unhealthy GPU
// then takes no new work; what runs there keeps running.
func (s *Server) withholdDevices(ctx context.Context, node string, hs []GPUHealth) error {
	var sick, well []int
	s.fsm.Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		v := m.Cluster()
		id, ok := v.NodeByName(node)
		if !ok {
			return
		}
		have := v.UnhealthyDevices(id)
		for _, h := range hs {
			if !slices.Contains(have, h.GPU) {
				sick = append(sick, h.GPU)
			}
		}
		for _, d := range have {
			if !slices.ContainsFunc(hs, func(h GPUHealth) bool { return h.GPU == d }) {
				well = append(well, d)
			}
		}
	})
	now := s.Now()
	for _, c := range []state.SetDeviceHealth{{Node: node, Devices: sick, At: now}, {Node: node, Devices: well, Healthy: true, At: now}} {
		if len(c.Devices) == 0 {
			continue
		}
		if _, err := s.Apply(ctx, c); err != nil {
			return fmt.Errorf("withhold GPUs of %s: %w", node, err)
		}
		s.log.Warn("GPUs withheld from placement changed", "node", node, "gpus", c.Devices, "healthy", c.Healthy)
	}
	return nil
}
