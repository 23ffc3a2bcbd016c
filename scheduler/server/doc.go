// Package server is petite's replicated scheduler daemon: a raft node
// (hashicorp/raft over TCP, raft-wal log store, file snapshots) whose FSM is
// a thin adapter over the state machine of scheduler/state, and the leader's
// scheduling loop, which plans on a frozen copy of the state while the log
// applies and commits each pass's placements as one log entry.
//
// The package holds no scheduling logic: placement is the core's
// (scheduler), and every check that a plan still fits is the state
// machine's. It holds no HTTP either; scheduler/api serves a Server.
package server
