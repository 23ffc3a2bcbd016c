package scheduler

import (
	"math"
	"math/rand/v2"
	"slices"
)

// noScore marks an infeasible node in a score index.
const noScore = math.MinInt64

// idxKey names one score index: a policy and a task shape.
type idxKey struct {
	pol   *Policy
	shape Shape
}

// shapeIndex is a tournament tree over the nodes in rank order, of fan-out
// fan. Each leaf holds the node's score for one shape under one policy
// (noScore when the node cannot take it); each inner entry holds the best
// of its children and, for a Uniform policy (counted), the number of
// feasible leaves below it. The best node is the leftmost leaf with the
// root's score: the lowest rank among the best scores.
//
// The levels lie one after another in val (and cnt), leaves first, each
// padded with infeasible entries to whole groups of fan: an entry's
// children are one cache line of scores. A refresh that climbs the tree
// (a placement on the best node climbs to the root) reads a line a level,
// and 10,000 nodes make five levels above the leaves, not fourteen; the
// whole index takes 91 KB where a binary tree took 256.
type shapeIndex struct {
	key  idxKey
	seq  uint64 // change-log position the leaves are current to
	n    int    // leaves in use: the cluster's nodes when built
	val  []int64
	cnt  []int32
	off  []int // where each level starts in val; the last is the root alone
	offs [12]int
	used uint64
	// counted: cnt is kept, only uniform draws read it.
	counted bool
	// feas has bit n set when node n's leaf is feasible: a small copy of
	// the leaves' feasibility that a refresh of a node infeasible before
	// and after reads instead of its leaf, a cold cache line.
	feas []uint64
}

// fan is the score index's fan-out: eight scores are a cache line.
const (
	fan     = 8
	fanBits = 3
)

// root is the root's position in val.
func (ix *shapeIndex) root() int { return ix.off[len(ix.off)-1] }

// leafAt is the leaf of the node of rank r.
func (ix *shapeIndex) leafAt(r int32) int64 { return ix.val[r] }

// layout sets out the levels of an index of n leaves and sizes its lists.
func (ix *shapeIndex) layout(n int) {
	ix.n = n
	ix.off = ix.offs[:0] // in the index itself: 8^11 leaves before it allocates
	total, w := 0, max(n, 1)
	for {
		ix.off = append(ix.off, total)
		if w == 1 && len(ix.off) > 1 {
			total++
			break
		}
		w = (w + fan - 1) &^ (fan - 1) // whole groups
		total += w
		w /= fan
	}
	if cap(ix.val) < total {
		ix.val = make([]int64, total)
	}
	ix.val = ix.val[:total]
	if ix.cnt != nil {
		ix.cnt = slices.Grow(ix.cnt[:0], total)[:total]
	}
	if words := (n + 63) / 64; cap(ix.feas) < words {
		ix.feas = make([]uint64, words)
	} else {
		ix.feas = ix.feas[:words]
	}
}

// max8 is the best of a group of entries.
func max8(g []int64) int64 {
	g = g[:fan]
	return max(max(max(g[0], g[1]), max(g[2], g[3])), max(max(g[4], g[5]), max(g[6], g[7])))
}

// sum8 is the count of a group of entries.
func sum8(g []int32) int32 {
	g = g[:fan]
	return g[0] + g[1] + g[2] + g[3] + g[4] + g[5] + g[6] + g[7]
}

// idxCache holds the indexes of the shapes seen recently, least recently
// used out first.
type idxCache struct {
	m     map[idxKey]*shapeIndex
	tick  uint64
	limit int
	spare []*shapeIndex
}

func (ic *idxCache) init() { ic.m = map[idxKey]*shapeIndex{} }

// reset drops every index, keeping their memory for reuse.
func (ic *idxCache) reset() {
	if len(ic.m) == 0 {
		return
	}
	for k, ix := range ic.m {
		ic.spare = append(ic.spare, ix)
		delete(ic.m, k)
	}
}

// index returns the up-to-date score index of a shape under a policy.
func (c *Cluster) index(p *Policy, s *Shape) *shapeIndex {
	ic := &c.idx
	ic.tick++
	key := idxKey{p, *s}
	ix := ic.m[key]
	switch {
	case ix == nil:
		ix = c.newIndex(key)
		ic.m[key] = ix
	case p.Uniform && !ix.counted:
		c.rebuild(ix) // the policy became uniform since: count
	default:
		c.sync(ix)
	}
	ix.used = ic.tick
	return ix
}

func (c *Cluster) newIndex(key idxKey) *shapeIndex {
	ic := &c.idx
	if ic.limit == 0 {
		// Bound memory to about 256 MiB of indexes whatever the fleet size.
		per := 24 * (len(c.nodes) + 64)
		ic.limit = min(max(256<<20/per, 16), 4096)
	}
	if len(ic.m) >= ic.limit {
		var victim idxKey
		oldest := uint64(math.MaxUint64)
		for k, ix := range ic.m {
			if ix.used < oldest {
				oldest, victim = ix.used, k
			}
		}
		ic.spare = append(ic.spare, ic.m[victim])
		delete(ic.m, victim)
	}
	var ix *shapeIndex
	for len(ic.spare) > 0 && ix == nil {
		last := ic.spare[len(ic.spare)-1]
		ic.spare = ic.spare[:len(ic.spare)-1]
		if last.n == len(c.nodes) {
			ix = last
		}
	}
	if ix == nil {
		ix = &shapeIndex{}
		ix.layout(len(c.nodes))
	}
	ix.key = key
	c.rebuild(ix)
	return ix
}

// leaf computes one node's entry.
func (c *Cluster) leaf(p *Policy, s *Shape, n NodeID) int64 {
	if !c.Fits(n, s) || !p.filter(c, n, s) {
		return noScore
	}
	return p.nodeScore(c, n, s)
}

func (c *Cluster) rebuild(ix *shapeIndex) {
	p, s := ix.key.pol, &ix.key.shape
	ix.counted = p.Uniform
	if ix.counted && ix.cnt == nil {
		ix.cnt = make([]int32, len(ix.val))
	}
	for i := range ix.val {
		ix.val[i] = noScore
	}
	clear(ix.feas)
	memo := p.stateOnly() && p.costly()
	if memo {
		if c.memo == nil {
			c.memo = map[nodeClass]int64{}
		}
		clear(c.memo)
	}
	for n := range c.nodes {
		var v int64
		if k, ok := c.classOf(NodeID(n), s); memo && ok {
			var seen bool
			if v, seen = c.memo[k]; !seen {
				v = c.leaf(p, s, NodeID(n))
				c.memo[k] = v
			}
		} else {
			v = c.leaf(p, s, NodeID(n))
		}
		ix.val[c.rank[n]] = v
		if v != noScore {
			ix.feas[n>>6] |= 1 << uint(n&63)
		}
	}
	if ix.counted {
		for i := range ix.off[1] {
			ix.cnt[i] = 0
			if ix.val[i] != noScore {
				ix.cnt[i] = 1
			}
		}
	}
	for l := 1; l < len(ix.off); l++ {
		below, at := ix.off[l-1], ix.off[l]
		for i := range (at - below) / fan {
			g := below + i*fan
			ix.val[at+i] = max8(ix.val[g:])
			if ix.counted {
				ix.cnt[at+i] = sum8(ix.cnt[g:])
			}
		}
		if l+1 < len(ix.off) { // the level's padding
			for i := at + (at-below)/fan; i < ix.off[l+1]; i++ {
				ix.val[i] = noScore
				if ix.counted {
					ix.cnt[i] = 0
				}
			}
		}
	}
	ix.seq = c.seq
}

// sync brings an index up to date with the change log: only the nodes that
// changed since it was last used are scored again.
func (c *Cluster) sync(ix *shapeIndex) {
	if ix.seq == c.seq {
		return
	}
	if ix.seq < c.logBase || c.seq-ix.seq > uint64(len(c.nodes)) {
		// The log was trimmed past the index, or holds more changes than
		// there are nodes: visit each node once and score again those whose
		// last change is newer than the index (a rarely used shape would
		// otherwise read the whole log since its last use).
		for n := range c.nodes {
			if c.nodes[n].seq >= ix.seq {
				c.refresh(ix, NodeID(n))
			}
		}
		ix.seq = c.seq
		return
	}
	for i := ix.seq - c.logBase; i < uint64(len(c.log)); i++ {
		n := c.log[i]
		if c.nodes[n].seq != c.logBase+i {
			continue // a later entry covers this node
		}
		c.refresh(ix, n)
	}
	ix.seq = c.seq
}

// refresh scores one node again and updates its leaf and the path above it.
// A leaf's count is 1 exactly when its score is feasible, so a new score
// that keeps the node feasible (or infeasible), or an index that keeps no
// counts, leaves every count as it was: the walk up then reads and writes
// scores only, and stops where a best score stays the same.
func (c *Cluster) refresh(ix *shapeIndex, n NodeID) {
	p, s := ix.key.pol, &ix.key.shape
	v := int64(noScore)
	w, bit := n>>6, uint64(1)<<uint(n&63)
	if c.Fits(n, s) && p.filter(c, n, s) {
		v = p.nodeScore(c, n, s)
		ix.feas[w] |= bit
	} else {
		if ix.feas[w]&bit == 0 {
			return // infeasible before too: the leaf holds noScore
		}
		ix.feas[w] &^= bit
	}
	pos := int(c.rank[n])
	old := ix.val[pos]
	if old == v {
		return
	}
	ix.val[pos] = v
	if !ix.counted || (old == noScore) == (v == noScore) {
		// Climb while the best of a group changes.
		for l := 1; l < len(ix.off); l++ {
			nv := max8(ix.val[ix.off[l-1]+pos&^(fan-1):])
			pos >>= fanBits
			at := ix.off[l] + pos
			if ix.val[at] == nv {
				break
			}
			ix.val[at] = nv
		}
		return
	}
	// Feasibility changed: every count above changes by one.
	d := int32(1)
	if v == noScore {
		d = -1
	}
	ix.cnt[pos] += d
	for l := 1; l < len(ix.off); l++ {
		g := ix.off[l-1] + pos&^(fan-1)
		pos >>= fanBits
		at := ix.off[l] + pos
		ix.cnt[at] += d
		ix.val[at] = max8(ix.val[g:])
	}
}

// best returns the feasible node with the highest score and, among equals,
// the lowest rank.
func (c *Cluster) best(ix *shapeIndex) (NodeID, int64) {
	top := ix.val[ix.root()]
	if top == noScore {
		return NoNode, noScore
	}
	i := 0
	for l := len(ix.off) - 2; l >= 0; l-- {
		g := ix.off[l] + i*fan
		k := 0
		for ix.val[g+k] != top {
			k++
		}
		i = i*fan + k
	}
	return c.order[i], top
}

// uniform returns a feasible node drawn uniformly at random: the k-th
// feasible leaf in rank order, k drawn below their count.
func (c *Cluster) uniform(ix *shapeIndex, rng *rand.Rand) NodeID {
	total := ix.cnt[ix.root()]
	if total == 0 {
		return NoNode
	}
	k := int32(rng.IntN(int(total)))
	i := 0
	for l := len(ix.off) - 2; l >= 0; l-- {
		g := ix.off[l] + i*fan
		j := 0
		for k >= ix.cnt[g+j] {
			k -= ix.cnt[g+j]
			j++
		}
		i = i*fan + j
	}
	return c.order[i]
}

// visitBest walks feasible nodes from the best score down (lowest rank first
// among equals), at most limit of them, until visit returns false. It is a
// best-first search over the tree, so it costs O(k log n) for k visits. Its
// heap holds an entry's level in the bits above 40 and its place in val
// below; an entry comes before another by score, then by the leftmost leaf
// below it.
func (c *Cluster) visitBest(ix *shapeIndex, limit int, visit func(n NodeID, score int64) bool) {
	const placeBits = 40
	leftmost := func(e int) int {
		l := e >> placeBits
		return (e&(1<<placeBits-1) - ix.off[l]) << (fanBits * l)
	}
	val := func(e int) int64 { return ix.val[e&(1<<placeBits-1)] }
	less := func(a, b int) bool { // a comes before b
		if va, vb := val(a), val(b); va != vb {
			return va > vb
		}
		return leftmost(a) < leftmost(b)
	}
	h := c.heap[:0]
	push := func(e int) {
		if val(e) == noScore {
			return
		}
		h = append(h, e)
		for k := len(h) - 1; k > 0; {
			parent := (k - 1) / 2
			if !less(h[k], h[parent]) {
				break
			}
			h[k], h[parent] = h[parent], h[k]
			k = parent
		}
	}
	pop := func() int {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for k := 0; ; {
			l, r, m := 2*k+1, 2*k+2, k
			if l < len(h) && less(h[l], h[m]) {
				m = l
			}
			if r < len(h) && less(h[r], h[m]) {
				m = r
			}
			if m == k {
				break
			}
			h[k], h[m] = h[m], h[k]
			k = m
		}
		return top
	}
	push((len(ix.off)-1)<<placeBits | ix.root())
	for visited := 0; len(h) > 0 && visited < limit; {
		e := pop()
		l, at := e>>placeBits, e&(1<<placeBits-1)
		if l == 0 {
			visited++
			if !visit(c.order[at], ix.val[at]) {
				break
			}
			continue
		}
		first := ix.off[l-1] + (at-ix.off[l])*fan
		for k := range fan {
			push((l-1)<<placeBits | (first + k))
		}
	}
	c.heap = h[:0]
}

// stateOnly is the marker of a Filter or Scorer whose verdict depends only
// on what nodeClass holds: a node's free CPU, memory and device amounts, its
// GPU model, task tags, health, pool and the shape's selector verdict; not
// on its name, rack or device layout.
type stateOnly interface{ stateOnly() }

// stateOnly reports whether every filter and scorer of the policy is
// stateOnly, so that alike nodes score alike.
func (p *Policy) stateOnly() bool {
	for _, f := range p.Filters {
		if _, ok := f.(stateOnly); !ok {
			return false
		}
	}
	for _, t := range p.Tiers {
		if _, ok := t.(stateOnly); !ok {
			return false
		}
	}
	for _, w := range p.Scorers {
		if _, ok := w.Scorer.(stateOnly); !ok {
			return false
		}
	}
	return true
}

// costly is the marker of a scorer that costs far more than hashing a
// nodeClass (fgd's trials cost hundreds of operations a node).
type costly interface{ costly() }

// costly reports whether one of the policy's scorers is costly, so that
// scoring one node per class pays for itself.
func (p *Policy) costly() bool {
	for _, w := range p.Scorers {
		if _, ok := w.Scorer.(costly); ok {
			return true
		}
	}
	return false
}

// nodeClass is everything a stateOnly policy reads of a node with up to
// eight whole GPUs. Building an index scores one node of each class: on a
// fleet of a few node types, most nodes are alike until work lands on them.
type nodeClass struct {
	cpuFree, memFree int64
	tags             uint64
	model, pool      int32
	gpuN             int32
	state            NodeState
	selOK            bool
	free             [8]int32
}

// classOf returns a node's class; ok is false for nodes outside the classes
// (more than eight devices, or MIG instances).
func (c *Cluster) classOf(n NodeID, s *Shape) (nodeClass, bool) {
	r := &c.nodes[n]
	if !r.plain {
		return nodeClass{}, false
	}
	k := nodeClass{cpuFree: r.cpuFree, memFree: r.memFree, tags: r.tags, model: r.model, pool: r.pool,
		gpuN: r.gpuN, state: r.state, selOK: s.Sel == 0 || c.selectors[s.Sel].ok[n]}
	copy(k.free[:], c.gpuFree[r.gpuOff:r.gpuOff+r.gpuN])
	return k, true
}
