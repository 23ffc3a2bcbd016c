package scheduler

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Filter excludes nodes beyond the resource fit that every policy applies.
// It must depend only on the node's state and the shape.
type Filter interface {
	Name() string
	Filter(c *Cluster, n NodeID, s *Shape) bool
}

// Scorer ranks a node that passed the filters for a task shape; higher is
// better. It must depend only on the node's state and the shape, which is
// what lets the cluster cache scores per shape and refresh only the nodes
// that changed.
type Scorer interface {
	Name() string
	Score(c *Cluster, n NodeID, s *Shape) int64
}

// Normalizer is a Scorer that rescales its raw scores over the candidates of
// one decision (the Kubernetes framework's NormalizeScore). A normalisation
// must keep the set of highest-scoring nodes, so that a policy with a single
// scorer decides the same with or without it.
type Normalizer interface {
	Normalize(scores []int64)
}

// Picker chooses the devices inside the chosen node. It returns the device
// mask and the milli-GPU taken on each.
type Picker interface {
	Pick(c *Cluster, n NodeID, s *Shape, rng *rand.Rand) (mask uint64, take int32)
}

// Weighted is a scorer with its weight in the policy's sum. The weight lies
// in -MaxWeight..MaxWeight; the raw scores and the sum are saturated within
// 32 bits, below the tiers.
type Weighted struct {
	Scorer
	Weight int64
}

// Policy is a named profile: filters, weighted scorers and a GPU picker.
// Ties between nodes of equal score go to the lowest node rank.
type Policy struct {
	// Name is what --policy selects.
	Name string
	// Doc says what the policy does, in one line.
	Doc     string
	Filters []Filter
	// Tiers are scorers compared lexicographically before Scorers: a node
	// with a higher first tier wins whatever its other scores (cost-aware
	// pool choice is a tier). Each tier score must lie in 0..2^20-1, and a
	// policy has at most MaxTiers tiers (see Validate).
	Tiers   []Scorer
	Scorers []Weighted
	// Picker chooses the GPUs inside the chosen node; nil takes the
	// lowest-numbered free devices for whole GPUs and the fullest device that
	// still fits for a fraction.
	Picker Picker
	// Uniform draws the node uniformly among the feasible ones instead of
	// scoring (the random policy).
	Uniform bool
	// GangLocal keeps a gang's tasks close: on the nodes it already uses,
	// then in their racks, then anywhere.
	GangLocal bool
	// Scan forces the scan of every node for every decision, bypassing the
	// score index. The scan is the reference the index is tested against.
	Scan bool
}

func (p *Policy) filter(c *Cluster, n NodeID, s *Shape) bool {
	for _, f := range p.Filters {
		if !f.Filter(c, n, s) {
			return false
		}
	}
	return true
}

// tierShift places the tier scores above any weighted sum of scores.
const tierShift = 32

// MaxTiers is how many tiers a policy may have. A node's score packs the
// tiers (tierBits each) above the weighted sum (tierShift bits) in one
// int64, which is what lets the score index compare nodes by one number;
// a second tier would need 72 bits and overflow, so Validate refuses it.
const MaxTiers = 1

// tierBits is the width of one tier score: each lies in 0..2^20-1.
const tierBits = 20

// MaxWeight bounds the magnitude of a scorer's weight (see Validate). A
// raw score counts within ±sumMax, and so does the weighted sum, kept below
// the tiers' bits: at most MaxWeight·sumMax per term, 2^51, it cannot
// overflow int64 on its way to being clamped.
const MaxWeight = 1 << 20

// sumMax bounds a raw score and the weighted sum, which take the tierShift
// bits below the tiers as a signed number.
const sumMax = 1<<(tierShift-1) - 1

// Validate checks that a policy's scores can be packed: at most MaxTiers
// tiers, and weights within ±MaxWeight. NewPolicy, Schedule and PlaceJob
// refuse a policy that fails it.
func (p *Policy) Validate() error {
	for i, w := range p.Scorers {
		if w.Weight < -MaxWeight || w.Weight > MaxWeight {
			return fmt.Errorf("policy %s: field scorers[%d].weight (%s): want -%d..%d, got %d", p.Name, i, w.Name(), MaxWeight, MaxWeight, w.Weight)
		}
	}
	if len(p.Tiers) > MaxTiers {
		names := make([]string, len(p.Tiers))
		for i, t := range p.Tiers {
			names[i] = t.Name()
		}
		return fmt.Errorf("policy %s: field tiers: at most %d tier, got %d (%v); fold them into one tier scorer", p.Name, MaxTiers, len(p.Tiers), names)
	}
	return nil
}

// nodeScore is the tiers and the weighted sum of the raw scores, without
// normalisation.
func (p *Policy) nodeScore(c *Cluster, n NodeID, s *Shape) int64 {
	var sum int64
	for _, w := range p.Scorers {
		sum = addWeighted(sum, w.Weight, w.Score(c, n, s))
	}
	return p.tierScore(c, n, s)<<tierShift + sum
}

// addWeighted adds a weighted raw score to a weighted sum, the score, the
// weight and the sum each clamped to their range, so that no plugin's
// score spills into the tier bits or wraps, validated policy or not.
func addWeighted(sum, weight, raw int64) int64 {
	weight = min(max(weight, -MaxWeight), MaxWeight)
	raw = min(max(raw, -sumMax), sumMax)
	return min(max(sum+weight*raw, -sumMax), sumMax)
}

func (p *Policy) tierScore(c *Cluster, n NodeID, s *Shape) int64 {
	var t int64
	for _, sc := range p.Tiers {
		// Clamped to its bits, so that a tier outside its range cannot
		// spill into another.
		t = t<<tierBits | min(max(sc.Score(c, n, s), 0), 1<<tierBits-1)
	}
	return t
}

// indexable reports whether decisions can come from the score index: every
// score is node-local, and normalisation cannot change the winner. A single
// normalised scorer keeps its winners (the Normalizer contract), also under
// tiers, since the tiers are compared first.
func (p *Policy) indexable() bool {
	if p.Scan {
		return false
	}
	if len(p.Scorers) <= 1 {
		return true
	}
	for _, w := range p.Scorers {
		if _, ok := w.Scorer.(Normalizer); ok {
			return false
		}
	}
	return true
}

// Select chooses a node for a task of shape s, or NoNode when none fits.
func (c *Cluster) Select(p *Policy, s *Shape, rng *rand.Rand) NodeID {
	if !p.indexable() {
		n, _ := c.SelectScan(p, s, rng)
		return n
	}
	ix := c.index(p, s)
	if p.Uniform {
		return c.uniform(ix, rng)
	}
	n, _ := c.best(ix)
	return n
}

// SelectScan decides by scanning every node: the unindexed reference
// placer. It also returns the feasible-node count.
func (c *Cluster) SelectScan(p *Policy, s *Shape, rng *rand.Rand) (NodeID, int) {
	cands := make([]NodeID, 0, 64)
	for i := range c.nodes {
		n := NodeID(i)
		if c.Fits(n, s) && p.filter(c, n, s) {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return NoNode, 0
	}
	sort.Slice(cands, func(i, j int) bool { return c.rank[cands[i]] < c.rank[cands[j]] })
	if p.Uniform {
		return cands[rng.IntN(len(cands))], len(cands)
	}
	total := make([]int64, len(cands))
	raw := make([]int64, len(cands))
	for _, w := range p.Scorers {
		for i, n := range cands {
			raw[i] = w.Score(c, n, s)
		}
		if nz, ok := w.Scorer.(Normalizer); ok {
			nz.Normalize(raw)
		}
		for i := range cands {
			total[i] = addWeighted(total[i], w.Weight, raw[i])
		}
	}
	if len(p.Tiers) > 0 {
		for i, n := range cands {
			total[i] += p.tierScore(c, n, s) << tierShift
		}
	}
	best, bv := NoNode, int64(0)
	for i, n := range cands {
		if c.better(n, total[i], best, bv) {
			best, bv = n, total[i]
		}
	}
	return best, len(cands)
}

// assign builds the assignment of a task of shape s on node n.
func (c *Cluster) assign(p *Policy, n NodeID, s *Shape, rng *rand.Rand) Assign {
	a := Assign{Node: n, CPUMilli: s.CPU, MemMiB: s.Mem, Tag: s.Tag}
	if s.GPUs == 0 {
		return a
	}
	if p.Picker != nil {
		a.Mask, a.Take = p.Picker.Pick(c, n, s, rng)
	} else {
		a.Mask, a.Take = pickDefault(c, n, s)
	}
	return a
}

// PlaceTask selects a node for one task, picks its GPUs and applies the
// assignment to the cluster. ok is false when no node fits.
func (c *Cluster) PlaceTask(p *Policy, s *Shape, rng *rand.Rand) (a Assign, ok bool) {
	n := c.Select(p, s, rng)
	if n == NoNode {
		return Assign{}, false
	}
	a = c.assign(p, n, s, rng)
	c.apply(&a)
	return a, true
}

// pickDefault takes the lowest-numbered completely free devices for whole
// GPUs, and the best (fullest that still fits) device for a fraction: the
// default rule of devices.go on the node's live devices.
func pickDefault(c *Cluster, n NodeID, s *Shape) (uint64, int32) {
	free, excl := c.devs(n)
	return pickDevices(free, excl, s)
}

// Options tune the policies built by name.
type Options struct {
	// CPUNorm and GPUNorm scale free CPU (milli) and GPU (milli) in the
	// bin-packing scores; zero takes the largest node of the cluster.
	CPUNorm, GPUNorm int64
	// Target is the expected workload that fgd measures fragmentation
	// against; nil takes a generic mix of whole and shared GPUs.
	Target []TargetType
	// Cost adds the cost-aware pool choice (owned capacity first, cheapest
	// cloud next) ahead of the policy's own score.
	Cost bool
}

// policyBuilder builds one named policy.
type policyBuilder struct {
	name, doc string
	build     func(c *Cluster, o Options) *Policy
}

var builders = []policyBuilder{
	{"random", "a feasible node uniformly at random", newRandom},
	{"first-fit", "the feasible node of lowest rank", newFirstFit},
	{"best-fit", "the node left with the least free CPU and GPU", newBestFit},
	{"spread", "the node left with the most free CPU and GPU (worst fit)", newSpread},
	{"dot-product", "the smallest dot product of free resources and request (Tetris, as the FGD artifact runs it)", newDotProduct},
	{"gpu-clustering", "nodes already running tasks of the same GPU shape", newGPUClustering},
	{"gpu-packing", "partly used GPUs first, then partly used nodes, then empty ones", newGPUPacking},
	{"fgd", "the smallest growth of expected-workload fragmentation (Weng et al., ATC'23)", newFGD},
	{"topology", "gangs inside an NVLink island, then a node, then a rack", newTopology},
	{"fgd-strand", "fgd with exact deltas that also count the GPU capacity a node's free CPU can no longer feed (petite's own)", newFGDStrand},
}

// PolicyNames lists the policies NewPolicy builds, in a stable order.
func PolicyNames() []string {
	names := make([]string, len(builders))
	for i, b := range builders {
		names[i] = b.name
	}
	return names
}

// PolicyDoc returns the one-line description of a named policy.
func PolicyDoc(name string) string {
	for _, b := range builders {
		if b.name == name {
			return b.doc
		}
	}
	return ""
}

// NewPolicy builds a policy by name for a cluster.
func NewPolicy(c *Cluster, name string, o Options) (*Policy, error) {
	if o.CPUNorm == 0 {
		o.CPUNorm = max(c.maxCPU, 1)
	}
	if o.GPUNorm == 0 {
		o.GPUNorm = max(c.maxGPU, 1)
	}
	for _, b := range builders {
		if b.name == name {
			p := b.build(c, o)
			p.Name, p.Doc = b.name, b.doc
			if o.Cost {
				p.Tiers = append([]Scorer{CostScore{}}, p.Tiers...)
				p.Name += "+cost"
			}
			if err := p.Validate(); err != nil {
				return nil, err
			}
			return p, nil
		}
	}
	return nil, fmt.Errorf("unknown policy %q (known: %v)", name, PolicyNames())
}
