package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"petite/scheduler/server"
	"petite/scheduler/state"
)

// MaxBackupBytes caps a backup file sent for restore: far above the state
// of a large fleet (the 6,720-GPU demo fleet's is under 2 MiB), far below
// what would strain a server's memory.
const MaxBackupBytes = 256 << 20

// CodeBadSnapshot is the error code of a backup file refused for restore
// (not a backup, cut short, corrupt, of a newer format).
const CodeBadSnapshot = "bad_snapshot"

// RestoreResponse is the body of a backup restored.
type RestoreResponse struct {
	// Petite and Index are the backup header's: who wrote it, and the raft
	// index its state was read at on the cluster it came from.
	Petite string `json:"petite"`
	Index  uint64 `json:"index"`
	Bytes  int64  `json:"bytes"`
	// Jobs is how many jobs the restored state holds.
	Jobs int `json:"jobs"`
}

// operationsRoutes registers the operator's endpoints: backup and restore
// of the whole state, the history of jobs.
func (h *handler) operationsRoutes() {
	h.route("GET /v1/operator/snapshot", h.saveSnapshot, read)
	// A restore body is larger than the API's cap for specs: it is served
	// here rather than through route, with its own cap, by the leader.
	h.mux.HandleFunc("POST /v1/operator/snapshot", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBackupBytes)
		if !h.s.IsLeader() {
			h.forward(w, r)
			return
		}
		h.restoreSnapshot(w, r)
	})
	h.historyRoutes()
}

// saveSnapshot writes a backup file of the leader's state.
func (h *handler) saveSnapshot(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	if err := h.s.Backup(&b); err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b.Bytes())
}

// restoreSnapshot replaces the cluster's state with a backup file's.
func (h *handler) restoreSnapshot(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeErr(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf("backup larger than %d bytes", mb.Limit)})
		} else {
			writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("read body: %v", err)})
		}
		return
	}
	hd, err := h.s.RestoreBackup(r.Context(), b)
	if err != nil {
		var be *server.BackupError
		if errors.As(err, &be) {
			writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadSnapshot, Message: be.Problem})
			return
		}
		writeErr(w, h.commitError(err))
		return
	}
	out := RestoreResponse{Petite: hd.Petite, Index: hd.Index, Bytes: hd.Size}
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) { out.Jobs = m.NumJobs() })
	writeJSON(w, http.StatusOK, out)
}

// SaveSnapshot writes a backup file of the cluster's state to w.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) error {
	return c.do(ctx, http.MethodGet, "/v1/operator/snapshot", nil, w)
}

// RestoreSnapshot replaces the cluster's state with a backup file's.
func (c *Client) RestoreSnapshot(ctx context.Context, file []byte) (RestoreResponse, error) {
	var out RestoreResponse
	return out, c.do(ctx, http.MethodPost, "/v1/operator/snapshot", file, &out)
}
