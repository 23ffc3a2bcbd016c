package report

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/simulator/replay"
)

// The cost plot draws each pool's bill (node bills and reservations, idle
// included), not its jobs' charges; a summary without bills falls back on
// the charges.
func TestCostPlotDrawsBills(t *testing.T) {
	billed := Run{Label: "a", Result: &replay.Result{Summary: replay.Summary{
		CostByPool: map[string]float64{"cl": 16}, BillByPool: map[string]float64{"cl": 21.5}}}}
	p, pools, err := costPlot([]Run{billed}, runStyles([]Run{billed}))
	require.NoError(t, err)
	assert.Equal(t, []string{"cl"}, pools)
	assert.InDelta(t, 21.5*1.3, p.Y.Max, 1e-9, "the bars reach the bill")

	old := Run{Label: "b", Result: &replay.Result{Summary: replay.Summary{CostByPool: map[string]float64{"cl": 16}}}}
	p, _, err = costPlot([]Run{old}, runStyles([]Run{old}))
	require.NoError(t, err)
	assert.InDelta(t, 16*1.3, p.Y.Max, 1e-9)
}
