package replay

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

// entry is an item as the heap holds it, 24 bytes: the heap moves entries
// by value, and a smaller one moves more of them per cache line. Its key
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

// pack is it, pushed seq-th, as the heap holds it.
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

// events is a min-heap on (at, phase, push order), that is on (at, key),
// kept by queue without container/heap, whose interface would box every
// item pushed and popped.
type events []entry

// before orders entries on (at, key).
func (a *entry) before(b *entry) bool {
	return a.at < b.at || (a.at == b.at && a.key < b.key)
}

// The heap is 4-ary: half the levels of a binary one, and a node's
// children side by side in memory, so a pop touches fewer cache lines.
const arity = 4

// up moves entry i towards the root while it is less than its parent. The
// entry is held aside and written once, where it stops: each level moves
// one entry, not two.
func (h events) up(i int) {
	it := h[i]
	for i > 0 {
		p := (i - 1) / arity
		if !it.before(&h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = it
}

// down places entry it at hole i, moving it towards the leaves while a
// child is less than it (written once, as up writes it).
func (h events) down(i int, it entry) {
	n := len(h)
	for {
		c := arity*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < min(c+arity, n); k++ {
			if h[k].before(&h[m]) {
				m = k
			}
		}
		if !h[m].before(&it) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = it
}

// queue wraps the heap with a sequence counter.
type queue struct {
	h   events
	seq uint64
}

func (q *queue) push(it item) {
	q.h = append(q.h, pack(&it, q.seq))
	q.seq++
	q.h.up(len(q.h) - 1)
}

// pop takes the earliest event; the order is total (the push order is unique), so it
// is the order any heap gives.
func (q *queue) pop() item {
	n := len(q.h) - 1
	it := q.h[0].unpack()
	last := q.h[n]
	q.h = q.h[:n]
	if n > 0 {
		q.h.down(0, last)
	}
	return it
}

// peek is the earliest event, left on the heap; the heap must not be empty.
func (q *queue) peek() item { return q.h[0].unpack() }

func (q *queue) empty() bool { return len(q.h) == 0 }

// next is the time of the earliest event; ok is false when there is none.
func (q *queue) next() (int64, bool) {
	if len(q.h) == 0 {
		return 0, false
	}
	return q.h[0].at, true
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
