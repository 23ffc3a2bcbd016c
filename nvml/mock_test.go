//go:build cgo

package nvml

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/state"
)

// mockWant is what each mock DGX must read as, and the MIG profiles
// NVIDIA's documentation lists for its GPU.
var mockWant = []struct {
	mock, model     string
	memMiB          int64
	driver, cuda    string
	profiles        []string
	layout          []string // a full partition of one GPU
	layoutMemMiB    []int64
	layoutMilli     []int32
	tooManyOfLayout string // a profile the GPU holds fewer of than 7
}{
	{"dgxa100", "A100", 40960, "550.54.15", "12.4",
		[]string{"1g.10gb", "1g.5gb", "1g.5gb+me", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"},
		[]string{"3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"}, []int64{19968, 9856, 4864, 4864}, []int32{428, 285, 142, 142}, "3g.20gb"},
	{"dgxa100-80gb", "A100", 81920, "550.54.15", "12.4",
		[]string{"1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"},
		[]string{"4g.40gb", "2g.20gb", "1g.10gb"}, []int64{40192, 19968, 9856}, []int32{571, 285, 142}, "4g.40gb"},
	{"dgxh100", "H100", 81920, "550.54.15", "12.4",
		[]string{"1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"},
		[]string{"3g.40gb", "2g.20gb", "2g.20gb"}, []int64{40960, 20480, 20480}, []int32{428, 285, 285}, "2g.20gb"},
	{"dgxh200", "H200", 144384, "550.54.15", "12.4",
		[]string{"1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"},
		[]string{"7g.141gb"}, []int64{144384}, []int32{1000}, "7g.141gb"},
	{"dgxb200", "B200", 184320, "560.28.03", "12.6",
		[]string{"1g.23gb", "1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb"},
		[]string{"1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb"}, []int64{23552, 46080, 46080, 92160}, []int32{142, 142, 285, 428}, "4g.90gb"},
}

func TestMocks(t *testing.T) {
	require.Len(t, mockWant, len(MockNames()), "every mock is tested")
	for _, w := range mockWant {
		t.Run(w.mock, func(t *testing.T) {
			m, err := OpenMock(w.mock, MockConfig{Node: "n1"})
			require.NoError(t, err)
			defer func() { require.NoError(t, m.Close()) }()
			inv, err := m.Inventory()
			require.NoError(t, err)
			assert.Equal(t, w.driver, inv.Driver)
			assert.Equal(t, w.cuda, inv.CUDA)
			require.Len(t, inv.GPUs, 8)
			assert.Equal(t, [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}, inv.Islands, "a DGX's GPUs share one NVSwitch fabric")
			uuids := map[string]bool{}
			for i, g := range inv.GPUs {
				assert.Equal(t, i, g.Index)
				assert.Equal(t, w.model, g.Model, g.Name)
				assert.Equal(t, w.memMiB, g.MemoryMiB)
				assert.True(t, strings.HasPrefix(g.UUID, "GPU-"), g.UUID)
				uuids[g.UUID] = true
				assert.Equal(t, MIGMode{Capable: true}, g.MIG)
				assert.Empty(t, g.Instances)
				assert.Len(t, g.Peers, 7)
				assert.NotContains(t, g.Peers, i, "a GPU is not its own peer")
				assert.Equal(t, Health{Status: Healthy}, g.Health)
			}
			assert.Len(t, uuids, 8, "UUIDs differ")

			srv := mockServers[w.mock]()
			offered, err := offeredProfiles(srv.Devices[0])
			require.NoError(t, err)
			assert.Equal(t, w.profiles, slices.Sorted(maps.Keys(offered)), "profile names as NVIDIA lists them")
		})
	}
}

func TestMockMIG(t *testing.T) {
	for _, w := range mockWant {
		t.Run(w.mock, func(t *testing.T) {
			m, err := OpenMock(w.mock, MockConfig{Node: "n1", MIG: map[int][]string{2: w.layout}})
			require.NoError(t, err)
			inv, err := m.Inventory()
			require.NoError(t, err)
			g := inv.GPUs[2]
			assert.Equal(t, MIGMode{Capable: true, Enabled: true, Pending: true}, g.MIG)
			require.Len(t, g.Instances, len(w.layout))
			for k, mi := range g.Instances {
				assert.Equal(t, w.layout[k], mi.Profile)
				assert.Equal(t, w.layoutMemMiB[k], mi.MemoryMiB)
				assert.Equal(t, k, mi.GPUInstance)
				assert.Zero(t, mi.ComputeInstance)
				assert.True(t, strings.HasPrefix(mi.UUID, "MIG-"), mi.UUID)
			}
			assert.Equal(t, MIGMode{Capable: true}, inv.GPUs[1].MIG, "only GPU 2 is partitioned")

			again, err := m.Inventory()
			require.NoError(t, err)
			assert.Equal(t, inv, again, "a second read finds the same")

			reg, err := inv.Register(NodeSpec{Name: "n1", CPUMilli: 1000, MemoryMiB: 1024})
			require.NoError(t, err)
			require.Len(t, reg.Node.GPUs, 7+len(w.layout))
			for k, mi := range g.Instances {
				d := reg.Node.GPUs[2+k]
				assert.Equal(t, scheduler.GPU{Model: w.model, MemoryMiB: w.layoutMemMiB[k], MIG: w.layout[k], MilliCap: w.layoutMilli[k]}, d)
				assert.True(t, d.Exclusive())
				assert.Equal(t, mi.UUID, reg.Devices[2+k])
			}
			assert.Equal(t, inv.GPUs[3].UUID, reg.Devices[2+len(w.layout)])
		})
	}
}

func TestMockMIGAll(t *testing.T) {
	m, err := OpenMock("dgxh100", MockConfig{MIGAll: []string{"7g.80gb"}, MIG: map[int][]string{0: {"1g.10gb", "1g.10gb"}}})
	require.NoError(t, err)
	inv, err := m.Inventory()
	require.NoError(t, err)
	var got []string
	for _, g := range inv.GPUs {
		var p []string
		for _, mi := range g.Instances {
			p = append(p, mi.Profile)
		}
		got = append(got, strings.Join(p, ","))
	}
	assert.Equal(t, []string{"1g.10gb,1g.10gb", "7g.80gb", "7g.80gb", "7g.80gb", "7g.80gb", "7g.80gb", "7g.80gb", "7g.80gb"}, got)
}

func TestMockIslands(t *testing.T) {
	for _, tc := range []struct {
		islands int
		want    [][]int
	}{
		{0, [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}},
		{1, [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}},
		{2, [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}}},
		{8, [][]int{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}},
	} {
		m, err := OpenMock("dgxa100", MockConfig{Islands: tc.islands, MIG: map[int][]string{5: {"3g.20gb"}}})
		require.NoError(t, err)
		inv, err := m.Inventory()
		require.NoError(t, err)
		assert.Equal(t, tc.want, inv.Islands, "islands %d", tc.islands)
		for isl, members := range tc.want {
			for _, g := range members {
				assert.Equal(t, isl, inv.GPUs[g].Island)
				assert.Len(t, inv.GPUs[g].Peers, len(members)-1)
			}
		}
		reg, err := inv.Register(NodeSpec{Name: "n"})
		require.NoError(t, err)
		assert.Equal(t, inv.GPUs[5].Island, reg.Node.GPUs[5].Island, "a MIG instance keeps its GPU's island")
	}
}

func TestMockUUIDs(t *testing.T) {
	read := func(node string) *Inventory {
		m, err := OpenMock("dgxh100", MockConfig{Node: node, MIG: map[int][]string{0: {"3g.40gb"}}})
		require.NoError(t, err)
		inv, err := m.Inventory()
		require.NoError(t, err)
		return inv
	}
	a, b, c := read("n1"), read("n1"), read("n2")
	assert.Equal(t, a, b, "a mock node keeps its UUIDs")
	assert.NotEqual(t, a.GPUs[0].UUID, c.GPUs[0].UUID, "nodes differ")
	assert.NotEqual(t, a.GPUs[0].Instances[0].UUID, c.GPUs[0].Instances[0].UUID, "MIG devices differ")
	assert.Regexp(t, `^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, a.GPUs[0].UUID)
	assert.Regexp(t, `^MIG-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, a.GPUs[0].Instances[0].UUID)
}

func TestMockXID(t *testing.T) {
	m, err := OpenMock("dgxb200", MockConfig{})
	require.NoError(t, err)
	require.NoError(t, m.InjectXID(3, 13))
	inv, err := m.Inventory()
	require.NoError(t, err)
	assert.Equal(t, Health{Status: Healthy, XIDs: []uint64{13}}, inv.GPUs[3].Health, "an application's fault leaves the GPU healthy")

	require.NoError(t, m.InjectXID(3, 79))
	require.NoError(t, m.InjectXID(5, 48))
	inv, err = m.Inventory()
	require.NoError(t, err)
	assert.Equal(t, Health{Status: Unhealthy, XIDs: []uint64{13, 79}}, inv.GPUs[3].Health)
	assert.Equal(t, Health{Status: Unhealthy, XIDs: []uint64{48}}, inv.GPUs[5].Health)
	assert.Equal(t, Health{Status: Healthy}, inv.GPUs[4].Health)

	reg, err := inv.Register(NodeSpec{Name: "n"})
	require.NoError(t, err)
	assert.Len(t, reg.Node.GPUs, 6, "unhealthy GPUs are not offered")
	assert.NotContains(t, reg.Devices, inv.GPUs[3].UUID)
	assert.NotContains(t, reg.Devices, inv.GPUs[5].UUID)

	for range MaxXIDs + 5 {
		require.NoError(t, m.InjectXID(0, 31))
	}
	require.NoError(t, m.InjectXID(0, 94))
	inv, err = m.Inventory()
	require.NoError(t, err)
	x := inv.GPUs[0].Health.XIDs
	require.Len(t, x, MaxXIDs, "a flood keeps a bounded number")
	assert.Equal(t, uint64(94), x[len(x)-1], "a flood keeps the latest")
	assert.Equal(t, Unhealthy, inv.GPUs[0].Health.Status)

	require.Error(t, m.InjectXID(8, 79))
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "closing twice")
	_, err = m.Inventory()
	require.ErrorIs(t, err, errClosed)
}

func TestMockErrors(t *testing.T) {
	for _, tc := range []struct {
		desc, mock string
		cfg        MockConfig
		want       string
	}{
		{"unknown mock", "dgx1", MockConfig{}, `nvml: unknown mock "dgx1" (known: dgxa100, dgxa100-80gb, dgxh100, dgxh200, dgxb200)`},
		{"islands not a divisor", "dgxh100", MockConfig{Islands: 3}, "nvml: mock dgxh100: islands: want a divisor of its 8 GPUs, got 3"},
		{"negative islands", "dgxh100", MockConfig{Islands: -1}, "nvml: mock islands: want 0 or more, got -1"},
		{"no such GPU", "dgxh100", MockConfig{MIG: map[int][]string{8: {"7g.80gb"}}}, "nvml: mock dgxh100: MIG for GPU 8: it has GPUs 0..7"},
		{"empty MIG", "dgxh100", MockConfig{MIG: map[int][]string{1: {}}}, "nvml: mock MIG for GPU 1: want at least one profile"},
		{"profile of another GPU", "dgxh100", MockConfig{MIG: map[int][]string{1: {"3g.20gb"}}},
			`nvml: mock dgxh100: GPU 1: MIG profile "3g.20gb": the NVIDIA H100 80GB HBM3 offers 1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb`},
		{"more than seven slices", "dgxh100", MockConfig{MIGAll: []string{"4g.40gb", "4g.40gb"}},
			`nvml: mock dgxh100: GPU 0: MIG profile "4g.40gb": the NVIDIA H100 80GB HBM3 holds at most 1 of it`},
		{"eight slices", "dgxa100", MockConfig{MIGAll: []string{"4g.20gb", "3g.20gb", "1g.5gb"}},
			"nvml: mock dgxa100: GPU 0: MIG profiles 4g.20gb,3g.20gb,1g.5gb: 8 compute slices, a GPU has 7"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := OpenMock(tc.mock, tc.cfg)
			require.EqualError(t, err, tc.want)
		})
	}
}

// A mock node registers in the state machine and takes a gang that fills
// its GPUs, and then a share that only a MIG instance can serve.
func TestMockRegistersAndTakesTasks(t *testing.T) {
	m, err := OpenMock("dgxh100", MockConfig{Node: "dgx-1", MIG: map[int][]string{7: {"3g.40gb", "3g.40gb"}}})
	require.NoError(t, err)
	inv, err := m.Inventory()
	require.NoError(t, err)
	reg, err := inv.Register(NodeSpec{Name: "dgx-1", Pool: "p", CPUMilli: 224000, MemoryMiB: 2 << 20})
	require.NoError(t, err)

	sm := state.New()
	for _, c := range []state.Command{
		state.RegisterPool{Pool: scheduler.Pool{Name: "p"}},
		reg.Command(),
		state.Submit{Job: scheduler.Job{ID: "gang", Kind: scheduler.Training, Count: 1,
			Task: scheduler.Task{GPUs: 7, GPUMilli: 1000, Models: []string{"H100"}, CPUMilli: 1000}}},
		state.Submit{Job: scheduler.Job{ID: "small", Kind: scheduler.Inference, Count: 2,
			Task: scheduler.Task{GPUs: 1, GPUMilli: 400, Models: []string{"H100"}, CPUMilli: 1000}}},
	} {
		_, err := sm.Apply(c)
		require.NoError(t, err)
	}
	pol, err := sm.Cluster().NewPolicy("topology", scheduler.Options{})
	require.NoError(t, err)
	plan, err := sm.Plan(scheduler.Pass{Policy: pol, Rng: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, err)
	res, err := sm.Apply(state.PlanCommand(plan, 0))
	require.NoError(t, err)
	assert.Equal(t, []string{"gang", "small"}, res.Started)

	given := map[string][]string{}
	for _, jp := range plan.Place {
		for _, tp := range jp.Tasks {
			for _, g := range tp.GPUs {
				given[jp.Job] = append(given[jp.Job], reg.Devices[g])
			}
		}
	}
	var whole []string
	for _, g := range inv.GPUs[:7] {
		whole = append(whole, g.UUID)
	}
	assert.ElementsMatch(t, whole, given["gang"])
	assert.ElementsMatch(t, []string{inv.GPUs[7].Instances[0].UUID, inv.GPUs[7].Instances[1].UUID}, given["small"])
}

// Reads, XIDs arriving and a close may race: an agent reads on a timer
// while the driver delivers events.
func TestMockConcurrent(t *testing.T) {
	m, err := OpenMock("dgxa100", MockConfig{MIG: map[int][]string{0: {"3g.20gb", "3g.20gb"}}})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 8 * (MaxXIDs + 8) {
			assert.NoError(t, m.InjectXID(i%8, 79))
		}
	}()
	for range 50 {
		inv, err := m.Inventory()
		require.NoError(t, err)
		require.Len(t, inv.GPUs[0].Instances, 2)
	}
	<-done
	inv, err := m.Inventory()
	require.NoError(t, err)
	for _, g := range inv.GPUs {
		assert.Len(t, g.Health.XIDs, MaxXIDs, "GPU %d: every XID was collected, the latest kept", g.Index)
	}
	require.NoError(t, m.Close())
}

// BenchmarkInventory reads a mock DGX H100 with every GPU partitioned:
// the cost of one agent read beside what NVML itself takes.
func BenchmarkInventory(b *testing.B) {
	m, err := OpenMock("dgxh100", MockConfig{MIGAll: []string{"3g.40gb", "2g.20gb", "2g.20gb"}})
	require.NoError(b, err)
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Inventory(); err != nil {
			b.Fatal(err)
		}
	}
}
