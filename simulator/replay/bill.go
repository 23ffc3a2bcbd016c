package replay

// Pool bills: what each pool of the fleet costs over the run, from its
// nodes where the pool bills nodes, from its jobs' GPU-hours otherwise.

import "petite/scheduler"

// billKind is how a pool is billed.
type billKind uint8

const (
	// billUse: price × GPUs held by jobs; idle capacity costs nothing
	// (owned pools, on-demand and spot cloud pools without scaling, the
	// burst method's unlimited cloud).
	billUse billKind = iota
	// billNodes: price × GPUs of every node while it is up, idle included
	// (cloud pools under pool scaling: the scaler's node bills).
	billNodes
	// billReserved: price × GPUs of every node the pool has, for the whole
	// run, whatever its state or use: a reservation is paid for (pools
	// with pricing: reserved, not scaled, not the burst cloud). Nodes
	// added during the run count from their arrival.
	billReserved
)

// bills keeps the reserved pools' bills as the run goes.
type bills struct {
	begun bool
	kind  []billKind // fleet order
	gpus  []float64  // a reserved pool's committed GPUs
	from  []int64    // billed up to here
	cost  []float64  // a reserved pool's bill so far
}

// newBills sorts the pools by how they are billed.
func newBills(e *engine) bills {
	n := len(e.cfg.Pools)
	b := bills{kind: make([]billKind, n), gpus: make([]float64, n), from: make([]int64, n), cost: make([]float64, n)}
	for i, p := range e.cfg.Pools {
		switch {
		case e.sc != nil && p.Kind == scheduler.PoolCloud:
			b.kind[i] = billNodes
		case p.Pricing == scheduler.Reserved && p.Name != e.cloudAt:
			b.kind[i] = billReserved
		}
	}
	for _, nd := range e.cfg.Nodes {
		if i, ok := e.poolIdx[nd.Pool]; ok && b.kind[i] == billReserved {
			b.gpus[i] += float64(len(nd.GPUs))
		}
	}
	return b
}

// beginBills starts the reserved pools' bills at the run's first instant.
func (e *engine) beginBills(t int64) {
	if e.bill.begun {
		return
	}
	e.bill.begun = true
	for i := range e.bill.from {
		e.bill.from[i] = t
	}
}

// billTo charges reserved pool i up to t at its present price.
func (e *engine) billTo(i int, t int64) {
	b := &e.bill
	if b.kind[i] != billReserved || !b.begun {
		return
	}
	b.cost[i] += e.price[e.cfg.Pools[i].Name] * b.gpus[i] * hours(t-b.from[i])
	b.from[i] = t
}

// reserveAdded commits a node added to a reserved pool at t.
func (e *engine) reserveAdded(pool string, gpus float64, t int64) {
	if i, ok := e.poolIdx[pool]; ok && e.bill.kind[i] == billReserved {
		e.billTo(i, t)
		e.bill.gpus[i] += gpus
	}
}

// stopBills charges the reserved pools to the end of the run.
func (e *engine) stopBills(end int64) {
	for i := range e.bill.kind {
		e.billTo(i, end)
	}
}

// billByPool is each pool's bill over the run: node bills for pools under
// scaling, reservations for reserved pools, job charges for the rest.
func (e *engine) billByPool() map[string]float64 {
	out := make(map[string]float64, len(e.cfg.Pools))
	var acct map[string]ScalePool
	if e.sc != nil {
		acct = e.sc.accounts(e)
	}
	for i, p := range e.cfg.Pools {
		switch e.bill.kind[i] {
		case billNodes:
			out[p.Name] = acct[p.Name].NodeCost
		case billReserved:
			out[p.Name] = e.bill.cost[i]
		default:
			out[p.Name] = e.poolCost[i]
		}
	}
	return out
}

// spendRate is what the fleet costs per hour now: price × the GPUs each
// pool bills at this instant (nodes up, reserved, or held by jobs) and
// the burst cloud's running GPUs.
func (e *engine) spendRate() float64 {
	spend := e.cloud * e.inCloud
	var up []float64
	if e.sc != nil {
		up = make([]float64, len(e.cfg.Pools))
		for _, n := range e.sc.nodes {
			if n.st == cnUp {
				up[n.pool] += n.gpus
			}
		}
	}
	for i, a := range e.alloc {
		price := e.price[e.cfg.Pools[i].Name]
		switch e.bill.kind[i] {
		case billNodes:
			spend += price * up[i]
		case billReserved:
			spend += price * e.bill.gpus[i]
		default:
			spend += price * a
		}
	}
	return spend
}
