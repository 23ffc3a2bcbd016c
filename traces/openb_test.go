package traces

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces/samples"
)

func TestReadOpenbPodsEmbedded(t *testing.T) {
	data := samples.OpenbDefaultPods()
	pods, err := ReadOpenbPods(bytes.NewReader(data), samples.OpenbDefaultPodsFile)
	require.NoError(t, err)
	// One pod per line after the header, counted from the bytes.
	lines := bytes.Count(data, []byte("\n"))
	require.Equal(t, lines-1, len(pods))
	assert.Equal(t, OpenbPod{Name: "openb-pod-0000", CPUMilli: 12000, MemoryMiB: 16384, NumGPU: 1, GPUMilli: 1000,
		QoS: "LS", Phase: "Running", Creation: 0, Deletion: 12537496, Scheduled: 0, Line: 2}, pods[0])
	assert.Equal(t, OpenbPod{Name: "openb-pod-0001", CPUMilli: 6000, MemoryMiB: 12288, NumGPU: 1, GPUMilli: 460,
		QoS: "LS", Phase: "Running", Creation: 427061, Deletion: 12902960, Scheduled: 427061, Line: 3}, pods[1])
	for i, p := range pods {
		require.Equal(t, i, podIndex(t, p.Name), "pods come back in file order")
	}
}

func podIndex(t *testing.T, name string) int {
	t.Helper()
	var i int
	_, err := fmt.Sscanf(name, "openb-pod-%d", &i)
	require.NoError(t, err)
	return i
}

func TestReadOpenbPodsVariants(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []OpenbPod
	}{
		{
			name: "short header: no gpu_spec, qos, phase or times",
			in:   "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,12000,16384,1,460\n",
			want: []OpenbPod{{Name: "p0", CPUMilli: 12000, MemoryMiB: 16384, NumGPU: 1, GPUMilli: 460, Creation: -1, Deletion: -1, Scheduled: -1, Line: 2}},
		},
		{
			name: "columns in another order, pending pod without scheduled_time",
			in:   "num_gpu,name,memory_mib,cpu_milli,scheduled_time,creation_time\n2,p1,100,200,,5\n",
			want: []OpenbPod{{Name: "p1", CPUMilli: 200, MemoryMiB: 100, NumGPU: 2, Creation: 5, Deletion: -1, Scheduled: -1, Line: 2}},
		},
		{
			name: "gpu_spec alternatives kept verbatim, CRLF line ends",
			in:   "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\r\np2,1,2,1,1000,V100M16|V100M32|V100M32\r\n",
			want: []OpenbPod{{Name: "p2", CPUMilli: 1, MemoryMiB: 2, NumGPU: 1, GPUMilli: 1000, GPUSpec: "V100M16|V100M32|V100M32", Creation: -1, Deletion: -1, Scheduled: -1, Line: 2}},
		},
		{name: "header only", in: "name,cpu_milli,memory_mib,num_gpu\n", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadOpenbPods(strings.NewReader(tc.in), "x.csv")
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestReadOpenbErrors(t *testing.T) {
	hdr := "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
	good := "p,1,1,1,1000,,LS,Running,0,10,0\n"
	tests := []struct {
		name, in, want string
	}{
		{"bad cpu_milli on line 17", hdr + strings.Repeat(good, 15) + "p,abc,1,1,1000,,LS,Running,0,10,0\n",
			`openb_pod_list_x.csv:17: field cpu_milli: want a non-negative integer, got "abc"`},
		{"negative memory", hdr + "p,1,-5,1,1000,,LS,Running,0,10,0\n",
			`openb_pod_list_x.csv:2: field memory_mib: want a non-negative integer, got "-5"`},
		{"gpu_milli over 1000", hdr + "p,1,1,1,1500,,LS,Running,0,10,0\n",
			`openb_pod_list_x.csv:2: field gpu_milli: want an integer from 0 to 1000, got "1500"`},
		{"missing num_gpu value", hdr + "p,1,1,,1000\n",
			`openb_pod_list_x.csv:2: field num_gpu: want a non-negative integer, got ""`},
		{"bad time", hdr + "p,1,1,1,1000,,LS,Running,0,1e3,0\n",
			`openb_pod_list_x.csv:2: field deletion_time: want a non-negative integer, got "1e3"`},
		{"no num_gpu column", "name,cpu_milli,memory_mib\np,1,1\n",
			`openb_pod_list_x.csv:1: want a header with column num_gpu, got "name,cpu_milli,memory_mib"`},
		{"empty file", "", `openb_pod_list_x.csv:1: want a header row, got ""`},
		{"bare quote", hdr + "p\"x,1,1,1\n", `openb_pod_list_x.csv:2: not valid CSV: bare " in non-quoted-field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadOpenbPods(strings.NewReader(tc.in), "openb_pod_list_x.csv")
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.True(t, IsBadRecord(err))
		})
	}
}

func TestReadOpenbNodes(t *testing.T) {
	data := samples.OpenbGPUNodes()
	nodes, err := ReadOpenbNodes(bytes.NewReader(data), samples.OpenbGPUNodesFile)
	require.NoError(t, err)
	require.Equal(t, bytes.Count(data, []byte("\n"))-1, len(nodes))
	assert.Equal(t, OpenbNode{Name: "openb-node-0000", CPUMilli: 64000, MemoryMiB: 262144, GPU: 2, Model: "P100", Line: 2}, nodes[0])
	for _, n := range nodes {
		require.Positive(t, n.GPU, "the GPU node list has only GPU nodes")
		require.NotEmpty(t, n.Model)
	}

	cpuOnly, err := ReadOpenbNodes(strings.NewReader("sn,cpu_milli,memory_mib,gpu,model\nn0,96000,786432,0,\n"), "all.csv")
	require.NoError(t, err)
	assert.Equal(t, []OpenbNode{{Name: "n0", CPUMilli: 96000, MemoryMiB: 786432, Line: 2}}, cpuOnly)

	_, err = ReadOpenbNodes(strings.NewReader("sn,cpu_milli,memory_mib,gpu,model\nn0,96000,786432,4,\n"), "all.csv")
	assert.EqualError(t, err, `all.csv:2: field model: want a GPU model on a node with GPUs, got ""`)
}

func TestOpenbJobsLenientAndStrict(t *testing.T) {
	in := "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,scheduled_time,deletion_time\n" +
		"a,1,1,1,500,10,20,30\n" +
		"b,1,1,2,500,10,20,30\n" + // shared multi-GPU pod: not in the published data
		"c,1,1,1,1000,10,5,30\n" + // scheduled before created
		"d,x,1,1,1000,10,20,30\n" +
		"e,1,1,0,0,10,20,15\n" // deleted before scheduled
	r, err := NewReader(strings.NewReader(in), "pods.csv", Options{})
	require.NoError(t, err)
	var ids []string
	for j, err := range r.All() {
		require.NoError(t, err)
		ids = append(ids, j.ID)
	}
	assert.Equal(t, []string{"a"}, ids)
	p := r.Problems()
	assert.Equal(t, 4, p.Skipped)
	assert.Equal(t, []string{
		`pods.csv:3: field gpu_milli: want 1000 on a pod with several GPUs (only single-GPU pods share), got "500"`,
		`pods.csv:4: field scheduled_time: want a time not before creation_time 10, got "5"`,
		`pods.csv:5: field cpu_milli: want a non-negative integer, got "x"`,
		`pods.csv:6: field deletion_time: want a time not before scheduled_time 20, got "15"`,
	}, p.Examples)

	r, err = NewReader(strings.NewReader(in), "pods.csv", Options{Strict: true})
	require.NoError(t, err)
	_, err = r.Next()
	require.NoError(t, err)
	_, err = r.Next()
	assert.EqualError(t, err, p.Examples[0])
	_, again := r.Next()
	assert.Equal(t, err, again, "the error sticks")
}

// Line is the file line a row starts on: blank lines and quoted fields
// that span lines count, so it is not the row's index plus 2.
func TestOpenbRowLines(t *testing.T) {
	tests := []struct {
		name      string
		pods      string
		nodes     string
		wantLines []int
	}{
		{"one row per line", "name,cpu_milli,memory_mib,num_gpu\np0,1,1,0\np1,1,1,0\n",
			"sn,cpu_milli,memory_mib,gpu\nn0,1,1,0\nn1,1,1,0\n", []int{2, 3}},
		{"blank lines", "name,cpu_milli,memory_mib,num_gpu\n\np0,1,1,0\n\n\np1,1,1,0\n",
			"sn,cpu_milli,memory_mib,gpu\n\nn0,1,1,0\n\n\nn1,1,1,0\n", []int{3, 6}},
		{"quoted field over three lines, CRLF", "name,cpu_milli,memory_mib,num_gpu,qos\r\n\"p\n0\",1,1,0,\"a\r\nb\r\nc\"\r\np1,1,1,0,LS\r\n",
			"sn,cpu_milli,memory_mib,gpu,model\r\n\"n\n0\",1,1,0,\"\r\n\r\n\"\r\nn1,1,1,0,\r\n", []int{2, 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pods, err := ReadOpenbPods(strings.NewReader(tc.pods), "p.csv")
			require.NoError(t, err)
			var got []int
			for _, p := range pods {
				got = append(got, p.Line)
			}
			assert.Equal(t, tc.wantLines, got, "pods")
			nodes, err := ReadOpenbNodes(strings.NewReader(tc.nodes), "n.csv")
			require.NoError(t, err)
			got = nil
			for _, n := range nodes {
				got = append(got, n.Line)
			}
			assert.Equal(t, tc.wantLines, got, "nodes")
		})
	}
}
