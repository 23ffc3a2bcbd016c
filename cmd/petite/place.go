package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petite/scheduler"
	"petite/simulator/frag"
	"petite/simulator/workload"
	"petite/traces"
)

// defaultShowUnplaced is how many unplaced jobs the table lists.
const defaultShowUnplaced = 10

// maxExplained bounds the unplaced jobs whose reason is worked out:
// explaining one scans every node.
const maxExplained = 10000

// placeCommand places a workload on a fleet with the scheduler core.
func placeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "place",
		Short: "Place a workload on a fleet and print the placement summary.",
		Long: `Places every job of a workload, in order of submission and one at a time,
on a fleet, with the scheduler core and the chosen policy, and prints per pool
the GPUs and CPU allocated, the cloud spend, the jobs that did not fit and why,
and the GPU capacity stranded by fragmentation.

--pods takes any job trace the trace tools read (openb pod lists, PAI, Philly,
Helios, petite's canonical CSV or JSON Lines; --format names it when sniffing
cannot). Bad records are skipped and counted as 'petite trace stats' counts
them; --strict stops at the first. --fleet takes a fleet YAML or a machine list
(openb node list, PAI machine spec, Philly machine list), whose machines form
one owned pool named "default". Either may be "-" for standard input.

With no flags it runs the demo: the embedded hybrid fleet (onprem, outposts,
two cloud pools) and the Alibaba GPU 2023 "openb" default workload.

The cost tier (--cost, on by default) fills owned capacity before cloud and
the cheapest cloud first; --cost=false places on every pool alike.`,
		Example: examples(
			"# the demo: the embedded fleet and the openb default workload",
			"petite place",
			"# another policy, without the cost tier, every unplaced job as JSON",
			"petite place --policy best-fit --cost=false -o json",
			"# a fleet file and a pod list",
			"petite place --fleet scheduler/fleet/demo.yaml --pods traces/testdata/openb/openb_pod_list_multigpu20_head.csv",
			"# a Philly job log on a machine list, the node counts behind each reason",
			"petite place --fleet traces/testdata/philly/cluster_machine_list --pods traces/testdata/philly/cluster_job_log --verbose",
			"# a workload on standard input",
			"petite place --pods - < traces/testdata/helios/cluster_log.csv",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	var cfg placeConfig
	fs.StringVar(&cfg.fleet, "fleet", "", `fleet YAML or machine list, "-" for stdin (default: the embedded demo fleet)`)
	fs.StringVar(&cfg.pods, "pods", "", `job trace of any known format, "-" for stdin (default: the embedded openb default workload)`)
	format := fs.String("format", "auto", "format of --pods: auto, openb, pai, philly, helios, petite-csv, petite-jsonl")
	fs.BoolVar(&cfg.strict, "strict", false, "fail on the first bad record of --pods instead of skipping it")
	fs.StringVar(&cfg.policy, "policy", "fgd", "placement policy: "+strings.Join(scheduler.PolicyNames(), ", "))
	fs.BoolVar(&cfg.cost, "cost", true, "fill owned capacity before cloud, cheapest cloud first (--cost=false to turn off)")
	fs.Uint64Var(&cfg.seed, "seed", defaultSeed, "seed of the random policy and of ties")
	fs.IntVar(&cfg.showUnplaced, "show-unplaced", defaultShowUnplaced, "list this many unplaced jobs in the table (JSON lists all)")
	fs.BoolVarP(&cfg.verbose, "verbose", "v", false, "also count, per reason, the nodes that ruled the unplaced jobs out")
	output := addOutputFlag(fs, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var err error
		if cfg.output, err = output.format(); err != nil {
			return err
		}
		if cfg.format, err = traces.ParseFormat(*format); err != nil {
			return usageErr("--format: %v", err)
		}
		if cfg.format.IsFleet() {
			return usageErr("--format: %s is a machine list; give it to --fleet", cfg.format)
		}
		if !slices.Contains(scheduler.PolicyNames(), cfg.policy) {
			return usageErr("--policy: unknown policy %q (known: %s)", cfg.policy, strings.Join(scheduler.PolicyNames(), ", "))
		}
		if cfg.showUnplaced < 0 {
			return usageErr("--show-unplaced: want 0 or more, got %d", cfg.showUnplaced)
		}
		if cfg.fleet == "-" && cfg.pods == "-" {
			return usageErr("--fleet and --pods cannot both read standard input")
		}
		return runPlace(cmd, &cfg)
	}
	return cmd
}

// placeConfig is what `petite place` was asked to do.
type placeConfig struct {
	fleet, pods  string
	format       traces.Format
	strict       bool
	policy       string
	cost         bool
	seed         uint64
	showUnplaced int
	verbose      bool
	output       string
}

// poolSummary is one pool's line of the placement summary.
type poolSummary struct {
	Pool  string `json:"pool"`
	Kind  string `json:"kind"`
	Nodes int    `json:"nodes"`
	// GPUs counts whole GPUs; MIGInstances the MIG instances of
	// partitioned GPUs, each a device of its own.
	GPUs         int `json:"gpus"`
	MIGInstances int `json:"mig_instances"`
	// GPUsUsed is the whole GPUs allocated (fractions of shared GPUs
	// summed); MIGUsed the MIG instances allocated.
	GPUsUsed float64 `json:"gpus_used"`
	MIGUsed  int     `json:"mig_used"`
	// GPUAllocPct is the allocated share of all GPU capacity (MIG included).
	GPUAllocPct float64 `json:"gpu_alloc_pct"`
	CPUAllocPct float64 `json:"cpu_alloc_pct"`
	// CPUUnknown says the machine list gave no CPU for some node, so the
	// pool's CPU is not limited and its allocation not measured.
	CPUUnknown  bool    `json:"cpu_unknown,omitempty"`
	Tasks       int     `json:"tasks"`
	Jobs        int     `json:"jobs"`
	CostPerHour float64 `json:"cost_per_hour"`
	// RetireAt is the pool's retirement date (RFC 3339), "" if it stays.
	RetireAt string `json:"retire_at,omitempty"`
	gpuCap   int64
	gpuUsed  int64
	cpuCap   int64
	cpuUsed  int64
	retireAt int64
}

// unplacedJob is a job that found no place, with what it asked for and
// the one reason that stopped it.
type unplacedJob struct {
	ID     string `json:"id"`
	Count  int    `json:"count"`
	GPUs   int    `json:"gpus"`
	GPUMil int    `json:"gpu_milli"`
	Models string `json:"models,omitempty"`
	CPU    int64  `json:"cpu_milli"`
	Mem    int64  `json:"memory_mib"`
	Reason string `json:"reason"`
}

// retiring is the work placed on a pool that retires.
type retiring struct {
	Pool     string `json:"pool"`
	RetireAt string `json:"retire_at"`
	Jobs     int    `json:"jobs"`
	Tasks    int    `json:"tasks"`
}

// placeSummary is the outcome of `petite place`.
type placeSummary struct {
	Policy     string          `json:"policy"`
	Cost       bool            `json:"cost"`
	Jobs       int             `json:"jobs"`
	Placed     int             `json:"placed"`
	Unplaced   int             `json:"unplaced"`
	BadRecords traces.Problems `json:"bad_records"`
	// Dropped counts the trace's jobs that cannot be placed at all.
	Dropped     workload.Dropped `json:"dropped"`
	GPUAllocPct float64          `json:"gpu_alloc_pct"`
	// StrandedGPUs is free GPU capacity no task of the workload's usual
	// mix can use where it lies (fragmentation, Weng et al., ATC'23).
	StrandedGPUs float64       `json:"stranded_gpus"`
	Pools        []poolSummary `json:"pools"`
	Total        poolSummary   `json:"total"`
	// UnplacedWhy counts the unplaced jobs by the reason that stopped them.
	UnplacedWhy map[string]int `json:"unplaced_reasons"`
	// NodeReasons counts, over the unplaced jobs, the nodes ruled out per
	// reason (--verbose).
	NodeReasons  map[string]int `json:"node_reasons,omitempty"`
	UnplacedJobs []unplacedJob  `json:"unplaced_jobs"`
	Explained    int            `json:"explained"`
	Retiring     []retiring     `json:"retiring,omitempty"`
	CostPerHour  float64        `json:"cost_per_hour"`
	elapsed      time.Duration
	fleet        string
	source       string
	show         int
	verbose      bool
}

func runPlace(cmd *cobra.Command, cfg *placeConfig) error {
	pools, nodes, fleetName, err := readFleetArg(cmd, cfg.fleet)
	if err != nil {
		return err
	}
	in, err := readJobsArg(cmd, cfg.pods, traces.Options{Format: cfg.format, Strict: cfg.strict})
	if err != nil {
		return err
	}
	if len(in.jobs) == 0 {
		return fmt.Errorf("%s: no jobs to place (%d bad records skipped, %d jobs dropped)", in.name, in.problems.Skipped, in.dropped.Total())
	}
	c, err := scheduler.NewCluster(pools, nodes)
	if err != nil {
		return err
	}
	target := targetOf(in.jobs)
	p, err := scheduler.NewPolicy(c, cfg.policy, scheduler.Options{Cost: cfg.cost, Target: target})
	if err != nil {
		return err
	}
	sum := placeSummary{
		Policy: p.Name, Cost: cfg.cost, Jobs: len(in.jobs), BadRecords: in.problems, Dropped: in.dropped,
		UnplacedWhy: map[string]int{}, UnplacedJobs: []unplacedJob{},
		fleet: fleetName, source: in.name, show: cfg.showUnplaced, verbose: cfg.verbose,
	}
	if cfg.verbose {
		sum.NodeReasons = map[string]int{}
	}
	tasks := make([]int, c.NumNodes())
	jobsOn := make([]int, len(c.Pools()))
	poolIndex := map[string]int{}
	for i, pl := range c.Pools() {
		poolIndex[pl.Name] = i
	}
	seenPool := make([]bool, len(c.Pools()))
	rng := newRand(cfg.seed)
	var out []scheduler.Assign
	var explaining time.Duration // not placement: left out of its time
	start := time.Now()
	for i := range in.jobs {
		j := &in.jobs[i]
		var ok bool
		before := len(out)
		out, ok, err = c.PlaceJob(p, j, rng, out)
		if err != nil {
			return err
		}
		if !ok {
			sum.Unplaced++
			u := unplacedOf(j)
			if sum.Explained < maxExplained {
				t0 := time.Now()
				sum.Explained++
				u.Reason = explain(c, p, j, sum.NodeReasons)
				sum.UnplacedWhy[u.Reason]++
				explaining += time.Since(t0)
			}
			sum.UnplacedJobs = append(sum.UnplacedJobs, u)
			continue
		}
		sum.Placed++
		clear(seenPool)
		for _, a := range out[before:] {
			tasks[a.Node]++
			k := poolIndex[c.PoolOf(a.Node).Name]
			if !seenPool[k] {
				seenPool[k] = true
				jobsOn[k]++
			}
		}
	}
	sum.elapsed = time.Since(start) - explaining
	summarisePools(c, tasks, jobsOn, &sum)
	fgd := &scheduler.FGD{Target: target}
	for n := 0; n < c.NumNodes(); n++ {
		sum.StrandedGPUs += fgd.Frag(c, scheduler.NodeID(n)) / scheduler.MilliPerGPU
	}
	sum.StrandedGPUs = cents(sum.StrandedGPUs)
	w := cmd.OutOrStdout()
	if cfg.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(&sum)
	}
	return printPlace(w, &sum)
}

// targetOf is the workload's usual mix of tasks that fragmentation is
// measured against: the experiment's target (frag.TargetOf) over every
// task instance of the jobs.
func targetOf(jobs []scheduler.Job) []scheduler.TargetType {
	var pods []frag.Pod
	for i := range jobs {
		t := &jobs[i].Task
		p := frag.Pod{CPU: t.CPUMilli, Mem: t.MemoryMiB, GPUs: int32(t.GPUs), Milli: int32(t.GPUMilli), Models: strings.Join(t.Models, "|")}
		for range jobs[i].Count {
			pods = append(pods, p)
		}
	}
	return frag.TargetOf(pods)
}

func unplacedOf(j *scheduler.Job) unplacedJob {
	return unplacedJob{ID: j.ID, Count: j.Count, GPUs: j.Task.GPUs, GPUMil: j.Task.GPUMilli,
		Models: strings.Join(j.Task.Models, "|"), CPU: j.Task.CPUMilli, Mem: j.Task.MemoryMiB}
}

// explain names the one reason that stopped a job: of the reasons nodes
// gave, the one reached furthest along the checks (labels, CPU, memory, a
// GPU at all, the model, free GPUs, the policy). It is what stands
// between the job and the nodes that came closest to taking it. When every
// node could take one task, the gang as a whole did not fit. nodeReasons,
// when not nil, adds the nodes ruled out per reason.
func explain(c *scheduler.Cluster, p *scheduler.Policy, j *scheduler.Job, nodeReasons map[string]int) string {
	s, err := c.ShapeOf(&j.Task)
	if err != nil {
		return err.Error()
	}
	why := c.Explain(p, &s)
	best, fits := scheduler.Fit, 0
	for r, k := range why {
		if r == scheduler.Fit {
			fits = k
			continue
		}
		if nodeReasons != nil {
			nodeReasons[r.String()] += k
		}
		best = max(best, r)
	}
	if fits > 0 && j.Count > 1 {
		return fmt.Sprintf("the gang of %d does not fit (%d nodes can take one task)", j.Count, fits)
	}
	if best == scheduler.Fit {
		return "no node can take it"
	}
	return best.String()
}

func summarisePools(c *scheduler.Cluster, tasks, jobsOn []int, sum *placeSummary) {
	sum.Pools = make([]poolSummary, len(c.Pools()))
	index := map[string]int{}
	for i, p := range c.Pools() {
		sum.Pools[i] = poolSummary{Pool: p.Name, Kind: p.Kind.String(), Jobs: jobsOn[i], retireAt: p.RetireAt}
		if p.RetireAt != 0 {
			sum.Pools[i].RetireAt = time.Unix(p.RetireAt, 0).UTC().Format(time.RFC3339)
		}
		index[p.Name] = i
	}
	for n := 0; n < c.NumNodes(); n++ {
		id := scheduler.NodeID(n)
		pool := c.PoolOf(id)
		ps := &sum.Pools[index[pool.Name]]
		u := c.Usage(id)
		node := c.Node(id)
		ps.Nodes++
		ps.Tasks += tasks[n]
		if node.CPUMilli >= scheduler.MaxNodeCPUMilli {
			ps.CPUUnknown = true // a machine list without CPU (workload.Fleet)
		}
		ps.cpuCap += u.CPUCap
		ps.cpuUsed += u.CPUCap - u.CPUFree
		ps.gpuCap += u.GPUCap
		ps.gpuUsed += u.GPUCap - u.GPUFree
		for g := range node.GPUs {
			used := int64(gpuCapOf(&node.GPUs[g])) - int64(u.GPUs[g])
			if node.GPUs[g].MIG != "" {
				ps.MIGInstances++
				if used > 0 {
					ps.MIGUsed++
				}
				continue
			}
			ps.GPUs++
			ps.GPUsUsed += float64(used) / scheduler.MilliPerGPU
		}
		ps.CostPerHour += pool.PricePerGPUHour * float64(u.GPUCap-u.GPUFree) / scheduler.MilliPerGPU
	}
	t := &sum.Total
	t.Pool, t.Kind = "total", ""
	for i := range sum.Pools {
		ps := &sum.Pools[i]
		ps.GPUAllocPct = pct(ps.gpuUsed, ps.gpuCap)
		ps.CPUAllocPct = pct(ps.cpuUsed, ps.cpuCap)
		ps.CostPerHour = cents(ps.CostPerHour)
		ps.GPUsUsed = cents(ps.GPUsUsed)
		t.Nodes += ps.Nodes
		t.GPUs += ps.GPUs
		t.MIGInstances += ps.MIGInstances
		t.GPUsUsed += ps.GPUsUsed
		t.MIGUsed += ps.MIGUsed
		t.Tasks += ps.Tasks
		t.CostPerHour += ps.CostPerHour
		t.gpuCap += ps.gpuCap
		t.gpuUsed += ps.gpuUsed
		if ps.CPUUnknown {
			ps.CPUAllocPct = 0
			t.CPUUnknown = true
		} else {
			t.cpuCap += ps.cpuCap
			t.cpuUsed += ps.cpuUsed
		}
		if ps.RetireAt != "" && ps.Tasks > 0 {
			sum.Retiring = append(sum.Retiring, retiring{Pool: ps.Pool, RetireAt: ps.RetireAt, Jobs: ps.Jobs, Tasks: ps.Tasks})
		}
	}
	t.Jobs = sum.Placed
	t.GPUsUsed = cents(t.GPUsUsed)
	t.GPUAllocPct = pct(t.gpuUsed, t.gpuCap)
	t.CPUAllocPct = pct(t.cpuUsed, t.cpuCap)
	t.CostPerHour = cents(t.CostPerHour)
	sum.GPUAllocPct = t.GPUAllocPct
	sum.CostPerHour = t.CostPerHour
}

// gpuCapOf is a device's capacity in milli-GPU, as the core counts it.
func gpuCapOf(g *scheduler.GPU) int32 {
	if g.MilliCap > 0 {
		return g.MilliCap
	}
	return scheduler.MilliPerGPU
}

func cents(x float64) float64 { return float64(int64(100*x+0.5)) / 100 }

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(int64(10000*float64(a)/float64(b)+0.5)) / 100
}

// printPlace writes the summary as the table people read.
func printPlace(w io.Writer, s *placeSummary) error {
	tier := "cost tier on: owned capacity first, then the cheapest cloud"
	if !s.Cost {
		tier = "cost tier off"
	}
	p := &errPrinter{w: w}
	p.printf("Placed %s on %s with policy %s (%s).\n", s.source, s.fleet, s.Policy, tier)
	if s.BadRecords.Skipped > 0 {
		p.printf("%s: %s\n", s.source, s.BadRecords)
	}
	if d := &s.Dropped; d.Total() > 0 {
		p.printf("%d trace jobs cannot be placed (%d record no demand, %d ask for more than the core holds), e.g. %s\n",
			d.Total(), d.NoDemand, d.Invalid, d.Examples[0])
	}
	p.printf("\njobs %d: placed %d (%.1f%%), unplaced %d; GPU allocation %.2f%%; cloud spend $%.2f/hour\n\n",
		s.Jobs, s.Placed, 100*float64(s.Placed)/float64(max(s.Jobs, 1)), s.Unplaced, s.GPUAllocPct, s.CostPerHour)

	header := []string{"pool", "kind", "nodes", "GPUs", "GPUs used", "GPU alloc", "CPU alloc", "jobs", "tasks", "$/hour", "retires"}
	rows := [][]string{header}
	row := func(ps *poolSummary) []string {
		retires := "-"
		if ps.retireAt != 0 {
			retires = time.Unix(ps.retireAt, 0).UTC().Format("2006-01-02")
		}
		cpu := fmt.Sprintf("%.2f%%", ps.CPUAllocPct)
		if ps.CPUUnknown {
			cpu = "unknown"
		}
		return []string{ps.Pool, ps.Kind, fmt.Sprint(ps.Nodes), gpuCount(ps.GPUs, ps.MIGInstances),
			gpuUsed(ps), fmt.Sprintf("%.2f%%", ps.GPUAllocPct), cpu,
			fmt.Sprint(ps.Jobs), fmt.Sprint(ps.Tasks), fmt.Sprintf("%.2f", ps.CostPerHour), retires}
	}
	for i := range s.Pools {
		rows = append(rows, row(&s.Pools[i]))
	}
	total := row(&s.Total)
	total[len(total)-1] = ""
	rows = append(rows, total)
	p.table(rows, "llrrrrrrrrl")
	p.printf("(GPUs used: whole GPUs allocated, shares of shared GPUs summed; MIG: instances, each a device of its own)\n")

	for _, r := range s.Retiring {
		p.printf("\n%d jobs (%d tasks) placed on %s, which retires on %s: they need a place elsewhere by then.\n",
			r.Jobs, r.Tasks, r.Pool, r.RetireAt[:10])
	}

	if s.Unplaced > 0 {
		p.printf("\nunplaced jobs by the reason that stopped them")
		if s.Explained < s.Unplaced {
			p.printf(" (the first %d explained)", s.Explained)
		}
		p.printf(":\n")
		for _, kv := range sortedCounts(s.UnplacedWhy) {
			p.printf("  %-44s %d jobs\n", kv.k, kv.v)
		}
		if s.verbose {
			p.printf("\nnodes ruled out, per reason, summed over those jobs:\n")
			for _, kv := range sortedCounts(s.NodeReasons) {
				p.printf("  %-44s %d nodes\n", kv.k, kv.v)
			}
		}
		if n := min(s.show, len(s.UnplacedJobs)); n > 0 {
			p.printf("\nunplaced jobs, in order of submission (first %d of %d; -o json lists all):\n", n, s.Unplaced)
			rows := [][]string{{"job", "asks for", "stopped by"}}
			for _, u := range s.UnplacedJobs[:n] {
				rows = append(rows, []string{u.ID, demand(&u), cmp.Or(u.Reason, "(not explained)")})
			}
			p.table(rows, "lll")
		}
	}
	p.printf("\nstranded GPU capacity: %.1f GPUs (free GPU capacity that no task of the workload's usual mix could use where it lies)\n", s.StrandedGPUs)
	took := s.elapsed.Round(time.Millisecond)
	if s.elapsed < 10*time.Millisecond {
		took = s.elapsed.Round(time.Microsecond)
	}
	p.printf("placement took %v (%.0f jobs/s)\n", took, float64(s.Jobs)/max(s.elapsed.Seconds(), 1e-9))
	return p.err
}

func gpuCount(gpus, mig int) string {
	if mig == 0 {
		return fmt.Sprint(gpus)
	}
	return fmt.Sprintf("%d + %d MIG", gpus, mig)
}

func gpuUsed(ps *poolSummary) string {
	s := fmt.Sprintf("%.1f", ps.GPUsUsed)
	if ps.MIGInstances > 0 {
		s += fmt.Sprintf(" + %d MIG", ps.MIGUsed)
	}
	return s
}

// demand says what a job asks for: "4 × (8 GPU H100, 64 CPU, 256 GiB)".
func demand(u *unplacedJob) string {
	var d []string
	switch {
	case u.GPUs == 0:
	case u.GPUMil < scheduler.MilliPerGPU:
		d = append(d, fmt.Sprintf("%.2f GPU", float64(u.GPUMil)/scheduler.MilliPerGPU))
	default:
		d = append(d, fmt.Sprintf("%d GPU", u.GPUs))
	}
	if u.Models != "" && u.GPUs > 0 {
		d[len(d)-1] += " " + u.Models
	}
	d = append(d, fmt.Sprintf("%.3g CPU", float64(u.CPU)/1000), fmt.Sprintf("%.3g GiB", float64(u.Mem)/1024))
	s := strings.Join(d, ", ")
	if u.Count != 1 {
		s = fmt.Sprintf("%d × (%s)", u.Count, s)
	}
	return s
}

type count struct {
	k string
	v int
}

// sortedCounts orders counts by size, then name.
func sortedCounts(m map[string]int) []count {
	var out []count
	for k, v := range m {
		out = append(out, count{k, v})
	}
	slices.SortFunc(out, func(a, b count) int { return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k)) })
	return out
}

// errPrinter prints and keeps the first write error.
type errPrinter struct {
	w   io.Writer
	err error
}

func (p *errPrinter) printf(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

// table prints rows as aligned columns, column i left-aligned where
// align[i] is 'l' and right-aligned where it is 'r'.
func (p *errPrinter) table(rows [][]string, align string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if align[i] == 'r' {
				cells[i] = pad + c
			} else {
				cells[i] = c + pad
			}
		}
		p.printf("  %s\n", strings.TrimRight(strings.Join(cells, "  "), " "))
	}
}
