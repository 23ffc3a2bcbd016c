package scheduler

import (
	"maps"
	"slices"
)

// Clone returns an independent copy of the cluster: the same pools, nodes,
// ranks, free capacity and interned shapes, sharing no memory that either
// copy writes. A scheduling pass can run on the copy while the original
// keeps changing (the daemon's leader plans on a copy while the log keeps
// applying), and what the pass does to the copy never reaches the original.
//
// The copy is a flat copy of the slabs: node records, device slabs, task
// tags, ranks and the selectors' per-node verdicts are copied; the
// registered specs (a node's devices and labels, a pool's labels) and the
// selectors' constraints are shared, since nothing writes them after
// registration. The derived caches (score indexes, class memo, scratch)
// start empty: the copy rebuilds an index on its first use of a shape, and
// since an index holds exactly what a scan computes, plans are the same.
//
// Clone reads the cluster: the caller serialises it with writers, as for
// any other read. A Policy that caches per cluster (fgd) follows the
// cluster it scores; use it for one pass at a time.
func (c *Cluster) Clone() *Cluster {
	d := &Cluster{
		pools:     slices.Clone(c.pools),
		poolByNam: maps.Clone(c.poolByNam),
		specs:     slices.Clone(c.specs),
		labels:    slices.Clone(c.labels),
		nodes:     slices.Clone(c.nodes),
		byName:    maps.Clone(c.byName),
		rank:      slices.Clone(c.rank),
		order:     slices.Clone(c.order),
		rackNames: slices.Clone(c.rackNames),
		rackByNam: maps.Clone(c.rackByNam),
		rackNodes: make([][]NodeID, len(c.rackNodes)),
		models:    slices.Clone(c.models),
		modelByNm: maps.Clone(c.modelByNm),
		gpuFree:   slices.Clone(c.gpuFree),
		gpuCap:    slices.Clone(c.gpuCap),
		gpuIsland: slices.Clone(c.gpuIsland),
		gpuExcl:   slices.Clone(c.gpuExcl),
		tagCount:  slices.Clone(c.tagCount),
		selectors: slices.Clone(c.selectors),
		selByKey:  maps.Clone(c.selByKey),
		// The copy has no index yet, so no change is pending for one: the
		// log starts empty at the current sequence.
		logBase: c.seq,
		seq:     c.seq,
		maxCPU:  c.maxCPU,
		maxGPU:  c.maxGPU,
	}
	for i, r := range c.rackNodes {
		d.rackNodes[i] = slices.Clone(r)
	}
	for i := range d.selectors {
		d.selectors[i].ok = slices.Clone(c.selectors[i].ok)
	}
	d.idx.init()
	return d
}
