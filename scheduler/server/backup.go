package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"petite/scheduler/state"
)

// A backup file (petite operator snapshot save) is one header line and a
// body:
//
//	petite-snapshot v1 petite=0.1.0 created=2026-11-30T10:00:00Z index=812 bytes=53211 sha256=9f2c...\n
//	<body: the FSM's snapshot, the same bytes raft's own snapshots hold>
//
// The header names the file format's version (what a reader must
// understand), the petite that wrote it (for people), the raft index the
// state was read at, the body's length (a cut file is told from a corrupt
// one) and the SHA-256 of the body.
const (
	backupMagic = "petite-snapshot"
	// BackupFormat is the backup file format this petite writes, and the
	// newest it reads.
	BackupFormat = 1
	// maxBackupHeader bounds the header line.
	maxBackupHeader = 1024
)

// Version is petite's version, written in backup headers. The binary sets
// it from its own (a library user may leave it).
var Version = "dev"

// BackupHeader is what a backup file's first line says.
type BackupHeader struct {
	// Format is the file format's version.
	Format int
	// Petite is the version of petite that wrote the file.
	Petite string
	// Created is when the file was written (Unix seconds; 0 if absent).
	Created int64
	// Index is the raft index the state was read at.
	Index uint64
	// Size is the body's length in bytes.
	Size int64
	// SHA256 is the body's checksum, lower-case hex.
	SHA256 string
}

// BackupError says what is wrong with a backup file, in one line.
type BackupError struct {
	// Problem is the line: what is wrong and, where it helps, what to do.
	Problem string
	// Newer is set when the file's format is newer than this petite reads.
	Newer bool
}

func (e *BackupError) Error() string { return e.Problem }

// EncodeBackup writes a backup file of body: its header line, then body.
func EncodeBackup(w io.Writer, h BackupHeader, body []byte) error {
	sum := sha256.Sum256(body)
	created := ""
	if h.Created != 0 {
		created = " created=" + time.Unix(h.Created, 0).UTC().Format(time.RFC3339)
	}
	petite := strings.Join(strings.Fields(h.Petite), "_") // one token
	if petite == "" {
		petite = "unknown"
	}
	line := fmt.Sprintf("%s v%d petite=%s%s index=%d bytes=%d sha256=%s\n",
		backupMagic, BackupFormat, petite, created, h.Index, len(body), hex.EncodeToString(sum[:]))
	if _, err := io.WriteString(w, line); err != nil {
		return fmt.Errorf("write backup header: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("write backup body: %w", err)
	}
	return nil
}

// DecodeBackup checks a whole backup file and returns its header and body.
// A file that is not a backup, is cut short, carries more than its header
// announces, fails its checksum or is of a newer format returns a
// *BackupError whose line says which.
func DecodeBackup(b []byte) (BackupHeader, []byte, error) {
	var h BackupHeader
	nl := bytes.IndexByte(b[:min(len(b), maxBackupHeader)], '\n')
	if !bytes.HasPrefix(b, []byte(backupMagic+" ")) || nl < 0 {
		return h, nil, &BackupError{Problem: fmt.Sprintf("not a petite snapshot file (it should start with %q and a header line)", backupMagic+" v1")}
	}
	fields := strings.Fields(string(b[len(backupMagic):nl]))
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "v") {
		return h, nil, &BackupError{Problem: "header: no format version after " + backupMagic}
	}
	v, err := strconv.Atoi(fields[0][1:])
	if err != nil || v < 1 {
		return h, nil, &BackupError{Problem: fmt.Sprintf("header: format version %q is not v1, v2, ...", fields[0])}
	}
	h.Format = v
	seen := map[string]bool{}
	for _, kv := range fields[1:] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return h, nil, &BackupError{Problem: fmt.Sprintf("header: %q is not key=value", kv)}
		}
		seen[k] = true
		switch k {
		case "petite":
			h.Petite = val
		case "created":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return h, nil, &BackupError{Problem: fmt.Sprintf("header: created=%s is not an RFC 3339 time", val)}
			}
			h.Created = t.Unix()
		case "index":
			if h.Index, err = strconv.ParseUint(val, 10, 64); err != nil {
				return h, nil, &BackupError{Problem: fmt.Sprintf("header: index=%s is not a number", val)}
			}
		case "bytes":
			if h.Size, err = strconv.ParseInt(val, 10, 64); err != nil || h.Size < 0 {
				return h, nil, &BackupError{Problem: fmt.Sprintf("header: bytes=%s is not a length", val)}
			}
		case "sha256":
			h.SHA256 = val
		}
	}
	// A newer format may lay its header out differently: say so before
	// anything else it might fail.
	if h.Format > BackupFormat {
		return h, nil, &BackupError{Newer: true, Problem: fmt.Sprintf(
			"format v%d is newer than this petite (%s) reads (v%d); restore it with petite %s or later",
			h.Format, Version, BackupFormat, orUnknown(h.Petite))}
	}
	for _, k := range []string{"bytes", "sha256"} {
		if !seen[k] {
			return h, nil, &BackupError{Problem: fmt.Sprintf("header: no %s= field", k)}
		}
	}
	body := b[nl+1:]
	switch n := int64(len(body)); {
	case n < h.Size:
		return h, nil, &BackupError{Problem: fmt.Sprintf("truncated: the body has %d of the %d bytes its header announces", n, h.Size)}
	case n > h.Size:
		return h, nil, &BackupError{Problem: fmt.Sprintf("%d bytes of trailing data past the %d bytes its header announces", n-h.Size, h.Size)}
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != h.SHA256 {
		return h, nil, &BackupError{Problem: fmt.Sprintf("checksum mismatch: the body's SHA-256 is %s, the header says %s; the file is corrupt", got, h.SHA256)}
	}
	return h, body, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// Backup writes a backup file of the server's state: the FSM's snapshot
// (the state machine's, the daemon's job records and history) under a
// header. On the leader after a barrier it holds every write acknowledged
// before the call.
func (s *Server) Backup(w io.Writer) error {
	var body []byte
	var index uint64
	var err error
	s.fsm.mu.Lock()
	body, err = s.fsm.encodeLocked()
	index = s.fsm.index
	s.fsm.mu.Unlock()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return EncodeBackup(w, BackupHeader{Petite: Version, Created: s.Now(), Index: index}, body)
}

// RestoreBackup replaces the cluster's state with a backup file's, on the
// leader, through raft's user snapshot restore: the leader installs the
// body as a snapshot of the current configuration past its last index, and
// every follower, finding the hole in the log, installs it from the leader
// the way a lagging follower would. The file is checked whole first (header,
// checksum, the body decoding into a state the machine accepts), since raft
// stops a server whose state machine refuses a restore.
//
// The servers' HTTP addresses are the running cluster's, not the backup's:
// a backup restored onto a fresh cluster must not forward to the old one.
func (s *Server) RestoreBackup(ctx context.Context, file []byte) (BackupHeader, error) {
	h, body, err := DecodeBackup(file)
	if err != nil {
		return h, err
	}
	var snap snapshotFile
	if err := unmarshalStrict(body, &snap); err != nil {
		return h, &BackupError{Problem: fmt.Sprintf("body: not a petite server snapshot: %v", err)}
	}
	if snap.V != 1 || snap.Type != snapshotType {
		return h, &BackupError{Problem: fmt.Sprintf("body: snapshot version %d type %q, want 1 %q", snap.V, snap.Type, snapshotType)}
	}
	if _, err := state.Restore(bytes.NewReader(snap.State)); err != nil {
		return h, &BackupError{Problem: fmt.Sprintf("body: %v", err)}
	}
	if !s.IsLeader() {
		return h, fmt.Errorf("%w: restore a backup", ErrNotLeader)
	}
	snap.Servers = s.fsm.serversCopy()
	b, err := json.Marshal(snap)
	if err != nil {
		return h, fmt.Errorf("restore backup: %w", err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(len(b))}
	if err := s.raft.Restore(meta, bytes.NewReader(b), timeout(ctx)); err != nil {
		return h, commitErr(fmt.Errorf("restore backup: %w", err))
	}
	return h, nil
}

// commitErr marks a raft error as the leadership's or the commit's.
func commitErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return fmt.Errorf("%w: %w", ErrCommit, err)
}

// serversCopy returns the recorded HTTP addresses of the servers.
func (f *FSM) serversCopy() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.servers)
}
