package scenario

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"petite/scheduler"
	"petite/simulator/replay"
)

// Impact is what one retire, drain or move action does to the workload:
// the scenario run with every action (after) against the same run without
// this one (before). Figures are over all jobs of the runs' records.
type Impact struct {
	Action Compiled1 `json:"action"`
	// Disrupted counts the jobs that lost their place to the action (a
	// requeue, or a service losing replicas, when its nodes went), by kind.
	Disrupted     map[string]int `json:"disrupted"`
	DisruptedJobs []string       `json:"disrupted_jobs,omitempty"`
	// LostGPUHours is GPU time whose work was lost to restarts.
	LostGPUHours Change `json:"lost_gpu_hours"`
	// WaitMeanH and WaitP95H are the queueing delay (first start − submit)
	// of the jobs that started, in hours.
	WaitMeanH Change `json:"wait_mean_h"`
	WaitP95H  Change `json:"wait_p95_h"`
	// Cost is Σ cost of every job.
	Cost Change `json:"cost"`
	// PeakCloudGPUs is the most GPUs held at once in cloud pools (from
	// the records' runs, GPUs per pool) or burst to the cloud.
	PeakCloudGPUs Change `json:"peak_cloud_gpus"`
	// NotStarted counts jobs that never started.
	NotStarted Change `json:"not_started"`
	// Stranded are the jobs that started without the action and can no
	// longer run anywhere with it, each with its reason.
	Stranded []Stranded `json:"stranded"`
}

// Change is a figure before and after an action.
type Change struct {
	Before float64 `json:"before"`
	After  float64 `json:"after"`
}

// Delta is after − before.
func (c Change) Delta() float64 { return c.After - c.Before }

// Stranded is a job no node can take any more.
type Stranded struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant,omitempty"`
	Reason string `json:"reason"`
}

// run is one replay with what Impact reads from its event log.
type run struct {
	res       *replay.Result
	peakCloud float64
	// requeued[job] after a node event at the same instant: node name.
	lostTo map[int]string
	lostAt map[int]int64
	// events is the event log, kept only when asked (tests reconcile with it).
	events []replay.Event
}

func runLogged(ctx context.Context, cfg replay.Config, keep bool) (*run, error) {
	cloudPool := map[string]bool{}
	for _, p := range cfg.Pools {
		cloudPool[p.Name] = p.Kind == scheduler.PoolCloud
	}
	cfg.RecordRuns = true
	r := &run{lostTo: map[int]string{}, lostAt: map[int]int64{}}
	// Under burst the cloud is not made of nodes: its runs are read from
	// the event log (cloud, cloud-end); otherwise from the records' runs.
	burst := cfg.Burst != nil
	inCloud := map[int]float64{}
	cur := 0.0
	lastNode, lastAt := "", int64(-1)
	gpus := map[string]float64{} // a burst job's GPUs (one task of whole GPUs), by id
	if burst {
		for i := range cfg.Jobs {
			j := &cfg.Jobs[i].Job
			gpus[j.ID] = float64(j.Task.GPUs * j.Count)
		}
	}
	cfg.Observe = func(e replay.Event) {
		if keep {
			r.events = append(r.events, e)
		}
		switch e.Kind {
		case replay.EventNode:
			lastNode, lastAt = e.Node, e.At
		case replay.EventMove: // the requeues that follow are the move's
			lastNode, lastAt = moveKey(e.ID), e.At
		case replay.EventRequeue, replay.EventDegrade:
			if e.At == lastAt {
				if _, seen := r.lostTo[e.Job]; !seen {
					r.lostTo[e.Job], r.lostAt[e.Job] = lastNode, e.At
				}
			}
		case replay.EventCloud:
			inCloud[e.Job] = gpus[e.ID]
			cur += inCloud[e.Job]
			r.peakCloud = max(r.peakCloud, cur)
		case replay.EventCloudEnd:
			cur -= inCloud[e.Job]
			delete(inCloud, e.Job)
		}
	}
	res, err := replay.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r.res = res
	if !burst {
		r.peakCloud = peakInPools(res, cloudPool)
	}
	return r, nil
}

// peakInPools is the most GPUs held at once in the pools named, from the
// records' runs: a run ending at an instant frees its GPUs before one
// starting then takes them, as the engine orders them.
func peakInPools(res *replay.Result, in map[string]bool) float64 {
	type step struct {
		at int64
		d  float64
	}
	var steps []step
	for i := range res.Jobs {
		for _, sg := range res.Jobs[i].Runs {
			g := 0.0
			for _, p := range sg.Pools {
				if in[p.Pool] {
					g += p.GPUs
				}
			}
			if g == 0 {
				continue
			}
			steps = append(steps, step{sg.Start, g})
			if sg.End >= 0 {
				steps = append(steps, step{sg.End, -g})
			}
		}
	}
	slices.SortFunc(steps, func(a, b step) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.d, b.d)
	})
	cur, peak := 0.0, 0.0
	for _, s := range steps {
		cur += s.d
		peak = max(peak, cur)
	}
	return peak
}

// Impacts runs the scenario once with every action and once without each
// retire, drain or move action, and reports each one's impact.
func (s *Scenario) Impacts(ctx context.Context, in *Inputs) ([]Impact, error) {
	return s.impacts(ctx, in, nil)
}

// impacts is Impacts; seen, when set, is given the two runs of each
// comparison with their event logs.
func (s *Scenario) impacts(ctx context.Context, in *Inputs, seen func(a Compiled1, before, after *run)) ([]Impact, error) {
	full, err := s.CompileWith(in, nil)
	if err != nil {
		return nil, err
	}
	after, err := runLogged(ctx, full.Config, seen != nil)
	if err != nil {
		return nil, fmt.Errorf("%s: run: %w", s.Path, err)
	}
	var out []Impact
	for _, a := range full.Actions {
		if a.Do != DoRetire && a.Do != DoDrain && a.Do != DoMove {
			continue
		}
		c, err := s.CompileWith(in, func(i int) bool { return i == a.Index })
		if err != nil {
			return nil, err
		}
		before, err := runLogged(ctx, c.Config, seen != nil)
		if err != nil {
			return nil, fmt.Errorf("%s: run without actions[%d]: %w", s.Path, a.Index, err)
		}
		if seen != nil {
			seen(a, before, after)
		}
		im := compare(a, before, after)
		im.Stranded, err = stranded(&full.Config, a, before.res, after.res)
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, nil
}

// compare reads the figures of two runs' records.
func compare(a Compiled1, before, after *run) Impact {
	im := Impact{Action: a, Disrupted: map[string]int{}}
	nodes := map[string]bool{}
	for _, n := range a.Nodes {
		nodes[n] = true
	}
	if a.Do == DoMove {
		nodes[moveKey(a.Tenant)] = true
	}
	for _, k := range slices.Sorted(mapKeys(after.lostTo)) {
		if nodes[after.lostTo[k]] && after.lostAt[k] == a.At {
			r := &after.res.Jobs[k]
			im.Disrupted[r.Kind]++
			im.DisruptedJobs = append(im.DisruptedJobs, r.ID)
		}
	}
	fig := func(res *replay.Result) (lost, mean, p95, cost, notStarted float64) {
		var waits []float64
		for i := range res.Jobs {
			r := &res.Jobs[i]
			lost += r.LostGPUHours
			cost += r.Cost
			if w, ok := r.Wait(); ok {
				waits = append(waits, float64(w)/float64(replay.Hour))
			} else {
				notStarted++
			}
		}
		slices.Sort(waits)
		for _, w := range waits {
			mean += w
		}
		if len(waits) > 0 {
			mean /= float64(len(waits))
		}
		return lost, mean, replay.Quantile(waits, 0.95), cost, notStarted
	}
	var b, f [5]float64
	b[0], b[1], b[2], b[3], b[4] = fig(before.res)
	f[0], f[1], f[2], f[3], f[4] = fig(after.res)
	im.LostGPUHours = Change{b[0], f[0]}
	im.WaitMeanH = Change{b[1], f[1]}
	im.WaitP95H = Change{b[2], f[2]}
	im.Cost = Change{b[3], f[3]}
	im.NotStarted = Change{b[4], f[4]}
	im.PeakCloudGPUs = Change{before.peakCloud, after.peakCloud}
	return im
}

func mapKeys[V any](m map[int]V) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// stranded lists the jobs submitted from the action on that started
// without it, never started with it, and fit no node of the fleet as the
// scenario leaves it (every retirement up to the job's submission
// applied): their reason counts the nodes by why each cannot take them.
func stranded(cfg *replay.Config, a Compiled1, before, after *replay.Result) ([]Stranded, error) {
	cl, err := scheduler.NewCluster(cfg.Pools, cfg.Nodes)
	if err != nil {
		return nil, fmt.Errorf("impact: %w", err)
	}
	var out []Stranded
	order := make([]int, len(cfg.Jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(cfg.Jobs[x].Submit, cfg.Jobs[y].Submit) })
	ev := 0
	for k, i := range order {
		j := &cfg.Jobs[i]
		// Bring the fleet to the job's submission: only retirements and
		// drains count, the states that last.
		for ; ev < len(cfg.NodeEvents) && cfg.NodeEvents[ev].At <= j.Submit; ev++ {
			ne := cfg.NodeEvents[ev]
			if id, ok := cl.NodeByName(ne.Node); ok && (ne.State == scheduler.NodeRetired || ne.State == scheduler.NodeDraining || ne.State == scheduler.NodeReady) {
				cl.SetState(id, ne.State)
			}
		}
		if j.Submit < a.At || before.Jobs[k].Start < 0 || after.Jobs[k].Start >= 0 {
			continue
		}
		s, err := cl.ShapeOf(&j.Job.Task)
		if err != nil {
			return nil, fmt.Errorf("impact: job %s: %w", j.Job.ID, err)
		}
		var why [16]int
		fits := false
		for n := range cl.NumNodes() {
			r := cl.Why(scheduler.NodeID(n), &s)
			if r == scheduler.Fit {
				fits = true
				break
			}
			why[r]++
		}
		if fits {
			continue
		}
		out = append(out, Stranded{ID: j.Job.ID, Tenant: j.Job.Tenant, Reason: reasonText(why[:])})
	}
	return out, nil
}

// reasonText writes node counts by reason, the largest first: "no node
// can take it: 470 node not ready, 300 GPU model not accepted".
func reasonText(why []int) string {
	type rc struct {
		r scheduler.Reason
		n int
	}
	var rs []rc
	for r, n := range why {
		if n > 0 {
			rs = append(rs, rc{scheduler.Reason(r), n})
		}
	}
	slices.SortStableFunc(rs, func(a, b rc) int { return b.n - a.n })
	parts := make([]string, len(rs))
	for i, x := range rs {
		parts[i] = fmt.Sprintf("%d nodes: %s", x.n, x.r)
	}
	return "no node can take it (" + strings.Join(parts, "; ") + ")"
}

// WriteImpacts prints the impacts as a table per action.
func WriteImpacts(w io.Writer, ims []Impact) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, a ...any) {
		fmt.Fprintf(tw, format, a...)
	}
	for _, im := range ims {
		a := im.Action
		p("%s (actions[%d], line %d)\tbefore\tafter\tchange\t\n", a.Do, a.Index, a.Line)
		kinds := slices.Sorted(func(yield func(string) bool) {
			for k := range im.Disrupted {
				if !yield(k) {
					return
				}
			}
		})
		dis := make([]string, len(kinds))
		total := 0
		for i, k := range kinds {
			dis[i] = fmt.Sprintf("%s %d", k, im.Disrupted[k])
			total += im.Disrupted[k]
		}
		p("jobs disrupted\t\t%d\t%s\t\n", total, strings.Join(dis, ", "))
		for _, r := range []struct {
			name string
			c    Change
			f    string
		}{
			{"GPU-hours lost to restarts", im.LostGPUHours, "%.2f"},
			{"mean wait (h)", im.WaitMeanH, "%.4f"},
			{"p95 wait (h)", im.WaitP95H, "%.4f"},
			{"cost", im.Cost, "%.2f"},
			{"peak cloud GPUs", im.PeakCloudGPUs, "%.1f"},
			{"jobs never started", im.NotStarted, "%.0f"},
		} {
			p("%s\t"+r.f+"\t"+r.f+"\t%+"+r.f[1:]+"\t\n", r.name, r.c.Before, r.c.After, r.c.Delta())
		}
		p("jobs that can no longer run anywhere\t\t%d\t\t\n", len(im.Stranded))
		if err := tw.Flush(); err != nil {
			return err
		}
		for i, s := range im.Stranded {
			if i == 10 {
				fmt.Fprintf(w, "  ... and %d more\n", len(im.Stranded)-10)
				break
			}
			fmt.Fprintf(w, "  %s (tenant %s): %s\n", s.ID, s.Tenant, s.Reason)
		}
	}
	return tw.Flush()
}

// moveKey names a move of a tenant's live work where disruptions are
// attributed to a node.
func moveKey(tenant string) string { return "move of " + tenant }
