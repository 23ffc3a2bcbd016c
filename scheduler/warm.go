package scheduler

// Warm reads what releasing a task on node id reads first (the node's
// record and its first device) and changes nothing. A driver about to
// change a batch of jobs' nodes warms them side by side first, so that
// their cache misses overlap rather than come one after another; the value
// is only for the caller to keep, so that the reads stay.
func (c *Cluster) Warm(id NodeID) int64 {
	if id < 0 || int(id) >= len(c.nodes) {
		return 0
	}
	r := &c.nodes[id]
	v := r.cpuFree
	if r.gpuN > 0 {
		v += int64(c.gpuFree[r.gpuOff])
	}
	return v
}

// Warm reads a running job's entry in its set-up, as Cluster.Warm reads a
// node, and changes nothing.
func (r RunRef) Warm() int {
	if r.lj == nil {
		return 0
	}
	return r.lj.nAlive
}
