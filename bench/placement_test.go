package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"petite/scheduler"
)

// fleet10k is 10,000 eight-GPU nodes (80,000 GPUs) in two NVLink islands of
// four, half A100 and half H100, in racks of 20 over four zones.
func fleet10k() ([]scheduler.Pool, []scheduler.Node) {
	pools := []scheduler.Pool{
		{Name: "onprem", Kind: scheduler.PoolOnPrem, Region: "eu-west"},
		{Name: "cloud", Kind: scheduler.PoolCloud, Region: "eu-west", PricePerGPUHour: 2.5},
	}
	nodes := make([]scheduler.Node, 10000)
	for i := range nodes {
		model := "A100"
		if i%2 == 1 {
			model = "H100"
		}
		gpus := make([]scheduler.GPU, 8)
		for g := range gpus {
			gpus[g] = scheduler.GPU{Model: model, MemoryMiB: 81920, Island: g / 4}
		}
		pool := "onprem"
		if i >= 7000 {
			pool = "cloud"
		}
		nodes[i] = scheduler.Node{
			Name: fmt.Sprintf("n%05d", i), Pool: pool, Rack: fmt.Sprintf("r%03d", i/20),
			CPUMilli: 128000, MemoryMiB: 1 << 20, GPUs: gpus,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%4)},
		}
	}
	return pools, nodes
}

// mixJob draws a job of the benchmark mix: shares of one GPU, whole GPUs,
// and gangs of 1-64 GPUs, a tenth of them pinned to one model.
func mixJob(rng *rand.Rand, id int) scheduler.Job {
	j := scheduler.Job{ID: fmt.Sprintf("j%d", id), Kind: scheduler.Training, Count: 1}
	t := &j.Task
	switch x := rng.IntN(100); {
	case x < 35:
		t.GPUs, t.GPUMilli = 1, []int{250, 500, 500, 750}[rng.IntN(4)]
		t.CPUMilli = int64(2000 + 2000*rng.IntN(3))
	case x < 70:
		t.GPUs, t.GPUMilli, t.CPUMilli = 1, 1000, 8000
	case x < 80:
		t.GPUs, t.GPUMilli, t.CPUMilli = 2, 1000, 16000
	case x < 88:
		t.GPUs, t.GPUMilli, t.CPUMilli = 4, 1000, 32000
	case x < 95:
		t.GPUs, t.GPUMilli, t.CPUMilli = 8, 1000, 64000
	default:
		t.GPUs, t.GPUMilli, t.CPUMilli = 8, 1000, 64000
		j.Count = 2 + rng.IntN(7) // gangs of 16..64 GPUs
	}
	t.MemoryMiB = t.CPUMilli * 4
	if rng.IntN(10) == 0 {
		t.Models = []string{[]string{"A100", "H100"}[rng.IntN(2)]}
	}
	return j
}

type live struct {
	start, n int
}

// benchPlacement places the mix on the 10k-node fleet kept about 90% full:
// each iteration places one job; the oldest jobs leave as needed to hold the
// level. It reports task placements per second.
func benchPlacement(b *testing.B, policy string, scan bool) {
	pools, nodes := fleet10k()
	c, err := scheduler.NewCluster(pools, nodes)
	if err != nil {
		b.Fatal(err)
	}
	p, err := scheduler.NewPolicy(c, policy, scheduler.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p.Scan = scan
	rng := rand.New(rand.NewPCG(42, 1))
	const pool = 8192
	jobs := make([]scheduler.Job, pool)
	for i := range jobs {
		jobs[i] = mixJob(rng, i)
	}
	capMilli, _ := c.Totals()
	target := capMilli * 9 / 10
	var assigns []scheduler.Assign
	var fifo []live
	used := int64(0)
	next := 0
	place := func() (int, bool) {
		j := &jobs[next%pool]
		next++
		before := len(assigns)
		var ok bool
		assigns, ok, err = c.PlaceJob(p, j, rng, assigns)
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			return 0, false
		}
		fifo = append(fifo, live{before, j.Count})
		used += j.GPUMilliTotal()
		return j.Count, true
	}
	evict := func() {
		for used > target && len(fifo) > 0 {
			l := fifo[0]
			fifo = fifo[1:]
			for _, a := range assigns[l.start : l.start+l.n] {
				if err := c.Release(a); err != nil {
					b.Fatal(err)
				}
				used -= int64(a.Take) * int64(popcount(a.Mask))
			}
		}
	}
	for used < target {
		if _, ok := place(); !ok {
			break
		}
	}
	b.ResetTimer()
	placed, failed := 0, 0
	for i := 0; i < b.N; i++ {
		n, ok := place()
		placed += n
		if !ok {
			failed++
		}
		evict()
		if len(fifo) > 1<<16 { // compact the record of live jobs
			b.StopTimer()
			base := fifo[0].start
			assigns = append(assigns[:0], assigns[base:]...)
			for k := range fifo {
				fifo[k].start -= base
			}
			fifo = append([]live(nil), fifo...)
			b.StartTimer()
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(placed)/sec, "placements/s")
	b.ReportMetric(float64(b.N)/sec, "jobs/s")
	b.ReportMetric(100*float64(failed)/float64(b.N), "fail%")
	_, usedMilli := c.Totals()
	b.ReportMetric(100*float64(usedMilli)/float64(capMilli), "util%")
}

func popcount(m uint64) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// BenchmarkPlacement10kNodes is the headline placement figure.
func BenchmarkPlacement10kNodes(b *testing.B) {
	for _, pol := range []string{"best-fit", "fgd", "first-fit", "gpu-packing", "dot-product", "topology"} {
		b.Run(pol, func(b *testing.B) { benchPlacement(b, pol, false) })
	}
}

// BenchmarkPlacement10kNodesScan is the naive baseline: the same decisions
// made by scanning and scoring every node for every task.
func BenchmarkPlacement10kNodesScan(b *testing.B) {
	for _, pol := range []string{"best-fit", "fgd"} {
		b.Run(pol, func(b *testing.B) { benchPlacement(b, pol, true) })
	}
}
