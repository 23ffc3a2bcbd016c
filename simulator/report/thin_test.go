package report

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"gonum.org/v1/plot/plotter"
)

func TestThinKeepsPeaks(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		len  int
	}{{"short: as is", 100, 150}, {"long", 100, 10_007}, {"long, even", 50, 5000}} {
		xy := make(plotter.XYs, tc.len)
		for i := range xy {
			xy[i] = plotter.XY{X: float64(i), Y: math.Sin(float64(i) / 37)}
		}
		xy[tc.len/3].Y, xy[tc.len/2].Y = 9, -9 // a spike and a dip
		got := thin(xy, tc.n)
		if tc.len <= 2*tc.n {
			assert.Equal(t, xy, got, tc.name)
			continue
		}
		assert.LessOrEqual(t, len(got), 2*tc.n+1, tc.name)
		assert.Contains(t, got, xy[tc.len/3], tc.name)
		assert.Contains(t, got, xy[tc.len/2], tc.name)
		assert.Equal(t, xy[0], got[0], tc.name)
		assert.Equal(t, xy[len(xy)-1], got[len(got)-1], tc.name)
		for i := 1; i < len(got); i++ {
			assert.Less(t, got[i-1].X, got[i].X, "%s: in order", tc.name)
		}
	}
}
