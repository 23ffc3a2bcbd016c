package frag

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Errors name the file line a bad row starts on, counting blank lines and
// quoted fields that span lines, not its index among the rows.
func TestWorkloadAndFleetErrorLines(t *testing.T) {
	tests := []struct {
		name, file, data string
		load             func(path string) error
		want             string
	}{
		{
			name: "pod after blank lines", file: "openb_pod_list_x.csv",
			data: "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\np1,1000,10,1,500\n\n\np2,1000,10,2,500\n",
			load: func(p string) error { _, err := LoadWorkload(p); return err },
			want: "openb_pod_list_x.csv:6: pod p2: field gpu_milli",
		},
		{
			name: "pod after a quoted field spanning lines", file: "openb_pod_list_y.csv",
			data: "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np1,1000,10,1,500,\"V100\nT4\"\np2,1000,10,2,500,\n",
			load: func(p string) error { _, err := LoadWorkload(p); return err },
			want: "openb_pod_list_y.csv:4: pod p2: field gpu_milli",
		},
		{
			name: "node after blank lines", file: "nodes.csv",
			data: "sn,cpu_milli,memory_mib,gpu,model\n\nn0,1000,10,2,T4\n\nn1,1000,10,200,T4\n",
			load: func(p string) error { _, err := LoadFleet(p); return err },
			want: "nodes.csv:5: node n1: field gpu",
		},
		{
			name: "repeated node names both lines", file: "nodes.csv",
			data: "sn,cpu_milli,memory_mib,gpu,model\n\nn0,1000,10,2,T4\n\n\nn0,1000,10,2,T4\n",
			load: func(p string) error { _, err := LoadFleet(p); return err },
			want: "nodes.csv:6: node n0: field sn: repeats the node of line 3",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			require.NoError(t, os.WriteFile(path, []byte(tc.data), 0o644))
			err := tc.load(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), filepath.Dir(path)+string(filepath.Separator)+tc.want)
		})
	}
}
