package api

import (
	"fmt"
	"net/http"

	"petite/scheduler/server"
	"petite/scheduler/state"
)

// maxRequestID caps a client request id: it is kept in the replicated
// record of every job.
const maxRequestID = 128

// requestID reads a submit's client request id (IdempotencyHeader), empty
// when absent; a malformed one is answered 400.
func requestID(w http.ResponseWriter, r *http.Request) (string, bool) {
	rid := r.Header.Get(IdempotencyHeader)
	bad := len(rid) > maxRequestID
	for i := 0; i < len(rid) && !bad; i++ {
		bad = rid[i] <= ' ' || rid[i] > '~'
	}
	if bad {
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: IdempotencyHeader,
			Message: fmt.Sprintf("%s: want up to %d printable ASCII characters without spaces", IdempotencyHeader, maxRequestID)})
		return "", false
	}
	return rid, true
}

// replay answers a retried submit with the job its first attempt made:
// 200 (not 201: nothing new was made) and the job's status now.
func (h *handler) replay(w http.ResponseWriter, id string) {
	out := SubmitResponse{ID: id, Status: StatusQueued}
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		if info, ok := m.Job(id); ok {
			out.Status = StatusName(info.Status)
		}
	})
	writeJSON(w, http.StatusOK, out)
}
