package frag

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckInflate(t *testing.T) {
	for _, ok := range []float64{0, 1, DefaultInflate, MaxInflate} {
		assert.NoError(t, CheckInflate(ok), "%g", ok)
	}
	for _, bad := range []float64{-0.1, math.NaN(), math.Inf(1), math.Inf(-1), MaxInflate + 1, 1e300} {
		assert.Error(t, CheckInflate(bad), "%g", bad)
	}
	f, err := DefaultFleet()
	require.NoError(t, err)
	w, err := DefaultWorkload()
	require.NoError(t, err)
	_, err = Run(f, w, Config{Policy: "best-fit", Inflate: math.NaN()})
	require.ErrorContains(t, err, "inflate")
}
