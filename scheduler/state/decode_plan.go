package state

import (
	"math"

	"petite/scheduler"
)

// decodePlan reads an apply_plan entry in its canonical form, the bytes
// appendPlan writes, validating while it parses. It reports false for
// anything else, well-formed or not, and the caller decodes with the
// strict decoder then: what this accepts, the strict decoder accepts as
// the same command, so the fast path changes no outcome.
func decodePlan(data []byte) (ApplyPlan, bool) {
	// The entry's strings (job ids, node names) are cut from one copy of
	// it: one allocation a plan, not one a string. The machine keeps none
	// of them (it names nodes by the cluster's own strings).
	d := planDecoder{b: data, s: string(data)}
	var p ApplyPlan
	if !d.lit(planPrefix) {
		return ApplyPlan{}, false
	}
	// A placement takes some 60 bytes or more: blocks sized so are
	// rarely outgrown.
	d.a.tp = make([]scheduler.TaskPlacement, 0, len(data)/60+4)
	d.a.ids = make([]int, 0, len(data)/60+4)
	if d.lit(`,"evict":[`) {
		for {
			e, ok := d.eviction()
			if !ok {
				return ApplyPlan{}, false
			}
			p.Evict = append(p.Evict, e)
			if !d.lit(",") {
				break
			}
		}
		if !d.lit("]") {
			return ApplyPlan{}, false
		}
	}
	if d.lit(`,"place":[`) {
		p.Place = make([]scheduler.JobPlacement, 0, len(data)/60+1)
		for {
			jp, ok := d.placement()
			if !ok {
				return ApplyPlan{}, false
			}
			p.Place = append(p.Place, jp)
			if !d.lit(",") {
				break
			}
		}
		if !d.lit("]") {
			return ApplyPlan{}, false
		}
	}
	at, ok := d.key(`,"at":`).int(false)
	if !ok || !d.lit("}") || d.i != len(d.b) || d.bad {
		return ApplyPlan{}, false
	}
	p.At = at
	return p, true
}

// planDecoder is a cursor over a canonical plan. A failed step sets bad
// and every later step fails.
type planDecoder struct {
	b   []byte
	s   string // b as a string, for the strings read
	i   int
	bad bool
	a   planArena
	// scratch collects a list's elements before they move to the arena.
	tasks []scheduler.TaskPlacement
	ids   []int
}

// lit consumes s if the input continues with it.
func (d *planDecoder) lit(s string) bool {
	if d.bad || len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

// key consumes s, which must come next.
func (d *planDecoder) key(s string) *planDecoder {
	if !d.lit(s) {
		d.bad = true
	}
	return d
}

// str reads a string of plain ASCII (see plain): one that encoding/json
// writes as it is and reads back unchanged.
func (d *planDecoder) str() string {
	if d.bad || d.i >= len(d.b) || d.b[d.i] != '"' {
		d.bad = true
		return ""
	}
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			s := d.s[d.i+1 : j]
			d.i = j + 1
			return s
		case c < 0x20 || c > 0x7e || c == '\\':
			d.bad = true
			return ""
		}
	}
	d.bad = true
	return ""
}

// int reads an integer in its shortest form: no plus sign, no leading
// zero, no "-0", no fraction or exponent, within int64. A zero is refused
// where nonzero is set: a field that is left out when zero.
func (d *planDecoder) int(nonzero bool) (int64, bool) {
	if d.bad || d.i >= len(d.b) {
		d.bad = true
		return 0, false
	}
	j, neg := d.i, false
	if d.b[j] == '-' {
		neg = true
		j++
	}
	start := j
	var u uint64
	for ; j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9'; j++ {
		if u > (math.MaxUint64-9)/10 {
			d.bad = true
			return 0, false
		}
		u = u*10 + uint64(d.b[j]-'0')
	}
	digits := j - start
	switch {
	case digits == 0, digits > 1 && d.b[start] == '0', neg && u == 0,
		!neg && u > math.MaxInt64, neg && u > 1<<63,
		nonzero && u == 0:
		d.bad = true
		return 0, false
	}
	if j < len(d.b) && (d.b[j] == '.' || d.b[j] == 'e' || d.b[j] == 'E') {
		d.bad = true
		return 0, false
	}
	d.i = j
	if neg {
		return int64(-u), true // u <= 1<<63: -u wraps to MinInt64 at most
	}
	return int64(u), true
}

// intN reads an int that must fit in the range [lo, hi].
func (d *planDecoder) intN(nonzero bool, lo, hi int64) int64 {
	v, ok := d.int(nonzero)
	if !ok || v < lo || v > hi {
		d.bad = true
		return 0
	}
	return v
}

// intList reads a non-empty list of ints into the arena.
func (d *planDecoder) intList() []int {
	if !d.lit("[") {
		d.bad = true
		return nil
	}
	d.ids = d.ids[:0]
	for {
		d.ids = append(d.ids, int(d.intN(false, math.MinInt, math.MaxInt)))
		if !d.lit(",") {
			break
		}
	}
	if !d.lit("]") {
		d.bad = true
		return nil
	}
	return d.a.ints(d.ids)
}

// taskList reads a list of task placements into the arena: nil for null,
// empty for [] where allowEmpty is set (an empty list that is written
// where it is not left out).
func (d *planDecoder) taskList(allowEmpty bool) []scheduler.TaskPlacement {
	if allowEmpty && d.lit("null") {
		return nil
	}
	if !d.lit("[") {
		d.bad = true
		return nil
	}
	if allowEmpty && d.lit("]") {
		return []scheduler.TaskPlacement{}
	}
	start := len(d.tasks)
	for {
		tp, ok := d.task()
		if !ok {
			return nil
		}
		d.tasks = append(d.tasks, tp)
		if !d.lit(",") {
			break
		}
	}
	if !d.lit("]") {
		d.bad = true
		return nil
	}
	out := d.a.tasksFlat(d.tasks[start:])
	d.tasks = d.tasks[:start]
	return out
}

// task reads one task placement; its device list goes to the arena.
func (d *planDecoder) task() (scheduler.TaskPlacement, bool) {
	var tp scheduler.TaskPlacement
	tp.Task = int(d.key(`{"task":`).intN(false, math.MinInt, math.MaxInt))
	tp.Node = d.key(`,"node":`).str()
	if d.lit(`,"gpus":`) {
		tp.GPUs = d.intList()
	}
	if d.lit(`,"gpu_milli":`) {
		tp.GPUMilli = int32(d.intN(true, math.MinInt32, math.MaxInt32))
	}
	if d.lit(`,"cpu_milli":`) {
		tp.CPUMilli, _ = d.int(true)
	}
	if d.lit(`,"memory_mib":`) {
		tp.MemoryMiB, _ = d.int(true)
	}
	d.key("}")
	return tp, !d.bad
}

// placement reads one job's placements.
func (d *planDecoder) placement() (scheduler.JobPlacement, bool) {
	var jp scheduler.JobPlacement
	jp.Job = d.key(`{"job":`).str()
	d.key(`,"tasks":`)
	if d.bad {
		return jp, false
	}
	jp.Tasks = d.taskList(true)
	d.key("}")
	return jp, !d.bad
}

// eviction reads one eviction.
func (d *planDecoder) eviction() (scheduler.Eviction, bool) {
	var e scheduler.Eviction
	e.Job = d.key(`{"job":`).str()
	if d.lit(`,"tasks":`) {
		e.Tasks = d.intList()
	}
	if d.lit(`,"for":`) {
		if e.For = d.str(); e.For == "" {
			d.bad = true // left out when empty
		}
	}
	if d.lit(`,"seen":`) {
		e.Seen = d.taskList(false)
	}
	d.key("}")
	return e, !d.bad
}

// tasksFlat copies placements whose device lists already live in the
// arena.
func (a *planArena) tasksFlat(ts []scheduler.TaskPlacement) []scheduler.TaskPlacement {
	a.tp = grow(a.tp, len(ts))
	lo := len(a.tp)
	a.tp = append(a.tp, ts...)
	return a.tp[lo:len(a.tp):len(a.tp)]
}
