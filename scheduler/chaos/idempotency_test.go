package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
)

// Three server processes; a submit goes to the leader, which is killed
// with SIGKILL a few milliseconds later (before, during or after the
// commit, before or after the answer). The client retries the same request
// through another server: it gets one job, the one the first attempt made
// when it committed, and the committed state holds exactly one job for the
// request id. Rounds vary the delay.
func TestIdempotentSubmitAcrossLeaderKill(t *testing.T) {
	c := newCluster(t, 3)
	rng := rand.New(rand.NewPCG(7, 7))
	ctx := context.Background()
	for round := range 6 {
		l := c.leader()
		require.GreaterOrEqual(t, l, 0, "no leader")
		rid := fmt.Sprintf("kill-round-%d", round)
		spec := []byte("name: retried\ntask: {gpus: 1, cpu_milli: 100, memory_mib: 100}\n")
		first := make(chan error, 1)
		go func() {
			cl := c.client(l)
			cl.Retry = time.Millisecond // one attempt: its answer may be lost
			_, err := cl.SubmitKey(ctx, spec, rid)
			first <- err
		}()
		time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
		c.srvs[l].kill()
		err := <-first
		t.Logf("round %d: leader %s killed; first attempt: %v", round, c.srvs[l].id, err)

		other := (l + 1) % 3
		cl := c.client(other)
		cl.Retry = 30 * time.Second
		res, err := cl.SubmitKey(ctx, spec, rid)
		require.NoError(t, err)
		jobs, err := cl.Jobs(ctx, false)
		require.NoError(t, err)
		n := 0
		for _, j := range jobs {
			if j.RequestID == rid {
				n++
				assert.Equal(t, res.ID, j.ID)
			}
		}
		assert.Equal(t, 1, n, "round %d: jobs of request %s", round, rid)
		j, ok, err := cl.JobByRequest(ctx, rid)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, res.ID, j.ID)

		require.NoError(t, c.srvs[l].start())
		c.waitHealthy(60 * time.Second)
	}
	// Every server holds the same jobs.
	var want []api.Job
	for i := range c.srvs {
		require.Eventually(t, func() bool {
			jobs, _, err := (&run{c: c}).readState(i)
			if err != nil || (want != nil && len(jobs) != len(want)) {
				return false
			}
			if want == nil {
				want = jobs
			}
			return true
		}, 30*time.Second, 50*time.Millisecond)
	}
	assert.Len(t, want, 6)
}
