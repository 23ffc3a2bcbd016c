package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

func TestLivenessWindows(t *testing.T) {
	l := Liveness{Window: time.Minute, Windows: map[string]time.Duration{"rack-7": 2 * time.Hour}}.withDefaults()
	tests := []struct {
		pool scheduler.Pool
		want time.Duration
	}{
		{scheduler.Pool{Name: "dc", Kind: scheduler.PoolOnPrem}, time.Minute},
		{scheduler.Pool{Name: "edge", Kind: scheduler.PoolOutposts}, time.Hour}, // the kind's default
		{scheduler.Pool{Name: "rack-7", Kind: scheduler.PoolOutposts}, 2 * time.Hour},
		{scheduler.Pool{Name: "sh", Kind: scheduler.PoolCloud}, time.Minute},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, l.window(tt.pool), tt.pool.Name)
	}
	assert.Equal(t, time.Hour, DefaultLiveness.Windows["outposts"], "a set window leaves the defaults' others")
}

func TestLivenessCheck(t *testing.T) {
	tests := []struct {
		name string
		l    Liveness
		err  string
	}{
		{"defaults", Liveness{}, ""},
		{"timeout within an interval", Liveness{Interval: time.Second, Timeout: time.Second}, "heartbeat timeout 1s must be longer than the heartbeat interval 1s"},
		{"window within the timeout", Liveness{Timeout: time.Minute, Window: 30 * time.Second}, "disconnect window 30s must be longer"},
		{"a pool's window within the timeout", Liveness{Windows: map[string]time.Duration{"edge": time.Second}}, "disconnect window of edge (1s) must be longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Check()
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.err)
		})
	}
}

func TestParseWindows(t *testing.T) {
	w, err := ParseWindows([]string{"outposts=2h", "hz-onprem=90s"})
	require.NoError(t, err)
	assert.Equal(t, map[string]time.Duration{"outposts": 2 * time.Hour, "hz-onprem": 90 * time.Second}, w)
	for _, bad := range []string{"outposts", "=1h", "x=soon", "x=-1s"} {
		_, err := ParseWindows([]string{bad})
		assert.Error(t, err, bad)
	}
}

// TestFSMAgentRecords: agent records and where tasks ran are replicated
// state: kept through a snapshot and restore; a bad agent entry is refused.
func TestFSMAgentRecords(t *testing.T) {
	h := newFSMHarness(t)
	node := h.f.m.Cluster().Node(0).Name
	e, err := marshalAgent(AgentRecord{Node: node, Addr: "http://10.0.0.9:4648", Devices: []string{"GPU-a", "GPU-b"}})
	require.NoError(t, err)
	require.NoError(t, h.apply(e).Err)
	assert.Error(t, h.apply(append([]byte{entryAgent}, `{"node":""}`...)).Err, "an agent entry names its node")
	assert.Error(t, h.apply(append([]byte{entryAgent}, `{"node":"x","pid":1}`...)).Err, "unknown fields refused")

	se, err := encodeSubmit(state.Submit{Job: job("j", 1), At: 1}, JobRecord{Command: []string{"true"}})
	require.NoError(t, err)
	require.NoError(t, h.apply(se).Err)
	require.NoError(t, h.cmd(state.ApplyPlan{Place: []scheduler.JobPlacement{{Job: "j", Tasks: []scheduler.TaskPlacement{
		{Node: node, GPUs: []int{1}, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100}}}}, At: 2}).Err)
	require.NoError(t, h.cmd(state.Finish{Job: "j", At: 3}).Err)
	placedAt := h.index - 1 // the plan's entry, before the finish
	// A plan inside a batch entry is noted too.
	se, err = encodeSubmit(state.Submit{Job: job("k", 1), At: 4}, JobRecord{Command: []string{"true"}})
	require.NoError(t, err)
	require.NoError(t, h.apply(se).Err)
	be, err := encodeBatch([]state.Command{state.ApplyPlan{Place: []scheduler.JobPlacement{{Job: "k", Tasks: []scheduler.TaskPlacement{
		{Node: node, GPUs: []int{2}, GPUMilli: 1000, CPUMilli: 100, MemoryMiB: 100}}}}, At: 5}})
	require.NoError(t, err)
	require.NoError(t, h.apply(be).Err)

	snap, err := h.f.Snapshot()
	require.NoError(t, err)
	back := NewFSM()
	require.NoError(t, back.Restore(io.NopCloser(bytes.NewReader(persisted(t, snap)))))
	rec, ok := back.Agent(node)
	require.True(t, ok)
	assert.Equal(t, []string{"GPU-a", "GPU-b"}, rec.Devices)
	assert.Equal(t, []string{node}, back.Agents())
	ran, ok := back.RanOn("j", 0)
	assert.True(t, ok, "where an ended task ran is kept: its logs are there")
	assert.Equal(t, node, ran)
	_, ok = back.RanOn("j", 1)
	assert.False(t, ok)
	back.Read(func(_ *state.Machine, recs map[string]JobRecord, _ uint64) {
		assert.Equal(t, placedAt, recs["j"].placedAt(0), "the run's alloc is the plan's raft index")
		assert.Equal(t, h.index, recs["k"].placedAt(0), "a plan in a batch entry")
	})
	ran, ok = back.RanOn("k", 0)
	assert.True(t, ok)
	assert.Equal(t, node, ran)
}

// TestAgentWatchTerms: the watch of a leadership that ends after the next
// one's began (a quick re-election) leaves the new one serving agents.
func TestAgentWatchTerms(t *testing.T) {
	s := &Server{cfg: Config{Clock: func() int64 { return 1 }}, fsm: NewFSM(), log: slog.New(slog.DiscardHandler)}
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { s.watchAgents(ctx1); close(done1) }()
	require.Eventually(t, s.watch.isActive, time.Second, time.Millisecond)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	s.watch.mu.Lock()
	before := s.watch.term
	s.watch.mu.Unlock()
	go s.watchAgents(ctx2)
	require.Eventually(t, func() bool {
		s.watch.mu.Lock()
		defer s.watch.mu.Unlock()
		return s.watch.term == before+1
	}, time.Second, time.Millisecond)
	cancel1()
	<-done1
	assert.True(t, s.watch.isActive(), "the newer watch still serves agents")
	cancel2()
	require.Eventually(t, func() bool { return !s.watch.isActive() }, time.Second, time.Millisecond)
}
