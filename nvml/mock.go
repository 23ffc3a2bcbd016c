//go:build cgo

package nvml

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxb200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// mockServers builds go-nvml's mock servers by name.
var mockServers = map[string]func() *server.Server{
	"dgxa100":      dgxa100.New,
	"dgxa100-80gb": func() *server.Server { return dgxa100.NewWithGPUs(gpus.Multiple(8, gpus.A100_SXM4_80GB)...) },
	"dgxh100":      dgxh100.New,
	"dgxh200":      dgxh200.New,
	"dgxb200":      dgxb200.New,
}

// Mock is a Source over one of go-nvml's mock DGX servers, read by the
// same code that reads a real driver. It fills in what the mock server
// leaves unset and petite reads (NVLink, MIG device handles, XID events),
// as a DGX has it: every GPU on one NVSwitch fabric unless
// MockConfig.Islands splits them.
type Mock struct {
	*session
	srv *server.Server
	ev  *mockEvents
}

// OpenMock opens the mock server called name (one of MockNames), with its
// GPUs partitioned as cfg asks.
func OpenMock(name string, cfg MockConfig) (*Mock, error) {
	build, ok := mockServers[name]
	if !ok {
		return nil, fmt.Errorf("nvml: unknown mock %q (known: %s)", name, strings.Join(MockNames(), ", "))
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	srv := build()
	n := len(srv.Devices)
	if cfg.Islands > n || (cfg.Islands > 0 && n%cfg.Islands != 0) {
		return nil, fmt.Errorf("nvml: mock %s: islands: want a divisor of its %d GPUs, got %d", name, n, cfg.Islands)
	}
	for i := range cfg.MIG {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("nvml: mock %s: MIG for GPU %d: it has GPUs 0..%d", name, i, n-1)
		}
	}
	ev := &mockEvents{registered: map[int][]*mockEventSet{}}
	per := n
	if cfg.Islands > 1 {
		per = n / cfg.Islands
	}
	srv.EventSetCreateFunc = ev.create
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.UUID = "GPU-" + mockUUID(name, cfg.Node, fmt.Sprint(i))
		completeDevice(dev, i/per, per, ev)
	}
	for i := range n {
		profiles, ok := cfg.MIG[i]
		if !ok {
			profiles = cfg.MIGAll
		}
		if len(profiles) == 0 {
			continue
		}
		if err := partition(srv.Devices[i], profiles); err != nil {
			return nil, fmt.Errorf("nvml: mock %s: GPU %d: %w", name, i, err)
		}
	}
	s, err := open(srv)
	if err != nil {
		return nil, fmt.Errorf("nvml: mock %s: %w", name, err)
	}
	return &Mock{session: s, srv: srv, ev: ev}, nil
}

// InjectXID delivers an XID error of GPU gpu to the event sets that watch
// it, as the driver does when the device faults.
func (m *Mock) InjectXID(gpu int, xid uint64) error {
	if gpu < 0 || gpu >= len(m.srv.Devices) {
		return fmt.Errorf("nvml: inject XID: no GPU %d", gpu)
	}
	m.ev.deliver(gpu, gonvml.EventData{Device: m.srv.Devices[gpu], EventType: gonvml.EventTypeXidCriticalError, EventData: xid})
	return nil
}

// mockUUID derives a stable UUID from the mock's name, the node and a
// device's place, so a mock node keeps its UUIDs across restarts (as a
// real one does) and the nodes of a mock fleet differ.
func mockUUID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// completeDevice sets what the mock device leaves unset: NVLink peers
// (the other GPUs of its island of size per), XID event registration and
// MIG device handles.
func completeDevice(d *server.Device, island, per int, ev *mockEvents) {
	d.GetP2PStatusFunc = func(other gonvml.Device, caps gonvml.GpuP2PCapsIndex) (gonvml.GpuP2PStatus, gonvml.Return) {
		o, ok := other.(*server.Device)
		if !ok || caps != gonvml.P2P_CAPS_INDEX_NVLINK || o == d || o.Index/per != island {
			return gonvml.P2P_STATUS_NOT_SUPPORTED, gonvml.SUCCESS
		}
		return gonvml.P2P_STATUS_OK, gonvml.SUCCESS
	}
	d.GetSupportedEventTypesFunc = func() (uint64, gonvml.Return) {
		return gonvml.EventTypeXidCriticalError | gonvml.EventTypeSingleBitEccError | gonvml.EventTypeDoubleBitEccError, gonvml.SUCCESS
	}
	d.RegisterEventsFunc = func(types uint64, set gonvml.EventSet) gonvml.Return {
		return ev.register(d.Index, types, set)
	}
	var migsMu sync.Mutex // the handles are made under the device's read lock
	migs := map[[2]uint32]*mock.Device{}
	d.GetMaxMigDeviceCountFunc = func() (int, gonvml.Return) { return 7, gonvml.SUCCESS }
	d.GetGpuInstanceByIdFunc = func(id int) (gonvml.GpuInstance, gonvml.Return) {
		d.RLock()
		defer d.RUnlock()
		for gi := range d.GpuInstances {
			if int(gi.Info.Id) == id {
				return gi, gonvml.SUCCESS
			}
		}
		return nil, gonvml.ERROR_NOT_FOUND
	}
	d.GetMigDeviceHandleByIndexFunc = func(index int) (gonvml.Device, gonvml.Return) {
		d.RLock()
		defer d.RUnlock()
		if d.MigMode != gonvml.DEVICE_MIG_ENABLE {
			return nil, gonvml.ERROR_INVALID_ARGUMENT
		}
		gis := slices.SortedFunc(maps.Keys(d.GpuInstances), func(a, b *server.GpuInstance) int { return cmp.Compare(a.Info.Id, b.Info.Id) })
		k := 0
		for _, gi := range gis {
			gi.RLock()
			cis := slices.SortedFunc(maps.Keys(gi.ComputeInstances), func(a, b *server.ComputeInstance) int { return cmp.Compare(a.Info.Id, b.Info.Id) })
			gi.RUnlock()
			for _, ci := range cis {
				if k == index {
					key := [2]uint32{gi.Info.Id, ci.Info.Id}
					migsMu.Lock()
					defer migsMu.Unlock()
					if migs[key] == nil {
						migs[key] = migDevice(d, gi, ci)
					}
					return migs[key], gonvml.SUCCESS
				}
				k++
			}
		}
		return nil, gonvml.ERROR_NOT_FOUND
	}
}

// migDevice is the MIG device of compute instance ci of GPU instance gi on
// GPU d, as NVML hands it out.
func migDevice(d *server.Device, gi *server.GpuInstance, ci *server.ComputeInstance) *mock.Device {
	var giProf gonvml.GpuInstanceProfileInfo
	var giEnum int
	for p, info := range gi.MIGProfiles.GpuInstanceProfiles {
		if info.Id == gi.Info.ProfileId {
			giProf, giEnum = info, p
		}
	}
	var ciProf gonvml.ComputeInstanceProfileInfo
	for _, info := range gi.MIGProfiles.ComputeInstanceProfiles[giEnum] {
		if info.Id == ci.Info.ProfileId {
			ciProf = info
		}
	}
	uuid := "MIG-" + mockUUID(d.UUID, fmt.Sprint(gi.Info.Id), fmt.Sprint(ci.Info.Id))
	md := &mock.Device{}
	md.GetUUIDFunc = func() (string, gonvml.Return) { return uuid, gonvml.SUCCESS }
	md.GetNameFunc = d.GetNameFunc
	md.IsMigDeviceHandleFunc = func() (bool, gonvml.Return) { return true, gonvml.SUCCESS }
	md.GetDeviceHandleFromMigDeviceHandleFunc = func() (gonvml.Device, gonvml.Return) { return d, gonvml.SUCCESS }
	md.GetGpuInstanceIdFunc = func() (int, gonvml.Return) { return int(gi.Info.Id), gonvml.SUCCESS }
	md.GetComputeInstanceIdFunc = func() (int, gonvml.Return) { return int(ci.Info.Id), gonvml.SUCCESS }
	md.GetMemoryInfoFunc = func() (gonvml.Memory, gonvml.Return) {
		return gonvml.Memory{Total: giProf.MemorySizeMB << 20, Free: giProf.MemorySizeMB << 20}, gonvml.SUCCESS
	}
	md.GetAttributesFunc = func() (gonvml.DeviceAttributes, gonvml.Return) {
		return gonvml.DeviceAttributes{
			MultiprocessorCount:       ciProf.MultiprocessorCount,
			SharedCopyEngineCount:     giProf.CopyEngineCount,
			SharedDecoderCount:        giProf.DecoderCount,
			SharedEncoderCount:        giProf.EncoderCount,
			SharedJpegCount:           giProf.JpegCount,
			SharedOfaCount:            giProf.OfaCount,
			GpuInstanceSliceCount:     giProf.SliceCount,
			ComputeInstanceSliceCount: ciProf.SliceCount,
			MemorySizeMB:              giProf.MemorySizeMB,
		}, gonvml.SUCCESS
	}
	return md
}

// ciProfileOf is the compute instance profile that spans a GPU instance of
// so many slices.
var ciProfileOf = map[uint32]int{
	1: gonvml.COMPUTE_INSTANCE_PROFILE_1_SLICE, 2: gonvml.COMPUTE_INSTANCE_PROFILE_2_SLICE,
	3: gonvml.COMPUTE_INSTANCE_PROFILE_3_SLICE, 4: gonvml.COMPUTE_INSTANCE_PROFILE_4_SLICE,
	6: gonvml.COMPUTE_INSTANCE_PROFILE_6_SLICE, 7: gonvml.COMPUTE_INSTANCE_PROFILE_7_SLICE,
	8: gonvml.COMPUTE_INSTANCE_PROFILE_8_SLICE,
}

// partition enables MIG on d and creates a GPU instance of each profile
// named, each with one compute instance spanning it, through the NVML
// calls an operator's tool makes. The mock server checks no capacity, so
// this checks what the GPU would refuse: a profile it does not offer, more
// instances of a profile than it holds, more than seven compute slices.
func partition(d gonvml.Device, profiles []string) error {
	offered, err := offeredProfiles(d)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(offered))
	name, _ := d.GetName()
	used, count := 0, map[string]int{}
	for _, p := range profiles {
		info, ok := offered[p]
		if !ok {
			return fmt.Errorf("MIG profile %q: the %s offers %s", p, name, strings.Join(names, ", "))
		}
		if count[p]++; count[p] > int(info.InstanceCount) {
			return fmt.Errorf("MIG profile %q: the %s holds at most %d of it", p, name, info.InstanceCount)
		}
		if used += int(info.SliceCount); used > 7 {
			return fmt.Errorf("MIG profiles %s: %d compute slices, a GPU has 7", strings.Join(profiles, ","), used)
		}
	}
	if ret, _ := d.SetMigMode(gonvml.DEVICE_MIG_ENABLE); ret != gonvml.SUCCESS {
		return fmt.Errorf("enable MIG: %s", ret.Error())
	}
	for _, p := range profiles {
		info := offered[p]
		gi, ret := d.CreateGpuInstance(&info)
		if ret != gonvml.SUCCESS {
			return fmt.Errorf("create GPU instance %s: %s", p, ret.Error())
		}
		ciInfo, ret := gi.GetComputeInstanceProfileInfo(ciProfileOf[info.SliceCount], gonvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
		if ret != gonvml.SUCCESS {
			return fmt.Errorf("compute instance profile of %s: %s", p, ret.Error())
		}
		if _, ret := gi.CreateComputeInstance(&ciInfo); ret != gonvml.SUCCESS {
			return fmt.Errorf("create compute instance of %s: %s", p, ret.Error())
		}
	}
	return nil
}

// offeredProfiles lists the GPU instance profiles a GPU offers, by name.
func offeredProfiles(d gonvml.Device) (map[string]gonvml.GpuInstanceProfileInfo, error) {
	mem, ret := d.GetMemoryInfo()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("memory: %s", ret.Error())
	}
	offered := map[string]gonvml.GpuInstanceProfileInfo{}
	for p := range gonvml.GPU_INSTANCE_PROFILE_COUNT {
		info, ret := d.GetGpuInstanceProfileInfo(p)
		if ret != gonvml.SUCCESS {
			continue
		}
		n := migProfileName(int(info.SliceCount), 0, int64(info.MemorySizeMB), int64(mem.Total>>20), profileSuffix(d, info.Id))
		offered[n] = info
	}
	return offered, nil
}

// mockEvents is the event sets of a mock server and the devices each
// watches.
type mockEvents struct {
	mu         sync.Mutex
	registered map[int][]*mockEventSet // by device index
}

// mockEventSet is one event set: a queue of events delivered to it.
type mockEventSet struct {
	mock.EventSet
	ev    *mockEvents
	queue []gonvml.EventData
	freed bool
}

func (e *mockEvents) create() (gonvml.EventSet, gonvml.Return) {
	s := &mockEventSet{ev: e}
	s.WaitFunc = func(uint32) (gonvml.EventData, gonvml.Return) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if s.freed || len(s.queue) == 0 {
			return gonvml.EventData{}, gonvml.ERROR_TIMEOUT
		}
		d := s.queue[0]
		s.queue = s.queue[1:]
		return d, gonvml.SUCCESS
	}
	s.FreeFunc = func() gonvml.Return {
		e.mu.Lock()
		defer e.mu.Unlock()
		s.freed = true
		return gonvml.SUCCESS
	}
	return s, gonvml.SUCCESS
}

func (e *mockEvents) register(dev int, types uint64, set gonvml.EventSet) gonvml.Return {
	s, ok := set.(*mockEventSet)
	if !ok || s.ev != e {
		return gonvml.ERROR_INVALID_ARGUMENT
	}
	if types&gonvml.EventTypeXidCriticalError == 0 {
		return gonvml.SUCCESS
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.registered[dev] = append(e.registered[dev], s)
	return gonvml.SUCCESS
}

func (e *mockEvents) deliver(dev int, d gonvml.EventData) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.registered[dev] {
		if !s.freed {
			s.queue = append(s.queue, d)
		}
	}
}
