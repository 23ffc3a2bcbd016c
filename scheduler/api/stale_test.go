package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stale read is served by the server asked; it must not make the reads
// after it, on the same route, stale too. Found by the chaos harness: the
// route's closure kept "local" once a request asked for ?stale=true, and a
// follower answered every later read of that route from its own state.
func TestStaleReadStaysOneRequest(t *testing.T) {
	c := newCluster(t, 3, 1)
	f := c.follower()
	// Too big for any node: it stays queued, and only the leader's pass
	// knows why.
	_, err := c.client(c.leader()).Submit(context.Background(), spec("big", 1, 16))
	require.NoError(t, err)
	c.converged()
	for _, path := range []string{"/v1/jobs", "/v1/jobs/big"} {
		resp, err := http.Get(c.ds[f].URL + path + "?stale=true")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	for range 3 {
		jobs, err := c.client(f).Jobs(context.Background(), false)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.NotNil(t, jobs[0].Pending)
		assert.NotEqual(t, WhyAskLeader, jobs[0].Pending.Why, "a read without stale is the leader's")
		j, err := c.client(f).Job(context.Background(), "big", false)
		require.NoError(t, err)
		require.NotNil(t, j.Pending)
		assert.NotEqual(t, WhyAskLeader, j.Pending.Why, fmt.Sprintf("job read: %+v", j.Pending))
	}
}
