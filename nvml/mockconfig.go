package nvml

import "fmt"

// MockNames lists the mock servers OpenMock knows: go-nvml's DGX A100
// (40 GB GPUs), the same with 80 GB A100s, DGX H100, H200 and B200; each
// has eight GPUs.
func MockNames() []string {
	return []string{"dgxa100", "dgxa100-80gb", "dgxh100", "dgxh200", "dgxb200"}
}

// MockConfig shapes a mock node.
type MockConfig struct {
	// Node seeds the GPUs' UUIDs: the nodes of a mock fleet differ, and a
	// node keeps its UUIDs when it restarts.
	Node string
	// Islands splits the GPUs into this many NVLink islands of equal size;
	// 0 or 1 is a DGX's single NVSwitch fabric.
	Islands int
	// MIG partitions GPUs: MIG[i] lists the profiles of GPU i's instances
	// ("3g.40gb"), each with one compute instance spanning it. GPUs not
	// listed stay whole, unless MIGAll is set.
	MIG map[int][]string
	// MIGAll partitions every GPU that MIG does not list.
	MIGAll []string
}

// check refuses what no mock could be.
func (c *MockConfig) check() error {
	if c.Islands < 0 {
		return fmt.Errorf("nvml: mock islands: want 0 or more, got %d", c.Islands)
	}
	for i, p := range c.MIG {
		if len(p) == 0 {
			return fmt.Errorf("nvml: mock MIG for GPU %d: want at least one profile", i)
		}
	}
	return nil
}
