package state

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// A node without a pool that the machine refuses leaves no implicit
// "default" pool behind, whether or not the fleet has pools of its own.
// Found by FuzzDecode: {"v":1,"type":"register_node","node":{"name":"00","gpus":[{}]}}.
func TestRefusedNodeLeavesNoPool(t *testing.T) {
	for name, pools := range map[string][]scheduler.Pool{
		"no pools":           nil,
		"pools":              {{Name: "p", Region: "eu"}},
		"a default pool too": {{Name: "p"}, {Name: "default"}},
	} {
		t.Run(name, func(t *testing.T) {
			m := New()
			for _, p := range pools {
				_, err := m.Apply(RegisterPool{Pool: p})
				require.NoError(t, err)
			}
			var before, after bytes.Buffer
			require.NoError(t, m.Snapshot(&before))
			_, err := m.Apply(RegisterNode{Node: scheduler.Node{Name: "n", GPUs: []scheduler.GPU{{}}}})
			require.ErrorContains(t, err, "want a model name")
			require.NoError(t, m.Snapshot(&after))
			assert.Equal(t, before.String(), after.String(), "a refused node changes nothing")
		})
	}
}
