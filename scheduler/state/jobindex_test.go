package state

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJobIndexMatchesMap drives the job index and a map with the same
// random adds and deletions (tables from nearly empty to half full, runs
// that wrap around the table's end, ids added again after deletion) and
// checks every id, present or not, after each step.
func TestJobIndexMatchesMap(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			x := newJobIndex()
			var recs []*record
			var free []int32
			want := map[string]*record{}
			ids := make([]string, 300)
			for i := range ids {
				ids[i] = fmt.Sprintf("job-%d", i)
			}
			check := func(step int) {
				require.Equal(t, len(want), x.n, "step %d", step)
				for _, id := range ids {
					r, ok := x.get(recs, id)
					w, wok := want[id]
					require.Equal(t, wok, ok, "step %d: %s", step, id)
					require.Same(t, w, r, "step %d: %s", step, id)
				}
			}
			for step := range 4000 {
				id := ids[rng.IntN(len(ids))]
				if r, ok := want[id]; ok && rng.IntN(2) == 0 {
					x.del(r)
					recs[r.slot] = nil
					free = append(free, r.slot)
					delete(want, id)
				} else if !ok {
					r := &record{}
					r.job.ID = id
					if n := len(free); n > 0 {
						r.slot, free = free[n-1], free[:n-1]
						recs[r.slot] = r
					} else {
						r.slot = int32(len(recs))
						recs = append(recs, r)
					}
					x.put(r)
					want[id] = r
				}
				if step%7 == 0 {
					check(step)
				}
			}
			check(-1)
			require.LessOrEqual(t, 2*x.n, len(x.tab), "at most half full")
		})
	}
}
