package api

import (
	"bytes"
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/server"
	"petite/scheduler/state"
	"petite/traces"
)

// The history is part of the replicated state: every server of a cluster
// exports the same bytes, and the leader's export reads back as a trace.
func TestHistoryAlikeOnAllServers(t *testing.T) {
	c := newCluster(t, 3, 2)
	ctx := context.Background()
	cl := c.client(c.follower())
	for _, id := range []string{"done", "gone"} {
		_, err := cl.Submit(ctx, spec(id, 1, 8))
		require.NoError(t, err)
		waitStatus(t, cl, id, StatusRunning)
	}
	_, err := cl.Finish(ctx, "done", FinishRequest{})
	require.NoError(t, err)
	_, err = cl.Cancel(ctx, "gone")
	require.NoError(t, err)
	c.converged()

	var want bytes.Buffer
	require.NoError(t, cl.History(ctx, HistoryQuery{}, &want))
	r, err := traces.NewReader(bytes.NewReader(want.Bytes()), "history", traces.Options{Strict: true})
	require.NoError(t, err)
	var ids []string
	for j, err := range r.All() {
		require.NoError(t, err)
		ids = append(ids, j.ID+" "+string(j.Status))
	}
	assert.Equal(t, []string{"done succeeded", "gone killed"}, ids)
	for i, d := range c.ds {
		var jobs []traces.Job
		d.Server.FSM().History(func(h []server.HistoryRecord, m *state.Machine) {
			jobs = historyJobs(h, m, HistoryQuery{})
		})
		var b bytes.Buffer
		require.NoError(t, writeTrace(&b, jobs, traces.FormatCSV))
		assert.Equal(t, want.String(), b.String(), "server %d", i)
	}
}

func TestHistoryQueryRefusesBadParameters(t *testing.T) {
	for _, tc := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"since=-5", "since"},
		{"live=yes", "live"},
		{"format=openb", "format"},
	} {
		v, err := url.ParseQuery(tc.query)
		require.NoError(t, err)
		_, e := parseHistoryQuery(v)
		require.NotNil(t, e, tc.query)
		assert.Equal(t, tc.field, e.Field)
		assert.Equal(t, 400, e.Status)
	}
	q, e := parseHistoryQuery(url.Values{"since": {"2026-11-01T00:00:00Z"}, "live": {"true"}, "format": {"petite-jsonl"}})
	require.Nil(t, e)
	assert.Equal(t, HistoryQuery{Since: 1793491200, Live: true, Format: traces.FormatJSONL}, q)
}
