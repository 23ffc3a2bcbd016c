//go:build cgo

package nvml

import (
	"errors"
	"fmt"
	"sync"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Supported reports whether this build can read NVML (it was built with cgo).
const Supported = true

// Open opens the node's NVIDIA driver. Where none is installed it returns
// an error wrapping ErrNoDriver, one line that says so.
func Open() (Source, error) {
	return open(gonvml.New())
}

// session is a Source over any nvml.Interface: the real library or a mock
// server. Everything petite learns from NVML goes through it, so the mocks
// test the code that runs on a real node.
type session struct {
	mu     sync.Mutex
	lib    gonvml.Interface
	events gonvml.EventSet     // nil where XID events cannot be had
	known  map[string]bool     // GPUs registered for XID events, by UUID
	xids   map[string][]uint64 // XIDs seen per GPU UUID, at most MaxXIDs
	closed bool
}

// open initialises lib and registers every GPU that can report them for
// XID events.
func open(lib gonvml.Interface) (*session, error) {
	switch ret := lib.Init(); ret {
	case gonvml.SUCCESS:
	case gonvml.ERROR_LIBRARY_NOT_FOUND:
		return nil, ErrNoDriver
	case gonvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("%w (the kernel module is not loaded)", ErrNoDriver)
	default:
		return nil, fmt.Errorf("nvml: init: %s", ret.Error())
	}
	s := &session{lib: lib, known: map[string]bool{}, xids: map[string][]uint64{}}
	if err := s.watchXIDs(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// watchXIDs registers the GPUs for XID events. A library or device that
// cannot report them is not an error: its GPUs' health is unknown.
func (s *session) watchXIDs() error {
	set, ret := s.lib.EventSetCreate()
	if ret != gonvml.SUCCESS {
		return nil
	}
	s.events = set // freed by Close, also when what follows fails
	n, ret := s.lib.DeviceGetCount()
	if ret != gonvml.SUCCESS {
		return fmt.Errorf("nvml: count devices: %s", ret.Error())
	}
	for i := range n {
		d, ret := s.lib.DeviceGetHandleByIndex(i)
		if ret != gonvml.SUCCESS {
			return fmt.Errorf("nvml: device %d: %s", i, ret.Error())
		}
		uuid, ret := d.GetUUID()
		if ret != gonvml.SUCCESS {
			return fmt.Errorf("nvml: device %d: uuid: %s", i, ret.Error())
		}
		types, ret := d.GetSupportedEventTypes()
		if ret != gonvml.SUCCESS || types&gonvml.EventTypeXidCriticalError == 0 {
			continue
		}
		if d.RegisterEvents(gonvml.EventTypeXidCriticalError, set) == gonvml.SUCCESS {
			s.known[uuid] = true
		}
	}
	return nil
}

// maxDrain bounds the events one read takes, so a flood cannot hold it.
const maxDrain = 4096

// drainXIDs records the XID events that have arrived, without waiting.
func (s *session) drainXIDs() {
	if s.events == nil {
		return
	}
	for range maxDrain {
		e, ret := s.events.Wait(0)
		if ret != gonvml.SUCCESS {
			return // a timeout: nothing more has arrived
		}
		if e.EventType&gonvml.EventTypeXidCriticalError == 0 || e.Device == nil {
			continue
		}
		uuid, ret := e.Device.GetUUID()
		if ret != gonvml.SUCCESS {
			continue
		}
		l := append(s.xids[uuid], e.EventData)
		if len(l) > MaxXIDs {
			l = append(l[:0:0], l[len(l)-MaxXIDs:]...)
		}
		s.xids[uuid] = l
	}
}

// Close shuts the library down.
func (s *session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.events != nil {
		_ = s.events.Free()
	}
	if ret := s.lib.Shutdown(); ret != gonvml.SUCCESS {
		return fmt.Errorf("nvml: shutdown: %s", ret.Error())
	}
	return nil
}

// errClosed is returned by a read after Close.
var errClosed = errors.New("nvml: source is closed")

// Inventory reads the node's GPUs.
func (s *session) Inventory() (*Inventory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	s.drainXIDs()
	inv := &Inventory{}
	var ret gonvml.Return
	if inv.Driver, ret = s.lib.SystemGetDriverVersion(); ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("nvml: driver version: %s", ret.Error())
	}
	cuda, ret := s.lib.SystemGetCudaDriverVersion()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("nvml: CUDA version: %s", ret.Error())
	}
	inv.CUDA = fmt.Sprintf("%d.%d", cuda/1000, cuda%1000/10)
	n, ret := s.lib.DeviceGetCount()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("nvml: count devices: %s", ret.Error())
	}
	handles := make([]gonvml.Device, n)
	for i := range n {
		d, ret := s.lib.DeviceGetHandleByIndex(i)
		if ret != gonvml.SUCCESS {
			return nil, fmt.Errorf("nvml: device %d: %s", i, ret.Error())
		}
		handles[i] = d
		g, err := s.readGPU(i, d)
		if err != nil {
			return nil, fmt.Errorf("nvml: device %d: %w", i, err)
		}
		inv.GPUs = append(inv.GPUs, g)
	}
	peers := make([][]int, n)
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			st, ret := handles[i].GetP2PStatus(handles[j], gonvml.P2P_CAPS_INDEX_NVLINK)
			if ret == gonvml.SUCCESS && st == gonvml.P2P_STATUS_OK {
				peers[i] = append(peers[i], j)
			}
		}
		inv.GPUs[i].Peers = peers[i]
	}
	var of []int
	inv.Islands, of = islands(n, peers)
	for i := range inv.GPUs {
		inv.GPUs[i].Island = of[i]
	}
	return inv, nil
}

// readGPU reads one physical GPU.
func (s *session) readGPU(i int, d gonvml.Device) (GPU, error) {
	g := GPU{Index: i}
	var ret gonvml.Return
	if g.UUID, ret = d.GetUUID(); ret != gonvml.SUCCESS {
		return g, fmt.Errorf("uuid: %s", ret.Error())
	}
	if g.Name, ret = d.GetName(); ret != gonvml.SUCCESS {
		return g, fmt.Errorf("name: %s", ret.Error())
	}
	mem, ret := d.GetMemoryInfo()
	if ret != gonvml.SUCCESS {
		return g, fmt.Errorf("memory: %s", ret.Error())
	}
	g.MemoryMiB = int64(mem.Total >> 20)
	g.Model = ModelName(g.Name, g.MemoryMiB)
	g.Health = healthOf(s.known[g.UUID], append([]uint64(nil), s.xids[g.UUID]...))
	cur, pending, ret := d.GetMigMode()
	switch ret {
	case gonvml.SUCCESS:
		g.MIG = MIGMode{Capable: true, Enabled: cur == gonvml.DEVICE_MIG_ENABLE, Pending: pending == gonvml.DEVICE_MIG_ENABLE}
	case gonvml.ERROR_NOT_SUPPORTED:
	default:
		return g, fmt.Errorf("MIG mode: %s", ret.Error())
	}
	if !g.MIG.Enabled {
		return g, nil
	}
	var err error
	g.Instances, err = readMIG(d, g.MemoryMiB)
	return g, err
}

// readMIG reads the MIG devices of a GPU in MIG mode.
func readMIG(d gonvml.Device, gpuMemMiB int64) ([]MIGInstance, error) {
	max, ret := d.GetMaxMigDeviceCount()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("MIG device count: %s", ret.Error())
	}
	var out []MIGInstance
	for j := range max {
		md, ret := d.GetMigDeviceHandleByIndex(j)
		if ret == gonvml.ERROR_NOT_FOUND || ret == gonvml.ERROR_INVALID_ARGUMENT {
			continue // an empty slot
		}
		if ret != gonvml.SUCCESS {
			return nil, fmt.Errorf("MIG device %d: %s", j, ret.Error())
		}
		mi, err := readMIGDevice(d, md, gpuMemMiB)
		if err != nil {
			return nil, fmt.Errorf("MIG device %d: %w", j, err)
		}
		out = append(out, mi)
	}
	return out, nil
}

// readMIGDevice reads one MIG device of GPU d.
func readMIGDevice(d, md gonvml.Device, gpuMemMiB int64) (MIGInstance, error) {
	var mi MIGInstance
	var ret gonvml.Return
	if mi.UUID, ret = md.GetUUID(); ret != gonvml.SUCCESS {
		return mi, fmt.Errorf("uuid: %s", ret.Error())
	}
	if mi.GPUInstance, ret = md.GetGpuInstanceId(); ret != gonvml.SUCCESS {
		return mi, fmt.Errorf("GPU instance id: %s", ret.Error())
	}
	if mi.ComputeInstance, ret = md.GetComputeInstanceId(); ret != gonvml.SUCCESS {
		return mi, fmt.Errorf("compute instance id: %s", ret.Error())
	}
	attr, ret := md.GetAttributes()
	if ret != gonvml.SUCCESS {
		return mi, fmt.Errorf("attributes: %s", ret.Error())
	}
	mi.Slices = int(attr.ComputeInstanceSliceCount)
	mi.MemoryMiB = int64(attr.MemorySizeMB)
	gi, ret := d.GetGpuInstanceById(mi.GPUInstance)
	if ret != gonvml.SUCCESS {
		return mi, fmt.Errorf("GPU instance %d: %s", mi.GPUInstance, ret.Error())
	}
	info, ret := gi.GetInfo()
	if ret != gonvml.SUCCESS {
		return mi, fmt.Errorf("GPU instance %d: info: %s", mi.GPUInstance, ret.Error())
	}
	mi.Profile = migProfileName(int(attr.GpuInstanceSliceCount), mi.Slices, mi.MemoryMiB, gpuMemMiB, profileSuffix(d, info.ProfileId))
	return mi, nil
}

// profileSuffix names the variant of a GPU instance profile: NVML's
// profile ids differ between GPUs, so the id is matched against the
// profiles the device lists, whose place in the list says the variant.
func profileSuffix(d gonvml.Device, id uint32) string {
	for p := range gonvml.GPU_INSTANCE_PROFILE_COUNT {
		info, ret := d.GetGpuInstanceProfileInfo(p)
		if ret != gonvml.SUCCESS || info.Id != id {
			continue
		}
		switch p {
		case gonvml.GPU_INSTANCE_PROFILE_1_SLICE_REV1, gonvml.GPU_INSTANCE_PROFILE_2_SLICE_REV1:
			return "+me"
		case gonvml.GPU_INSTANCE_PROFILE_1_SLICE_NO_ME, gonvml.GPU_INSTANCE_PROFILE_2_SLICE_NO_ME:
			return "-me"
		case gonvml.GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME, gonvml.GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME:
			return "+me.all"
		case gonvml.GPU_INSTANCE_PROFILE_1_SLICE_GFX, gonvml.GPU_INSTANCE_PROFILE_2_SLICE_GFX,
			gonvml.GPU_INSTANCE_PROFILE_3_SLICE_GFX, gonvml.GPU_INSTANCE_PROFILE_4_SLICE_GFX:
			return "+gfx"
		}
		return ""
	}
	return ""
}
