// Package scheduler is petite's placement core: the model of a hybrid GPU
// fleet (pools, nodes, GPUs, jobs, tasks), the placement policies and the
// machinery that runs them (filter, score, pick GPUs), gang placement,
// preemption, queues and quotas.
//
// The core is pure. It holds no clock, does no I/O and draws no global
// randomness: time arrives as an argument, chance as a *rand.Rand the driver
// seeded, and a node's tie-breaking rank is an input. The daemon and the
// simulator drive this same code, so the same inputs give the same plan,
// byte for byte.
//
// Placement is bounded on big fleets: for each task shape the cluster keeps
// a tournament tree over the nodes ordered by rank, holding each node's score
// for that shape. A placement changes one node, so only that node's score is
// recomputed, lazily, the next time the shape is asked for.
package scheduler
