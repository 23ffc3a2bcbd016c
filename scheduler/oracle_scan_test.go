package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file is a second placer, written from the policies' definitions
// (docs/scheduler.md and the scorers' doc comments) and sharing nothing
// with the fast path: no index, no score cache, no Shape, no Fits. It
// keeps its own copy of the free capacity, fed only the assignments the
// core makes once they have been checked against its own choice, and
// decides every task by scanning every node. The tests require the core
// (through the index, through the scan, and through PlaceJob's spread and
// gang-locality paths) to decide exactly as it does, on worlds drawn to hit
// exact limits: capacities and requests at 1-milli granularity, tasks that
// exactly fill a node's CPU, memory, a device or its free GPUs, and tasks
// one milli or one device beyond.

// oDev is one device as the oracle sees it.
type oDev struct {
	cap, free int64
	mig       bool // a MIG instance: exclusive, never serves a whole GPU
	island    int
}

// oNodeS is one node as the oracle sees it.
type oNodeS struct {
	name     string
	owned    bool
	price    float64
	rack     string
	labels   map[string]string
	cpuCap   int64
	memCap   int64
	cpuFree  int64
	memFree  int64
	model    string
	state    NodeState
	devs     []oDev
	tagCount map[int]int
}

// oWorld is the oracle's fleet.
type oWorld struct {
	nodes            []*oNodeS
	rank             []int // rank of each node id
	cpuNorm, gpuNorm int64
	target           []TargetType
}

// oMIGMilli is the capacity of a MIG instance: g compute slices of seven.
func oMIGMilli(profile string) int64 {
	g := int64(profile[0] - '0')
	return g * 1000 / 7
}

func newOWorld(pools []Pool, nodes []Node, target []TargetType) *oWorld {
	w := &oWorld{target: target}
	byName := map[string]Pool{}
	for _, p := range pools {
		byName[p.Name] = p
	}
	for i, n := range nodes {
		p := byName[n.Pool]
		if n.Pool == "" {
			p = Pool{Name: "default"}
		}
		labels := map[string]string{}
		for k, v := range map[string]string{"region": p.Region, "zone": p.Zone, "rack": n.Rack} {
			if v != "" {
				labels[k] = v
			}
		}
		for k, v := range p.Labels {
			labels[k] = v
		}
		for k, v := range n.Labels {
			labels[k] = v // node labels override the pool's
		}
		on := &oNodeS{name: n.Name, owned: p.Kind != PoolCloud, price: p.PricePerGPUHour, rack: n.Rack, labels: labels,
			cpuCap: n.CPUMilli, memCap: n.MemoryMiB, cpuFree: n.CPUMilli, memFree: n.MemoryMiB, state: n.State,
			tagCount: map[int]int{}}
		var gpuCap int64
		for _, g := range n.GPUs {
			d := oDev{cap: 1000, island: g.Island}
			if g.MIG != "" {
				d.cap, d.mig = oMIGMilli(g.MIG), true
			}
			d.free = d.cap
			on.devs = append(on.devs, d)
			on.model = g.Model
			gpuCap += d.cap
		}
		w.nodes = append(w.nodes, on)
		w.rank = append(w.rank, i)
		w.cpuNorm = max(w.cpuNorm, n.CPUMilli)
		w.gpuNorm = max(w.gpuNorm, gpuCap)
	}
	w.cpuNorm, w.gpuNorm = max(w.cpuNorm, 1), max(w.gpuNorm, 1)
	return w
}

func (n *oNodeS) idle() int64 {
	var s int64
	for _, d := range n.devs {
		s += d.free
	}
	return s
}

// wholeFree lists the devices that can serve a whole-GPU task: whole GPUs
// with nothing on them, lowest number first.
func (n *oNodeS) wholeFree() []int {
	var out []int
	for i, d := range n.devs {
		if !d.mig && d.free == 1000 {
			out = append(out, i)
		}
	}
	return out
}

// oTag is a task's GPU tag: none for CPU-only, 0 for a share, k for k
// whole GPUs (at most 63).
func oTag(t *Task) int {
	switch {
	case t.GPUs == 0:
		return -1
	case t.GPUMilli < 1000:
		return 0
	}
	return min(t.GPUs, 63)
}

func oSharing(t *Task) bool { return t.GPUs == 1 && t.GPUMilli < 1000 }

// matches is the label and residency filter.
func (n *oNodeS) matches(t *Task) bool {
	if len(t.Residency) > 0 && !slices.Contains(t.Residency, n.labels["region"]) {
		return false
	}
	for _, k := range t.Constraints {
		v, has := n.labels[k.Key]
		switch k.Op {
		case OpIn:
			if !has || !slices.Contains(k.Values, v) {
				return false
			}
		case OpNotIn:
			if has && slices.Contains(k.Values, v) {
				return false
			}
		case OpExists:
			if !has {
				return false
			}
		}
	}
	return true
}

// feasible is the resource fit every policy starts with.
func (n *oNodeS) feasible(t *Task) bool {
	if n.state != NodeReady || n.cpuFree < t.CPUMilli || n.memFree < t.MemoryMiB || !n.matches(t) {
		return false
	}
	if t.GPUs == 0 {
		return true
	}
	if len(n.devs) == 0 || (len(t.Models) > 0 && !slices.Contains(t.Models, n.model)) {
		return false
	}
	if !oSharing(t) {
		return len(n.wholeFree()) >= t.GPUs
	}
	for _, d := range n.devs {
		if d.free >= int64(t.GPUMilli) {
			return true
		}
	}
	return false
}

// take is what a share takes of a device: itself, or all of a MIG instance.
func (d *oDev) take(milli int64) int64 {
	if d.mig {
		return d.free
	}
	return milli
}

// frag is FGD's fragmentation (FRAG-METHOD §5) of a node with free CPU
// cpu and devices free against the target workload.
func (w *oWorld) frag(cpu int64, free []int64, model string) float64 {
	var idle int64
	for _, f := range free {
		idle += f
	}
	var F float64
	for _, tt := range w.target {
		accepted := tt.Models == "" || slices.Contains(strings.Split(tt.Models, "|"), model)
		if tt.Milli == 0 || !accepted {
			F += tt.Prob * float64(idle)
			continue
		}
		cnt, small := 0, int64(0)
		for _, f := range free {
			if f >= int64(tt.Milli) {
				cnt++
			} else {
				small += f
			}
		}
		if cnt >= int(tt.GPUs) && cpu >= tt.CPU {
			F += tt.Prob * float64(small)
		} else {
			F += tt.Prob * float64(idle)
		}
	}
	return F
}

// rho is fgd-strand's CPU milli per GPU milli of the target's GPU types.
func (w *oWorld) rho() float64 {
	var cpu, gpu float64
	for _, tt := range w.target {
		if tt.Milli > 0 {
			cpu += tt.Prob * float64(tt.CPU)
			gpu += tt.Prob * float64(tt.Milli) * float64(tt.GPUs)
		}
	}
	if cpu > 0 && gpu > 0 {
		return cpu / gpu
	}
	return 0
}

// strandF is fgd-strand's F' = F + max(0, idle − cpu/ρ).
func (w *oWorld) strandF(cpu int64, free []int64, model string) float64 {
	F := w.frag(cpu, free, model)
	if r := w.rho(); r != 0 {
		var idle int64
		for _, f := range free {
			idle += f
		}
		F += max(0, float64(idle)-float64(cpu)/r)
	}
	return F
}

// trial scores a node for a task by a fragmentation measure: the change
// F(before) − F(after) through conv, and for a share the lowest-numbered
// device of the best result (fgd compares the scores, fgd-strand the exact
// changes: exact is true).
func (w *oWorld) trial(n *oNodeS, t *Task, measure func(int64, []int64, string) float64, conv func(float64) int64, exact bool) (int64, int) {
	free := make([]int64, len(n.devs))
	for i, d := range n.devs {
		free[i] = d.free
	}
	before := measure(n.cpuFree, free, n.model)
	cpu := n.cpuFree - t.CPUMilli
	switch {
	case t.GPUs == 0:
		return conv(before - measure(cpu, free, n.model)), -1
	case !oSharing(t):
		for _, i := range n.wholeFree()[:t.GPUs] {
			free[i] = 0
		}
		return conv(before - measure(cpu, free, n.model)), -1
	}
	best, dev := math.Inf(-1), -1
	for i := range free {
		x := free[i]
		if x < int64(t.GPUMilli) {
			continue
		}
		free[i] = x - n.devs[i].take(int64(t.GPUMilli))
		d := before - measure(cpu, free, n.model)
		if !exact {
			d = float64(conv(d))
		}
		if d > best {
			best, dev = d, i
		}
		free[i] = x
	}
	if dev < 0 {
		return math.MinInt64, -1
	}
	if exact {
		return conv(best), dev
	}
	return int64(best), dev
}

func oSigmoid(d float64) int64 { return int64(100 / (1 + math.Exp(-d/1000))) }

func oExact(d float64) int64 { return int64(math.Round(d * 1000)) }

// bestFitRaw is best fit's raw score: 100 (1 − left), left the free CPU and
// GPU after the placement, each over its normaliser, weighted one half.
func (w *oWorld) bestFitRaw(n *oNodeS, t *Task) int64 {
	req := int64(t.GPUs) * int64(t.GPUMilli)
	left := 0.5*float64(n.cpuFree-t.CPUMilli)/float64(w.cpuNorm) + 0.5*float64(n.idle()-req)/float64(w.gpuNorm)
	return int64(100 * (1 - left))
}

// islandFit is the topology policy's island score.
func (w *oWorld) islandFit(n *oNodeS, t *Task) int64 {
	if t.GPUs < 2 || oSharing(t) {
		return 0
	}
	counts := map[int]int{}
	for _, i := range n.wholeFree() {
		isl := n.devs[i].island
		if isl < 0 || isl >= 64 {
			isl = 0
		}
		counts[isl]++
	}
	tight := -1
	for _, k := range counts {
		if k >= t.GPUs && (tight < 0 || k < tight) {
			tight = k
		}
	}
	if tight < 0 {
		return 0
	}
	return int64(100 - (tight - t.GPUs))
}

// score is a node's raw score under a policy (before any per-decision
// normalisation), and the device a trial-based policy chose for a share.
func (w *oWorld) score(pol string, n *oNodeS, t *Task) (int64, int) {
	req := int64(t.GPUs) * int64(t.GPUMilli)
	cn, gn := float64(w.cpuNorm), float64(w.gpuNorm)
	switch pol {
	case "random", "first-fit":
		return 0, -1
	case "best-fit":
		return w.bestFitRaw(n, t), -1
	case "spread":
		left := 0.5*float64(n.cpuFree-t.CPUMilli)/cn + 0.5*float64(n.idle()-req)/gn
		return int64(100 * left), -1
	case "dot-product":
		dot := float64(n.cpuFree)/cn*(float64(t.CPUMilli)/cn) + float64(n.idle())/gn*(float64(req)/gn)
		return int64(100 * (1 - dot/2)), -1
	case "gpu-clustering":
		tag := oTag(t)
		if tag < 0 {
			return 0, -1
		}
		base := 25 * (w.gpuNorm - n.idle()) / w.gpuNorm
		has, others := n.tagCount[tag] > 0, 0
		for k, v := range n.tagCount {
			if k != tag && v > 0 {
				others++
			}
		}
		switch {
		case has && others == 0:
			return base + 75, -1
		case has:
			return base + 50, -1
		case others == 0:
			return base + 25, -1
		}
		return base, -1
	case "gpu-packing":
		if t.GPUs == 0 {
			return 0, -1
		}
		if ff := len(n.wholeFree()); ff == len(n.devs) {
			return int64(max(33-ff, ff)), -1
		}
		order := make([]int, len(n.devs))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return int(n.devs[a].free - n.devs[b].free) })
		kept, full, sum := 0, 0, int64(0)
		for _, i := range order {
			if kept < t.GPUs && n.devs[i].free >= int64(t.GPUMilli) {
				kept++
				if n.devs[i].free == 1000 {
					full++
				}
				sum += n.devs[i].free * 100 / 1000
			}
		}
		if full > 0 {
			return int64(max(50-full, 33)), -1
		}
		return max(100-sum/10, 50), -1
	case "fgd":
		return w.trial(n, t, w.frag, oSigmoid, false)
	case "fgd-strand":
		return w.trial(n, t, w.strandF, oExact, true)
	case "topology":
		return 1000*w.islandFit(n, t) + w.bestFitRaw(n, t), -1
	}
	panic("oracle: no policy " + pol)
}

// tier is the cost tier: owned capacity first, then cheaper cloud.
func (w *oWorld) tier(n *oNodeS, cost bool) int64 {
	if !cost {
		return 0
	}
	const top = 1<<20 - 1
	if n.owned {
		return top
	}
	return max(top-1-int64(n.price*1000), 0)
}

// oPolicy is a policy as the oracle runs it.
type oPolicy struct {
	name string
	cost bool
}

// total is a node's complete, unnormalised score: the cost tier above the
// policy's own.
func (w *oWorld) total(p oPolicy, n *oNodeS, t *Task) int64 {
	s, _ := w.score(p.name, n, t)
	return w.tier(n, p.cost)<<32 + s
}

// candidates lists the feasible nodes among ids (all nodes when nil).
func (w *oWorld) candidates(t *Task, ids []int) []int {
	var out []int
	if ids == nil {
		for i := range w.nodes {
			if w.nodes[i].feasible(t) {
				out = append(out, i)
			}
		}
		return out
	}
	for _, i := range ids {
		if w.nodes[i].feasible(t) {
			out = append(out, i)
		}
	}
	return out
}

// decide is one decision by scan: the highest score, lowest rank among
// equals; best fit is min-max rescaled to 0..100 over the candidates first.
// -1 when nothing fits. It returns the feasible count too.
func (w *oWorld) decide(p oPolicy, t *Task) (int, int) {
	cands := w.candidates(t, nil)
	if len(cands) == 0 {
		return -1, 0
	}
	scores := make([]int64, len(cands))
	for i, id := range cands {
		scores[i], _ = w.score(p.name, w.nodes[id], t)
	}
	if p.name == "best-fit" {
		lo, hi := slices.Min(scores), slices.Max(scores)
		for i := range scores {
			if hi == lo {
				scores[i] = 0
			} else {
				scores[i] = (scores[i] - lo) * 100 / (hi - lo)
			}
		}
	}
	best := -1
	var bestV int64
	for i, id := range cands {
		v := w.tier(w.nodes[id], p.cost)<<32 + scores[i]
		if best < 0 || v > bestV || (v == bestV && w.rank[id] < w.rank[best]) {
			best, bestV = id, v
		}
	}
	return best, len(cands)
}

// bestOf is the highest unnormalised total among feasible ids, lowest rank
// among equals; -1 when none fits.
func (w *oWorld) bestOf(p oPolicy, t *Task, ids []int) int {
	best := -1
	var bestV int64
	for _, id := range w.candidates(t, ids) {
		v := w.total(p, w.nodes[id], t)
		if best < 0 || v > bestV || (v == bestV && w.rank[id] < w.rank[best]) {
			best, bestV = id, v
		}
	}
	return best
}

// pick chooses the devices of a task on node id: whole GPUs on the
// lowest-numbered free devices (topology: from the tightest NVLink island
// that holds them, else the fullest islands first); a share on the device a
// trial-based policy chose, else on the device with the least free that
// still fits, lowest number first. ok is false for the random policy's
// shares, drawn by chance.
func (w *oWorld) pick(pol string, id int, t *Task) (mask uint64, take int64, ok bool) {
	n := w.nodes[id]
	if t.GPUs == 0 {
		return 0, 0, true
	}
	if oSharing(t) {
		dev := -1
		switch pol {
		case "random":
			return 0, 0, false
		case "fgd", "fgd-strand":
			_, dev = w.score(pol, n, t)
		default:
			for i, d := range n.devs {
				if d.free >= int64(t.GPUMilli) && (dev < 0 || d.free < n.devs[dev].free) {
					dev = i
				}
			}
		}
		return 1 << uint(dev), n.devs[dev].take(int64(t.GPUMilli)), true
	}
	free := n.wholeFree()
	if pol != "topology" {
		for _, i := range free[:t.GPUs] {
			mask |= 1 << uint(i)
		}
		return mask, 1000, true
	}
	byIsland := map[int][]int{}
	var islands []int
	for _, i := range free {
		isl := n.devs[i].island
		if isl < 0 || isl >= 64 {
			isl = 0
		}
		if byIsland[isl] == nil {
			islands = append(islands, isl)
		}
		byIsland[isl] = append(byIsland[isl], i)
	}
	slices.Sort(islands)
	need := t.GPUs
	for need > 0 {
		pick := -1
		for _, isl := range islands {
			k := len(byIsland[isl])
			if k == 0 {
				continue
			}
			if pick < 0 {
				pick = isl
				continue
			}
			pk := len(byIsland[pick])
			switch {
			case k >= need && (pk < need || k < pk):
				pick = isl
			case k < need && pk < need && k > pk:
				pick = isl
			}
		}
		for _, i := range byIsland[pick] {
			if need > 0 {
				mask |= 1 << uint(i)
				need--
			}
		}
		byIsland[pick] = nil
	}
	return mask, 1000, true
}

// apply takes (sign -1) or gives back (sign +1) an assignment.
func (w *oWorld) apply(a Assign, t *Task, sign int64) {
	n := w.nodes[a.Node]
	n.cpuFree += sign * a.CPUMilli
	n.memFree += sign * a.MemMiB
	for i := range n.devs {
		if a.Mask&(1<<uint(i)) != 0 {
			n.devs[i].free += sign * int64(a.Take)
		}
	}
	if tag := oTag(t); tag >= 0 {
		n.tagCount[tag] -= int(sign)
	}
}

// oCheckState requires the core's free capacity to be the oracle's, node
// by node and device by device.
func oCheckState(t *testing.T, c *Cluster, w *oWorld, where string) {
	t.Helper()
	for i, n := range w.nodes {
		u := c.Usage(NodeID(i))
		require.Equal(t, n.cpuFree, u.CPUFree, "%s: node %s CPU", where, n.name)
		require.Equal(t, n.memFree, u.MemFree, "%s: node %s memory", where, n.name)
		require.Len(t, u.GPUs, len(n.devs))
		for d := range n.devs {
			require.Equal(t, n.devs[d].free, int64(u.GPUs[d]), "%s: node %s GPU %d", where, n.name, d)
		}
	}
}

// oMIGLayouts are partitions of one GPU into at most seven slices.
var oMIGLayouts = [][]string{
	{"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"},
	{"4g.40gb", "3g.40gb"},
	{"1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb"},
	{"2g.20gb", "2g.20gb", "3g.40gb"},
	{"7g.80gb"}, // full size: 1000 milli, still exclusive
}

// exactFleet draws a small fleet with capacities at 1-milli (and 1-MiB)
// granularity: 0 to 8 GPUs of three models in NVLink islands of 2 or 4,
// some with one GPU MIG-partitioned (full-size 7g instances too) beside
// whole GPUs, some nodes alike, over three pools (one of them
// cloud), racks and zones (some nodes without a zone).
func exactFleet(rng *rand.Rand, n int) ([]Pool, []Node) {
	pools := []Pool{
		{Name: "own", Kind: PoolOnPrem, Region: "eu"},
		{Name: "edge", Kind: PoolOutposts, Region: "us"},
		{Name: "cloud", Kind: PoolCloud, Region: "eu", PricePerGPUHour: 2.5},
	}
	models := []string{"A100", "H100", "L4"}
	nodes := make([]Node, n)
	for i := range nodes {
		if i > 0 && rng.IntN(5) == 0 {
			// A node like an earlier one: ties, and alike nodes for fgd's classes.
			nodes[i] = nodes[rng.IntN(i)]
			nodes[i].GPUs = slices.Clone(nodes[i].GPUs)
			nodes[i].Name = fmt.Sprintf("n%02d", i)
			continue
		}
		m := models[rng.IntN(len(models))]
		var gpus []GPU
		k := []int{0, 1, 2, 3, 4, 8, 8}[rng.IntN(7)]
		island := []int{2, 4}[rng.IntN(2)]
		if k > 0 && rng.IntN(3) == 0 {
			// One GPU partitioned, the others (if any) whole: a MIG
			// instance sits at device 0 beside whole GPUs. A full-size 7g
			// instance (1000 milli, yet exclusive) comes often: it is the
			// device a whole-GPU rule most easily takes by mistake.
			layout := oMIGLayouts[rng.IntN(len(oMIGLayouts))]
			if rng.IntN(3) == 0 {
				layout = []string{"7g.80gb"}
			}
			for _, prof := range layout {
				gpus = append(gpus, GPU{Model: m, MIG: prof})
			}
			k = []int{0, 1, 2, 3}[rng.IntN(4)]
		}
		for g := range k {
			gpus = append(gpus, GPU{Model: m, Island: g / island})
		}
		nodes[i] = Node{
			Name: fmt.Sprintf("n%02d", i), Pool: pools[rng.IntN(len(pools))].Name,
			Rack: fmt.Sprintf("r%d", rng.IntN(4)), CPUMilli: int64(1 + rng.IntN(64000)),
			MemoryMiB: int64(1 + rng.IntN(256<<10)), GPUs: gpus,
		}
		if rng.IntN(6) > 0 {
			nodes[i].Labels = map[string]string{"zone": fmt.Sprintf("z%d", rng.IntN(3))}
		}
	}
	return pools, nodes
}

// exactTask draws a task, mostly aimed at the limits of one node of the
// world as it stands: its free CPU, its free memory, one device's free
// share or its count of free whole GPUs, exactly or one milli (one device)
// beyond or short.
func exactTask(rng *rand.Rand, w *oWorld) Task {
	n := w.nodes[rng.IntN(len(w.nodes))]
	off := []int64{-1, 0, 0, 0, 1}[rng.IntN(5)]
	small := func(limit int64) int64 { return rng.Int64N(max(1, min(limit, 4000)+1)) }
	t := Task{CPUMilli: small(n.cpuFree), MemoryMiB: small(n.memFree)}
	switch rng.IntN(8) {
	case 0: // anything, at 1-milli granularity
		t.CPUMilli, t.MemoryMiB = rng.Int64N(32000), rng.Int64N(64<<10)
		switch rng.IntN(3) {
		case 1:
			t.GPUs, t.GPUMilli = 1, 1+rng.IntN(999)
		case 2:
			t.GPUs, t.GPUMilli = 1+rng.IntN(8), 1000
		}
	case 1: // exactly the node's free CPU
		t.CPUMilli = max(0, n.cpuFree+off)
	case 2: // exactly its free memory
		t.MemoryMiB = max(0, n.memFree+off)
	case 3, 4: // exactly one device's free share
		if len(n.devs) == 0 {
			break
		}
		d := n.devs[rng.IntN(len(n.devs))]
		t.GPUs, t.GPUMilli = 1, int(min(max(1, d.free+off), 999))
	case 5: // exactly its free whole GPUs
		t.GPUs, t.GPUMilli = max(1, len(n.wholeFree())+int(off)), 1000
	case 6: // all of it at once
		t.CPUMilli, t.MemoryMiB = max(0, n.cpuFree+off), n.memFree
		t.GPUs, t.GPUMilli = len(n.wholeFree()), 1000
		if t.GPUs == 0 {
			t.GPUMilli = 0
		}
	default: // a whole GPU or a share, CPU-light
		t.GPUs, t.GPUMilli = 1, []int{1000, 500, 1, 999}[rng.IntN(4)]
	}
	if t.GPUs > 0 && n.model != "" && rng.IntN(4) == 0 {
		t.Models = []string{n.model}
		if rng.IntN(4) == 0 {
			t.Models = []string{"B200"} // no node has it
		}
	}
	if rng.IntN(8) == 0 {
		t.Residency = []string{"eu"}
	}
	if rng.IntN(8) == 0 {
		t.Constraints = []Constraint{{Key: "zone", Op: OpNotIn, Values: []string{"z1"}}}
	}
	return t
}

// oTarget is the expected workload the fragmentation policies measure
// against in these tests: odd shares, a model-bound type, CPU-only.
var oTarget = []TargetType{
	{CPU: 6000, Milli: 1000, GPUs: 1, Prob: 0.3},
	{CPU: 3001, Milli: 500, GPUs: 1, Prob: 0.2},
	{CPU: 2000, Milli: 333, GPUs: 1, Prob: 0.15},
	{CPU: 12000, Milli: 1000, GPUs: 2, Prob: 0.1},
	{CPU: 24000, Milli: 1000, GPUs: 4, Models: "H100", Prob: 0.1},
	{CPU: 1000, Milli: 142, GPUs: 1, Prob: 0.05},
	{CPU: 4000, Prob: 0.1},
}

// oLong reports whether the heavy sweeps run (PETITE_LONG=1).
func oLong() bool { return os.Getenv("PETITE_LONG") == "1" }

// oSetup builds the core's cluster and the oracle's world from one draw,
// with random ranks.
func oSetup(t *testing.T, rng *rand.Rand, nodes int, name string, cost bool) (*Cluster, *Policy, *oWorld) {
	t.Helper()
	pools, ns := exactFleet(rng, nodes)
	c, err := NewCluster(pools, ns)
	require.NoError(t, err)
	w := newOWorld(pools, ns, oTarget)
	perm := make([]NodeID, c.NumNodes())
	for r, id := range rng.Perm(len(perm)) {
		perm[r] = NodeID(id)
		w.rank[id] = r
	}
	require.NoError(t, c.SetRanks(perm))
	p, err := NewPolicy(c, name, Options{Target: oTarget, Cost: cost})
	require.NoError(t, err)
	return c, p, w
}

// oChurn releases a random live task or changes a node's state, in the
// core and the oracle alike.
type oLive struct {
	a    Assign
	task Task
}

func oChurn(t *testing.T, rng *rand.Rand, c *Cluster, w *oWorld, live []oLive) []oLive {
	t.Helper()
	if rng.IntN(10) == 0 {
		id := rng.IntN(len(w.nodes))
		st := []NodeState{NodeReady, NodeReady, NodeDraining, NodeDown}[rng.IntN(4)]
		c.SetState(NodeID(id), st)
		w.nodes[id].state = st
		return live
	}
	if len(live) == 0 {
		return live
	}
	k := rng.IntN(len(live))
	require.NoError(t, c.Release(live[k].a))
	w.apply(live[k].a, &live[k].task, +1)
	return append(live[:k], live[k+1:]...)
}

// TestOracleSelect checks every policy's single decisions, through the
// score index and through the scan, against the oracle: the same feasible
// count, the same node, the same devices; and the free capacity after each
// placement against the oracle's own arithmetic.
func TestOracleSelect(t *testing.T) {
	seeds, steps := uint64(5), 250
	if oLong() {
		seeds, steps = 60, 600
	}
	for _, name := range PolicyNames() {
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0x5CA7))
				cost := seed%2 == 0
				c, p, w := oSetup(t, rng, 6+rng.IntN(24), name, cost)
				op := oPolicy{name: name, cost: cost}
				scan := *p
				scan.Scan = true
				var live []oLive
				placed, refused := 0, 0
				for step := range steps {
					if rng.IntN(3) == 0 {
						live = oChurn(t, rng, c, w, live)
						continue
					}
					task := exactTask(rng, w)
					s, err := c.ShapeOf(&task)
					require.NoError(t, err)
					want, feasible := w.decide(op, &task)
					where := fmt.Sprintf("step %d task %+v", step, task)
					got := c.Select(p, &s, rng)
					gotScan, nScan := c.SelectScan(&scan, &s, rng)
					require.Equal(t, feasible, nScan, "%s: feasible nodes (scan)", where)
					if p.indexable() {
						require.Equal(t, feasible, int(c.index(p, &s).cnt[1]), "%s: feasible nodes (index)", where)
					}
					if p.Uniform {
						require.Equal(t, want < 0, got == NoNode, where)
						if got != NoNode {
							require.True(t, w.nodes[got].feasible(&task), "%s: random chose an infeasible node", where)
						}
					} else {
						require.Equal(t, NodeID(want), gotScan, "%s: scan", where)
						require.Equal(t, NodeID(want), got, "%s: index", where)
					}
					if got == NoNode {
						refused++
						continue
					}
					a := c.assign(p, got, &s, rng)
					mask, take, sure := w.pick(name, int(got), &task)
					if sure {
						require.Equal(t, mask, a.Mask, "%s: devices on %s", where, w.nodes[got].name)
						require.Equal(t, take, int64(a.Take), "%s: share taken", where)
					}
					require.NoError(t, c.Commit(a), where)
					w.apply(a, &task, -1)
					live = append(live, oLive{a, task})
					placed++
					oCheckState(t, c, w, where)
					oProbeLimits(t, rng, c, w, where)
				}
				require.Positive(t, placed)
				require.Positive(t, refused)
			})
		}
	}
}

// oPlaceJob places a job as the policies define it, on the oracle's world:
// a service's replicas each in the failure domain that holds the fewest of
// its replicas (then the best score, then the lowest rank); a gang under a
// gang-local policy on the nodes it already uses, then in their racks,
// then anywhere; every other task by the plain decision. It returns the
// nodes and devices, or ok false with the world as it was.
func (w *oWorld) placeJob(p oPolicy, j *Job) ([]Assign, bool) {
	t := &j.Task
	label := j.SpreadLabel
	if label == "" {
		label = "zone"
	}
	used := map[string]int{}
	var out []Assign
	undo := func() {
		for i := len(out) - 1; i >= 0; i-- {
			w.apply(out[i], t, +1)
		}
	}
	for k := range j.Count {
		id := -1
		switch {
		case j.Kind == Inference && j.Count > 1:
			var bestV int64
			for _, c := range w.candidates(t, nil) {
				// Lexicographic: fewest replicas in the domain, best score, lowest rank.
				u := used[w.nodes[c].labels[label]]
				v := w.total(p, w.nodes[c], t)
				if id < 0 {
					id, bestV = c, v
					continue
				}
				bu := used[w.nodes[id].labels[label]]
				if u < bu || (u == bu && (v > bestV || (v == bestV && w.rank[c] < w.rank[id]))) {
					id, bestV = c, v
				}
			}
		case p.name == "topology" && k > 0:
			var on []int
			for _, a := range out {
				if !slices.Contains(on, int(a.Node)) {
					on = append(on, int(a.Node))
				}
			}
			if id = w.bestOf(p, t, on); id >= 0 {
				break
			}
			var racks []int
			for i, n := range w.nodes {
				for _, u := range on {
					if w.nodes[u].rack != "" && n.rack == w.nodes[u].rack && !slices.Contains(racks, i) {
						racks = append(racks, i)
					}
				}
			}
			if id = w.bestOf(p, t, racks); id < 0 {
				id, _ = w.decide(p, t)
			}
		default:
			id, _ = w.decide(p, t)
		}
		if id < 0 {
			undo()
			return nil, false
		}
		mask, take, _ := w.pick(p.name, id, t)
		a := Assign{Node: NodeID(id), Mask: mask, Take: int32(take), CPUMilli: t.CPUMilli, MemMiB: t.MemoryMiB}
		w.apply(a, t, -1)
		if j.Kind == Inference {
			used[w.nodes[id].labels[label]]++
		}
		out = append(out, a)
	}
	return out, true
}

// exactJob draws a gang or a service of exact-limit tasks: 2 to 5 tasks,
// sometimes as many as one node holds of its free CPU (the last one
// exactly filling it) or one too many.
func exactJob(rng *rand.Rand, w *oWorld, id string) *Job {
	j := &Job{ID: id, Count: 2 + rng.IntN(4), Task: exactTask(rng, w)}
	if rng.IntN(2) == 0 {
		j.Kind = Inference
		if rng.IntN(4) == 0 {
			j.SpreadLabel = "rack"
		}
	}
	if rng.IntN(4) == 0 {
		n := w.nodes[rng.IntN(len(w.nodes))]
		j.Task.CPUMilli = max(1, n.cpuFree/int64(j.Count))
		if rng.IntN(2) == 0 && n.cpuFree%int64(j.Count) == 0 {
			j.Count++ // one task too many for that node
		}
	}
	return j
}

// TestOraclePlaceJob checks PlaceJob's spread and gang-locality paths
// against the oracle: every task on the node and devices the oracle
// chooses (for random, on a feasible node of a least-used domain), a gang
// placed whole or not at all, and a failed job leaving nothing behind.
func TestOraclePlaceJob(t *testing.T) {
	seeds, steps := uint64(4), 120
	if oLong() {
		seeds, steps = 40, 400
	}
	for _, name := range PolicyNames() {
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0x9A46))
				cost := seed%2 == 1
				c, p, w := oSetup(t, rng, 8+rng.IntN(20), name, cost)
				op := oPolicy{name: name, cost: cost}
				var live []oLive
				spread, gangs, failed := 0, 0, 0
				for step := range steps {
					if rng.IntN(3) == 0 {
						live = oChurn(t, rng, c, w, live)
						continue
					}
					j := exactJob(rng, w, fmt.Sprintf("j%d", step))
					where := fmt.Sprintf("step %d job %s %v x%d %+v", step, j.Kind, j.SpreadLabel, j.Count, j.Task)
					before := qSnapshot(c)
					got, ok, err := c.PlaceJob(p, j, rng, nil)
					require.NoError(t, err, where)
					if p.Uniform {
						// Chance picks the nodes: check each against the oracle's rules.
						oCheckUniformJob(t, w, j, got, ok, where)
					} else {
						want, wantOK := w.placeJob(op, j)
						require.Equal(t, wantOK, ok, "%s: placed", where)
						if ok {
							require.Len(t, got, len(want))
							for k := range want {
								require.Equal(t, want[k].Node, got[k].Node, "%s: task %d node", where, k)
								require.Equal(t, want[k].Mask, got[k].Mask, "%s: task %d devices", where, k)
								require.Equal(t, want[k].Take, got[k].Take, "%s: task %d take", where, k)
							}
						}
					}
					if !ok {
						failed++
						require.Empty(t, got, "%s: a failed job returned tasks", where)
						require.Equal(t, before, qSnapshot(c), "%s: a failed job left a trace", where)
						continue
					}
					require.Len(t, got, j.Count, "%s: a gang is placed whole", where)
					if j.Kind == Inference {
						spread++
					} else {
						gangs++
					}
					for _, a := range got {
						live = append(live, oLive{a, j.Task})
					}
					oCheckState(t, c, w, where)
				}
				require.Positive(t, spread, "services placed")
				require.Positive(t, gangs, "gangs placed")
				require.Positive(t, failed, "jobs refused")
			})
		}
	}
}

// oCheckUniformJob checks a random-policy job task by task on the oracle's
// world: each task feasible where it went, a replica always in a domain of
// fewest replicas; then applies it.
func oCheckUniformJob(t *testing.T, w *oWorld, j *Job, got []Assign, ok bool, where string) {
	t.Helper()
	label := j.SpreadLabel
	if label == "" {
		label = "zone"
	}
	if !ok {
		// Nothing fits for at least one task: the oracle places the others
		// one by one on any feasible node and must run out.
		var out []Assign
		fits := true
		for range j.Count {
			cands := w.candidates(&j.Task, nil)
			if len(cands) == 0 {
				fits = false
				break
			}
			mask, take, sure := w.pick("first-fit", cands[0], &j.Task)
			require.True(t, sure)
			a := Assign{Node: NodeID(cands[0]), Mask: mask, Take: int32(take), CPUMilli: j.Task.CPUMilli, MemMiB: j.Task.MemoryMiB}
			w.apply(a, &j.Task, -1)
			out = append(out, a)
		}
		for i := len(out) - 1; i >= 0; i-- {
			w.apply(out[i], &j.Task, +1)
		}
		if fits {
			// Whole-GPU and CPU-only tasks lower the count of tasks their
			// node holds by one wherever they go, so a job the oracle fits
			// task by task fits in any order; shares may not (MIG).
			require.True(t, oSharing(&j.Task), "%s: the job fits but was refused", where)
		}
		return
	}
	used := map[string]int{}
	for _, a := range got {
		n := w.nodes[a.Node]
		require.True(t, n.feasible(&j.Task), "%s: task on infeasible %s", where, n.name)
		if j.Kind == Inference && j.Count > 1 {
			fewest := math.MaxInt
			for _, c := range w.candidates(&j.Task, nil) {
				fewest = min(fewest, used[w.nodes[c].labels[label]])
			}
			require.Equal(t, fewest, used[n.labels[label]], "%s: replica on %s, not in a least-used domain", where, n.name)
			used[n.labels[label]]++
		}
		w.apply(a, &j.Task, -1)
	}
}

// oProbeLimits checks Commit's and Release's re-checks at their exact
// limits on a random node: taking exactly what is free of CPU, memory or
// one device is accepted (and given back), one milli more is refused;
// giving back exactly what is used is accepted (and taken again), one
// milli more is refused. Refusals change nothing.
func oProbeLimits(t *testing.T, rng *rand.Rand, c *Cluster, w *oWorld, where string) {
	t.Helper()
	id := rng.IntN(len(w.nodes))
	n := w.nodes[id]
	probes := []struct {
		dim       string
		take, use Assign
	}{
		{"cpu", Assign{CPUMilli: n.cpuFree}, Assign{CPUMilli: n.cpuCap - n.cpuFree}},
		{"memory", Assign{MemMiB: n.memFree}, Assign{MemMiB: n.memCap - n.memFree}},
	}
	for d, dev := range n.devs {
		if dev.free > 0 {
			probes = append(probes, struct {
				dim       string
				take, use Assign
			}{fmt.Sprintf("GPU %d", d), Assign{Mask: 1 << uint(d), Take: int32(dev.free)}, Assign{}})
		}
		if dev.free < dev.cap {
			probes = append(probes, struct {
				dim       string
				take, use Assign
			}{fmt.Sprintf("GPU %d", d), Assign{}, Assign{Mask: 1 << uint(d), Take: int32(dev.cap - dev.free)}})
		}
	}
	more := func(a Assign) Assign {
		switch {
		case a.Mask != 0:
			a.Take++
		case a.CPUMilli > 0 || a.MemMiB == 0:
			a.CPUMilli++
		default:
			a.MemMiB++
		}
		return a
	}
	before := qSnapshot(c)
	for _, pr := range probes {
		// Tag -1: the probes move resources, not tasks, so that only the
		// capacity checks can refuse them.
		pr.take.Node, pr.take.Tag = NodeID(id), -1
		pr.use.Node, pr.use.Tag = NodeID(id), -1
		if pr.take.Mask != 0 || pr.take.CPUMilli > 0 || pr.take.MemMiB > 0 {
			require.Error(t, c.Commit(more(pr.take)), "%s: commit of %s one milli over the free amount on %s", where, pr.dim, n.name)
			require.Equal(t, before, qSnapshot(c), "%s: a refused commit changed the cluster", where)
			require.NoError(t, c.Commit(pr.take), "%s: commit of exactly the free %s on %s", where, pr.dim, n.name)
			require.NoError(t, c.Release(pr.take), where)
		}
		if pr.use.Mask != 0 || pr.use.CPUMilli > 0 || pr.use.MemMiB > 0 {
			require.Error(t, c.Release(more(pr.use)), "%s: release of %s one milli over what is used on %s", where, pr.dim, n.name)
			require.Equal(t, before, qSnapshot(c), "%s: a refused release changed the cluster", where)
			require.NoError(t, c.Release(pr.use), "%s: release of exactly the used %s on %s", where, pr.dim, n.name)
			require.NoError(t, c.Commit(pr.use), where)
		}
	}
	require.Equal(t, before, qSnapshot(c), "%s: the probes put everything back", where)
}

// TestOracleSpreadBigFleet checks the spread path where the best-first walk
// cannot see every candidate: over 512 partly used nodes in one zone score
// better than the few nodes of the others, so a service's second replica
// must look past them. Every replica must go where the oracle puts it.
func TestOracleSpreadBigFleet(t *testing.T) {
	big, jobs := 600, 12
	if oLong() {
		big, jobs = 1100, 60
	}
	for _, name := range []string{"best-fit", "gpu-packing", "fgd", "topology", "first-fit"} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(len(name)), 0xB16))
			var nodes []Node
			for i := range big + 8 {
				n := Node{Name: fmt.Sprintf("n%04d", i), CPUMilli: 64000, MemoryMiB: 1 << 18, Rack: fmt.Sprintf("r%d", i%7),
					Labels: map[string]string{"zone": "z0"}}
				for g := range 4 {
					n.GPUs = append(n.GPUs, GPU{Model: "A100", Island: g / 2})
				}
				switch {
				case i >= big+5:
					n.Labels = nil // no zone: the "" domain
				case i >= big:
					n.Labels["zone"] = fmt.Sprintf("z%d", 1+i%2)
				}
				nodes = append(nodes, n)
			}
			c, err := NewCluster(nil, nodes)
			require.NoError(t, err)
			w := newOWorld(nil, nodes, oTarget)
			perm := make([]NodeID, c.NumNodes())
			for r, id := range rng.Perm(len(perm)) {
				perm[r] = NodeID(id)
				w.rank[id] = r
			}
			require.NoError(t, c.SetRanks(perm))
			p, err := NewPolicy(c, name, Options{Target: oTarget})
			require.NoError(t, err)
			// Fill the big zone partly, so that its nodes score best.
			fill := Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000 + rng.Int64N(8000)}
			for i := range big {
				a := Assign{Node: NodeID(i), Mask: 1 << uint(rng.IntN(4)), Take: 1000, CPUMilli: fill.CPUMilli, Tag: 1}
				require.NoError(t, c.Commit(a))
				w.apply(a, &fill, -1)
			}
			op := oPolicy{name: name}
			outside := 0
			for k := range jobs {
				j := &Job{ID: fmt.Sprintf("svc%d", k), Kind: Inference, Count: 2 + rng.IntN(3),
					Task: Task{GPUs: 1, GPUMilli: []int{1000, 1000, 250}[rng.IntN(3)], CPUMilli: 1000}}
				where := fmt.Sprintf("job %s x%d %+v", j.ID, j.Count, j.Task)
				got, ok, err := c.PlaceJob(p, j, rng, nil)
				require.NoError(t, err)
				want, wantOK := w.placeJob(op, j)
				require.Equal(t, wantOK, ok, where)
				require.Len(t, got, len(want), where)
				for i := range want {
					require.Equal(t, want[i].Node, got[i].Node, "%s: replica %d", where, i)
					require.Equal(t, want[i].Mask, got[i].Mask, "%s: replica %d devices", where, i)
					if int(got[i].Node) >= big {
						outside++
					}
				}
				oCheckState(t, c, w, where)
			}
			require.Positive(t, outside, "replicas went past the big zone")
		})
	}
}
