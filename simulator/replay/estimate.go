package replay

// Start estimates for a live queue: the daemon's "why pending, and when".

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"petite/scheduler"
	"petite/scheduler/state"
)

// The bounds of an estimate when EstimateOptions leave them at zero.
const (
	DefaultEstimateHorizon  = 7 * 24 * Hour
	DefaultEstimateMaxJobs  = 500
	DefaultEstimateDuration = Hour
)

// EstimateOptions shape and bound a start estimate.
type EstimateOptions struct {
	// Policy and Options are the daemon's placement policy.
	Policy  string
	Options scheduler.Options
	// Horizon is how far ahead the queue is replayed (nanoseconds); a job
	// not started by then gets no estimate. 0: DefaultEstimateHorizon.
	Horizon int64
	// MaxJobs caps the queued jobs replayed, in the order the pass takes
	// them (priority, then submission); the rest get no estimate.
	// 0: DefaultEstimateMaxJobs.
	MaxJobs int
	// DefaultDuration is the work of a job without a walltime (a running
	// one's remaining work, a queued one's whole). 0: DefaultEstimateDuration.
	DefaultDuration int64
}

// Estimate is one queued job's estimated start.
type Estimate struct {
	// At is the estimated start on the driver's clock (seconds); valid
	// only when OK.
	At int64
	OK bool
	// Note says what the estimate assumed, or why there is none.
	Note string
}

// EstimateStarts replays a live queue forward from now (the driver's
// seconds) with the daemon's pass (backfill and preemption on, as the
// leader runs it) and returns, for each queued job, when it starts. The
// running jobs end after their remaining walltime, every job without a
// walltime is given the default duration, and nothing else arrives, so
// an estimate is a forecast under those assumptions, not a promise.
// It reads the machine only (FromMachine), and costs one bounded replay.
func EstimateStarts(ctx context.Context, m *state.Machine, now int64, o EstimateOptions) (map[string]Estimate, error) {
	st, err := FromMachine(m, SnapshotOptions{At: now, DefaultDuration: cmp.Or(o.DefaultDuration, DefaultEstimateDuration)})
	if err != nil {
		return nil, err
	}
	return st.EstimateStarts(ctx, o)
}

// EstimateStarts is EstimateStarts on a start already read (FromMachine
// under the caller's lock, the replay outside it).
func (s *Start) EstimateStarts(ctx context.Context, o EstimateOptions) (map[string]Estimate, error) {
	horizon := cmp.Or(o.Horizon, DefaultEstimateHorizon)
	maxJobs := cmp.Or(o.MaxJobs, DefaultEstimateMaxJobs)
	out := map[string]Estimate{}
	var running, queued []Job
	for _, j := range s.Jobs {
		if len(j.Placed) > 0 {
			running = append(running, j)
		} else {
			queued = append(queued, j)
		}
	}
	if len(queued) == 0 {
		return out, nil
	}
	// The pass takes higher priority first, then submission order (the
	// snapshot's order is submission order).
	slices.SortStableFunc(queued, func(a, b Job) int { return cmp.Compare(b.Job.Priority, a.Job.Priority) })
	if len(queued) > maxJobs {
		for _, j := range queued[maxJobs:] {
			out[j.Job.ID] = Estimate{Note: fmt.Sprintf("not estimated: more than %d jobs are queued ahead of it", maxJobs)}
		}
		queued = queued[:maxJobs]
	}
	// A job no node of the fleet can ever hold would stop the replay: it
	// gets a note instead.
	empty, err := scheduler.NewCluster(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("estimate: %w", err)
	}
	for _, p := range s.Pools {
		if err := empty.AddPool(p); err != nil {
			return nil, fmt.Errorf("estimate: pool %s: %w", p.Name, err)
		}
	}
	for _, n := range s.Nodes {
		if _, err := empty.AddNode(n); err != nil {
			return nil, fmt.Errorf("estimate: node %s: %w", n.Name, err)
		}
	}
	fits := newFitCache(empty)
	queued = slices.DeleteFunc(queued, func(j Job) bool {
		ok, err := fits.fits(&j.Job.Task)
		if err != nil || !ok {
			out[j.Job.ID] = Estimate{Note: "not estimated: its task fits no node of the fleet"}
		}
		return err != nil || !ok
	})
	cfg := Config{Pools: s.Pools, Nodes: s.Nodes, Tenants: s.Tenants, Policy: o.Policy, Options: o.Options,
		Queue: QueueBackfill, Preempt: true, Horizon: s.At + horizon}
	// Jobs keep the snapshot's queue order among themselves: running
	// ones first (they arrive placed), then the queue.
	cfg.Jobs = append(slices.Clone(running), queued...)
	defaulted := 0
	for _, j := range cfg.Jobs {
		if j.Job.Walltime <= 0 {
			defaulted++
		}
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("estimate: %w", err)
	}
	note := "a replay of the live queue: running jobs end after their walltime, nothing new arrives"
	if defaulted > 0 {
		note += fmt.Sprintf("; %d job(s) without a walltime assumed to run %s", defaulted, time.Duration(s.defaultDur))
	}
	for _, r := range res.Jobs[len(running):] { // records are in submission order: the queue's
		if r.Start < 0 {
			out[r.ID] = Estimate{Note: fmt.Sprintf("not estimated: does not start within %s in the replay", time.Duration(horizon))}
		} else {
			out[r.ID] = Estimate{At: r.Start / Second, OK: true, Note: note}
		}
	}
	return out, nil
}
