package replay

import (
	"fmt"
	"math"
	"slices"
)

// JobRecord is what happened to one job. Times are on the virtual clock
// (nanoseconds), -1 when they did not happen.
type JobRecord struct {
	// Index is the job's number in submission order (file order among
	// equal submit times).
	Index int    `json:"index"`
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	// Tenant is the job's tenant as the trace names it.
	Tenant string  `json:"tenant,omitempty"`
	GPUs   float64 `json:"gpus"`
	Submit int64   `json:"submit_ns"`
	// Start is the first start on owned nodes, or the instant the job left
	// for the cloud.
	Start    int64 `json:"start_ns"`
	End      int64 `json:"end_ns"`
	Duration int64 `json:"duration_ns"`
	// Where is "onprem" (owned pools: onprem or outposts), "cloud", or ""
	// for a job that never started.
	Where string `json:"where,omitempty"`
	// State is where the job stood when the run stopped: ended, running,
	// queued, cloud (still running there) or future (not submitted).
	State string `json:"state"`
	// Preemptions counts the times the job lost its place (preempted, or
	// its node lost); Restarts the times it started again after that.
	Preemptions int `json:"preemptions,omitempty"`
	Restarts    int `json:"restarts,omitempty"`
	// GPUHours is the GPU time the job held, lost work and restarts
	// included; LostGPUHours the part of it whose work was lost.
	GPUHours     float64 `json:"gpu_hours"`
	LostGPUHours float64 `json:"lost_gpu_hours,omitempty"`
	// Cost is price × GPUs × hours held over every pool the job ran in
	// (owned pools cost their price_per_gpu_hour, usually 0); CloudCost is
	// the part spent in the burst cloud.
	Cost      float64 `json:"cost"`
	CloudCost float64 `json:"cloud_cost,omitempty"`
	// Pool is where the job ran first: the pool holding most of its GPUs in
	// its first owned run (the first such pool on a tie), or the burst
	// cloud pool; "" for a job that never started.
	Pool string `json:"pool,omitempty"`
	// Runs are the job's stretches on owned nodes, with the GPUs they held
	// in each pool (Config.RecordRuns; nil otherwise). A run still going
	// when the run stopped ends at -1.
	Runs []Segment `json:"runs,omitempty"`
}

// Segment is one run of a job on owned nodes.
type Segment struct {
	Start int64      `json:"start_ns"`
	End   int64      `json:"end_ns"`
	Pools []PoolGPUs `json:"pools"`
}

// PoolGPUs is how many GPUs a run held in one pool (a share of a GPU counts
// as its fraction). A service's replicas put back later are not counted.
type PoolGPUs struct {
	Pool string  `json:"pool"`
	GPUs float64 `json:"gpus"`
}

// Wait is the queueing delay: first start (or departure for the cloud)
// minus submit; ok is false for a job that never started.
func (r *JobRecord) Wait() (int64, bool) {
	return r.Start - r.Submit, r.Start >= 0
}

// JCT is the job completion time: end minus submit; ok is false for a job
// that did not end.
func (r *JobRecord) JCT() (int64, bool) {
	return r.End - r.Submit, r.End >= 0
}

// slowdownFloor keeps the slowdown of very short jobs bounded.
const slowdownFloor = 10 * Second

// Slowdown is JCT / max(duration, 10 s), at least 1: the bounded slowdown.
func (r *JobRecord) Slowdown() (float64, bool) {
	jct, ok := r.JCT()
	if !ok {
		return 0, false
	}
	return max(1, float64(jct)/float64(max(r.Duration, slowdownFloor))), true
}

// Stats are the aggregates of one metric over the measured jobs that have
// it. Percentiles are nearest-rank on the sorted values: x[k] with
// k = round-half-to-even(q × (n − 1)).
type Stats struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Quantile returns x[round-half-to-even(q × (n − 1))] of sorted values, the
// burst method's rule (not interpolated); 0 for no values.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.RoundToEven(q * float64(len(sorted)-1)))
	return sorted[k]
}

// stats sorts v (with the sorter's scratch) and returns its aggregates.
func (fs *floatSorter) stats(v []float64) Stats {
	if len(v) == 0 {
		return Stats{}
	}
	fs.sort(v)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return Stats{N: len(v), Mean: sum / float64(len(v)), P50: Quantile(v, 0.5), P90: Quantile(v, 0.9),
		P95: Quantile(v, 0.95), P99: Quantile(v, 0.99), P999: Quantile(v, 0.999), Max: v[len(v)-1]}
}

// Summary is the run's result in figures. The first ten keys are the burst
// method's (docs/sim.md); times are in hours.
type Summary struct {
	Jobs               int     `json:"jobs"`
	CloudJobs          int     `json:"cloud_jobs"`
	CloudCost          float64 `json:"cloud_cost"`
	AvgCloudCost       float64 `json:"avg_cloud_cost"`
	AvgWaitH           float64 `json:"avg_wait_h"`
	AvgJCTH            float64 `json:"avg_jct_h"`
	P90JCTH            float64 `json:"p90_jct_h"`
	P99JCTH            float64 `json:"p99_jct_h"`
	ClusterUtilization float64 `json:"cluster_utilization"`
	SystemUtilization  float64 `json:"system_utilization"`

	// WindowStartH and WindowEndH bound the measurement window (hours on
	// the virtual clock); WindowH is its length.
	WindowStartH float64 `json:"window_start_h"`
	WindowEndH   float64 `json:"window_end_h"`
	WindowH      float64 `json:"window_h"`
	// WaitH, JCTH and Slowdown aggregate the measured jobs.
	WaitH    Stats `json:"wait_h"`
	JCTH     Stats `json:"jct_h"`
	Slowdown Stats `json:"slowdown"`
	// Preemptions, Restarts, GPUHours, LostGPUHours and Cost sum over the
	// measured jobs.
	Preemptions  int     `json:"preemptions"`
	Restarts     int     `json:"restarts"`
	GPUHours     float64 `json:"gpu_hours"`
	LostGPUHours float64 `json:"lost_gpu_hours"`
	Cost         float64 `json:"cost"`
	// MakespanH is the last end minus the first submit, over all jobs.
	MakespanH float64 `json:"makespan_h"`
	// The count of all jobs by where they stood when the run stopped:
	// Total = Ended + Running + Queued + InCloud + Future.
	Total   int `json:"total"`
	Ended   int `json:"ended"`
	Running int `json:"running"`
	Queued  int `json:"queued"`
	InCloud int `json:"in_cloud"`
	Future  int `json:"future"`
	// Unfit counts the jobs of the workload left out of the replay because
	// no node the fleet will ever have could hold them (Config.Unfit is
	// UnfitSkip): Total + Unfit is every job of the workload. UnfitJobs
	// lists the first few, in submission order.
	Unfit     int        `json:"unfit,omitempty"`
	UnfitJobs []UnfitJob `json:"unfit_jobs,omitempty"`
	// ByTenant, BySize and ByPool cut the measured jobs by tenant ("" as
	// "-"), by size (SizeBucket) and by the pool they ran in first
	// ("-" for jobs that never started).
	ByTenant map[string]Cut `json:"by_tenant"`
	BySize   map[string]Cut `json:"by_size"`
	ByPool   map[string]Cut `json:"by_pool"`
	// CostByPool is the cost charged to each pool of the fleet over every
	// job of the run (warm-up included): a run spread over pools pays
	// each its share, the burst cloud its runs and paid stints. It sums
	// to the cost of all the records.
	CostByPool map[string]float64 `json:"cost_by_pool"`
	// BillByPool is what each pool of the fleet costs over the run: for a
	// cloud pool under scaling, its nodes' bill while up (idle included,
	// Scaling's node_cost); for a pool with pricing: reserved, every node
	// it has for the whole run (added nodes from their arrival), used or
	// not; for the rest (owned pools, on-demand and spot pools without
	// scaling, the burst cloud), CostByPool. Its integral is the spend
	// series'.
	BillByPool map[string]float64 `json:"bill_by_pool"`
	// OwnedGPUs are the GPUs of the nodes the queue is placed on, at the
	// end of the run (nodes added during it included).
	OwnedGPUs float64 `json:"owned_gpus"`
	// Passes counts the scheduling passes run.
	Passes int `json:"passes"`
	// Scaling accounts for each cloud pool under pool scaling
	// (Config.Scale): its nodes' bill while up, idle time included, split
	// into what its jobs used and what stood idle.
	Scaling map[string]ScalePool `json:"scaling,omitempty"`
}

// Cut aggregates a subset of the measured jobs.
type Cut struct {
	Jobs     int     `json:"jobs"`
	WaitH    Stats   `json:"wait_h"`
	JCTH     Stats   `json:"jct_h"`
	GPUHours float64 `json:"gpu_hours"`
	Cost     float64 `json:"cost"`
}

// SizeBucket names a job's size by the GPUs it holds: "cpu" (none),
// "share" (less than one), "1", "2-4", "5-8", "9-64", ">64".
func SizeBucket(gpus float64) string {
	switch {
	case gpus == 0:
		return "cpu"
	case gpus < 1:
		return "share"
	case gpus <= 1:
		return "1"
	case gpus <= 4:
		return "2-4"
	case gpus <= 8:
		return "5-8"
	case gpus <= 64:
		return "9-64"
	}
	return ">64"
}

// cutAcc gathers one cut's values.
type cutAcc struct {
	jobs            int
	waits, jcts     []float64
	gpuHours, costs float64
}

func (c *cutAcc) add(f *figs) {
	c.jobs++
	if d, ok := f.wait(); ok {
		c.waits = append(c.waits, hours(d))
	}
	if d, ok := f.jct(); ok {
		c.jcts = append(c.jcts, hours(d))
	}
	c.gpuHours += f.gpuH
	c.costs += f.cost
}

func cutsOf(m map[string]*cutAcc, fs *floatSorter) map[string]Cut {
	out := make(map[string]Cut, len(m))
	for k, c := range m {
		out[k] = Cut{Jobs: c.jobs, WaitH: fs.stats(c.waits), JCTH: fs.stats(c.jcts), GPUHours: c.gpuHours, Cost: c.costs}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Result is a replay's outcome: the summary and every job's record, in
// submission order, and the series when asked for.
type Result struct {
	Summary Summary     `json:"summary"`
	Jobs    []JobRecord `json:"jobs"`
	Series  *Series     `json:"series,omitempty"`
}

// Series samples the state at every multiple of Step on the virtual clock,
// from the one at or before the first event to the last event (or the
// horizon). A sample shows the state after every event of its instant and
// of the instants before it.
type Series struct {
	Step int64 `json:"step_ns"`
	// Pools names the columns of Sample.Allocated: the fleet's pools.
	Pools   []string `json:"pools"`
	Samples []Sample `json:"samples"`
}

// Sample is the state at one instant.
type Sample struct {
	At int64 `json:"at_ns"`
	// Allocated are the GPUs held on each pool's nodes (Series.Pools order).
	Allocated []float64 `json:"allocated"`
	// Stranded are the idle GPUs of each pool's ready nodes that the
	// workload's typical tasks could not use (FRAG-METHOD §5, against the
	// workload's own task mix), Series.Pools order.
	Stranded []float64 `json:"stranded"`
	// Cloud are the GPUs running in the burst cloud, stints included.
	Cloud float64 `json:"cloud"`
	// Pending are the GPUs the queued jobs ask for.
	Pending float64 `json:"pending"`
	Running int     `json:"running"`
	Queued  int     `json:"queued"`
	// SpendPerHour is what the fleet costs per hour at this instant, as
	// BillByPool bills it: price × GPUs of the nodes up in pools under
	// scaling, of the nodes reserved in reserved pools, of the GPUs jobs
	// hold elsewhere, and of the burst cloud's running GPUs.
	SpendPerHour float64 `json:"spend_per_hour"`
}

// maxSamples bounds a series: a step far too small for the span is a
// mistake, not a wish for billions of rows.
const maxSamples = 10_000_000

// sampleUpTo appends the samples of every step boundary before limit (or
// at it, when inclusive), all showing the present state.
func (e *engine) sampleUpTo(limit int64, inclusive bool) error {
	step := e.cfg.SeriesStep
	if step <= 0 {
		return nil
	}
	if e.series == nil {
		e.series = &Series{Step: step}
		for _, p := range e.cfg.Pools {
			e.series.Pools = append(e.series.Pools, p.Name)
		}
		m := limit % step
		if m < 0 {
			m += step
		}
		e.nextSample = limit - m
	}
	if limit >= e.nextSample && (limit-e.nextSample)/step >= int64(maxSamples-len(e.series.Samples)) {
		return fmt.Errorf("series: more than %d samples; take a longer step", maxSamples)
	}
	var stranded []float64 // the same state for every sample of this call
	for e.nextSample < limit || (inclusive && e.nextSample == limit) {
		if stranded == nil {
			stranded = make([]float64, len(e.alloc))
			e.strand.measure(e, stranded)
		}
		sm := Sample{At: e.nextSample, Allocated: make([]float64, len(e.alloc)), Cloud: round6(e.inCloud),
			Pending: round6(e.pending), Running: e.running, Queued: e.queued, Stranded: slices.Clone(stranded)}
		for i, a := range e.alloc {
			sm.Allocated[i] = round6(a)
		}
		sm.SpendPerHour = round6(e.spendRate())
		e.series.Samples = append(e.series.Samples, sm)
		e.nextSample += step
	}
	return nil
}

// round6 rounds to a millionth, so that sums that went up and down by
// fractions show 0 rather than 1e-15.
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// window is the measurement window: jobs W ≤ i ≤ N − W are measured, over
// [submit of job W, submit of job N − W − 1].
type window struct {
	first, last int // measured job numbers, inclusive
	start, end  int64
}

// newWindow is the window of Config.Jobs, all known at the start.
func newWindow(e *engine) (window, error) {
	n, w := len(e.order), e.cfg.WarmupJobs
	if err := checkWindow(n, w); err != nil {
		return window{}, e.unfitNote(err)
	}
	return window{first: w, last: min(n-w, n-1), start: e.upcoming(w).Submit, end: e.upcoming(n - w - 1).Submit}, nil
}

// checkWindow checks that n jobs leave a window with w warm-up jobs.
func checkWindow(n, w int) error {
	if n == 0 {
		return fmt.Errorf("workload: no jobs")
	}
	if n-w-1 < w {
		return fmt.Errorf("workload: %d jobs leave no measurement window with %d warm-up jobs (need at least %d jobs)", n, w, 2*w+1)
	}
	return nil
}

// overlap is the length of [a, b] within the window, in hours.
func (w *window) overlap(a, b int64) float64 {
	lo, hi := max(a, w.start), min(b, w.end)
	if hi <= lo {
		return 0
	}
	return hours(hi - lo)
}

// utilAcc sums GPU-hours within the window: on owned nodes (cluster) and
// everywhere (system).
type utilAcc struct {
	cluster, system float64
}

// cutAccs makes the accumulators of the cuts that measured jobs fall in,
// by tenant, size and pool, their lists sized by a first pass over the
// measured jobs (no growth, which at a million jobs costs as much again).
// accs finds them by a job's figures: tenant, then len(tenants) + size,
// then len(tenants) + len(sizeBuckets) + pool + 1.
func (e *engine) cutAccs() (tenants, sizes, pools map[string]*cutAcc, accs []*cutAcc) {
	nT, nS := len(e.tenants), len(sizeBuckets)
	count := make([]int, nT+nS+len(e.cfg.Pools)+1)
	for i := e.win.first; i <= e.win.last; i++ {
		r := e.figs.at(i)
		count[r.tenant]++
		count[nT+int(r.size)]++
		count[nT+nS+int(r.pool)+1]++
	}
	tenants, sizes, pools = map[string]*cutAcc{}, map[string]*cutAcc{}, map[string]*cutAcc{}
	accs = make([]*cutAcc, len(count))
	for i, n := range count {
		if n == 0 {
			continue
		}
		m, k := pools, "-"
		switch {
		case i < nT:
			m, k = tenants, orDash(e.tenants[i])
		case i < nT+nS:
			m, k = sizes, sizeBuckets[i-nT]
		case i > nT+nS:
			k = orDash(e.cfg.Pools[i-nT-nS-1].Name)
		}
		c, ok := m[k] // "" and "-" are one cut
		if !ok {
			c = &cutAcc{}
			m[k] = c
		}
		c.jobs += n // the capacity for now; add counts the jobs again
		accs[i] = c
	}
	for _, m := range []map[string]*cutAcc{tenants, sizes, pools} {
		for _, c := range m {
			c.waits, c.jcts = make([]float64, 0, c.jobs), make([]float64, 0, c.jobs)
			c.jobs = 0
		}
	}
	return tenants, sizes, pools, accs
}

func (e *engine) result() *Result {
	e.flushFigs()
	for k, sl := range e.slot { // the jobs still live at the end
		if sl >= 0 {
			j := e.live.at(int(sl))
			e.setFigs(k, e.figs.at(k), &j.rec, j.poolAt)
			if e.keep {
				e.recs[k] = j.rec
			}
		}
	}
	s := Summary{Total: e.figs.n, Passes: e.passes, Unfit: e.unfit, UnfitJobs: e.unfitJobs}
	var milli int64
	for n := range e.m.Cluster().NumNodes() {
		milli += e.m.Cluster().Usage(nodeIDOf(n)).GPUCap
	}
	s.OwnedGPUs = float64(milli) / 1000
	w := e.win
	s.WindowStartH, s.WindowEndH = hours(w.start), hours(w.end)
	T := hours(w.end - w.start)
	s.WindowH = T
	measured := w.last - w.first + 1
	waits, jcts, slows := make([]float64, 0, measured), make([]float64, 0, measured), make([]float64, 0, measured)
	tenants, sizes, pools, accs := e.cutAccs()
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	nT, nS := len(e.tenants), len(sizeBuckets)
	for i := range e.figs.n {
		r := e.figs.at(i)
		first = min(first, r.submit)
		switch recStates[r.state] {
		case "ended":
			s.Ended++
			last = max(last, r.end)
		case "running":
			s.Running++
		case "queued":
			s.Queued++
		case "cloud":
			s.InCloud++
		default:
			s.Future++
		}
		if i < w.first || i > w.last {
			continue
		}
		s.Jobs++
		accs[r.tenant].add(r)
		accs[nT+int(r.size)].add(r)
		accs[nT+nS+int(r.pool)+1].add(r)
		if r.cloud {
			s.CloudJobs++
		}
		m := e.moreOf(i, r)
		s.CloudCost += m.cloudCost // Star-Wait's paid stints of on-prem jobs too
		if d, ok := r.wait(); ok {
			waits = append(waits, hours(d))
		}
		if d, ok := r.jct(); ok {
			jcts = append(jcts, hours(d))
		}
		if x, ok := r.slowdown(); ok {
			slows = append(slows, x)
		}
		s.Preemptions += int(m.preempt)
		s.Restarts += int(m.restarts)
		s.GPUHours += r.gpuH
		s.LostGPUHours += m.lostH
		s.Cost += r.cost
	}
	var fs floatSorter
	s.WaitH, s.JCTH, s.Slowdown = fs.stats(waits), fs.stats(jcts), fs.stats(slows)
	s.ByTenant, s.BySize, s.ByPool = cutsOf(tenants, &fs), cutsOf(sizes, &fs), cutsOf(pools, &fs)
	s.CostByPool = make(map[string]float64, len(e.cfg.Pools))
	for i, p := range e.cfg.Pools {
		s.CostByPool[p.Name] = e.poolCost[i]
	}
	if e.sc != nil {
		s.Scaling = e.sc.accounts(e)
	}
	s.BillByPool = e.billByPool()
	s.AvgWaitH, s.AvgJCTH = s.WaitH.Mean, s.JCTH.Mean
	s.P90JCTH, s.P99JCTH = s.JCTH.P90, s.JCTH.P99
	if T > 0 {
		s.AvgCloudCost = s.CloudCost / T
		// GPU-hours of owned capacity in the window: the GPUs there from
		// the start over all of it, added ones from when they came.
		added := 0.0
		for _, a := range e.addedAt {
			added += a.gpus * w.overlap(a.at, w.end)
		}
		if capH := (s.OwnedGPUs-e.addedGPUs)*T + added; capH > 0 {
			s.ClusterUtilization = e.util.cluster / capH
			s.SystemUtilization = e.util.system / capH
		}
	}
	if last >= first {
		s.MakespanH = hours(last - first)
	}
	return &Result{Summary: s, Jobs: e.recs, Series: e.series}
}
