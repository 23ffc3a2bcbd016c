package fleet

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

func TestDemoFleet(t *testing.T) {
	pools, nodes, err := Load("")
	require.NoError(t, err)
	kinds := map[scheduler.PoolKind]int{}
	for _, p := range pools {
		kinds[p.Kind]++
	}
	assert.Equal(t, 1, kinds[scheduler.PoolOnPrem])
	assert.Equal(t, 1, kinds[scheduler.PoolOutposts])
	assert.Equal(t, 2, kinds[scheduler.PoolCloud])
	whole, mig := 0, 0
	for _, n := range nodes {
		for _, g := range n.GPUs {
			if g.MIG != "" {
				mig++
			} else {
				whole++
			}
		}
	}
	assert.Greater(t, whole, 5000, "sized for the openb default workload")
	assert.Greater(t, mig, 0, "the demo shows MIG")
	require.NotZero(t, pools[0].RetireAt, "the onprem pool retires")
}

func TestParseGroups(t *testing.T) {
	src := `
pools:
  - name: lab
    kind: onprem
    nodes:
      - {count: 3, prefix: gpu, rack_size: 2, cpu_milli: 64000, memory_mib: 65536,
         gpus: {count: 4, model: L4, islands: 2}}
`
	_, nodes, err := Parse(strings.NewReader(src), "lab.yaml")
	require.NoError(t, err)
	require.Len(t, nodes, 3)
	assert.Equal(t, "gpu-0002", nodes[2].Name)
	assert.Equal(t, "gpu-rack01", nodes[2].Rack)
	assert.Equal(t, "gpu-rack00", nodes[1].Rack)
	require.Len(t, nodes[0].GPUs, 4)
	assert.Equal(t, []int{0, 0, 1, 1}, []int{nodes[0].GPUs[0].Island, nodes[0].GPUs[1].Island, nodes[0].GPUs[2].Island, nodes[0].GPUs[3].Island})
}

func TestParseErrorsNameFileLineField(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown field", "pools:\n  - name: a\n    kind: onprem\n    colour: red\n", "f.yaml:4: field pools[0].colour: unknown field"},
		{"bad kind", "pools:\n  - name: a\n    kind: moon\n", "f.yaml:2: pools[0]: field kind"},
		{"count", "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: 0, cpu_milli: 1, memory_mib: 1}\n", "f.yaml:5: pools[0].nodes[0]: field count"},
		{"model", "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: 1, cpu_milli: 1, memory_mib: 1, gpus: {count: 2}}\n", "field gpus.model"},
		{"islands", "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: 1, cpu_milli: 1, memory_mib: 1, gpus: {count: 3, model: T4, islands: 2}}\n", "field gpus.islands"},
		{"owned price", "pools:\n  - name: a\n    kind: onprem\n    price_per_gpu_hour: 2\n", "field price_per_gpu_hour"},
		{"retire cloud", "pools:\n  - name: a\n    kind: cloud\n    retire_at: 2027-01-01\n", "only onprem pools retire"},
		{"retire date", "pools:\n  - name: a\n    kind: onprem\n    retire_at: March\n", "field retire_at"},
		{"pricing", "pools:\n  - name: a\n    kind: cloud\n    pricing: free\n", "field pricing"},
		{"duplicate", "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: 1, prefix: x, cpu_milli: 1, memory_mib: 1}\n      - {count: 1, prefix: x, cpu_milli: 1, memory_mib: 1}\n", "already registered"},
		{"type", "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: many}\n", "f.yaml:5: field pools[0].nodes[0].count: cannot unmarshal !!str `many`"},
		{"empty", "", "empty fleet file"},
		{"no pools", "pools: []\n", "field pools"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse(strings.NewReader(tc.src), "f.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(string(Demo()))
	f.Add("pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - {count: 2, cpu_milli: 1, memory_mib: 1, gpus: {count: 2, model: T4, mig: [1g.5gb]}}\n")
	f.Add("pools: [{name: x, kind: cloud, nodes: [{count: 1, cpu_milli: 5, memory_mib: 5}]}]")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		pools, nodes, err := Parse(strings.NewReader(src), "fuzz.yaml")
		if err != nil {
			return
		}
		// Whatever parses must build a cluster.
		_, err = scheduler.NewCluster(pools, nodes)
		require.NoError(t, err)
	})
}

// A MIG layout must fit its GPU: at most 7 compute slices, and no more
// memory than the GPU has. Errors name the file, the line of the layout
// and the field.
func TestParseRefusesOverfullMIGLayouts(t *testing.T) {
	group := func(gpus string) string {
		return "pools:\n  - name: a\n    kind: onprem\n    nodes:\n      - count: 1\n        cpu_milli: 1\n        memory_mib: 1\n        gpus:\n" + gpus
	}
	tests := []struct {
		name, gpus, want string
	}{
		{"two full instances", "          count: 1\n          model: A100\n          mig: [7g.80gb, 7g.80gb]\n", "f.yaml:11: pools[0].nodes[0]: field gpus.mig: 14 compute slices"},
		{"4g+4g+7g", "          count: 1\n          model: A100\n          mig: [4g.40gb, 4g.40gb, 7g.80gb]\n", "f.yaml:11: pools[0].nodes[0]: field gpus.mig: 15 compute slices"},
		{"4g+4g", "          count: 2\n          model: A100\n          mig: [4g.40gb, 4g.40gb]\n", "field gpus.mig: 8 compute slices"},
		{"memory over the GPU", "          count: 1\n          model: A100\n          memory_mib: 40960\n          mig: [3g.40gb, 3g.40gb]\n", "f.yaml:12: pools[0].nodes[0]: field gpus.mig: 80 GB of instance memory, the GPU has 40 GB"},
		{"memory over the largest profile", "          count: 1\n          model: A100\n          mig: [7g.40gb, 1g.10gb]\n", "field gpus.mig: 8 compute slices"},
		{"bad profile", "          count: 1\n          model: A100\n          mig: [big]\n", "f.yaml:11: pools[0].nodes[0]: field gpus.mig[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse(strings.NewReader(group(tt.gpus)), "f.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	ok := []string{"[7g.80gb]", "[4g.40gb, 3g.40gb]", "[3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]", "[1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb]"}
	for _, layout := range ok {
		_, nodes, err := Parse(strings.NewReader(group("          count: 1\n          model: A100\n          memory_mib: 81920\n          mig: "+layout+"\n")), "f.yaml")
		require.NoError(t, err, layout)
		require.Len(t, nodes, 1)
	}
}

// A price that is not a finite number is refused with its field named.
func TestParseRefusesNonFinitePrice(t *testing.T) {
	for _, price := range []string{".nan", ".inf", "-.inf"} {
		src := "pools:\n  - name: a\n    kind: cloud\n    price_per_gpu_hour: " + price + "\n"
		_, _, err := Parse(strings.NewReader(src), "f.yaml")
		require.Error(t, err, price)
		assert.Contains(t, err.Error(), "f.yaml:2: pools[0]: field price_per_gpu_hour")
	}
}

func TestParseTypeErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"block mapping", `
pools:
  - name: hall
    kind: onprem
    nodes:
      - count: 2
        cpu_milli: lots
`, "lab.yaml:7: field pools[0].nodes[0].cpu_milli: cannot unmarshal !!str `lots`"},
		{"flow mapping, second field of the line", `
pools:
  - name: hall
    kind: onprem
    nodes:
      - {count: 2, cpu_milli: 8000, gpus: {model: A100, count: many}}
`, "lab.yaml:6: field pools[0].nodes[0].gpus.count: cannot unmarshal !!str `many`"},
		{"sequence item", `
pools:
  - name: hall
    kind: onprem
    nodes:
      - {count: 1, cpu_milli: 8000, gpus: {model: A100, count: 1, mig: [[1g.10gb]]}}
`, "lab.yaml:6: field pools[0].nodes[0].gpus.mig[0]: cannot unmarshal !!seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse(strings.NewReader(tt.src), "lab.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestParseRefusesHugeFiles(t *testing.T) {
	src := "pools:\n  - name: \"" + strings.Repeat("x", MaxFileBytes) + "\"\n"
	_, _, err := Parse(strings.NewReader(src), "huge.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "huge.yaml: longer than 16 MiB")
}
