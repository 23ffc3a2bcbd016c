package bench

import (
	"testing"

	"petite/simulator/frag"
)

// benchFrag times whole runs of the fragmentation experiment on the
// embedded default workload and GPU fleet, seed 42 (data loading excluded).
func benchFrag(b *testing.B, policy string) {
	fleet, err := frag.DefaultFleet()
	if err != nil {
		b.Fatal(err)
	}
	w, err := frag.DefaultWorkload()
	if err != nil {
		b.Fatal(err)
	}
	cfg := frag.Config{Policy: policy, Seed: 42, Inflate: frag.DefaultInflate}
	b.ReportAllocs()
	var r *frag.Result
	for b.Loop() {
		if r, err = frag.Run(fleet, w, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.FinalAllocPct, "alloc%")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(r.Pods), "ns/pod")
}

// BenchmarkFragFGD times one fgd run of the default workload: 10,805
// arrivals on 1,213 nodes (the paper's artifact needs about ten minutes).
func BenchmarkFragFGD(b *testing.B) { benchFrag(b, "fgd") }

// BenchmarkFragPolicies times one run of each published policy.
func BenchmarkFragPolicies(b *testing.B) {
	for _, p := range frag.PublishedPolicies {
		b.Run(p, func(b *testing.B) { benchFrag(b, p) })
	}
}
