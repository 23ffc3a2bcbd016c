package scheduler

import (
	"math"
	"slices"
	"strings"
)

// This file is a second placer, the oracle, written from the policies'
// definitions (docs/scheduler.md and the scorers' doc comments) and sharing
// nothing with the fast path: no index, no score cache, no Shape, no Fits.
// It keeps its own copy of the free capacity, fed only the assignments the
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
			d := &n.devs[i]
			whole := !d.mig && d.free == 1000 // a 7g instance is no whole GPU
			if kept < t.GPUs && d.free >= int64(t.GPUMilli) && (t.GPUMilli < 1000 || whole) {
				kept++
				if whole {
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
