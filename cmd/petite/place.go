package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petite/scheduler"
	"petite/scheduler/fleet"
	"petite/simulator/frag"
	"petite/traces"
	"petite/traces/samples"
)

// placeCommand places a workload on a fleet with the scheduler core.
func placeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "place",
		Short: "Place a workload on a fleet and print the placement summary.",
		Long: `Places every job of an openb pod list, in arrival order and one at a time,
on a fleet described in YAML, with the scheduler core and the chosen policy.
With no flags it runs the demo: the embedded hybrid fleet (onprem, outposts,
two cloud pools) and the Alibaba GPU 2023 default workload.`,
		Example: examples(
			"# the demo: the embedded fleet and the openb default workload",
			"petite place",
			"# another policy, without the cost tier, as JSON",
			"petite place --policy best-fit --cost=false -o json",
			"# a fleet file and a pod list",
			"petite place --fleet scheduler/fleet/demo.yaml --pods traces/testdata/openb/openb_pod_list_multigpu20_head.csv",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	fleetPath := fs.String("fleet", "", "fleet YAML file (default: the embedded demo fleet)")
	podsPath := fs.String("pods", "", "openb pod list CSV (default: the embedded openb default workload)")
	policy := fs.String("policy", "fgd", "placement policy: "+strings.Join(scheduler.PolicyNames(), ", "))
	cost := fs.Bool("cost", true, "fill owned capacity before cloud, cheapest cloud first (--cost=false to turn off)")
	seed := fs.Uint64("seed", defaultSeed, "seed for the random policy")
	output := addOutputFlag(fs, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		if !slices.Contains(scheduler.PolicyNames(), *policy) {
			return usageErr("--policy: unknown policy %q (known: %s)", *policy, strings.Join(scheduler.PolicyNames(), ", "))
		}
		return runPlace(cmd.OutOrStdout(), *fleetPath, *podsPath, *policy, *cost, *seed, format == "json")
	}
	return cmd
}

// poolSummary is one pool's line of the placement summary.
type poolSummary struct {
	Pool        string  `json:"pool"`
	Kind        string  `json:"kind"`
	Nodes       int     `json:"nodes"`
	GPUs        float64 `json:"gpus"`
	GPUAllocPct float64 `json:"gpu_alloc_pct"`
	CPUAllocPct float64 `json:"cpu_alloc_pct"`
	Tasks       int     `json:"tasks"`
	CostPerHour float64 `json:"cost_per_hour"`
}

// placeSummary is the outcome of `petite place`.
type placeSummary struct {
	Policy        string         `json:"policy"`
	Jobs          int            `json:"jobs"`
	Placed        int            `json:"placed"`
	Unplaced      int            `json:"unplaced"`
	GPUAllocPct   float64        `json:"gpu_alloc_pct"`
	FragmentGPUs  float64        `json:"fragment_gpus"`
	Pools         []poolSummary  `json:"pools"`
	UnplacedWhy   map[string]int `json:"unplaced_reasons"`
	CostPerHour   float64        `json:"cost_per_hour"`
	elapsed       time.Duration
	fleet, source string
}

func runPlace(w io.Writer, fleetPath, podsPath, policy string, cost bool, seed uint64, asJSON bool) error {
	pools, nodes, err := fleet.Load(fleetPath)
	if err != nil {
		return err
	}
	var pods []traces.OpenbPod
	source, file := "openb_pod_list_default.csv (embedded)", samples.OpenbDefaultPodsFile
	if podsPath == "" {
		pods, err = traces.ReadOpenbPods(bytes.NewReader(samples.OpenbDefaultPods()), file)
	} else {
		source, file = podsPath, podsPath
		pods, err = traces.LoadOpenbPods(podsPath)
	}
	if err != nil {
		return err
	}
	// The fragmentation experiment's reading of a pod list: requests
	// normalised as its method says, and the workload's mix for fgd.
	wl, err := frag.NewWorkload(frag.WorkloadName(file), file, pods)
	if err != nil {
		return err
	}
	c, err := scheduler.NewCluster(pools, nodes)
	if err != nil {
		return err
	}
	p, err := scheduler.NewPolicy(c, policy, scheduler.Options{Cost: cost, Target: wl.Target})
	if err != nil {
		return err
	}
	jobs := jobsOf(pods, wl)
	rng := newRand(seed)
	sum := placeSummary{Policy: p.Name, Jobs: len(jobs), UnplacedWhy: map[string]int{}, source: source}
	if fleetPath == "" {
		sum.fleet = "the demo fleet (embedded)"
	} else {
		sum.fleet = fleetPath
	}
	tasks := make([]int, c.NumNodes())
	var out []scheduler.Assign
	start := time.Now()
	for i := range jobs {
		var ok bool
		before := len(out)
		out, ok, err = c.PlaceJob(p, &jobs[i], rng, out)
		if err != nil {
			return err
		}
		if !ok {
			sum.Unplaced++
			if sum.Unplaced <= 50 { // explaining scans every node: sample the first few
				s, _ := c.ShapeOf(&jobs[i].Task)
				for r, k := range c.Explain(p, &s) {
					if r != scheduler.Fit {
						sum.UnplacedWhy[r.String()] += k
					}
				}
			}
			continue
		}
		sum.Placed++
		for _, a := range out[before:] {
			tasks[a.Node]++
		}
	}
	sum.elapsed = time.Since(start)
	summarisePools(c, tasks, &sum)
	fgd := &scheduler.FGD{Target: wl.Target}
	for n := 0; n < c.NumNodes(); n++ {
		sum.FragmentGPUs += fgd.Frag(c, scheduler.NodeID(n)) / scheduler.MilliPerGPU
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	printPlace(w, &sum)
	return nil
}

func summarisePools(c *scheduler.Cluster, tasks []int, sum *placeSummary) {
	byPool := map[string]*poolSummary{}
	var cpuCap, cpuUsed = map[string]int64{}, map[string]int64{}
	var gpuCap, gpuUsed = map[string]int64{}, map[string]int64{}
	for _, p := range c.Pools() {
		ps := &poolSummary{Pool: p.Name, Kind: p.Kind.String()}
		byPool[p.Name] = ps
		sum.Pools = append(sum.Pools, *ps)
	}
	var allCap, allUsed int64
	for n := 0; n < c.NumNodes(); n++ {
		id := scheduler.NodeID(n)
		pool := c.PoolOf(id)
		ps := byPool[pool.Name]
		u := c.Usage(id)
		ps.Nodes++
		ps.Tasks += tasks[n]
		cpuCap[pool.Name] += u.CPUCap
		cpuUsed[pool.Name] += u.CPUCap - u.CPUFree
		gpuCap[pool.Name] += u.GPUCap
		gpuUsed[pool.Name] += u.GPUCap - u.GPUFree
		allCap += u.GPUCap
		allUsed += u.GPUCap - u.GPUFree
		ps.CostPerHour += pool.PricePerGPUHour * float64(u.GPUCap-u.GPUFree) / scheduler.MilliPerGPU
	}
	for i := range sum.Pools {
		ps := byPool[sum.Pools[i].Pool]
		name := ps.Pool
		ps.GPUs = float64(gpuCap[name]) / scheduler.MilliPerGPU
		ps.GPUAllocPct = pct(gpuUsed[name], gpuCap[name])
		ps.CPUAllocPct = pct(cpuUsed[name], cpuCap[name])
		ps.CostPerHour = cents(ps.CostPerHour)
		sum.CostPerHour += ps.CostPerHour
		sum.Pools[i] = *ps
	}
	sum.GPUAllocPct = pct(allUsed, allCap)
	sum.CostPerHour = cents(sum.CostPerHour)
}

func cents(x float64) float64 { return math.Round(100*x) / 100 }

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(int64(10000*float64(a)/float64(b)+0.5)) / 100
}

func printPlace(w io.Writer, s *placeSummary) {
	fmt.Fprintf(w, "Placed %s on %s with policy %s.\n\n", s.source, s.fleet, s.Policy)
	fmt.Fprintf(w, "jobs %d: placed %d (%.1f%%), unplaced %d; GPU allocation %.2f%%; cloud spend $%.2f/hour\n\n",
		s.Jobs, s.Placed, 100*float64(s.Placed)/float64(max(s.Jobs, 1)), s.Unplaced, s.GPUAllocPct, s.CostPerHour)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pool\tkind\tnodes\tGPUs\tGPU alloc\tCPU alloc\ttasks\t$/hour\t")
	for _, p := range s.Pools {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f%%\t%.2f%%\t%d\t%.2f\t\n", p.Pool, p.Kind, p.Nodes, p.GPUs, p.GPUAllocPct, p.CPUAllocPct, p.Tasks, p.CostPerHour)
	}
	tw.Flush()
	if s.Unplaced > 0 {
		type kv struct {
			k string
			v int
		}
		var why []kv
		for k, v := range s.UnplacedWhy {
			why = append(why, kv{k, v})
		}
		slices.SortFunc(why, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k)) })
		fmt.Fprintf(w, "\nwhy jobs did not fit: nodes ruled out, and why, summed over the first %d unplaced jobs\n", min(s.Unplaced, 50))
		for _, x := range why {
			fmt.Fprintf(w, "  %-34s %d\n", x.k, x.v)
		}
	}
	fmt.Fprintf(w, "\nstranded GPU capacity (fragmentation against the workload's mix): %.1f GPUs\n", s.FragmentGPUs)
	fmt.Fprintf(w, "placement took %v (%.0f jobs/s)\n", s.elapsed.Round(time.Millisecond), float64(s.Jobs)/max(s.elapsed.Seconds(), 1e-9))
}

// jobsOf turns openb pods into one-task jobs in arrival order. Latency-
// sensitive pods are inference services; the rest are training.
func jobsOf(pods []traces.OpenbPod, w *frag.Workload) []scheduler.Job {
	jobs := make([]scheduler.Job, len(pods))
	for i, p := range pods {
		j := scheduler.Job{ID: p.Name, Count: 1, Tenant: "default", Submitted: p.Creation, Task: w.Pods[i].Task()}
		if p.QoS == "LS" {
			j.Kind = scheduler.Inference
		}
		jobs[i] = j
	}
	slices.SortStableFunc(jobs, func(a, b scheduler.Job) int { return cmp.Compare(a.Submitted, b.Submitted) })
	return jobs
}
