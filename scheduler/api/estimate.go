package api

// Start estimates of queued jobs: the live queue replayed forward by the
// simulator's engine (simulator/replay), once per committed index.

import (
	"context"
	"sync"
	"time"

	"petite/scheduler"
	"petite/scheduler/server"
	"petite/scheduler/state"
	"petite/simulator/replay"
)

// How long an estimate is served (seconds of the driver's clock): past
// estimateMaxAge it is made again even if nothing was committed (remaining
// walltimes are anchored at the time of the replay, so an old one drifts);
// after a commit it is made again once it is estimateMinAge old, or at once
// for a job it does not know, so that a busy cluster, which commits at
// every pass, does not replay its queue at every status call.
const (
	estimateMaxAge = 60
	estimateMinAge = 5
)

// estimates caches the start estimates of the last committed index seen.
type estimates struct {
	mu    sync.Mutex
	valid bool
	index uint64
	at    int64 // when computed (driver's seconds)
	byJob map[string]replay.Estimate
	err   error
}

// estimate gives a queued job its estimated start (RFC 3339), or a note
// saying why there is none. A replay runs at most once per committed
// index (within the ages above), bounded by replay.EstimateOptions'
// defaults (7 days ahead, 500 queued jobs), outside the state machine's
// lock.
func (h *handler) estimate(ctx context.Context, j *Job) {
	if j.Status != StatusQueued {
		return
	}
	if j.Pending != nil && j.Pending.Why == scheduler.WhyNever {
		j.EstimateNote = "never starts: " + scheduler.WhyNever
		return
	}
	e := &h.est
	e.mu.Lock()
	defer e.mu.Unlock()
	now := h.s.Now()
	var st *replay.Start
	var index uint64
	var err error
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, idx uint64) {
		index = idx
		_, known := e.byJob[j.ID]
		age := now - e.at
		if e.valid && age >= 0 && age <= estimateMaxAge && (idx == e.index || age < estimateMinAge && known) {
			return
		}
		st, err = replay.FromMachine(m, replay.SnapshotOptions{At: now, DefaultDuration: replay.DefaultEstimateDuration})
	})
	if st != nil || err != nil {
		var by map[string]replay.Estimate
		if err == nil {
			by, err = st.EstimateStarts(ctx, replay.EstimateOptions{Policy: h.s.Policy()})
		}
		e.valid, e.index, e.at, e.byJob, e.err = err == nil || ctx.Err() == nil, index, now, by, err
	}
	switch est, ok := e.byJob[j.ID]; {
	case e.err != nil:
		j.EstimateNote = "no estimate: " + e.err.Error()
	case !ok:
		j.EstimateNote = "no estimate: not in the last replay of the queue"
	case est.OK:
		j.EstimatedStart = time.Unix(est.At, 0).UTC().Format(time.RFC3339)
		j.EstimateNote = est.Note
	default:
		j.EstimateNote = est.Note
	}
}
