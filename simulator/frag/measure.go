package frag

import "math"

// Point is one point of the allocation curve: at arrived% of the cluster's
// GPU capacity requested so far, alloc% of it allocated.
type Point struct {
	// ArrivedPct is the GPU request of the pods seen so far, in percent of
	// the capacity.
	ArrivedPct float64 `json:"arrived_pct"`
	// AllocPct is the GPU milli allocated, in percent of the capacity.
	AllocPct float64 `json:"alloc_pct"`
}

// record is the state after one pod of the sequence, placed or failed, in
// milli-GPU.
type record struct {
	arrived, alloc int64
}

// Meter records arrival and allocation after every pod of a run and derives
// the measures of FRAG-METHOD §7 from them.
type Meter struct {
	capMilli int64
	recs     []record
}

// NewMeter measures against a cluster of capMilli milli-GPU.
func NewMeter(capMilli int64, hint int) *Meter {
	return &Meter{capMilli: capMilli, recs: make([]record, 0, hint)}
}

// Record notes the totals after one pod: the GPU request of every pod seen
// so far (failed ones included) and the GPU milli actually allocated.
func (m *Meter) Record(arrivedMilli, allocMilli int64) {
	m.recs = append(m.recs, record{arrivedMilli, allocMilli})
}

// Len is the number of records.
func (m *Meter) Len() int { return len(m.recs) }

// allocPct is 100 × alloc / capacity rounded to 2 decimals (half up).
func (m *Meter) allocPct(alloc int64) float64 { return m.pct(alloc) }

// pct is 100 × milli / capacity rounded to 2 decimals (half up).
func (m *Meter) pct(milli int64) float64 {
	// hundredths of a percent, rounded half up in integers: exact.
	h := (milli*20000 + m.capMilli) / (2 * m.capMilli)
	return float64(h) / 100
}

// roundsTo reports whether 100 × arrived / capacity, rounded to a whole
// number half to even, is pct. In integers: the value lies in
// [pct−½, pct+½], the ends included only when pct is even.
func (m *Meter) roundsTo(arrived int64, pct int) bool {
	x := 200 * arrived // 2 × percent × capacity
	lo := int64(2*pct-1) * m.capMilli
	hi := int64(2*pct+1) * m.capMilli
	if pct%2 == 0 {
		return lo <= x && x <= hi
	}
	return lo < x && x < hi
}

// AllocAt is the reported allocation at pct% arrival (FRAG-METHOD §7): the
// mean alloc% over the records whose arrived% rounds to pct, or, when there
// is none, over those that round to pct−1..pct+1. ok is false when neither
// window holds a record.
func (m *Meter) AllocAt(pct int) (v float64, ok bool) {
	for _, win := range [][]int{{pct}, {pct - 1, pct, pct + 1}} {
		var sum float64
		n := 0
		for _, r := range m.recs {
			for _, p := range win {
				if m.roundsTo(r.arrived, p) {
					sum += m.allocPct(r.alloc)
					n++
					break
				}
			}
		}
		if n > 0 {
			return sum / float64(n), true
		}
	}
	return 0, false
}

// Final is the allocation at the end of the sequence, in percent.
func (m *Meter) Final() float64 {
	if len(m.recs) == 0 {
		return 0
	}
	return m.allocPct(m.recs[len(m.recs)-1].alloc)
}

// Curve samples allocation at every whole percent of arrival, from 0 to the
// final arrival: the point at p% is the allocation after the last pod whose
// arrival was at most p% (0 before the first pod).
func (m *Meter) Curve() []Point {
	if len(m.recs) == 0 {
		return nil
	}
	last := m.recs[len(m.recs)-1].arrived
	top := int(100 * last / m.capMilli)
	pts := make([]Point, 0, top+1)
	i := 0
	var alloc int64
	for p := 0; p <= top; p++ {
		limit := int64(p) * m.capMilli // arrived×100 <= p×cap
		for i < len(m.recs) && 100*m.recs[i].arrived <= limit {
			alloc = m.recs[i].alloc
			i++
		}
		pts = append(pts, Point{ArrivedPct: float64(p), AllocPct: m.allocPct(alloc)})
	}
	return pts
}

// round4 rounds a summary figure to 4 decimals so that printed results do
// not carry floating-point noise.
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
