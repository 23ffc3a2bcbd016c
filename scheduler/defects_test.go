package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests for the defects of the core's audit (issue 11). Each
// failed before its fix.

// dfCluster builds a cluster of the given nodes, failing the test on error.
func dfCluster(t *testing.T, pools []Pool, nodes ...Node) *Cluster {
	t.Helper()
	c, err := NewCluster(pools, nodes)
	require.NoError(t, err)
	return c
}

func dfShape(t *testing.T, c *Cluster, task Task) Shape {
	t.Helper()
	s, err := c.ShapeOf(&task)
	require.NoError(t, err)
	return s
}

// A job enters with bounded counts and totals; nothing sizes memory by a
// number a client sent.
func TestDefectBoundedCounts(t *testing.T) {
	base := Job{ID: "j", Count: 1, Task: Task{GPUs: 1, GPUMilli: 1000}}
	tests := []struct {
		name string
		edit func(j *Job)
		want string
	}{
		{"count above the maximum", func(j *Job) { j.Count = MaxTasksPerJob + 1 }, "field count"},
		{"count of 2^50", func(j *Job) { j.Count = 1 << 50 }, "field count"},
		{"huge CPU", func(j *Job) { j.Task.CPUMilli = math.MaxInt64 }, "field task.cpu_milli"},
		{"huge memory", func(j *Job) { j.Task.MemoryMiB = math.MaxInt64 / 2 }, "field task.memory_mib"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := base
			tt.edit(&j)
			err := j.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	ok := base
	ok.Count = MaxTasksPerJob
	ok.Task.CPUMilli, ok.Task.MemoryMiB = MaxTaskCPUMilli, MaxTaskMemoryMiB
	require.NoError(t, ok.Validate(), "the limits themselves are allowed")
}

// A running service of 2^50 replicas with one replica live used to make
// topUp allocate a slice of that size and panic. The pass now refuses the
// input with an error naming the field.
func TestDefectPoisonServiceDoesNotCrashThePass(t *testing.T) {
	c := dfCluster(t, nil, Node{Name: "n0", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "L4"}, {Model: "L4"}}})
	p, err := NewPolicy(c, "best-fit", Options{})
	require.NoError(t, err)
	svc := &Job{ID: "svc", Kind: Inference, Count: 1 << 50, Task: Task{GPUs: 1, GPUMilli: 1000}}
	a := Assign{Node: 0, Mask: 1, Take: 1000, Tag: 1}
	require.NoError(t, c.Commit(a))
	rj := &RunningJob{Job: svc, Tasks: []TaskPlacement{c.Placement(0, a)}}
	require.NotPanics(t, func() {
		_, err = c.Schedule(Pass{Policy: p, Rng: rand.New(rand.NewPCG(1, 2)), Running: []*RunningJob{rj}})
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "field count")
}

// migNode is a node with one full-size (7g) MIG instance.
func migNode(name string) Node {
	return Node{Name: name, CPUMilli: 64000, MemoryMiB: 65536, GPUs: []GPU{{Model: "A100", MIG: "7g.80gb"}}}
}

// A 7g instance holds 1000 milli, yet it is a MIG instance: exclusive, one
// task takes all of it, and it never serves a whole-GPU task.
func TestDefectFullMIGInstanceIsExclusive(t *testing.T) {
	share := Task{GPUs: 1, GPUMilli: 500, CPUMilli: 1000}
	whole := Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000}
	for _, name := range PolicyNames() {
		t.Run(name, func(t *testing.T) {
			c := dfCluster(t, nil, migNode("m"))
			p, err := NewPolicy(c, name, Options{})
			require.NoError(t, err)
			ws := dfShape(t, c, whole)
			assert.False(t, c.Fits(0, &ws), "a MIG instance never serves a whole GPU")
			assert.Equal(t, NoNode, c.Select(p, &ws, rand.New(rand.NewPCG(1, 1))))
			ss := dfShape(t, c, share)
			a, ok := c.PlaceTask(p, &ss, rand.New(rand.NewPCG(1, 1)))
			require.True(t, ok)
			assert.Equal(t, int32(1000), a.Take, "the share takes the instance whole")
			assert.False(t, c.Fits(0, &ss), "a second share does not split it")
		})
	}
	c := dfCluster(t, nil, migNode("m"))
	ss := dfShape(t, c, share)
	assert.Equal(t, 1, c.tasksPerEmptyNode(0, &ss), "an empty node holds one share on its instance")
	acct := &acctNode{n: 0, cpu: 64000, mem: 65536, dev: []int32{1000}}
	assert.Equal(t, int64(1), c.fitCount(acct, &ss))
	ws := dfShape(t, c, whole)
	assert.Equal(t, int64(0), c.fitCount(acct, &ws))
	c.takeOne(acct, &ss)
	assert.Equal(t, []int32{0}, acct.dev, "takeOne takes the instance whole")
}

// The device property is decided once, from the GPU's spec.
func TestDefectExclusiveIsOneProperty(t *testing.T) {
	tests := []struct {
		gpu  GPU
		want bool
	}{
		{GPU{Model: "A100"}, false},
		{GPU{Model: "A100", MilliCap: 1000}, false},
		{GPU{Model: "A100", MIG: "7g.80gb"}, true},
		{GPU{Model: "A100", MIG: "1g.10gb"}, true},
		{GPU{Model: "A100", MilliCap: 500}, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.gpu.Exclusive(), "%+v", tt.gpu)
	}
}

// Release must not pass its capacity check by overflowing.
func TestDefectReleaseHugeCPU(t *testing.T) {
	c := dfCluster(t, nil, Node{Name: "n", CPUMilli: 8000, MemoryMiB: 8192})
	require.NoError(t, c.Commit(Assign{Node: 0, CPUMilli: 1000, Tag: -1}))
	err := c.Release(Assign{Node: 0, CPUMilli: math.MaxInt64, Tag: -1})
	require.Error(t, err)
	err = c.Release(Assign{Node: 0, MemMiB: math.MaxInt64, Tag: -1})
	require.Error(t, err)
	assert.Equal(t, int64(7000), c.Usage(0).CPUFree, "nothing changed")
}

// GPUMilliTotal never wraps, so a quota check cannot admit a huge job.
func TestDefectGPUMilliTotalSaturates(t *testing.T) {
	j := Job{ID: "j", Count: math.MaxInt, Task: Task{GPUs: 64, GPUMilli: 1000}}
	assert.Equal(t, int64(math.MaxInt64), j.GPUMilliTotal())
	l, err := newLedger([]Tenant{{Name: "t", MaxMilli: 8000}})
	require.NoError(t, err)
	assert.Equal(t, quotaNever, l.check(0, j.GPUMilliTotal()))
}

// Guarantees near the int64 limit must not wrap the sum of unused
// guarantees negative and let a borrower through.
func TestDefectUnusedGuaranteesSaturate(t *testing.T) {
	l, err := newLedger([]Tenant{{Name: "a", GuaranteedMilli: math.MaxInt64/2 + 1}, {Name: "b", GuaranteedMilli: math.MaxInt64/2 + 1}, {Name: "c"}})
	require.NoError(t, err)
	l.free.gpu = 8000
	assert.Equal(t, quotaBorrow, l.check(2, 1000), "c may not borrow what a and b are guaranteed")
}

// ScaleOptions never reports negative or wrapped node counts.
func TestDefectScaleOptionsHugeCount(t *testing.T) {
	c := dfCluster(t, []Pool{{Name: "cloud", Kind: PoolCloud, PricePerGPUHour: 2, MaxNodes: math.MaxInt}},
		Node{Name: "c0", Pool: "cloud", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []GPU{{Model: "L4"}}})
	j := Job{ID: "j", Count: math.MaxInt, Task: Task{CPUMilli: 0}}
	opts, err := c.ScaleOptions(&j)
	if err == nil {
		for _, o := range opts {
			assert.Positive(t, o.Nodes)
			assert.GreaterOrEqual(t, o.GPUs, 0)
		}
	}
	j.Count = MaxTasksPerJob
	opts, err = c.ScaleOptions(&j)
	require.NoError(t, err)
	require.Len(t, opts, 1)
	assert.Equal(t, 1, opts[0].Nodes, "an empty node holds 2^20 resource-free tasks")
}

// NaN and infinite prices are refused where a pool enters.
func TestDefectPoolPriceMustBeFinite(t *testing.T) {
	for _, price := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		c := dfCluster(t, nil)
		err := c.AddPool(Pool{Name: "p", Kind: PoolCloud, PricePerGPUHour: price})
		require.Error(t, err, "price %g", price)
		assert.Contains(t, err.Error(), "field price_per_gpu_hour")
		assert.Empty(t, c.Pools(), "a refused pool leaves nothing behind")
	}
}

// constTier is a plugin tier scorer that scores every node alike except
// one.
type constTier struct {
	name string
	hi   NodeID
	v    int64
}

func (ct constTier) Name() string { return ct.name }
func (ct constTier) Score(_ *Cluster, n NodeID, _ *Shape) int64 {
	if n == ct.hi {
		return ct.v
	}
	return 0
}

// A plugin policy with two tiers: the packed score would overflow, so the
// policy is refused with a clear error rather than deciding by garbage.
func TestDefectTwoTiersRefused(t *testing.T) {
	c := dfCluster(t, nil,
		Node{Name: "n0", CPUMilli: 8000, MemoryMiB: 8192},
		Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192})
	p := &Policy{Name: "plugin",
		Tiers:   []Scorer{constTier{"a", 1, 1<<20 - 1}, constTier{"b", 1, 1<<20 - 1}},
		Scorers: []Weighted{{Scorer: Zero{}, Weight: 1}}}
	err := p.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tiers")
	_, err = c.Schedule(Pass{Policy: p, Rng: rand.New(rand.NewPCG(1, 1)),
		Pending: []*Job{{ID: "j", Count: 1, Task: Task{CPUMilli: 1000}}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tiers")
	_, _, err = c.PlaceJob(p, &Job{ID: "j", Count: 1, Task: Task{CPUMilli: 1000}}, nil, nil)
	require.Error(t, err)

	// One tier at its top score is packed without overflow: it wins.
	one := &Policy{Name: "plugin", Tiers: []Scorer{constTier{"a", 1, 1<<20 - 1}},
		Scorers: []Weighted{{Scorer: Zero{}, Weight: 1}}}
	require.NoError(t, one.Validate())
	s := dfShape(t, c, Task{CPUMilli: 1000})
	assert.Equal(t, NodeID(1), c.Select(one, &s, nil))
	n, _ := c.SelectScan(one, &s, nil)
	assert.Equal(t, NodeID(1), n)
	// Cost adds a tier to a built-in policy; that is the one tier allowed.
	cp, err := NewPolicy(c, "best-fit", Options{Cost: true})
	require.NoError(t, err)
	require.NoError(t, cp.Validate())
}

// bareEvictions drops the placements an eviction saw, for tests that
// compare only which jobs and tasks a plan evicts.
func bareEvictions(ev []Eviction) []Eviction {
	if ev == nil {
		return nil
	}
	out := make([]Eviction, len(ev))
	for i, e := range ev {
		e.Seen = nil
		out[i] = e
	}
	return out
}

// A preemption plan names the placements it evicts as it saw them, so the
// state machine can refuse it once they are gone.
func TestDefectEvictionNamesWhatItSaw(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 2, 4))
	f.run(t, qVictim("gang", Training, 0, 2, 4, true, 0), 0, "n0:0,1,2,3", "n1:0,1,2,3")
	f.run(t, qVictim("svc", Inference, 0, 2, 0, false, 0), 0, "n0", "n1")
	in := f.pass(1000, qJob("hi", "a", 5, 1, 4))
	in.Preempt = true
	plan := qSchedule(t, f.c, in)
	require.Len(t, plan.Evict, 1)
	ev := plan.Evict[0]
	assert.Equal(t, "gang", ev.Job)
	require.Len(t, ev.Seen, 2, "every task of the gang, as it runs")
	for k, tp := range ev.Seen {
		assert.Equal(t, k, tp.Task)
		assert.Equal(t, f.running[0].Tasks[k], tp)
	}
}

// With backfill off, a job that can never fit the fleet as it is (a
// 16-GPU task on 8-GPU nodes, or a gang larger than the fleet) is reported
// as such and does not hold its tenant's queue.
func TestDefectImpossibleHeadDoesNotBlockWithoutBackfill(t *testing.T) {
	tests := []struct {
		name string
		head *Job
	}{
		{"task larger than any node", qJob("head", "a", 5, 1, 16)},
		{"gang larger than the fleet", qJob("head", "a", 5, 3, 8)},
		{"model no node has", func() *Job { j := qJob("head", "a", 5, 1, 1); j.Task.Models = []string{"B200"}; return j }()},
		{"more CPU than any node", func() *Job { j := qJob("head", "a", 5, 1, 1); j.Task.CPUMilli = 1 << 30; return j }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := qNew(t, qNodes("n", "H100", 2, 8))
			f.run(t, qJob("busy", "x", 9, 1, 8), 0, "n0:0,1,2,3,4,5,6,7")
			small := qJob("small", "a", 5, 1, 1)
			small.Submitted = 1
			plan := qSchedule(t, f.c, f.pass(0, tt.head, small))
			assert.Equal(t, WhyNever, qWhy(plan)["head"])
			assert.Equal(t, []string{"small"}, qPlaced(plan), "the job behind it starts")
		})
	}
	// A head that fits once running work ends still blocks its queue.
	f := qNew(t, qNodes("n", "H100", 2, 8))
	f.run(t, qJob("busy", "x", 9, 1, 8), 0, "n0:0,1,2,3,4,5,6,7")
	f.run(t, qJob("busy2", "x", 9, 1, 4), 0, "n1:0,1,2,3")
	small := qJob("small", "a", 5, 1, 1)
	small.Submitted = 1
	plan := qSchedule(t, f.c, f.pass(0, qJob("head", "a", 5, 1, 8), small))
	assert.Equal(t, WhyNoFit, qWhy(plan)["head"])
	assert.Empty(t, qPlaced(plan), "FIFO: the head blocks")
	assert.Contains(t, qWhy(plan)["small"], WhyBehindHead)
}

// The indexed spread decides what the scan decides, however many nodes
// outrank the one in the emptiest failure domain: 600 partly used nodes
// in z0 outrank the one empty node of z1 under best-fit, yet a 2-replica
// service puts its second replica in z1.
func TestDefectSpreadBeyondTheCandidateBound(t *testing.T) {
	var nodes []Node
	for i := range 600 {
		nodes = append(nodes, Node{Name: fmt.Sprintf("a%03d", i), CPUMilli: 64000, MemoryMiB: 65536,
			GPUs: make([]GPU, 8), Labels: map[string]string{"zone": "z0", "rack": fmt.Sprintf("r%d", i%7)}})
	}
	nodes = append(nodes, Node{Name: "b", CPUMilli: 64000, MemoryMiB: 65536, GPUs: make([]GPU, 8),
		Labels: map[string]string{"zone": "z1", "rack": "r9"}})
	for i := range nodes {
		for g := range nodes[i].GPUs {
			nodes[i].GPUs[g].Model = "L4"
		}
	}
	build := func(t *testing.T, scan bool) (*Cluster, *Policy) {
		c := dfCluster(t, nil, nodes...)
		for i := range 600 { // half of every z0 node is busy
			require.NoError(t, c.Commit(Assign{Node: NodeID(i), Mask: 0b1111, Take: 1000, CPUMilli: 8000, Tag: 1}))
		}
		p, err := NewPolicy(c, "best-fit", Options{})
		require.NoError(t, err)
		p.Scan = scan
		return c, p
	}
	for _, tt := range []struct {
		label string
		count int
	}{{"zone", 2}, {"zone", 3}, {"rack", 9}, {"rack", 12}} {
		t.Run(fmt.Sprintf("%s-%d", tt.label, tt.count), func(t *testing.T) {
			j := &Job{ID: "svc", Kind: Inference, Count: tt.count, SpreadLabel: tt.label,
				Task: Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}
			var got [2][]string
			for k, scan := range []bool{false, true} {
				c, p := build(t, scan)
				out, ok, err := c.PlaceJob(p, j, nil, nil)
				require.NoError(t, err)
				require.True(t, ok)
				for _, a := range out {
					got[k] = append(got[k], c.Node(a.Node).Name)
				}
			}
			assert.Equal(t, got[1], got[0], "the index decides as the scan does")
			if tt.label == "zone" {
				assert.Contains(t, got[0], "b", "a replica lands in z1")
			}
		})
	}
}
