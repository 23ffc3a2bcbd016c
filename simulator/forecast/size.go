package forecast

// Sizing a fleet to an SLO: the smallest addition that keeps a quantile of
// queueing delay under a bound, found by replaying candidate fleets.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"petite/scheduler"
	"petite/simulator/replay"
)

// An Addition is what a candidate fleet adds to the base one.
type Addition struct {
	// Pool is an existing pool: nodes are added to it, or (Quota) its
	// max_nodes grows.
	Pool string `json:"pool"`
	// GPUModel picks the pool's template node: its first node of that GPU
	// model ("": its first node).
	GPUModel string `json:"gpu_model,omitempty"`
	// Quota adds Count to a cloud pool's max_nodes (under pool scaling)
	// instead of adding nodes.
	Quota bool `json:"quota,omitempty"`
	// Count is the nodes added (or the quota's nodes).
	Count int `json:"count"`
}

// String names the axis and count: "POOL:MODEL+3" or "quota POOL+3".
func (a Addition) String() string {
	if a.Quota {
		return fmt.Sprintf("quota %s+%d", a.Pool, a.Count)
	}
	if a.GPUModel == "" {
		return fmt.Sprintf("%s+%d", a.Pool, a.Count)
	}
	return fmt.Sprintf("%s:%s+%d", a.Pool, a.GPUModel, a.Count)
}

// An SLO bounds a quantile of queueing delay over the jobs of a run. A job
// that never started counts as waiting without bound.
type SLO struct {
	Quantile float64       `json:"quantile"`
	MaxWait  time.Duration `json:"max_wait_ns"`
}

// String writes the SLO as ParseSLO reads it.
func (s SLO) String() string {
	return fmt.Sprintf("p%s-wait<=%s", strconv.FormatFloat(s.Quantile*100, 'g', -1, 64), s.MaxWait)
}

// ParseSLO reads "pQ-wait<=DURATION" (or "=" for "<="): p95-wait<=10m,
// p99.9-wait<=1h.
func ParseSLO(s string) (SLO, error) {
	rest, ok := strings.CutPrefix(s, "p")
	q, d, found := strings.Cut(rest, "-wait<=")
	if !found {
		q, d, found = strings.Cut(rest, "-wait=")
	}
	if !ok || !found {
		return SLO{}, fmt.Errorf("slo %q: want pQ-wait<=DURATION, e.g. p95-wait<=10m", s)
	}
	qv, err := strconv.ParseFloat(q, 64)
	if err != nil || !(qv > 0 && qv <= 100) {
		return SLO{}, fmt.Errorf("slo %q: the quantile %q: want a number in (0, 100]", s, q)
	}
	dv, err := ParseSpan(d)
	if err != nil || dv < 0 {
		return SLO{}, fmt.Errorf("slo %q: the bound %q: want a duration such as 10m", s, d)
	}
	return SLO{Quantile: qv / 100, MaxWait: dv}, nil
}

// Delay is the SLO's quantile of queueing delay over the jobs of a run,
// by the replay's quantile rule; a job that never started waits +Inf.
func (s SLO) Delay(res *replay.Result) time.Duration {
	w := make([]float64, 0, len(res.Jobs))
	for i := range res.Jobs {
		if d, ok := res.Jobs[i].Wait(); ok {
			w = append(w, float64(d))
		} else {
			w = append(w, math.Inf(1))
		}
	}
	slices.Sort(w)
	q := replay.Quantile(w, s.Quantile)
	if math.IsInf(q, 1) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(q)
}

// A Replayer runs the workload on the base fleet plus an addition, with a
// seed.
type Replayer interface {
	Replay(ctx context.Context, add Addition, seed uint64) (*replay.Result, error)
}

// FleetReplayer is the Replayer of a replay.Config: the base fleet and the
// workload (Project's), to which each run adds Count clones of the pool's
// template node (named POOL-add-NNNN), or Count nodes of quota to the pool
// with pool scaling on. Replay is safe to call concurrently.
type FleetReplayer struct {
	Base replay.Config
}

// Replay runs Base plus add with the seed.
func (f *FleetReplayer) Replay(ctx context.Context, add Addition, seed uint64) (*replay.Result, error) {
	cfg := f.Base
	cfg.Seed = seed
	cfg.Observe, cfg.Progress = nil, nil
	pi := slices.IndexFunc(cfg.Pools, func(p scheduler.Pool) bool { return p.Name == add.Pool })
	if pi < 0 {
		return nil, fmt.Errorf("size: pool %q is not in the fleet", add.Pool)
	}
	if add.Quota {
		if cfg.Pools[pi].Kind != scheduler.PoolCloud {
			return nil, fmt.Errorf("size: pool %s: a quota grows a cloud pool, this one is %s", add.Pool, cfg.Pools[pi].Kind)
		}
		cfg.Pools = slices.Clone(cfg.Pools)
		cfg.Pools[pi].MaxNodes += add.Count
		if cfg.Scale == nil {
			cfg.Scale = &replay.Scale{IdleRelease: replay.DefaultIdleRelease}
		}
		return replay.Run(ctx, cfg)
	}
	ti := slices.IndexFunc(cfg.Nodes, func(n scheduler.Node) bool {
		return n.Pool == add.Pool && (add.GPUModel == "" || len(n.GPUs) > 0 && n.GPUs[0].Model == add.GPUModel)
	})
	if ti < 0 {
		return nil, fmt.Errorf("size: pool %s has no node of GPU model %q to clone", add.Pool, add.GPUModel)
	}
	nodes := make([]scheduler.Node, len(cfg.Nodes), len(cfg.Nodes)+add.Count)
	copy(nodes, cfg.Nodes)
	for i := range add.Count {
		n := cfg.Nodes[ti]
		n.Name = fmt.Sprintf("%s-add-%04d", add.Pool, i+1)
		n.State = scheduler.NodeReady
		nodes = append(nodes, n)
	}
	cfg.Nodes = nodes
	return replay.Run(ctx, cfg)
}

// Project scales a workload's demand by factor: each job is kept
// floor(factor) times and once more with probability frac(factor), drawn
// from rng, the copies submitted with it (ids ID, ID~2, ID~3, ...). A
// factor below 1 thins the workload.
func Project(jobs []replay.Job, factor float64, rng *rand.Rand) ([]replay.Job, error) {
	if !(factor > 0) || math.IsInf(factor, 0) || factor > 1000 {
		return nil, fmt.Errorf("project: factor %v: want a number in (0, 1000]", factor)
	}
	whole := int(factor)
	frac := factor - float64(whole)
	out := make([]replay.Job, 0, int(float64(len(jobs))*factor)+1)
	for _, j := range jobs {
		n := whole
		if rng.Float64() < frac {
			n++
		}
		for c := range n {
			cp := j
			if c > 0 {
				cp.Job.ID = fmt.Sprintf("%s~%d", j.Job.ID, c+1)
			}
			out = append(out, cp)
		}
	}
	return out, nil
}

// Growth is the factor that sizes a workload to a forecast: the figure to
// size to (the highest upper bound over the horizon, Result.Peak) over
// the highest demand of the history it was fitted on (the steps of s
// before the cutoff). Sizing to the mean would undershoot the peak.
func Growth(s *Series, r *Result) (float64, error) {
	n := min(s.Index(r.Cutoff), len(s.Values))
	peak := 0.0
	for _, v := range s.Values[:max(n, 0)] {
		if !math.IsNaN(v) {
			peak = max(peak, v)
		}
	}
	if !(peak > 0) {
		return 0, errors.New("growth: the history holds no demand")
	}
	return r.Peak / peak, nil
}

// CurvePoint is one count replayed over the seeds.
type CurvePoint struct {
	Count int `json:"count"`
	// Delay is the SLO's quantile of delay, one per seed (MaxInt64: some
	// job never started).
	Delay []time.Duration `json:"delay_ns"`
	// Pass says the SLO held in every seed.
	Pass bool `json:"pass"`
	// Round is the search round that replayed it (0: the first bracket).
	Round int `json:"round"`
}

// Sizing is the answer with what supports it.
type Sizing struct {
	SLO  SLO      `json:"slo"`
	Axis Addition `json:"axis"`
	// Answer is the smallest count found to hold the SLO in every seed,
	// with count−1 failing (unless it is 0); -1 when none up to the
	// search's maximum does.
	Answer int `json:"answer"`
	// Curve is every count replayed, by count.
	Curve []CurvePoint `json:"curve"`
	// Fail and Pass are the first seed's runs at Answer−1 and Answer (Fail
	// nil when Answer is 0; Pass nil when none holds).
	Fail *replay.Result `json:"-"`
	Pass *replay.Result `json:"-"`
	// NonMonotone lists counts that held the SLO below a count that did
	// not: delay is assumed to fall as capacity grows; where it does not,
	// it is reported here, not hidden.
	NonMonotone []int `json:"non_monotone,omitempty"`
	// Runs counts the replays.
	Runs int `json:"runs"`
}

// SizeOptions bound the search.
type SizeOptions struct {
	// Max is the largest count tried (default 64).
	Max int
	// K is the counts replayed per round inside the bracket (k-section;
	// default 3). The rounds, and so the curve, depend on K alone, not on
	// Workers: the same inputs give the same answer and curve.
	K int
	// Workers is how many replays run at once (default 1).
	Workers int
}

// ErrSLONotReached says no count up to the search's maximum holds the SLO.
var ErrSLONotReached = errors.New("no count up to the maximum holds the SLO")

// Size searches the smallest Count of axis that keeps the SLO in every
// seed. It brackets first (0, then 1, 2, 4, ... up to Max, K counts a
// round), then narrows the bracket by k-section: each round replays K
// counts evenly inside it and keeps the sub-interval where the SLO turns
// from failing to holding. Each round's replays (counts × seeds) run in
// parallel on Workers goroutines.
func Size(ctx context.Context, rp Replayer, axis Addition, slo SLO, seeds []uint64, o SizeOptions) (*Sizing, error) {
	maxN, k, workers := cmp.Or(o.Max, 64), cmp.Or(o.K, 3), cmp.Or(o.Workers, 1)
	if maxN < 1 || k < 1 || workers < 1 || len(seeds) == 0 {
		return nil, fmt.Errorf("size: want max ≥ 1, k ≥ 1, workers ≥ 1 and a seed (got %d, %d, %d, %d seeds)", maxN, k, workers, len(seeds))
	}
	sz := &Sizing{SLO: slo, Axis: axis, Answer: -1}
	points := map[int]*CurvePoint{}
	first := map[int]*replay.Result{}
	round := 0
	eval := func(counts []int) error {
		counts = slices.DeleteFunc(slices.Clone(counts), func(c int) bool { _, seen := points[c]; return seen })
		slices.Sort(counts)
		counts = slices.Compact(counts)
		if len(counts) == 0 {
			return nil
		}
		type slot struct {
			res *replay.Result
			err error
		}
		slots := make([]slot, len(counts)*len(seeds))
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(workers, len(slots)) {
			wg.Go(func() {
				for i := range next {
					a := axis
					a.Count = counts[i/len(seeds)]
					res, err := rp.Replay(ctx, a, seeds[i%len(seeds)])
					slots[i] = slot{res, err}
				}
			})
		}
		for i := range slots {
			next <- i
		}
		close(next)
		wg.Wait()
		for ci, c := range counts {
			p := &CurvePoint{Count: c, Pass: true, Round: round}
			for si := range seeds {
				s := slots[ci*len(seeds)+si]
				if s.err != nil {
					return fmt.Errorf("size: %s, seed %d: %w", Addition{Pool: axis.Pool, GPUModel: axis.GPUModel, Quota: axis.Quota, Count: c}, seeds[si], s.err)
				}
				d := slo.Delay(s.res)
				p.Delay = append(p.Delay, d)
				p.Pass = p.Pass && d <= slo.MaxWait
			}
			points[c] = p
			first[c] = slots[ci*len(seeds)].res
			sz.Runs += len(seeds)
		}
		round++
		return nil
	}
	// bounds: the smallest passing count, and the largest failing below it
	bounds := func() (lo, hi int) {
		lo, hi = -1, -1
		for c, p := range points {
			if p.Pass && (hi < 0 || c < hi) {
				hi = c
			}
		}
		for c, p := range points {
			if !p.Pass && c > lo && (hi < 0 || c < hi) {
				lo = c
			}
		}
		return lo, hi
	}
	if err := eval([]int{0}); err != nil {
		return nil, err
	}
	for next := 1; ; {
		if _, hi := bounds(); hi >= 0 || next > maxN {
			break
		}
		var batch []int
		for len(batch) < k && next <= maxN {
			batch = append(batch, next)
			if next == maxN {
				next++
				break
			}
			next = min(next*2, maxN)
		}
		if err := eval(batch); err != nil {
			return nil, err
		}
	}
	for {
		lo, hi := bounds()
		if hi < 0 || hi-lo <= 1 {
			break
		}
		var batch []int
		for i := 1; i <= k; i++ {
			c := lo + (hi-lo)*i/(k+1)
			if c > lo && c < hi {
				batch = append(batch, c)
			}
		}
		if err := eval(batch); err != nil {
			return nil, err
		}
	}
	counts := slices.Sorted(func(yield func(int) bool) {
		for c := range points {
			if !yield(c) {
				return
			}
		}
	})
	for _, c := range counts {
		sz.Curve = append(sz.Curve, *points[c])
	}
	maxFail := -1
	for _, c := range counts {
		if !points[c].Pass {
			maxFail = c
		}
	}
	for _, c := range counts {
		if points[c].Pass && c < maxFail {
			sz.NonMonotone = append(sz.NonMonotone, c)
		}
	}
	lo, hi := bounds()
	if hi < 0 {
		sz.Fail = first[maxN]
		return sz, fmt.Errorf("size: %s: %w (%d); the largest run's delay is %s", axis.Pool, ErrSLONotReached, maxN, fmtDelay(points[counts[len(counts)-1]].Delay))
	}
	sz.Answer, sz.Pass = hi, first[hi]
	if lo >= 0 {
		sz.Fail = first[lo]
	}
	return sz, nil
}

// fmtDelay writes the delays of the seeds.
func fmtDelay(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = FmtWait(d)
	}
	return strings.Join(s, ", ")
}

// FmtWait writes a delay of the curve: "never" when some job never started.
func FmtWait(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "never"
	}
	return d.Round(time.Second).String()
}
