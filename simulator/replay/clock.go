package replay

import (
	"fmt"
	"math"
)

// Second is one second of the virtual clock. The clock counts nanoseconds,
// so that waiting budgets such as 598.711 s fall exactly where they are
// written; the state machine is told whole seconds (its commands' At).
const Second int64 = 1e9

// Hour is one hour of the virtual clock.
const Hour = 3600 * Second

// MaxSpan bounds each span a run adds to its clock: a job's duration, a
// checkpoint's interval and restart, the pass period, a pool's
// provisioning delay, an idle release, a spot node's mean life. About 36
// years. With the workload's times within MaxTime, a time plus a few such
// spans stays on the clock, where an unbounded sum would wrap into the
// past and its event come first.
const MaxSpan int64 = 1 << 60

// MaxTime bounds the workload's times (its submissions) either side of
// zero: about 146 years, Unix times in nanoseconds included.
const MaxTime int64 = 1 << 62

// maxSeconds bounds a time in seconds so that it fits the nanosecond clock
// (about ±292 years around zero).
const maxSeconds = math.MaxInt64 / Second

// FromSeconds converts whole seconds to the virtual clock, refusing values
// the clock cannot hold.
func FromSeconds(s int64) (int64, error) {
	if s > maxSeconds || s < -maxSeconds {
		return 0, fmt.Errorf("time %d s is outside the clock's range (±%d s)", s, maxSeconds)
	}
	return s * Second, nil
}

// seconds is the whole second of the clock at or before t, the time the
// state machine records.
func seconds(t int64) int64 {
	s := t / Second
	if t%Second < 0 {
		s--
	}
	return s
}

// hours converts a span of the clock to hours.
func hours(d int64) float64 { return float64(d) / float64(Hour) }
