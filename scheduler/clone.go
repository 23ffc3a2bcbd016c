package scheduler

import (
	"maps"
	"slices"
)

// Clone returns an independent copy of the cluster: the same pools, nodes,
// ranks, free capacity and interned shapes, and no memory that either copy
// writes in place. A scheduling pass can run on the copy while the
// original keeps changing (the daemon's leader plans on a copy while the
// log keeps applying), and what the pass does to the copy never reaches the
// original.
//
// What changes in place is copied flat: node records, free device
// capacity, task tags, ranks, the name maps. What is only ever appended to
// (node specs, names and labels, device capacities, islands and exclusivity, rack
// members, selector verdicts) is shared with its capacity clipped, so that
// an append on either side never writes where the other reads; a slab that
// starts being written in place must move to the copied ones. The derived
// caches (score indexes, the other memos, scratch) start empty: the copy
// builds an index on its first use of a shape, and since an index holds
// exactly what a scan computes, plans are the same (a Replica keeps them
// warm from pass to pass).
//
// Clone reads the cluster, so the caller serialises it with writers, as
// any read. A Policy that caches per cluster (fgd) follows the cluster it
// scores; use it for one pass at a time.
func (c *Cluster) Clone() *Cluster {
	d := &Cluster{
		pools:     slices.Clone(c.pools),
		poolByNam: maps.Clone(c.poolByNam),
		specs:     slices.Clip(c.specs),
		names:     slices.Clip(c.names),
		labels:    slices.Clip(c.labels),
		nodes:     slices.Clone(c.nodes),
		byName:    maps.Clone(c.byName),
		rank:      slices.Clone(c.rank),
		order:     slices.Clone(c.order),
		ranked:    c.ranked,
		rackNames: slices.Clip(c.rackNames),
		rackByNam: maps.Clone(c.rackByNam),
		rackNodes: make([][]NodeID, len(c.rackNodes)),
		models:    slices.Clip(c.models),
		modelByNm: maps.Clone(c.modelByNm),
		gpuFree:   slices.Clone(c.gpuFree),
		gpuCap:    slices.Clip(c.gpuCap),
		gpuIsland: slices.Clip(c.gpuIsland),
		gpuExcl:   slices.Clip(c.gpuExcl),
		gpuHeld:   slices.Clone(c.gpuHeld),
		tagCount:  slices.Clone(c.tagCount),
		selectors: slices.Clone(c.selectors),
		selByKey:  maps.Clone(c.selByKey),
		// The copy has no index yet, so no change is pending for one: the
		// log starts empty at the current sequence.
		logBase: c.seq,
		seq:     c.seq,
		maxCPU:  c.maxCPU,
		maxGPU:  c.maxGPU,
		// The sum of the devices' capacity, which only registration changes.
		gpuCapAll: c.gpuCapAll,
	}
	for i, r := range c.rackNodes {
		d.rackNodes[i] = slices.Clip(r)
	}
	for i := range d.selectors {
		d.selectors[i].ok = slices.Clip(d.selectors[i].ok)
	}
	d.idx.init()
	return d
}
