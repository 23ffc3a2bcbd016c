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

// engine is one replay in progress.
type engine struct {
	cfg        *Config
	m          *state.Machine
	pol        *scheduler.Policy
	rng        *rand.Rand
	q          queue
	live       chunked[jobState] // the live jobs' books (jobs.go), reused
	keepSrc    bool              // the books keep their jobs' sources (moves and bursts read them)
	srcs       chunked[Job]      // a streamed workload's sources kept, by book
	free       []int32           // books of live free for reuse
	slot       []int32           // job number → its book in live, -1 when not live
	figs       chunked[figs]     // job number → its figures, every job pulled
	endLog     []endedFigs       // ended jobs' figures not yet in figs (flushFigs)
	more       map[int]moreFigs  // job number → its rarer figures, when not all zero
	recs       []JobRecord
	keep       bool // recs are kept (not Config.NoRecords)
	tenants    []string
	tenantIdx  map[string]int32
	feed       feed
	arrived    int   // jobs arrived: the next to arrive is job arrived
	order      []int // Config.Jobs's job numbers in submission order
	fits       *fitCache
	width      int    // digits of the machine ids
	ids        string // the ids of block idsOf (baseID)
	idsOf      int
	price      map[string]float64
	prices     []float64        // price per GPU-hour, fleet order (price's)
	poolOf     map[string]int32 // node name → pool, fleet order
	nodePool   []int32          // the state machine's node id → pool, as poolOf (-1: none)
	kind       map[string]scheduler.PoolKind
	normCPU    int64 // under bursting, every owned node's CPU and memory
	normMem    int64
	addedAt    []addedGPUs // capacity added during the run, its window share counted at the end
	addedGPUs  float64     // GPUs added during the run
	cloud      float64     // price per GPU-hour of the burst pool
	cloudAt    string      // the burst pool's name
	win        window
	util       utilAcc
	queued     int
	running    int
	pending    float64   // GPUs the queued jobs ask for
	inCloud    float64   // GPUs running in the burst cloud (stints included)
	alloc      []float64 // GPUs held per pool, in fleet order
	poolCost   []float64 // cost charged per pool, in fleet order
	poolIdx    map[string]int
	series     *Series
	nextSample int64
	strand     *stranding // the series' stranded GPUs
	lastT      int64      // the last instant applied
	ended      int
	pruneAt    int
	warmed     uint32 // what the warming of finishes read, kept so that the reads stay
	topUp      bool
	passes     int
	log        func(Event)
	sc         *scaler                        // the elastic cloud pools (Config.Scale)
	bill       bills                          // the reserved pools' bills (bill.go)
	cons       map[int][]scheduler.Constraint // jobs' constraints since a move (move.go)
	poolGPUH   []float64                      // GPU-hours held per pool, in fleet order
	unfit      int                            // jobs left out by Config.Unfit
	unfitJobs  []UnfitJob                     // the first maxUnfitListed of them
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
	switch c := cfg.Checkpoint; {
	case c.Interval < 0 || c.Restart < 0:
		return nil, fmt.Errorf("checkpoint: interval and restart must not be negative")
	case c.Interval > MaxSpan || c.Restart > MaxSpan:
		return nil, fmt.Errorf("checkpoint: interval %d ns and restart %d ns: at most %d ns (about 36 years)", c.Interval, c.Restart, MaxSpan)
	}
	if cfg.PassEvery < 0 || cfg.PassEvery > MaxSpan {
		return nil, fmt.Errorf("pass every %d ns: want 0 (passes when something changes) to %d ns", cfg.PassEvery, MaxSpan)
	}
	if cfg.Horizon < 0 {
		return nil, fmt.Errorf("horizon: must not be negative")
	}
	if cfg.Scale != nil && cfg.Burst != nil {
		return nil, errors.New("scale: the burst method's cloud is unlimited; pool scaling runs without it")
	}
	if cfg.Source != nil && len(cfg.Jobs) > 0 {
		return nil, errors.New("workload: give the jobs as Config.Jobs or as a Source, not both")
	}
	if cfg.Source != nil && cfg.Burst != nil {
		// a cloud run's utilisation is booked when it leaves, over the
		// measurement window, whose end a stream knows only at its end
		return nil, errors.New("workload: the burst method replays Config.Jobs, not a Source")
	}
	e := &engine{cfg: cfg, m: state.New(), price: map[string]float64{}, poolOf: map[string]int32{}, log: cfg.Observe,
		keep: !cfg.NoRecords, tenantIdx: map[string]int32{}, keepSrc: cfg.Burst != nil || len(cfg.MoveEvents) > 0}
	e.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed5eed5eed5eed))
	if err := e.buildFleet(); err != nil {
		return nil, err
	}
	if err := e.registerTenants(); err != nil {
		return nil, err
	}
	if cfg.Scale != nil {
		sc, err := newScaler(e)
		if err != nil {
			return nil, err
		}
		e.sc = sc
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
	if cfg.SeriesStep > 0 {
		if cfg.Source != nil {
			return nil, errors.New("series: its stranded GPUs are measured against the whole workload's task mix; give the jobs as Config.Jobs, not a Source")
		}
		e.strand = newStranding(e)
	}
	e.bill = newBills(e)
	for i, ne := range cfg.NodeEvents {
		if _, ok := e.poolOf[ne.Node]; !ok && !added[ne.Node] {
			return nil, fmt.Errorf("node event %d: field node: unknown node %q", i, ne.Node)
		}
		if _, cloud := e.sc.byNameOf(ne.Node); cloud || (e.sc != nil && ne.Add != nil && e.kind[ne.Add.Pool] == scheduler.PoolCloud) {
			return nil, fmt.Errorf("node event %d: field node: %q is in a cloud pool, which scales on its own under pool scaling", i, ne.Node)
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
	if err := e.pushMoves(); err != nil {
		return nil, err
	}
	for i, qe := range cfg.QuotaEvents {
		if e.sc == nil {
			return nil, fmt.Errorf("quota event %d: a cloud pool's max_nodes changes only under pool scaling (Config.Scale)", i)
		}
		pi, ok := e.poolIdx[qe.Pool]
		if !ok || e.kind[qe.Pool] != scheduler.PoolCloud {
			return nil, fmt.Errorf("quota event %d: field pool: %q is not a cloud pool of the fleet", i, qe.Pool)
		}
		if qe.MaxNodes < 0 {
			return nil, fmt.Errorf("quota event %d: field max_nodes: want ≥ 0, got %d", i, qe.MaxNodes)
		}
		if !e.sc.pools[pi].elastic {
			return nil, fmt.Errorf("quota event %d: field pool: cloud pool %q lists no node to grow from", i, qe.Pool)
		}
		e.q.push(item{at: qe.At, phase: phaseNode, job: int32(i), scale: scQuota})
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
		if p.ProvisionDelaySec < 0 || p.ProvisionDelaySec > MaxSpan/Second {
			return fmt.Errorf("fleet: pool %s: provision_delay_sec %d: want 0 to %d (about 36 years)", p.Name, p.ProvisionDelaySec, MaxSpan/Second)
		}
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
	e.poolCost = make([]float64, len(e.cfg.Pools))
	e.poolGPUH = make([]float64, len(e.cfg.Pools))
	for i, p := range e.cfg.Pools {
		e.poolIdx[p.Name] = i
		kind[p.Name] = p.Kind
		e.price[p.Name] = p.PricePerGPUHour
		e.prices = append(e.prices, p.PricePerGPUHour)
	}
	e.kind = kind
	if burst {
		if cloudPool < 0 {
			return errors.New("fleet: the burst method needs a cloud pool to spill to; the fleet has none")
		}
		p := e.cfg.Pools[cloudPool]
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
		e.notePool(n.Name, int32(e.poolIdx[e.m.Cluster().PoolOf(id).Name]))
		owned++
	}
	if owned == 0 && !slices.ContainsFunc(e.cfg.NodeEvents, func(ne NodeEvent) bool { return ne.Add != nil }) {
		return errors.New("fleet: no node to place jobs on")
	}
	return nil
}

// buildJobs numbers the jobs of Config.Jobs in submission order and checks
// each (all of them, before the run), or pulls a Source's first W + 1.
func (e *engine) buildJobs(grown *scheduler.Cluster) error {
	e.fits = newFitCache(grown)
	if src := e.cfg.Source; src != nil {
		e.feed = feed{src: src, tail: make([]int64, e.cfg.WarmupJobs+1), last: math.MinInt64}
		e.width = streamWidth
		e.win.end = math.MaxInt64 // until the Source's last job is known
		return e.fill(e.cfg.WarmupJobs + 1)
	}
	e.feed.done = true
	n := len(e.cfg.Jobs)
	e.order = make([]int, n)
	for i := range e.order {
		e.order[i] = i
	}
	slices.SortStableFunc(e.order, func(a, b int) int { return cmp.Compare(e.cfg.Jobs[a].Submit, e.cfg.Jobs[b].Submit) })
	e.width = len(strconv.Itoa(max(n-1, 0)))
	e.slot = make([]int32, 0, n)
	if e.keep {
		e.recs = make([]JobRecord, 0, n)
	}
	gpus := make([]float64, 0, n)
	kept := e.order[:0]
	for k, i := range e.order {
		g, err := e.check(k, &e.cfg.Jobs[i])
		if e.skipUnfit(err) {
			continue
		}
		if err != nil {
			return err
		}
		gpus = append(gpus, g)
		kept = append(kept, i)
	}
	e.order = kept
	for k, i := range e.order {
		src := &e.cfg.Jobs[i]
		if err := e.checkPlaced(src); err != nil {
			return err
		}
		r := newRecord(k, src, gpus[k])
		e.figs.add(e.openFigs(&r))
		e.slot = append(e.slot, -1)
		if e.keep {
			e.recs = append(e.recs, r)
		}
	}
	w, err := newWindow(e)
	if err != nil {
		return err
	}
	e.win = w
	e.fits = nil // every job is checked: the grown fleet's copy can go
	return nil
}

// streamWidth is the digits of a streamed workload's machine ids, whose
// number of jobs is not known: ids of equal width sort as their numbers.
const streamWidth = 12

// check checks job k of the workload before it arrives and returns the
// GPUs it holds while running.
func (e *engine) check(k int, src *Job) (float64, error) {
	if src.Duration < 0 {
		return 0, fmt.Errorf("%s: field duration: %d ns is negative", where(src, k), src.Duration)
	}
	if src.Duration > MaxSpan {
		return 0, fmt.Errorf("%s: field duration: %d ns is longer than a run can add to its clock (%d ns, about 36 years)", where(src, k), src.Duration, MaxSpan)
	}
	if src.Submit > MaxTime || src.Submit < -MaxTime {
		return 0, fmt.Errorf("%s: field submit: %d ns is outside the clock's range for a workload (±%d ns, about 146 years around 1970)", where(src, k), src.Submit, MaxTime)
	}
	if e.cfg.Burst != nil {
		t := src.Job.Task
		if src.Job.Count != 1 || t.GPUs < 1 || (t.GPUMilli != 0 && t.GPUMilli != 1000) {
			return 0, fmt.Errorf("%s: the burst method replays jobs of one task of whole GPUs (count 1, gpus ≥ 1); this one has count %d, gpus %d, gpu_milli %d", where(src, k), src.Job.Count, t.GPUs, t.GPUMilli)
		}
	}
	// checked under a stand-in id and tenant (only an error spells out the
	// real ones: an id per job costs an allocation)
	job := e.makeJob(src, "x", src.Submit, nil, false)
	if err := job.Validate(); err != nil {
		job = e.makeJob(src, e.baseID(k), src.Submit, nil, true)
		return 0, fmt.Errorf("%s: %w", where(src, k), job.Validate())
	}
	ok, err := e.fits.fits(&job.Task)
	if err != nil {
		return 0, fmt.Errorf("%s: field task: %w", where(src, k), err)
	}
	if !ok {
		return 0, &UnfitError{Job: UnfitJob{Record: src.record, ID: src.Job.ID, Where: where(src, k),
			Reason: fmt.Sprintf("a task of %d GPUs (%d milli each, %d milli-CPU, %d MiB) fits no empty node of the fleet", job.Task.GPUs, job.Task.GPUMilli, job.Task.CPUMilli, job.Task.MemoryMiB)}}
	}
	return float64(job.GPUMilliTotal()) / 1000, nil
}

// coreJob is live job k as the state machine gets it now, submitted at
// at (see makeJob).
func (e *engine) coreJob(k int, at int64) scheduler.Job {
	j := e.job(k)
	var cons []scheduler.Constraint
	if c, ok := e.cons[k]; ok {
		cons = c
	}
	return e.makeJob(j.src, j.id, at, cons, true)
}

// makeJob is a job of the workload as the state machine gets it: its id is
// its number (zero-padded, so the core's FIFO tie-break on ids keeps
// submission order), cons (when not nil) its constraints. Under the burst
// method every job is alike but for its GPUs: one tenant, no priority, no
// CPU, memory, model or label demand.
func (e *engine) makeJob(src *Job, id string, at int64, cons []scheduler.Constraint, tenant bool) scheduler.Job {
	j := src.Job
	j.ID = id
	j.Walltime = (src.Duration + Second - 1) / Second
	if cons != nil {
		j.Task.Constraints = cons
	}
	if e.cfg.Burst != nil {
		j = scheduler.Job{ID: j.ID, Kind: scheduler.Training, Count: 1, Walltime: j.Walltime,
			Task: scheduler.Task{GPUs: src.Job.Task.GPUs, GPUMilli: 1000}}
	}
	switch e.cfg.Victims {
	case VictimsAll:
		j.Preemptible = true
	case VictimsTraining:
		j.Preemptible = j.Kind == scheduler.Training
	case VictimsNone:
		j.Preemptible = false
	}
	if e.cfg.Queue == QueueFIFOSkip && tenant {
		// A tenant per job, so that a blocked job blocks only itself; the
		// core takes tenants of equal share by name, so the name orders as
		// the queue does: submission second (sign-flipped so that it sorts
		// as an unsigned number), then id.
		j.Tenant = fmt.Sprintf("%016x/%s", uint64(seconds(at))^(1<<63), j.ID)
	}
	return j
}

// baseID is job k's first machine id: its number, zero-padded. Ids of
// one block of idBlock jobs are cut from one string, made when the first
// of them is asked for: an arrival costs no allocation for its id. A block
// stays alive while any of its ids does, which costs at most what every
// id kept apart would.
func (e *engine) baseID(k int) string {
	w := e.width
	if b := k / idBlock; w > 0 && b == e.idsOf && len(e.ids) > 0 {
		i := (k % idBlock) * w
		return e.ids[i : i+w]
	} else if w > 0 && k%idBlock == 0 && (b+1)*idBlock <= pow10(w) { // every id of the block has w digits
		buf := make([]byte, 0, idBlock*w)
		for i := range idBlock {
			buf = appendID(buf, b*idBlock+i, w)
		}
		e.ids, e.idsOf = string(buf), b
		return e.ids[:w]
	}
	return e.oneID(k)
}

// idBlock is the jobs whose ids baseID makes as one string.
const idBlock = 1024

// pow10 is 10^w, capped beyond any job number.
func pow10(w int) int {
	p := 1
	for range min(w, 18) {
		p *= 10
	}
	return p
}

// appendID appends k zero-padded to w digits (or more, when it has more).
func appendID(b []byte, k, w int) []byte {
	var d [20]byte
	n := len(strconv.AppendInt(d[:0], int64(k), 10))
	for range w - n {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(k), 10)
}

// oneID is job k's first machine id made on its own.
func (e *engine) oneID(k int) string {
	var b [40]byte
	d := strconv.AppendInt(b[20:20], int64(k), 10)
	n := max(e.width, len(d))
	copy(b[20-(n-len(d)):20], zeros) // one string, not one a digit
	return string(b[20-(n-len(d)) : 20+len(d)])
}

// renumber gives live job k its machine id after a resubmission.
func (e *engine) renumber(k int) {
	j := e.job(k)
	s := e.baseID(k)
	if g := j.gen; g > 0 {
		s = "m" + strconv.Itoa(int(g)) + "." + s // after every first submission of its second
	}
	if j.returned {
		// resubmitted: a new id, after every first submission of the same
		// second in the core's FIFO tie-break
		s = "r" + s
	}
	j.id = s
}

// machineID is live job k's id in the state machine.
func (e *engine) machineID(k int) string { return e.job(k).id }

// zeros pads machine ids (an int has at most 20 digits).
const zeros = "00000000000000000000"

func (e *engine) number(id string) (int, error) {
	id = strings.TrimPrefix(id, "r")
	if rest, ok := strings.CutPrefix(id, "m"); ok {
		_, id, _ = strings.Cut(rest, ".")
	}
	k, err := strconv.Atoi(id)
	if err != nil || !e.isLive(k) {
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
	var batch []item
	var nextTick int64 // PassEvery's clock
	ticking := false
	for steps := 0; ; steps++ {
		if steps%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
		}
		if e.sc != nil {
			for !e.q.empty() && e.sc.stale(e, e.q.peek()) {
				e.q.pop()
			}
		}
		t, ok := e.q.next()
		nj, err := e.peek()
		if err != nil {
			return err
		}
		if nj != nil && (!ok || nj.Submit < t) {
			t, ok = nj.Submit, true
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
		if e.sc != nil {
			e.sc.begin(e, t)
		}
		e.beginBills(t)
		batch = batch[:0]
		for e.q.nextAt(t) {
			batch = append(batch, e.q.pop())
		}
		// Read the instant's finishing jobs' books, records and nodes side
		// by side first (Machine.Warm): their cache misses overlap rather
		// than come one after another (1M jobs: about 5% of the run).
		var epochs uint32
		for _, it := range batch {
			if it.isFinish() {
				j := e.live.at(int(it.job))
				epochs += j.warm()
				e.m.Warm(j.hint)
			}
		}
		e.warmed += epochs
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
		if nj != nil && nj.Submit == t {
			if err := e.warmArrivals(t); err != nil {
				return err
			}
		}
		for nj != nil && nj.Submit == t {
			if err := e.arrive(e.arrived, nj, t); err != nil {
				return err
			}
			e.took()
			changed = true
			if e.cfg.Progress != nil && e.arrived%1024 == 0 {
				e.cfg.Progress(e.arrived, e.total())
			}
			if nj, err = e.peek(); err != nil {
				return err
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
			if e.sc != nil && e.queued > 0 {
				if err := e.sc.request(e, t); err != nil {
					return err
				}
			}
		}
		if e.sc != nil {
			e.sc.observe(e, t)
		}
	}
	if err := e.drain(); err != nil { // what the horizon left unsubmitted
		return err
	}
	end := e.lastT
	if e.cfg.Horizon > 0 {
		end = e.cfg.Horizon
	}
	if err := e.sampleUpTo(end, true); err != nil {
		return err
	}
	if e.sc != nil {
		e.sc.stop(e, end)
	}
	e.stopBills(end)
	e.stop()
	if e.cfg.Progress != nil {
		e.cfg.Progress(e.arrived, e.total())
	}
	return nil
}

// total is the number of jobs of the workload, 0 while a Source has not
// handed out its last.
func (e *engine) total() int {
	if !e.feed.done {
		return 0
	}
	return e.figs.n
}

func (e *engine) emit(ev Event) {
	if e.log != nil {
		e.log(ev)
	}
}

func (e *engine) arrive(k int, src *Job, t int64) error {
	j := e.admit(k, src)
	j.rec = newRecord(k, src, 0)
	j.id = e.baseID(k)
	var cons []scheduler.Constraint
	if c, ok := e.cons[k]; ok {
		cons = c
	}
	job := e.makeJob(src, j.id, t, cons, true)
	j.gpus = float64(job.GPUMilliTotal()) / 1000
	j.rec.GPUs = j.gpus
	j.work = src.Duration
	if _, err := e.m.Apply(state.Submit{Job: job, At: seconds(t)}); err != nil {
		return fmt.Errorf("replay: submit %s: %w", where(src, k), err)
	}
	j.hint = e.m.Hint(job.ID) // the finish finds it without the id's look-up
	e.setStatus(k, stQueued)
	j.rec.State = "queued"
	if e.log != nil { // the event costs a read of the job's source otherwise
		e.emit(Event{At: t, Kind: EventArrive, Job: k, ID: j.rec.ID})
	}
	if len(src.Placed) > 0 {
		return e.arrivePlaced(k, src, t)
	}
	if e.cfg.Burst != nil {
		e.q.push(item{at: t + e.cfg.Burst.Wait.budget(src, j.gpus), phase: phaseExpire, job: int32(k)})
	}
	return nil
}

// warmArrivals reads the state machine's side of the next arrivals at t
// (Machine.WarmSubmit) side by side before they are submitted one by
// one, at most arrivalWarm of them: their cache misses overlap.
func (e *engine) warmArrivals(t int64) error {
	if err := e.fill(max(e.cfg.WarmupJobs+1, arrivalWarm)); err != nil {
		return err
	}
	for i := range min(arrivalWarm, e.figs.n-e.arrived) {
		k := e.arrived + i
		if e.upcoming(k).Submit != t || (i > 0 && k%idBlock == 0) {
			break // past the instant, or into the next block of ids (baseID)
		}
		e.m.WarmSubmit(e.baseID(k), i)
	}
	return nil
}

// arrivalWarm bounds the arrivals warmArrivals reads ahead.
const arrivalWarm = 8

// apply applies one event of the heap; changed says whether the owned
// cluster or its queue changed.
func (e *engine) apply(it item, t int64) (bool, error) {
	switch {
	case it.scale != 0:
		return e.sc.event(e, it, t)
	case it.price:
		e.priceEvent(int(it.job), t)
		return false, nil
	case it.move:
		return e.moveEvent(int(it.job), t)
	case it.phase == phaseNode:
		return e.nodeEvent(int(it.job), t)
	case it.phase == phaseExpire:
		return e.expire(int(it.job), t)
	}
	// A finish names the job's book, not its number: the book is read
	// without a look-up in the job table first.
	s := it.job
	j := e.live.at(int(s))
	if it.epoch != j.epoch {
		return false, nil // stale: the job was requeued, or ended, since
	}
	k := int(j.k)
	if it.cloud {
		e.setStatusOf(j, stDone)
		e.ended++
		r := &j.rec
		r.End, r.State = t, "ended"
		e.emit(Event{At: t, Kind: EventCloudEnd, Job: k, ID: j.rec.ID})
		e.foldAt(k, s, j)
		return false, nil
	}
	if j.status == stDone || j.status == stCloud {
		return false, nil // stale
	}
	// Written now, not after the state machine's finish: the record's
	// line of figures, which fold reads, is fetched meanwhile.
	j.rec.End = t
	id := j.id
	var err error
	if j.status == stQueued { // a service that lost every replica ends queued
		_, err = e.m.Apply(state.Cancel{Job: id, At: seconds(t), Hint: j.hint})
	} else {
		e.closeRun(j, t)
		_, err = e.m.Apply(state.Finish{Job: id, At: seconds(t), Hint: j.hint})
	}
	if err != nil {
		return false, fmt.Errorf("replay: finish %s: %w", j.rec.ID, err)
	}
	e.setStatusOf(j, stDone)
	e.ended++
	j.rec.State = "ended"
	if e.log != nil {
		e.emit(Event{At: t, Kind: EventFinish, Job: k, ID: j.rec.ID})
	}
	e.foldAt(k, s, j)
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

func (e *engine) nodeEvent(i int, t int64) (bool, error) {
	ne := e.cfg.NodeEvents[i]
	if ne.Add != nil {
		if _, err := e.m.Apply(state.RegisterNode{Node: *ne.Add}); err != nil {
			return false, fmt.Errorf("replay: node event %d: add %s: %w", i, ne.Node, err)
		}
		e.notePool(ne.Node, int32(e.poolIdx[ne.Add.Pool]))
		id, _ := e.m.Cluster().NodeByName(ne.Node)
		gpus := float64(e.m.Cluster().Usage(id).GPUCap) / 1000
		e.addedGPUs += gpus
		e.reserveAdded(ne.Add.Pool, gpus, t)
		e.addedAt = append(e.addedAt, addedGPUs{t, gpus})
		e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: ne.Node, Node: ne.Node, State: "added"})
	}
	res, err := e.m.Apply(state.SetNodeState{Node: ne.Node, State: ne.State, At: seconds(t)})
	if err != nil {
		return false, fmt.Errorf("replay: node event %d: %w", i, err)
	}
	if !res.Changed {
		return false, nil
	}
	if e.strand != nil {
		e.strand.setState(e.m.Cluster(), ne.Node, ne.State)
	}
	e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: ne.Node, Node: ne.Node, State: ne.State.String()})
	return true, e.lost(res, t)
}

// lost books the work a node took down with it: training requeued,
// services degraded.
func (e *engine) lost(res state.Result, t int64) error {
	if err := e.requeued(res.Requeued, t); err != nil {
		return err
	}
	for _, id := range res.Degraded {
		k, err := e.number(id)
		if err != nil {
			return err
		}
		e.topUp = true
		e.emit(Event{At: t, Kind: EventDegrade, Job: k, ID: e.job(k).rec.ID})
	}
	return nil
}

// stop closes the books at the end of the run: at the horizon, running jobs
// are counted up to it.
func (e *engine) stop() {
	if e.cfg.Horizon == 0 {
		return
	}
	for _, s := range e.slot { // in job order, as the sums always went
		if s < 0 || e.live.at(int(s)).status != stRunning {
			continue
		}
		j := e.live.at(int(s))
		e.closeRun(j, e.cfg.Horizon)
		j.runStart = e.cfg.Horizon
		if e.cfg.RecordRuns {
			j.rec.Runs[len(j.rec.Runs)-1].End = -1 // still running
		}
	}
}

// addedGPUs is capacity added during the run: at, gpus.
type addedGPUs struct {
	at   int64
	gpus float64
}

func nodeIDOf(n int) scheduler.NodeID { return scheduler.NodeID(n) }
