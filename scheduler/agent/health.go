package agent

import (
	"fmt"
	"slices"
	"time"

	"petite/nvml"
	"petite/scheduler/server"
)

// healthEvery bounds how often the agent reads the GPUs' health: a
// doorbell may bring heartbeats tens of milliseconds apart.
const healthEvery = time.Second

// health is the node's unhealthy GPUs as last read (Config.Health).
func (a *Agent) health() []server.GPUHealth {
	if a.cfg.Health == nil {
		return nil
	}
	a.healthMu.Lock()
	defer a.healthMu.Unlock()
	if now := time.Now(); a.healthAt.IsZero() || now.Sub(a.healthAt) >= healthEvery {
		a.healthAt = now
		hs, err := a.cfg.Health()
		switch {
		case err != nil:
			a.log.Warn("read GPU health", "err", err)
		default:
			if len(hs) > 0 && !slices.EqualFunc(hs, a.unhealthy, func(x, y server.GPUHealth) bool { return x.GPU == y.GPU && slices.Equal(x.XIDs, y.XIDs) }) {
				a.log.Warn("unhealthy GPUs", "gpus", hs)
			}
			a.unhealthy = hs
		}
	}
	return a.unhealthy
}

// SourceHealth is a Config.Health that reads src: the devices (the
// registration's, by index) on a GPU NVML reports unhealthy (an XID error
// that points at the hardware; a MIG instance's GPU's health is its own).
func SourceHealth(src nvml.Source, devices []string) func() ([]server.GPUHealth, error) {
	return func() ([]server.GPUHealth, error) {
		inv, err := src.Inventory()
		if err != nil {
			return nil, fmt.Errorf("read the GPUs' health: %w", err)
		}
		return HealthOf(inv, devices), nil
	}
}

// HealthOf lists the devices of an inventory's unhealthy GPUs, by their
// index in devices (a registration's device UUIDs).
func HealthOf(inv *nvml.Inventory, devices []string) []server.GPUHealth {
	var out []server.GPUHealth
	for i, uuid := range devices {
		for _, g := range inv.GPUs {
			if g.Health.Status != nvml.Unhealthy {
				continue
			}
			if g.UUID == uuid || slices.ContainsFunc(g.Instances, func(m nvml.MIGInstance) bool { return m.UUID == uuid }) {
				out = append(out, server.GPUHealth{GPU: i, UUID: uuid, XIDs: slices.Clone(g.Health.XIDs)})
				break
			}
		}
	}
	return out
}
