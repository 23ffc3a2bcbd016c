package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postKey submits a spec to a server with an Idempotency-Key, as a client
// that retries would (503 while a new leader takes office), and returns the
// status and the decoded answer.
func postKey(t *testing.T, base, key string, spec []byte) (int, SubmitResponse) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		status, out := postKeyOnce(t, base, key, spec)
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return status, out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func postKeyOnce(t *testing.T, base, key string, spec []byte) (int, SubmitResponse) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/jobs", bytes.NewReader(spec))
	require.NoError(t, err)
	req.Header.Set(IdempotencyHeader, key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out SubmitResponse
	if resp.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(b, &out), "%s", b)
	}
	return resp.StatusCode, out
}

// jobsByRequest lists the jobs a request id made, through server base.
func jobsByRequest(t *testing.T, base, key string) []Job {
	t.Helper()
	resp, err := http.Get(base + "/v1/jobs?request_id=" + url.QueryEscape(key))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var l JobList
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&l))
	return l.Jobs
}

// A submit is committed, its answer lost, and the leader killed; the client
// retries the same request through another server. The retry answers the
// committed job, not a second job (a spec without id) nor a conflict (a
// spec with one); a lookup by request id finds exactly that job.
func TestSubmitRetryAfterLeaderKillIsIdempotent(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec []byte
	}{
		{"server names the job", []byte("name: retried\ntask: {gpus: 1, cpu_milli: 100, memory_mib: 100}\n")},
		{"spec names the job", spec("retried-id", 1, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, 2)
			l := c.leader()
			status, first := postKey(t, c.ds[l].URL, "req-1", tc.spec)
			require.Equal(t, http.StatusCreated, status)
			c.kill(l) // the answer above stands for one the client never saw
			other := (l + 1) % 3
			c.leader()
			status, again := postKey(t, c.ds[other].URL, "req-1", tc.spec)
			require.Equal(t, http.StatusOK, status, "a retry answers the committed job")
			assert.Equal(t, first.ID, again.ID)
			jobs, err := c.client(other).Jobs(context.Background(), false)
			require.NoError(t, err)
			assert.Len(t, jobs, 1, "exactly one job")
			got := jobsByRequest(t, c.ds[other].URL, "req-1")
			require.Len(t, got, 1)
			assert.Equal(t, first.ID, got[0].ID)
			assert.Equal(t, "req-1", got[0].RequestID)
			assert.Empty(t, jobsByRequest(t, c.ds[other].URL, "req-unknown"))
		})
	}
}

// Another request naming a taken id is still a conflict: the key only
// makes a retry of the same request safe.
func TestSubmitOtherKeySameIDConflicts(t *testing.T) {
	c := newCluster(t, 1, 1)
	status, _ := postKey(t, c.ds[0].URL, "a", spec("j", 1, 1))
	require.Equal(t, http.StatusCreated, status)
	status, _ = postKey(t, c.ds[0].URL, "b", spec("j", 1, 1))
	assert.Equal(t, http.StatusConflict, status)
	status, _ = postKey(t, c.ds[0].URL, "a", spec("j", 1, 1))
	assert.Equal(t, http.StatusOK, status)
}

// The client sends one key per logical submit and reuses it when it
// retries: an answer lost in transit (the transport fails after the server
// committed) is retried and still makes one job.
func TestClientRetriesSubmitWithOneKey(t *testing.T) {
	c := newCluster(t, 1, 1)
	cl := c.client(0)
	var calls atomic.Int32
	var keys []string
	cl.HTTP = &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		keys = append(keys, r.Header.Get(IdempotencyHeader))
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && calls.Add(1) == 1 {
			resp.Body.Close()
			return nil, errors.New("connection reset (the answer is lost)")
		}
		return resp, err
	})}
	res, err := cl.Submit(context.Background(), []byte("name: once\ntask: {gpus: 1}\n"))
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.NotEmpty(t, keys[0])
	assert.Equal(t, keys[0], keys[1], "a retry reuses the key")
	jobs, err := c.client(0).Jobs(context.Background(), false)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, res.ID, jobs[0].ID)

	j, ok, err := c.client(0).JobByRequest(context.Background(), keys[0])
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, res.ID, j.ID)
	_, ok, err = c.client(0).JobByRequest(context.Background(), "never-sent")
	require.NoError(t, err)
	assert.False(t, ok)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
