package server

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// healingLog is the raft log and stable store: raft-wal, opened again from
// its files when an append fails. When raft-wal cannot create its next
// segment (a full disk), the sealed tail refuses every later append
// ("segment is sealed") until the process restarts, even once there is
// room: the server stayed up, fell behind and never caught up. Opening the
// log again is what a restart does; until it succeeds (still no room) the
// append fails as before and raft retries it.
type healingLog struct {
	dir    string
	logger hclog.Logger
	log    *slog.Logger

	mu sync.RWMutex
	// w and meta point at the server's fields, so that Close closes the
	// log open now.
	w    **wal.WAL
	meta **metadb.BoltMetaDB
}

var (
	_ raft.LogStore          = (*healingLog)(nil)
	_ raft.StableStore       = (*healingLog)(nil)
	_ raft.MonotonicLogStore = (*healingLog)(nil)
)

func (h *healingLog) cur() *wal.WAL { return *h.w }

// reopen closes the log and opens it again from its files, unless another
// append has done so since wal failed.
func (h *healingLog) reopen(failed *wal.WAL, cause error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if *h.w != failed {
		return nil // reopened meanwhile
	}
	if *h.w != nil {
		(*h.w).Close()
	}
	if *h.meta != nil {
		(*h.meta).Close()
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(h.dir, wal.WithLogger(h.logger), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		*h.w, *h.meta = nil, nil
		return fmt.Errorf("raft log append failed (%w) and the log does not open again: %w", cause, err)
	}
	*h.w, *h.meta = w, meta
	h.log.Warn("raft log opened again after a failed append", "err", cause)
	return nil
}

// write runs an append, and once more on a log opened again if it fails.
func (h *healingLog) write(fn func(*wal.WAL) error) error {
	h.mu.RLock()
	w := h.cur()
	var err error
	if w == nil {
		err = fmt.Errorf("raft log in %s is closed after a failed append", h.dir)
	} else {
		err = fn(w)
	}
	h.mu.RUnlock()
	if err == nil {
		return nil
	}
	if rerr := h.reopen(w, err); rerr != nil {
		return rerr
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if w := h.cur(); w != nil {
		return fn(w)
	}
	return err
}

// read runs a read on the log open now.
func (h *healingLog) read(fn func(*wal.WAL) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	w := h.cur()
	if w == nil {
		return fmt.Errorf("raft log in %s is closed after a failed append", h.dir)
	}
	return fn(w)
}

// FirstIndex implements raft.LogStore.
func (h *healingLog) FirstIndex() (i uint64, err error) {
	err = h.read(func(w *wal.WAL) error { i, err = w.FirstIndex(); return err })
	return i, err
}

// LastIndex implements raft.LogStore.
func (h *healingLog) LastIndex() (i uint64, err error) {
	err = h.read(func(w *wal.WAL) error { i, err = w.LastIndex(); return err })
	return i, err
}

// GetLog implements raft.LogStore.
func (h *healingLog) GetLog(index uint64, l *raft.Log) error {
	return h.read(func(w *wal.WAL) error { return w.GetLog(index, l) })
}

// StoreLog implements raft.LogStore.
func (h *healingLog) StoreLog(l *raft.Log) error {
	return h.write(func(w *wal.WAL) error { return w.StoreLog(l) })
}

// StoreLogs implements raft.LogStore.
func (h *healingLog) StoreLogs(ls []*raft.Log) error {
	return h.write(func(w *wal.WAL) error { return w.StoreLogs(ls) })
}

// DeleteRange implements raft.LogStore.
func (h *healingLog) DeleteRange(lo, hi uint64) error {
	return h.write(func(w *wal.WAL) error { return w.DeleteRange(lo, hi) })
}

// Set implements raft.StableStore.
func (h *healingLog) Set(k, v []byte) error {
	return h.write(func(w *wal.WAL) error { return w.Set(k, v) })
}

// Get implements raft.StableStore.
func (h *healingLog) Get(k []byte) (v []byte, err error) {
	err = h.read(func(w *wal.WAL) error { v, err = w.Get(k); return err })
	return v, err
}

// SetUint64 implements raft.StableStore.
func (h *healingLog) SetUint64(k []byte, v uint64) error {
	return h.write(func(w *wal.WAL) error { return w.SetUint64(k, v) })
}

// GetUint64 implements raft.StableStore.
func (h *healingLog) GetUint64(k []byte) (v uint64, err error) {
	err = h.read(func(w *wal.WAL) error { v, err = w.GetUint64(k); return err })
	return v, err
}

// IsMonotonic implements raft.MonotonicLogStore, as raft-wal does: raft-wal
// refuses a gap in the log, so after restoring a snapshot (a user restore,
// or one installed from the leader) raft must clear the old log rather than
// leave a gap before the next entry.
func (h *healingLog) IsMonotonic() bool { return true }
