package scheduler

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
)

// NodeID is a node's index in its cluster; ids are dense and never reused.
type NodeID int32

// NoNode is the NodeID of "no node".
const NoNode NodeID = -1

// nodeRec is the hot, fixed-size record of one node that filters and scores
// read. Everything variable-length lives in the cluster's slabs.
type nodeRec struct {
	cpuCap, memCap   int64
	cpuFree, memFree int64
	gpuFreeSum       int64 // sum of free milli over the node's GPUs
	gpuOff, gpuN     int32 // the node's GPUs in the slabs
	fullFree         int32 // GPUs with all their capacity free
	model            int32 // model id; -1 for a node without GPUs
	pool             int32
	rack             int32
	state            NodeState
	plain            bool   // at most 8 devices, all whole GPUs (see nodeClass)
	devCap           int32  // every device's capacity when they all have one; else 0
	tags             uint64 // bit per task tag present (see taskTag)
	sick             uint64 // bit per device withheld as unhealthy (SetDeviceHealth)
	seq              uint64 // change sequence of the last mutation
}

// Cluster is the placement core's view of a fleet: static node attributes,
// the free capacity of every node and GPU, and the per-shape score indexes.
// It is not safe for concurrent use; drivers serialise access.
type Cluster struct {
	pools     []Pool
	poolByNam map[string]int32
	specs     []Node   // as registered, for labels and names
	names     []string // the nodes' names, dense: plans name a node for each task
	labels    []map[string]string
	nodes     []nodeRec
	byName    map[string]NodeID
	rank      []int32 // tie-break rank of each node: lower wins
	order     []NodeID
	ranked    uint64 // counts SetRanks calls, so a Replica sees new ranks cheaply
	rackNames []string
	rackByNam map[string]int32
	rackNodes [][]NodeID

	models    []string
	modelByNm map[string]int32

	// GPU slabs, indexed by nodeRec.gpuOff + device index.
	gpuFree   []int32
	gpuCap    []int32
	gpuIsland []int16
	// gpuExcl marks the exclusive devices (GPU.Exclusive: MIG instances).
	gpuExcl []bool
	// gpuHeld is the free milli of an unhealthy device, withheld from
	// placement: its gpuFree reads 0, so every fit, index and score skips it
	// unchanged, and it gets this back when healthy again.
	gpuHeld []int32
	// tagCount[n*numTags+t] counts the live tasks with tag t on node n.
	tagCount []int32

	selectors []selector
	selByKey  map[string]int32

	// change log: node ids mutated, for the lazy refresh of shape indexes.
	log     []NodeID
	logBase uint64 // sequence number of log[0]
	seq     uint64 // sequence number of the next mutation

	idx      idxCache
	heap     []int // scratch for visitBest
	jobShape Shape // scratch for PlaceJob
	memo     map[nodeClass]int64
	// spread caches the failure domains of the nodes per spread label
	// (labels never change once a node is registered); nil is empty.
	spread map[string]*spreadDomains

	// maxCPU and maxGPU are the largest node shape, the default normalisers.
	maxCPU, maxGPU int64

	// gpuCapAll is the milli-GPU capacity of every device, ready or not.
	gpuCapAll int64

	held heldScratch // scratch for a pass's checkHeld
}

// numTags is the number of task tags: 0 for a share, k for k whole GPUs,
// and numTags-1 for any task of that many or more (a bit each in a uint64).
const numTags = 64

// NewCluster builds a cluster from pools and nodes. Node ranks start as the
// registration order.
func NewCluster(pools []Pool, nodes []Node) (*Cluster, error) {
	c := &Cluster{
		poolByNam: map[string]int32{},
		byName:    map[string]NodeID{},
		rackByNam: map[string]int32{},
		modelByNm: map[string]int32{},
		selByKey:  map[string]int32{},
	}
	c.selectors = append(c.selectors, selector{}) // id 0: no constraint
	c.idx.init()
	for _, p := range pools {
		if err := c.AddPool(p); err != nil {
			return nil, err
		}
	}
	for _, n := range nodes {
		if _, err := c.AddNode(n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// AddPool registers a pool.
func (c *Cluster) AddPool(p Pool) error {
	if p.Name == "" {
		return fmt.Errorf("pool: field name: want a non-empty name")
	}
	if _, dup := c.poolByNam[p.Name]; dup {
		return fmt.Errorf("pool %s: already registered", p.Name)
	}
	if !(p.PricePerGPUHour >= 0) || math.IsInf(p.PricePerGPUHour, 1) {
		// NaN fails every comparison; it would break every later snapshot.
		return fmt.Errorf("pool %s: field price_per_gpu_hour: want a finite number >= 0, got %g", p.Name, p.PricePerGPUHour)
	}
	if p.MaxNodes < 0 {
		return fmt.Errorf("pool %s: field max_nodes: want >= 0, got %d", p.Name, p.MaxNodes)
	}
	p.Labels = maps.Clone(p.Labels)
	c.poolByNam[p.Name] = int32(len(c.pools))
	c.pools = append(c.pools, p)
	return nil
}

// Pools returns the registered pools.
func (c *Cluster) Pools() []Pool { return c.pools }

// AddNode registers a node in an existing pool and returns its id.
func (c *Cluster) AddNode(n Node) (NodeID, error) {
	if n.Name == "" {
		return NoNode, fmt.Errorf("node: field name: want a non-empty name")
	}
	if _, dup := c.byName[n.Name]; dup {
		return NoNode, fmt.Errorf("node %s: already registered", n.Name)
	}
	if n.Pool == "" {
		// A node without a pool joins the implicit onprem pool "default".
		n.Pool = "default"
		if _, ok := c.poolByNam[n.Pool]; !ok {
			if err := c.AddPool(Pool{Name: n.Pool}); err != nil {
				return NoNode, err
			}
		}
	}
	pool, ok := c.poolByNam[n.Pool]
	if !ok {
		return NoNode, fmt.Errorf("node %s: field pool: unknown pool %q", n.Name, n.Pool)
	}
	if n.CPUMilli < 0 || n.CPUMilli > MaxNodeCPUMilli {
		return NoNode, fmt.Errorf("node %s: field cpu_milli: want 0..%d, got %d", n.Name, int64(MaxNodeCPUMilli), n.CPUMilli)
	}
	if n.MemoryMiB < 0 || n.MemoryMiB > MaxNodeMemoryMiB {
		return NoNode, fmt.Errorf("node %s: field memory_mib: want 0..%d, got %d", n.Name, int64(MaxNodeMemoryMiB), n.MemoryMiB)
	}
	if len(n.GPUs) > MaxGPUsPerNode {
		return NoNode, fmt.Errorf("node %s: field gpus: at most %d devices, got %d", n.Name, MaxGPUsPerNode, len(n.GPUs))
	}
	model := int32(-1)
	gpus := slices.Clone(n.GPUs)
	for i := range gpus {
		g := &gpus[i]
		if g.Model == "" {
			return NoNode, fmt.Errorf("node %s: gpus[%d].model: want a model name", n.Name, i)
		}
		if gpus[0].Model != g.Model {
			return NoNode, fmt.Errorf("node %s: gpus[%d].model: %q differs from gpus[0] %q; a node has one GPU model", n.Name, i, g.Model, gpus[0].Model)
		}
		if g.MIG != "" {
			// An instance holds its profile's share, whatever capacity it
			// states: a daemon's node is not checked by a fleet file. How
			// instances share one physical GPU the model does not record.
			m, err := migMilli(g.MIG)
			switch {
			case err != nil:
				return NoNode, fmt.Errorf("node %s: gpus[%d].mig: %w", n.Name, i, err)
			case g.MilliCap != 0 && g.MilliCap != m:
				return NoNode, fmt.Errorf("node %s: gpus[%d].milli_cap: MIG profile %s holds %d milli, got %d", n.Name, i, g.MIG, m, g.MilliCap)
			}
			g.MilliCap = m
		}
		if g.MilliCap == 0 {
			g.MilliCap = MilliPerGPU
		}
		if g.MilliCap < 0 || g.MilliCap > MilliPerGPU {
			return NoNode, fmt.Errorf("node %s: gpus[%d].milli_cap: want 1..1000, got %d", n.Name, i, g.MilliCap)
		}
	}
	if len(gpus) > 0 {
		if _, known := c.modelByNm[gpus[0].Model]; !known && len(c.models) >= MaxModels {
			return NoNode, fmt.Errorf("node %s: gpus[0].model: %q would be GPU model %d; a cluster has at most %d", n.Name, gpus[0].Model, len(c.models)+1, MaxModels)
		}
		model = c.modelID(gpus[0].Model)
	}
	n.GPUs = gpus
	n.Labels = maps.Clone(n.Labels)
	id := NodeID(len(c.nodes))
	rec := nodeRec{
		cpuCap: n.CPUMilli, memCap: n.MemoryMiB, cpuFree: n.CPUMilli, memFree: n.MemoryMiB,
		gpuOff: int32(len(c.gpuFree)), gpuN: int32(len(gpus)), model: model, pool: pool,
		rack: c.rackID(n.Rack), state: n.State,
	}
	rec.plain = len(gpus) <= 8
	for i := range gpus {
		g := &gpus[i]
		if i == 0 {
			rec.devCap = g.MilliCap
		} else if g.MilliCap != rec.devCap {
			rec.devCap = 0
		}
		excl := g.Exclusive()
		rec.plain = rec.plain && !excl
		c.gpuFree = append(c.gpuFree, g.MilliCap)
		c.gpuCap = append(c.gpuCap, g.MilliCap)
		c.gpuCapAll += int64(g.MilliCap)
		c.gpuIsland = append(c.gpuIsland, int16(g.Island))
		c.gpuExcl = append(c.gpuExcl, excl)
		c.gpuHeld = append(c.gpuHeld, 0)
		rec.gpuFreeSum += int64(g.MilliCap)
		if !excl {
			rec.fullFree++
		}
	}
	c.nodes = append(c.nodes, rec)
	c.specs = append(c.specs, n)
	c.names = append(c.names, n.Name)
	c.labels = append(c.labels, c.mergedLabels(pool, n))
	c.byName[n.Name] = id
	c.rank = append(c.rank, int32(id))
	c.order = append(c.order, id)
	c.tagCount = append(c.tagCount, make([]int32, numTags)...)
	if rec.rack >= 0 {
		c.rackNodes[rec.rack] = append(c.rackNodes[rec.rack], id)
	}
	c.maxCPU = max(c.maxCPU, n.CPUMilli)
	c.maxGPU = max(c.maxGPU, rec.gpuFreeSum)
	for s := 1; s < len(c.selectors); s++ {
		c.selectors[s].ok = append(c.selectors[s].ok, c.selectors[s].match(c.labels[id]))
	}
	c.idx.reset() // the node set changed: every index is rebuilt on next use
	c.touch(id)
	return id, nil
}

func (c *Cluster) mergedLabels(pool int32, n Node) map[string]string {
	p := c.pools[pool]
	l := map[string]string{"pool": p.Name, "pool.kind": p.Kind.String()}
	if p.Region != "" {
		l["region"] = p.Region
	}
	if p.Zone != "" {
		l["zone"] = p.Zone
	}
	if n.Rack != "" {
		l["rack"] = n.Rack
	}
	maps.Copy(l, p.Labels)
	maps.Copy(l, n.Labels)
	return l
}

func (c *Cluster) modelID(m string) int32 {
	if id, ok := c.modelByNm[m]; ok {
		return id
	}
	id := int32(len(c.models))
	c.models = append(c.models, m)
	c.modelByNm[m] = id
	return id
}

func (c *Cluster) rackID(r string) int32 {
	if r == "" {
		return -1
	}
	if id, ok := c.rackByNam[r]; ok {
		return id
	}
	id := int32(len(c.rackNames))
	c.rackNames = append(c.rackNames, r)
	c.rackByNam[r] = id
	c.rackNodes = append(c.rackNodes, nil)
	return id
}

// NumNodes is the number of registered nodes.
func (c *Cluster) NumNodes() int { return len(c.nodes) }

// Node returns the registered spec of a node (its state kept current).
func (c *Cluster) Node(id NodeID) Node {
	n := c.specs[id]
	n.State = c.nodes[id].state
	return n
}

// NodeName returns a node's name: Node(id).Name without the copy of the
// node.
func (c *Cluster) NodeName(id NodeID) string { return c.names[id] }

// NodeGPUs returns a node's devices (read-only): Node(id).GPUs without
// the copy of the node.
func (c *Cluster) NodeGPUs(id NodeID) []GPU { return c.specs[id].GPUs }

// NodeByName finds a node's id.
func (c *Cluster) NodeByName(name string) (NodeID, bool) {
	id, ok := c.byName[name]
	return id, ok
}

// Labels returns a node's labels merged over its pool's (read-only).
func (c *Cluster) Labels(id NodeID) map[string]string { return c.labels[id] }

// PoolOf returns the pool of a node.
func (c *Cluster) PoolOf(id NodeID) *Pool { return &c.pools[c.nodes[id].pool] }

// SetState changes a node's health state. Work already there stays; only a
// ready node takes new work.
func (c *Cluster) SetState(id NodeID, s NodeState) {
	if c.nodes[id].state != s {
		c.nodes[id].state = s
		c.touch(id)
	}
}

// SetDeviceHealth marks devices of a node unhealthy (healthy false) or
// healthy again, and reports whether anything changed. An unhealthy device
// offers no free capacity to any placement; the tasks running on it keep
// running, and what they release is withheld too. When it is healthy again
// its free capacity is its capacity less what runs there.
func (c *Cluster) SetDeviceHealth(id NodeID, devices []int, healthy bool) (bool, error) {
	if id < 0 || int(id) >= len(c.nodes) {
		return false, fmt.Errorf("device health: unknown node %d", id)
	}
	r := &c.nodes[id]
	var mask uint64
	for k, d := range devices {
		if d < 0 || d >= int(r.gpuN) {
			return false, fmt.Errorf("device health on %s: field devices[%d]: no device %d (the node has %d)", c.specs[id].Name, k, d, r.gpuN)
		}
		mask |= 1 << uint(d)
	}
	if healthy {
		mask &= r.sick
	} else {
		mask &^= r.sick
	}
	if mask == 0 {
		return false, nil
	}
	for m := mask; m != 0; m &= m - 1 {
		g := r.gpuOff + int32(trailingZeros(m))
		if healthy {
			c.gpuFree[g], c.gpuHeld[g] = c.gpuHeld[g], 0
			r.gpuFreeSum += int64(c.gpuFree[g])
			if c.wholeFree(g) {
				r.fullFree++
			}
			continue
		}
		if c.wholeFree(g) {
			r.fullFree--
		}
		r.gpuFreeSum -= int64(c.gpuFree[g])
		c.gpuFree[g], c.gpuHeld[g] = 0, c.gpuFree[g]
	}
	r.sick ^= mask
	c.touch(id)
	return true, nil
}

// UnhealthyDevices returns the devices of a node marked unhealthy, in
// order (nil when none).
func (c *Cluster) UnhealthyDevices(id NodeID) []int {
	var out []int
	for m := c.nodes[id].sick; m != 0; m &= m - 1 {
		out = append(out, trailingZeros(m))
	}
	return out
}

// SetRanks sets each node's tie-break rank from a permutation of the node
// ids: perm[i] is the node of rank i. Drivers draw it from their seed.
func (c *Cluster) SetRanks(perm []NodeID) error {
	if len(perm) != len(c.nodes) {
		return fmt.Errorf("ranks: want a permutation of %d nodes, got %d", len(c.nodes), len(perm))
	}
	seen := make([]bool, len(perm))
	for _, n := range perm {
		if n < 0 || int(n) >= len(perm) || seen[n] {
			return fmt.Errorf("ranks: not a permutation: node %d repeated or out of range", n)
		}
		seen[n] = true
	}
	copy(c.order, perm)
	for r, n := range perm {
		c.rank[n] = int32(r)
	}
	c.ranked++
	c.idx.reset()
	return nil
}

// Rank returns a node's tie-break rank.
func (c *Cluster) Rank(id NodeID) int32 { return c.rank[id] }

// touch records that a node changed, so that every shape index refreshes it.
func (c *Cluster) touch(id NodeID) {
	c.nodes[id].seq = c.seq
	c.seq++
	c.log = append(c.log, id)
	// Keep the log bounded: an index that fell further behind rebuilds.
	if limit := 4*len(c.nodes) + 1024; len(c.log) > 2*limit {
		drop := len(c.log) - limit
		c.log = append(c.log[:0], c.log[drop:]...)
		c.logBase += uint64(drop)
	}
}

// NodeUsage is the free and total capacity of one node.
type NodeUsage struct {
	CPUFree, CPUCap int64
	MemFree, MemCap int64
	GPUFree, GPUCap int64 // milli-GPU summed over devices
	GPUs            []int32
	// Held is, device by device, the free milli withheld on the node's
	// unhealthy devices (whose GPUs entry reads 0); nil when none is.
	Held []int32
}

// Usage reports a node's capacity and what is free of it.
func (c *Cluster) Usage(id NodeID) NodeUsage {
	r := &c.nodes[id]
	u := NodeUsage{CPUFree: r.cpuFree, CPUCap: r.cpuCap, MemFree: r.memFree, MemCap: r.memCap, GPUFree: r.gpuFreeSum}
	for i := r.gpuOff; i < r.gpuOff+r.gpuN; i++ {
		u.GPUCap += int64(c.gpuCap[i])
	}
	u.GPUs = slices.Clone(c.gpuFree[r.gpuOff : r.gpuOff+r.gpuN])
	if r.sick != 0 {
		u.Held = slices.Clone(c.gpuHeld[r.gpuOff : r.gpuOff+r.gpuN])
	}
	return u
}

// Totals sums GPU capacity and allocation over the nodes, in milli-GPU.
func (c *Cluster) Totals() (capMilli, usedMilli int64) {
	for i := range c.gpuCap {
		capMilli += int64(c.gpuCap[i])
		usedMilli += int64(c.gpuCap[i] - c.gpuFree[i] - c.gpuHeld[i])
	}
	return capMilli, usedMilli
}

// Models lists the GPU models of the fleet, sorted.
func (c *Cluster) Models() []string {
	m := slices.Clone(c.models)
	sort.Strings(m)
	return m
}

// Assign is the placement of one task on one node: which GPUs, and how much
// of each. It is a plain value so the hot path allocates nothing.
type Assign struct {
	// Mask has bit i set for each device i of the node the task uses.
	Mask     uint64
	CPUMilli int64
	MemMiB   int64
	// Node comes after the 64-bit fields, with Take beside it: 40 bytes,
	// not 48 (running jobs hold one per task).
	Node NodeID
	// Take is the milli-GPU taken on each of those devices (a MIG instance
	// is taken whole).
	Take int32
	// Tag is the task's GPU tag (see taskTag), for tag-aware policies.
	Tag int8
}

// wholeFree reports whether device g (a slab index) can serve a whole-GPU
// task now (wholeDev: not exclusive, all of it free).
func (c *Cluster) wholeFree(g int32) bool { return wholeDev(c.gpuExcl[g], c.gpuFree[g]) }

// apply takes an assignment's resources from its node.
func (c *Cluster) apply(a *Assign) {
	r := &c.nodes[a.Node]
	r.cpuFree -= a.CPUMilli
	r.memFree -= a.MemMiB
	for m := a.Mask; m != 0; m &= m - 1 {
		g := r.gpuOff + int32(trailingZeros(m))
		if r.sick&(m&-m) != 0 { // undoing a release on a withheld device
			c.gpuHeld[g] -= a.Take
			continue
		}
		if c.wholeFree(g) {
			r.fullFree--
		}
		c.gpuFree[g] -= a.Take
		r.gpuFreeSum -= int64(a.Take)
	}
	if a.Tag >= 0 {
		tc := &c.tagCount[int(a.Node)*numTags+int(a.Tag)]
		*tc++
		r.tags |= 1 << uint(a.Tag)
	}
	c.touch(a.Node)
}

// release gives an assignment's resources back to its node.
func (c *Cluster) release(a *Assign) {
	r := &c.nodes[a.Node]
	r.cpuFree += a.CPUMilli
	r.memFree += a.MemMiB
	for m := a.Mask; m != 0; m &= m - 1 {
		g := r.gpuOff + int32(trailingZeros(m))
		if r.sick&(m&-m) != 0 { // freed, but still withheld until healthy
			c.gpuHeld[g] += a.Take
			continue
		}
		c.gpuFree[g] += a.Take
		if c.wholeFree(g) {
			r.fullFree++
		}
		r.gpuFreeSum += int64(a.Take)
	}
	if a.Tag >= 0 {
		tc := &c.tagCount[int(a.Node)*numTags+int(a.Tag)]
		*tc--
		if *tc == 0 {
			r.tags &^= 1 << uint(a.Tag)
		}
	}
	c.touch(a.Node)
}

// devUsed is what is allocated of device i of node r (a healthy device
// withholds nothing). It reads the device slabs only where the node
// record does not tell: the capacity, when the node's devices differ.
func (c *Cluster) devUsed(r *nodeRec, i int32) int32 {
	g := r.gpuOff + i
	capa := r.devCap
	if capa == 0 {
		capa = c.gpuCap[g]
	}
	used := capa - c.gpuFree[g]
	if r.sick&(1<<uint(i)) != 0 {
		used -= c.gpuHeld[g]
	}
	return used
}

// Commit re-checks an assignment against the current state and applies it.
// The leader does this before committing a plan, so a stale plan can never
// give a GPU twice.
func (c *Cluster) Commit(a Assign) error {
	if err := c.check(&a); err != nil {
		return err
	}
	c.apply(&a)
	return nil
}

// Release gives back the resources of an assignment made earlier. It checks
// that the assignment is plausible (nothing would exceed capacity).
func (c *Cluster) Release(a Assign) error {
	if a.Node < 0 || int(a.Node) >= len(c.nodes) {
		return fmt.Errorf("release: unknown node %d", a.Node)
	}
	r := &c.nodes[a.Node]
	// The name is read only for an error: the spec is cold.
	switch {
	case a.CPUMilli < 0 || a.MemMiB < 0 || a.Take < 0:
		return fmt.Errorf("release on %s: negative amount", c.specs[a.Node].Name)
	case a.Mask != 0 && a.Take == 0:
		return fmt.Errorf("release on %s: GPUs named but no share given back", c.specs[a.Node].Name)
	case a.Tag < -1 || int(a.Tag) >= numTags:
		return fmt.Errorf("release on %s: bad task tag %d", c.specs[a.Node].Name, a.Tag)
	}
	// Compare with what is in use: the sum free+amount could wrap.
	if a.CPUMilli > r.cpuCap-r.cpuFree || a.MemMiB > r.memCap-r.memFree {
		return fmt.Errorf("release on %s: CPU or memory would exceed capacity", c.specs[a.Node].Name)
	}
	for m := a.Mask; m != 0; m &= m - 1 {
		i := int32(trailingZeros(m))
		if i >= r.gpuN {
			return fmt.Errorf("release on %s: no GPU %d", c.specs[a.Node].Name, i)
		}
		if a.Take > c.devUsed(r, i) {
			return fmt.Errorf("release on %s: GPU %d would exceed capacity", c.specs[a.Node].Name, i)
		}
	}
	if a.Tag >= 0 && c.tagCount[int(a.Node)*numTags+int(a.Tag)] == 0 {
		return fmt.Errorf("release on %s: no task with tag %d", c.specs[a.Node].Name, a.Tag)
	}
	c.release(&a)
	return nil
}

func (c *Cluster) check(a *Assign) error {
	if a.Node < 0 || int(a.Node) >= len(c.nodes) {
		return fmt.Errorf("commit: unknown node %d", a.Node)
	}
	r := &c.nodes[a.Node]
	// The name is read only for an error: the spec is cold.
	if a.CPUMilli < 0 || a.MemMiB < 0 || a.Take < 0 {
		return fmt.Errorf("commit on %s: negative request", c.specs[a.Node].Name)
	}
	if a.CPUMilli > r.cpuFree {
		return fmt.Errorf("commit on %s: CPU oversubscribed: want %d, %d free", c.specs[a.Node].Name, a.CPUMilli, r.cpuFree)
	}
	if a.MemMiB > r.memFree {
		return fmt.Errorf("commit on %s: memory oversubscribed: want %d MiB, %d free", c.specs[a.Node].Name, a.MemMiB, r.memFree)
	}
	if a.Mask != 0 && a.Take == 0 {
		return fmt.Errorf("commit on %s: GPUs named but no share taken", c.specs[a.Node].Name)
	}
	for m := a.Mask; m != 0; m &= m - 1 {
		i := int32(trailingZeros(m))
		if i >= r.gpuN {
			return fmt.Errorf("commit on %s: no GPU %d", c.specs[a.Node].Name, i)
		}
		if c.gpuFree[r.gpuOff+i] < a.Take {
			return fmt.Errorf("commit on %s: GPU %d oversubscribed: want %d milli, %d free", c.specs[a.Node].Name, i, a.Take, c.gpuFree[r.gpuOff+i])
		}
	}
	if a.Tag < -1 || int(a.Tag) >= numTags {
		return fmt.Errorf("commit on %s: bad task tag %d", c.specs[a.Node].Name, a.Tag)
	}
	return nil
}
