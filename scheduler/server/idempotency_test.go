package server

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/state"
)

// Two submits of one client request reach the log (each checked before the
// other committed, with different server-chosen job ids): the first makes
// the job, the second is refused naming it, on every server alike. The
// index survives a snapshot and is forgotten with the pruned job.
func TestFSMSubmitOncePerRequestID(t *testing.T) {
	h := newFSMHarness(t)
	submit := func(id, rid string) ApplyResult {
		e, err := encodeSubmit(state.Submit{Job: job(id, 1), At: 1}, JobRecord{RequestID: rid})
		require.NoError(t, err)
		return h.apply(e)
	}
	require.NoError(t, submit("a-1", "r1").Err)
	res := submit("a-2", "r1")
	var dup *DuplicateError
	require.True(t, errors.As(res.Err, &dup), "got %v", res.Err)
	assert.Equal(t, "a-1", dup.Job)
	require.NoError(t, submit("b", "").Err, "no request id: no check")
	require.NoError(t, submit("c", "").Err, "two submits without ids are two requests")
	h.f.Read(func(m *state.Machine, _ map[string]JobRecord, _ uint64) {
		_, ok := m.Job("a-2")
		assert.False(t, ok, "the duplicate made no job")
	})

	snap, err := h.f.Snapshot()
	require.NoError(t, err)
	restored := NewFSM()
	require.NoError(t, restored.Restore(io.NopCloser(bytes.NewReader(persisted(t, snap)))))
	j, ok := restored.JobByRequest("r1")
	require.True(t, ok, "the index is rebuilt from the records")
	assert.Equal(t, "a-1", j)

	require.NoError(t, h.cmd(state.Cancel{Job: "a-1", At: 5}).Err)
	require.NoError(t, h.cmd(state.Prune{Before: 6}).Err)
	_, ok = h.f.JobByRequest("r1")
	assert.False(t, ok, "a pruned job's request is forgotten")
	require.NoError(t, submit("a-3", "r1").Err, "and may be used again")
}
