package traces

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The pod rules are one check: the job reader (trace stats, place) skips a
// pod that breaks them, and OpenbPod.Validate, for rows read raw by
// ReadOpenbPods or built by hand, refuses it in the same words.
func TestOpenbPodRules(t *testing.T) {
	hdr := "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time,scheduled_time\n"
	tests := []struct{ name, row, want string }{
		{"scheduled before creation", "p2,1,1,1,1000,100,300,50\n", `field scheduled_time: want a time not before creation_time 100, got "50"`},
		{"deleted before scheduled", "p2,1,1,1,1000,100,120,150\n", `field deletion_time: want a time not before scheduled_time 150, got "120"`},
		{"shared multi-GPU pod", "p2,1,1,2,500,1,2,1\n", `field gpu_milli: want 1000 on a pod with several GPUs (only single-GPU pods share), got "500"`},
		{"GPU share without GPUs", "p2,1,1,0,500,1,2,1\n", `field gpu_milli: want 0 on a pod with no GPUs, got "500"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := hdr + "p1,1,1,1,1000,0,10,5\n" + tc.row + "p3,1,1,1,1000,0,10,5\n"
			r, err := NewReader(strings.NewReader(in), "pods.csv", Options{})
			require.NoError(t, err)
			jobs := readAll(t, r)
			assert.Len(t, jobs, 2, "the job reader skips it")
			require.Len(t, r.Problems().Examples, 1)
			assert.Equal(t, "pods.csv:3: "+tc.want, r.Problems().Examples[0])

			pods, err := ReadOpenbPods(strings.NewReader(in), "pods.csv")
			require.NoError(t, err, "the raw reader returns rows as written")
			require.Len(t, pods, 3)
			assert.NoError(t, pods[0].Validate())
			assert.EqualError(t, pods[1].Validate(), "pod p2: "+tc.want)
		})
	}
}
