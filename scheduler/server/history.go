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
// the start of each running job (starts); that book is derived from the
// state alone, and rebuilt from it on a restore.
func (f *FSM) recordEnded(res ApplyResult) {
	if f.starts.m == nil {
		f.starts = startBook{m: runningStarts(f.m)}
	}
	for _, r := range res.Results {
		// A plan evicts before it places: a job requeued and started by
		// one entry keeps its new start.
		f.starts.requeued(r.Requeued)
		if len(r.Started) > 0 {
			// Only a plan starts jobs, all at its At: one look at the
			// machine gives the time for every job it started.
			if info, ok := f.m.Job(r.Started[0]); ok {
				f.starts.started(r.Started, info.Started)
			}
		}
		for _, id := range r.Ended {
			started := f.starts.take(id)
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

// startBook knows when each running job last started. A plan entry that
// starts a thousand jobs only notes the list the state machine returned
// (its Result's, which the FSM owns); the map is brought up to date when a
// job ends and its start is wanted. So the commit of a plan, the path a
// placement's latency is made of, does not pay a map insert per job on
// every server (15% of BenchmarkRaftCommit's CPU when it did): the finish
// pays it instead.
type startBook struct {
	m       map[string]int64
	pending []startEvent // in log order, not yet in m
	ids     int          // the job ids pending holds
}

// startEvent is the jobs one result started (at) or requeued.
type startEvent struct {
	ids     []string
	at      int64
	started bool
}

// foldAt bounds what the book leaves pending (about 16 bytes an id): jobs
// started and requeued over and over with none ending would otherwise
// grow it without end.
const foldAt = 1 << 18

func (b *startBook) started(ids []string, at int64) {
	b.note(startEvent{ids: ids, at: at, started: true})
}

func (b *startBook) requeued(ids []string) {
	if len(ids) > 0 {
		b.note(startEvent{ids: ids})
	}
}

func (b *startBook) note(e startEvent) {
	b.pending = append(b.pending, e)
	if b.ids += len(e.ids); b.ids >= foldAt {
		b.fold()
	}
}

// take returns when a job last started, 0 if it is not known to have,
// and forgets it.
func (b *startBook) take(id string) int64 {
	b.fold()
	at := b.m[id]
	delete(b.m, id)
	return at
}

func (b *startBook) fold() {
	for _, e := range b.pending {
		for _, id := range e.ids {
			if e.started {
				b.m[id] = e.at
			} else {
				delete(b.m, id)
			}
		}
	}
	clear(b.pending) // let the lists go
	b.pending, b.ids = b.pending[:0], 0
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
// full, each new record pushes the oldest out, so that recording costs the
// same at the bound as below it. The records lie in chunks of histChunk
// that are only appended to, never written again: a snapshot takes the
// chunks as they are (view) and encodes them later, off the state
// machine's goroutine, while the ring goes on.
type historyRing struct {
	chunks [][]HistoryRecord // each of capacity histChunk
	start  int               // records of chunks[0] already pushed out
	n      int               // records kept
	limit  int
}

// histChunk is the records a chunk holds: the ring keeps at most one
// chunk's worth more than its limit in memory (about 300 KB).
const histChunk = 1024

func (h *historyRing) add(r HistoryRecord) {
	if h.limit == 0 {
		h.limit = HistoryLimit
	}
	if len(h.chunks) == 0 || len(h.chunks[len(h.chunks)-1]) == histChunk {
		h.chunks = append(h.chunks, make([]HistoryRecord, 0, histChunk))
	}
	last := &h.chunks[len(h.chunks)-1]
	*last = append(*last, r)
	if h.n++; h.n > h.limit {
		h.n--
		if h.start++; h.start == histChunk {
			h.chunks[0] = nil
			h.chunks, h.start = h.chunks[1:], 0
		}
	}
}

// view returns the records kept now, as a view that later adds do not
// change: they write past the end of the view's last chunk, or to new
// chunks.
func (h *historyRing) view() historyView {
	return historyView{chunks: slices.Clone(h.chunks), start: h.start}
}

// ordered returns the records, oldest first, in a new slice.
func (h *historyRing) ordered() []HistoryRecord { return h.view().ordered() }

// historyView is the records of a ring at one moment.
type historyView struct {
	chunks [][]HistoryRecord
	start  int
}

// ordered returns the records, oldest first, in a new slice.
func (v historyView) ordered() []HistoryRecord {
	var out []HistoryRecord
	for i, c := range v.chunks {
		if i == 0 {
			c = c[v.start:]
		}
		out = append(out, c...)
	}
	return out
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
