package scheduler

import (
	"fmt"
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
		v := p.nodeScore(c, n, s)
		if best == NoNode || v > bestScore || (v == bestScore && c.rank[n] < c.rank[best]) {
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

// spreadCandidates bounds how many of the best nodes a replica's choice of
// failure domain looks at.
const spreadCandidates = 512

// selectSpread picks a node for a replica in the least-used failure domain:
// among the policy's best candidates (at most spreadCandidates of them, best
// first), the first whose domain holds the fewest replicas of the job.
func (c *Cluster) selectSpread(p *Policy, s *Shape, rng *rand.Rand, label string, used map[string]int) NodeID {
	if p.Uniform || !p.indexable() {
		return c.selectSpreadScan(p, s, rng, label, used)
	}
	best, bestUse := NoNode, 0
	c.visitBest(c.index(p, s), spreadCandidates, func(n NodeID, _ int64) bool {
		if u := used[c.labels[n][label]]; best == NoNode || u < bestUse {
			best, bestUse = n, u
		}
		return bestUse > 0
	})
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
		v := p.nodeScore(c, n, s)
		if best == NoNode || u < bestUse || v > bestScore || (v == bestScore && c.rank[n] < c.rank[best]) {
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
