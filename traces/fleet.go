package traces

import "sort"

// FleetStats summarises a list of machines.
type FleetStats struct {
	Format   Format       `json:"format"`
	Machines int          `json:"machines"`
	GPUs     int          `json:"gpus"`
	CPUMilli int64        `json:"cpu_milli"`
	MemMiB   int64        `json:"memory_mib"`
	ByModel  []ModelCount `json:"by_model"`
}

// ModelCount is the machines and GPUs of one GPU model ("" for machines
// without GPUs or of unknown model).
type ModelCount struct {
	Model    string `json:"model"`
	Machines int    `json:"machines"`
	GPUs     int    `json:"gpus"`
}

// ComputeFleetStats counts machines and GPUs, in total and by GPU model
// (sorted by model name).
func ComputeFleetStats(f Format, ms []Machine) FleetStats {
	st := FleetStats{Format: f, Machines: len(ms)}
	by := map[string]*ModelCount{}
	for _, m := range ms {
		st.GPUs += m.GPUs
		st.CPUMilli += m.CPUMilli
		st.MemMiB += m.MemoryMiB
		c := by[m.GPUModel]
		if c == nil {
			c = &ModelCount{Model: m.GPUModel}
			by[m.GPUModel] = c
		}
		c.Machines++
		c.GPUs += m.GPUs
	}
	for _, c := range by {
		st.ByModel = append(st.ByModel, *c)
	}
	sort.Slice(st.ByModel, func(a, b int) bool { return st.ByModel[a].Model < st.ByModel[b].Model })
	return st
}
