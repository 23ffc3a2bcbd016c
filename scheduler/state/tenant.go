package state

import (
	"fmt"
	"slices"
	"strings"
)

// Tenant is what the state machine keeps of a tenant: its name and the
// settings a scheduling pass reads for quotas and fair share. The machine
// only stores tenants; it enforces no quota (the pass does).
type Tenant struct {
	// Name identifies the tenant; jobs name it in Job.Tenant.
	Name string `json:"name"`
	// QuotaGPUMilli caps the GPU the tenant's running jobs may hold, in
	// milli-GPU; zero means no cap.
	QuotaGPUMilli int64 `json:"quota_gpu_milli,omitempty"`
	// GuaranteedGPUMilli is the share the tenant may reclaim by preemption,
	// in milli-GPU.
	GuaranteedGPUMilli int64 `json:"guaranteed_gpu_milli,omitempty"`
	// Weight is the tenant's fair-share weight; zero counts as one.
	Weight int `json:"weight,omitempty"`
}

// validate checks a tenant's settings.
func (t *Tenant) validate() error {
	switch {
	case t.Name == "":
		return fmt.Errorf("tenant: field name: want a non-empty name")
	case t.QuotaGPUMilli < 0:
		return fmt.Errorf("tenant %s: field quota_gpu_milli: want >= 0, got %d", t.Name, t.QuotaGPUMilli)
	case t.GuaranteedGPUMilli < 0:
		return fmt.Errorf("tenant %s: field guaranteed_gpu_milli: want >= 0, got %d", t.Name, t.GuaranteedGPUMilli)
	case t.QuotaGPUMilli > 0 && t.GuaranteedGPUMilli > t.QuotaGPUMilli:
		return fmt.Errorf("tenant %s: field guaranteed_gpu_milli: %d exceeds the quota %d", t.Name, t.GuaranteedGPUMilli, t.QuotaGPUMilli)
	case t.Weight < 0:
		return fmt.Errorf("tenant %s: field weight: want >= 0, got %d", t.Name, t.Weight)
	}
	return nil
}

// sortTenants orders tenants by name.
func sortTenants(ts []Tenant) {
	slices.SortFunc(ts, func(a, b Tenant) int { return strings.Compare(a.Name, b.Name) })
}
