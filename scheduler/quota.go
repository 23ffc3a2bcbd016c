package scheduler

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Tenant owns jobs and is charged for the GPUs they hold. Quotas are in
// milli-GPU: CPU and memory count towards fair share but carry no quota.
type Tenant struct {
	// Name identifies the tenant; jobs name it in Job.Tenant.
	Name string `json:"name"`
	// GuaranteedMilli is the GPU the tenant can always use: other tenants
	// may borrow it only while it lies idle, and only as far as the tenant
	// does not need it back.
	GuaranteedMilli int64 `json:"guaranteed_milli,omitempty"`
	// MaxMilli caps the GPU the tenant's running jobs may hold, borrowing
	// included; zero means no cap.
	MaxMilli int64 `json:"max_milli,omitempty"`
	// Weight scales the tenant's fair share: a tenant of weight 2 is
	// entitled to twice the dominant share of a tenant of weight 1. Zero
	// counts as one.
	Weight float64 `json:"weight,omitempty"`
}

// Validate checks a tenant's settings.
func (t *Tenant) Validate() error {
	switch {
	case t.Name == "":
		return fmt.Errorf("tenant: field name: want a non-empty name")
	case t.GuaranteedMilli < 0:
		return fmt.Errorf("tenant %s: field guaranteed_milli: want >= 0, got %d", t.Name, t.GuaranteedMilli)
	case t.MaxMilli < 0:
		return fmt.Errorf("tenant %s: field max_milli: want >= 0 (0 is no cap), got %d", t.Name, t.MaxMilli)
	case t.MaxMilli > 0 && t.GuaranteedMilli > t.MaxMilli:
		return fmt.Errorf("tenant %s: field guaranteed_milli: %d exceeds max_milli %d", t.Name, t.GuaranteedMilli, t.MaxMilli)
	case math.IsNaN(t.Weight) || math.IsInf(t.Weight, 0) || t.Weight < 0:
		return fmt.Errorf("tenant %s: field weight: want a finite number >= 0, got %g", t.Name, t.Weight)
	}
	return nil
}

// amount is a bundle of the three resources fair share counts.
type amount struct {
	gpu int64 // milli-GPU
	cpu int64 // milli-CPU
	mem int64 // MiB
}

func (a *amount) add(b amount) { a.gpu += b.gpu; a.cpu += b.cpu; a.mem += b.mem }
func (a *amount) sub(b amount) { a.gpu -= b.gpu; a.cpu -= b.cpu; a.mem -= b.mem }

// amountOf is what an assignment takes.
func amountOf(a *Assign) amount {
	return amount{gpu: int64(a.Take) * int64(popcount(a.Mask)), cpu: a.CPUMilli, mem: a.MemMiB}
}

// tenantState is one tenant during a pass: its settings, what it holds and
// where its queue stands.
type tenantState struct {
	Tenant
	weight float64
	used   amount
	// queue is the tenant's pending jobs in FIFO order (priority desc,
	// submitted asc, id asc); pos is the next job to look at.
	queue []*Job
	out   []*Unplaced // the outcome of each queued job; nil while undecided or placed
	// qbuf is a Standing's whole buffer of the queue, which is a suffix of
	// it: the slots before the queue were freed at its head (see deleteAt).
	qbuf []*Job
	pos  int
	// head is the job that blocked the queue, if any; backfill is true
	// while jobs behind it may still be tried, and depth counts them.
	head     *Job
	backfill bool
	depth    int
	// done is set once the queue gives nothing more this pass.
	done bool
}

// quotaVerdict is what the quotas say about starting a job.
type quotaVerdict uint8

const (
	// quotaOK: the job may start.
	quotaOK quotaVerdict = iota
	// quotaNever: the job alone asks more than the tenant's maximum.
	quotaNever
	// quotaMax: the tenant's maximum leaves no room for the job now.
	quotaMax
	// quotaBorrow: the job needs borrowed GPU that other tenants' unused
	// guarantees still claim.
	quotaBorrow
)

// ledger keeps what every tenant holds during a pass, the fleet's capacity
// and its free GPU, for fair share and quotas. Only ready nodes count as
// capacity: work can start nowhere else.
type ledger struct {
	tenants []tenantState
	byName  map[string]int
	cap     amount // capacity of the ready nodes
	free    amount // free on the ready nodes, kept current by the pass
	// turn orders the tenants with jobs left for pick, a heap on (share,
	// name): key caches each tenant's share and at its place in turn (-1
	// when out). moved lists the tenants whose holdings a step changed
	// other than the one that took it (preemption's victims).
	turn  []int32
	at    []int32
	key   []float64
	moved []int
	// guaranteed lists the tenants with a guarantee, in ledger order: the
	// only ones unusedElsewhere adds up.
	guaranteed []int
}

// newLedger registers the tenants given (validated, names unique) in name
// order. Tenants that jobs name but the list lacks are added on first use.
func newLedger(ts []Tenant) (*ledger, error) {
	l := &ledger{byName: map[string]int{}}
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b Tenant) int { return strings.Compare(a.Name, b.Name) })
	for i := range sorted {
		t := sorted[i]
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("pass: field tenants: %w", err)
		}
		if _, dup := l.byName[t.Name]; dup {
			return nil, fmt.Errorf("pass: field tenants: tenant %s listed twice", t.Name)
		}
		l.add(t)
	}
	return l, nil
}

func (l *ledger) add(t Tenant) int {
	w := t.Weight
	if w == 0 {
		w = 1
	}
	l.byName[t.Name] = len(l.tenants)
	if t.GuaranteedMilli > 0 {
		l.guaranteed = append(l.guaranteed, len(l.tenants))
	}
	l.tenants = append(l.tenants, tenantState{Tenant: t, weight: w})
	return len(l.tenants) - 1
}

// tenant returns the index of a tenant by name. A tenant the pass was not
// given is a best-effort tenant: no guarantee, no maximum, weight one. It
// may run only on idle capacity that no guarantee claims.
func (l *ledger) tenant(name string) int {
	if i, ok := l.byName[name]; ok {
		return i
	}
	return l.add(Tenant{Name: name})
}

// share is a tenant's weighted dominant share: the largest fraction of the
// ready capacity it holds of any resource, divided by its weight. A
// resource the fleet has none of does not count.
func (l *ledger) share(i int) float64 {
	t := &l.tenants[i]
	var s float64
	for _, d := range [3][2]int64{{t.used.gpu, l.cap.gpu}, {t.used.cpu, l.cap.cpu}, {t.used.mem, l.cap.mem}} {
		if d[1] > 0 {
			s = max(s, float64(d[0])/float64(d[1]))
		}
	}
	return s / t.weight
}

// unusedElsewhere sums the guarantees that tenants other than i hold but
// do not use: capacity a borrower must leave free.
func (l *ledger) unusedElsewhere(i int) int64 {
	var u int64
	for _, k := range l.guaranteed { // the others add nothing
		if k != i {
			u = addSat(u, max(0, l.tenants[k].GuaranteedMilli-l.tenants[k].used.gpu))
		}
	}
	return u
}

// check says whether tenant i may start a job of gpu milli-GPU now.
//
//   - Never above the maximum: used+gpu <= MaxMilli (when set).
//   - Within the guarantee (used+gpu <= GuaranteedMilli) a job may start.
//   - Beyond it the tenant borrows, and only idle capacity that other
//     tenants' unused guarantees do not claim: after the start, the free
//     GPU of the ready nodes must still cover the sum over the other
//     tenants of max(0, guaranteed - used). When the free GPU is short of
//     the job anyway, the job does not fit, which is what it is told; the
//     rule is checked again when preemption has made room.
//
// Borrowed capacity is lent, not given: a tenant below its guarantee
// claims it back by preemption when its jobs outrank the borrower's (see
// Pass.Preempt); there is no reclaim across priorities.
func (l *ledger) check(i int, gpu int64) quotaVerdict {
	t := &l.tenants[i]
	switch {
	case gpu == 0:
		return quotaOK
	case t.MaxMilli > 0 && gpu > t.MaxMilli:
		return quotaNever
	case t.MaxMilli > 0 && t.used.gpu+gpu > t.MaxMilli:
		return quotaMax
	case t.used.gpu+gpu <= t.GuaranteedMilli:
		return quotaOK
	case l.free.gpu >= gpu && l.free.gpu-gpu < l.unusedElsewhere(i):
		return quotaBorrow
	}
	return quotaOK
}

// borrowing reports whether a job of gpu milli-GPU takes tenant i beyond
// its guarantee.
func (l *ledger) borrowing(i int, gpu int64) bool {
	t := &l.tenants[i]
	return gpu > 0 && t.used.gpu+gpu > t.GuaranteedMilli
}

// next returns the tenant whose queue goes next: the one of smallest
// weighted dominant share among those with jobs left, by name on a tie
// (tenants are kept in name order, best-effort tenants after). -1 when no
// queue has anything left. It costs O(tenants).
func (l *ledger) next() int {
	best, bestShare := -1, 0.0
	for i := range l.tenants {
		t := &l.tenants[i]
		if t.done || t.pos >= len(t.queue) {
			continue
		}
		s := l.share(i)
		if best < 0 || s < bestShare || (s == bestShare && t.Name < l.tenants[best].Name) {
			best, bestShare = i, s
		}
	}
	return best
}

// active reports whether tenant i has jobs left this pass.
func (l *ledger) active(i int) bool {
	t := &l.tenants[i]
	return !t.done && t.pos < len(t.queue)
}

// order sets up the turns: every tenant with jobs left, by share and name.
// It costs O(tenants); each turn then costs O(log tenants), where next
// costs O(tenants) a decision (a fifo-skip queue has a tenant per job).
func (l *ledger) order() {
	n := len(l.tenants)
	l.turn = l.turn[:0]
	l.at = slices.Grow(l.at[:0], n)[:n]
	l.key = slices.Grow(l.key[:0], n)[:n]
	for i := range n {
		l.at[i] = -1
		if l.active(i) {
			l.key[i] = l.share(i)
			l.at[i] = int32(len(l.turn))
			l.turn = append(l.turn, int32(i))
		}
	}
	for k := len(l.turn)/2 - 1; k >= 0; k-- {
		l.down(k)
	}
	l.moved = l.moved[:0]
}

// pick is next through the turns: the tenant of smallest share among
// those with jobs left, by name on a tie; -1 when none is left. The
// shares are those order or fix last worked out.
func (l *ledger) pick() int {
	for len(l.turn) > 0 {
		i := int(l.turn[0])
		if l.active(i) {
			return i
		}
		l.drop(i)
	}
	return -1
}

// fix takes tenant i's share and whether it has jobs left again, after a
// step changed them.
func (l *ledger) fix(i int) {
	k := int(l.at[i])
	if !l.active(i) {
		if k >= 0 {
			l.drop(i)
		}
		return
	}
	l.key[i] = l.share(i)
	if k < 0 {
		k = len(l.turn)
		l.at[i] = int32(k)
		l.turn = append(l.turn, int32(i))
	}
	l.up(k)
	l.down(int(l.at[i]))
}

// drop takes tenant i out of the turns.
func (l *ledger) drop(i int) {
	k, last := int(l.at[i]), len(l.turn)-1
	l.swap(k, last)
	l.turn = l.turn[:last]
	l.at[i] = -1
	if k < last {
		l.up(k)
		l.down(int(l.at[l.turn[k]]))
	}
}

func (l *ledger) before(a, b int) bool {
	i, j := l.turn[a], l.turn[b]
	if l.key[i] != l.key[j] {
		return l.key[i] < l.key[j]
	}
	return l.tenants[i].Name < l.tenants[j].Name
}

func (l *ledger) swap(a, b int) {
	l.turn[a], l.turn[b] = l.turn[b], l.turn[a]
	l.at[l.turn[a]], l.at[l.turn[b]] = int32(a), int32(b)
}

func (l *ledger) up(k int) {
	for k > 0 {
		p := (k - 1) / 2
		if !l.before(k, p) {
			return
		}
		l.swap(k, p)
		k = p
	}
}

func (l *ledger) down(k int) {
	for n := len(l.turn); ; {
		c := 2*k + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && l.before(r, c) {
			c = r
		}
		if !l.before(c, k) {
			return
		}
		l.swap(k, c)
		k = c
	}
}
