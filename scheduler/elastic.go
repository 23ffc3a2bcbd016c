package scheduler

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// ScaleOption is a way to make room for a job by growing an elastic cloud
// pool: how many new nodes of the pool's shape it takes, what they cost and
// how long they take to join.
type ScaleOption struct {
	Pool string `json:"pool"`
	// Nodes is how many new nodes the job needs there.
	Nodes int `json:"nodes"`
	// GPUs is the GPU count those nodes add.
	GPUs int `json:"gpus"`
	// CostPerHour is the added GPUs' price per hour.
	CostPerHour float64 `json:"cost_per_hour"`
	// DelaySec is the pool's provisioning delay.
	DelaySec int64 `json:"delay_sec"`
}

// ScaleOptions lists, cheapest first, the elastic cloud pools that could
// take a job if they grew within their MaxNodes: the drivers (simulator,
// autoscaler) decide whether to buy. A pool's node shape is that of its
// first node.
func (c *Cluster) ScaleOptions(j *Job) ([]ScaleOption, error) {
	if err := j.Validate(); err != nil {
		return nil, fmt.Errorf("scale options: %w", err)
	}
	s, err := c.ShapeOf(&j.Task)
	if err != nil {
		return nil, err
	}
	count := make([]int, len(c.pools))
	first := make([]NodeID, len(c.pools))
	for i := range first {
		first[i] = NoNode
	}
	for i := range c.nodes {
		p := c.nodes[i].pool
		if count[p] == 0 {
			first[p] = NodeID(i)
		}
		count[p]++
	}
	var out []ScaleOption
	for pi, p := range c.pools {
		tmpl := first[pi]
		if p.Kind != PoolCloud || tmpl == NoNode || p.MaxNodes <= count[pi] {
			continue
		}
		per := c.tasksPerEmptyNode(tmpl, &s)
		if per == 0 {
			continue
		}
		need := j.Count / per // no j.Count+per-1: it could wrap
		if j.Count%per != 0 {
			need++
		}
		if need > p.MaxNodes-count[pi] {
			continue
		}
		gpus := need * int(c.nodes[tmpl].gpuN)
		out = append(out, ScaleOption{
			Pool: p.Name, Nodes: need, GPUs: gpus,
			CostPerHour: math.Round(100*p.PricePerGPUHour*float64(gpus)) / 100,
			DelaySec:    p.ProvisionDelaySec,
		})
	}
	slices.SortStableFunc(out, func(a, b ScaleOption) int {
		return cmp.Or(cmp.Compare(a.CostPerHour, b.CostPerHour), cmp.Compare(a.DelaySec, b.DelaySec), cmp.Compare(a.Pool, b.Pool))
	})
	return out, nil
}

// tasksPerEmptyNode is how many tasks of shape s an empty node shaped like
// n holds (0 when its labels, model or size rule it out).
func (c *Cluster) tasksPerEmptyNode(n NodeID, s *Shape) int {
	r := &c.nodes[n]
	if s.Sel != 0 && !c.selectors[s.Sel].ok[n] {
		return 0
	}
	k := math.MaxInt
	if s.CPU > 0 {
		k = min(k, int(r.cpuCap/s.CPU))
	}
	if s.Mem > 0 {
		k = min(k, int(r.memCap/s.Mem))
	}
	if s.GPUs > 0 {
		if r.gpuN == 0 || (s.Models != 0 && s.Models&(1<<uint(r.model)) == 0) {
			return 0
		}
		// An empty node's devices are free to their capacity.
		_, excl := c.devs(n)
		k = int(fitDevices(c.gpuCap[r.gpuOff:r.gpuOff+r.gpuN], excl, s, int64(k)))
	}
	if k == math.MaxInt {
		k = 1 << 20
	}
	return k
}
