package scheduler

import "fmt"

// Retake takes back an assignment released just before, undoing that
// Release exactly, as a state machine rolling a refused plan back does.
// It differs from Commit on an unhealthy device: a release there leaves
// the share withheld rather than free, and Retake takes it back from what
// is withheld, where Commit (new work, onto free capacity only) would
// refuse it and leave the rollback half done.
func (c *Cluster) Retake(a Assign) error {
	if a.Node < 0 || int(a.Node) >= len(c.nodes) {
		return fmt.Errorf("retake: unknown node %d", a.Node)
	}
	r := &c.nodes[a.Node]
	switch {
	case a.CPUMilli < 0 || a.MemMiB < 0 || a.Take < 0:
		return fmt.Errorf("retake on %s: negative request", c.specs[a.Node].Name)
	case a.CPUMilli > r.cpuFree || a.MemMiB > r.memFree:
		return fmt.Errorf("retake on %s: CPU or memory oversubscribed", c.specs[a.Node].Name)
	case a.Mask != 0 && a.Take == 0:
		return fmt.Errorf("retake on %s: GPUs named but no share taken", c.specs[a.Node].Name)
	case a.Tag < -1 || int(a.Tag) >= numTags:
		return fmt.Errorf("retake on %s: bad task tag %d", c.specs[a.Node].Name, a.Tag)
	}
	for m := a.Mask; m != 0; m &= m - 1 {
		i := int32(trailingZeros(m))
		if i >= r.gpuN {
			return fmt.Errorf("retake on %s: no GPU %d", c.specs[a.Node].Name, i)
		}
		g := r.gpuOff + i
		have := c.gpuFree[g]
		if r.sick&(m&-m) != 0 {
			have = c.gpuHeld[g]
		}
		if have < a.Take {
			return fmt.Errorf("retake on %s: GPU %d oversubscribed: want %d milli, %d there", c.specs[a.Node].Name, i, a.Take, have)
		}
	}
	c.apply(&a)
	return nil
}
