// Package samples embeds petite's demo data: the default workload and the
// GPU fleet of the Alibaba GPU 2023 "openb" trace (Weng et al., "Beware of
// Fragmentation", USENIX ATC 2023; Apache-2.0, see README.md and the
// licence file in this directory).
package samples

import (
	"embed"
	"io/fs"
)

// Names of the embedded files, as they appear in FS.
const (
	OpenbDefaultPodsFile = "openb_pod_list_default.csv"
	OpenbGPUNodesFile    = "openb_node_list_gpu_node.csv"
	LicenseFile          = "LICENSE-hkust-adsl-simulator.txt"
	ReadmeFile           = "README.md"
)

//go:embed openb_pod_list_default.csv openb_node_list_gpu_node.csv LICENSE-hkust-adsl-simulator.txt README.md
var files embed.FS

// FS holds the embedded files, read-only.
func FS() fs.FS { return files }

// OpenbDefaultPods returns openb_pod_list_default.csv: 8,152 pods, the
// default workload. The slice is a fresh copy.
func OpenbDefaultPods() []byte { return mustRead(OpenbDefaultPodsFile) }

// OpenbGPUNodes returns openb_node_list_gpu_node.csv: the trace's GPU
// nodes, the default fleet. The slice is a fresh copy.
func OpenbGPUNodes() []byte { return mustRead(OpenbGPUNodesFile) }

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("samples: embedded file missing: " + name)
	}
	return b
}
