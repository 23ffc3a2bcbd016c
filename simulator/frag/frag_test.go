package frag

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/traces"
)

func rng0() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func sumGPU(pods []Pod, seq []int32) int64 {
	var s int64
	for _, k := range seq {
		s += pods[k].GPUMilli()
	}
	return s
}

// §2.2, below the target: originals drawn with replacement are appended
// until the first draw whose per-GPU share would pass the target.
func TestArrivalsInflate(t *testing.T) {
	// One 500 share on a 1-GPU cluster, target 1300: 500 → 1000 → the next
	// 500 would pass 1300, so the loop stops with two pods.
	one := []Pod{{CPU: 1000, GPUs: 1, Milli: 500}}
	assert.Equal(t, []int32{0, 0}, Arrivals(one, 1000, 1.3, true, rng0()))

	// [!] The stop test uses the per-GPU share, not the total: an 8-GPU pod
	// on an 8-GPU cluster (target 10400) checks 8000 + 1000 <= 10400, so a
	// copy joins and the total ends at 16000, 5600 past the target.
	eight := []Pod{{CPU: 1000, GPUs: 8, Milli: 1000}}
	seq := Arrivals(eight, 8000, 1.3, true, rng0())
	assert.Equal(t, []int32{0, 0}, seq)
	assert.Equal(t, int64(16000), sumGPU(eight, seq))

	// CPU-only pods are drawn too and add nothing; the total never passes
	// the target by more than 7000 and never stays below target − 1000.
	mix := []Pod{{CPU: 1000}, {CPU: 1000, GPUs: 1, Milli: 1000}, {CPU: 1000, GPUs: 1, Milli: 250}, {CPU: 1000, GPUs: 4, Milli: 1000}}
	for seed := range uint64(20) {
		seq := Arrivals(mix, 100_000, 1.3, true, NewRNG(seed))
		s := sumGPU(mix, seq)
		assert.LessOrEqual(t, s, int64(130_000+3000), "seed %d", seed)
		assert.Greater(t, s, int64(130_000-1000), "seed %d", seed)
		assert.Equal(t, []int32{0, 1, 2, 3}, slices.Sorted(slices.Values(seq[:4])), "the originals come first, shuffled")
		assert.Contains(t, seq[4:], int32(0), "CPU-only pods are drawn too")
	}

	// A ratio of 0 keeps the originals, and no shuffle keeps file order.
	assert.Equal(t, []int32{0, 1, 2, 3}, Arrivals(mix, 1000, 0, false, rng0()))
}

// §2.2, above the target: random pods leave the sequence while the total
// passes the target, and the others keep their order.
func TestArrivalsDeflate(t *testing.T) {
	pods := make([]Pod, 10)
	for i := range pods {
		pods[i] = Pod{CPU: 1000, GPUs: 1, Milli: 1000}
	}
	for seed := range uint64(10) {
		seq := Arrivals(pods, 5000, 1.3, false, NewRNG(seed))
		require.Len(t, seq, 6, "10000 down to at most 6500: four leave")
		assert.True(t, slices.IsSorted(seq), "order kept: %v", seq)
	}
	// Removed pods are uniform: over many seeds every pod leaves sometimes.
	left := make([]int, len(pods))
	for seed := range uint64(400) {
		for _, k := range Arrivals(pods, 5000, 1.3, false, NewRNG(seed)) {
			left[k]++
		}
	}
	for i, n := range left {
		assert.InDelta(t, 240, n, 60, "pod %d stayed %d times of 400", i, n)
	}
}

// §2.1 and §2.3: the shuffle and the node rank are permutations.
func TestShuffleAndRanksArePermutations(t *testing.T) {
	pods := make([]Pod, 50)
	seq := Arrivals(pods, 1000, 0, true, rng0())
	assert.Equal(t, 50, len(seq))
	assert.NotEqual(t, Arrivals(pods, 1000, 0, false, rng0()), seq, "shuffled")
	sorted := slices.Sorted(slices.Values(seq))
	for i, k := range sorted {
		require.Equal(t, int32(i), k)
	}
	perm := NodeRanks(30, rng0())
	seen := map[scheduler.NodeID]bool{}
	for _, n := range perm {
		seen[n] = true
	}
	assert.Len(t, seen, 30)
}

// §1: a row becomes a pod: CPU 0 reads 100, shares above 1000 are clipped,
// a pod without GPUs has no model list, and model lists lose empty pieces.
func TestNewWorkloadNormalises(t *testing.T) {
	rows := []traces.OpenbPod{
		{Name: "a", CPUMilli: 0, MemoryMiB: 0, NumGPU: 1, GPUMilli: 1200, GPUSpec: "|V100M32||P100|"},
		{Name: "b", CPUMilli: 4000, MemoryMiB: 100, NumGPU: 0, GPUMilli: 0, GPUSpec: "T4"},
		{Name: "c", CPUMilli: 8000, NumGPU: 2, GPUMilli: 1000},
		{Name: "d", CPUMilli: 8000, NumGPU: 1, GPUMilli: 0}, // no share: CPU-only
	}
	w, err := NewWorkload("x", "x.csv", rows)
	require.NoError(t, err)
	assert.Equal(t, []Pod{
		{CPU: 100, GPUs: 1, Milli: 1000, Models: "V100M32|P100"},
		{CPU: 4000, Mem: 100},
		{CPU: 8000, GPUs: 2, Milli: 1000},
		{CPU: 8000},
	}, w.Pods)

	_, err = NewWorkload("x", "x.csv", []traces.OpenbPod{{Name: "ok", CPUMilli: 1}, {Name: "bad", CPUMilli: 1, NumGPU: 2, GPUMilli: 500}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "x.csv:3: pod bad: field gpu_milli")
}

// §6: the target keeps the most frequent types up to 95% of the pods,
// ordering equal counts by CPU, share, GPU count and models (larger first);
// memory is not part of a type; CPU-only pods are types too.
func TestTargetOf(t *testing.T) {
	var pods []Pod
	add := func(n int, p Pod) {
		for i := range n {
			p.Mem = int64(i) // memory differs, the type does not
			pods = append(pods, p)
		}
	}
	add(60, Pod{CPU: 4000, GPUs: 1, Milli: 1000})
	add(30, Pod{CPU: 2000})
	add(5, Pod{CPU: 1000, GPUs: 1, Milli: 500})
	add(5, Pod{CPU: 1000, GPUs: 1, Milli: 500, Models: "T4"}) // ties: "T4" > ""
	tt := TargetOf(pods)
	// 60 < 95, 90 < 95, then 95 reaches 95%: three types kept.
	require.Len(t, tt, 3)
	assert.Equal(t, scheduler.TargetType{CPU: 4000, Milli: 1000, GPUs: 1, Count: 60, Prob: 60.0 / 95}, tt[0])
	assert.Equal(t, scheduler.TargetType{CPU: 2000, Count: 30, Prob: 30.0 / 95}, tt[1])
	assert.Equal(t, "T4", tt[2].Models)
	assert.InDelta(t, 1, tt[0].Prob+tt[1].Prob+tt[2].Prob, 1e-12)

	// A single type that alone passes 95% is all there is.
	assert.Len(t, TargetOf([]Pod{{CPU: 1}, {CPU: 1}}), 1)
}

// §7: alloc% is rounded to 2 decimals; the reported value is the mean over
// the records whose arrived% rounds half to even to 130, the ends 129.5 and
// 130.5 included; without such records, those rounding to 129..131.
func TestMeterAllocAt(t *testing.T) {
	m := NewMeter(1_000_000, 0) // 1000 GPUs: 1 milli-GPU is 0.0001%
	m.Record(1_294_999, 900_000)
	m.Record(1_295_000, 910_004) // 129.5 → 130 (half to even), 91.0004 → 91.00
	m.Record(1_300_000, 920_050) // 92.005 → 92.01
	m.Record(1_305_000, 930_000) // 130.5 → 130
	m.Record(1_305_001, 990_000)
	v, ok := m.AllocAt(130)
	require.True(t, ok)
	assert.InDelta(t, (91.00+92.01+93.00)/3, v, 1e-9)

	// 131 is odd: 130.5 and 131.5 round to even neighbours, so only the
	// record strictly inside counts.
	v, ok = m.AllocAt(131)
	require.True(t, ok)
	assert.InDelta(t, 99.00, v, 1e-9)

	// No record at 130: the window widens to 129..131.
	w := NewMeter(1_000_000, 0)
	w.Record(1_200_000, 800_000)
	w.Record(1_288_000, 880_000) // 128.8 → 129
	w.Record(1_320_000, 900_000) // 132
	v, ok = w.AllocAt(130)
	require.True(t, ok)
	assert.InDelta(t, 88.0, v, 1e-9)
	_, ok = w.AllocAt(150)
	assert.False(t, ok)
}

// The curve has one point per whole percent of arrival: the allocation
// after the last pod that arrived at or below it.
func TestMeterCurve(t *testing.T) {
	m := NewMeter(1000, 0)
	m.Record(5, 5)
	m.Record(10, 10)
	m.Record(15, 10) // failed
	m.Record(32, 27)
	assert.Equal(t, []Point{{0, 0}, {1, 1}, {2, 1}, {3, 1}}, m.Curve())
}

// loadSmall is the default workload, to keep tests quick.
func loadSmall(t *testing.T) (*Fleet, *Workload) {
	t.Helper()
	f, err := DefaultFleet()
	require.NoError(t, err)
	w, err := DefaultWorkload()
	require.NoError(t, err)
	return f, w
}

// The embedded fleet is the method's: 1213 GPU nodes, 6212 GPUs.
func TestDefaultFleet(t *testing.T) {
	f, w := loadSmall(t)
	assert.Len(t, f.Nodes, 1213)
	assert.Equal(t, 6212, f.GPUs)
	assert.Len(t, w.Pods, 8152)
	assert.Equal(t, "default", w.Name)
}

// The same seed gives the same bytes; another seed another run.
func TestRunDeterministic(t *testing.T) {
	f, w := loadSmall(t)
	out := func(policy string, seed uint64) []byte {
		r, err := Run(f, w, Config{Policy: policy, Seed: seed, Inflate: DefaultInflate})
		require.NoError(t, err)
		b, err := json.Marshal(r)
		require.NoError(t, err)
		return b
	}
	for _, p := range []string{"random", "fgd"} {
		a := out(p, 42)
		assert.Equal(t, a, out(p, 42), p)
		assert.NotEqual(t, a, out(p, 43), p)
	}
	var r Result
	require.NoError(t, json.Unmarshal(out("best-fit", 7), &r))
	assert.Equal(t, 1213, r.Nodes)
	assert.Equal(t, 6212, r.GPUs)
	// §2.2: the arrivals reach 130% of 6,212,000 milli.
	last := r.Curve[len(r.Curve)-1]
	assert.InDelta(t, 129, last.ArrivedPct, 1)
	assert.Greater(t, r.FailedPods, 0)
	assert.Greater(t, r.FinalAllocPct, 80.0)
	assert.LessOrEqual(t, r.FinalAllocPct, 100.0)
	for i, p := range r.Curve {
		require.Equal(t, float64(i), p.ArrivedPct)
		require.LessOrEqual(t, p.AllocPct, p.ArrivedPct+1e-9, "cannot allocate more than arrived")
	}
}

func TestParse(t *testing.T) {
	s, err := ParseSeeds("42-44,50")
	require.NoError(t, err)
	assert.Equal(t, []uint64{42, 43, 44, 50}, s)
	for _, bad := range []string{"", "x", "5-3", "1,1", "1-2-3"} {
		_, err := ParseSeeds(bad)
		assert.Error(t, err, bad)
	}
	sh, err := ParseShard("2/4")
	require.NoError(t, err)
	assert.Equal(t, Shard{2, 4}, sh)
	for _, bad := range []string{"4/4", "-1/2", "1", "a/b", "0/0"} {
		_, err := ParseShard(bad)
		assert.Error(t, err, bad)
	}
	ps, err := ParsePolicies("all")
	require.NoError(t, err)
	assert.Equal(t, append(slices.Clone(PublishedPolicies), OwnPolicies...), ps)
	for _, p := range ps {
		assert.Contains(t, PolicyNames(), p)
	}
	_, err = ParsePolicies("fgd,nope")
	assert.ErrorContains(t, err, `"nope"`)
	ws := []string{"multigpu20", "gpushare100", "default", "gpushare40", "cpu050"}
	slices.SortFunc(ws, CompareWorkloads)
	assert.Equal(t, []string{"default", "cpu050", "gpushare40", "gpushare100", "multigpu20"}, ws)
	assert.Equal(t, "gpushare40", WorkloadName("/x/openb_pod_list_gpushare40.csv"))
}

// A sweep gives the same table whatever the parallelism, and its shards,
// merged, give the same bytes as the single run.
func TestSweepEqualsMergedShards(t *testing.T) {
	f, w := loadSmall(t)
	m := Matrix{Workloads: []string{w.Name}, Policies: []string{"random", "best-fit"}, Seeds: []uint64{1, 2, 3}, Inflate: DefaultInflate}
	run := func(sh Shard, par int) []Record {
		runs, err := (&Sweep{Fleet: f, Workloads: []*Workload{w}, Matrix: m, Shard: sh, Parallel: par}).Run(t.Context())
		require.NoError(t, err)
		return runs
	}
	whole := run(Whole, 2)
	require.Len(t, whole, 6)
	tables := func(runs []Record) string {
		tb := Summarise(m, runs)
		var b bytes.Buffer
		require.NoError(t, tb.Markdown(&b))
		require.NoError(t, tb.TSV(&b))
		require.NoError(t, tb.JSON(&b))
		return b.String()
	}
	want := tables(whole)
	assert.Equal(t, want, tables(run(Whole, 1)), "parallelism changes nothing")

	var parts []*Part
	for i := 2; i >= 0; i-- { // out of order on purpose
		p := &Part{Format: PartFormat, Matrix: m, Shard: Shard{i, 3}, Nodes: 1213, GPUs: 6212, Runs: run(Shard{i, 3}, 1)}
		var b bytes.Buffer
		require.NoError(t, WritePart(&b, p))
		back, err := ReadPart(&b, "part")
		require.NoError(t, err)
		require.Equal(t, p, back, "a part survives its file")
		parts = append(parts, back)
	}
	mm, merged, err := Merge(parts)
	require.NoError(t, err)
	assert.Equal(t, m, mm)
	assert.Equal(t, whole, merged)
	assert.Equal(t, want, tables(merged))
	assert.Contains(t, want, "| default |")

	_, _, err = Merge(parts[:2])
	assert.ErrorContains(t, err, "shard 0/3 missing")
	_, _, err = Merge([]*Part{parts[0], parts[0], parts[1]})
	assert.ErrorContains(t, err, "given twice")
	other := *parts[1]
	other.Matrix.Seeds = []uint64{9}
	_, _, err = Merge([]*Part{parts[0], &other, parts[2]})
	assert.ErrorContains(t, err, "another matrix")
}

// The table: mean and sample deviation per cell, the best mean of a row in
// bold, an overall row of each policy's mean over workloads.
func TestSummarise(t *testing.T) {
	m := Matrix{Workloads: []string{"a", "b"}, Policies: []string{"p", "q"}, Seeds: []uint64{1, 2}, Inflate: DefaultInflate}
	rec := func(w, p string, seed uint64, v float64, failed int) Record {
		return Record{Workload: w, Result: Result{Policy: p, Seed: seed, FinalAllocPct: v, FailedPods: failed}}
	}
	runs := []Record{
		rec("a", "p", 1, 90, 10), rec("a", "p", 2, 92, 20),
		rec("a", "q", 1, 95, 0), rec("a", "q", 2, 95, 2),
		rec("b", "p", 1, 80, 0), rec("b", "p", 2, 80, 0),
		rec("b", "q", 1, 70, 0), rec("b", "q", 2, 74, 0),
	}
	tb := Summarise(m, runs)
	assert.Equal(t, Cell{Workload: "a", Policy: "p", Runs: 2, Mean: 91, Std: 1.4142, Failed: 15}, tb.Cells[0])
	assert.Equal(t, 95.0, tb.Cells[1].Mean)
	assert.Zero(t, tb.Cells[1].Std)
	assert.Equal(t, 85.5, tb.Overall[0].Mean)
	assert.Equal(t, 83.5, tb.Overall[1].Mean)
	var b strings.Builder
	require.NoError(t, tb.Markdown(&b))
	assert.Equal(t, `Table: GPU allocation at 130% arrival, in % of the GPU capacity: mean ± sample standard deviation over 2 seeds (1–2); the best mean of a row in bold; last row, each policy's mean over the 2 workloads.

| workload | p | q |
| --- | ---: | ---: |
| a | 91.00 ± 1.41 | **95.00 ± 0.00** |
| b | **80.00 ± 0.00** | 72.00 ± 2.83 |
| *mean of workloads* | **85.50** | 83.50 |
`, b.String())
	b.Reset()
	require.NoError(t, tb.TSV(&b))
	assert.Equal(t, `workload	policy	runs	mean_alloc_pct	std_alloc_pct	mean_failed_pods
a	p	2	91.0000	1.4142	15.0000
a	q	2	95.0000	0.0000	1.0000
b	p	2	80.0000	0.0000	0.0000
b	q	2	72.0000	2.8284	0.0000
overall	p	4	85.5000		7.5000
overall	q	4	83.5000		0.5000
`, b.String(), "no deviation for a mean of means")
}

// One seed has no deviation: the table shows means alone, without a
// "± 0.00" that would claim one; the caption names the seed and the unit.
func TestSummariseOneSeed(t *testing.T) {
	for _, tc := range []struct {
		seeds   []uint64
		inflate float64
		caption string
	}{
		{[]uint64{42}, DefaultInflate, "Table: GPU allocation at 130% arrival, in % of the GPU capacity, seed 42; the best mean of a row in bold."},
		{[]uint64{42, 43, 44}, 0.5, "Table: GPU allocation at 50% arrival, in % of the GPU capacity: mean ± sample standard deviation over 3 seeds (42–44); the best mean of a row in bold."},
		{[]uint64{1, 5, 9}, DefaultInflate, "over 3 seeds (1, 5, 9);"},
	} {
		m := Matrix{Workloads: []string{"default"}, Policies: []string{"fgd", "random"}, Seeds: tc.seeds, Inflate: tc.inflate}
		var runs []Record
		for _, s := range tc.seeds {
			runs = append(runs,
				Record{Workload: "default", Result: Result{Policy: "fgd", Seed: s, FinalAllocPct: 95.25}},
				Record{Workload: "default", Result: Result{Policy: "random", Seed: s, FinalAllocPct: 87.5}})
		}
		tb := Summarise(m, runs)
		var md, tsv strings.Builder
		require.NoError(t, tb.Markdown(&md))
		require.NoError(t, tb.TSV(&tsv))
		assert.Contains(t, md.String(), tc.caption)
		if len(tc.seeds) == 1 {
			assert.NotContains(t, md.String(), "±")
			assert.Contains(t, md.String(), "| default | **95.25** | 87.50 |\n")
			assert.Contains(t, tsv.String(), "default\tfgd\t1\t95.2500\t\t0.0000\n", "empty deviation for one run")
		} else {
			assert.Contains(t, md.String(), "| default | **95.25 ± 0.00** | 87.50 ± 0.00 |\n")
		}
	}
}
