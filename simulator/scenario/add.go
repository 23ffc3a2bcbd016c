package scenario

import (
	"fmt"
	"slices"

	"petite/scheduler"
	"petite/simulator/replay"
)

// compileAdd turns an add action into node events that register its
// fleet's nodes at the action's time, ready. A pool of the added fleet
// that the scenario's fleet lacks joins the run's pools from the start,
// empty until then (the engine registers nodes only in known pools); a
// pool it already has must be the same kind, and its nodes join it.
// pools indexes cfg.Pools by name and grows with the pools added; prior
// are the node events compiled so far (earlier adds' nodes).
func (s *Scenario) compileAdd(a *action, cfg *replay.Config, pools map[string]*scheduler.Pool, addPools []scheduler.Pool, addNodes []scheduler.Node, prior []replay.NodeEvent, t int64) ([]replay.NodeEvent, error) {
	field := []any{"actions", a.index, "fleet"}
	for _, p := range addPools {
		if old, ok := pools[p.Name]; ok {
			if old.Kind != p.Kind {
				return nil, s.errAt(field, "pool %s is %s in the scenario's fleet and %s in %s", p.Name, old.Kind, p.Kind, a.Fleet)
			}
			continue
		}
		if cfg.Burst != nil && p.Kind == scheduler.PoolCloud {
			return nil, s.errAt(field, "pool %s: under burst the cloud is unlimited; add owned pools", p.Name)
		}
		cfg.Pools = append(slices.Clip(cfg.Pools), p)
		pools[p.Name] = &cfg.Pools[len(cfg.Pools)-1]
	}
	taken := map[string]bool{}
	for _, n := range cfg.Nodes {
		taken[n.Name] = true
	}
	for _, e := range prior {
		if e.Add != nil {
			taken[e.Node] = true
		}
	}
	evs := make([]replay.NodeEvent, 0, len(addNodes))
	for i := range addNodes {
		n := addNodes[i]
		if taken[n.Name] {
			return nil, s.errAt(field, "node %s of %s is already in the fleet", n.Name, a.Fleet)
		}
		taken[n.Name] = true
		if (cfg.Scale != nil || slices.ContainsFunc(s.acts, func(b action) bool { return b.Do == DoQuota })) && pools[n.Pool].Kind == scheduler.PoolCloud {
			return nil, s.errAt(field, "node %s: cloud pools scale on their own under a quota; add owned nodes", n.Name)
		}
		evs = append(evs, replay.NodeEvent{At: t, Node: n.Name, State: scheduler.NodeReady, Add: &addNodes[i]})
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("%s: %s brings no node", s.where(a), a.Fleet)
	}
	return evs, nil
}
