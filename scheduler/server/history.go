package server

import (
	"petite/scheduler"
	"petite/scheduler/state"
)

// HistoryLimit bounds the history the FSM keeps: the last jobs to end, at
// most this many (about 200 bytes each, 20 MB at the bound). It is a
// constant, not a setting: the history is part of the replicated state,
// and every server must drop the same records to stay alike.
const HistoryLimit = 100_000

// HistoryRecord is a job that ended, as the daemon's history keeps it:
// what was asked, when it ran and how it ended. The state machine forgets
// ended jobs when pruned; the history keeps them, so `petite trace export`
// can hand the cluster's past to the simulator.
type HistoryRecord struct {
	// Job is the job as submitted (its Submitted time set).
	Job scheduler.Job `json:"job"`
	// Status is how it ended: succeeded, failed or cancelled.
	Status state.JobStatus `json:"status"`
	// Started is when it last started running (0 if it never ran);
	// Ended is when it reached its final status.
	Started int64 `json:"started,omitempty"`
	Ended   int64 `json:"ended"`
	// Requeues counts its returns to the queue (preempted, node lost).
	Requeues int `json:"requeues,omitempty"`
}

// recordEnded appends to the history the jobs an entry ended. It runs
// under the FSM's lock, in log order, on every server alike: the history
// is a function of the log, as the state is.
//
// The machine forgets when a job started once it ends, so the FSM notes
// the start of each running job (starts); that map is derived from the
// state alone, and rebuilt from it on a restore.
func (f *FSM) recordEnded(res ApplyResult) {
	if f.starts == nil {
		f.starts = runningStarts(f.m)
	}
	for _, r := range res.Results {
		// A plan evicts before it places: a job requeued and started by
		// one entry (moved off a draining node) keeps its new start.
		for _, id := range r.Requeued {
			delete(f.starts, id)
		}
		for _, id := range r.Started {
			if info, ok := f.m.Job(id); ok {
				f.starts[id] = info.Started
			}
		}
		for _, id := range r.Ended {
			started := f.starts[id]
			delete(f.starts, id)
			info, ok := f.m.Job(id)
			if !ok || !info.Status.Ended() {
				continue
			}
			f.history = appendHistory(f.history, HistoryRecord{
				Job: info.Job, Status: info.Status, Started: started, Ended: info.Ended, Requeues: info.Requeues,
			}, HistoryLimit)
		}
	}
}

// runningStarts maps each running job to when it last started.
func runningStarts(m *state.Machine) map[string]int64 {
	out := map[string]int64{}
	for _, rj := range m.Running() {
		out[rj.Job.ID] = rj.Started
	}
	return out
}

// appendHistory appends rec to h, first dropping the oldest tenth of limit
// when h is full, so that the copy is paid once per limit/10 ends rather
// than on each; h never holds more than limit records.
func appendHistory(h []HistoryRecord, rec HistoryRecord, limit int) []HistoryRecord {
	if len(h) >= limit {
		h = append(h[:0], h[len(h)-limit+max(limit/10, 1):]...)
	}
	return append(h, rec)
}

// History runs fn with the FSM locked: the history of ended jobs (oldest
// end first) and the state machine, whose live jobs are not in it yet. fn
// must not keep what it is given past its return.
func (f *FSM) History(fn func(history []HistoryRecord, m *state.Machine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.history, f.m)
}
