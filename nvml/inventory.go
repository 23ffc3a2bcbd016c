// Package nvml reads a node's GPU inventory: the GPUs with their model,
// UUID, memory, MIG mode and instances, NVLink islands and health, and the
// driver and CUDA versions. One implementation reads NVIDIA's management
// library through github.com/NVIDIA/go-nvml; given go-nvml's own mock DGX
// servers instead of the real library, the same code runs without a GPU.
// No go-nvml type leaves this package: callers see Source and Inventory,
// and Inventory.Register turns an inventory into the scheduler's node.
package nvml

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Source is where a node's GPU inventory comes from: the real driver
// (Open) or a mock server (OpenMock). A Source holds the library open
// between reads, so that XID errors seen between two reads are reported.
type Source interface {
	// Inventory reads the node's GPUs as they are now.
	Inventory() (*Inventory, error)
	// Close releases the library. Calling it again does nothing.
	Close() error
}

// ErrNoSupport is returned by Open and OpenMock in a build without cgo,
// which cannot call NVIDIA's C library (nor build go-nvml's mocks).
var ErrNoSupport = errors.New("nvml: petite was built without NVML support (CGO_ENABLED=0); rebuild with cgo and gcc")

// ErrNoDriver is returned by Open on a machine without NVIDIA's driver.
var ErrNoDriver = errors.New("nvml: no NVIDIA driver: libnvidia-ml.so.1 could not be loaded")

// Inventory is what one node's NVML reports.
type Inventory struct {
	// Driver is the driver version ("550.54.15").
	Driver string `json:"driver_version"`
	// CUDA is the highest CUDA version the driver supports ("12.4").
	CUDA string `json:"cuda_version"`
	// GPUs are the node's physical GPUs in NVML index order.
	GPUs []GPU `json:"gpus"`
	// Islands lists the NVLink islands: each the indexes of GPUs joined by
	// NVLink, directly or through NVSwitch or other GPUs. A GPU without
	// NVLink is an island of its own. Islands are ordered by their lowest
	// GPU index, and GPU.Island indexes this list.
	Islands [][]int `json:"islands"`
}

// GPU is one physical GPU.
type GPU struct {
	// Index is NVML's index of the device.
	Index int `json:"index"`
	// UUID is the device's UUID ("GPU-...").
	UUID string `json:"uuid"`
	// Name is the product name as NVML reports it ("NVIDIA H100 80GB HBM3").
	Name string `json:"name"`
	// Model is the name the scheduler uses for the product ("H100"); see ModelName.
	Model string `json:"model"`
	// MemoryMiB is the device memory.
	MemoryMiB int64 `json:"memory_mib"`
	// MIG is the device's MIG mode.
	MIG MIGMode `json:"mig"`
	// Instances are the MIG devices of a GPU in MIG mode: one per compute
	// instance, ordered by GPU instance and compute instance id.
	Instances []MIGInstance `json:"instances,omitempty"`
	// Peers are the indexes of the GPUs this one reaches over NVLink.
	Peers []int `json:"peers,omitempty"`
	// Island is the GPU's NVLink island, an index into Inventory.Islands.
	Island int `json:"island"`
	// Health is what NVML has said about the device's errors.
	Health Health `json:"health"`
}

// MIGMode says whether a GPU can be, is, or will be partitioned.
type MIGMode struct {
	// Capable is false where the device has no MIG (or NVML cannot say).
	Capable bool `json:"capable"`
	// Enabled is the current mode.
	Enabled bool `json:"enabled"`
	// Pending is the mode after the next GPU reset; it differs from
	// Enabled while a change waits for the reset.
	Pending bool `json:"pending"`
}

// MIGInstance is one MIG device: a compute instance of a GPU instance,
// which CUDA sees as a device of its own.
type MIGInstance struct {
	// UUID is the MIG device's UUID ("MIG-..."), what CUDA_VISIBLE_DEVICES takes.
	UUID string `json:"uuid"`
	// Profile is NVIDIA's name of the instance ("3g.40gb", "1c.3g.40gb"
	// for a compute instance smaller than its GPU instance, "1g.10gb+me").
	Profile string `json:"profile"`
	// GPUInstance and ComputeInstance are NVML's ids of the instance.
	GPUInstance     int `json:"gpu_instance"`
	ComputeInstance int `json:"compute_instance"`
	// Slices is the compute slices (of seven) the instance computes on.
	Slices int `json:"slices"`
	// MemoryMiB is the memory of the GPU instance.
	MemoryMiB int64 `json:"memory_mib"`
}

// HealthStatus sums up a device's health.
type HealthStatus string

// The health statuses.
const (
	// Healthy: the device reports XID errors and none that points at the
	// hardware has been seen since the source was opened.
	Healthy HealthStatus = "ok"
	// Unhealthy: an XID error that points at the hardware was seen.
	Unhealthy HealthStatus = "unhealthy"
	// HealthUnknown: the device cannot report XID errors.
	HealthUnknown HealthStatus = "unknown"
)

// Health is a device's health as NVML's XID events report it.
type Health struct {
	// Status is ok, unhealthy or unknown.
	Status HealthStatus `json:"status"`
	// XIDs are the XID errors seen since the source was opened, oldest
	// first, at most MaxXIDs of them (the latest).
	XIDs []uint64 `json:"xids,omitempty"`
}

// MaxXIDs bounds the XID errors kept per device, so a device that floods
// errors cannot grow an agent's memory without bound.
const MaxXIDs = 32

// applicationXIDs are XID errors an application causes (a bad memory
// access, a watchdog timeout, a reset channel, a preempted context): they
// are recorded but do not make a device unhealthy.
var applicationXIDs = map[uint64]bool{13: true, 31: true, 43: true, 45: true, 68: true, 109: true}

// healthOf sums up the XIDs seen on a device that can (known) or cannot
// report them.
func healthOf(known bool, xids []uint64) Health {
	h := Health{Status: HealthUnknown, XIDs: xids}
	if !known {
		return h
	}
	h.Status = Healthy
	for _, x := range xids {
		if !applicationXIDs[x] {
			h.Status = Unhealthy
		}
	}
	return h
}

// vendorWords are words of a product name that say nothing of the model.
var vendorWords = map[string]bool{"mock": true, "nvidia": true, "tesla": true, "geforce": true}

// familyWords start a model name that needs the next word too ("RTX 4090").
var familyWords = map[string]bool{"rtx": true, "gtx": true, "titan": true, "quadro": true}

// ModelName turns NVML's product name into the model label the scheduler
// and the traces use: "NVIDIA H100 80GB HBM3" and "NVIDIA H100 PCIe" are
// "H100", "NVIDIA A100-SXM4-80GB" is "A100", "Tesla T4" is "T4", "NVIDIA
// GeForce RTX 4090" is "RTX4090". A V100 of 32 GB is "V100M32", as the
// Alibaba traces and the demo fleet name it. memMiB is the device memory.
func ModelName(name string, memMiB int64) string {
	var words []string
	for _, w := range strings.FieldsFunc(name, func(r rune) bool { return r == ' ' || r == '-' || r == '_' }) {
		if !vendorWords[strings.ToLower(w)] {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return strings.TrimSpace(name)
	}
	model := strings.ToUpper(words[0])
	if familyWords[strings.ToLower(words[0])] && len(words) > 1 {
		model += strings.ToUpper(words[1])
	}
	if model == "V100" && memMiB > 16*1024+1024 {
		model = "V100M32"
	}
	return model
}

// migProfileName is NVIDIA's name of a MIG profile: "Ng.Mgb", where N is
// the GPU instance's compute slices and M its memory in GB as the product
// sheets round it, with a "Cc." prefix for a compute instance of C slices
// smaller than its GPU instance and a suffix for the media or graphics
// variants. NVML reports the instance memory in MiB, a little under the
// round figure (an A100 40GB's 1g.5gb holds 4864 MiB), so the figure is the
// instance's share of the GPU rounded to eighths, times the GPU's memory in
// whole GB.
func migProfileName(giSlices, ciSlices int, memMiB, gpuMemMiB int64, suffix string) string {
	gb := memMiB / 1024
	if gpuMemMiB > 0 {
		eighths := math.Round(float64(memMiB) * 8 / float64(gpuMemMiB))
		gpuGB := float64((gpuMemMiB + 1023) / 1024)
		gb = int64(math.Round(eighths / 8 * gpuGB))
	}
	name := fmt.Sprintf("%dg.%dgb%s", giSlices, gb, suffix)
	if ciSlices > 0 && ciSlices < giSlices {
		name = fmt.Sprintf("%dc.%s", ciSlices, name)
	}
	return name
}

// islands groups n devices into connected components of the peer graph,
// ordered by their lowest index, and returns them with each device's
// component.
func islands(n int, peers [][]int) ([][]int, []int) {
	of := make([]int, n)
	for i := range of {
		of[i] = -1
	}
	var out [][]int
	for start := range n {
		if of[start] >= 0 {
			continue
		}
		id := len(out)
		comp := []int{start}
		of[start] = id
		for k := 0; k < len(comp); k++ {
			for _, p := range peers[comp[k]] {
				if p >= 0 && p < n && of[p] < 0 {
					of[p] = id
					comp = append(comp, p)
				}
			}
		}
		slices.Sort(comp)
		out = append(out, comp)
	}
	return out, of
}
