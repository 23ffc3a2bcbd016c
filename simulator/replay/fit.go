package replay

import (
	"fmt"

	"petite/scheduler"
)

// fitCache answers "does a task of this demand fit some empty node?" once
// per distinct demand.
type fitCache struct {
	c    *scheduler.Cluster
	memo map[fitKey]bool
}

// fitKey is a task's demand; models, constraints and residency, rare in
// traces, are spelled out in extra.
type fitKey struct {
	gpus, milli int
	cpu, mem    int64
	extra       string
}

func newFitCache(c *scheduler.Cluster) *fitCache {
	return &fitCache{c: c, memo: map[fitKey]bool{}}
}

func (f *fitCache) fits(t *scheduler.Task) (bool, error) {
	key := fitKey{gpus: t.GPUs, milli: t.GPUMilli, cpu: t.CPUMilli, mem: t.MemoryMiB}
	if len(t.Models)+len(t.Constraints)+len(t.Residency) > 0 {
		key.extra = fmt.Sprint(t.Models, t.Constraints, t.Residency)
	}
	if ok, seen := f.memo[key]; seen {
		return ok, nil
	}
	s, err := f.c.ShapeOf(t)
	if err != nil {
		return false, err
	}
	ok := false
	for n := range f.c.NumNodes() {
		if f.c.Fits(scheduler.NodeID(n), &s) {
			ok = true
			break
		}
	}
	f.memo[key] = ok
	return ok, nil
}
