//go:build cgo

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/nvml"
	"petite/scheduler"
	"petite/scheduler/state"
)

func TestNVMLList(t *testing.T) {
	code, out, errOut := petite(t, nil, "nvml", "list", "--nvml-mock", "dgxa100", "--mig", "3g.20gb,2g.10gb,2g.10gb", "--islands", "2", "--node", "n1")
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2+1+8*4, out)
	assert.Equal(t, "driver 550.54.15, CUDA 12.4: 8 GPUs in 2 NVLink islands", lines[0])
	assert.Regexp(t, `^GPU +MODEL +MEMORY +MIG +ISLAND +HEALTH +UUID$`, lines[2])
	assert.Regexp(t, `^0 +A100 +40\.0 GiB +3 instances +0 +ok +GPU-[0-9a-f-]{36}$`, lines[3])
	assert.Regexp(t, `^  0/0 +3g\.20gb +19\.5 GiB +MIG-[0-9a-f-]{36}$`, lines[4])
	assert.Regexp(t, `^  2/0 +2g\.10gb +9\.6 GiB +MIG-[0-9a-f-]{36}$`, lines[6])
	assert.Regexp(t, `^7 +A100 +40\.0 GiB +3 instances +1 +ok `, lines[3+7*4])

	code, out, errOut = petite(t, nil, "nvml", "list", "--nvml-mock", "dgxh100", "--node", "n1")
	require.Equal(t, exitOK, code, errOut)
	assert.True(t, strings.HasPrefix(out, "driver 550.54.15, CUDA 12.4: 8 GPUs in 1 NVLink island\n"), out)

	code, out, errOut = petite(t, nil, "nvml", "list", "--nvml-mock", "dgxh200", "--node", "n1", "--json")
	require.Equal(t, exitOK, code, errOut)
	var inv nvml.Inventory
	require.NoError(t, json.Unmarshal([]byte(out), &inv))
	require.Len(t, inv.GPUs, 8)
	assert.Equal(t, "H200", inv.GPUs[0].Model)
	assert.Equal(t, int64(144384), inv.GPUs[0].MemoryMiB)
	assert.Equal(t, [][]int{{0, 1, 2, 3, 4, 5, 6, 7}}, inv.Islands)

	_, again, _ := petite(t, nil, "nvml", "list", "--nvml-mock", "dgxh200", "--node", "n1", "-o", "json")
	assert.Equal(t, out, again, "a mock node reads the same each time")
}

// -o node prints the registration, which a state machine takes.
func TestNVMLListNode(t *testing.T) {
	code, out, errOut := petite(t, nil, "nvml", "list", "--nvml-mock", "dgxh100", "--mig", "3g.40gb,3g.40gb",
		"-o", "node", "--node", "dgx-1", "--pool", "p", "--cpu-milli", "224000", "--memory-mib", "2097152")
	require.Equal(t, exitOK, code, errOut)
	var reg nvml.Registration
	require.NoError(t, json.Unmarshal([]byte(out), &reg))
	assert.Equal(t, "dgx-1", reg.Node.Name)
	assert.Equal(t, "p", reg.Node.Pool)
	assert.Equal(t, int64(224000), reg.Node.CPUMilli)
	assert.Equal(t, int64(2097152), reg.Node.MemoryMiB)
	require.Len(t, reg.Node.GPUs, 16)
	require.Len(t, reg.Devices, 16)
	for i, g := range reg.Node.GPUs {
		assert.Equal(t, scheduler.GPU{Model: "H100", MemoryMiB: 40960, MIG: "3g.40gb", MilliCap: 428}, g)
		assert.True(t, strings.HasPrefix(reg.Devices[i], "MIG-"), reg.Devices[i])
	}

	m := state.New()
	_, err := m.Apply(state.RegisterPool{Pool: scheduler.Pool{Name: "p"}})
	require.NoError(t, err)
	_, err = m.Apply(reg.Command())
	require.NoError(t, err)
	id, ok := m.Cluster().NodeByName("dgx-1")
	require.True(t, ok)
	assert.Len(t, m.Cluster().Node(id).GPUs, 16)
}

func TestNVMLListErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--nvml-mock", "dgx1"}, exitUsage, `--nvml-mock: unknown mock "dgx1" (known: dgxa100, dgxa100-80gb, dgxh100, dgxh200, dgxb200)`},
		{[]string{"--mig", "1g.10gb"}, exitUsage, "--mig shapes a mock node: give --nvml-mock too"},
		{[]string{"--islands", "2"}, exitUsage, "--islands shapes a mock node: give --nvml-mock too"},
		{[]string{"--nvml-mock", "dgxh100", "--islands", "-1"}, exitUsage, "--islands: want 0 or more, got -1"},
		{[]string{"--nvml-mock", "dgxh100", "--pool", "p"}, exitUsage, "--pool is for -o node"},
		{[]string{"--nvml-mock", "dgxh100", "-o", "yaml"}, exitUsage, `--output: want table or json or node, got "yaml"`},
		{[]string{"--nvml-mock", "dgxh100", "stray"}, exitUsage, `list takes no arguments, got ["stray"]`},
		{[]string{"--nvml-mock", "dgxh100", "--islands", "3"}, exitError, "nvml: mock dgxh100: islands: want a divisor of its 8 GPUs, got 3"},
		{[]string{"--nvml-mock", "dgxh100", "--mig", "3g.20gb"}, exitError, `MIG profile "3g.20gb": the NVIDIA H100 80GB HBM3 offers 1g.10gb, `},
		{[]string{"--nvml-mock", "dgxh100", "--mig", "4g.40gb,4g.40gb"}, exitError, `MIG profile "4g.40gb": the NVIDIA H100 80GB HBM3 holds at most 1 of it`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := petite(t, nil, append([]string{"nvml", "list"}, tc.args...)...)
			assert.Equal(t, tc.code, code)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tc.want)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
		})
	}
}

// Without a driver, the real source fails with one line that points at
// the mock.
func TestNVMLListNoDriver(t *testing.T) {
	if src, err := nvml.Open(); err == nil {
		src.Close()
		t.Skip("this machine has an NVIDIA driver")
	}
	code, out, errOut := petite(t, nil, "nvml", "list", "--node", "n1")
	assert.Equal(t, exitError, code)
	assert.Empty(t, out)
	assert.Equal(t, "petite: nvml: no NVIDIA driver: libnvidia-ml.so.1 could not be loaded (--nvml-mock dgxh100 reads a mock node)\n", errOut)
}
