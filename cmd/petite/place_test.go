package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

func placeJSON(t *testing.T, args ...string) (placeSummary, string) {
	t.Helper()
	code, out, errOut := petite(t, nil, append([]string{"place", "-o", "json"}, args...)...)
	require.Equal(t, exitOK, code, errOut)
	var s placeSummary
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	return s, out
}

func TestPlaceDemoJSON(t *testing.T) {
	s, first := placeJSON(t)
	_, again := placeJSON(t)
	assert.Equal(t, first, again, "same inputs, same bytes")
	// The figures of the demo are those the fragmentation experiment's
	// reading of the openb pods gave before place read every trace format.
	assert.Equal(t, 8152, s.Jobs)
	assert.Equal(t, 7604, s.Placed)
	assert.Equal(t, 548, s.Unplaced)
	assert.Equal(t, 92.89, s.GPUAllocPct)
	assert.Equal(t, 5231.33, s.CostPerHour)
	assert.Equal(t, 424.55, s.StrandedGPUs)
	assert.Zero(t, s.BadRecords.Skipped)
	require.Len(t, s.Pools, 4)
	tasks := 0
	for _, p := range s.Pools {
		tasks += p.Tasks
		if p.Kind != "cloud" {
			assert.Zero(t, p.CostPerHour, "owned capacity costs nothing more")
		}
	}
	assert.Equal(t, s.Placed, tasks, "one task per openb job")
	assert.Equal(t, s.Placed, s.Total.Tasks)
	assert.Equal(t, s.Placed, s.Total.Jobs)

	// Reasons count jobs, and all of them; JSON lists every unplaced job.
	assert.Len(t, s.UnplacedJobs, s.Unplaced)
	assert.Equal(t, s.Unplaced, s.Explained)
	sum := 0
	for _, n := range s.UnplacedWhy {
		sum += n
	}
	assert.Equal(t, s.Unplaced, sum, "each unplaced job has one reason")
	for _, u := range s.UnplacedJobs {
		assert.NotEmpty(t, u.Reason, u.ID)
	}
	assert.Nil(t, s.NodeReasons, "node counts only with --verbose")

	// MIG devices are counted as instances, not as fractions of GPUs.
	op := s.Pools[1]
	assert.Equal(t, "hz-outposts", op.Pool)
	assert.Equal(t, 2400, op.GPUs)
	assert.Equal(t, 960, op.MIGInstances)
	assert.Equal(t, 5760, s.Total.GPUs)
	assert.Equal(t, 960, s.Total.MIGInstances)

	// The onprem hall retires, and what runs on it is counted.
	require.Len(t, s.Retiring, 1)
	assert.Equal(t, retiring{Pool: "hz-onprem", RetireAt: "2027-03-31T00:00:00Z", Jobs: 2579, Tasks: 2579}, s.Retiring[0])
}

func TestPlaceDemoTable(t *testing.T) {
	code, out, _ := petite(t, nil, "place")
	require.Equal(t, exitOK, code)
	for _, want := range []string{
		"Placed openb_pod_list_default.csv (openb, embedded) on the demo fleet (embedded) with policy fgd+cost (cost tier on: owned capacity first, then the cheapest cloud).\n",
		"jobs 8152: placed 7604 (93.3%), unplaced 548; GPU allocation 92.89%; cloud spend $5231.33/hour\n",
		"  pool               kind      nodes            GPUs         GPUs used  GPU alloc  CPU alloc  jobs  tasks   $/hour  retires\n" +
			"  hz-onprem          onprem      470            1360            1306.8     96.09%     65.71%  2579   2579     0.00  2027-03-31\n" +
			"  hz-outposts        outposts    340  2400 + 960 MIG  2278.5 + 454 MIG     90.23%     77.65%  2872   2872     0.00  -\n" +
			"  cloud-sh-ondemand  cloud       200            1600            1502.9     93.93%     72.34%  1694   1694  4809.31  -\n" +
			"  cloud-sg-spot      cloud       100             400             383.6     95.91%     69.91%   459    459   422.02  -\n" +
			"  total                         1110  5760 + 960 MIG  5471.9 + 454 MIG     92.89%     71.05%  7604   7604  5231.33\n",
		"unplaced jobs by the reason that stopped them:\n  not enough free GPUs                         548 jobs\n",
		"  job             asks for                      stopped by\n" +
			"  openb-pod-7533  0.81 GPU, 3.15 CPU, 5.47 GiB  not enough free GPUs\n" +
			"  openb-pod-7534  1 GPU, 11.4 CPU, 76 GiB       not enough free GPUs\n",
		"2579 jobs (2579 tasks) placed on hz-onprem, which retires on 2027-03-31: they need a place elsewhere by then.\n",
		"unplaced jobs by the reason that stopped them:\n",
		"unplaced jobs, in order of submission (first 10 of 548; -o json lists all):\n",
		"stranded GPU capacity: 424.6 GPUs (free GPU capacity that no task of the workload's usual mix could use where it lies)\n",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "nodes ruled out")
	assert.Equal(t, 10, strings.Count(out[strings.Index(out, "unplaced jobs, in order"):], "openb-pod-"), "ten jobs listed")

	_, out, _ = petite(t, nil, "place", "--show-unplaced", "3", "--verbose")
	assert.Equal(t, 3, strings.Count(out[strings.Index(out, "unplaced jobs, in order"):], "openb-pod-"))
	assert.Contains(t, out, "nodes ruled out, per reason, summed over those jobs:\n")
	_, out, _ = petite(t, nil, "place", "--show-unplaced", "0")
	assert.NotContains(t, out, "unplaced jobs, in order")
}

func TestPlaceCostFillsOwnedFirst(t *testing.T) {
	dir := t.TempDir()
	fleetPath := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(fleetPath, []byte(`
pools:
  - name: own
    kind: onprem
    nodes:
      - {count: 1, cpu_milli: 64000, memory_mib: 65536, gpus: {count: 4, model: L4}}
  - name: cloud
    kind: cloud
    price_per_gpu_hour: 2.5
    nodes:
      - {count: 1, cpu_milli: 64000, memory_mib: 65536, gpus: {count: 4, model: L4}}
`), 0o644))
	podsPath := filepath.Join(dir, "pods.csv")
	var b strings.Builder
	b.WriteString("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n")
	for i := 0; i < 4; i++ {
		b.WriteString("p" + string(rune('0'+i)) + ",1000,1024,1,1000,,BE,Running,0,10,0\n")
	}
	require.NoError(t, os.WriteFile(podsPath, []byte(b.String()), 0o644))

	// Spread alone puts half the work on the cloud node.
	s, _ := placeJSON(t, "--fleet", fleetPath, "--pods", podsPath, "--policy", "spread", "--cost=false")
	assert.Equal(t, 4, s.Placed)
	assert.Equal(t, 5.0, s.CostPerHour)
	// With the cost tier the owned node takes all four first.
	s, _ = placeJSON(t, "--fleet", fleetPath, "--pods", podsPath, "--policy", "spread")
	assert.Equal(t, 4, s.Placed)
	assert.Zero(t, s.CostPerHour)
	assert.Equal(t, 4, s.Pools[0].Tasks)
}

// A pod scheduled before it was created is a bad record for place as for
// trace stats: skipped and counted by the lenient read, an error under
// --strict, naming file, line and field.
func TestPlaceBadRecords(t *testing.T) {
	dir := t.TempDir()
	pods := filepath.Join(dir, "pods.csv")
	require.NoError(t, os.WriteFile(pods, []byte(
		"name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"+
			"ok,1000,1024,1,1000,,BE,Running,0,10,0\n"+
			"early,1000,1024,1,1000,,BE,Running,100,200,50\n"), 0o644))

	s, _ := placeJSON(t, "--pods", pods)
	assert.Equal(t, 1, s.Jobs)
	assert.Equal(t, 1, s.BadRecords.Skipped)
	require.Len(t, s.BadRecords.Examples, 1)
	assert.Contains(t, s.BadRecords.Examples[0], "pods.csv:3")
	assert.Contains(t, s.BadRecords.Examples[0], "scheduled_time")

	code, _, statsErr := petite(t, nil, "trace", "stats", "--json", pods)
	require.Equal(t, exitOK, code, statsErr)

	code, out, errOut := petite(t, nil, "place", "--pods", pods)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "1 bad record")

	code, _, errOut = petite(t, nil, "place", "--strict", "--pods", pods)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "pods.csv:3")
	assert.Contains(t, errOut, "scheduled_time")

	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,x,1,0,0\n"), 0o644))
	code, _, errOut = petite(t, nil, "place", "--strict", "--pods", bad)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "bad.csv:2")
	assert.Contains(t, errOut, "cpu_milli")
	code, _, errOut = petite(t, nil, "place", "--pods", bad)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no jobs to place (1 bad records skipped")
}

// --pods reads every job format and standard input; --fleet reads machine
// lists as one default pool, and standard input.
func TestPlaceInputs(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	td := func(p string) string { return filepath.Join(repo, "traces", "testdata", p) }
	tests := []struct {
		name  string
		args  []string
		stdin string // a file fed on stdin
		want  string // in the first line
		jobs  int
	}{
		{"philly jobs on the philly machines", []string{"--fleet", td("philly/cluster_machine_list"), "--pods", td("philly/cluster_job_log")}, "",
			"(philly) on " + td("philly/cluster_machine_list") + ` (philly-machines, one pool "default")`, -1},
		{"PAI tasks joined with their jobs", []string{"--fleet", td("pai/pai_machine_spec.csv"), "--pods", td("pai/pai_task_table.csv")}, "", "(pai) on", -1},
		{"helios on stdin", []string{"--pods", "-"}, td("helios/cluster_log.csv"), "stdin (helios)", -1},
		{"openb nodes on stdin", []string{"--fleet", "-", "--pods", td("openb/openb_pod_list_multigpu20_head.csv")}, filepath.Join(repo, "traces/samples/openb_node_list_gpu_node.csv"),
			`on stdin (openb-nodes, one pool "default")`, -1},
		{"the demo fleet YAML on stdin", []string{"--fleet", "-"}, filepath.Join(repo, "scheduler/fleet/demo.yaml"), "on stdin with policy", 8152},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in *os.File
			if tc.stdin != "" {
				f, err := os.Open(tc.stdin)
				require.NoError(t, err)
				defer f.Close()
				in = f
			}
			var code int
			var out, errOut string
			if in != nil {
				code, out, errOut = petite(t, in, append([]string{"place"}, tc.args...)...)
			} else {
				code, out, errOut = petite(t, nil, append([]string{"place"}, tc.args...)...)
			}
			require.Equal(t, exitOK, code, errOut)
			first, _, _ := strings.Cut(out, "\n")
			assert.Contains(t, first, tc.want)
			if tc.jobs > 0 {
				assert.Contains(t, out, "jobs 8152:")
			}
			if strings.Contains(tc.name, "philly machines") {
				assert.Contains(t, out, "  default  onprem      9    24       15.0     62.50%    unknown     5      7    0.00  -\n",
					"a machine list without CPU has no CPU allocation to show")
			}
		})
	}

	code, _, errOut := petite(t, nil, "place", "--fleet", td("philly/cluster_job_log"))
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "is a philly job trace, not a fleet (give it to --pods)")
	code, _, errOut = petite(t, nil, "place", "--fleet", td("helios/earth_cluster_gpu_number.csv"))
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "virtual cluster")
	code, _, errOut = petite(t, nil, "place", "--fleet", "-", "--pods", "-")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "cannot both read standard input")
}

// The canonical format is a workload like any other: the demo workload
// converted to petite-csv and JSON Lines places as the openb file does.
func TestPlaceCanonical(t *testing.T) {
	want, _ := placeJSON(t)
	dir := t.TempDir()
	for _, name := range []string{"default.csv", "default.jsonl"} {
		path := filepath.Join(dir, name)
		repo, err := filepath.Abs("../..")
		require.NoError(t, err)
		code, _, errOut := petite(t, nil, "trace", "convert", filepath.Join(repo, "traces/samples/openb_pod_list_default.csv"), path)
		require.Equal(t, exitOK, code, errOut)
		got, _ := placeJSON(t, "--pods", path)
		assert.Equal(t, want.Jobs, got.Jobs, name)
		assert.Equal(t, want.Placed, got.Placed, name)
		assert.Equal(t, want.GPUAllocPct, got.GPUAllocPct, name)
		assert.Equal(t, want.StrandedGPUs, got.StrandedGPUs, name)
		assert.Equal(t, want.Pools, got.Pools, name)
	}
}

// An unplaced job gets one reason: the check that stopped it on the
// nodes that came closest to taking it.
func TestExplainOneReason(t *testing.T) {
	pools := []scheduler.Pool{{Name: "p", Kind: scheduler.PoolOnPrem}}
	t4 := func(name string) scheduler.Node {
		return scheduler.Node{Name: name, Pool: "p", CPUMilli: 8000, MemoryMiB: 65536,
			GPUs: []scheduler.GPU{{Model: "T4"}, {Model: "T4"}}}
	}
	cpuOnly := scheduler.Node{Name: "cpu", Pool: "p", CPUMilli: 64000, MemoryMiB: 65536}
	c, err := scheduler.NewCluster(pools, []scheduler.Node{t4("a"), t4("b"), cpuOnly})
	require.NoError(t, err)
	p, err := scheduler.NewPolicy(c, "best-fit", scheduler.Options{})
	require.NoError(t, err)
	gpuTask := func(gpus int, models ...string) scheduler.Task {
		return scheduler.Task{GPUs: gpus, GPUMilli: 1000, Models: models, CPUMilli: 1000, MemoryMiB: 1024}
	}
	tests := []struct {
		name string
		job  scheduler.Job
		want string
		// nodes ruled out, per reason
		nodes map[string]int
	}{
		{"a model the fleet lacks", scheduler.Job{ID: "h", Count: 1, Task: gpuTask(1, "H100")}, "GPU model not accepted",
			map[string]int{"GPU model not accepted": 2, "node has no GPU": 1}},
		{"more GPUs than a node has", scheduler.Job{ID: "w", Count: 1, Task: gpuTask(4)}, "not enough free GPUs",
			map[string]int{"not enough free GPUs": 2, "node has no GPU": 1}},
		{"more CPU than any node", scheduler.Job{ID: "c", Count: 1, Task: scheduler.Task{CPUMilli: 100000}}, "not enough free CPU",
			map[string]int{"not enough free CPU": 3}},
		{"a gang wider than the fleet", scheduler.Job{ID: "g", Count: 3, Task: gpuTask(2)}, "the gang of 3 does not fit (2 nodes can take one task)",
			map[string]int{"node has no GPU": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes := map[string]int{}
			assert.Equal(t, tc.want, explain(c, p, &tc.job, nodes))
			assert.Equal(t, tc.nodes, nodes)
		})
	}
}
