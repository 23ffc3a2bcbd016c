package bench

import (
	"context"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"petite/simulator/replay"
	"petite/traces"
)

var (
	// The full 1,000,000 jobs take several CPU-seconds a policy (bench/README.md,
	// Replay), so `make bench` replays a slice;
	// -replay.jobs 1000000 runs the full size.
	replayJobs      = flag.Int("replay.jobs", 10_000, "jobs replayed by BenchmarkReplay1MJobs (1000000 for the full size)")
	replayNaiveJobs = flag.Int("replay.naive-jobs", 2_000, "jobs replayed by the naive once-a-second baseline (over its first simulated hour)")
	replayLoad      = flag.Float64("replay.load", 0.8, "offered GPU load of the replay workload, as a share of the fleet's GPUs")
	replayQueued    = flag.Float64("replay.queued-load", 1.3, "offered GPU load of the queued-best-fit run, above 1 so that queues form (from about 300,000 jobs: shorter workloads end before the fleet fills)")
	replayHeap      = flag.String("replay.heapprofile", "", "BenchmarkReplay1MJobs: write the live heap (after a collection) to PREFIX-NAME.pprof once 90% of the jobs have arrived")
)

// replaySpec is n jobs of `trace gen`'s default spec (diurnal arrivals,
// lognormal run times around half an hour, shares, whole GPUs and gangs),
// its rate set so that the offered GPU demand is load × gpus.
func replaySpec(n int, gpus, load float64) traces.Spec {
	spec := traces.DefaultSpec()
	spec.Jobs, spec.Seed = n, 1
	// Mean GPUs per job over the mix, mean run time of the clamped lognormal
	// (the clamp barely moves it): rate = load × GPUs / (GPUs per job × hours).
	w, g := 0.0, 0.0
	for _, s := range spec.Shapes {
		w += s.Weight
		for _, t := range s.Tasks {
			g += s.Weight * float64(t.Count*t.GPUs) * float64(t.GPUMilli) / 1000
		}
	}
	meanH := math.Exp(spec.Duration.Mu+spec.Duration.Sigma*spec.Duration.Sigma/2) / 3600
	spec.Arrival.RatePerHour = load * gpus / (g / w * meanH)
	return spec
}

// replaySource streams the workload of spec, generated as the replay pulls
// it: the run never holds the whole of it.
func replaySource(tb testing.TB, spec traces.Spec) replay.Source {
	gen, err := traces.NewGenerator(spec)
	if err != nil {
		tb.Fatal(err)
	}
	return replay.TraceSourceInto(gen.NextInto, "trace gen", 0)
}

// heapAt returns a progress callback that writes the live heap to file
// once n jobs have arrived (the collection it forces is timed with the run).
func heapAt(tb testing.TB, file string, n int) func(arrived, total int) {
	done := false
	return func(arrived, _ int) {
		if done || arrived < n {
			return
		}
		done = true
		f, err := os.Create(file)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			tb.Fatal(err)
		}
	}
}

// cpuTime is the CPU time the process has used, user and system, in seconds.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// peakHeap samples the live heap every 10 ms until stopped and returns the
// largest value seen.
func peakHeap() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			mu.Lock()
			peak = max(peak, s[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// BenchmarkReplay1MJobs replays a `trace gen` workload (-replay.jobs jobs:
// 1,000,000 is the target size, 10,000 the default slice) on 10,000 eight-GPU nodes (80,000 GPUs)
// with best-fit and fgd, event-driven as `petite sim run` runs, best-fit
// again overloaded (-replay.queued-load, so that jobs queue), and, for
// comparison, the naive way on the first -replay.naive-jobs jobs over the
// first simulated hour: a full pass every second of simulated time, as
// time-step simulators do, beside the event-driven run of the same slice.
// Every run streams its workload (Config.Source), generated as the clock
// reaches it and timed with the run; "workload" times the generation alone.
// It reports jobs/s, seconds per run, passes, the peak live heap and the
// mean and p99 wait.
func BenchmarkReplay1MJobs(b *testing.B) {
	pools, nodes := fleet10k()
	gpus := float64(len(nodes) * 8)
	spec := replaySpec(*replayJobs, gpus, *replayLoad)
	if spec.Jobs < 1_000_000 {
		b.Logf("a slice of %d jobs; -replay.jobs 1000000 replays the full workload", spec.Jobs)
	}
	first, err := replaySource(b, spec).Next()
	if err != nil {
		b.Fatal(err)
	}
	// The workload alone, generated and converted as the runs pull it: the
	// part of their time and allocations that is not the replay's.
	b.Run("workload", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			src := replaySource(b, spec)
			for {
				if _, err := src.Next(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric((cpuTime()-cpu0)/float64(b.N), "cpu-s/run")
	})
	queued := replaySpec(*replayJobs, gpus, *replayQueued)
	for _, c := range []struct {
		name   string
		policy string
		n      int
		every  int64
		hour   bool
		spec   traces.Spec
	}{
		{"best-fit", "best-fit", spec.Jobs, 0, false, spec},
		{"fgd", "fgd", spec.Jobs, 0, false, spec},
		// Overloaded: jobs wait, and passes meet blocked queue heads.
		{"queued-best-fit", "best-fit", spec.Jobs, 0, false, queued},
		{"slice-events", "best-fit", min(*replayNaiveJobs, spec.Jobs), 0, true, spec},
		{"slice-naive-1s", "best-fit", min(*replayNaiveJobs, spec.Jobs), replay.Second, true, spec},
	} {
		b.Run(c.name, func(b *testing.B) {
			sp := c.spec
			sp.Jobs = c.n
			cfg := replay.Config{Pools: pools, Nodes: nodes, Policy: c.policy, Seed: 1, PassEvery: c.every, NoRecords: true}
			if c.hour {
				cfg.Horizon = first.Submit + replay.Hour
			}
			if *replayHeap != "" {
				cfg.Progress = heapAt(b, *replayHeap+"-"+c.name+".pprof", c.n*9/10)
			}
			runtime.GC()
			stop := peakHeap()
			cpu0 := cpuTime()
			b.ResetTimer()
			var res *replay.Result
			for b.Loop() {
				// The workload is generated as the run pulls it, and its
				// generation is timed with the run.
				cfg.Source = replaySource(b, sp)
				var err error
				if res, err = replay.Run(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			peak := stop()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(c.n)/sec, "jobs/s")
			b.ReportMetric(sec, "s/run")
			// CPU seconds of the process (every thread, the collector's too):
			// on a shared machine wall time counts the other users' load.
			b.ReportMetric(cpu/float64(b.N), "cpu-s/run")
			b.ReportMetric(float64(res.Summary.Passes), "passes")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(res.Summary.WaitH.Mean*3600, "mean-wait-s")
			b.ReportMetric(res.Summary.WaitH.P99*3600, "p99-wait-s")
		})
	}
}
