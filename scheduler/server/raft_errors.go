package server

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"
)

// Fault is why raft could not take or confirm a write (or a read's
// barrier): the cluster's state of the moment, not the request's fault. The
// API answers each with 503 and a stable code, so that clients know to
// retry; raft's own errors stay inside this package.
type Fault int

// The faults, by what a client may do about them.
const (
	// FaultNone: not a raft fault.
	FaultNone Fault = iota
	// FaultNotLeader: this server does not lead, or leadership is being
	// transferred. Nothing was written; retry (on the leader).
	FaultNotLeader
	// FaultLeadershipLost: leadership was lost, or a backup restored,
	// while the entry was being committed. It may or may not have
	// committed: retry with the same request id, or look before retrying.
	FaultLeadershipLost
	// FaultShutdown: the server is shutting down. Retry on another.
	FaultShutdown
	// FaultTimeout: the commit was not confirmed within the request's
	// time. It may still commit.
	FaultTimeout
	// FaultOverloaded: raft's queue of entries in flight stayed full past
	// the request's time (it timed out enqueuing): too many writes in
	// flight. Nothing was written; retry after a pause.
	FaultOverloaded
)

// FaultOf classifies an error of a raft call of this package (Apply,
// Submit, Barrier, peers, restore).
func FaultOf(err error) Fault {
	switch {
	case err == nil:
		return FaultNone
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return FaultLeadershipLost
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, ErrNotLeader):
		return FaultNotLeader
	case errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrTransportShutdown), errors.Is(err, raft.ErrPipelineShutdown):
		return FaultShutdown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return FaultOverloaded
	case errors.Is(err, context.DeadlineExceeded):
		return FaultTimeout
	}
	return FaultNone
}
