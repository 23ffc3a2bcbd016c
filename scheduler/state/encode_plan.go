package state

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"petite/scheduler"
)

// Plans are most of the log by volume (a pass's placements in one entry),
// so ApplyPlan has a hand-written encoder and a decoder of its canonical
// form beside the reflective ones. Both speak the same wire form: the
// encoder writes exactly the bytes the reflective encoder writes, and the
// decoder accepts only those bytes (fields in their declared order, empty
// optional fields left out, integers in their shortest form, strings of
// plain ASCII), for which the strict decoder returns the same command.
// Anything else, an old entry written in another order among them, goes
// to the strict decoder, which accepts or refuses it as before.

// planPrefix opens every canonical apply_plan entry.
const planPrefix = `{"v":1,"type":"apply_plan"`

// appendPlan appends the wire form of p to b, as Encode writes it.
func appendPlan(b []byte, p *ApplyPlan) ([]byte, error) {
	b = append(b, planPrefix...)
	var err error
	if len(p.Evict) > 0 {
		b = append(b, `,"evict":[`...)
		for i := range p.Evict {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendEviction(b, &p.Evict[i]); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if len(p.Place) > 0 {
		b = append(b, `,"place":[`...)
		for i := range p.Place {
			jp := &p.Place[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"job":`...)
			if b, err = appendString(b, jp.Job); err != nil {
				return nil, err
			}
			b = append(b, `,"tasks":`...)
			if jp.Tasks == nil {
				b = append(b, "null"...)
			} else if b, err = appendTasks(b, jp.Tasks); err != nil {
				return nil, err
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, p.At, 10)
	return append(b, '}'), nil
}

func appendEviction(b []byte, e *scheduler.Eviction) ([]byte, error) {
	b = append(b, `{"job":`...)
	b, err := appendString(b, e.Job)
	if err != nil {
		return nil, err
	}
	if len(e.Tasks) > 0 {
		b = append(b, `,"tasks":`...)
		b = appendInts(b, e.Tasks)
	}
	if e.For != "" {
		b = append(b, `,"for":`...)
		if b, err = appendString(b, e.For); err != nil {
			return nil, err
		}
	}
	if len(e.Seen) > 0 {
		b = append(b, `,"seen":`...)
		if b, err = appendTasks(b, e.Seen); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendTasks(b []byte, ts []scheduler.TaskPlacement) ([]byte, error) {
	b = append(b, '[')
	for i := range ts {
		tp := &ts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"task":`...)
		b = strconv.AppendInt(b, int64(tp.Task), 10)
		b = append(b, `,"node":`...)
		var err error
		if b, err = appendString(b, tp.Node); err != nil {
			return nil, err
		}
		if len(tp.GPUs) > 0 {
			b = append(b, `,"gpus":`...)
			b = appendInts(b, tp.GPUs)
		}
		if tp.GPUMilli != 0 {
			b = append(b, `,"gpu_milli":`...)
			b = strconv.AppendInt(b, int64(tp.GPUMilli), 10)
		}
		if tp.CPUMilli != 0 {
			b = append(b, `,"cpu_milli":`...)
			b = strconv.AppendInt(b, tp.CPUMilli, 10)
		}
		if tp.MemoryMiB != 0 {
			b = append(b, `,"memory_mib":`...)
			b = strconv.AppendInt(b, tp.MemoryMiB, 10)
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

func appendInts(b []byte, xs []int) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string: plain ASCII as it is, anything
// that needs escaping through encoding/json, so that the bytes are its.
func appendString(b []byte, s string) ([]byte, error) {
	if plain(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"'), nil
	}
	q, err := marshal(s)
	if err != nil {
		return nil, err
	}
	return append(b, q...), nil
}

// plain reports whether encoding/json writes s unescaped between quotes
// and reads it back unchanged: printable ASCII but the quote and the
// backslash.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// EncodeDecoded encodes cmd as Encode does and also returns the command
// that Decode returns for those bytes, sharing no memory with cmd, so
// that the writer of an entry may apply it without decoding it again. The
// returned command is nil where cmd is not a plan, or holds a string that
// would not read back as it is (invalid UTF-8); decode the bytes then.
func EncodeDecoded(cmd Command) ([]byte, Command, error) {
	v, err := deref(cmd)
	if err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	p, ok := v.(ApplyPlan)
	if !ok {
		b, err := Encode(v)
		return b, nil, err
	}
	b, err := appendPlan(make([]byte, 0, planSize(&p)), &p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", p.Type(), err)
	}
	if c, ok := cloneDecoded(&p); ok {
		return b, c, nil
	}
	return b, nil, nil
}

// planSize guesses the encoded size of p, to size the buffer once.
func planSize(p *ApplyPlan) int {
	n := len(planPrefix) + 32
	for i := range p.Place {
		n += 32 + len(p.Place[i].Job) + 96*len(p.Place[i].Tasks)
	}
	for i := range p.Evict {
		n += 64 + len(p.Evict[i].Job) + 96*len(p.Evict[i].Seen)
	}
	return n
}

// cloneDecoded returns a copy of p in the shape decoding its encoding
// gives: lists that are left out when empty come back nil, a job's task
// list keeps its nil or empty. It reports false where a string holds
// invalid UTF-8, which encoding replaces.
func cloneDecoded(p *ApplyPlan) (ApplyPlan, bool) {
	var a planArena
	out := ApplyPlan{At: p.At}
	for i := range p.Evict {
		if !utf8.ValidString(p.Evict[i].Job) || !utf8.ValidString(p.Evict[i].For) || !validTasks(p.Evict[i].Seen) {
			return ApplyPlan{}, false
		}
	}
	for i := range p.Place {
		if !utf8.ValidString(p.Place[i].Job) || !validTasks(p.Place[i].Tasks) {
			return ApplyPlan{}, false
		}
	}
	a.reserve(p)
	if len(p.Evict) > 0 {
		out.Evict = make([]scheduler.Eviction, len(p.Evict))
		for i, e := range p.Evict {
			out.Evict[i] = scheduler.Eviction{Job: e.Job, For: e.For}
			if len(e.Tasks) > 0 {
				out.Evict[i].Tasks = a.ints(e.Tasks)
			}
			if len(e.Seen) > 0 {
				out.Evict[i].Seen = a.tasks(e.Seen)
			}
		}
	}
	if len(p.Place) > 0 {
		out.Place = make([]scheduler.JobPlacement, len(p.Place))
		for i, jp := range p.Place {
			out.Place[i].Job = jp.Job
			switch {
			case jp.Tasks == nil:
			case len(jp.Tasks) == 0:
				out.Place[i].Tasks = []scheduler.TaskPlacement{}
			default:
				out.Place[i].Tasks = a.tasks(jp.Tasks)
			}
		}
	}
	return out, true
}

func validTasks(ts []scheduler.TaskPlacement) bool {
	for i := range ts {
		if !utf8.ValidString(ts[i].Node) {
			return false
		}
	}
	return true
}

// planArena hands out the task and device lists of one decoded plan from
// a few shared blocks instead of an allocation each. Each list is capped
// at its length, so an append to one never writes into the next.
type planArena struct {
	tp  []scheduler.TaskPlacement
	ids []int
}

// reserve sizes the blocks for a copy of p.
func (a *planArena) reserve(p *ApplyPlan) {
	nt, ni := 0, 0
	count := func(ts []scheduler.TaskPlacement) {
		nt += len(ts)
		for i := range ts {
			ni += len(ts[i].GPUs)
		}
	}
	for i := range p.Evict {
		count(p.Evict[i].Seen)
		ni += len(p.Evict[i].Tasks)
	}
	for i := range p.Place {
		count(p.Place[i].Tasks)
	}
	a.tp = make([]scheduler.TaskPlacement, 0, nt)
	a.ids = make([]int, 0, ni)
}

// tasks copies ts, and the device lists within, into the arena.
func (a *planArena) tasks(ts []scheduler.TaskPlacement) []scheduler.TaskPlacement {
	a.tp = grow(a.tp, len(ts))
	lo := len(a.tp)
	a.tp = append(a.tp, ts...)
	out := a.tp[lo:len(a.tp):len(a.tp)]
	for i := range out {
		if len(out[i].GPUs) == 0 {
			out[i].GPUs = nil
		} else {
			out[i].GPUs = a.ints(out[i].GPUs)
		}
	}
	return out
}

// ints copies xs into the arena.
func (a *planArena) ints(xs []int) []int {
	a.ids = grow(a.ids, len(xs))
	lo := len(a.ids)
	a.ids = append(a.ids, xs...)
	return a.ids[lo:len(a.ids):len(a.ids)]
}

// grow makes room for n more elements, starting a new block when the
// current one is full (lists already handed out keep the old block).
func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	return make([]T, 0, max(n, 2*cap(s), 64))
}
