package metrics

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"petite/scheduler"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// Strand measures the GPU capacity stranded on a node: FRAG-METHOD §5's
// fragmentation of the node's present state, computed by the core
// (scheduler.View.Frag), against the default target workload that the
// leader's fgd policy places for (the daemon gives it no other). The core
// caches each node's value until the node changes, so measuring a whole
// fleet costs a pass over the nodes plus those that changed.
//
// A Strand is not safe for concurrent use: call it under the FSM's lock
// (server.FSM.Read), which also keeps the cluster still.
type Strand struct {
	f scheduler.FGD
}

// NewStrand returns a meter with an empty cache.
func NewStrand() *Strand { return &Strand{} }

// GPUs is the stranded capacity of node id, in GPUs; zero for a node that
// takes no work (its capacity is not offered, so not stranded).
func (s *Strand) GPUs(v scheduler.View, id scheduler.NodeID, st scheduler.NodeState) float64 {
	if st != scheduler.NodeReady {
		return 0
	}
	return v.Frag(&s.f, id) / scheduler.MilliPerGPU
}

// The descriptions of the scrape-time gauges.
var (
	descQueued = prometheus.NewDesc(Namespace+"_queued_jobs",
		"Jobs waiting in the queue, by tenant.", []string{"tenant"}, nil)
	descPendingGPUs = prometheus.NewDesc(Namespace+"_pending_gpus",
		"GPUs asked for by the queued jobs (a share counts its fraction), by tenant.", []string{"tenant"}, nil)
	descRunning = prometheus.NewDesc(Namespace+"_running_jobs",
		"Jobs with tasks placed, by tenant.", []string{"tenant"}, nil)
	descRunningGPUs = prometheus.NewDesc(Namespace+"_running_gpus",
		"GPUs held by running tasks (a share counts its fraction), by tenant.", []string{"tenant"}, nil)
	descCapacity = prometheus.NewDesc(Namespace+"_gpus_capacity",
		"GPUs of the registered nodes, whatever their state, by pool and model.", []string{"pool", "model"}, nil)
	descAllocated = prometheus.NewDesc(Namespace+"_gpus_allocated",
		"GPUs held by tasks (a share counts its fraction), by pool and model.", []string{"pool", "model"}, nil)
	descFree = prometheus.NewDesc(Namespace+"_gpus_free",
		"GPUs free on nodes that take work (ready), by pool and model.", []string{"pool", "model"}, nil)
	descUnhealthy = prometheus.NewDesc(Namespace+"_gpus_unhealthy",
		"GPUs withheld from placement because their agent reports them unhealthy (a hardware XID), by pool and model.", []string{"pool", "model"}, nil)
	descStranded = prometheus.NewDesc(Namespace+"_stranded_gpus",
		"Free GPU capacity that the target workload's tasks cannot use on the ready nodes of a pool (FRAG-METHOD section 5), in GPUs.", []string{"pool"}, nil)
	descNodes = prometheus.NewDesc(Namespace+"_nodes",
		"Nodes, by pool and state.", []string{"pool", "state"}, nil)
	descGPUInfo = prometheus.NewDesc(Namespace+"_gpu_info",
		"One series per GPU device (a MIG instance is a device), always 1: its node, index, model, pool and the UUID its agent reported (empty until one did).",
		[]string{"node", "index", "model", "pool", "uuid"}, nil)
	descApplied = prometheus.NewDesc(Namespace+"_state_applied_commands",
		"Commands that changed this server's state machine: its version of the state.", nil, nil)
	descRaftState = prometheus.NewDesc(Namespace+"_raft_state",
		"This server's raft role: 1 for the role it is in, 0 for the others.", []string{"state"}, nil)
	descLastContact = prometheus.NewDesc(Namespace+"_raft_last_contact_seconds",
		"Time since this server last heard from the leader; 0 on the leader, absent before any contact.", nil, nil)
	descRaft = func() map[string]*prometheus.Desc {
		out := make(map[string]*prometheus.Desc, len(raftGauges))
		for _, g := range raftGauges {
			out[g.key] = prometheus.NewDesc(Namespace+"_"+g.name, g.help, nil, nil)
		}
		return out
	}()
)

// stateCollector reads the committed state when scraped.
type stateCollector struct {
	s       *server.Server
	o       Options
	strand  *Strand
	nstates int // node states the core knows
}

func newStateCollector(s *server.Server, o Options) *stateCollector {
	n := 0
	for scheduler.NodeState(n).Valid() {
		n++
	}
	return &stateCollector{s: s, o: o, strand: NewStrand(), nstates: n}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueued, descPendingGPUs, descRunning, descRunningGPUs,
		descCapacity, descAllocated, descFree, descUnhealthy, descStranded, descNodes, descGPUInfo, descApplied,
		descRaftState, descLastContact} {
		ch <- d
	}
	for _, g := range raftGauges {
		ch <- descRaft[g.key]
	}
}

// tenantRow is what the state says of one tenant.
type tenantRow struct {
	queued, running       int
	pendingGPU, runningGP int64 // milli-GPU, summed exactly
}

// poolRow is what the state says of one pool and GPU model, in milli-GPU
// (summed exactly, turned into GPUs once).
type poolRow struct{ capacity, allocated, free, unhealthy int64 }

type poolModel struct{ pool, model string }

type device struct {
	node, model, pool string
	index             int
}

// scrape is the state read under the FSM's lock: only numbers and names,
// so the lock is held for one pass over nodes and live jobs.
type scrape struct {
	tenants  map[string]*tenantRow
	pools    map[poolModel]*poolRow
	stranded map[string]float64
	nodes    map[string][]int // pool -> count per node state
	devices  []device
	applied  uint64
}

// gpus turns milli-GPU into GPUs.
func gpus(milli int64) float64 { return float64(milli) / scheduler.MilliPerGPU }

func (c *stateCollector) read() scrape {
	sc := scrape{
		tenants: map[string]*tenantRow{}, pools: map[poolModel]*poolRow{},
		stranded: map[string]float64{}, nodes: map[string][]int{},
	}
	tenant := func(name string) *tenantRow {
		r := sc.tenants[name]
		if r == nil {
			r = &tenantRow{}
			sc.tenants[name] = r
		}
		return r
	}
	c.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		sc.applied = m.Applied()
		for _, t := range m.Tenants() {
			tenant(t.Name)
		}
		for _, j := range m.Pending() {
			r := tenant(j.Tenant)
			r.queued++
			milli := j.Task.GPUMilli
			if j.Task.GPUs > 0 && milli == 0 {
				milli = scheduler.MilliPerGPU
			}
			r.pendingGPU += int64(j.Count) * int64(j.Task.GPUs) * int64(milli)
		}
		for _, rj := range m.Running() {
			r := tenant(rj.Job.Tenant)
			r.running++
			r.runningGP += rj.GPUMilli()
		}
		v := m.Cluster()
		for _, p := range v.Pools() {
			sc.nodes[p.Name] = make([]int, c.nstates)
			sc.stranded[p.Name] = 0
		}
		for i := range v.NumNodes() {
			id := scheduler.NodeID(i)
			n := v.Node(id)
			u := v.Usage(id)
			if sc.nodes[n.Pool] == nil {
				sc.nodes[n.Pool] = make([]int, c.nstates)
			}
			if int(n.State) < c.nstates {
				sc.nodes[n.Pool][n.State]++
			}
			if len(n.GPUs) == 0 {
				continue
			}
			model := n.GPUs[0].Model
			k := poolModel{n.Pool, model}
			r := sc.pools[k]
			if r == nil {
				r = &poolRow{}
				sc.pools[k] = r
			}
			r.capacity += u.GPUCap
			r.allocated += u.GPUCap - u.GPUFree
			for _, held := range u.Held { // an unhealthy device's free share is withheld, not allocated
				r.allocated -= int64(held)
			}
			for _, g := range v.UnhealthyDevices(id) {
				r.unhealthy += int64(n.GPUs[g].MilliCap)
			}
			if n.State == scheduler.NodeReady {
				r.free += u.GPUFree
			}
			sc.stranded[n.Pool] += c.strand.GPUs(v, id, n.State)
			for g := range n.GPUs {
				sc.devices = append(sc.devices, device{node: n.Name, model: model, pool: n.Pool, index: g})
			}
		}
	})
	return sc
}

// Collect implements prometheus.Collector: the state is read under the
// FSM's lock, the series sent after it is released.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	sc := c.read()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for name, r := range sc.tenants {
		gauge(descQueued, float64(r.queued), name)
		gauge(descPendingGPUs, gpus(r.pendingGPU), name)
		gauge(descRunning, float64(r.running), name)
		gauge(descRunningGPUs, gpus(r.runningGP), name)
	}
	for k, r := range sc.pools {
		gauge(descCapacity, gpus(r.capacity), k.pool, k.model)
		gauge(descAllocated, gpus(r.allocated), k.pool, k.model)
		gauge(descFree, gpus(r.free), k.pool, k.model)
		gauge(descUnhealthy, gpus(r.unhealthy), k.pool, k.model)
	}
	for pool, v := range sc.stranded {
		// A sum of doubles: rounded to a micro-GPU, so that equal states
		// read equal whatever the order of the sum.
		gauge(descStranded, math.Round(v*1e6)/1e6, pool)
	}
	for pool, counts := range sc.nodes {
		for st, n := range counts {
			gauge(descNodes, float64(n), pool, scheduler.NodeState(st).String())
		}
	}
	// Devices in a stable order, their UUIDs looked up outside the lock.
	slices.SortFunc(sc.devices, func(a, b device) int { return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.index, b.index)) })
	var uuids []string
	last := ""
	for _, d := range sc.devices {
		if c.o.Devices != nil && d.node != last {
			uuids, last = c.o.Devices(d.node), d.node
		}
		uuid := ""
		if d.index < len(uuids) {
			uuid = uuids[d.index]
		}
		gauge(descGPUInfo, 1, d.node, strconv.Itoa(d.index), d.model, d.pool, uuid)
	}
	gauge(descApplied, float64(sc.applied))

	stats := c.s.RaftStats()
	for _, st := range raftStates {
		v := 0.0
		if stats["state"] == st {
			v = 1
		}
		gauge(descRaftState, v, strings.ToLower(st))
	}
	for _, g := range raftGauges {
		if v, ok := parseUint(stats[g.key]); ok {
			gauge(descRaft[g.key], v)
		}
	}
	if v, ok := lastContact(stats["last_contact"]); ok {
		gauge(descLastContact, v)
	}
}
