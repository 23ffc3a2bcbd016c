package replay

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// sortFloats orders as slices.Sort does, value for value (bits included),
// on lists below and above its radix threshold: hours, ties, zeros,
// negatives, infinities, tiny and huge magnitudes; one sorter sorts them
// all, its scratch kept from longer lists for shorter ones.
func TestSortFloats(t *testing.T) {
	var fs floatSorter
	for _, c := range []struct {
		name string
		gen  func(r *rand.Rand) float64
	}{
		{"hours", func(r *rand.Rand) float64 { return hours(r.Int64N(100 * Hour)) }},
		{"ties", func(r *rand.Rand) float64 { return float64(r.IntN(5)) / 3 }},
		{"zeros", func(r *rand.Rand) float64 { return 0 }},
		{"signs", func(r *rand.Rand) float64 { return r.NormFloat64() * 1e3 }},
		{"extremes", func(r *rand.Rand) float64 {
			return []float64{math.Inf(1), math.Inf(-1), 5e-324, -5e-324, math.MaxFloat64, -math.MaxFloat64, 1, -1}[r.IntN(8)]
		}},
		{"magnitudes", func(r *rand.Rand) float64 { return math.Ldexp(r.Float64(), r.IntN(2000)-1000) }},
	} {
		for _, n := range []int{0, 1, 1023, 1024, 5000, 70_000} {
			r := rand.New(rand.NewPCG(uint64(n), 7))
			v := make([]float64, n)
			for i := range v {
				v[i] = c.gen(r)
			}
			want := slices.Clone(v)
			slices.Sort(want)
			fs.sort(v)
			require.Equal(t, want, v, "%s, %d values", c.name, n)
		}
	}
	v := make([]float64, 2000)
	v[7] = math.NaN()
	sortFloats(v) // a NaN: slices.Sort's order, NaN first
	require.True(t, math.IsNaN(v[0]))
}

func BenchmarkSortFloats(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	src := make([]float64, 1_000_000)
	for i := range src {
		src[i] = hours(r.Int64N(100 * Hour))
	}
	v := make([]float64, len(src))
	for _, s := range []struct {
		name string
		sort func([]float64)
	}{{"radix", sortFloats}, {"slices.Sort", slices.Sort[[]float64]}} {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				copy(v, src)
				s.sort(v)
			}
		})
	}
}
