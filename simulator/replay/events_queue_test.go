package replay

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// heapQueue is the replay's former event queue, a 4-ary min-heap on
// (at, key), kept as the reference the radix queue must pop in step with.
type heapQueue struct {
	h   []entry
	seq uint64
}

func (q *heapQueue) push(it item) {
	q.h = append(q.h, pack(&it, q.seq))
	q.seq++
	i := len(q.h) - 1
	e := q.h[i]
	for i > 0 {
		p := (i - 1) / 4
		if !e.before(&q.h[p]) {
			break
		}
		q.h[i] = q.h[p]
		i = p
	}
	q.h[i] = e
}

func (q *heapQueue) pop() item {
	n := len(q.h) - 1
	it := q.h[0].unpack()
	e := q.h[n]
	q.h = q.h[:n]
	if n == 0 {
		return it
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < min(c+4, n); k++ {
			if q.h[k].before(&q.h[m]) {
				m = k
			}
		}
		if !q.h[m].before(&e) {
			break
		}
		q.h[i] = q.h[m]
		i = m
	}
	q.h[i] = e
	return it
}

// upTo draws a time from last to math.MaxInt64.
func upTo(rng *rand.Rand, last int64) int64 {
	span := uint64(math.MaxInt64) - uint64(last) // wraps to the right count
	if span == math.MaxUint64 {
		return int64(rng.Uint64())
	}
	return last + int64(rng.Uint64N(span+1))
}

// queueCase draws the times of one run of pushes and pops.
type queueCase struct {
	name string
	// at is the time of a push, given the time of the last event popped
	// (or peeked at) and the next one left, if any.
	at func(rng *rand.Rand, last, next int64, ok bool) int64
	// pushes is the odds, out of 8, that a step pushes rather than pops.
	pushes int
	steps  int
}

// TestQueueMatchesHeap drives the radix queue and the former heap with the
// same pushes, pops, peeks and instant drains, monotone as the replay's
// clock and not, and checks that every pop, peek and next agrees, flags
// and all.
func TestQueueMatchesHeap(t *testing.T) {
	const far = math.MaxInt64 / 4 // the budgets' cap
	cases := []queueCase{
		{name: "ties at few instants", pushes: 5, steps: 4000,
			at: func(rng *rand.Rand, last, _ int64, _ bool) int64 { return last + int64(rng.IntN(3)) }},
		{name: "current instant, any phase", pushes: 4, steps: 4000,
			at: func(rng *rand.Rand, last, _ int64, _ bool) int64 {
				if rng.IntN(2) == 0 {
					return last
				}
				return last + int64(rng.IntN(1000))
			}},
		{name: "run lengths", pushes: 4, steps: 20000,
			at: func(rng *rand.Rand, last, _ int64, _ bool) int64 {
				return last + int64(math.Exp(math.Log(1800)+1.6*rng.NormFloat64())*float64(Second))
			}},
		{name: "huge jumps and far future", pushes: 4, steps: 4000,
			at: func(rng *rand.Rand, last, _ int64, _ bool) int64 {
				switch rng.IntN(5) {
				case 0:
					return far
				case 1:
					return math.MaxInt64
				case 2:
					return upTo(rng, last)
				}
				return last + min(int64(rng.IntN(1<<rng.IntN(40))), math.MaxInt64-last)
			}},
		{name: "negative times", pushes: 4, steps: 4000,
			at: func(rng *rand.Rand, last, _ int64, _ bool) int64 {
				if last < 0 && rng.IntN(4) > 0 {
					return last + rng.Int64N(-(last/2)+1)
				}
				return last + min(int64(rng.IntN(1<<20)), math.MaxInt64-max(last, 0))
			}},
		{name: "arrivals before the next event", pushes: 4, steps: 4000,
			// the replay's t may lie between the last event popped and the
			// next one left (a job's submission): pushes at t then come
			// before the queue's front
			at: func(rng *rand.Rand, last, next int64, ok bool) int64 {
				if ok && next > last && rng.IntN(2) == 0 {
					return last + rng.Int64N(next-last+1)
				}
				return last + int64(rng.IntN(1<<rng.IntN(30)))
			}},
		{name: "past pushes (overflowed times)", pushes: 4, steps: 4000,
			at: func(rng *rand.Rand, last, _ int64, _ bool) int64 {
				if rng.IntN(3) == 0 {
					return int64(rng.Uint64())
				}
				return last + int64(rng.IntN(1<<rng.IntN(40)))
			}},
		{name: "drain and refill", pushes: 1, steps: 4000,
			at: func(rng *rand.Rand, last, _ int64, _ bool) int64 { return last + int64(rng.IntN(1<<rng.IntN(50))) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(10) {
				rng := rand.New(rand.NewPCG(seed, 7))
				var q queue
				var ref heapQueue
				start := int64(rng.IntN(3)) - 1
				if tc.name == "negative times" {
					start = math.MinInt64
				}
				last := start // the last time popped or peeked at
				n := 0
				for step := range tc.steps {
					next, ok := q.next()
					if refOK := len(ref.h) > 0; refOK {
						require.True(t, ok, "seed %d step %d: next", seed, step)
						require.Equal(t, ref.h[0].at, next, "seed %d step %d: next", seed, step)
					} else {
						require.False(t, ok, "seed %d step %d: next", seed, step)
					}
					switch r := rng.IntN(8); {
					case r < tc.pushes || n == 0:
						it := item{at: tc.at(rng, last, next, ok), phase: phase(rng.IntN(4)), job: rng.Int32(), epoch: rng.Uint32(),
							cloud: rng.IntN(2) == 0, price: rng.IntN(2) == 0, move: rng.IntN(2) == 0, scale: uint8(rng.IntN(5))}
						q.push(it)
						ref.push(it)
						n++
					case r == tc.pushes: // the engine's drain of an instant
						at := next
						require.Equal(t, ref.h[0].unpack(), q.peek(), "seed %d step %d: peek", seed, step)
						for q.nextAt(at) {
							require.Equal(t, ref.pop(), q.pop(), "seed %d step %d: drain", seed, step)
							n--
						}
						require.True(t, len(ref.h) == 0 || ref.h[0].at != at, "seed %d step %d: drain stopped early", seed, step)
						last = at
					default:
						want := ref.pop()
						require.Equal(t, want, q.pop(), "seed %d step %d: pop", seed, step)
						n--
						last = want.at
					}
					require.Equal(t, n, q.len(), "seed %d step %d: len", seed, step)
					require.Equal(t, n == 0, q.empty(), "seed %d step %d: empty", seed, step)
				}
				for !q.empty() {
					require.Equal(t, ref.pop(), q.pop(), "seed %d: the rest", seed)
				}
				require.Empty(t, ref.h, "seed %d", seed)
			}
		})
	}
}

// TestQueueReusesItsSlices checks that a queue in steady state (as many
// pushes as pops, times moving on) allocates nothing.
func TestQueueReusesItsSlices(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	for i := range 10_000 {
		q.push(item{at: int64(rng.IntN(1 << 40)), job: int32(i)})
	}
	step := func() {
		it := q.pop()
		it.at += int64(rng.IntN(1 << 40))
		q.push(it)
	}
	for range 200_000 { // every bucket grown to its steady size
		step()
	}
	require.Zero(t, testing.AllocsPerRun(10_000, step))
}
