// Package frag runs the fragmentation experiment of Weng et al., "Beware of
// Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation
// Gradient Descent" (USENIX ATC'23) on the Alibaba 2023 "openb" traces, the
// way shared/FRAG-METHOD.md describes the authors' artifact.
//
// It is a thin driver over the scheduler core: it turns the trace into
// tasks (§1), draws the arrival sequence and the node rank from a seed (§2),
// feeds the tasks one by one to a core policy, and measures allocation
// against arrival (§7). Every placement decision, scores, tie-breaks and GPU
// choice included, is the core's. The driver alone draws randomness, from
// one PCG stream per run, so the same inputs and seed give the same bytes.
//
// A sweep runs a matrix of workloads × policies × seeds over several cores,
// possibly split into shards that [Merge] joins, and summarises it as a
// table of means and standard deviations and plots of allocation against
// arrival.
package frag
