package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// The keys raft keeps in its stable store (the WAL's meta database).
var stableKeys = [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm"), []byte("LastVoteCand")}

// repairWAL rebuilds a raft-wal log that raft-wal v0.4.0 cannot read back.
// When a follower's tail is truncated (a new leader's log conflicts with
// it), raft-wal marks the tail segment sealed without writing the index a
// sealed segment is read through; the log works until the process stops,
// and every later start fails ("sealed segment has no index block", a
// panic in raft). The segment files hold every entry, so the log is read
// from them up to each segment's last index, written into a new log with
// the stable store's term and vote, and swapped in; the old one is kept
// beside it (wal.broken-UNIX). It returns whether it rebuilt the log.
func repairWAL(dir string, log *slog.Logger) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "wal-meta.db")); errors.Is(err, os.ErrNotExist) {
		return false, nil // a new log
	}
	meta := &metadb.BoltMetaDB{}
	st, err := meta.Load(dir)
	if err != nil {
		return false, fmt.Errorf("read the log's meta database: %w", err)
	}
	defer meta.Close()
	broken := 0
	for _, si := range st.Segments {
		if !si.SealTime.IsZero() && si.IndexStart == 0 {
			broken++
		}
	}
	if broken == 0 {
		return false, nil
	}
	logs, err := readSegments(dir, st.Segments)
	if err != nil {
		return false, fmt.Errorf("read %d segments (%d sealed without an index): %w", len(st.Segments), broken, err)
	}
	stable := map[string][]byte{}
	for _, k := range stableKeys {
		v, err := meta.GetStable(k)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", k, err)
		}
		stable[string(k)] = v
	}
	if err := meta.Close(); err != nil {
		return false, fmt.Errorf("close the log's meta database: %w", err)
	}

	fresh := dir + ".rebuild"
	if err := os.RemoveAll(fresh); err != nil {
		return false, fmt.Errorf("clear %s: %w", fresh, err)
	}
	if err := writeLog(fresh, logs, stable); err != nil {
		return false, fmt.Errorf("rebuild the log in %s: %w", fresh, err)
	}
	old := fmt.Sprintf("%s.broken-%d", dir, time.Now().Unix())
	if err := os.Rename(dir, old); err != nil {
		return false, fmt.Errorf("keep the old log: %w", err)
	}
	if err := os.Rename(fresh, dir); err != nil {
		return false, fmt.Errorf("put the rebuilt log in place (the old one is %s): %w", old, err)
	}
	if d, err := os.Open(filepath.Dir(dir)); err == nil {
		_ = d.Sync() // the renames are durable before raft appends
		d.Close()
	}
	log.Warn("raft log rebuilt: segments sealed without an index after a truncation", "segments", broken, "entries", len(logs), "old", old)
	return true, nil
}

// readSegments reads the entries of every segment from its file, each up
// to the last index the meta database gives it (a truncated tail's file
// still holds the entries deleted after it), in index order, checking
// that they follow each other without a gap.
func readSegments(dir string, segs []types.SegmentInfo) ([]*raft.Log, error) {
	segs = append([]types.SegmentInfo(nil), segs...)
	sort.Slice(segs, func(a, b int) bool { return segs[a].BaseIndex < segs[b].BaseIndex })
	f := segment.NewFiler(dir, fs.New())
	var codec wal.BinaryCodec
	var logs []*raft.Log
	for _, si := range segs {
		lo, hi := max(si.MinIndex, si.BaseIndex), si.MaxIndex
		sealed := !si.SealTime.IsZero()
		// Read the whole file and filter: a bound given to DumpSegment
		// drops the entries of a commit frame that the bound splits.
		err := f.DumpSegment(si.BaseIndex, si.ID, 0, 0, func(_ types.SegmentInfo, e types.LogEntry) (bool, error) {
			if e.Index < lo || (sealed && e.Index > hi) {
				return true, nil
			}
			var l raft.Log
			if err := codec.Decode(e.Data, &l); err != nil {
				return false, fmt.Errorf("entry %d: %w", e.Index, err)
			}
			if l.Index != e.Index {
				return false, fmt.Errorf("entry at %d says index %d", e.Index, l.Index)
			}
			if n := len(logs); n > 0 && logs[n-1].Index+1 != l.Index {
				return false, fmt.Errorf("entry %d follows %d", l.Index, logs[n-1].Index)
			}
			logs = append(logs, &l)
			return true, nil
		})
		if errors.Is(err, os.ErrNotExist) && !sealed {
			continue // a tail created in meta, its file never written
		}
		if err != nil {
			return nil, fmt.Errorf("segment %d (base %d): %w", si.ID, si.BaseIndex, err)
		}
	}
	return logs, nil
}

// writeLog writes entries and the stable store's values into a new log.
func writeLog(dir string, logs []*raft.Log, stable map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return err
	}
	for len(logs) > 0 {
		n := min(len(logs), 512)
		if err = w.StoreLogs(logs[:n]); err != nil {
			break
		}
		logs = logs[n:]
	}
	for k, v := range stable {
		if err == nil && v != nil {
			err = w.Set([]byte(k), v)
		}
	}
	return errors.Join(err, w.Close(), meta.Close())
}
