package replay

import (
	"cmp"
	"math/bits"
	"slices"
)

// phase orders the events of one instant: completions free capacity first,
// node events change it next, then expired budgets leave the queue (before
// the pass, so a budget that ends when GPUs free up still sends its job to
// the cloud), and arrivals join the queue last.
type phase uint8

const (
	phaseFinish phase = iota
	phaseNode
	phaseExpire
	// Star-Wait's jobs back from their cloud stint rejoin the queue after
	// the arrivals of the instant (the cursor's), ordered by return time.
	phaseReturn
)

// item is one pending event, as pushed and popped.
type item struct {
	at    int64
	key   uint64 // phase << 56 | push order (queue.push): ties at one instant go by phase, then first-in first-out
	job   int32  // the job's number (its book, engine.live, for a finish), or the node event's index
	epoch uint32 // a finish is stale when the job's epoch moved on
	phase phase
	cloud bool  // the end of a cloud run
	price bool  // a price event (job is its index)
	move  bool  // a move event (job is its index)
	scale uint8 // a scaler event (job is the cloud node's index)
}

// isFinish says whether the item is a job's finish (engine.apply's last
// case: no scaler, price, move, node or expiry event).
func (it *item) isFinish() bool {
	return it.phase == phaseFinish && it.scale == 0 && !it.price && !it.move
}

// entry is an item as the queue holds it, 24 bytes: the queue moves
// entries by value, and a smaller one moves more of them per cache line. Its key
// packs the item's phase, push order and flags, in an order that sorts as
// (phase, push order): the flags, below a push order no two entries
// share, never decide.
type entry struct {
	at    int64
	key   uint64 // phase << 62 | push order << 6 | scale << 3 | move << 2 | price << 1 | cloud
	job   int32
	epoch uint32
}

// seqBits bounds the push order: 2^56 pushes, more than a run makes.
const seqBits = 56

// The scaler's events fit the entry's three bits (this fails to compile
// otherwise).
const _ uint8 = 7 - scQuota

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// pack is it, pushed seq-th, as the queue holds it.
func pack(it *item, seq uint64) entry {
	return entry{at: it.at, job: it.job, epoch: it.epoch,
		key: uint64(it.phase)<<62 | (seq&(1<<seqBits-1))<<6 | uint64(it.scale&7)<<3 | b2u(it.move)<<2 | b2u(it.price)<<1 | b2u(it.cloud)}
}

// unpack is the item an entry holds.
func (e *entry) unpack() item {
	ph := phase(e.key >> 62)
	return item{at: e.at, job: e.job, epoch: e.epoch, phase: ph,
		key:   uint64(ph)<<56 | (e.key>>6)&(1<<seqBits-1),
		scale: uint8(e.key>>3) & 7, move: e.key&4 != 0, price: e.key&2 != 0, cloud: e.key&1 != 0}
}

// before orders entries on (at, key).
func (a *entry) before(b *entry) bool {
	return a.at < b.at || (a.at == b.at && a.key < b.key)
}

// queue is the pending events, popped in (at, key) order: a radix heap on
// at. The replay's clock never goes back: no event is pushed before the
// instant being replayed, nor, but at an instant before the next event
// (an arrival's, a tick's), before last, the instant of the front (the
// earliest entries, taken out of the buckets when it runs out). An entry
// after last is filed, an append, under the highest bit in which its at
// differs from last, and only the lowest non-empty bucket is ever looked
// into, when the front runs out, its entries going down to lower
// buckets. A min-heap of the same entries (a finish per running job)
// spends a pop's cache misses sifting down through it; the buckets are
// read and written in sequence.
//
// An entry at or before last (pushed at the front's instant, at an
// instant before it, or in the past should a time overflow int64) goes
// into the front, kept sorted, so the order is (at, key) whatever is
// pushed: every entry of the front is at or before last, every other one
// after it.
type queue struct {
	// front holds the entries at or before last, sorted on (at, key) from
	// head on (those before head are popped): the next pop is
	// front[head].
	front []entry
	head  int
	// b[i] holds the entries after last whose at differs from last first
	// at bit i (bucket): every entry of b[i] is before every entry of
	// b[i+1]. Bit i of used is set when b[i] is not empty.
	b    [64][]entry
	used uint64
	last int64
	seq  uint64
}

// bucket is the bucket of an entry at at, after last: the highest bit of
// their xor, where they first differ. That holds in signed order too:
// flipping both sign bits makes unsigned order the signed one and leaves
// the xor as it is.
func bucket(at, last int64) int { return bits.Len64(uint64(at^last)) - 1 }

func (q *queue) push(it item) {
	e := pack(&it, q.seq)
	q.seq++
	if e.at > q.last {
		i := bucket(e.at, q.last)
		q.b[i] = append(q.b[i], e)
		q.used |= 1 << i
		return
	}
	q.insert(e)
}

// insert puts e, at or before last, in its place in the front. An event
// pushed at the current instant comes after the others of its phase
// there, often at the end: the search runs from the end.
func (q *queue) insert(e entry) {
	f := q.front
	p := len(f)
	for p > q.head && e.before(&f[p-1]) {
		p--
	}
	if p == q.head && q.head > 0 { // before everything left: the popped room takes it
		q.head--
		f[q.head] = e
		return
	}
	f = append(f, entry{})
	copy(f[p+1:], f[p:])
	f[p] = e
	q.front = f
}

// fill makes the lowest non-empty bucket the front when the front has run
// out: last moves up to its earliest at, and its entries go to the front
// (those at last) or to lower buckets, their bits above their bucket's
// now shared with last. It reports whether any event is left.
func (q *queue) fill() bool {
	if q.head < len(q.front) {
		return true
	}
	q.front, q.head = q.front[:0], 0
	if q.used == 0 {
		return false
	}
	i := bits.TrailingZeros64(q.used)
	src := q.b[i]
	m := src[0].at
	for k := 1; k < len(src); k++ {
		m = min(m, src[k].at)
	}
	q.last = m
	f := q.front
	for k := range src {
		e := &src[k]
		if e.at == m {
			f = append(f, *e)
			continue
		}
		j := bucket(e.at, m)
		q.b[j] = append(q.b[j], *e)
		q.used |= 1 << j
	}
	q.b[i] = src[:0]
	q.used &^= 1 << i
	if len(f) > 1 { // one instant: the order is the key's
		slices.SortFunc(f, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	}
	q.front = f
	return true
}

// pop takes the earliest event; the order is total (the push order is
// unique), so it is the order any priority queue gives. The queue must
// not be empty.
func (q *queue) pop() item {
	q.fill()
	it := q.front[q.head].unpack()
	q.head++
	return it
}

// peek is the earliest event, left in the queue, which must not be empty.
func (q *queue) peek() item {
	q.fill()
	return q.front[q.head].unpack()
}

func (q *queue) empty() bool { return q.head == len(q.front) && q.used == 0 }

// next is the time of the earliest event; ok is false when there is none.
func (q *queue) next() (int64, bool) {
	if !q.fill() {
		return 0, false
	}
	return q.front[q.head].at, true
}

// nextAt says whether the earliest event is at t.
func (q *queue) nextAt(t int64) bool {
	return q.fill() && q.front[q.head].at == t
}

// len is the number of events left.
func (q *queue) len() int {
	n := len(q.front) - q.head
	for _, b := range q.b {
		n += len(b)
	}
	return n
}

// EventKind names what happened in the event log.
type EventKind string

// The kinds of the event log.
const (
	// EventArrive: a job was submitted and joined the queue.
	EventArrive EventKind = "arrive"
	// EventStart: a pass placed the job on owned nodes (again, after a
	// requeue).
	EventStart EventKind = "start"
	// EventFinish: the job ended on owned nodes.
	EventFinish EventKind = "finish"
	// EventRequeue: the job lost its place (preempted or its node lost) and
	// went back to the queue.
	EventRequeue EventKind = "requeue"
	// EventDegrade: a service lost replicas and runs under-replicated.
	EventDegrade EventKind = "degrade"
	// EventReplace: a pass placed lost replicas of a running service again.
	EventReplace EventKind = "replace"
	// EventCloud: the job's waiting budget expired and it left for the cloud.
	EventCloud EventKind = "cloud"
	// EventStint: Star-Wait sent the job to the cloud for its stint of L.
	EventStint EventKind = "cloud-stint"
	// EventReturn: the job came back from its stint and rejoined the queue.
	EventReturn EventKind = "return"
	// EventCloudEnd: the job's cloud run ended.
	EventCloudEnd EventKind = "cloud-end"
	// EventNode: a node changed health.
	EventNode EventKind = "node"
	// EventPrice: a pool's price changed (ID is the pool, State the price).
	EventPrice EventKind = "price"
	// EventQuota: a cloud pool's max_nodes changed (ID is the pool, State
	// the new cap).
	EventQuota EventKind = "quota"
)

// Event is one entry of the event log.
type Event struct {
	// At is the instant on the virtual clock (nanoseconds).
	At   int64     `json:"at_ns"`
	Kind EventKind `json:"kind"`
	// Job is the job's number in submission order, -1 for a node event.
	Job int `json:"job"`
	// ID is the job's id (or the node's name for a node event).
	ID string `json:"id"`
	// Node is where a start was placed (its first task), or the node of a
	// node event; State is the node's new health.
	Node  string `json:"node,omitempty"`
	State string `json:"state,omitempty"`
}
