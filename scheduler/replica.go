package scheduler

import (
	"maps"
	"slices"
)

// Replica is a copy of a cluster that a planner keeps from pass to pass.
// Sync brings it up to date with its source at the cost of the nodes that
// changed since the last Sync, and keeps its score indexes (and the
// policies' per-node caches) warm: a pass on a fresh Clone builds every
// index it uses from scratch, a pass on a synced Replica re-scores only the
// nodes that changed.
//
// Like a Clone, the replica's cluster shares no memory that either side
// writes in place. Sync reads the source, so the caller serialises it with
// the source's writers; a pass on the replica's cluster must not run
// during a Sync.
type Replica struct {
	src *Cluster
	c   *Cluster
	// srcSeq and seq are src.seq and c.seq when c last matched src; nsel
	// is the number of selectors then, which both sides still share.
	srcSeq, seq uint64
	nsel        int
	// srcRanked and ranked are src.ranked and c.ranked then: the ranks
	// are copied only when either side set new ones.
	srcRanked, ranked uint64
	// mark[n] == gen marks node n as listed in todo during this Sync.
	mark []uint32
	gen  uint32
	todo []NodeID
}

// NewReplica returns a replica of src, as a Clone.
func NewReplica(src *Cluster) *Replica {
	r := &Replica{src: src}
	r.reclone()
	return r
}

// Cluster returns the replica's own cluster, as of the last Sync: a
// scheduling pass runs on it. Changes made to it (a pass that does not
// restore what it did, a trial placement) are undone by the next Sync.
func (r *Replica) Cluster() *Cluster { return r.c }

// Source returns the cluster the replica copies.
func (r *Replica) Source() *Cluster { return r.src }

func (r *Replica) reclone() {
	r.c = r.src.Clone()
	r.srcSeq, r.seq, r.nsel = r.src.seq, r.c.seq, len(r.c.selectors)
	r.srcRanked, r.ranked = r.src.ranked, r.c.ranked
	r.mark = make([]uint32, len(r.c.nodes))
	r.gen = 0
}

// Sync makes the replica's cluster hold the source's state again. A node
// changed on either side since the last Sync takes the source's free
// capacity and health and is re-scored in every index on its next use; new
// ranks and new selectors are taken whole. A changed node set (a node
// registered), or a change log trimmed past the last Sync, makes it a full
// Clone again; full reports that.
func (r *Replica) Sync() (full bool) {
	s, c := r.src, r.c
	if len(s.nodes) != len(c.nodes) || s.logBase > r.srcSeq || c.logBase > r.seq {
		r.reclone()
		return true
	}
	if len(s.pools) != len(c.pools) {
		// A pool without nodes yet: nothing scored reads it.
		c.pools, c.poolByNam = slices.Clone(s.pools), maps.Clone(s.poolByNam)
	}
	if (s.ranked != r.srcRanked || c.ranked != r.ranked) && !slices.Equal(s.rank, c.rank) {
		copy(c.rank, s.rank)
		copy(c.order, s.order)
		c.idx.reset()
	}
	r.srcRanked, r.ranked = s.ranked, c.ranked
	if len(s.selectors) != r.nsel || len(c.selectors) != r.nsel {
		// Both sides appended to the nsel selectors they shared; the ids
		// past them may name different constraints. Take the source's and
		// drop the indexes of shapes that name the replica's own.
		for k, ix := range c.idx.m {
			if int(k.shape.Sel) >= r.nsel {
				c.idx.spare = append(c.idx.spare, ix)
				delete(c.idx.m, k)
			}
		}
		c.selectors = slices.Clone(s.selectors)
		for i := range c.selectors {
			c.selectors[i].ok = slices.Clip(c.selectors[i].ok)
		}
		c.selByKey = maps.Clone(s.selByKey)
		r.nsel = len(s.selectors)
	}
	// List the nodes changed on either side, each once, before copying:
	// a copy appends to the replica's log (and may trim it).
	r.gen++
	if r.gen == 0 { // wrapped: clear the marks
		clear(r.mark)
		r.gen = 1
	}
	todo := r.todo[:0]
	for _, log := range [][]NodeID{c.log[r.seq-c.logBase:], s.log[r.srcSeq-s.logBase:]} {
		for _, n := range log {
			if r.mark[n] != r.gen {
				r.mark[n] = r.gen
				todo = append(todo, n)
			}
		}
	}
	for _, n := range todo {
		sr := &s.nodes[n]
		if c.sameNode(s, n) {
			continue // changed and changed back, or changed alike on both sides: scores stand
		}
		c.nodes[n] = *sr // seq is set again by touch
		copy(c.gpuFree[sr.gpuOff:sr.gpuOff+sr.gpuN], s.gpuFree[sr.gpuOff:sr.gpuOff+sr.gpuN])
		copy(c.gpuHeld[sr.gpuOff:sr.gpuOff+sr.gpuN], s.gpuHeld[sr.gpuOff:sr.gpuOff+sr.gpuN])
		t := int(n) * numTags
		copy(c.tagCount[t:t+numTags], s.tagCount[t:t+numTags])
		c.touch(n)
	}
	r.todo = todo[:0]
	r.srcSeq, r.seq = s.seq, c.seq
	return false
}

// sameNode reports whether node n holds the same free capacity, health and
// tags in c as in s (its change sequence aside): what a Sync copies.
func (c *Cluster) sameNode(s *Cluster, n NodeID) bool {
	a, b := c.nodes[n], s.nodes[n]
	a.seq = b.seq
	if a != b {
		return false
	}
	t := int(n) * numTags
	return slices.Equal(c.gpuFree[a.gpuOff:a.gpuOff+a.gpuN], s.gpuFree[b.gpuOff:b.gpuOff+b.gpuN]) &&
		slices.Equal(c.gpuHeld[a.gpuOff:a.gpuOff+a.gpuN], s.gpuHeld[b.gpuOff:b.gpuOff+b.gpuN]) &&
		slices.Equal(c.tagCount[t:t+numTags], s.tagCount[t:t+numTags])
}
