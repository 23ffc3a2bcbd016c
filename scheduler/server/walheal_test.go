package server

import (
	"log/slog"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The log store says it is monotonic, as raft-wal does: without it raft
// leaves a gap after a snapshot restore and raft-wal refuses the next
// append ("non-monotonic log entries", petite operator snapshot restore).
// An append that fails (here: the log closed under it, as raft-wal's tail
// is after a failed rotation) opens the log again and goes through.
func TestHealingLog(t *testing.T) {
	dir := t.TempDir()
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta))
	require.NoError(t, err)
	h := &healingLog{dir: dir, logger: hclog.NewNullLogger(), log: slog.New(slog.DiscardHandler), w: &w, meta: &meta}
	defer func() { w.Close(); meta.Close() }()

	var ls raft.LogStore = h
	m, ok := ls.(raft.MonotonicLogStore)
	require.True(t, ok)
	assert.True(t, m.IsMonotonic())

	require.NoError(t, h.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}}))
	require.NoError(t, h.SetUint64([]byte("CurrentTerm"), 1))
	broken := w
	require.NoError(t, broken.Close()) // every call on it fails from now on
	require.NoError(t, h.StoreLogs([]*raft.Log{{Index: 2, Term: 1, Data: []byte("b")}}), "opened again")
	assert.NotSame(t, broken, w, "the server's log is the new one")
	last, err := h.LastIndex()
	require.NoError(t, err)
	assert.Equal(t, uint64(2), last)
	var l raft.Log
	require.NoError(t, h.GetLog(1, &l))
	assert.Equal(t, "a", string(l.Data))
	term, err := h.GetUint64([]byte("CurrentTerm"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), term)
}
