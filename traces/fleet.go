package traces

import (
	"io"
	"sort"
)

// FleetStats summarises a list of machines, or a Helios GPU-number file,
// which counts GPUs per virtual cluster and day rather than machines.
type FleetStats struct {
	Format Format `json:"format"`
	// Machines is the number of machines listed (0 for Helios).
	Machines int `json:"machines"`
	// VirtualClusters is the number of Helios virtual clusters.
	VirtualClusters int `json:"virtual_clusters,omitempty"`
	// GPUs is the GPUs of the machines; for Helios, the most the virtual
	// clusters had together on any day (Days.Peak).
	GPUs     int          `json:"gpus"`
	CPUMilli int64        `json:"cpu_milli"`
	MemMiB   int64        `json:"memory_mib"`
	ByModel  []ModelCount `json:"by_model,omitempty"`
	// Days spans a Helios file's dates.
	Days *HeliosDays `json:"days,omitempty"`
	// ByVC is each Helios virtual cluster's most GPUs on any day, in
	// column order.
	ByVC []VCCount `json:"by_vc,omitempty"`
}

// HeliosDays are the dates of a Helios GPU-number file.
type HeliosDays struct {
	First    string `json:"first"`
	Last     string `json:"last"`
	Count    int    `json:"count"`
	Peak     string `json:"peak"`      // the first day with the most GPUs
	LastGPUs int    `json:"last_gpus"` // the GPUs on the last day
}

// VCCount is the most GPUs a Helios virtual cluster had on any day.
type VCCount struct {
	VC      string `json:"vc"`
	MaxGPUs int    `json:"max_gpus"`
}

// ModelCount is the machines and GPUs of one GPU model. Model is "" for
// machines without GPUs, and for machines whose GPUs the list does not
// name (Philly's), which have Unknown set.
type ModelCount struct {
	Model    string `json:"model"`
	Unknown  bool   `json:"unknown_model,omitempty"`
	Machines int    `json:"machines"`
	GPUs     int    `json:"gpus"`
}

// Label names the model for people: the model, "unknown model" or "no
// GPUs".
func (m ModelCount) Label() string {
	switch {
	case m.Model != "":
		return m.Model
	case m.Unknown:
		return "unknown model"
	}
	return "no GPUs"
}

// ComputeFleetStats counts machines and GPUs, in total and by GPU model
// (sorted by model name, machines without GPUs first, then those of an
// unknown model).
func ComputeFleetStats(f Format, ms []Machine) FleetStats {
	st := FleetStats{Format: f, Machines: len(ms)}
	type key struct {
		model   string
		unknown bool
	}
	by := map[key]*ModelCount{}
	for _, m := range ms {
		st.GPUs += m.GPUs
		st.CPUMilli += m.CPUMilli
		st.MemMiB += m.MemoryMiB
		k := key{m.GPUModel, m.GPUModel == "" && m.GPUs > 0}
		c := by[k]
		if c == nil {
			c = &ModelCount{Model: k.model, Unknown: k.unknown}
			by[k] = c
		}
		c.Machines++
		c.GPUs += m.GPUs
	}
	for _, c := range by {
		st.ByModel = append(st.ByModel, *c)
	}
	sort.Slice(st.ByModel, func(a, b int) bool {
		x, y := st.ByModel[a], st.ByModel[b]
		if x.Model != y.Model {
			return x.Model < y.Model
		}
		return !x.Unknown && y.Unknown
	})
	return st
}

// ComputeHeliosStats summarises a Helios GPU-number file: its virtual
// clusters, the most GPUs they had together on any day and on which, and
// each one's most.
func ComputeHeliosStats(c HeliosCapacity) FleetStats {
	st := FleetStats{Format: FormatHeliosGPUs, VirtualClusters: len(c.VCs)}
	st.ByVC = make([]VCCount, len(c.VCs))
	for i, vc := range c.VCs {
		st.ByVC[i].VC = vc
	}
	if len(c.Days) == 0 {
		return st
	}
	d := &HeliosDays{First: c.Days[0].Date, Last: c.Days[len(c.Days)-1].Date, Count: len(c.Days), LastGPUs: c.Days[len(c.Days)-1].Total}
	for _, day := range c.Days {
		if day.Total > st.GPUs || d.Peak == "" {
			st.GPUs, d.Peak = day.Total, day.Date
		}
		for i, g := range day.GPUs {
			st.ByVC[i].MaxGPUs = max(st.ByVC[i].MaxGPUs, g)
		}
	}
	st.Days = d
	return st
}

// ReadFleetStats reads a machine list or a Helios GPU-number file (the
// format sniffed when f is FormatAuto or "") and summarises it.
func ReadFleetStats(in io.Reader, name string, f Format) (FleetStats, error) {
	br, err := decompress(in, name)
	if err != nil {
		return FleetStats{}, err
	}
	if f == "" || f == FormatAuto {
		if f, err = Sniff(br, name); err != nil {
			return FleetStats{}, err
		}
	}
	if f == FormatHeliosGPUs {
		c, err := readHeliosGPUs(br, name)
		if err != nil {
			return FleetStats{}, err
		}
		return ComputeHeliosStats(c), nil
	}
	ms, f, err := readFleet(br, name, f)
	if err != nil {
		return FleetStats{}, err
	}
	return ComputeFleetStats(f, ms), nil
}
