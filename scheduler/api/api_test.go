package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/server"
)

// apiErr asserts err is an API error with the code and HTTP status.
func apiErr(t *testing.T, err error, code string, status int) *Error {
	t.Helper()
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, code, e.Code, e.Message)
	assert.Equal(t, status, e.Status)
	return e
}

// A job's life through the API: queued with the core's reasons while it
// cannot fit, running once room is made, succeeded when its tasks finish;
// cancel ends another.
func TestJobLifecycle(t *testing.T) {
	c := newCluster(t, 1, 2)
	cl := c.client(0)
	ctx := context.Background()
	_, err := cl.Submit(ctx, spec("big", 2, 8))
	require.NoError(t, err)
	waitStatus(t, cl, "big", StatusRunning)
	_, err = cl.Submit(ctx, spec("wait", 1, 4))
	require.NoError(t, err)
	var j Job
	require.Eventually(t, func() bool {
		j, err = cl.Job(ctx, "wait", false)
		return err == nil && j.Pending != nil && len(j.Pending.Reasons) > 0
	}, waitFor, 5*time.Millisecond)
	assert.Equal(t, StatusQueued, j.Status)
	assert.Equal(t, "does not fit", j.Pending.Why)
	assert.Equal(t, 2, sum(j.Pending.Reasons), "reasons counted over the 2 nodes: %v", j.Pending.Reasons)

	_, err = cl.Finish(ctx, "big", FinishRequest{Tasks: []int{0}})
	require.NoError(t, err)
	j = waitStatus(t, cl, "wait", StatusRunning)
	assert.Nil(t, j.Pending)
	_, err = cl.Finish(ctx, "big", FinishRequest{Tasks: []int{1}})
	require.NoError(t, err)
	j = waitStatus(t, cl, "big", StatusSucceeded)
	assert.Positive(t, j.Ended)

	j, err = cl.Cancel(ctx, "wait")
	require.NoError(t, err)
	assert.Equal(t, StatusCancelled, j.Status)
	_, err = cl.Cancel(ctx, "nosuch")
	apiErr(t, err, CodeNotFound, http.StatusNotFound)
	_, err = cl.Finish(ctx, "wait", FinishRequest{Tasks: []int{0}})
	assert.NoError(t, err, "finishing an ended job changes nothing")

	_, err = cl.Submit(ctx, spec("big", 1, 1))
	e := apiErr(t, err, CodeConflict, http.StatusConflict)
	assert.Equal(t, "id", e.Field)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// A spec without an ID gets one from its name.
func TestSubmitNamesJob(t *testing.T) {
	c := newCluster(t, 1, 1)
	res, err := c.client(0).Submit(context.Background(), []byte(`{"name":"llm","task":{"gpus":1,"command":["true"]}}`))
	require.NoError(t, err)
	assert.Regexp(t, `^llm-[0-9a-f]{6}$`, res.ID)
	assert.Equal(t, StatusQueued, res.Status)
}

// Bad specs are refused with the field and line named, and change nothing.
func TestSubmitRefusesBadSpecs(t *testing.T) {
	c := newCluster(t, 1, 1)
	cl := c.client(0)
	ctx := context.Background()
	tests := []struct {
		name, body, field, msg string
		line                   int
	}{
		{"unknown field", "id: a\ntask:\n  gpus: 1\n  vram: 8\n", "task.vram", "unknown field", 4},
		{"misspelt field", "id: a\ncuont: 2\n", "cuont", `did you mean "count"?`, 2},
		{"repeated field", "id: a\nid: b\n", "id", "repeated", 2},
		{"wrong type", "id: a\ncount: two\n", "count", "cannot unmarshal", 2},
		{"bad kind", "id: a\nkind: batch\n", "kind", "training or inference", 0},
		{"json unknown", `{"id":"a","task":{"gpu":1}}`, "task.gpu", "did you mean", 1},
		{"two documents", "id: a\n---\nid: b\n", "", "one job per spec", 2},
		{"bad walltime", "id: a\nwalltime: soon\n", "walltime", "duration", 0},
		{"invalid job", "id: a\ncount: -1\n", "count", "count", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.Submit(ctx, []byte(tc.body))
			e := apiErr(t, err, CodeInvalidSpec, http.StatusBadRequest)
			assert.Equal(t, tc.field, e.Field)
			assert.Equal(t, tc.line, e.Line)
			assert.Contains(t, e.Message, tc.msg)
		})
	}
	jobs, err := cl.Jobs(ctx, false)
	require.NoError(t, err)
	assert.Empty(t, jobs)

	big := bytes.Repeat([]byte("#"), MaxSpecBytes+1)
	_, err = cl.Submit(ctx, big)
	apiErr(t, err, CodeTooLarge, http.StatusRequestEntityTooLarge)
}

// Every error is a JSON body with a stable code, unknown paths included.
func TestErrorsAreJSON(t *testing.T) {
	c := newCluster(t, 1, 1)
	for _, tc := range []struct{ method, path, code string }{
		{"GET", "/v1/nope", CodeNotFound},
		{"GET", "/v1/jobs/none", CodeNotFound},
		{"GET", "/v1/nodes/none", CodeNotFound},
		{"POST", "/v1/nodes/n0/state", CodeBadRequest},
		{"DELETE", "/v1/operator/raft/peers/none", CodeNotFound},
	} {
		req, err := http.NewRequest(tc.method, c.ds[0].URL+tc.path, strings.NewReader(`{"state":"down"}`))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var body ErrorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), tc.path)
		resp.Body.Close()
		require.NotNil(t, body.Error, tc.path)
		assert.Equal(t, tc.code, body.Error.Code, "%s %s: %s", tc.method, tc.path, body.Error.Message)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
}

// plan is a dry run: it says where the job would go, or why it would wait,
// and the state is byte for byte what it was.
func TestPlanChangesNothing(t *testing.T) {
	c := newCluster(t, 3, 2)
	ctx := context.Background()
	cl := c.client(c.follower())
	_, err := cl.Submit(ctx, spec("r", 1, 8))
	require.NoError(t, err)
	waitStatus(t, cl, "r", StatusRunning)
	c.converged()
	before := [3][32]byte{c.stateHash(0), c.stateHash(1), c.stateHash(2)}

	p, err := cl.Plan(ctx, spec("p", 1, 4))
	require.NoError(t, err)
	assert.True(t, p.Placed)
	require.Len(t, p.Tasks, 1)
	assert.NotEqual(t, waitStatus(t, cl, "r", StatusRunning).Tasks[0].Node, p.Tasks[0].Node, "the free node")

	p, err = cl.Plan(ctx, spec("huge", 3, 8))
	require.NoError(t, err)
	assert.False(t, p.Placed)
	require.NotNil(t, p.Pending)
	assert.NotEmpty(t, p.Pending.Why)

	_, err = cl.Plan(ctx, []byte("id: x\ntask: {gpus: 1, vram: 2}\n"))
	apiErr(t, err, CodeInvalidSpec, http.StatusBadRequest)

	c.converged()
	assert.Equal(t, before, [3][32]byte{c.stateHash(0), c.stateHash(1), c.stateHash(2)})
	_, err = cl.Job(ctx, "p", false)
	apiErr(t, err, CodeNotFound, http.StatusNotFound)
}

// A drained node takes no new work; made ready, it does again.
func TestDrainNode(t *testing.T) {
	c := newCluster(t, 1, 2)
	cl := c.client(0)
	ctx := context.Background()
	n, err := cl.SetNodeState(ctx, "n0", "draining")
	require.NoError(t, err)
	assert.Equal(t, "draining", n.State)
	for i := range 2 {
		_, err := cl.Submit(ctx, spec(fmt.Sprintf("d%d", i), 1, 8))
		require.NoError(t, err)
	}
	j := waitStatus(t, cl, "d0", StatusRunning)
	assert.Equal(t, "n1", j.Tasks[0].Node)
	time.Sleep(50 * time.Millisecond)
	j, err = cl.Job(ctx, "d1", false)
	require.NoError(t, err)
	assert.Equal(t, StatusQueued, j.Status, "nothing placed on the draining node")
	_, err = cl.SetNodeState(ctx, "n0", "ready")
	require.NoError(t, err)
	j = waitStatus(t, cl, "d1", StatusRunning)
	assert.Equal(t, "n0", j.Tasks[0].Node)

	pools, err := cl.Pools(ctx)
	require.NoError(t, err)
	require.Len(t, pools, 1)
	assert.Equal(t, Pool{Name: "lab", Kind: "onprem", Region: "r1", Nodes: 2, Ready: 2, GPUs: 16, GPUMilliFree: 0, GPUMilliCap: 16000}, pools[0])
	_, err = cl.SetNodeState(ctx, "n9", "draining")
	apiErr(t, err, CodeNotFound, http.StatusNotFound)
}

// Snapshot and restore: a server that restarts after a snapshot (its log
// compacted) rebuilds the same state, and the state snapshot endpoint
// serves the state machine's own encoding.
func TestSnapshotRestoreRoundTrip(t *testing.T) {
	c := newCluster(t, 3, 4)
	ctx := context.Background()
	l := c.leader()
	cl := c.client(l)
	for i := range 5 {
		_, err := cl.Submit(ctx, spec(fmt.Sprintf("s%d", i), 1, 8))
		require.NoError(t, err)
	}
	waitStatus(t, cl, "s3", StatusRunning)
	c.converged()
	for i := range c.ds {
		require.NoError(t, c.ds[i].Server.Snapshot(), "s%d", i)
	}
	_, err := cl.Finish(ctx, "s0", FinishRequest{})
	require.NoError(t, err)
	waitStatus(t, cl, "s4", StatusRunning)
	c.converged()
	want := c.stateHash(l)

	f := c.follower()
	c.kill(f)
	c.start(f)
	c.ready()
	c.converged()
	assert.Equal(t, want, c.stateHash(f))
	j, err := c.client(f).Job(ctx, "s4", true)
	require.NoError(t, err)
	assert.Equal(t, []string{"sleep", "60"}, j.Command, "the daemon's records survive the snapshot")

	var b bytes.Buffer
	require.NoError(t, c.client(f).Snapshot(ctx, &b))
	var snap struct {
		V    int    `json:"v"`
		Type string `json:"type"`
	}
	require.NoError(t, json.Unmarshal(b.Bytes(), &snap))
	assert.Equal(t, 1, snap.V)
	assert.Equal(t, "snapshot", snap.Type)
}

// Servers join and leave at run time.
func TestAddRemovePeer(t *testing.T) {
	c := newCluster(t, 3, 1)
	ctx := context.Background()
	cl := c.client(c.follower())
	_, err := cl.Submit(ctx, spec("early", 1, 1))
	require.NoError(t, err)

	cfg := c.cfgs[0]
	cfg.ID, cfg.DataDir, cfg.RaftAddr, cfg.Bootstrap, cfg.Peers = "s3", t.TempDir(), freeAddr(t), false, nil
	d, err := Start(cfg, "127.0.0.1:0", nil)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	peers, err := cl.AddPeer(ctx, "s3", d.Server.RaftAddr())
	require.NoError(t, err)
	assert.Len(t, peers, 4)
	c.ds = append(c.ds, d)
	c.converged()
	j, err := c.client(3).Job(ctx, "early", true)
	require.NoError(t, err, "the new server caught up")
	assert.Equal(t, "early", j.ID)

	peers, err = cl.RemovePeer(ctx, "s3")
	require.NoError(t, err)
	assert.Len(t, peers, 3)
	for _, p := range peers {
		assert.NotEqual(t, "s3", p.ID)
	}
	_, err = cl.AddPeer(ctx, "", "")
	apiErr(t, err, CodeBadRequest, http.StatusBadRequest)
	c.ds = c.ds[:3]
}

// GET /v1/health answers 200 once a leader is known, 503 while none is
// (a server whose peers have not started).
func TestHealth(t *testing.T) {
	c := newCluster(t, 1, 1)
	h, err := c.client(0).Health(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Health{Status: "ok", Server: "s0", State: "Leader", Leader: "s0"}, h)

	pools, nodes := testFleet(1)
	cfg := server.Config{
		ID: "a", DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true, Fast: true, Pools: pools, Nodes: nodes,
	}
	cfg.Peers = []server.Peer{{ID: "a", Addr: cfg.RaftAddr}, {ID: "b", Addr: freeAddr(t)}, {ID: "c", Addr: freeAddr(t)}}
	d, err := Start(cfg, "127.0.0.1:0", nil)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	resp, err := http.Get(d.URL + "/v1/health")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var body Health
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "unavailable", body.Status)
}

// A job of higher priority that does not fit preempts preemptible work of
// lower priority: the plan evicts it (a gang back to the queue) and places
// the new job in one log entry; plan shows the eviction beforehand.
func TestPreemption(t *testing.T) {
	c := newCluster(t, 1, 1)
	cl := c.client(0)
	ctx := context.Background()
	_, err := cl.Submit(ctx, []byte("id: low\npriority: 1\npreemptible: true\ntask: {gpus: 8}\n"))
	require.NoError(t, err)
	waitStatus(t, cl, "low", StatusRunning)
	high := []byte("id: high\npriority: 9\ntask: {gpus: 4}\n")
	p, err := cl.Plan(ctx, high)
	require.NoError(t, err)
	assert.True(t, p.Placed)
	require.Len(t, p.Evict, 1)
	assert.Equal(t, "low", p.Evict[0].Job)
	waitStatus(t, cl, "low", StatusRunning) // the dry run evicted nothing

	_, err = cl.Submit(ctx, high)
	require.NoError(t, err)
	waitStatus(t, cl, "high", StatusRunning)
	j := waitStatus(t, cl, "low", StatusQueued)
	assert.Equal(t, 1, j.Requeues)
}

// A new cluster is ready once its fleet is registered: the first request
// after Ready sees every node.
func TestReadyMeansFleetRegistered(t *testing.T) {
	for range 5 {
		c := newCluster(t, 1, 3)
		nodes, err := c.client(0).Nodes(context.Background(), "")
		require.NoError(t, err)
		require.Len(t, nodes, 3)
		c.kill(0)
	}
}

// Closing a daemon twice (a test's cleanup after an explicit Close) returns
// at once rather than waiting for a serve loop that already ended.
func TestDaemonCloseTwice(t *testing.T) {
	c := newCluster(t, 1, 1)
	d := c.ds[0]
	require.NoError(t, d.Close())
	done := make(chan error, 1)
	go func() { done <- d.Close() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("second Close did not return")
	}
	c.ds[0] = nil
}
