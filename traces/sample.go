package traces

import (
	"errors"
	"io"
	"math/rand/v2"
	"sort"
)

// Sample draws n jobs uniformly at random from src in one pass (reservoir
// sampling) and returns them in their order in src. The same seed and input
// give the same sample. It holds n jobs in memory; if src has n jobs or
// fewer, all of them come back.
func Sample(src Source, n int, seed uint64) ([]Job, error) {
	if n <= 0 {
		return nil, nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x5a4d91e3c2b7f681))
	type kept struct {
		pos int
		job Job
	}
	res := make([]kept, 0, min(n, 1<<16))
	for i := 0; ; i++ {
		j, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if i < n {
			res = append(res, kept{i, j})
			continue
		}
		if k := rng.IntN(i + 1); k < n {
			res[k] = kept{i, j}
		}
	}
	sort.Slice(res, func(a, b int) bool { return res[a].pos < res[b].pos })
	out := make([]Job, len(res))
	for i, k := range res {
		out[i] = k.job
	}
	return out, nil
}
