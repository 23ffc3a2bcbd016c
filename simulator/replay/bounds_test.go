package replay

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpansBounded: the spans a run adds to its clock, and the workload's
// times, are bounded when read, so that no sum of them wraps past the
// clock's end into the past (where its event would come first); each is
// refused naming its field, and the bounds themselves run.
func TestSpansBounded(t *testing.T) {
	const huge = math.MaxInt64 - 5
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		want string // "" runs
	}{
		{"duration", func(c *Config) { c.Jobs[0].Duration = huge }, "field duration"},
		{"duration at the bound", func(c *Config) { c.Jobs[0].Duration = MaxSpan }, ""},
		{"submit", func(c *Config) { c.Jobs[1].Submit = huge }, "field submit"},
		{"submit before", func(c *Config) { c.Jobs[0].Submit = -huge }, "field submit"},
		{"submit at the bound", func(c *Config) { c.Jobs[1].Submit = MaxTime }, ""},
		{"checkpoint restart", func(c *Config) { c.Checkpoint = Checkpoint{Interval: Hour, Restart: huge} }, "checkpoint"},
		{"checkpoint interval", func(c *Config) { c.Checkpoint = Checkpoint{Interval: huge} }, "checkpoint"},
		{"pass every", func(c *Config) { c.PassEvery = huge }, "pass every"},
		{"pass every negative", func(c *Config) { c.PassEvery = -1 }, "pass every"},
		{"idle release", func(c *Config) { c.Scale = &Scale{IdleRelease: huge} }, "scale"},
		{"spot reclaim", func(c *Config) { c.Scale = &Scale{SpotReclaim: huge} }, "scale"},
		{"provision delay", func(c *Config) { c.Pools[1].ProvisionDelaySec = math.MaxInt64 / Second }, "provision_delay_sec"},
		{"provision delay negative", func(c *Config) { c.Pools[1].ProvisionDelaySec = -1 }, "provision_delay_sec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pools, nodes := burstFleet([]string{"a", "b"}, nil)
			cfg := Config{Pools: pools, Nodes: nodes, Jobs: jobsOf([]tj{{0, 60, 8}, {10, 60, 4}}), Policy: "best-fit"}
			tc.mod(&cfg)
			res, err := Run(context.Background(), cfg)
			if tc.want == "" {
				require.NoError(t, err)
				require.Equal(t, 2, res.Summary.Ended)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
