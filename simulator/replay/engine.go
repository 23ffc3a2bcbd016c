package replay

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

	"petite/scheduler"
	"petite/scheduler/state"
)

// status is where a job stands in the replay.
type status uint8

const (
	stFuture  status = iota // not submitted yet
	stQueued                // in the owned queue
	stRunning               // placed on owned nodes
	stCloud                 // running in the cloud
	stStint                 // Star-Wait's stint in the cloud, coming back
	stDone                  // ended
)

// jobState is the engine's book on one job.
type jobState struct {
	src      *Job
	gpus     float64 // GPUs the job holds while running (all tasks)
	status   status
	epoch    uint32     // moves on at every requeue, so older finishes go stale
	work     int64      // training work left (nanoseconds)
	done     int64      // training work saved by checkpoints
	runStart int64      // start of the current owned run
	overhead int64      // restart time at the head of the current run
	shares   []PoolGPUs // the GPUs of the current owned run, by pool
	costFrom int64      // the run's cost is booked up to here
	// Star-Wait's stint: its cost so far (paid if the job then runs on
	// owned nodes) and its end.
	stintCost float64
	stintEnd  int64
	started   bool // a service's lifetime runs from its first start
	returned  bool // back from a Star-Wait stint (its machine id changed)
}

// engine is one replay in progress.
type engine struct {
	cfg        *Config
	m          *state.Machine
	pol        *scheduler.Policy
	rng        *rand.Rand
	q          queue
	jobs       []jobState
	recs       []JobRecord
	order      []int // job numbers in submission order
	width      int   // digits of the machine ids
	price      map[string]float64
	poolOf     map[string]string // node name → pool name
	kind       map[string]scheduler.PoolKind
	normCPU    int64 // under bursting, every owned node's CPU and memory
	normMem    int64
	added      float64 // GPU-hours of capacity added within the window
	addedGPUs  float64 // GPUs added during the run
	cloud      float64 // price per GPU-hour of the burst pool
	cloudAt    string  // the burst pool's name
	win        window
	util       utilAcc
	queued     int
	running    int
	pending    float64   // GPUs the queued jobs ask for
	inCloud    float64   // GPUs running in the burst cloud (stints included)
	alloc      []float64 // GPUs held per pool, in fleet order
	poolIdx    map[string]int
	series     *Series
	nextSample int64
	lastT      int64 // the last instant applied
	ended      int
	pruneAt    int
	topUp      bool
	passes     int
	log        func(Event)
}

// Run replays a workload over a fleet and returns the per-job records and
// the summary. It is deterministic: the same Config gives the same Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	e, err := newEngine(&cfg)
	if err != nil {
		return nil, err
	}
	if err := e.run(ctx); err != nil {
		return nil, err
	}
	return e.result(), nil
}

func newEngine(cfg *Config) (*engine, error) {
	if cfg.Policy == "" {
		cfg.Policy = "best-fit"
	}
	if cfg.WarmupJobs < 0 {
		return nil, fmt.Errorf("warmup jobs %d: must not be negative", cfg.WarmupJobs)
	}
	if cfg.Checkpoint.Interval < 0 || cfg.Checkpoint.Restart < 0 {
		return nil, fmt.Errorf("checkpoint: interval and restart must not be negative")
	}
	if cfg.Horizon < 0 {
		return nil, fmt.Errorf("horizon: must not be negative")
	}
	e := &engine{cfg: cfg, m: state.New(), price: map[string]float64{}, poolOf: map[string]string{}, log: cfg.Observe}
	e.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed5eed5eed5eed))
	if err := e.buildFleet(); err != nil {
		return nil, err
	}
	pol, err := e.m.Cluster().NewPolicy(cfg.Policy, cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	e.pol = pol
	// The fleet as it will grow: a job fits if some node it will ever have
	// could hold it.
	grown := e.m.Cluster().Clone()
	added := map[string]bool{}
	cfg.NodeEvents = slices.Clone(cfg.NodeEvents) // Add is rewritten below: not the caller's
	for i := range cfg.NodeEvents {
		ne := &cfg.NodeEvents[i]
		if ne.Add == nil {
			continue
		}
		if ne.Add.Name != ne.Node {
			return nil, fmt.Errorf("node event %d: field node: %q is not the added node's name %q", i, ne.Node, ne.Add.Name)
		}
		if _, ok := e.price[ne.Add.Pool]; !ok {
			return nil, fmt.Errorf("node event %d: field add.pool: unknown pool %q", i, ne.Add.Pool)
		}
		if _, dup := e.poolOf[ne.Node]; dup || added[ne.Node] {
			return nil, fmt.Errorf("node event %d: field add.name: node %q is already in the fleet", i, ne.Node)
		}
		if e.cfg.Burst != nil {
			if e.kind[ne.Add.Pool] == scheduler.PoolCloud {
				return nil, fmt.Errorf("node event %d: field add.pool: the burst method's cloud pool %q is unlimited; add owned nodes", i, ne.Add.Pool)
			}
			n := *ne.Add
			n.CPUMilli, n.MemoryMiB = e.normCPU, e.normMem
			ne.Add = &n
		}
		if _, err := grown.AddNode(*ne.Add); err != nil {
			return nil, fmt.Errorf("node event %d: field add: %w", i, err)
		}
		added[ne.Node] = true
	}
	if err := e.buildJobs(grown); err != nil {
		return nil, err
	}
	w, err := newWindow(e)
	if err != nil {
		return nil, err
	}
	e.win = w
	for i, ne := range cfg.NodeEvents {
		if _, ok := e.poolOf[ne.Node]; !ok && !added[ne.Node] {
			return nil, fmt.Errorf("node event %d: field node: unknown node %q", i, ne.Node)
		}
		e.q.push(item{at: ne.At, phase: phaseNode, job: int32(i)})
	}
	for i, pe := range cfg.PriceEvents {
		if _, ok := e.price[pe.Pool]; !ok {
			return nil, fmt.Errorf("price event %d: field pool: unknown pool %q", i, pe.Pool)
		}
		if pe.PricePerGPUHour < 0 || math.IsNaN(pe.PricePerGPUHour) || math.IsInf(pe.PricePerGPUHour, 0) {
			return nil, fmt.Errorf("price event %d: field price_per_gpu_hour: want a finite number ≥ 0, got %v", i, pe.PricePerGPUHour)
		}
		e.q.push(item{at: pe.At, phase: phaseNode, job: int32(i), price: true})
	}
	return e, nil
}

// buildFleet registers the pools and nodes with the state machine. Under the
// burst method only owned pools hold nodes: the cloud pool is a place to
// spill to, never placed on from the queue, and CPU and memory play no part,
// so every owned node is given the same (the largest) and best fit ranks
// nodes by free GPUs alone.
func (e *engine) buildFleet() error {
	burst := e.cfg.Burst != nil
	cloudPool := -1
	for i, p := range e.cfg.Pools {
		if _, err := e.m.Apply(state.RegisterPool{Pool: p}); err != nil {
			return fmt.Errorf("fleet: pool %s: %w", p.Name, err)
		}
		if burst && p.Kind == scheduler.PoolCloud && (cloudPool < 0 || p.PricePerGPUHour < e.cfg.Pools[cloudPool].PricePerGPUHour) {
			cloudPool = i
		}
	}
	kind := map[string]scheduler.PoolKind{}
	e.poolIdx = map[string]int{}
	e.alloc = make([]float64, len(e.cfg.Pools))
	for i, p := range e.cfg.Pools {
		e.poolIdx[p.Name] = i
		kind[p.Name] = p.Kind
		e.price[p.Name] = p.PricePerGPUHour
	}
	e.kind = kind
	if burst {
		if cloudPool < 0 {
			return errors.New("fleet: the burst method needs a cloud pool to spill to; the fleet has none")
		}
		p := e.cfg.Pools[cloudPool]
		if p.ProvisionDelaySec != 0 {
			return fmt.Errorf("fleet: pool %s: provision_delay_sec %d: the burst method's cloud starts jobs at once; provisioning delays come with pool scaling", p.Name, p.ProvisionDelaySec)
		}
		e.cloud, e.cloudAt = p.PricePerGPUHour, p.Name
	}
	var cpu, mem int64
	for _, n := range e.cfg.Nodes {
		cpu, mem = max(cpu, n.CPUMilli), max(mem, n.MemoryMiB)
	}
	e.normCPU, e.normMem = cpu, mem
	owned := 0
	for _, n := range e.cfg.Nodes {
		if burst {
			if k, ok := kind[n.Pool]; ok && !k.Owned() {
				continue
			}
			n.CPUMilli, n.MemoryMiB = cpu, mem
		}
		if _, err := e.m.Apply(state.RegisterNode{Node: n}); err != nil {
			return fmt.Errorf("fleet: node %s: %w", n.Name, err)
		}
		id, _ := e.m.Cluster().NodeByName(n.Name)
		e.poolOf[n.Name] = e.m.Cluster().PoolOf(id).Name
		owned++
	}
	if owned == 0 && !slices.ContainsFunc(e.cfg.NodeEvents, func(ne NodeEvent) bool { return ne.Add != nil }) {
		return errors.New("fleet: no node to place jobs on")
	}
	return nil
}

// buildJobs numbers the jobs in submission order and checks each fits an
// empty node.
func (e *engine) buildJobs(grown *scheduler.Cluster) error {
	n := len(e.cfg.Jobs)
	e.order = make([]int, n)
	for i := range e.order {
		e.order[i] = i
	}
	slices.SortStableFunc(e.order, func(a, b int) int { return cmp.Compare(e.cfg.Jobs[a].Submit, e.cfg.Jobs[b].Submit) })
	e.width = len(strconv.Itoa(max(n-1, 0)))
	e.jobs = make([]jobState, n)
	e.recs = make([]JobRecord, n)
	fits := newFitCache(grown)
	for k, i := range e.order {
		src := &e.cfg.Jobs[i]
		where := src.Source
		if where == "" {
			where = "job " + src.Job.ID
		}
		if src.Duration < 0 {
			return fmt.Errorf("%s: field duration: %d ns is negative", where, src.Duration)
		}
		j := &e.jobs[k]
		j.src = src
		if e.cfg.Burst != nil {
			t := src.Job.Task
			if src.Job.Count != 1 || t.GPUs < 1 || (t.GPUMilli != 0 && t.GPUMilli != 1000) {
				return fmt.Errorf("%s: the burst method replays jobs of one task of whole GPUs (count 1, gpus ≥ 1); this one has count %d, gpus %d, gpu_milli %d", where, src.Job.Count, t.GPUs, t.GPUMilli)
			}
		}
		job := e.coreJob(k, src.Submit)
		if err := job.Validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		ok, err := fits.fits(&job.Task)
		if err != nil {
			return fmt.Errorf("%s: field task: %w", where, err)
		}
		if !ok {
			return fmt.Errorf("%s: a task of %d GPUs (%d milli each, %d milli-CPU, %d MiB) fits no empty node of the fleet", where, job.Task.GPUs, job.Task.GPUMilli, job.Task.CPUMilli, job.Task.MemoryMiB)
		}
		j.gpus = float64(job.GPUMilliTotal()) / 1000
		j.work = src.Duration
		e.recs[k] = JobRecord{Index: k, ID: src.Job.ID, Kind: src.Job.Kind.String(), Tenant: src.Job.Tenant,
			GPUs: j.gpus, Submit: src.Submit, Start: -1, End: -1, Duration: src.Duration, State: "future"}
	}
	return nil
}

// coreJob is job k as the state machine gets it: its id is its number
// (zero-padded, so the core's FIFO tie-break on ids keeps submission order).
// Under the burst method every job is alike but for its GPUs: one tenant, no
// priority, no CPU, memory, model or label demand.
func (e *engine) coreJob(k int, at int64) scheduler.Job {
	src := &e.jobs[k].src.Job
	j := *src
	j.ID = e.machineID(k)
	j.Walltime = (e.jobs[k].src.Duration + Second - 1) / Second
	if e.cfg.Burst != nil {
		j = scheduler.Job{ID: j.ID, Kind: scheduler.Training, Count: 1, Walltime: j.Walltime,
			Task: scheduler.Task{GPUs: src.Task.GPUs, GPUMilli: 1000}}
	}
	if e.cfg.Queue == QueueFIFOSkip {
		// A tenant per job, so that a blocked job blocks only itself; the
		// core takes tenants of equal share by name, so the name orders as
		// the queue does: submission second (sign-flipped so that it sorts
		// as an unsigned number), then id.
		j.Tenant = fmt.Sprintf("%016x/%s", uint64(seconds(at))^(1<<63), j.ID)
	}
	return j
}

func (e *engine) machineID(k int) string {
	s := strconv.Itoa(k)
	for len(s) < e.width {
		s = "0" + s
	}
	if e.jobs[k].returned {
		// resubmitted: a new id, after every first submission of the same
		// second in the core's FIFO tie-break
		s = "r" + s
	}
	return s
}

func (e *engine) number(id string) (int, error) {
	k, err := strconv.Atoi(strings.TrimPrefix(id, "r"))
	if err != nil || k < 0 || k >= len(e.jobs) {
		return 0, fmt.Errorf("replay: the state machine names job %q, which the replay did not submit", id)
	}
	return k, nil
}

// run is the event loop: instant after instant, apply every event of the
// instant in phase order, then one pass if something changed. Events that a
// step creates at the same instant (a job of duration zero ends where it
// starts; a zero budget expires where it arrives) are applied in a further
// step at that instant, after the pass.
func (e *engine) run(ctx context.Context) error {
	next := 0 // the next arrival, in submission order
	var batch []item
	var nextTick int64 // PassEvery's clock
	ticking := false
	for steps := 0; ; steps++ {
		if steps%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
		}
		t, ok := e.q.next()
		if next < len(e.jobs) && (!ok || e.jobs[next].src.Submit < t) {
			t, ok = e.jobs[next].src.Submit, true
		}
		tick := false
		if every := e.cfg.PassEvery; ok && every > 0 {
			if !ticking {
				nextTick, ticking = t, true
			}
			if nextTick <= t {
				t, tick = nextTick, true
				nextTick += every
			}
		}
		if !ok || (e.cfg.Horizon > 0 && t > e.cfg.Horizon) {
			break
		}
		if err := e.sampleUpTo(t, false); err != nil {
			return err
		}
		e.lastT = t
		batch = batch[:0]
		for !e.q.empty() && e.q.h[0].at == t {
			batch = append(batch, e.q.pop())
		}
		changed := false
		returns := len(batch)
		for i, it := range batch {
			if it.phase == phaseReturn {
				returns = i
				break
			}
			c, err := e.apply(it, t)
			if err != nil {
				return err
			}
			changed = changed || c
		}
		for next < len(e.jobs) && e.jobs[next].src.Submit == t {
			if err := e.arrive(next, t); err != nil {
				return err
			}
			next++
			changed = true
			if e.cfg.Progress != nil && next%1024 == 0 {
				e.cfg.Progress(next, len(e.jobs))
			}
		}
		for _, it := range batch[returns:] {
			if err := e.comeBack(int(it.job), t); err != nil {
				return err
			}
			changed = true
		}
		if tick || (changed && (e.queued > 0 || e.topUp)) {
			if err := e.pass(t); err != nil {
				return err
			}
		}
	}
	end := e.lastT
	if e.cfg.Horizon > 0 {
		end = e.cfg.Horizon
	}
	if err := e.sampleUpTo(end, true); err != nil {
		return err
	}
	e.stop()
	if e.cfg.Progress != nil {
		e.cfg.Progress(next, len(e.jobs))
	}
	return nil
}

func (e *engine) emit(ev Event) {
	if e.log != nil {
		e.log(ev)
	}
}

func (e *engine) arrive(k int, t int64) error {
	j := &e.jobs[k]
	job := e.coreJob(k, t)
	if _, err := e.m.Apply(state.Submit{Job: job, At: seconds(t)}); err != nil {
		return fmt.Errorf("replay: submit %s: %w", j.src.Source, err)
	}
	e.setStatus(k, stQueued)
	e.recs[k].State = "queued"
	e.emit(Event{At: t, Kind: EventArrive, Job: k, ID: j.src.Job.ID})
	if e.cfg.Burst != nil {
		e.q.push(item{at: t + e.cfg.Burst.Wait.budget(j.src, j.gpus), phase: phaseExpire, job: int32(k)})
	}
	return nil
}

// apply applies one event of the heap; changed says whether the owned
// cluster or its queue changed.
func (e *engine) apply(it item, t int64) (bool, error) {
	switch {
	case it.price:
		e.priceEvent(int(it.job), t)
		return false, nil
	case it.phase == phaseNode:
		return e.nodeEvent(int(it.job), t)
	case it.phase == phaseExpire:
		return e.expire(int(it.job), t)
	}
	k := int(it.job)
	j := &e.jobs[k]
	if it.cloud {
		e.setStatus(k, stDone)
		e.ended++
		r := &e.recs[k]
		r.End, r.State = t, "ended"
		e.emit(Event{At: t, Kind: EventCloudEnd, Job: k, ID: j.src.Job.ID})
		return false, nil
	}
	if it.epoch != j.epoch || j.status == stDone || j.status == stCloud {
		return false, nil // stale: the job was requeued since
	}
	id := e.machineID(k)
	var err error
	if j.status == stQueued { // a service that lost every replica ends queued
		_, err = e.m.Apply(state.Cancel{Job: id, At: seconds(t)})
	} else {
		e.closeRun(k, t)
		_, err = e.m.Apply(state.Finish{Job: id, At: seconds(t)})
	}
	if err != nil {
		return false, fmt.Errorf("replay: finish %s: %w", j.src.Job.ID, err)
	}
	e.setStatus(k, stDone)
	e.ended++
	r := &e.recs[k]
	r.End, r.State = t, "ended"
	e.emit(Event{At: t, Kind: EventFinish, Job: k, ID: j.src.Job.ID})
	e.prune(t)
	return true, nil
}

// prune lets the state machine forget ended jobs once they outnumber the
// live ones, so its table stays as large as the live work (amortised O(1)).
func (e *engine) prune(t int64) {
	if e.ended-e.pruneAt < 4096 || e.ended-e.pruneAt < e.m.NumJobs()/2 {
		return
	}
	// Prune forgets jobs that ended strictly before its time; the engine
	// keeps its own records, so nothing is lost.
	_, _ = e.m.Apply(state.Prune{Before: seconds(t)})
	e.pruneAt = e.ended
}

func (e *engine) expire(k int, t int64) (bool, error) {
	j := &e.jobs[k]
	if j.status != stQueued {
		return false, nil
	}
	if _, err := e.m.Apply(state.Cancel{Job: e.machineID(k), At: seconds(t)}); err != nil {
		return false, fmt.Errorf("replay: send %s to the cloud: %w", j.src.Job.ID, err)
	}
	if w := e.cfg.Burst.Wait; w.Kind == WaitStar && !j.returned && j.src.Duration > w.L {
		// Star-Wait: a stint of L in the cloud, then back to the queue
		// once. Its cost is booked when it is known whether it counts.
		e.setStatus(k, stStint)
		j.stintCost, j.stintEnd = e.cloud*j.gpus*hours(w.L), t+w.L
		e.recs[k].State = "cloud"
		e.emit(Event{At: t, Kind: EventStint, Job: k, ID: j.src.Job.ID})
		e.q.push(item{at: t + w.L, phase: phaseReturn, job: int32(k)})
		return true, nil
	}
	e.setStatus(k, stCloud)
	j.runStart = t
	r := &e.recs[k]
	r.Start, r.Where, r.State, r.Pool = t, "cloud", "cloud", e.cloudAt
	d := j.src.Duration
	r.GPUHours += j.gpus * hours(d)
	c := e.cloud * j.gpus * hours(d)
	r.Cost += c
	r.CloudCost += c
	e.util.system += j.gpus * e.win.overlap(t, t+d)
	e.emit(Event{At: t, Kind: EventCloud, Job: k, ID: j.src.Job.ID})
	e.q.push(item{at: t + d, phase: phaseFinish, job: int32(k), cloud: true})
	return true, nil
}

// comeBack resubmits a job back from its Star-Wait stint, under a new id,
// with its second budget.
func (e *engine) comeBack(k int, t int64) error {
	j := &e.jobs[k]
	j.returned = true
	if _, err := e.m.Apply(state.Submit{Job: e.coreJob(k, t), At: seconds(t)}); err != nil {
		return fmt.Errorf("replay: resubmit %s: %w", j.src.Job.ID, err)
	}
	e.setStatus(k, stQueued)
	e.recs[k].State = "queued"
	e.emit(Event{At: t, Kind: EventReturn, Job: k, ID: j.src.Job.ID})
	e.q.push(item{at: t + e.cfg.Burst.Wait.returnBudget(j.src, j.gpus, t), phase: phaseExpire, job: int32(k)})
	return nil
}

func (e *engine) nodeEvent(i int, t int64) (bool, error) {
	ne := e.cfg.NodeEvents[i]
	if ne.Add != nil {
		if _, err := e.m.Apply(state.RegisterNode{Node: *ne.Add}); err != nil {
			return false, fmt.Errorf("replay: node event %d: add %s: %w", i, ne.Node, err)
		}
		e.poolOf[ne.Node] = ne.Add.Pool
		id, _ := e.m.Cluster().NodeByName(ne.Node)
		gpus := float64(e.m.Cluster().Usage(id).GPUCap) / 1000
		e.addedGPUs += gpus
		e.added += gpus * e.win.overlap(t, e.win.end)
		e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: ne.Node, Node: ne.Node, State: "added"})
	}
	res, err := e.m.Apply(state.SetNodeState{Node: ne.Node, State: ne.State, At: seconds(t)})
	if err != nil {
		return false, fmt.Errorf("replay: node event %d: %w", i, err)
	}
	if !res.Changed {
		return false, nil
	}
	e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: ne.Node, Node: ne.Node, State: ne.State.String()})
	if err := e.requeued(res.Requeued, t); err != nil {
		return false, err
	}
	for _, id := range res.Degraded {
		k, err := e.number(id)
		if err != nil {
			return false, err
		}
		e.topUp = true
		e.emit(Event{At: t, Kind: EventDegrade, Job: k, ID: e.jobs[k].src.Job.ID})
	}
	return true, nil
}

// priceEvent changes a pool's price: owned runs on it are booked up to now
// at the old price, and the cloud runs and stints still to come are
// re-priced for what remains of them (they were booked in advance). It
// visits every job: price changes are rare.
func (e *engine) priceEvent(i int, t int64) {
	pe := e.cfg.PriceEvents[i]
	old, now := e.price[pe.Pool], pe.PricePerGPUHour
	e.emit(Event{At: t, Kind: EventPrice, Job: -1, ID: pe.Pool, State: strconv.FormatFloat(now, 'g', -1, 64)})
	if old == now {
		return
	}
	cloud := pe.Pool == e.cloudAt
	for k := range e.jobs {
		j := &e.jobs[k]
		r := &e.recs[k]
		switch {
		case j.status == stRunning && slices.ContainsFunc(j.shares, func(p PoolGPUs) bool { return p.Pool == pe.Pool }):
			r.Cost += e.runCost(j, t) // at the prices until now
			j.costFrom = t
		case j.status == stCloud && cloud:
			d := (now - old) * j.gpus * hours(max(0, j.runStart+j.src.Duration-t))
			r.Cost += d
			r.CloudCost += d
		case j.status == stStint && cloud:
			j.stintCost += (now - old) * j.gpus * hours(max(0, j.stintEnd-t))
		}
	}
	e.price[pe.Pool] = now
	if cloud {
		e.cloud = now
	}
}

// requeued books jobs sent back to the queue: training keeps the work up to
// its last checkpoint, the rest of the run is lost; a service keeps its
// lifetime.
func (e *engine) requeued(ids []string, t int64) error {
	for _, id := range ids {
		k, err := e.number(id)
		if err != nil {
			return err
		}
		j := &e.jobs[k]
		if j.status != stRunning {
			return fmt.Errorf("replay: job %s requeued but not running", j.src.Job.ID)
		}
		ran := t - j.runStart
		e.closeRun(k, t)
		r := &e.recs[k]
		r.Preemptions++
		if j.src.Job.Kind == scheduler.Training {
			useful := max(0, ran-j.overhead)
			saved := int64(0)
			if iv := e.cfg.Checkpoint.Interval; iv > 0 {
				saved = (j.done+useful)/iv*iv - j.done
			}
			r.LostGPUHours += j.gpus * hours(ran-saved)
			j.done += saved
			j.work = j.src.Duration - j.done
			j.epoch++
		}
		e.setStatus(k, stQueued)
		r.State = "queued"
		e.emit(Event{At: t, Kind: EventRequeue, Job: k, ID: j.src.Job.ID})
	}
	return nil
}

// setStatus moves job k to st, keeping the counts of queued and running
// jobs, pending GPUs and GPUs in the burst cloud.
func (e *engine) setStatus(k int, st status) {
	j := &e.jobs[k]
	e.count(j.status, -1, j.gpus) // leave the old status first, always
	e.count(st, 1, j.gpus)
	j.status = st
}

func (e *engine) count(s status, sign int, gpus float64) {
	switch s {
	case stQueued:
		e.queued += sign
		e.pending += float64(sign) * gpus
	case stRunning:
		e.running += sign
	case stCloud, stStint:
		e.inCloud += float64(sign) * gpus
	}
}

// closeRun books the owned run of job k that ends at t.
func (e *engine) closeRun(k int, t int64) {
	j := &e.jobs[k]
	r := &e.recs[k]
	d := t - j.runStart
	r.GPUHours += j.gpus * hours(d)
	r.Cost += e.runCost(j, t)
	j.costFrom = t
	for _, p := range j.shares {
		e.alloc[e.poolIdx[p.Pool]] -= p.GPUs
	}
	if e.cfg.RecordRuns {
		r.Runs[len(r.Runs)-1].End = t
	}
	o := j.gpus * e.win.overlap(j.runStart, t)
	e.util.cluster += o
	e.util.system += o
}

// runCost is the cost of job j's owned run from costFrom to t at the
// pools' present prices.
func (e *engine) runCost(j *jobState, t int64) float64 {
	c := 0.0
	for _, p := range j.shares {
		c += e.price[p.Pool] * p.GPUs * hours(t-j.costFrom)
	}
	return c
}

// share splits a job's GPUs over the pools its tasks were placed in.
func (e *engine) share(j *jobState, tasks []scheduler.TaskPlacement) {
	j.shares = j.shares[:0]
	var total int64
	for _, tp := range tasks {
		pool := e.poolOf[tp.Node]
		m := int64(len(tp.GPUs)) * int64(tp.GPUMilli)
		total += m
		i := slices.IndexFunc(j.shares, func(p PoolGPUs) bool { return p.Pool == pool })
		if i < 0 {
			j.shares = append(j.shares, PoolGPUs{Pool: pool})
			i = len(j.shares) - 1
		}
		j.shares[i].GPUs += float64(m)
	}
	for i := range j.shares {
		if total > 0 {
			j.shares[i].GPUs *= j.gpus / float64(total)
		}
	}
}

// pass runs one scheduling pass on a frozen copy of the state and applies
// its plan through the state machine.
func (e *engine) pass(t int64) error {
	e.passes++
	in := scheduler.Pass{Now: seconds(t), Policy: e.pol, Rng: e.rng,
		Backfill: e.cfg.Queue == QueueBackfill, Preempt: e.cfg.Preempt}
	if e.cfg.Queue == QueueFIFOSkip {
		// one decision per queued job: the whole queue is looked at
		in.Limits.Decisions = max(scheduler.DefaultDecisions, e.queued+1)
	}
	plan, err := e.m.Plan(in)
	if err != nil {
		return fmt.Errorf("replay: pass at %d ns: %w", t, err)
	}
	if plan.Empty() {
		return e.checkTopUp()
	}
	res, err := e.m.Apply(state.PlanCommand(plan, seconds(t)))
	if err != nil {
		return fmt.Errorf("replay: apply the plan at %d ns: %w", t, err)
	}
	if err := e.requeued(res.Requeued, t); err != nil {
		return err
	}
	started := 0
	for _, jp := range plan.Place {
		k, err := e.number(jp.Job)
		if err != nil {
			return err
		}
		if e.jobs[k].status != stQueued { // lost replicas of a running service put back
			e.emit(Event{At: t, Kind: EventReplace, Job: k, ID: e.jobs[k].src.Job.ID, Node: jp.Tasks[0].Node})
			continue
		}
		e.start(k, t, jp.Tasks)
		started++
	}
	if started != len(res.Started) {
		return fmt.Errorf("replay: the plan at %d ns started %d jobs, the state machine %d", t, started, len(res.Started))
	}
	return e.checkTopUp()
}

func (e *engine) start(k int, t int64, tasks []scheduler.TaskPlacement) {
	j := &e.jobs[k]
	r := &e.recs[k]
	node := tasks[0].Node
	e.setStatus(k, stRunning)
	j.runStart, j.costFrom = t, t
	e.share(j, tasks)
	for _, p := range j.shares {
		e.alloc[e.poolIdx[p.Pool]] += p.GPUs
	}
	if e.cfg.RecordRuns {
		r.Runs = append(r.Runs, Segment{Start: t, End: -1, Pools: slices.Clone(j.shares)})
	}
	if r.Start < 0 {
		r.Start, r.Where = t, "onprem"
		best := 0
		for i, p := range j.shares {
			if p.GPUs > j.shares[best].GPUs {
				best = i
			}
		}
		r.Pool = j.shares[best].Pool
		if j.returned { // Star-Wait: the stint in the cloud is paid for
			r.Cost += j.stintCost
			r.CloudCost += j.stintCost
			r.GPUHours += j.gpus * hours(e.cfg.Burst.Wait.L)
		}
	}
	r.State = "running"
	j.overhead = 0
	if r.Preemptions > 0 {
		r.Restarts++
		if j.src.Job.Kind == scheduler.Training {
			j.overhead = e.cfg.Checkpoint.Restart
		}
	}
	e.emit(Event{At: t, Kind: EventStart, Job: k, ID: j.src.Job.ID, Node: node})
	switch {
	case j.src.Job.Kind == scheduler.Training:
		e.q.push(item{at: t + j.overhead + j.work, phase: phaseFinish, job: int32(k), epoch: j.epoch})
	case !j.started:
		e.q.push(item{at: t + j.src.Duration, phase: phaseFinish, job: int32(k), epoch: j.epoch})
	}
	j.started = true
}

// checkTopUp clears the top-up flag once no running service misses a
// replica, so that passes run again only when something changes.
func (e *engine) checkTopUp() error {
	if !e.topUp {
		return nil
	}
	for _, rj := range e.m.Running() {
		if rj.Job.Kind == scheduler.Inference && len(rj.Tasks) < rj.Job.Count {
			return nil
		}
	}
	e.topUp = false
	return nil
}

// stop closes the books at the end of the run: at the horizon, running jobs
// are counted up to it.
func (e *engine) stop() {
	if e.cfg.Horizon == 0 {
		return
	}
	for k := range e.jobs {
		if e.jobs[k].status == stRunning {
			e.closeRun(k, e.cfg.Horizon)
			e.jobs[k].runStart = e.cfg.Horizon
			if e.cfg.RecordRuns {
				e.recs[k].Runs[len(e.recs[k].Runs)-1].End = -1 // still running
			}
		}
	}
}

// fitCache answers "does a task of this demand fit some empty node?" once
// per distinct demand.
type fitCache struct {
	c    *scheduler.Cluster
	memo map[fitKey]bool
}

// fitKey is a task's demand; models, constraints and residency, rare in
// traces, are spelled out in extra.
type fitKey struct {
	gpus, milli int
	cpu, mem    int64
	extra       string
}

func newFitCache(c *scheduler.Cluster) *fitCache {
	return &fitCache{c: c, memo: map[fitKey]bool{}}
}

func (f *fitCache) fits(t *scheduler.Task) (bool, error) {
	key := fitKey{gpus: t.GPUs, milli: t.GPUMilli, cpu: t.CPUMilli, mem: t.MemoryMiB}
	if len(t.Models)+len(t.Constraints)+len(t.Residency) > 0 {
		key.extra = fmt.Sprint(t.Models, t.Constraints, t.Residency)
	}
	if ok, seen := f.memo[key]; seen {
		return ok, nil
	}
	s, err := f.c.ShapeOf(t)
	if err != nil {
		return false, err
	}
	ok := false
	for n := range f.c.NumNodes() {
		if f.c.Fits(scheduler.NodeID(n), &s) {
			ok = true
			break
		}
	}
	f.memo[key] = ok
	return ok, nil
}

func nodeIDOf(n int) scheduler.NodeID { return scheduler.NodeID(n) }
