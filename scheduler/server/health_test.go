package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckHealth: a health report names GPUs of the node, each once; the
// UUID is the record's and a flood of XIDs is cut to the latest.
func TestCheckHealth(t *testing.T) {
	rec := AgentRecord{Node: "n", Devices: []string{"GPU-a", "GPU-b"}}
	many := make([]uint64, 40)
	for i := range many {
		many[i] = uint64(i)
	}
	for _, tt := range []struct {
		name string
		in   []GPUHealth
		want []GPUHealth
		err  string
	}{
		{"none", nil, nil, ""},
		{"sorted, UUID from the record", []GPUHealth{{GPU: 1, UUID: "GPU-forged", XIDs: []uint64{79}}, {GPU: 0}},
			[]GPUHealth{{GPU: 0, UUID: "GPU-a"}, {GPU: 1, UUID: "GPU-b", XIDs: []uint64{79}}}, ""},
		{"xids capped", []GPUHealth{{GPU: 0, XIDs: many}}, []GPUHealth{{GPU: 0, UUID: "GPU-a", XIDs: many[8:]}}, ""},
		{"no such GPU", []GPUHealth{{GPU: 2}}, nil, "unhealthy[0].gpu: 2: the node has 2 devices"},
		{"negative", []GPUHealth{{GPU: -1}}, nil, "unhealthy[0].gpu: -1"},
		{"twice", []GPUHealth{{GPU: 1}, {GPU: 1}}, nil, "unhealthy[1].gpu: 1 named twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkHealth(rec, tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.True(t, sameHealth(got, tt.want))
		})
	}
}
