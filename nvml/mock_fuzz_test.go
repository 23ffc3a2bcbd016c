//go:build cgo

package nvml

import (
	"strings"
	"testing"
)

// FuzzOpenMock feeds the mock inventory's inputs (the name, NVLink islands
// and MIG profiles a user gives on the command line): a mock opens and
// reads an inventory whose GPUs match what was asked, or refuses with an
// error; it never panics (go-nvml's mock panics on a function nobody set).
func FuzzOpenMock(f *testing.F) {
	f.Add("dgxa100", "n0", 2, 3, "3g.20gb,2g.10gb,1g.5gb", "")
	f.Add("dgxh100", "n1", 0, 0, "", "1g.10gb")
	f.Add("dgxb200", "", 8, -1, "", "")
	f.Add("dgxa100-80gb", "x", 3, 9, "7g.80gb", "bogus")
	f.Add("dgxh200", "n", 1, 0, ",", "")
	f.Fuzz(func(t *testing.T, name, node string, islands, gpu int, profiles, all string) {
		cfg := MockConfig{Node: node, Islands: islands}
		if profiles != "" {
			cfg.MIG = map[int][]string{gpu: strings.Split(profiles, ",")}
		}
		if all != "" {
			cfg.MIGAll = strings.Split(all, ",")
		}
		m, err := OpenMock(name, cfg)
		if err != nil {
			return
		}
		defer m.Close()
		inv, err := m.Inventory()
		if err != nil {
			return
		}
		if len(inv.GPUs) != 8 {
			t.Fatalf("%s: %d GPUs, want 8", name, len(inv.GPUs))
		}
	})
}
