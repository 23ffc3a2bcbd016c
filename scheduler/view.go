package scheduler

import (
	"maps"
	"slices"
)

// View is a read-only window on a cluster: the queries a driver needs and
// none of the mutators. The state machine hands its cluster out as a View,
// so that "the state machine is the only writer" holds by the types, not by
// convention: a driver that wants to place or plan takes a Clone, which is
// its own to change. What a View returns is a copy; changing it changes
// nothing in the cluster.
//
// A View reads the live cluster, so like any read it must not run while
// the cluster's owner writes it.
type View struct{ c *Cluster }

// View returns a read-only view of the cluster.
func (c *Cluster) View() View { return View{c: c} }

// NumNodes is the number of registered nodes.
func (v View) NumNodes() int { return v.c.NumNodes() }

// Node returns a copy of a node's registered spec, its state kept current.
func (v View) Node(id NodeID) Node {
	n := v.c.Node(id)
	n.GPUs = slices.Clone(n.GPUs)
	n.Labels = maps.Clone(n.Labels)
	return n
}

// NodeByName finds a node's id.
func (v View) NodeByName(name string) (NodeID, bool) { return v.c.NodeByName(name) }

// Labels returns a copy of a node's labels merged over its pool's.
func (v View) Labels(id NodeID) map[string]string { return maps.Clone(v.c.Labels(id)) }

// Pools returns copies of the registered pools.
func (v View) Pools() []Pool {
	out := slices.Clone(v.c.Pools())
	for i := range out {
		out[i].Labels = maps.Clone(out[i].Labels)
	}
	return out
}

// PoolOf returns a copy of a node's pool.
func (v View) PoolOf(id NodeID) Pool {
	p := *v.c.PoolOf(id)
	p.Labels = maps.Clone(p.Labels)
	return p
}

// Rank returns a node's tie-break rank.
func (v View) Rank(id NodeID) int32 { return v.c.Rank(id) }

// Usage reports a node's capacity and what is free of it.
func (v View) Usage(id NodeID) NodeUsage { return v.c.Usage(id) }

// Frag is the fragmentation of a node's present state against f's target
// workload, in milli-GPU (FRAG-METHOD §5). f caches it per node until the
// node changes, so a driver can sample a whole fleet cheaply.
func (v View) Frag(f *FGD, id NodeID) float64 { return f.Frag(v.c, id) }

// UnhealthyDevices returns the devices of a node withheld as unhealthy.
func (v View) UnhealthyDevices(id NodeID) []int { return v.c.UnhealthyDevices(id) }

// Totals sums GPU capacity and allocation over the nodes, in milli-GPU.
func (v View) Totals() (capMilli, usedMilli int64) { return v.c.Totals() }

// Models lists the GPU models of the fleet, sorted.
func (v View) Models() []string { return v.c.Models() }

// Changes counts the changes made to the cluster's nodes (capacity taken or
// given back, a state set, a node added): equal counts mean no node
// changed in between. A scheduling pass on a Clone leaves it where it was.
func (v View) Changes() uint64 { return v.c.seq }

// Clone returns a copy of the cluster that the caller owns: a scheduling
// pass, a what-if or a trial placement runs on it (see Cluster.Clone).
func (v View) Clone() *Cluster { return v.c.Clone() }

// NewPolicy builds a policy by name with the cluster's default normalisers
// (see NewPolicy); the policy may then serve passes on clones of it.
func (v View) NewPolicy(name string, o Options) (*Policy, error) { return NewPolicy(v.c, name, o) }
