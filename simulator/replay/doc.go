// Package replay is petite's trace-replay simulator: a discrete-event driver
// of the same state machine (scheduler/state) and scheduling pass
// (scheduler.Cluster.Schedule, through state.Machine.Plan) that the daemon
// runs, over a virtual clock.
//
// Jobs arrive at their submit times, queue, start when a pass places them,
// run for their trace duration and finish. Events that fall on one instant
// are applied together, in a fixed order (completions, node events, expiries
// of waiting budgets, arrivals), and then one scheduling pass runs if
// anything changed. The engine reads no wall clock and draws chance only from
// the generator seeded by Config.Seed, so the same inputs give the same
// result, byte for byte.
//
// With Config.Burst set, the replay follows the burst-to-cloud method
// (docs/sim.md): a job that waits past its budget leaves the owned queue
// for an unlimited cloud pool and pays for it.
//
// The library entry point is Run; cmd/petite's `sim run` wires flags to it,
// and capacity forecasting evaluates candidate fleets through it.
package replay
