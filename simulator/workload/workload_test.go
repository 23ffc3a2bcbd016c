package workload

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/traces"
	"petite/traces/samples"
)

func TestJob(t *testing.T) {
	gpu := func(n int, milli int64, models ...string) traces.Task {
		return traces.Task{Count: 1, GPUs: n, GPUMilli: milli, GPUModels: models, CPUMilli: 4000, MemoryMiB: 8192}
	}
	tests := []struct {
		name string
		in   traces.Job
		want []scheduler.Job
		err  string
	}{
		{"one shared-GPU pod, openb LS is a service", traces.Job{ID: "p", Submit: 5, Start: 6, Duration: traces.NoTime, QoS: "LS", Tasks: []traces.Task{gpu(1, 460, "T4")}},
			[]scheduler.Job{{ID: "p", Kind: scheduler.Inference, Tenant: DefaultTenant, Count: 1, Submitted: 5,
				Task: scheduler.Task{GPUs: 1, GPUMilli: 460, Models: []string{"T4"}, CPUMilli: 4000, MemoryMiB: 8192}}}, ""},
		{"a gang keeps its size, tenant, priority and walltime", traces.Job{ID: "g", Tenant: "t1", Priority: 3, Submit: 0, Duration: 3600, Kind: traces.KindTraining,
			Tasks: []traces.Task{{Count: 4, GPUs: 8, GPUMilli: 1000}}},
			[]scheduler.Job{{ID: "g", Tenant: "t1", Priority: 3, Count: 4, Walltime: 3600, Task: scheduler.Task{GPUs: 8, GPUMilli: 1000}}}, ""},
		{"two groups are two jobs named by role or index", traces.Job{ID: "pai", Submit: traces.NoTime, Kind: traces.KindInference,
			Tasks: []traces.Task{{Name: "worker", Count: 2, GPUs: 1, GPUMilli: 1000}, {Count: 1, CPUMilli: 500}}},
			[]scheduler.Job{
				{ID: "pai/worker", Kind: scheduler.Inference, Tenant: DefaultTenant, Count: 2, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}},
				{ID: "pai/1", Kind: scheduler.Inference, Tenant: DefaultTenant, Count: 1, Task: scheduler.Task{CPUMilli: 500}},
			}, ""},
		{"a CPU-only task carries no GPU share or models", traces.Job{ID: "c", Tasks: []traces.Task{{Count: 1, GPUModels: []string{"V100"}, CPUMilli: 1}}},
			[]scheduler.Job{{ID: "c", Tenant: DefaultTenant, Count: 1, Task: scheduler.Task{CPUMilli: 1}}}, ""},
		{"no tasks, no jobs", traces.Job{ID: "x"}, []scheduler.Job{}, ""},
		{"a share of several GPUs takes them whole", traces.Job{ID: "pai", Tasks: []traces.Task{gpu(2, 750)}},
			[]scheduler.Job{{ID: "pai", Tenant: DefaultTenant, Count: 1, Task: scheduler.Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 4000, MemoryMiB: 8192}}}, ""},
		{"more GPUs than a node holds is refused", traces.Job{ID: "wide", Tasks: []traces.Task{gpu(65, 1000)}}, nil, "workload: job wide: field task.gpus"},
		{"a huge gang is refused", traces.Job{ID: "big", Tasks: []traces.Task{{Count: 1 << 20, GPUs: 1, GPUMilli: 1000}}}, nil, "workload: job big:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Job(&tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestJobsOrderAndNoDemand(t *testing.T) {
	in := []traces.Job{
		{ID: "late", Submit: 10, Tasks: []traces.Task{{Count: 1, CPUMilli: 1}}},
		{ID: "none", Submit: 1},
		{ID: "wide", Submit: 1, Tasks: []traces.Task{{Count: 1, GPUs: 100, GPUMilli: 1000}}},
		{ID: "early-a", Submit: 2, Tasks: []traces.Task{{Count: 1, CPUMilli: 1}}},
		{ID: "early-b", Submit: 2, Tasks: []traces.Task{{Count: 1, CPUMilli: 1}}},
	}
	jobs, dropped := Jobs(in)
	assert.Equal(t, Dropped{NoDemand: 1, Invalid: 1, Examples: []string{
		"job none: no tasks recorded",
		"workload: job wide: field task.gpus: want 0..64, got 100",
	}}, dropped)
	assert.Equal(t, 2, dropped.Total())
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	assert.Equal(t, []string{"early-a", "early-b", "late"}, ids, "by submission, file order among ties")
}

// The embedded openb default workload, read through the traces package,
// gives one job per pod with the pod's demand.
func TestJobsOpenbDefault(t *testing.T) {
	r, err := traces.NewReader(bytes.NewReader(samples.OpenbDefaultPods()), samples.OpenbDefaultPodsFile, traces.Options{Strict: true})
	require.NoError(t, err)
	var src []traces.Job
	for j, err := range r.All() {
		require.NoError(t, err)
		src = append(src, j)
	}
	pods, err := traces.ReadOpenbPods(bytes.NewReader(samples.OpenbDefaultPods()), samples.OpenbDefaultPodsFile)
	require.NoError(t, err)
	jobs, dropped := Jobs(src)
	assert.Zero(t, dropped.Total())
	require.Len(t, jobs, len(pods))
	byID := map[string]scheduler.Job{}
	for _, j := range jobs {
		byID[j.ID] = j
	}
	for _, p := range pods {
		j, ok := byID[p.Name]
		require.True(t, ok, p.Name)
		assert.Equal(t, p.NumGPU, j.Task.GPUs, p.Name)
		assert.Equal(t, p.CPUMilli, j.Task.CPUMilli, p.Name)
		assert.Equal(t, p.Creation, j.Submitted, p.Name)
	}
}

func TestFleet(t *testing.T) {
	pool := DefaultPool()
	tests := []struct {
		name string
		in   []traces.Machine
		err  string
	}{
		{"duplicate name", []traces.Machine{{Name: "a", GPUs: 1}, {Name: "a"}}, "machine 2 (a): field name: repeats machine 1"},
		{"too many GPUs", []traces.Machine{{Name: "a", GPUs: 65}}, "machine 1 (a): field gpus: want 0..64, got 65"},
		{"negative CPU", []traces.Machine{{Name: "a", CPUMilli: -1}}, "field cpu_milli"},
		{"no name", []traces.Machine{{GPUs: 1}}, "machine 1: field name"},
		{"empty", nil, "no machines"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Fleet(tc.in, pool)
			require.ErrorContains(t, err, tc.err)
		})
	}

	pools, nodes, err := Fleet([]traces.Machine{
		{Name: "n1", GPUs: 2, GPUModel: "V100", GPUMemMiB: 16384, CPUMilli: 8000, MemoryMiB: 1024},
		{Name: "n2", GPUs: 4}, // Philly: GPUs only
	}, pool)
	require.NoError(t, err)
	assert.Equal(t, []scheduler.Pool{pool}, pools)
	require.Len(t, nodes, 2)
	assert.Equal(t, scheduler.Node{Name: "n1", Pool: "default", CPUMilli: 8000, MemoryMiB: 1024, GPUs: []scheduler.GPU{
		{Model: "V100", MemoryMiB: 16384, MilliCap: 1000}, {Model: "V100", MemoryMiB: 16384, MilliCap: 1000}}}, nodes[0])
	assert.Equal(t, int64(scheduler.MaxNodeCPUMilli), nodes[1].CPUMilli, "unknown CPU does not limit")
	assert.Equal(t, int64(scheduler.MaxNodeMemoryMiB), nodes[1].MemoryMiB)
	assert.Equal(t, UnknownModel, nodes[1].GPUs[0].Model)
	_, err = scheduler.NewCluster(pools, nodes)
	require.NoError(t, err, "the core accepts the fleet")
}

// TestAppendJobReusesTheBuffer: AppendJob appends after what out holds,
// into its room, and an error returns out as it came.
func TestAppendJobReusesTheBuffer(t *testing.T) {
	buf := make([]scheduler.Job, 1, 8)
	buf[0].ID = "kept"
	pai := traces.Job{ID: "pai", Tasks: []traces.Task{{Name: "worker", Count: 2, GPUs: 1, GPUMilli: 1000}, {Count: 1, CPUMilli: 500}}}
	out, err := AppendJob(buf, &pai)
	require.NoError(t, err)
	require.Len(t, out, 3)
	assert.Same(t, &buf[0], &out[0], "appended in the buffer's room")
	assert.Equal(t, []string{"kept", "pai/worker", "pai/1"}, []string{out[0].ID, out[1].ID, out[2].ID})

	bad := traces.Job{ID: "bad", Tasks: []traces.Task{{Count: 1, CPUMilli: 1}, {Count: 1, GPUs: 65, GPUMilli: 1000}}}
	out, err = AppendJob(out[:1], &bad)
	require.ErrorContains(t, err, "workload: job bad/1: field task.gpus")
	require.Len(t, out, 1)
	assert.Equal(t, "kept", out[0].ID)
	assert.Empty(t, out[:2][1].ID, "the refused job's first group is not left behind")
}
