package replay

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBaseIDBlocks checks that ids cut from a block are the ids made one
// at a time, in arrival order and out of it (a resubmission renumbers an
// older job), at widths whose last block overflows and ones whose does not.
func TestBaseIDBlocks(t *testing.T) {
	for _, tc := range []struct {
		width, n int
	}{{1, 10}, {3, 1000}, {4, 5000}, {4, 10000}, {streamWidth, 3 * idBlock}} {
		e := &engine{width: tc.width}
		for k := range tc.n {
			require.Equal(t, e.oneID(k), e.baseID(k), "width %d, job %d", tc.width, k)
			if k%700 == 699 { // an older job, then on in order
				require.Equal(t, e.oneID(k/3), e.baseID(k/3), "width %d, job %d", tc.width, k/3)
			}
		}
	}
	e := &engine{width: 5}
	for k := range 2 * idBlock {
		_ = e.baseID(k)
	}
	require.Equal(t, 0.0, testing.AllocsPerRun(100, func() { _ = e.baseID(idBlock + 5) }), "an id of the present block is cut, not made")
}
