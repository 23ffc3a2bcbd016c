package replay

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// A trace's jobs carry no Preemptible flag: the rule decides which may be
// evicted. One 8-GPU node, a low-priority job of kind k running from 0, a
// high-priority one arriving at 300.
func TestVictimsRule(t *testing.T) {
	for _, c := range []struct {
		name        string
		victims     Victims
		kind        scheduler.JobKind
		preemptions int
	}{
		{"as given: no flag, no victim", VictimsAsGiven, scheduler.Training, 0},
		{"all: training", VictimsAll, scheduler.Training, 1},
		{"all: a service too", VictimsAll, scheduler.Inference, 1},
		{"training: training", VictimsTraining, scheduler.Training, 1},
		{"training: a service keeps its place", VictimsTraining, scheduler.Inference, 0},
		{"none", VictimsNone, scheduler.Training, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			pools, nodes := ownedFleet(1, 8)
			js := []Job{
				{Job: scheduler.Job{ID: "low", Kind: c.kind, Count: 1, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Duration: 1000 * Second},
				{Job: scheduler.Job{ID: "high", Kind: scheduler.Training, Count: 1, Priority: 5, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Submit: 300 * Second, Duration: 100 * Second},
			}
			res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Preempt: true, Victims: c.victims})
			require.NoError(t, err)
			assert.Equal(t, c.preemptions, res.Summary.Preemptions)
			assert.Equal(t, c.preemptions, res.Jobs[0].Preemptions)
			if c.preemptions > 0 {
				assert.Equal(t, 300*Second, res.Jobs[1].Start, "the high job starts on arrival")
			} else {
				assert.Equal(t, 1000*Second, res.Jobs[1].Start, "the high job waits for the low one")
			}
		})
	}
	// A job's own flag stands under VictimsAsGiven and is overridden by none.
	pools, nodes := ownedFleet(1, 8)
	js := []Job{
		{Job: scheduler.Job{ID: "low", Kind: scheduler.Training, Count: 1, Preemptible: true, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Duration: 1000 * Second},
		{Job: scheduler.Job{ID: "high", Kind: scheduler.Training, Count: 1, Priority: 5, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}, Submit: 300 * Second, Duration: 100 * Second},
	}
	for v, want := range map[Victims]int{VictimsAsGiven: 1, VictimsNone: 0} {
		res, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Preempt: true, Victims: v})
		require.NoError(t, err)
		assert.Equal(t, want, res.Summary.Preemptions, "victims %s", v)
	}
}

func TestParseVictims(t *testing.T) {
	for _, s := range []string{"all", "training", "none"} {
		v, err := ParseVictims(s)
		require.NoError(t, err)
		assert.Equal(t, s, v.String())
	}
	for _, s := range []string{"", "as-given", "All", "services"} {
		_, err := ParseVictims(s)
		assert.ErrorContains(t, err, "want all, training or none", s)
	}
}
