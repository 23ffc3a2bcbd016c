package frag

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"petite/scheduler"
)

// The normalisers of the method's scores (FRAG-METHOD §4): the largest node
// shape of the openb fleet, 128 cores and 8 GPUs, fixed whatever the fleet.
const (
	CPUNorm = 128000
	GPUNorm = 8000
)

// DefaultInflate is the method's target arrival, 130% of the GPU capacity.
const DefaultInflate = 1.3

// MaxInflate bounds the target arrival: a hundred times the capacity is far
// past where any cluster has filled, and keeps the sequence's length sane.
const MaxInflate = 100

// CheckInflate checks a target arrival: a finite number in 0..MaxInflate
// (0 keeps the trace as it is).
func CheckInflate(r float64) error {
	if !(r >= 0 && r <= MaxInflate) { // false for NaN too
		return fmt.Errorf("want a number in 0..%d (0 keeps the trace as it is), got %g", MaxInflate, r)
	}
	return nil
}

// streamID is the second word of every run's PCG seed, fixed so that a run
// is named by its seed alone.
const streamID = 0x9e3779b97f4a7c15

// PublishedPolicies are the six policies of the paper's experiment, in the
// order its figures list them.
var PublishedPolicies = []string{"random", "dot-product", "gpu-clustering", "gpu-packing", "best-fit", "fgd"}

// Config names one run: a policy, a seed and the arrival options.
type Config struct {
	// Policy is a scheduler policy name (see scheduler.PolicyNames).
	Policy string
	// Seed drives every random choice of the run.
	Seed uint64
	// Inflate is the target arrival as a multiple of the GPU capacity
	// (FRAG-METHOD §2.2); 0 keeps the trace as it is.
	Inflate float64
	// NoShuffle keeps the pods in file order instead of shuffling them.
	NoShuffle bool
}

// Result is what one run measures (FRAG-METHOD §7). Its JSON form is the
// output of `petite sim frag --json`.
type Result struct {
	// Policy, Seed and Inflate repeat the run's Config.
	Policy  string  `json:"policy"`
	Seed    uint64  `json:"seed"`
	Inflate float64 `json:"inflate"`
	// Nodes and GPUs describe the fleet.
	Nodes int `json:"nodes"`
	GPUs  int `json:"gpus"`
	// Pods is the length of the arrival sequence, FailedPods how many of
	// them found no feasible node.
	Pods       int `json:"pods"`
	FailedPods int `json:"failed_pods"`
	// FinalAllocPct is the allocation at the target arrival: the method's
	// "allocation at 130% arrival".
	FinalAllocPct float64 `json:"final_alloc_pct"`
	// FinalAtPct is the arrival FinalAllocPct is read at: round(100 ×
	// Inflate) percent, or with Inflate 0 the final arrival's whole percent
	// rounded down; when no record lies within a point of it, the value is
	// the end's and FinalAtPct is EndArrivedPct.
	FinalAtPct float64 `json:"final_at_arrived_pct"`
	// EndArrivedPct and EndAllocPct are arrival and allocation after the
	// last pod, in percent of the capacity rounded to 2 decimals. Inflation
	// stops short of its target (FRAG-METHOD §2.2), so the end lies between
	// the curve's last whole percent and the next.
	EndArrivedPct float64 `json:"end_arrived_pct"`
	EndAllocPct   float64 `json:"end_alloc_pct"`
	// Curve is the allocation at every whole percent of arrival.
	Curve []Point `json:"curve"`
}

// Options are the scheduler options of the experiment for a workload.
func Options(w *Workload) scheduler.Options {
	return scheduler.Options{CPUNorm: CPUNorm, GPUNorm: GPUNorm, Target: w.Target}
}

// NewRNG is the random stream of a run with the given seed.
func NewRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, streamID)) }

// Run places the workload on the fleet under one policy, pod by pod, and
// measures allocation against arrival.
func Run(f *Fleet, w *Workload, cfg Config) (*Result, error) {
	return run(f, w, cfg, nil)
}

// observer sees each decision of a run: the position in the sequence, the
// pod (an index into the workload), and its assignment when placed.
type observer func(i int, pod int32, a scheduler.Assign, ok bool)

func run(f *Fleet, w *Workload, cfg Config, obs observer) (*Result, error) {
	if err := CheckInflate(cfg.Inflate); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	c, err := scheduler.NewCluster(nil, f.Nodes)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	capMilli, _ := c.Totals()
	if capMilli == 0 {
		return nil, fmt.Errorf("fleet: no GPU capacity")
	}
	rng := NewRNG(cfg.Seed)
	seq := Arrivals(w.Pods, capMilli, cfg.Inflate, !cfg.NoShuffle, rng)
	if err := c.SetRanks(NodeRanks(c.NumNodes(), rng)); err != nil {
		return nil, err
	}
	p, err := scheduler.NewPolicy(c, cfg.Policy, Options(w))
	if err != nil {
		return nil, err
	}
	shapes := make([]scheduler.Shape, len(w.Pods))
	for i := range w.Pods {
		t := w.Pods[i].Task()
		if shapes[i], err = c.ShapeOf(&t); err != nil {
			return nil, fmt.Errorf("workload %s: pod %d: %w", w.Name, i, err)
		}
	}
	m := NewMeter(capMilli, len(seq))
	var arrived, alloc int64
	failed := 0
	for i, k := range seq {
		s := &shapes[k]
		arrived += s.GPUMilli()
		a, ok := c.PlaceTask(p, s, rng)
		if ok {
			alloc += int64(a.Take) * int64(bits.OnesCount64(a.Mask))
		} else {
			failed++
		}
		if obs != nil {
			obs(i, k, a, ok)
		}
		m.Record(arrived, alloc)
	}
	r := &Result{
		Policy: cfg.Policy, Seed: cfg.Seed, Inflate: cfg.Inflate,
		Nodes: c.NumNodes(), GPUs: int(capMilli / scheduler.MilliPerGPU),
		Pods: len(seq), FailedPods: failed, Curve: m.Curve(),
		EndArrivedPct: m.pct(arrived), EndAllocPct: m.Final(),
	}
	at := int(math.Round(100 * cfg.Inflate))
	if cfg.Inflate <= 0 {
		at = int(100 * arrived / capMilli)
	}
	if v, ok := m.AllocAt(at); ok {
		r.FinalAllocPct, r.FinalAtPct = round4(v), float64(at)
	} else {
		r.FinalAllocPct, r.FinalAtPct = r.EndAllocPct, r.EndArrivedPct
	}
	return r, nil
}

// PolicyNames lists every policy a run accepts: the scheduler's, petite's
// own among them.
func PolicyNames() []string { return slices.Clone(scheduler.PolicyNames()) }
