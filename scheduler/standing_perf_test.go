package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeleteAt checks the queue removal against slices.Delete at every
// position of queues of several lengths, and that the slot it frees at
// the head lets its job go.
func TestDeleteAt(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 8} {
		for i := range n {
			t.Run(fmt.Sprintf("%d/%d", n, i), func(t *testing.T) {
				q := make([]*Job, n)
				for k := range q {
					q[k] = &Job{ID: fmt.Sprint(k)}
				}
				backing := q[:n:n]
				want := slices.Delete(slices.Clone(q), i, i+1)
				got := deleteAt(q, i)
				require.Equal(t, want, got)
				if i < n/2 {
					require.Nil(t, backing[0], "the head slot keeps a job")
				}
			})
		}
	}
}

// TestQueueInsertDelete drives insertAt and deleteAt with random positions
// against a plain slice, and checks that a queue that jobs enter at the
// tail and leave at the head stops allocating once its buffer is large
// enough.
func TestQueueInsertDelete(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf, q, want []*Job
	for step := range 5000 {
		if len(want) == 0 || rng.IntN(5) < 3 {
			i := rng.IntN(len(want) + 1)
			j := &Job{ID: fmt.Sprint(step)}
			buf, q = insertAt(buf, q, i, j)
			want = slices.Insert(want, i, j)
		} else {
			i := rng.IntN(len(want))
			q = deleteAt(q, i)
			want = slices.Delete(want, i, i+1)
		}
		require.Equal(t, want, q, "step %d", step)
		require.Same(t, &buf[:cap(buf)][cap(buf)-1], &q[:cap(q)][cap(q)-1], "step %d: the queue is not a suffix of its buffer", step)
	}
	// FIFO at a steady length: no allocation.
	jobs := make([]*Job, 64)
	for k := range jobs {
		jobs[k] = &Job{ID: fmt.Sprint(k)}
	}
	buf, q = nil, nil
	for _, j := range jobs[:32] {
		buf, q = insertAt(buf, q, len(q), j)
	}
	k := 32
	allocs := testing.AllocsPerRun(1000, func() {
		q = deleteAt(q, 0)
		buf, q = insertAt(buf, q, len(q), jobs[k%64])
		k++
	})
	require.Zero(t, allocs)
	require.Len(t, q, 32)
}
