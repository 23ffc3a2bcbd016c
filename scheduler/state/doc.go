// Package state is petite's replicated state machine: a closed set of
// commands (register a pool or node, change a node's state, submit, cancel,
// apply a plan, finish, preempt, ...) applied deterministically to a cluster
// and its job table.
//
// The raft FSM of the daemon and the simulator drive this same code. The
// machine knows neither: it reads no clock (every command carries its time),
// does no I/O beyond the writer and reader handed to Snapshot and Restore,
// and draws no randomness. Two machines fed the same commands hold the same
// state, byte for byte, and a rejected command changes nothing.
//
// Commands and snapshots have one stable, versioned encoding: a JSON object
// {"v":1,"type":"submit",...} decoded strictly (see Encode, Decode and
// docs/state.md).
package state
