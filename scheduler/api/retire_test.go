package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/server"
	"petite/scheduler/state"
)

// nodeState waits until a node, read through cl, has the state.
func nodeState(t *testing.T, cl *Client, name, st string) Node {
	t.Helper()
	var n Node
	require.Eventually(t, func() bool {
		var err error
		n, err = cl.Node(context.Background(), name)
		return err == nil && n.State == st
	}, waitFor, 20*time.Millisecond, "node %s never %s (last %+v)", name, st, n)
	return n
}

// A node given its own retirement date drains from the lead time before
// it, its work moves to other nodes, and it is retired on the date, by
// whichever server leads then: the date is replicated, so a new leader
// keeps it.
func TestRetireNodeOnDate(t *testing.T) {
	c := newCluster(t, 3, 3, func(cfg *server.Config) {
		cfg.Drain = server.Drain{Interval: 20 * time.Millisecond, RetireLead: 2 * time.Second}
	})
	ctx := context.Background()
	cl := c.client(c.leader())
	_, err := cl.Submit(ctx, spec("gang", 1, 8))
	require.NoError(t, err)
	var on string
	for n := range nodesOf(waitStatus(t, cl, "gang", StatusRunning)) {
		on = n
	}

	date := time.Now().Unix() + 4
	at := unixRFC3339(date)
	asked := time.Now().Unix()
	n, err := c.client(c.follower()).RetireNode(ctx, on, RetireRequest{At: at}) // forwarded to the leader
	require.NoError(t, err)
	assert.Equal(t, at, n.RetireAt)
	if asked < date-2-1 { // clearly before the lead time (whole seconds)
		assert.Equal(t, "ready", n.State, "before the lead time")
	}
	nodes, err := cl.Nodes(ctx, "")
	require.NoError(t, err)
	for _, n := range nodes {
		if n.Name == on {
			assert.Equal(t, at, n.RetireAt)
		} else {
			assert.Empty(t, n.RetireAt, n.Name)
		}
	}

	nodeState(t, cl, on, "draining")
	require.Eventually(t, func() bool {
		j, err := cl.Job(ctx, "gang", false)
		return err == nil && j.Status == StatusRunning && len(j.Tasks) == 1 && !nodesOf(j)[on]
	}, waitFor, 10*time.Millisecond, "the gang never left %s", on)

	// The leader goes; the next one retires the node on the date.
	old := c.leader()
	c.kill(old)
	next := c.leader()
	cl = c.client(next)
	n = nodeState(t, cl, on, "retired")
	assert.GreaterOrEqual(t, time.Now().Unix(), date, "retired on the date, not before")
	assert.Equal(t, at, n.RetireAt)
	assert.Equal(t, map[string]int64{on: date}, c.ds[next].Server.FSM().RetireDates())
	j, err := cl.Job(ctx, "gang", false)
	require.NoError(t, err)
	assert.Equal(t, StatusRunning, j.Status)
	assert.False(t, nodesOf(j)[on])
	c.converged()
}

// A date withdrawn before it is reached leaves the node ready past it; a
// date reached cannot be withdrawn.
func TestRetireNodeCancel(t *testing.T) {
	c := newCluster(t, 1, 2, func(cfg *server.Config) {
		cfg.Drain = server.Drain{Interval: 20 * time.Millisecond, RetireLead: time.Second}
	})
	ctx := context.Background()
	cl := c.client(0)
	date := time.Now().Unix() + 3
	n, err := cl.RetireNode(ctx, "n0", RetireRequest{At: unixRFC3339(date)})
	require.NoError(t, err)
	assert.Equal(t, unixRFC3339(date), n.RetireAt)
	n, err = cl.RetireNode(ctx, "n0", RetireRequest{Cancel: true})
	require.NoError(t, err)
	assert.Empty(t, n.RetireAt)
	time.Sleep(time.Until(time.Unix(date+1, 0)))
	n, err = cl.Node(ctx, "n0")
	require.NoError(t, err)
	assert.Equal(t, "ready", n.State, "the withdrawn date passed")
	assert.Empty(t, c.ds[0].Server.FSM().RetireDates())

	// "now" retires at once; then there is nothing left to withdraw.
	n, err = cl.RetireNode(ctx, "n1", RetireRequest{At: "now"})
	require.NoError(t, err)
	assert.NotEmpty(t, n.RetireAt)
	nodeState(t, cl, "n1", "retired")
	_, err = cl.RetireNode(ctx, "n1", RetireRequest{Cancel: true})
	var e *Error
	require.True(t, errors.As(err, &e), "%v", err)
	assert.Equal(t, http.StatusConflict, e.Status)
	assert.Equal(t, "cancel", e.Field)
	nodeState(t, cl, "n1", "retired")
}

// Bad input answers 400 naming the field (404 for an unknown node) and
// writes nothing to the log.
func TestRetireNodeBadInput(t *testing.T) {
	c := newCluster(t, 1, 1)
	url := c.ds[0].URL
	index := func() uint64 {
		var i uint64
		c.ds[0].Server.FSM().Read(func(_ *state.Machine, _ map[string]server.JobRecord, at uint64) { i = at })
		return i
	}
	before := index()
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, path, body string
		status           int
		field, says      string
	}{
		{"not a date", "/v1/nodes/n0/retire", `{"at":"tomorrow"}`, 400, "at", "RFC 3339"},
		{"a date without a zone", "/v1/nodes/n0/retire", `{"at":"2030-01-01T00:00:00"}`, 400, "at", "RFC 3339"},
		{"in the past", "/v1/nodes/n0/retire", `{"at":"` + past + `"}`, 400, "at", "in the past"},
		{"no date", "/v1/nodes/n0/retire", `{}`, 400, "at", "required"},
		{"both", "/v1/nodes/n0/retire", `{"at":"now","cancel":true}`, 400, "cancel", "not both"},
		{"unknown field", "/v1/nodes/n0/retire", `{"at":"now","when":1}`, 400, "", `unknown field "when"`},
		{"wrong type", "/v1/nodes/n0/retire", `{"at":5}`, 400, "", "at"},
		{"trailing", "/v1/nodes/n0/retire", `{"at":"now"} {}`, 400, "", "trailing"},
		{"unknown node", "/v1/nodes/n9/retire", `{"at":"now"}`, 404, "", `no node "n9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, b := call(t, url, "", "POST", tc.path, tc.body)
			assert.Equal(t, tc.status, st, "%s", b)
			var body ErrorBody
			require.NoError(t, json.Unmarshal(b, &body))
			require.NotNil(t, body.Error, "%s", b)
			e := body.Error
			assert.Equal(t, tc.field, e.Field)
			assert.Contains(t, e.Message, tc.says)
		})
	}
	assert.Equal(t, before, index(), "nothing written")
	assert.Empty(t, c.ds[0].Server.FSM().RetireDates())
	n, err := c.client(0).Node(context.Background(), "n0")
	require.NoError(t, err)
	assert.Equal(t, "ready", n.State)
	assert.Empty(t, n.RetireAt)
}
