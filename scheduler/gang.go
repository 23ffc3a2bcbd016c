package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// PlaceJob places every task of a job, or none: a gang is all-or-nothing
// and holds nothing while it waits, so gangs can never deadlock. The
// assignments are applied to the cluster and appended to out; on failure
// the cluster is left exactly as it was and ok is false.
//
// Training tasks under a GangLocal policy stay close: on nodes the gang
// already uses, then in their racks, then anywhere. Inference replicas
// spread over the job's failure domain label (zone by default).
func (c *Cluster) PlaceJob(p *Policy, j *Job, rng *rand.Rand, out []Assign) ([]Assign, bool, error) {
	// The shape lives in the cluster: scorers take it by pointer through an
	// interface, which would otherwise move it to the heap for every job.
	if err := p.Validate(); err != nil {
		return out, false, err
	}
	if err := j.Validate(); err != nil {
		return out, false, err
	}
	shape, err := c.ShapeOf(&j.Task)
	if err != nil {
		return out, false, fmt.Errorf("job %s: %w", j.ID, err)
	}
	c.jobShape = shape
	s := &c.jobShape
	start := len(out)
	var domains map[string]int
	if j.Kind == Inference && j.Count > 1 {
		domains = map[string]int{}
	}
	for k := 0; k < j.Count; k++ {
		n := NoNode
		switch {
		case domains != nil:
			n = c.selectSpread(p, s, rng, spreadLabel(j), domains)
		case p.GangLocal && k > 0:
			n = c.selectNear(p, s, out[start:])
			if n == NoNode {
				n = c.Select(p, s, rng)
			}
		default:
			n = c.Select(p, s, rng)
		}
		if n == NoNode {
			for i := len(out) - 1; i >= start; i-- {
				c.release(&out[i])
			}
			return out[:start], false, nil
		}
		a := c.assign(p, n, s, rng)
		c.apply(&a)
		out = append(out, a)
		if domains != nil {
			domains[c.labels[n][spreadLabel(j)]]++
		}
	}
	return out, true, nil
}

func spreadLabel(j *Job) string {
	if j.SpreadLabel != "" {
		return j.SpreadLabel
	}
	return "zone"
}

// selectNear picks the best feasible node among those a gang already uses,
// then among their racks' nodes; NoNode when none fits there.
func (c *Cluster) selectNear(p *Policy, s *Shape, placed []Assign) NodeID {
	best, bestScore := NoNode, int64(noScore)
	consider := func(n NodeID) {
		if !c.Fits(n, s) || !p.filter(c, n, s) {
			return
		}
		if v := p.nodeScore(c, n, s); c.better(n, v, best, bestScore) {
			best, bestScore = n, v
		}
	}
	for i := range placed {
		consider(placed[i].Node)
	}
	if best != NoNode {
		return best
	}
	for i := range placed {
		if rk := c.nodes[placed[i].Node].rack; rk >= 0 {
			for _, n := range c.rackNodes[rk] {
				consider(n)
			}
		}
	}
	return best
}

// spreadCandidates bounds the best-first walk of a replica's choice of
// failure domain; past it the choice reads the index's leaves instead.
const spreadCandidates = 512

// spreadDomains numbers the failure domains of one spread label: the
// label's distinct values over the nodes ("" for nodes without it).
type spreadDomains struct {
	of    []int32          // domain of each node
	names []string         // value of each domain
	ids   map[string]int32 // domain of each value
	// use and gen are scratch for one decision: use[d] is the job's
	// replicas in domain d when gen[d] is the decision's generation, else 0.
	use []int32
	gen []uint32
	cur uint32
}

// domainsOf returns the failure domains of a label, built on first use and
// again when nodes joined since.
func (c *Cluster) domainsOf(label string) *spreadDomains {
	if d := c.spread[label]; d != nil && len(d.of) == len(c.nodes) {
		return d
	}
	if c.spread == nil {
		c.spread = map[string]*spreadDomains{}
	}
	d := &spreadDomains{of: make([]int32, len(c.nodes)), ids: map[string]int32{}}
	for n := range c.nodes {
		v := c.labels[n][label]
		id, ok := d.ids[v]
		if !ok {
			id = int32(len(d.names))
			d.ids[v] = id
			d.names = append(d.names, v)
		}
		d.of[n] = id
	}
	d.use = make([]int32, len(d.names))
	d.gen = make([]uint32, len(d.names))
	c.spread[label] = d
	return d
}

// useOfDomain is the job's replicas in domain id during this decision.
func useOfDomain(d *spreadDomains, id int32) int32 {
	if d.gen[id] == d.cur {
		return d.use[id]
	}
	return 0
}

// selectSpread picks a node for a replica as selectSpreadScan does: in the
// failure domain that holds the fewest replicas of the job (among those
// with a feasible node), the policy's best node (highest score, then lowest
// rank). It walks the score index best first, and stops at the first node
// of a domain as empty as any domain can be; the first node of the walk in
// a least-used domain is that domain's best. Should the walk reach
// spreadCandidates nodes without proving its choice, one pass over the
// index's leaves (no scoring: O(nodes) reads) finds any better domain.
func (c *Cluster) selectSpread(p *Policy, s *Shape, rng *rand.Rand, label string, used map[string]int) NodeID {
	if p.Uniform || !p.indexable() {
		return c.selectSpreadScan(p, s, rng, label, used)
	}
	ix := c.index(p, s)
	d := c.domainsOf(label)
	d.cur++
	if d.cur == 0 { // wrapped: no stale generation may match
		clear(d.gen)
		d.cur = 1
	}
	floor := int32(0) // the fewest replicas any domain holds
	if len(used) >= len(d.names) {
		floor = math.MaxInt32
	}
	for name, k := range used {
		// Names come from node labels; an unknown one is ignored.
		if id, ok := d.ids[name]; ok {
			d.use[id], d.gen[id] = int32(min(k, math.MaxInt32)), d.cur
		}
	}
	useOf := func(n NodeID) int32 { return useOfDomain(d, d.of[n]) }
	if floor != 0 { // every domain may hold replicas
		for id := range d.names {
			floor = min(floor, useOfDomain(d, int32(id)))
		}
	}
	best, bestUse, visited := NoNode, int32(0), 0
	c.visitBest(ix, spreadCandidates, func(n NodeID, _ int64) bool {
		visited++
		if u := useOf(n); best == NoNode || u < bestUse {
			best, bestUse = n, u
		}
		return bestUse > floor
	})
	if best == NoNode || bestUse <= floor || visited < spreadCandidates {
		return best // proved least used, or every feasible node seen
	}
	// Only a node of a domain with fewer replicas can beat the walk's
	// choice: among those, fewest replicas, then best score, then rank.
	cand, candUse, candV := NoNode, bestUse, int64(noScore)
	for i := range c.nodes {
		n := NodeID(i)
		v := ix.leafAt(c.rank[n])
		if v == noScore {
			continue
		}
		u := useOf(n)
		if u > candUse || (u == candUse && cand == NoNode) {
			continue
		}
		if u < candUse || c.better(n, v, cand, candV) {
			cand, candUse, candV = n, u, v
		}
	}
	if cand != NoNode {
		return cand
	}
	return best
}

// selectSpreadScan is selectSpread by a scan of every node, for policies
// without a score index.
func (c *Cluster) selectSpreadScan(p *Policy, s *Shape, rng *rand.Rand, label string, used map[string]int) NodeID {
	first := c.Select(p, s, rng)
	if first == NoNode || used[c.labels[first][label]] == 0 {
		return first
	}
	limit := used[c.labels[first][label]]
	best, bestScore, bestUse := NoNode, int64(noScore), limit
	for i := range c.nodes {
		n := NodeID(i)
		u := used[c.labels[n][label]]
		if u > bestUse || !c.Fits(n, s) || !p.filter(c, n, s) {
			continue
		}
		if v := p.nodeScore(c, n, s); u < bestUse || c.better(n, v, best, bestScore) {
			best, bestScore, bestUse = n, v, u
		}
	}
	if best == NoNode || bestUse >= limit {
		return first
	}
	return best
}

// Explain counts, over every node, why a task of shape s does not fit: what
// a user must change to get it placed.
func (c *Cluster) Explain(p *Policy, s *Shape) map[Reason]int {
	out := map[Reason]int{}
	for i := range c.nodes {
		n := NodeID(i)
		r := c.Why(n, s)
		if r == Fit && !p.filter(c, n, s) {
			r = ReasonPolicy
		}
		out[r]++
	}
	return out
}
