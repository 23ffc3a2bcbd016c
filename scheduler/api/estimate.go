package api

// Start estimates of queued jobs: the live queue replayed forward by the
// simulator's engine (simulator/replay), once per committed index.

import (
	"context"
	"sync"
	"time"

	"petite/scheduler/server"
	"petite/scheduler/state"
	"petite/simulator/replay"
)

// estimateMaxAge bounds how long an estimate made at one index is served
// while nothing is committed: remaining walltimes are anchored at the time
// of the replay, so an old one drifts.
const estimateMaxAge = 60 // seconds of the driver's clock

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
// index (and estimateMaxAge), bounded by replay.EstimateOptions' defaults
// (7 days ahead, 2,000 queued jobs), outside the state machine's lock.
func (h *handler) estimate(ctx context.Context, j *Job) {
	if j.Status != StatusQueued {
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
		if e.valid && idx == e.index && now-e.at <= estimateMaxAge && now >= e.at {
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
		j.EstimateNote = "no estimate: submitted since the last replay of the queue"
	case est.OK:
		j.EstimatedStart = time.Unix(est.At, 0).UTC().Format(time.RFC3339)
		j.EstimateNote = est.Note
	default:
		j.EstimateNote = est.Note
	}
}
