package replay

import (
	"math"
	"slices"
)

// sortFloats sorts v ascending as slices.Sort does, by radix on the bits
// of the values (mapped so that their order as unsigned numbers is the
// numeric order): O(n), where the summary's lists reach millions of values
// and a comparison sort is several times slower. v holds no NaN (hours and
// ratios of finite times); one found leaves the sort to slices.Sort.
func sortFloats(v []float64) {
	var s floatSorter
	s.sort(v)
}

// floatSorter sorts as sortFloats does, its scratch kept from one list to
// the next: the summary sorts a dozen lists as long as the workload.
type floatSorter struct {
	keys, tmp []uint64
}

func (s *floatSorter) sort(v []float64) {
	if len(v) < 1024 {
		slices.Sort(v)
		return
	}
	if cap(s.keys) < len(v) {
		s.keys, s.tmp = make([]uint64, len(v)), make([]uint64, len(v))
	}
	keys, tmp := s.keys[:len(v)], s.tmp[:len(v)]
	for i, x := range v {
		if x != x {
			slices.Sort(v)
			return
		}
		b := math.Float64bits(x)
		if b>>63 == 1 {
			b = ^b // negative: larger magnitudes first
		} else {
			b |= 1 << 63
		}
		keys[i] = b
	}
	const bits = 11
	const buckets = 1 << bits
	var count [buckets]int
	for shift := 0; shift < 64; shift += bits {
		clear(count[:])
		for _, k := range keys {
			count[(k>>shift)&(buckets-1)]++
		}
		sum, one := 0, false
		for i, c := range count {
			one = one || c == len(keys)
			count[i] = sum
			sum += c
		}
		if one { // every key has this digit: the pass would move nothing
			continue
		}
		for _, k := range keys {
			d := (k >> shift) & (buckets - 1)
			tmp[count[d]] = k
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	for i, b := range keys {
		if b>>63 == 1 {
			b &^= 1 << 63
		} else {
			b = ^b
		}
		v[i] = math.Float64frombits(b)
	}
}
