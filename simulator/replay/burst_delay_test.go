package replay

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runBurstDelay is runBurst with the cloud pool's provision_delay_sec set.
func runBurstDelay(t *testing.T, delaySec int64, js []tj, wait string) (*Result, []Event) {
	t.Helper()
	pools, nodes := burstFleet([]string{"n1"}, nil)
	pools[1].ProvisionDelaySec = delaySec
	wp, err := ParseWait(wait)
	require.NoError(t, err)
	var log []Event
	res, err := Run(t.Context(), Config{Pools: pools, Nodes: nodes, Jobs: jobsOf(js), Burst: &Burst{Wait: wp},
		Observe: func(e Event) { log = append(log, e) }})
	require.NoError(t, err)
	return res, log
}

// A hand-checked trace on one 8-GPU node, budget 20 s, cloud delay 30 s:
// job 0 (8 GPUs, 100 s) runs on the node from 0; job 1 (8 GPUs, 50 s,
// submitted at 10) expires at 30, leaves for the cloud then, starts there
// at 60 and ends at 110: wait 50 s = B + delay, cost 8 GPUs × 50 s at 1
// per GPU-hour (the delay unbilled); job 2 (4 GPUs, 40 s, at 100) starts
// on the freed node at once. With delay 0 job 1 starts at 30, as the
// method has it.
func TestBurstProvisionDelay(t *testing.T) {
	js := []tj{{0, 100, 8}, {10, 50, 8}, {100, 40, 4}}
	for _, tc := range []struct {
		delay        int64
		start1, end1 int64
	}{{30, 60, 110}, {0, 30, 80}} {
		res, log := runBurstDelay(t, tc.delay, js, "constant:20s")
		r := res.Jobs
		assert.Equal(t, []int64{0, tc.start1 * Second, 100 * Second}, []int64{r[0].Start, r[1].Start, r[2].Start}, "delay %d", tc.delay)
		assert.Equal(t, []string{"onprem", "cloud", "onprem"}, []string{r[0].Where, r[1].Where, r[2].Where})
		assert.Equal(t, tc.end1*Second, r[1].End)
		w, _ := r[1].Wait()
		assert.Equal(t, (20+tc.delay)*Second, w)
		assert.InDelta(t, 8*50.0/3600, r[1].CloudCost, 1e-12)
		assert.InDelta(t, 8*50.0/3600, res.Summary.CloudCost, 1e-12)
		for _, e := range log {
			if e.Kind == EventCloud {
				assert.Equal(t, 30*Second, e.At, "it leaves the queue at its expiry")
			}
		}
	}
}

// Star-Wait's stint starts after the delay too: the job comes back at
// e + delay + L.
func TestBurstProvisionDelayStarWait(t *testing.T) {
	// one node busy for 1000 s; job 1 (8 GPUs, 600 s) expires at once
	// (Star-Wait's budget is 0), provisions 30 s, runs its stint of 60 s
	// and is back at 10 + 30 + 60 = 100.
	_, log := runBurstDelay(t, 30, []tj{{0, 1000, 8}, {10, 600, 8}}, "star:0:60s:1")
	back := int64(-1)
	for _, e := range log {
		if e.Kind == EventReturn && e.Job == 1 {
			back = e.At
		}
	}
	assert.Equal(t, 100*Second, back)
}
