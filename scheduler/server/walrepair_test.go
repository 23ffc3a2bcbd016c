package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/state"
)

// truncateTail does to a server's raft log what a follower does when a new
// leader's log conflicts with its own: deletes the last n entries and
// appends them again (here the same ones, so the state stays whole).
func truncateTail(t *testing.T, walDir string, n uint64) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(walDir, wal.WithMetaStore(meta))
	require.NoError(t, err)
	last, err := w.LastIndex()
	require.NoError(t, err)
	var logs []*raft.Log
	for i := last - n + 1; i <= last; i++ {
		var l raft.Log
		require.NoError(t, w.GetLog(i, &l))
		logs = append(logs, &l)
	}
	require.NoError(t, w.DeleteRange(last-n+1, last))
	require.NoError(t, w.StoreLogs(logs))
	require.NoError(t, w.Close())
	require.NoError(t, meta.Close())
}

// A follower whose log tail was truncated (raft-wal marks the old tail
// segment sealed without writing its index) restarts: the server rebuilds
// the log from the segment files, with every entry, and keeps the old log
// beside it. Before, raft panicked at start ("sealed segment has no index
// block"), on any restart after a leader change had truncated the log.
func TestRestartAfterLogTruncation(t *testing.T) {
	dir := t.TempDir()
	pools, nodes := testFleet(2)
	cfg := Config{ID: "s0", DataDir: dir, RaftAddr: freeAddr(t), Bootstrap: true, Pools: pools, Nodes: nodes, Fast: true, NoScheduling: true}
	s, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, s.Ready(ctx))
	for i := range 5 {
		_, err := s.Submit(ctx, job(fmt.Sprintf("j%d", i), 1), JobRecord{RequestID: fmt.Sprintf("r%d", i)})
		require.NoError(t, err)
	}
	want := stateOf(t, s)
	require.NoError(t, s.Close())

	walDir := filepath.Join(dir, "wal")
	truncateTail(t, walDir, 3)

	cfg.RaftAddr = freeAddr(t)
	s, err = New(cfg)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Ready(ctx))
	// Ready may come before the new term's first commit applies the rest.
	require.Eventually(t, func() bool { return stateOf(t, s) == want }, waitFor, 10*time.Millisecond, "every entry applied again")
	j, ok := s.FSM().JobByRequest("r4")
	assert.True(t, ok)
	assert.Equal(t, "j4", j)
	kept, err := filepath.Glob(walDir + ".broken-*")
	require.NoError(t, err)
	assert.Len(t, kept, 1, "the old log is kept beside the new")

	// And once more: the rebuilt log restarts as it is.
	require.NoError(t, s.Close())
	s, err = New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Ready(ctx))
	require.Eventually(t, func() bool { return stateOf(t, s) == want }, waitFor, 10*time.Millisecond)
	kept, _ = filepath.Glob(walDir + ".broken-*")
	assert.Len(t, kept, 1, "no second rebuild")
}

func stateOf(t *testing.T, s *Server) string {
	t.Helper()
	var b []byte
	s.FSM().Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		f, err := os.CreateTemp(t.TempDir(), "state")
		require.NoError(t, err)
		require.NoError(t, m.Snapshot(f))
		require.NoError(t, f.Close())
		b, err = os.ReadFile(f.Name())
		require.NoError(t, err)
	})
	return string(b)
}

// A server killed while it wrote a snapshot leaves a partial snapshot
// directory (raft writes NAME.tmp and renames it when done); one whose
// newest snapshot was torn after the rename (a crash before the disk had
// it) holds a state file cut short. Either way it starts again with every
// entry: the partial one is ignored, the torn one refused for an older
// snapshot and the log.
func TestRestartAfterSnapshotCrash(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(t *testing.T, newest string)
	}{
		{"partial snapshot being written", func(t *testing.T, newest string) {
			tmp := newest + "-crashed.tmp"
			require.NoError(t, os.Mkdir(tmp, 0o755))
			b, err := os.ReadFile(filepath.Join(newest, "state.bin"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(tmp, "state.bin"), b[:len(b)/2], 0o644))
		}},
		{"newest snapshot torn", func(t *testing.T, newest string) {
			p := filepath.Join(newest, "state.bin")
			st, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(p, st.Size()/2))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pools, nodes := testFleet(2)
			cfg := Config{ID: "s0", DataDir: dir, RaftAddr: freeAddr(t), Bootstrap: true, Pools: pools, Nodes: nodes, Fast: true, NoScheduling: true}
			s, err := New(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			require.NoError(t, s.Ready(ctx))
			for i := range 6 {
				_, err := s.Submit(ctx, job(fmt.Sprintf("j%d", i), 1), JobRecord{})
				require.NoError(t, err)
				if i == 2 || i == 4 {
					require.NoError(t, s.Snapshot())
				}
			}
			want := stateOf(t, s)
			require.NoError(t, s.Close())
			snaps, err := filepath.Glob(filepath.Join(dir, "snapshots", "*"))
			require.NoError(t, err)
			require.Len(t, snaps, 2)
			sort.Strings(snaps)
			tc.harm(t, snaps[len(snaps)-1])

			cfg.RaftAddr = freeAddr(t)
			s, err = New(cfg)
			require.NoError(t, err)
			defer s.Close()
			require.NoError(t, s.Ready(ctx))
			require.Eventually(t, func() bool { return stateOf(t, s) == want }, waitFor, 10*time.Millisecond, "every entry there")
		})
	}
}
