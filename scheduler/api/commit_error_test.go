package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/server"
)

// Raft's errors reach clients as 503 with a stable code and Retry-After,
// wrapped as the server wraps them; a refusal of the state machine stays
// 422, and an error of no known kind stays 500 internal.
func TestCommitErrorMapping(t *testing.T) {
	h := &handler{}
	commit := func(err error) error { return fmt.Errorf("%w: %w", server.ErrCommit, err) }
	lost := func(err error) error { return fmt.Errorf("%w: %w", server.ErrNotLeader, err) }
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		code    string
		barrier bool // a barrier's error: commitError, not applyError
	}{
		{"not the leader", lost(raft.ErrNotLeader), 503, CodeNoLeader, false},
		{"leadership transfer", lost(raft.ErrLeadershipTransferInProgress), 503, CodeNoLeader, false},
		{"leadership lost", lost(raft.ErrLeadershipLost), 503, CodeLeadershipLost, false},
		{"aborted by a restore", commit(raft.ErrAbortedByRestore), 503, CodeLeadershipLost, false},
		{"shutdown", commit(raft.ErrRaftShutdown), 503, CodeShuttingDown, false},
		{"barrier on shutdown", fmt.Errorf("barrier: %w", raft.ErrRaftShutdown), 503, CodeShuttingDown, true},
		{"timeout", commit(context.DeadlineExceeded), 503, CodeTimeout, false},
		{"too many in flight", commit(raft.ErrEnqueueTimeout), 503, CodeOverloaded, false},
		{"refused", errors.New("apply_plan: node n0 is not ready"), 422, CodeRefused, false},
		{"unknown commit fault", commit(errors.New("disk on fire")), 500, CodeInternal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if tc.barrier {
				writeErr(rec, h.commitError(tc.err))
			} else {
				writeErr(rec, h.applyError(tc.err))
			}
			assert.Equal(t, tc.status, rec.Code)
			var body ErrorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, tc.code, body.Error.Code)
			if tc.status == http.StatusServiceUnavailable {
				assert.Equal(t, "1", rec.Header().Get("Retry-After"))
				assert.Contains(t, body.Error.Message, tc.err.Error())
			} else {
				assert.Empty(t, rec.Header().Get("Retry-After"))
			}
		})
	}
}

// On a real cluster, a write a follower cannot forward again answers 503
// no_leader with Retry-After.
func TestUnavailableHasRetryAfter(t *testing.T) {
	c := newCluster(t, 3, 1)
	req, err := http.NewRequest(http.MethodPost, c.ds[c.follower()].URL+"/v1/jobs", bytes.NewReader(spec("x", 1, 1)))
	require.NoError(t, err)
	req.Header.Set(ForwardedHeader, "elsewhere")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	var body ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, CodeNoLeader, body.Error.Code)
}
