package scheduler

import "math"

// This file is the one rule of how a task's GPU request meets a node's
// devices: which devices can serve it, how many tasks of one shape they
// hold, which of them the default rule takes and how much of each. Every
// path that asks reads it: the resource filter (Fits), the default
// pickers, preemption's counting (fitCount, takeOne), scale-out
// (tasksPerEmptyNode), and the trials of fgd and fgd-strand. Each passes
// the free amounts it reasons about (the live ones, a copy it changes, or
// the capacities of an empty node) beside the devices' exclusivity.
//
//   - A whole-GPU task takes devices that are whole GPUs (not exclusive)
//     with all their capacity free, the lowest-numbered first.
//   - A share takes one device with at least the share free: the one with
//     the least free (the lowest number among equals). It takes the share
//     itself, or the whole of an exclusive device (a MIG instance).

// devs returns node n's live free amounts and exclusivity, device by device.
func (c *Cluster) devs(n NodeID) (free []int32, excl []bool) {
	r := &c.nodes[n]
	return c.gpuFree[r.gpuOff : r.gpuOff+r.gpuN], c.gpuExcl[r.gpuOff : r.gpuOff+r.gpuN]
}

// wholeDev reports whether a device with free f serves a whole-GPU task.
func wholeDev(excl bool, f int32) bool { return !excl && f == MilliPerGPU }

// shareTakes is what a share of milli takes of a device with free f that
// holds it: the share, or all of an exclusive device.
func shareTakes(excl bool, f, milli int32) int32 {
	if excl {
		return f
	}
	return milli
}

// fitDevices counts the tasks of shape s (GPU side only) that devices with
// these free amounts hold, stopping once it reaches limit. Placing one task
// lowers the count by exactly one, whatever devices it takes.
func fitDevices(free []int32, excl []bool, s *Shape, limit int64) int64 {
	var k int64
	if !s.Sharing() {
		need := int64(max(s.GPUs, 1))
		stop := int64(math.MaxInt64)
		if limit <= math.MaxInt64/need {
			stop = limit * need
		}
		for i, f := range free {
			if wholeDev(excl[i], f) {
				if k++; k >= stop {
					break
				}
			}
		}
		return min(k/need, limit)
	}
	for i, f := range free {
		if f < s.Milli {
			continue
		}
		if excl[i] {
			k++ // a MIG instance holds one share
		} else {
			k += int64(f / s.Milli)
		}
		if k >= limit {
			return limit
		}
	}
	return k
}

// shareFits reports whether a share of shape s fits on one of the devices:
// fitDevices(free, excl, s, 1) > 0 without the count, for Fits on the hot
// path. A device holds a share when its free amount covers it, whether it
// is exclusive (a MIG instance takes one share whole) or not.
func shareFits(free []int32, s *Shape) bool {
	for _, f := range free {
		if f >= s.Milli {
			return true
		}
	}
	return false
}

// pickDevices is the default rule's choice on devices with these free
// amounts: the devices a task of shape s takes (a mask over them) and what
// it takes of each. A mask of zero means the task does not fit.
func pickDevices(free []int32, excl []bool, s *Shape) (uint64, int32) {
	if !s.Sharing() {
		var m uint64
		need := s.GPUs
		for i, f := range free {
			if need == 0 {
				break
			}
			if wholeDev(excl[i], f) {
				m |= 1 << uint(i)
				need--
			}
		}
		return m, MilliPerGPU
	}
	bi := -1
	for i, f := range free {
		if f >= s.Milli && (bi < 0 || f < free[bi]) {
			bi = i
		}
	}
	if bi < 0 {
		return 0, 0
	}
	return 1 << uint(bi), shareTakes(excl[bi], free[bi], s.Milli)
}

// takeDevices takes one task of shape s from the free amounts, as the
// default rule places it (pickDevices): what trials and counts of the
// task's effect on a node apply.
func takeDevices(free []int32, excl []bool, s *Shape) {
	mask, take := pickDevices(free, excl, s)
	for m := mask; m != 0; m &= m - 1 {
		free[trailingZeros(m)] -= take
	}
}

// better reports whether node n of score v beats node best of score bv:
// the higher score, then the lower rank. It is the one comparison of
// nodes; best is NoNode before any candidate.
func (c *Cluster) better(n NodeID, v int64, best NodeID, bv int64) bool {
	return best == NoNode || v > bv || (v == bv && c.rank[n] < c.rank[best])
}
