package scheduler

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestShareFitsIsFitDevicesOfOne: Fits's fast check of a share is the one
// device rule's count of one, on devices whole, shared and MIG, at and
// around the share's exact size.
func TestShareFitsIsFitDevicesOfOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 20000 {
		n := 1 + rng.IntN(8)
		free := make([]int32, n)
		excl := make([]bool, n)
		s := Shape{GPUs: 1, Milli: int32(1 + rng.IntN(MilliPerGPU-1))}
		for i := range free {
			excl[i] = rng.IntN(3) == 0
			switch rng.IntN(4) {
			case 0:
				free[i] = s.Milli // exactly the share
			case 1:
				free[i] = s.Milli - 1 // one milli short
			default:
				free[i] = int32(rng.IntN(MilliPerGPU + 1))
			}
			free[i] = max(free[i], 0)
		}
		require.Equal(t, fitDevices(free, excl, &s, 1) > 0, shareFits(free, &s), "free %v excl %v share %d", free, excl, s.Milli)
	}
}
