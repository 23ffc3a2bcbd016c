package nvml

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

func TestModelName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memMiB int64
		want   string
	}{
		{"NVIDIA H100 80GB HBM3", 81559, "H100"},
		{"NVIDIA H100 PCIe", 81559, "H100"},
		{"NVIDIA H200 141GB HBM3e", 143771, "H200"},
		{"NVIDIA B200 180GB HBM3e", 184320, "B200"},
		{"NVIDIA A100-SXM4-40GB", 40960, "A100"},
		{"NVIDIA A100 80GB PCIe", 81920, "A100"},
		{"Mock NVIDIA A100-SXM4-40GB", 40960, "A100"},
		{"NVIDIA A10", 23028, "A10"},
		{"Tesla T4", 15360, "T4"},
		{"Tesla V100-SXM2-16GB", 16160, "V100"},
		{"Tesla V100-SXM2-32GB", 32510, "V100M32"},
		{"NVIDIA GeForce RTX 4090", 24564, "RTX4090"},
		{"NVIDIA RTX A6000", 49140, "RTXA6000"},
		{"NVIDIA L40S", 46068, "L40S"},
		{"NVIDIA", 0, "NVIDIA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ModelName(tc.name, tc.memMiB))
		})
	}
}

func TestMIGProfileName(t *testing.T) {
	for _, tc := range []struct {
		desc              string
		gi, ci            int
		memMiB, gpuMemMiB int64
		suffix, want      string
	}{
		// Real A100 40GB figures: the instance memory is under the round GB.
		{"A100 1g", 1, 1, 4864, 40536, "", "1g.5gb"},
		{"A100 3g", 3, 3, 19968, 40536, "", "3g.20gb"},
		{"A100 7g", 7, 7, 40192, 40536, "", "7g.40gb"},
		{"H100 1g", 1, 1, 9856, 81559, "", "1g.10gb"},
		{"H100 1g+me", 1, 1, 9856, 81559, "+me", "1g.10gb+me"},
		{"H100 3g", 3, 3, 40192, 81559, "", "3g.40gb"},
		// An eighth of 141 GB is 17.6 GB; NVIDIA names it 18gb.
		{"H200 1g", 1, 1, 18432, 144384, "", "1g.18gb"},
		{"H200 3g", 3, 3, 72704, 144384, "", "3g.71gb"},
		{"B200 1g", 1, 1, 23552, 184320, "", "1g.23gb"},
		{"compute instance", 3, 1, 40192, 81559, "", "1c.3g.40gb"},
		{"no GPU memory known", 2, 2, 20480, 0, "", "2g.20gb"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			assert.Equal(t, tc.want, migProfileName(tc.gi, tc.ci, tc.memMiB, tc.gpuMemMiB, tc.suffix))
		})
	}
}

func TestIslands(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		n     int
		peers [][]int
		want  [][]int
		of    []int
	}{
		{"none", 0, nil, nil, []int{}},
		{"no NVLink", 3, make([][]int, 3), [][]int{{0}, {1}, {2}}, []int{0, 1, 2}},
		{"all", 3, [][]int{{1, 2}, {0, 2}, {0, 1}}, [][]int{{0, 1, 2}}, []int{0, 0, 0}},
		// A chain is one island even though 0 and 3 are not peers.
		{"chain", 4, [][]int{{1}, {2}, {3}, nil}, [][]int{{0, 1, 2, 3}}, []int{0, 0, 0, 0}},
		{"interleaved pairs", 4, [][]int{{2}, {3}, {0}, {1}}, [][]int{{0, 2}, {1, 3}}, []int{0, 1, 0, 1}},
		{"peer out of range", 2, [][]int{{5, -1}, nil}, [][]int{{0}, {1}}, []int{0, 1}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, of := islands(tc.n, tc.peers)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.of, of)
		})
	}
}

func TestHealthOf(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		known bool
		xids  []uint64
		want  HealthStatus
	}{
		{"cannot report", false, nil, HealthUnknown},
		{"cannot report, even with XIDs", false, []uint64{79}, HealthUnknown},
		{"quiet", true, nil, Healthy},
		{"application faults only", true, []uint64{13, 31, 43, 45, 68, 109}, Healthy},
		{"fallen off the bus", true, []uint64{13, 79}, Unhealthy},
		{"double-bit ECC", true, []uint64{48}, Unhealthy},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := healthOf(tc.known, tc.xids)
			assert.Equal(t, tc.want, h.Status)
			assert.Equal(t, tc.xids, h.XIDs)
		})
	}
}

// a100Inventory is a node of four 80 GB A100s in two NVLink islands, GPU 1
// partitioned, GPU 2 in MIG mode without instances and GPU 3 unhealthy.
func a100Inventory() *Inventory {
	ok := Health{Status: Healthy}
	return &Inventory{
		Driver: "550.54.15", CUDA: "12.4",
		Islands: [][]int{{0, 1}, {2, 3}},
		GPUs: []GPU{
			{Index: 0, UUID: "GPU-0", Model: "A100", MemoryMiB: 81920, Island: 0, Health: ok},
			{Index: 1, UUID: "GPU-1", Model: "A100", MemoryMiB: 81920, Island: 0, Health: ok,
				MIG: MIGMode{Capable: true, Enabled: true, Pending: true},
				Instances: []MIGInstance{
					{UUID: "MIG-1a", Profile: "3g.40gb", Slices: 3, MemoryMiB: 40192},
					{UUID: "MIG-1b", Profile: "1c.2g.20gb", Slices: 1, MemoryMiB: 19968},
				}},
			{Index: 2, UUID: "GPU-2", Model: "A100", MemoryMiB: 81920, Island: 1, Health: ok,
				MIG: MIGMode{Capable: true, Enabled: true}},
			{Index: 3, UUID: "GPU-3", Model: "A100", MemoryMiB: 81920, Island: 1,
				Health: Health{Status: Unhealthy, XIDs: []uint64{79}}},
		},
	}
}

func TestRegister(t *testing.T) {
	spec := NodeSpec{Name: "n1", Pool: "p", Rack: "r1", CPUMilli: 64000, MemoryMiB: 1 << 20, Labels: map[string]string{"zone": "a"}}
	reg, err := a100Inventory().Register(spec)
	require.NoError(t, err)
	assert.Equal(t, scheduler.Node{
		Name: "n1", Pool: "p", Rack: "r1", CPUMilli: 64000, MemoryMiB: 1 << 20, Labels: map[string]string{"zone": "a"},
		GPUs: []scheduler.GPU{
			{Model: "A100", MemoryMiB: 81920},
			{Model: "A100", MemoryMiB: 40192, MIG: "3g.40gb", MilliCap: 428},
			{Model: "A100", MemoryMiB: 19968, MIG: "1c.2g.20gb", MilliCap: 142},
		},
	}, reg.Node)
	assert.Equal(t, []string{"GPU-0", "MIG-1a", "MIG-1b"}, reg.Devices)
	assert.Equal(t, state.RegisterNode{Node: reg.Node}, reg.Command())
	for i := range reg.Node.GPUs {
		assert.Equal(t, i > 0, reg.Node.GPUs[i].Exclusive(), "device %d: a MIG instance is exclusive, a whole GPU is not", i)
	}

	t.Run("islands kept", func(t *testing.T) {
		inv := a100Inventory()
		inv.GPUs[3].Health.Status = Healthy
		reg, err := inv.Register(spec)
		require.NoError(t, err)
		require.Len(t, reg.Node.GPUs, 4)
		assert.Equal(t, 1, reg.Node.GPUs[3].Island)
		assert.Equal(t, "GPU-3", reg.Devices[3])
	})
	t.Run("one model a node", func(t *testing.T) {
		inv := a100Inventory()
		inv.GPUs[2].Model = "H100"
		_, err := inv.Register(spec)
		require.EqualError(t, err, "node n1: GPU 0 is a A100, GPU 2 a H100; a node has one GPU model")
	})
	t.Run("bad slices", func(t *testing.T) {
		inv := a100Inventory()
		inv.GPUs[1].Instances[0].Slices = 0
		_, err := inv.Register(spec)
		require.EqualError(t, err, "node n1: GPU 1: MIG instance MIG-1a: 0 compute slices, want 1..7")
	})
	t.Run("too many devices", func(t *testing.T) {
		inv := &Inventory{}
		for i := range 10 {
			g := GPU{Index: i, Model: "A100", MIG: MIGMode{Enabled: true}}
			for range 7 {
				g.Instances = append(g.Instances, MIGInstance{UUID: "MIG-x", Profile: "1g.10gb", Slices: 1})
			}
			inv.GPUs = append(inv.GPUs, g)
		}
		_, err := inv.Register(spec)
		require.EqualError(t, err, "node n1: 70 GPU devices, the scheduler takes at most 64 per node")
	})
}

// A registered inventory is a node the state machine takes and places work
// on: a whole-GPU task on the whole GPU, a share on a MIG instance.
func TestRegisteredNodeTakesTasks(t *testing.T) {
	reg, err := a100Inventory().Register(NodeSpec{Name: "n1", CPUMilli: 64000, MemoryMiB: 1 << 20})
	require.NoError(t, err)
	m := state.New()
	_, err = m.Apply(reg.Command())
	require.NoError(t, err)
	for _, j := range []scheduler.Job{
		{ID: "whole", Kind: scheduler.Training, Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, Models: []string{"A100"}, CPUMilli: 1000}},
		{ID: "share", Kind: scheduler.Inference, Count: 2, Task: scheduler.Task{GPUs: 1, GPUMilli: 100, CPUMilli: 1000}},
	} {
		_, err := m.Apply(state.Submit{Job: j, At: 1})
		require.NoError(t, err)
	}
	pol, err := m.Cluster().NewPolicy("best-fit", scheduler.Options{})
	require.NoError(t, err)
	plan, err := m.Plan(scheduler.Pass{Now: 1, Policy: pol, Rng: rand.New(rand.NewPCG(1, 1))})
	require.NoError(t, err)
	res, err := m.Apply(state.PlanCommand(plan, 1))
	require.NoError(t, err)
	assert.Equal(t, []string{"share", "whole"}, res.Started)
	devices := map[string][]string{}
	for _, jp := range plan.Place {
		for _, tp := range jp.Tasks {
			for _, g := range tp.GPUs {
				devices[jp.Job] = append(devices[jp.Job], reg.Devices[g])
			}
		}
	}
	assert.Equal(t, []string{"GPU-0"}, devices["whole"])
	assert.ElementsMatch(t, []string{"MIG-1a", "MIG-1b"}, devices["share"], "each replica takes a MIG instance whole")
}
