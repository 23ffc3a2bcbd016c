package replay

// Elastic cloud pools: nodes asked for when the queue needs them, ready a
// provisioning delay later, released after an idle time, charged per GPU
// while up; spot nodes taken back at random (docs/sim.md "Elastic pools").

import (
	"fmt"
	"math"
	"math/rand/v2"

	"petite/scheduler"
	"petite/scheduler/state"
)

// Scale makes the fleet's cloud pools elastic and bills them by node.
type Scale struct {
	// IdleRelease is how long a node of an elastic pool stays idle before
	// it is released (nanoseconds); 0 is DefaultIdleRelease.
	IdleRelease int64
	// SpotReclaim is the mean time a node of a spot pool stays up before
	// the provider takes it back (nanoseconds, exponential, drawn from the
	// seed); 0 never takes one back.
	SpotReclaim int64
}

// DefaultIdleRelease is the idle time after which an elastic node is
// released when Scale.IdleRelease is 0.
const DefaultIdleRelease = 600 * Second

// ScalePool is an elastic or spot cloud pool's account of a run. A node is
// billed from the moment it is ready to its release (or reclaim, or the end
// of the run): idle time counts. NodeCost is that bill; UsedCost is what
// the jobs that ran there were charged (CostByPool), IdleCost the rest.
type ScalePool struct {
	// Provisioned counts the nodes asked for during the run, Released those
	// let go after their idle time, Reclaimed the spot nodes taken back.
	Provisioned int `json:"provisioned"`
	Released    int `json:"released"`
	Reclaimed   int `json:"reclaimed"`
	// PeakNodes is the most nodes up or provisioning at once (the listed
	// nodes included).
	PeakNodes int `json:"peak_nodes"`
	// UpGPUHours are the GPU-hours of the pool's nodes while up,
	// UsedGPUHours those the jobs held.
	UpGPUHours   float64 `json:"up_gpu_hours"`
	UsedGPUHours float64 `json:"used_gpu_hours"`
	NodeCost     float64 `json:"node_cost"`
	UsedCost     float64 `json:"used_cost"`
	IdleCost     float64 `json:"idle_cost"`
}

// The kinds of a scaler event (item.scale).
const (
	scReady   uint8 = iota + 1 // a provisioned node joins
	scIdle                     // an idle node's release is due
	scReclaim                  // a spot node is taken back
	scQuota                    // a pool's max_nodes changes (job: the event's index)
)

type cloudNodeState uint8

const (
	cnOff cloudNodeState = iota // released, reclaimed, or never made
	cnPending
	cnUp
)

// cloudNode is one node of a cloud pool under scaling.
type cloudNode struct {
	name   string
	pool   int // fleet index
	gpus   float64
	st     cloudNodeState
	made   bool   // registered with the state machine
	upFrom int64  // billed up to here
	idle   bool   // an idle release is due (epoch)
	epoch  uint32 // moves at every change, so that older timers go stale
	life   uint32 // moves when the node goes down: older reclaims go stale
	forJob int    // the job it was asked for
}

// scalePool is one cloud pool's scaling state.
type scalePool struct {
	elastic bool // MaxNodes > 0, with a template node
	spot    bool
	max     int
	tmpl    scheduler.Node
	live    int   // nodes up or provisioning
	free    []int // released nodes, asked for again first
	made    int   // names handed out
	acct    ScalePool
}

// shapeKey is a plain task shape (no models, constraints or residency), so
// that ScaleOptions runs once per shape, not per queued job and instant.
type shapeKey struct {
	count, gpus, milli int
	cpu, mem           int64
}

// scaler is the engine's elastic pools.
type scaler struct {
	idle   int64
	spot   int64
	tmpl   *scheduler.Cluster // each elastic pool's template node alone, uncapped
	pools  []scalePool        // fleet order
	nodes  []cloudNode
	byName map[string]int
	shapes map[shapeKey][]scheduler.ScaleOption
	asked  map[int]int // job number → nodes still provisioning for it
	rng    *rand.Rand
	begun  bool
}

// newScaler takes the cloud pools of the fleet: every listed node is up
// from the run's first instant; a pool with max_nodes grows from its first
// listed node's shape.
func newScaler(e *engine) (*scaler, error) {
	sc := e.cfg.Scale
	switch {
	case sc.IdleRelease < 0 || sc.SpotReclaim < 0:
		return nil, fmt.Errorf("scale: idle release and spot reclaim must not be negative")
	case sc.IdleRelease > MaxSpan || sc.SpotReclaim > MaxSpan:
		return nil, fmt.Errorf("scale: idle release %d ns and spot reclaim %d ns: at most %d ns (about 36 years)", sc.IdleRelease, sc.SpotReclaim, MaxSpan)
	}
	s := &scaler{idle: sc.IdleRelease, spot: sc.SpotReclaim, byName: map[string]int{},
		shapes: map[shapeKey][]scheduler.ScaleOption{}, asked: map[int]int{},
		pools: make([]scalePool, len(e.cfg.Pools))}
	if s.idle == 0 {
		s.idle = DefaultIdleRelease
	}
	s.rng = rand.New(rand.NewPCG(e.cfg.Seed^0x7370_6f74, e.cfg.Seed^0x5ca1_e5ca_1e5c_a1e5))
	var tp []scheduler.Pool
	var tn []scheduler.Node
	seen := map[string]bool{}
	quota := map[string]bool{}
	for _, qe := range e.cfg.QuotaEvents {
		quota[qe.Pool] = true
	}
	for i, p := range e.cfg.Pools {
		s.pools[i] = scalePool{spot: p.Kind == scheduler.PoolCloud && p.Pricing == scheduler.Spot, max: p.MaxNodes}
		q := p
		q.MaxNodes = math.MaxInt32 // the cap is the driver's: it counts released nodes out
		tp = append(tp, q)
	}
	for _, n := range e.cfg.Nodes {
		i := e.poolIdx[n.Pool]
		p := &e.cfg.Pools[i]
		if p.Kind != scheduler.PoolCloud {
			continue
		}
		sp := &s.pools[i]
		if (p.MaxNodes > 0 || quota[n.Pool]) && !seen[n.Pool] {
			seen[n.Pool] = true
			sp.elastic, sp.tmpl = true, n
			t := n
			t.State = scheduler.NodeReady
			tn = append(tn, t)
		}
		s.byName[n.Name] = len(s.nodes)
		s.nodes = append(s.nodes, cloudNode{name: n.Name, pool: i, gpus: float64(len(n.GPUs)), st: cnUp, made: true, forJob: -1})
		sp.live++
		sp.made++
		sp.acct.PeakNodes = sp.live
	}
	c, err := scheduler.NewCluster(tp, tn)
	if err != nil {
		return nil, fmt.Errorf("scale: template nodes: %w", err)
	}
	s.tmpl = c
	return s, nil
}

// byNameOf finds a cloud node by name (none without scaling).
func (s *scaler) byNameOf(name string) (int, bool) {
	if s == nil {
		return 0, false
	}
	i, ok := s.byName[name]
	return i, ok
}

// begin starts the listed nodes' bills and spot clocks at the run's first
// instant.
func (s *scaler) begin(e *engine, t int64) {
	if s.begun {
		return
	}
	s.begun = true
	for i := range s.nodes {
		s.nodes[i].upFrom = t
		s.up(e, i, t)
	}
}

// up starts node i's spot clock.
func (s *scaler) up(e *engine, i int, t int64) {
	n := &s.nodes[i]
	if s.spot > 0 && s.pools[n.pool].spot {
		d := int64(s.rng.ExpFloat64() * float64(s.spot))
		e.q.push(item{at: t + max(d, 1), phase: phaseNode, job: int32(i), epoch: n.life, scale: scReclaim})
	}
}

// bill charges node i up to t at its pool's present price.
func (s *scaler) bill(e *engine, i int, t int64) {
	n := &s.nodes[i]
	if n.st != cnUp {
		return
	}
	a := &s.pools[n.pool].acct
	h := n.gpus * hours(t-n.upFrom)
	a.UpGPUHours += h
	a.NodeCost += e.price[e.cfg.Pools[n.pool].Name] * h
	n.upFrom = t
}

// billPool charges every up node of the pool up to t (before its price
// changes).
func (s *scaler) billPool(e *engine, pool string, t int64) {
	pi := e.poolIdx[pool]
	for i := range s.nodes {
		if s.nodes[i].pool == pi {
			s.bill(e, i, t)
		}
	}
}

// event applies a scaler event; changed says whether capacity joined or
// work was lost.
func (s *scaler) event(e *engine, it item, t int64) (bool, error) {
	if it.scale == scQuota {
		qe := e.cfg.QuotaEvents[it.job]
		s.pools[e.poolIdx[qe.Pool]].max = qe.MaxNodes
		e.emit(Event{At: t, Kind: EventQuota, Job: -1, ID: qe.Pool, State: fmt.Sprint(qe.MaxNodes)})
		return true, nil // a pass, and the queue asks again within the new cap
	}
	i := int(it.job)
	n := &s.nodes[i]
	sp := &s.pools[n.pool]
	switch it.scale {
	case scReady:
		if k := n.forJob; k >= 0 {
			if s.asked[k]--; s.asked[k] <= 0 {
				delete(s.asked, k)
			}
		}
		n.st, n.upFrom, n.idle = cnUp, t, false
		n.epoch++
		if !n.made {
			node := sp.tmpl
			node.Name, node.State = n.name, scheduler.NodeReady
			if _, err := e.m.Apply(state.RegisterNode{Node: node}); err != nil {
				return false, fmt.Errorf("replay: scale %s: %w", n.name, err)
			}
			n.made = true
			e.notePool(n.name, int32(e.poolIdx[node.Pool]))
			id, _ := e.m.Cluster().NodeByName(n.name)
			gpus := float64(e.m.Cluster().Usage(id).GPUCap) / 1000
			e.addedGPUs += gpus
			e.addedAt = append(e.addedAt, addedGPUs{t, gpus})
		} else if _, err := e.m.Apply(state.SetNodeState{Node: n.name, State: scheduler.NodeReady, At: seconds(t)}); err != nil {
			return false, fmt.Errorf("replay: scale %s: %w", n.name, err)
		}
		if e.strand != nil {
			e.strand.setState(e.m.Cluster(), n.name, scheduler.NodeReady)
		}
		e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: n.name, Node: n.name, State: "provisioned"})
		s.up(e, i, t)
		return true, nil
	case scIdle:
		if it.epoch != n.epoch || !n.idle || n.st != cnUp {
			return false, nil
		}
		s.down(e, i, t)
		sp.acct.Released++
		_, err := s.setDown(e, n.name, t)
		e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: n.name, Node: n.name, State: "released"})
		return false, err
	case scReclaim:
		if it.epoch != n.life || n.st != cnUp {
			return false, nil
		}
		s.down(e, i, t)
		sp.acct.Reclaimed++
		res, err := s.setDown(e, n.name, t)
		if err != nil {
			return false, err
		}
		e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: n.name, Node: n.name, State: "reclaimed"})
		return true, e.lost(res, t)
	}
	return false, fmt.Errorf("replay: unknown scaler event %d", it.scale)
}

// down bills node i and takes it out of its pool's count.
func (s *scaler) down(e *engine, i int, t int64) {
	n := &s.nodes[i]
	s.bill(e, i, t)
	n.st, n.idle = cnOff, false
	n.epoch++
	n.life++
	sp := &s.pools[n.pool]
	sp.live--
	sp.free = append(sp.free, i)
}

func (s *scaler) setDown(e *engine, name string, t int64) (state.Result, error) {
	res, err := e.m.Apply(state.SetNodeState{Node: name, State: scheduler.NodeDown, At: seconds(t)})
	if err != nil {
		return res, fmt.Errorf("replay: release %s: %w", name, err)
	}
	if e.strand != nil {
		e.strand.setState(e.m.Cluster(), name, scheduler.NodeDown)
	}
	return res, nil
}

// observe starts the idle timer of every up elastic node that has just
// gone idle and stops that of every one that has just taken work: O(nodes
// of the cloud pools) per instant.
func (s *scaler) observe(e *engine, t int64) {
	v := e.m.Cluster()
	for i := range s.nodes {
		n := &s.nodes[i]
		if n.st != cnUp || !s.pools[n.pool].elastic {
			continue
		}
		id, _ := v.NodeByName(n.name)
		u := v.Usage(id)
		idle := u.GPUFree == u.GPUCap && u.CPUFree == u.CPUCap && u.MemFree == u.MemCap
		if idle == n.idle {
			continue
		}
		n.idle = idle
		n.epoch++
		if idle {
			e.q.push(item{at: t + s.idle, phase: phaseNode, job: int32(i), epoch: n.epoch, scale: scIdle})
		}
	}
}

// request asks, for every job still queued after the pass that has no
// node on the way, for the nodes of the cheapest elastic pool that could
// take it and has room under its max_nodes (ScaleOptions' order).
func (s *scaler) request(e *engine, t int64) error {
	for _, j := range e.m.Pending() {
		k, err := e.number(j.ID)
		if err != nil {
			return err
		}
		if s.asked[k] > 0 {
			continue
		}
		opts, err := s.options(j)
		if err != nil {
			return fmt.Errorf("replay: scale options of %s: %w", e.job(k).rec.ID, err)
		}
		for _, o := range opts {
			pi := e.poolIdx[o.Pool]
			sp := &s.pools[pi]
			if sp.live+o.Nodes > sp.max {
				continue
			}
			for range o.Nodes {
				s.provision(e, pi, k, t)
			}
			s.asked[k] = o.Nodes
			break
		}
	}
	return nil
}

func (s *scaler) options(j *scheduler.Job) ([]scheduler.ScaleOption, error) {
	tk := &j.Task
	if len(tk.Models) > 0 || len(tk.Constraints) > 0 || len(tk.Residency) > 0 {
		return s.tmpl.ScaleOptions(j)
	}
	key := shapeKey{count: j.Count, gpus: tk.GPUs, milli: tk.GPUMilli, cpu: tk.CPUMilli, mem: tk.MemoryMiB}
	if o, ok := s.shapes[key]; ok {
		return o, nil
	}
	o, err := s.tmpl.ScaleOptions(j)
	if err != nil {
		return nil, err
	}
	s.shapes[key] = o
	return o, nil
}

// provision asks for one node of pool pi for job k: a released node of the
// pool again if there is one, else a new one named after the pool.
func (s *scaler) provision(e *engine, pi, k int, t int64) {
	sp := &s.pools[pi]
	var i int
	if len(sp.free) > 0 {
		i, sp.free = sp.free[0], sp.free[1:]
	} else {
		name := ""
		for {
			sp.made++
			name = fmt.Sprintf("%s-scale-%04d", e.cfg.Pools[pi].Name, sp.made)
			if _, dup := e.poolOf[name]; !dup {
				if _, dup := s.byName[name]; !dup {
					break
				}
			}
		}
		i = len(s.nodes)
		s.byName[name] = i
		s.nodes = append(s.nodes, cloudNode{name: name, pool: pi, gpus: float64(len(sp.tmpl.GPUs))})
	}
	n := &s.nodes[i]
	n.st, n.forJob = cnPending, k
	n.epoch++
	sp.live++
	sp.acct.Provisioned++
	sp.acct.PeakNodes = max(sp.acct.PeakNodes, sp.live)
	e.q.push(item{at: t + e.cfg.Pools[pi].ProvisionDelaySec*Second, phase: phaseNode, job: int32(i), epoch: n.epoch, scale: scReady})
	e.emit(Event{At: t, Kind: EventNode, Job: -1, ID: n.name, Node: n.name, State: "requested"})
}

// stale says whether a scaler event no longer matters: a timer of a node
// that changed since, or a reclaim once every job has ended (it would only
// stretch the run).
func (s *scaler) stale(e *engine, it item) bool {
	if it.scale == 0 || it.scale == scReady || it.scale == scQuota {
		return false
	}
	n := &s.nodes[it.job]
	if it.scale == scReclaim {
		return it.epoch != n.life || (e.feed.done && e.ended == e.figs.n)
	}
	return it.epoch != n.epoch
}

// stop bills every up node to the end of the run.
func (s *scaler) stop(e *engine, end int64) {
	for i := range s.nodes {
		s.bill(e, i, end)
	}
}

// accounts is the per-pool summary of the cloud pools under scaling.
func (s *scaler) accounts(e *engine) map[string]ScalePool {
	out := map[string]ScalePool{}
	for i, p := range e.cfg.Pools {
		sp := &s.pools[i]
		if p.Kind != scheduler.PoolCloud {
			continue
		}
		a := sp.acct
		a.UsedGPUHours = e.poolGPUH[i]
		a.UsedCost = e.poolCost[i]
		a.IdleCost = a.NodeCost - a.UsedCost
		out[p.Name] = a
	}
	return out
}
