package traces

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Helios GPU-number file counts virtual clusters, not machines, and its
// GPUs are the most any day had (with that day), not the last day's.
func TestReadFleetStatsHelios(t *testing.T) {
	in := "date,vcA,vcB,total\n2020-04-01,8,4,12\n2020-04-02,16,8,24\n2020-04-03,8,0,8\n"
	st, err := ReadFleetStats(strings.NewReader(in), "g.csv", FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FleetStats{
		Format: FormatHeliosGPUs, VirtualClusters: 2, GPUs: 24,
		Days: &HeliosDays{First: "2020-04-01", Last: "2020-04-03", Count: 3, Peak: "2020-04-02", LastGPUs: 8},
		ByVC: []VCCount{{VC: "vcA", MaxGPUs: 16}, {VC: "vcB", MaxGPUs: 8}},
	}, st)
	assert.Zero(t, st.Machines, "no machines")
}

// Machines of a list that gives GPU counts but no model (Philly) are of an
// unknown model, not machines without a model; machines without GPUs are
// counted apart.
func TestFleetStatsUnknownModel(t *testing.T) {
	f, err := os.Open("testdata/philly/cluster_machine_list")
	require.NoError(t, err)
	defer f.Close()
	st, err := ReadFleetStats(f, "cluster_machine_list", FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, FormatPhillyMachines, st.Format)
	assert.Equal(t, 9, st.Machines)
	require.Len(t, st.ByModel, 1)
	assert.True(t, st.ByModel[0].Unknown)
	assert.Equal(t, "unknown model", st.ByModel[0].Label())

	st = ComputeFleetStats(FormatPhillyMachines, []Machine{{Name: "a", GPUs: 4}, {Name: "b"}, {Name: "c", GPUs: 2, GPUModel: "K80"}})
	assert.Equal(t, []ModelCount{
		{Machines: 1}, {Unknown: true, Machines: 1, GPUs: 4}, {Model: "K80", Machines: 1, GPUs: 2},
	}, st.ByModel)
	assert.Equal(t, []string{"no GPUs", "unknown model", "K80"}, []string{st.ByModel[0].Label(), st.ByModel[1].Label(), st.ByModel[2].Label()})
}
