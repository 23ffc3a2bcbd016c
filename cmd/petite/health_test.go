package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/nvml"
	"petite/scheduler/agent"
	"petite/scheduler/api"
)

// TestNodeStatusUnhealthy: a GPU whose NVML reports a hardware XID shows
// in `petite node status` as typed, table and --json.
func TestNodeStatusUnhealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev server and an agent")
	}
	dir := t.TempDir()
	addr := labDevServer(t, dir)

	m, err := nvml.OpenMock("dgxh100", nvml.MockConfig{Node: "gpu-h"})
	require.NoError(t, err)
	inv, err := m.Inventory()
	require.NoError(t, err)
	reg, err := inv.Register(nvml.NodeSpec{Name: "gpu-h", Pool: "lab", CPUMilli: 64000, MemoryMiB: 1 << 18})
	require.NoError(t, err)
	cl, err := api.NewClient(addr)
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	a, err := agent.New(agent.Config{
		Servers: []*api.Client{cl}, DataDir: filepath.Join(dir, "agent"), Supervisor: []string{exe, "agent", "supervise"},
		Registration: api.AgentRegistration{Node: reg.Node, Devices: reg.Devices},
		Health:       agent.SourceHealth(m, reg.Devices),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool {
		n, err := cl.Node(context.Background(), "gpu-h")
		return err == nil && n.State == "ready"
	}, 30*time.Second, 10*time.Millisecond)
	code, stdout, stderr := petite(t, nil, "node", "status")
	require.Equal(t, exitOK, code, stderr)
	assert.NotContains(t, stdout, "unhealthy")

	require.NoError(t, m.InjectXID(2, 79))
	want := "node gpu-h: GPU 2 (" + reg.Devices[2] + ") unhealthy, XID 79, withheld from placement\n"
	require.Eventually(t, func() bool {
		_, stdout, _ := petite(t, nil, "node", "status", "gpu-h")
		return strings.HasSuffix(stdout, want)
	}, 30*time.Second, 50*time.Millisecond, "node status never showed the XID")
	code, stdout, stderr = petite(t, nil, "node", "status", "--json")
	require.Equal(t, exitOK, code, stderr)
	var nodes []api.Node
	require.NoError(t, json.Unmarshal([]byte(stdout), &nodes))
	var got []api.GPUHealth
	var held []int
	for _, n := range nodes {
		if n.Name == "gpu-h" {
			got, held = n.Unhealthy, n.Withheld
		}
	}
	assert.Equal(t, []api.GPUHealth{{GPU: 2, UUID: reg.Devices[2], XIDs: []uint64{79}}}, got)
	assert.Equal(t, []int{2}, held)
}
