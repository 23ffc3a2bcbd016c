package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"petite/scheduler"
	"petite/scheduler/state"
)

// ErrNotLeader is returned by writes on a server that is not the leader;
// the API forwards them to the leader.
var ErrNotLeader = errors.New("not the leader")

// ErrCommit marks a write that raft could not commit (a timeout, a
// shutdown): the cluster's fault, not the command's. A command the state
// machine refuses returns the machine's error instead.
var ErrCommit = errors.New("commit")

// Peer is one voting server of the cluster.
type Peer struct {
	ID   string `json:"id"`
	Addr string `json:"address"` // raft TCP address
}

// Config sets up one server.
type Config struct {
	// ID names the server in the cluster; unique, stable across restarts.
	ID string
	// DataDir holds the raft log (wal/) and snapshots (snapshots/).
	DataDir string
	// RaftAddr is the TCP address raft listens on and advertises
	// ("127.0.0.1:0" picks a free port).
	RaftAddr string
	// HTTPAddr is where this server's API answers, recorded in the log so
	// that followers can forward writes here when it leads.
	HTTPAddr string
	// Bootstrap starts a new cluster of Peers (this server alone when
	// empty) if the data dir holds no raft state. Every server of the
	// first configuration may bootstrap with the same Peers.
	Bootstrap bool
	Peers     []Peer
	// Pools and Nodes are registered by the first leader of a cluster whose
	// state holds no node yet.
	Pools []scheduler.Pool
	Nodes []scheduler.Node
	// Policy names the placement policy (scheduler.PolicyNames); default fgd.
	Policy string
	// Coalesce is how long the leader waits after a change before a
	// scheduling pass, so that a burst of submits is placed in one plan.
	Coalesce time.Duration
	// PlanEntry is the most task placements the leader puts in one log
	// entry; a pass that places more commits its plan as several entries,
	// one after the other (leader.go). 0 takes DefaultPlanEntry.
	PlanEntry int
	// NoScheduling stops the leader's scheduling passes: plans come only
	// from Apply (benchmarks of the log, tests that drive plans).
	NoScheduling bool
	// Fast shortens raft's timeouts, for a single dev server or tests on
	// loopback.
	Fast bool
	// Logger receives the server's and raft's logs; nil discards them.
	Logger *slog.Logger
	// Clock is the driver's clock (seconds); nil reads the wall clock.
	Clock func() int64
	// RaftTLS, when set, carries raft traffic over mutual TLS that admits
	// server certificates only (pki.Files.PeerConfig); nil: plain TCP.
	RaftTLS *tls.Config
	// Liveness sets the agents' heartbeats and disconnect windows
	// (liveness.go); zero fields take DefaultLiveness.
	Liveness Liveness
	// Drain sets how draining nodes are emptied and pools retired on
	// their date (drain.go).
	Drain Drain
	// GC sets the process's garbage collector at start (gc.go); the zero
	// value sets DefaultGCPercent.
	GC GC
}

// Server is one replicated scheduler server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	fsm       *FSM
	raft      *raft.Raft
	transport *raft.NetworkTransport
	wal       *wal.WAL
	meta      *metadb.BoltMetaDB

	mu       sync.Mutex
	unplaced map[string]scheduler.Unplaced // last pass's, on the leader
	stats    struct{ passes, plans, refused atomic.Uint64 }
	watch    agentWatch               // the leader's agent deadlines (liveness.go)
	placed   placements               // tasks by node, for heartbeats (liveness.go)
	observer atomic.Pointer[Observer] // metrics; see SetObserver

	stop    chan struct{}
	done    chan struct{}
	closeMu sync.Once
}

// New opens the data dir, starts raft and, with Bootstrap, creates the
// cluster. The server then elects or follows a leader on its own; Ready
// waits for that.
func New(cfg Config) (*Server, error) {
	if cfg.ID == "" {
		return nil, errors.New("server: an ID is required")
	}
	if cfg.Policy == "" {
		cfg.Policy = "fgd"
	}
	if cfg.Clock == nil {
		cfg.Clock = func() int64 { return time.Now().Unix() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.GC.apply()
	s := &Server{cfg: cfg, log: cfg.Logger, fsm: NewFSM(), stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.open(); err != nil {
		s.closeStores()
		return nil, err
	}
	go s.leaderLoop()
	return s, nil
}

func (s *Server) open() error {
	cfg := s.cfg
	hl := newHCLogger(s.log, "raft")
	walDir := filepath.Join(cfg.DataDir, "wal")
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		return fmt.Errorf("server: data dir: %w", err)
	}
	if _, err := repairWAL(walDir, s.log); err != nil { // walrepair.go
		return fmt.Errorf("server: raft log in %s cannot be read back: %w", walDir, err)
	}
	// The WAL's Close leaves its meta database open (and locked), so the
	// server opens it and closes it itself: a restart in the same process
	// must find it unlocked.
	s.meta = &metadb.BoltMetaDB{}
	w, err := wal.Open(walDir, wal.WithLogger(hl.Named("wal")), wal.WithMetaStore(s.meta))
	if err != nil {
		return fmt.Errorf("server: open raft log in %s: %w", walDir, err)
	}
	s.wal = w
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hl.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("server: snapshot store in %s: %w", cfg.DataDir, err)
	}
	t, err := newTransport(cfg, hl.Named("transport")) // TCP, or mutual TLS (tls.go)
	if err != nil {
		return fmt.Errorf("server: raft transport on %s: %w", cfg.RaftAddr, err)
	}
	s.transport = t

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 512
	rc.SnapshotThreshold = 8192
	rc.TrailingLogs = 10240
	if cfg.Fast {
		// Short enough for a dev server to elect itself in well under a
		// second, long enough that a leader starved of CPU for a few
		// hundred milliseconds on a loaded machine keeps its lease (at
		// 100 ms it stepped down about once in 8 s on a loaded 2-core
		// machine, failing the writes under way).
		rc.HeartbeatTimeout = 400 * time.Millisecond
		rc.ElectionTimeout = 400 * time.Millisecond
		rc.LeaderLeaseTimeout = 400 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
	}
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(w, w, snaps)
		if err != nil {
			return fmt.Errorf("server: read raft state: %w", err)
		}
		if !has {
			peers := cfg.Peers
			if len(peers) == 0 {
				peers = []Peer{{ID: cfg.ID, Addr: string(t.LocalAddr())}}
			}
			var conf raft.Configuration
			for _, p := range peers {
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
			}
			if err := raft.BootstrapCluster(rc, w, w, snaps, t, conf); err != nil {
				return fmt.Errorf("server: bootstrap: %w", err)
			}
		}
	}
	// walheal.go: the log opens again after a failed append (a full disk).
	store := &healingLog{dir: walDir, logger: hl.Named("wal"), log: s.log, w: &s.wal, meta: &s.meta}
	// Raft reads each new entry back, on the leader to send it to the
	// followers, on a follower to apply it: the last ones are kept in
	// memory rather than read from the log's files.
	logs, err := raft.NewLogCache(128, store)
	if err != nil {
		return fmt.Errorf("server: raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, store, snaps, t)
	if err != nil {
		return fmt.Errorf("server: start raft: %w", err)
	}
	s.raft = r
	return nil
}

// RaftAddr is the address raft listens on (its port resolved).
func (s *Server) RaftAddr() string { return string(s.transport.LocalAddr()) }

// ID is the server's ID.
func (s *Server) ID() string { return s.cfg.ID }

// FSM is the server's state machine adapter, for reads.
func (s *Server) FSM() *FSM { return s.fsm }

// Policy is the name of the placement policy the leader schedules with.
func (s *Server) Policy() string { return s.cfg.Policy }

// Now is the server's clock, in seconds: the At of the commands it writes.
func (s *Server) Now() int64 { return s.cfg.Clock() }

// IsLeader reports whether this server leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's ID and the HTTP address it recorded, if a
// leader is known and serves an API.
func (s *Server) Leader() (id, http string, ok bool) {
	_, lid := s.raft.LeaderWithID()
	if lid == "" {
		return "", "", false
	}
	http, ok = s.fsm.ServerHTTP(string(lid))
	return string(lid), http, ok && http != ""
}

// State is the server's raft state: Leader, Follower, Candidate, Shutdown.
func (s *Server) State() string { return s.raft.State().String() }

// Ready waits until a leader is known and has taken office (its record,
// written after the fleet of a new cluster, is applied here: a ready server
// has its nodes and, when the leader serves an API, can forward to it), and
// this server's state machine has applied what it knows to be committed.
func (s *Server) Ready(ctx context.Context) error {
	for {
		_, lid := s.raft.LeaderWithID()
		if lid != "" && s.raft.AppliedIndex() >= s.raft.CommitIndex() {
			if _, ok := s.fsm.ServerHTTP(string(lid)); ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server %s: no leader yet: %w", s.cfg.ID, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// timeout returns how long a raft call may wait under ctx.
func timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 10 * time.Second
}

// apply commits a log entry and returns the FSM's result for it.
func (s *Server) apply(ctx context.Context, entry []byte) (ApplyResult, error) {
	f := s.raft.Apply(entry, timeout(ctx))
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return ApplyResult{}, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return ApplyResult{}, fmt.Errorf("%w: %w", ErrCommit, err)
	}
	res, _ := f.Response().(ApplyResult)
	return res, res.Err
}

// Apply commits one state command through the log (on the leader) and
// returns the state machine's result. A command the machine refuses
// returns its error, and changed nothing on any server.
func (s *Server) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	entry, dec, err := encodeOwned(cmd)
	if err != nil {
		return state.Result{}, err
	}
	if dec != nil { // applied here without decoding (owned.go)
		defer s.fsm.owned.add(entry, dec)()
	}
	res, err := s.apply(ctx, entry)
	if err != nil {
		return state.Result{}, err
	}
	if len(res.Results) != 1 {
		return state.Result{}, fmt.Errorf("apply %s: %d results", cmd.Type(), len(res.Results))
	}
	return res.Results[0], nil
}

// Submit commits a job and the daemon's record of it. A record whose
// RequestID already made a job returns a *DuplicateError naming that job.
func (s *Server) Submit(ctx context.Context, job scheduler.Job, rec JobRecord) (state.Result, error) {
	entry, err := encodeSubmit(state.Submit{Job: job, At: s.Now()}, rec)
	if err != nil {
		return state.Result{}, err
	}
	res, err := s.apply(ctx, entry)
	if err != nil {
		return state.Result{}, err
	}
	return res.Results[0], nil
}

// Barrier returns once every entry committed before it is applied here,
// on the leader: with it, a read that follows sees every write
// acknowledged before the read began (a linearizable read).
func (s *Server) Barrier(ctx context.Context) error {
	if err := s.raft.Barrier(timeout(ctx)).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return fmt.Errorf("barrier: %w", err)
	}
	return nil
}

// Peers lists the cluster's configuration, the leader marked.
func (s *Server) Peers() ([]PeerStatus, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", err)
	}
	_, lid := s.raft.LeaderWithID()
	var out []PeerStatus
	for _, sv := range f.Configuration().Servers {
		out = append(out, PeerStatus{
			ID: string(sv.ID), Address: string(sv.Address),
			Leader: sv.ID == lid, Voter: sv.Suffrage == raft.Voter,
		})
	}
	return out, nil
}

// PeerStatus is one server of the raft configuration.
type PeerStatus struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// AddPeer adds a voting server (on the leader). The new server starts
// without Bootstrap and catches up from the leader.
func (s *Server) AddPeer(ctx context.Context, id, addr string) error {
	if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout(ctx)).Error(); err != nil {
		return notLeader(fmt.Errorf("add peer %s at %s: %w", id, addr, err))
	}
	return nil
}

// RemovePeer removes a server from the configuration (on the leader).
func (s *Server) RemovePeer(ctx context.Context, id string) error {
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, timeout(ctx)).Error(); err != nil {
		return notLeader(fmt.Errorf("remove peer %s: %w", id, err))
	}
	return nil
}

func notLeader(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

// Stats counts this server's scheduling work while it led.
type Stats struct {
	// Passes are the scheduling passes run; Plans the plan entries
	// committed (a pass's plan takes one entry per PlanEntry placements);
	// Refused the entries the state machine refused (made on a state that
	// had moved on).
	Passes, Plans, Refused uint64
}

// Stats returns the server's counts so far.
func (s *Server) Stats() Stats {
	return Stats{Passes: s.stats.passes.Load(), Plans: s.stats.plans.Load(), Refused: s.stats.refused.Load()}
}

// Unplaced returns the reasons the leader's last scheduling pass gave for
// not placing a job.
func (s *Server) Unplaced(job string) (scheduler.Unplaced, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.unplaced[job]
	return u, ok
}

// Snapshot asks raft for a snapshot now (it also takes them on its own
// after enough entries).
func (s *Server) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Close stops the server: the leader loop, raft, the transport and the
// log store. The data dir keeps everything needed to start it again.
func (s *Server) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.stop)
		<-s.done
		if s.raft != nil {
			err = s.raft.Shutdown().Error()
		}
		s.closeStores()
	})
	return err
}

func (s *Server) closeStores() {
	if s.transport != nil {
		s.transport.Close()
	}
	if s.wal != nil {
		s.wal.Close()
	}
	if s.meta != nil {
		s.meta.Close()
	}
}

// ApplyBatch commits several state commands as one log entry, applied in
// order; each stands alone (one refused does not stop the others), and the
// error joins the refusals.
func (s *Server) ApplyBatch(ctx context.Context, cmds []state.Command) error {
	entry, err := encodeBatch(cmds)
	if err != nil {
		return err
	}
	_, err = s.apply(ctx, entry)
	return err
}
