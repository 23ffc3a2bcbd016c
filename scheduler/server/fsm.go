package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/hashicorp/raft"

	"petite/scheduler/state"
)

// FSM is the raft state machine: a thin adapter that decodes a log entry,
// applies its commands to a state.Machine and returns their results. It
// also keeps the daemon's own records (JobRecord, ServerInfo), which the
// scheduling state does not need. Readers take its lock with Read.
type FSM struct {
	mu      sync.Mutex
	m       *state.Machine
	jobs    map[string]JobRecord
	servers map[string]string      // server id -> HTTP address
	agents  map[string]AgentRecord // node -> its agent (agents.go)
	retire  map[string]int64       // node -> its own retirement date (retire.go)
	// requests indexes jobs by client request id; derived from jobs, so
	// the snapshot does not carry it.
	requests map[string]string
	index    uint64 // last raft index applied
	// history is the jobs that ended, oldest first (history.go).
	history historyRing
	// starts knows when running jobs last started, derived from m
	// (history.go).
	starts startBook

	// changed is signalled (without blocking) when a command changed
	// something a scheduling pass should look at again.
	changed chan struct{}

	// owned are the entries this server wrote, decoded (owned.go).
	owned ownedEntries
}

// ApplyResult is what FSM.Apply returns for an entry: one result per
// state command (a batch has several), or the error that refused it.
type ApplyResult struct {
	Results []state.Result
	Err     error
}

// NewFSM returns an FSM over an empty state machine.
func NewFSM() *FSM {
	return &FSM{
		m:        state.New(),
		jobs:     map[string]JobRecord{},
		servers:  map[string]string{},
		requests: map[string]string{},
		changed:  make(chan struct{}, 1),
	}
}

// Changed is signalled after a command that may let a scheduling pass do
// more: a submit, a finish, a cancel, a node or tenant change.
func (f *FSM) Changed() <-chan struct{} { return f.changed }

func (f *FSM) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Apply applies one committed log entry. A command the state machine
// refuses changes nothing and its error is the result; raft goes on.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index = l.Index
	res, signal := f.applyLocked(l.Data)
	f.recordEnded(res)
	if signal {
		f.signal()
	}
	return res
}

func (f *FSM) applyLocked(data []byte) (ApplyResult, bool) {
	if len(data) == 0 {
		return ApplyResult{Err: errors.New("empty log entry")}, false
	}
	kind, body := data[0], data[1:]
	switch kind {
	case entryCommand:
		cmd, ok := f.owned.get(data)
		if !ok {
			var err error
			if cmd, err = state.Decode(body); err != nil {
				return ApplyResult{Err: fmt.Errorf("decode log entry: %w", err)}, false
			}
		}
		r, err := f.m.Apply(cmd)
		if err != nil {
			return ApplyResult{Err: err}, false
		}
		f.forget(cmd, r)
		f.noteRuns(cmd)
		return ApplyResult{Results: []state.Result{r}}, wakes(cmd, r)
	case entryBatch:
		var raws []json.RawMessage
		if err := unmarshalStrict(body, &raws); err != nil {
			return ApplyResult{Err: fmt.Errorf("decode batch entry: %w", err)}, false
		}
		// Decode all before applying any, so a bad entry changes nothing.
		cmds := make([]state.Command, len(raws))
		for i, raw := range raws {
			cmd, err := state.Decode(raw)
			if err != nil {
				return ApplyResult{Err: fmt.Errorf("decode batch entry %d: %w", i, err)}, false
			}
			cmds[i] = cmd
		}
		out := ApplyResult{Results: make([]state.Result, len(cmds))}
		signal := false
		for i, cmd := range cmds {
			r, err := f.m.Apply(cmd)
			if err != nil {
				// Each command stands alone, as if sent one by one.
				out.Err = errors.Join(out.Err, fmt.Errorf("batch command %d (%s): %w", i, cmd.Type(), err))
				continue
			}
			out.Results[i] = r
			f.forget(cmd, r)
			f.noteRuns(cmd)
			signal = signal || wakes(cmd, r)
		}
		return out, signal
	case entrySubmit:
		var e submitEntry
		if err := unmarshalStrict(body, &e); err != nil {
			return ApplyResult{Err: fmt.Errorf("decode submit entry: %w", err)}, false
		}
		cmd, err := state.Decode(e.Submit)
		if err != nil {
			return ApplyResult{Err: fmt.Errorf("decode submit entry: %w", err)}, false
		}
		s, ok := cmd.(state.Submit)
		if !ok {
			return ApplyResult{Err: fmt.Errorf("decode submit entry: a %s, not a submit", cmd.Type())}, false
		}
		// Two retries of one request may both reach the log (each checked
		// before the other committed): the first makes the job, every
		// server refuses the second alike.
		if rid := e.Record.RequestID; rid != "" {
			if j, ok := f.requests[rid]; ok {
				return ApplyResult{Err: &DuplicateError{RequestID: rid, Job: j}}, false
			}
		}
		r, err := f.m.Apply(s)
		if err != nil {
			return ApplyResult{Err: err}, false
		}
		f.jobs[s.Job.ID] = e.Record
		if rid := e.Record.RequestID; rid != "" {
			f.requests[rid] = s.Job.ID
		}
		return ApplyResult{Results: []state.Result{r}}, true
	case entryAgent:
		return f.applyAgent(body)
	case entryRetire:
		return f.applyRetire(body)
	case entryServer:
		var s ServerInfo
		if err := unmarshalStrict(body, &s); err != nil {
			return ApplyResult{Err: fmt.Errorf("decode server entry: %w", err)}, false
		}
		f.servers[s.ID] = s.HTTP
		return ApplyResult{}, false
	}
	return ApplyResult{Err: fmt.Errorf("log entry of unknown kind %q", kind)}, false
}

// forget drops the records of the jobs a prune made the machine forget,
// so that the daemon's records stay as bounded as the job table.
func (f *FSM) forget(cmd state.Command, r state.Result) {
	if cmd.Type() != state.TypePrune || !r.Changed {
		return
	}
	for id, rec := range f.jobs {
		if _, ok := f.m.Job(id); !ok {
			delete(f.jobs, id)
			delete(f.requests, rec.RequestID)
		}
	}
}

// JobByRequest returns the job a submit with this client request id made,
// while the job is remembered (until a prune forgets it).
func (f *FSM) JobByRequest(rid string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.requests[rid]
	return j, ok
}

// requestIndex builds the request id index of a set of job records.
func requestIndex(jobs map[string]JobRecord) map[string]string {
	idx := make(map[string]string, len(jobs))
	for id, rec := range jobs {
		if rec.RequestID != "" {
			idx[rec.RequestID] = id
		}
	}
	return idx
}

// wakes says whether an applied command should start a scheduling pass.
// A plan does not: the pass that made it placed what it could, and a
// refused plan is retried by the loop itself.
func wakes(cmd state.Command, r state.Result) bool {
	return r.Changed && cmd.Type() != state.TypeApplyPlan
}

// Read runs fn with the FSM locked: the state machine, the daemon's job
// records and the raft index of the last entry applied. fn must not keep
// what it is given past its return.
func (f *FSM) Read(fn func(m *state.Machine, jobs map[string]JobRecord, index uint64)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.m, f.jobs, f.index)
}

// ServerHTTP returns the HTTP address a server recorded, if any.
func (f *FSM) ServerHTTP(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.servers[id]
	return a, ok
}

// snapshotFile is the FSM's snapshot: the state machine's own snapshot,
// unchanged, beside the daemon's records.
type snapshotFile struct {
	V       int                    `json:"v"`
	Type    string                 `json:"type"`
	State   json.RawMessage        `json:"state"`
	Jobs    map[string]JobRecord   `json:"jobs"`
	Servers map[string]string      `json:"servers"`
	Agents  map[string]AgentRecord `json:"agents,omitempty"`
	// Retire is the nodes' own retirement dates; absent in snapshots
	// written before there were any.
	Retire  map[string]int64 `json:"retire,omitempty"`
	History []HistoryRecord  `json:"history,omitempty"`
}

const snapshotType = "server_snapshot"

// Snapshot captures the state for raft. raft calls it on the state
// machine's goroutine, between applies, so it only takes a copy that no
// later command changes: the state and the daemon's records encoded, the
// history as a view of its chunks (history.go), which Persist encodes off
// that goroutine (at 100,000 records, 50 ms that applies no longer wait).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshotLocked()
}

func (f *FSM) snapshotLocked() (*fsmSnapshot, error) {
	var st bytes.Buffer
	if err := f.m.Snapshot(&st); err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	s := &fsmSnapshot{state: bytes.TrimSpace(st.Bytes()), history: f.history.view()}
	var err error
	if s.jobs, err = json.Marshal(f.jobs); err != nil {
		return nil, fmt.Errorf("snapshot jobs: %w", err)
	}
	if s.servers, err = json.Marshal(f.servers); err != nil {
		return nil, fmt.Errorf("snapshot servers: %w", err)
	}
	if len(f.agents) > 0 {
		if s.agents, err = json.Marshal(f.agents); err != nil {
			return nil, fmt.Errorf("snapshot agents: %w", err)
		}
	}
	if len(f.retire) > 0 {
		if s.retire, err = json.Marshal(f.retire); err != nil {
			return nil, fmt.Errorf("snapshot retire dates: %w", err)
		}
	}
	return s, nil
}

// encodeLocked returns the FSM's snapshot file.
func (f *FSM) encodeLocked() ([]byte, error) {
	s, err := f.snapshotLocked()
	if err != nil {
		return nil, err
	}
	return s.encode()
}

// Restore replaces the state with a snapshot's. A snapshot that does not
// decode, or whose state the machine refuses, leaves the FSM as it was.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("restore: read snapshot: %w", err)
	}
	var s snapshotFile
	if err := unmarshalStrict(b, &s); err != nil {
		return fmt.Errorf("restore: decode snapshot: %w", err)
	}
	if s.V != 1 || s.Type != snapshotType {
		return fmt.Errorf("restore: snapshot version %d type %q, want 1 %q", s.V, s.Type, snapshotType)
	}
	m, err := state.Restore(bytes.NewReader(s.State))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	f.m = m
	f.jobs = maps.Clone(s.Jobs)
	if f.jobs == nil {
		f.jobs = map[string]JobRecord{}
	}
	f.servers = maps.Clone(s.Servers)
	if f.servers == nil {
		f.servers = map[string]string{}
	}
	f.history = newHistory(s.History)
	f.starts = startBook{m: runningStarts(f.m)}
	f.requests = requestIndex(f.jobs)
	f.agents = maps.Clone(s.Agents)
	f.retire = maps.Clone(s.Retire)
	f.mu.Unlock()
	f.signal()
	return nil
}

// StateSnapshot writes the state machine's own snapshot (the form the
// simulator can start from), read under the lock.
func (f *FSM) StateSnapshot(w io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.Snapshot(w)
}

// fsmSnapshot is the FSM at one moment, all but its history encoded.
type fsmSnapshot struct {
	state, jobs, servers, agents, retire json.RawMessage
	history                              historyView
}

// snapshotOut writes a snapshotFile from the parts a snapshot took: the
// same fields in the same order, so the same bytes.
type snapshotOut struct {
	V       int             `json:"v"`
	Type    string          `json:"type"`
	State   json.RawMessage `json:"state"`
	Jobs    json.RawMessage `json:"jobs"`
	Servers json.RawMessage `json:"servers"`
	Agents  json.RawMessage `json:"agents,omitempty"`
	Retire  json.RawMessage `json:"retire,omitempty"`
	History []HistoryRecord `json:"history,omitempty"`
}

// encode returns the snapshot file.
func (s *fsmSnapshot) encode() ([]byte, error) {
	b, err := json.Marshal(snapshotOut{
		V: 1, Type: snapshotType, State: s.state, Jobs: s.jobs, Servers: s.servers, Agents: s.agents, Retire: s.retire,
		History: s.history.ordered(),
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return b, nil
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := s.encode()
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
