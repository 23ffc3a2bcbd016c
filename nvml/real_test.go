//go:build cgo

package nvml

import (
	"strings"
	"testing"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On a machine without NVIDIA's driver, opening the real library is one
// clear error; on one with it, the inventory reads.
func TestOpen(t *testing.T) {
	src, err := Open()
	if err != nil {
		require.ErrorIs(t, err, ErrNoDriver)
		assert.NotContains(t, err.Error(), "\n")
		assert.Equal(t, "nvml: no NVIDIA driver: libnvidia-ml.so.1 could not be loaded", err.Error())
		return
	}
	defer func() { require.NoError(t, src.Close()) }()
	inv, err := src.Inventory()
	require.NoError(t, err)
	assert.NotEmpty(t, inv.Driver)
	for _, g := range inv.GPUs {
		assert.True(t, strings.HasPrefix(g.UUID, "GPU-"), g.UUID)
		assert.NotEmpty(t, g.Model)
		assert.Positive(t, g.MemoryMiB)
	}
	t.Logf("%d GPUs, driver %s, CUDA %s, islands %v", len(inv.GPUs), inv.Driver, inv.CUDA, inv.Islands)
}

func TestOpenInitErrors(t *testing.T) {
	for _, tc := range []struct {
		ret  gonvml.Return
		want string
	}{
		{gonvml.ERROR_LIBRARY_NOT_FOUND, "nvml: no NVIDIA driver: libnvidia-ml.so.1 could not be loaded"},
		{gonvml.ERROR_DRIVER_NOT_LOADED, "nvml: no NVIDIA driver: libnvidia-ml.so.1 could not be loaded (the kernel module is not loaded)"},
		{gonvml.ERROR_NO_PERMISSION, "nvml: init: ERROR_NO_PERMISSION"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			lib := &mock.Interface{InitFunc: func() gonvml.Return { return tc.ret }}
			_, err := open(lib)
			require.EqualError(t, err, tc.want)
			assert.Len(t, lib.InitCalls(), 1)
		})
	}
}

// A library without XID events still reads: health is unknown.
func TestOpenWithoutEvents(t *testing.T) {
	m, err := OpenMock("dgxh100", MockConfig{})
	require.NoError(t, err)
	m.srv.EventSetCreateFunc = func() (gonvml.EventSet, gonvml.Return) { return nil, gonvml.ERROR_NOT_SUPPORTED }
	s, err := open(m.srv)
	require.NoError(t, err)
	inv, err := s.Inventory()
	require.NoError(t, err)
	for _, g := range inv.GPUs {
		assert.Equal(t, Health{Status: HealthUnknown}, g.Health)
	}
}

// A device that fails a read fails the inventory with the device named.
func TestInventoryDeviceError(t *testing.T) {
	m, err := OpenMock("dgxh100", MockConfig{})
	require.NoError(t, err)
	d := m.srv.Devices[4].(*server.Device)
	d.GetMemoryInfoFunc = func() (gonvml.Memory, gonvml.Return) { return gonvml.Memory{}, gonvml.ERROR_GPU_IS_LOST }
	_, err = m.Inventory()
	require.EqualError(t, err, "nvml: device 4: memory: ERROR_GPU_IS_LOST")
}
