package scheduler

// Warm reads what releasing assignment a reads first (its node's record,
// its first device, its tag's count on the node) and changes nothing. A
// driver about to release a batch of jobs' tasks warms them side by side
// first, so that their cache misses overlap rather than come one after
// another; the value is only for the caller to keep, so that the reads
// stay.
func (c *Cluster) Warm(a *Assign) int64 {
	if a.Node < 0 || int(a.Node) >= len(c.nodes) {
		return 0
	}
	r := &c.nodes[a.Node]
	v := r.cpuFree
	if r.gpuN > 0 {
		v += int64(c.gpuFree[r.gpuOff])
	}
	if a.Tag >= 0 && int(a.Tag) < numTags {
		v += int64(c.tagCount[int(a.Node)*numTags+int(a.Tag)])
	}
	return v
}

// Warm reads a running job's entry in its set-up, as Cluster.Warm reads a
// node, and changes nothing.
func (r RunRef) Warm() int {
	lj := r.lj
	if lj == nil {
		return 0
	}
	// What stopping the job reads: its tenant, its assignments' amounts
	// and its count of live tasks, on the entry's first two cache lines,
	// and its job's kind.
	v := lj.nAlive + lj.tenant
	if len(lj.assigns) > 0 {
		v += int(lj.assigns[0].Take)
	}
	if lj.job != nil {
		v += int(lj.job.Kind)
	}
	return v
}
