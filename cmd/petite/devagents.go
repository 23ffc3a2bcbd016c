package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"petite/nvml"
	"petite/scheduler"
	"petite/scheduler/agent"
	"petite/scheduler/api"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// startDevAgents runs, inside a dev server, an agent for each node the
// moment work is first placed on it: a job run against `petite server
// --dev` runs its command for real, while the demo fleet's other nodes,
// which have no agent, stay ready without one (the leader watches only
// nodes an agent registered). Their data is under the dev server's data
// dir; the returned function stops them and kills their tasks.
func startDevAgents(ctx context.Context, d *api.Daemon, cfg server.Config) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	done := func() { cancel(); wg.Wait() }
	exe, err := os.Executable()
	if err != nil {
		cfg.Logger.Error("dev agents: find petite's binary", "err", err)
		return done
	}
	cl, err := api.NewClient(d.URL)
	if err != nil {
		return done
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cfg.Logger.Error("dev agents: listen", "err", err)
		return done
	}
	var logs agent.API
	hs := logs.Server(api.DefaultTimeouts) // as the servers' API: slow or idle clients are cut off
	go func() { _ = hs.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	byName := make(map[string]scheduler.Node, len(cfg.Nodes))
	for _, n := range cfg.Nodes {
		byName[n.Name] = n
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer hs.Close()
		started := map[string]bool{}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, name := range busyNodes(d, started) {
				started[name] = true
				n, ok := byName[name]
				if !ok {
					continue // registered by an agent of its own
				}
				reg := devRegistration(n)
				a, err := agent.New(agent.Config{
					Servers: []*api.Client{cl}, DataDir: filepath.Join(cfg.DataDir, "agents", name), Supervisor: []string{exe, "agent", "supervise"},
					Registration: server.AgentRegistration{Node: n, Devices: reg, Addr: url},
					KillOnClose:  true, Logger: cfg.Logger,
				})
				if err != nil {
					cfg.Logger.Error("dev agent", "node", name, "err", err)
					continue
				}
				logs.Add(a)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := a.Run(ctx); err != nil {
						cfg.Logger.Error("dev agent", "node", name, "err", err)
					}
				}()
			}
		}
	}()
	return done
}

// busyNodes lists the nodes with tasks placed that have no dev agent yet.
func busyNodes(d *api.Daemon, started map[string]bool) []string {
	var out []string
	d.Server.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		for _, rj := range m.Running() {
			for _, tp := range rj.Tasks {
				if !started[tp.Node] && !slices.Contains(out, tp.Node) {
					out = append(out, tp.Node)
				}
			}
		}
	})
	return out
}

// devMocks are go-nvml's mock servers by the demo fleet's GPU model.
var devMocks = map[string]string{"H100": "dgxh100", "A100": "dgxa100-80gb", "H200": "dgxh200", "B200": "dgxb200"}

// devRegistration gives a fleet node's devices their UUIDs: those of
// go-nvml's mock DGX of the node's model when it has the node's devices
// (MIG instances included), else UUIDs made up from the node's name, as
// stable as a mock's.
func devRegistration(n scheduler.Node) []string {
	if mock, ok := devMocks[modelOfNode(n)]; ok {
		cfg := nvml.MockConfig{Node: n.Name}
		if len(n.GPUs) > 0 && n.GPUs[0].MIG != "" {
			// The fleet's MIG nodes repeat one layout on every GPU.
			var layout []string
			for i := range n.GPUs {
				if i > 0 && n.GPUs[i].MIG == n.GPUs[0].MIG && len(layout) > 0 {
					break
				}
				layout = append(layout, n.GPUs[i].MIG)
			}
			cfg.MIGAll = layout
		}
		if reg, err := mockRegistration(mock, cfg, n); err == nil {
			return reg
		}
	}
	devs := make([]string, len(n.GPUs))
	for i := range devs {
		h := sha256.Sum256(fmt.Appendf(nil, "petite-dev/%s/%d", n.Name, i))
		devs[i] = fmt.Sprintf("GPU-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
	}
	return devs
}

// mockRegistration reads a mock node and returns its device UUIDs if its
// devices are the fleet node's.
func mockRegistration(mock string, cfg nvml.MockConfig, n scheduler.Node) ([]string, error) {
	m, err := nvml.OpenMock(mock, cfg)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	inv, err := m.Inventory()
	if err != nil {
		return nil, err
	}
	reg, err := inv.Register(nvml.NodeSpec{Name: n.Name, Pool: n.Pool})
	if err != nil {
		return nil, err
	}
	if len(reg.Node.GPUs) != len(n.GPUs) {
		return nil, fmt.Errorf("mock %s has %d devices, node %s %d", mock, len(reg.Node.GPUs), n.Name, len(n.GPUs))
	}
	for i := range n.GPUs {
		if reg.Node.GPUs[i].Model != n.GPUs[i].Model || reg.Node.GPUs[i].MIG != n.GPUs[i].MIG {
			return nil, fmt.Errorf("mock %s device %d differs from node %s's", mock, i, n.Name)
		}
	}
	return reg.Devices, nil
}

func modelOfNode(n scheduler.Node) string {
	if len(n.GPUs) == 0 {
		return ""
	}
	return n.GPUs[0].Model
}
