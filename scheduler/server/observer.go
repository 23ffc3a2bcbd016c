package server

import (
	"time"

	"petite/scheduler"
)

// Observer hears of the leader's scheduling work, for metrics. The leader
// loop calls it, so its methods must be quick and must not call back into
// the server.
type Observer interface {
	// Planned is called after a scheduling pass planned on the frozen
	// state: how long planning took.
	Planned(took time.Duration)
	// Committed is called after a plan went to the log: how long the
	// commit took, the plan, and the error when the plan was not committed
	// (refused as stale, or leadership lost).
	Committed(took time.Duration, plan *scheduler.Plan, err error)
}

// SetObserver makes o hear of the leader's work from now on; nil stops it.
func (s *Server) SetObserver(o Observer) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&o)
}

// observe returns the observer, or one that does nothing.
func (s *Server) observe() Observer {
	if o := s.observer.Load(); o != nil {
		return *o
	}
	return noObserver{}
}

type noObserver struct{}

func (noObserver) Planned(time.Duration)                           {}
func (noObserver) Committed(time.Duration, *scheduler.Plan, error) {}

// RaftStats is raft's own account of this server (raft.Raft.Stats): its
// state, term, last log, commit and applied index, last contact with the
// leader, peers. Values are strings, as raft gives them.
func (s *Server) RaftStats() map[string]string { return s.raft.Stats() }
