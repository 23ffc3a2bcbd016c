package server

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"petite/scheduler/state"
)

// entrySeeds are valid log entries of every kind, and near misses.
func entrySeeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(b []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	add(encodeSubmit(state.Submit{Job: job("a", 1), At: 1}, JobRecord{Command: []string{"sleep", "1"}, RequestID: "r1"}))
	add(encodeSubmit(state.Submit{Job: job("b", 8), At: 1}, JobRecord{}))
	add(encodeCommand(state.Cancel{Job: "a", At: 2}))
	add(encodeCommand(state.Finish{Job: "a", Tasks: []int{0}, At: 3}))
	add(encodeCommand(state.Prune{Before: 4}))
	add(encodeBatch([]state.Command{state.Cancel{Job: "b", At: 5}, state.Prune{Before: 6}}))
	add(marshalEntry(entryServer, ServerInfo{ID: "s1", HTTP: "http://127.0.0.1:1"}))
	add(marshalEntry(entryAgent, AgentRecord{Node: "n0", Addr: "http://127.0.0.1:2", Devices: []string{"GPU-0"}}))
	out = append(out, []byte("c{}"), []byte("s{\"submit\":null}"), []byte("b[null]"), []byte("a"), []byte("z"), nil)
	return out
}

// FuzzFSMApply feeds the state machine adapter arbitrary log entries of
// every kind (the raft command decoder): it never panics, and an entry it
// refuses changes nothing, on a state that holds a fleet and jobs.
func FuzzFSMApply(f *testing.F) {
	for _, s := range entrySeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newFSMHarness(t)
		for _, s := range entrySeeds(t)[:2] {
			h.apply(s)
		}
		before := h.fsmBytes()
		res := h.apply(data)
		if res.Err != nil && len(res.Results) == 0 && !bytes.Equal(before, h.fsmBytes()) {
			t.Fatalf("entry %q refused (%v) but changed the state", data, res.Err)
		}
		// Whatever it did, the state still snapshots and restores.
		b := h.fsmBytes()
		g := NewFSM()
		if err := g.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			t.Fatalf("after entry %q the snapshot does not restore: %v", data, err)
		}
	})
}

// fsmBytes is the FSM's whole snapshot (state and records).
func (h *fsmHarness) fsmBytes() []byte {
	h.t.Helper()
	return snapshotBytes(h.t, h.f)
}

// seededFSM is an FSM holding a fleet and two jobs, built without a
// *testing.T (the fuzz seeds need one too).
func seededFSM(tb testing.TB) *FSM {
	f := NewFSM()
	pools, nodes := testFleet(1)
	var cmds []state.Command
	for _, p := range pools {
		cmds = append(cmds, state.RegisterPool{Pool: p})
	}
	for _, n := range nodes {
		cmds = append(cmds, state.RegisterNode{Node: n})
	}
	fleet, err := encodeBatch(cmds)
	if err != nil {
		tb.Fatal(err)
	}
	for i, e := range append([][]byte{fleet}, entrySeeds(tb)[:2]...) {
		if res, _ := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: e}).(ApplyResult); res.Err != nil {
			tb.Fatal(res.Err)
		}
	}
	return f
}

func snapshotBytes(tb testing.TB, f *FSM) []byte {
	s, err := f.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	return persisted(tb, s)
}

// persisted returns the bytes a snapshot of the FSM persists.
func persisted(tb testing.TB, s raft.FSMSnapshot) []byte {
	tb.Helper()
	b, err := s.(*fsmSnapshot).encode()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzFSMRestore feeds Restore arbitrary snapshots: it never panics, a
// snapshot it refuses leaves the state as it was, and one it takes
// snapshots again to bytes that restore to the same.
func FuzzFSMRestore(f *testing.F) {
	good := snapshotBytes(f, seededFSM(f))
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"v":1`), []byte(`"v":2`), 1))
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"v":1,"type":"server_snapshot","state":null,"jobs":null,"servers":null}`))
	f.Add([]byte(`{"v":1,"type":"server_snapshot","state":{},"jobs":{"x":{"request_id":"r"}},"servers":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := seededFSM(t)
		before := snapshotBytes(t, fsm)
		if err := fsm.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			if !bytes.Equal(before, snapshotBytes(t, fsm)) {
				t.Fatalf("a refused snapshot changed the state: %v", err)
			}
			return
		}
		b := snapshotBytes(t, fsm)
		g := NewFSM()
		if err := g.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			t.Fatalf("a restored snapshot does not restore again: %v", err)
		}
		if !bytes.Equal(b, snapshotBytes(t, g)) {
			t.Fatal("restore is not a round trip")
		}
	})
}
