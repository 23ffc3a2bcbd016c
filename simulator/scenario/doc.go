// Package scenario reads what-if scenarios for the trace replay
// (docs/scenario.md): a fleet, a workload, a policy, a seed, a horizon and
// timed actions (retire, drain, outages, fault rates, spot reclaims, tenant
// moves), and compiles them into a replay.Config. Faults are drawn from the
// scenario's seed, so a scenario always compiles to the same node events.
// Impact compares a run with and without each retire, drain or move action.
package scenario
