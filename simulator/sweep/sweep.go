// Package sweep runs the trace-replay simulator over a matrix of scenario
// variants × placement policies × seeds, in parallel and possibly one shard
// of it, and tabulates the runs (docs/sim.md, "Sweeps").
package sweep

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"petite/scheduler"
	"petite/simulator/frag"
	"petite/simulator/replay"
)

// Matrix is the set of runs of a sweep: every variant under every policy
// with every seed.
type Matrix struct {
	// Variants, Policies and Seeds are the three axes, in table order.
	Variants []string `json:"variants"`
	Policies []string `json:"policies"`
	Seeds    []uint64 `json:"seeds"`
	// SeriesStep is the sampling step (ns) of the runs the report plots.
	SeriesStep int64 `json:"series_step_ns"`
	// Notes say what the variants are (inputs, settings), for the report.
	Notes []string `json:"notes,omitempty"`
}

// Job is one run of a matrix, by position.
type Job struct {
	// Variant and Policy index the matrix's lists.
	Variant, Policy int
	// Seed is the run's seed.
	Seed uint64
}

// Jobs lists the runs in canonical order: by variant, then policy, then
// seed.
func (m *Matrix) Jobs() []Job {
	jobs := make([]Job, 0, len(m.Variants)*len(m.Policies)*len(m.Seeds))
	for v := range m.Variants {
		for p := range m.Policies {
			for _, s := range m.Seeds {
				jobs = append(jobs, Job{v, p, s})
			}
		}
	}
	return jobs
}

func (m *Matrix) equal(o *Matrix) bool {
	return slices.Equal(m.Variants, o.Variants) && slices.Equal(m.Policies, o.Policies) &&
		slices.Equal(m.Seeds, o.Seeds) && m.SeriesStep == o.SeriesStep && slices.Equal(m.Notes, o.Notes)
}

// check refuses an empty axis or a repeated name.
func (m *Matrix) check() error {
	for _, ax := range []struct {
		name string
		v    []string
	}{{"variant", m.Variants}, {"policy", m.Policies}} {
		if len(ax.v) == 0 {
			return fmt.Errorf("sweep: no %s", ax.name)
		}
		for i, s := range ax.v {
			if slices.Contains(ax.v[:i], s) {
				return fmt.Errorf("sweep: %s %q given twice", ax.name, s)
			}
		}
	}
	if len(m.Seeds) == 0 {
		return fmt.Errorf("sweep: no seed")
	}
	return nil
}

// selectShard keeps the jobs at canonical positions k with k mod n = i.
func selectShard(sh frag.Shard, jobs []Job) []Job {
	if sh.Count <= 1 {
		return jobs
	}
	var out []Job
	for k, j := range jobs {
		if k%sh.Count == sh.Index {
			out = append(out, j)
		}
	}
	return out
}

// ParsePolicies reads a policy list: "all" (scheduler.PolicyNames) or
// comma-separated names, each once.
func ParsePolicies(s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			continue
		case item == "all":
			for _, p := range scheduler.PolicyNames() {
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
			continue
		case !slices.Contains(scheduler.PolicyNames(), item):
			return nil, fmt.Errorf("policies %q: unknown policy %q (want all or names of %v)", s, item, scheduler.PolicyNames())
		case slices.Contains(out, item):
			return nil, fmt.Errorf("policies %q: policy %q repeated", s, item)
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("policies %q: no policy", s)
	}
	return out, nil
}

// Variant is one column of scenarios a sweep runs: a fleet, a workload and
// settings, of which each run sets the policy and the seed.
type Variant struct {
	// Name names the variant in the matrix and the table.
	Name string
	// Config builds the replay of one run. It is called from one goroutine
	// at a time; the configs it returns may share read-only slices.
	Config func(policy string, seed uint64) (replay.Config, error)
}

// Record is the outcome of one run: its place in the matrix and its summary.
type Record struct {
	Variant string         `json:"variant"`
	Policy  string         `json:"policy"`
	Seed    uint64         `json:"seed"`
	Summary replay.Summary `json:"summary"`
}

// Full is a run kept whole for the report: the first seed's run of every
// variant and policy.
type Full struct {
	Variant string         `json:"variant"`
	Policy  string         `json:"policy"`
	Result  *replay.Result `json:"result"`
}

// Sweep runs a matrix of replays.
type Sweep struct {
	// Variants are the built variants, named as in the matrix.
	Variants []Variant
	// Matrix names the runs.
	Matrix Matrix
	// Shard selects part of the matrix; the zero value runs all of it.
	Shard frag.Shard
	// Parallel is how many runs go at once (at least one).
	Parallel int
	// Progress, when set, is called after each run with the number done
	// and the total; calls are serialised.
	Progress func(done, total int)
}

// Run executes the sweep's runs and returns their records and the whole
// results of the report's runs, both in canonical order whatever the
// parallelism.
func (s *Sweep) Run(ctx context.Context) ([]Record, []Full, error) {
	if err := s.Matrix.check(); err != nil {
		return nil, nil, err
	}
	if len(s.Variants) != len(s.Matrix.Variants) {
		return nil, nil, fmt.Errorf("sweep: %d variants built for a matrix of %d", len(s.Variants), len(s.Matrix.Variants))
	}
	for i, v := range s.Variants {
		if v.Name != s.Matrix.Variants[i] {
			return nil, nil, fmt.Errorf("sweep: variant %d is %q, the matrix says %q", i, v.Name, s.Matrix.Variants[i])
		}
	}
	jobs := selectShard(s.Shard, s.Matrix.Jobs())
	recs := make([]Record, len(jobs))
	fulls := make([]*Full, len(jobs))
	// The first run to fail names the error; runs cancelled because of it
	// fail after it.
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var build, prog, errMu sync.Mutex
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	done := 0
	first := s.Matrix.Seeds[0]
	for range min(max(s.Parallel, 1), max(len(jobs), 1)) {
		wg.Go(func() {
			for k := range next {
				j := jobs[k]
				v, p := s.Variants[j.Variant], s.Matrix.Policies[j.Policy]
				name := fmt.Sprintf("run %s/%s/seed %d", v.Name, p, j.Seed)
				build.Lock()
				cfg, err := v.Config(p, j.Seed)
				build.Unlock()
				if err != nil {
					fail(fmt.Errorf("%s: %w", name, err))
					continue
				}
				cfg.Policy, cfg.Seed = p, j.Seed
				cfg.Progress, cfg.Observe = nil, nil
				if j.Seed == first {
					cfg.SeriesStep = s.Matrix.SeriesStep
				} else {
					cfg.SeriesStep = 0 // only the report's runs keep a series
				}
				res, err := replay.Run(ctx, cfg)
				if err != nil {
					fail(fmt.Errorf("%s: %w", name, err))
					continue
				}
				recs[k] = Record{Variant: v.Name, Policy: p, Seed: j.Seed, Summary: res.Summary}
				if j.Seed == first {
					fulls[k] = &Full{Variant: v.Name, Policy: p, Result: res}
				}
				prog.Lock()
				done++
				if s.Progress != nil {
					s.Progress(done, len(jobs))
				}
				prog.Unlock()
			}
		})
	}
feed:
	for k := range jobs {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return nil, nil, firstErr
	}
	if done < len(jobs) {
		return nil, nil, fmt.Errorf("sweep: stopped after %d of %d runs: %w", done, len(jobs), context.Cause(ctx))
	}
	var out []Full
	for _, f := range fulls {
		if f != nil {
			out = append(out, *f)
		}
	}
	return recs, out, nil
}
