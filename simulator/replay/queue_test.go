package replay

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQueueOrder pushes and pops events in random interleavings and checks
// that each pop is the earliest event left by (at, phase, push order), as
// a sort of everything pushed says, and comes back as it was pushed (the
// heap packs its flags).
func TestQueueOrder(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var q queue
		var left []item // what the queue should hold, with seq as pushed
		for step := range 500 {
			if rng.IntN(3) > 0 || len(left) == 0 {
				it := item{at: int64(rng.IntN(20)), phase: phase(rng.IntN(4)), job: int32(step), epoch: rng.Uint32(),
					cloud: rng.IntN(2) == 0, price: rng.IntN(2) == 0, move: rng.IntN(2) == 0, scale: uint8(rng.IntN(5))}
				q.push(it)
				it.key = uint64(it.phase)<<56 | (q.seq - 1)
				left = append(left, it)
				continue
			}
			slices.SortFunc(left, func(a, b item) int {
				return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.phase, b.phase), cmp.Compare(a.key&(1<<56-1), b.key&(1<<56-1)))
			})
			at, ok := q.next()
			require.True(t, ok)
			require.Equal(t, left[0].at, at, "seed %d step %d", seed, step)
			require.Equal(t, left[0], q.pop(), "seed %d step %d", seed, step)
			left = left[1:]
		}
		require.Equal(t, len(left), q.len())
	}
}

// BenchmarkQueue keeps 50,000 events pending, as a replay of a large fleet
// does (one finish per running job), and pops and pushes one at a time.
func BenchmarkQueue(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	for i := range 50_000 {
		q.push(item{at: int64(rng.IntN(1 << 30)), job: int32(i)})
	}
	for b.Loop() {
		it := q.pop()
		it.at += int64(rng.IntN(1 << 20))
		q.push(it)
	}
}

// BenchmarkQueueFinishes keeps 50,000 finishes pending as a replay's
// fleet does, each a run's length ahead (lognormal around half an hour,
// from 10 s to 30 days, the shape of `trace gen`'s default), and pops the
// next and pushes its successor one at a time.
func BenchmarkQueueFinishes(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	run := func() int64 {
		s := math.Exp(math.Log(1800) + 1.6*rng.NormFloat64())
		return int64(min(max(s, 10), 30*86400) * float64(Second))
	}
	var q queue
	for i := range 50_000 {
		q.push(item{at: run(), job: int32(i)})
	}
	for b.Loop() {
		it := q.pop()
		it.at += run()
		q.push(it)
	}
}
