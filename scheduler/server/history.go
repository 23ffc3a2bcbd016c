package server

import (
	"slices"

	"petite/scheduler"
	"petite/scheduler/state"
)

// HistoryLimit bounds the history the FSM keeps: the last jobs to end, at
// most this many (about 300 bytes each in memory and in a snapshot: 30 MB
// at the bound). It is a constant, not a setting: the history is part of
// the replicated state, and every server must drop the same records to
// stay alike.
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
		if len(r.Started) > 0 {
			// Only a plan starts jobs, all at its At: one look at the
			// machine gives the time for every job it started.
			if info, ok := f.m.Job(r.Started[0]); ok {
				for _, id := range r.Started {
					f.starts[id] = info.Started
				}
			}
		}
		for _, id := range r.Ended {
			started := f.starts[id]
			delete(f.starts, id)
			info, ok := f.m.Job(id)
			if !ok || !info.Status.Ended() {
				continue
			}
			f.history.add(HistoryRecord{
				Job: info.Job, Status: info.Status, Started: started, Ended: info.Ended, Requeues: info.Requeues,
			})
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

// historyRing keeps the last limit records (HistoryLimit when zero): once
// full, each new record takes the place of the oldest, so that recording
// costs the same at the bound as below it.
type historyRing struct {
	recs  []HistoryRecord
	next  int // the oldest record once full: where the next one goes
	limit int
}

func (h *historyRing) add(r HistoryRecord) {
	if h.limit == 0 {
		h.limit = HistoryLimit
	}
	if len(h.recs) < h.limit {
		h.recs = append(h.recs, r)
		return
	}
	h.recs[h.next] = r
	h.next = (h.next + 1) % h.limit
}

// ordered returns the records, oldest first, in a new slice.
func (h *historyRing) ordered() []HistoryRecord {
	if len(h.recs) == 0 {
		return nil
	}
	return append(slices.Clone(h.recs[h.next:]), h.recs[:h.next]...)
}

// newHistory is a ring holding the last HistoryLimit of recs (oldest
// first), as a snapshot carries them.
func newHistory(recs []HistoryRecord) historyRing {
	var h historyRing
	for _, r := range recs[max(len(recs)-HistoryLimit, 0):] {
		h.add(r)
	}
	return h
}

// History runs fn with the FSM locked: the history of ended jobs (oldest
// end first) and the state machine, whose live jobs are not in it yet. fn
// must not keep what it is given past its return.
func (f *FSM) History(fn func(history []HistoryRecord, m *state.Machine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.history.ordered(), f.m)
}
