package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// heldScan is the plain statement of the held check: sum the running
// tasks on every node, device and tag, and name the first node, in node
// order, where they add up to more than the cluster has allocated ("" when
// none does).
func heldScan(t *testing.T, c *Cluster, running []*RunningJob) string {
	t.Helper()
	cpu := make([]int64, len(c.nodes))
	mem := make([]int64, len(c.nodes))
	gpu := make([]int64, len(c.gpuFree))
	tags := make([]int32, len(c.tagCount))
	for _, rj := range running {
		sh, err := c.ShapeOf(&rj.Job.Task)
		require.NoError(t, err)
		for _, tp := range rj.Tasks {
			a, err := c.AssignOf(tp, sh.Tag)
			require.NoError(t, err)
			cpu[a.Node] += a.CPUMilli
			mem[a.Node] += a.MemMiB
			for _, g := range tp.GPUs {
				gpu[c.nodes[a.Node].gpuOff+int32(g)] += int64(a.Take)
			}
			if a.Tag >= 0 {
				tags[int(a.Node)*numTags+int(a.Tag)]++
			}
		}
	}
	for n := range c.nodes {
		r := &c.nodes[n]
		bad := cpu[n] > r.cpuCap-r.cpuFree || mem[n] > r.memCap-r.memFree
		for g := r.gpuOff; g < r.gpuOff+r.gpuN; g++ {
			bad = bad || gpu[g] > int64(c.gpuCap[g]-c.gpuFree[g])
		}
		for k := range numTags {
			bad = bad || tags[n*numTags+k] > c.tagCount[n*numTags+k]
		}
		if bad {
			return c.specs[n].Name
		}
	}
	return ""
}

// TestCheckHeldMatchesScan runs many passes on one cluster, each with a
// running list drawn from the jobs it holds plus phantom tasks it does
// not, and checks that the pass refuses exactly the lists the plain scan
// refuses, naming the same node. The passes share the check's scratch, so
// a check that left counts behind (after a refusal, say) would refuse a
// later good list or accept a later bad one.
func TestCheckHeldMatchesScan(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 5, 4), qNodes("c", "H100", 2, 0))
	real := []*RunningJob{
		f.run(t, qJob("a", "a", 0, 1, 2), 0, "n0:0,1"),
		f.run(t, qJob("b", "b", 0, 2, 1), 0, "n0:2", "n1:0"),
		f.run(t, qJob("c", "a", 0, 2, 0), 0, "c0", "n2"),
		f.run(t, qJob("d", "c", 0, 1, 4), 0, "n3:0,1,2,3"),
	}
	nodes := []string{"n0", "n1", "n2", "n3", "n4", "c0", "c1"}
	rng := rand.New(rand.NewPCG(7, 8))
	refused := 0
	for trial := range 400 {
		var running []*RunningJob
		for _, rj := range real {
			if rng.IntN(3) > 0 {
				running = append(running, rj)
			}
		}
		for k := range rng.IntN(3) {
			node := nodes[rng.IntN(len(nodes))]
			gpus := 0
			if node[0] == 'n' {
				gpus = rng.IntN(3)
			}
			j := qJob(fmt.Sprintf("p%d-%d", trial, k), "a", 0, 1, gpus)
			tp := TaskPlacement{Node: node, CPUMilli: int64(rng.IntN(2)) * 1000, MemoryMiB: int64(rng.IntN(2)) * 1024}
			if gpus > 0 {
				tp.GPUs, tp.GPUMilli = rng.Perm(4)[:gpus], MilliPerGPU
			}
			running = append(running, &RunningJob{Job: j, Tasks: []TaskPlacement{tp}})
		}
		rng.Shuffle(len(running), func(i, k int) { running[i], running[k] = running[k], running[i] })
		want := heldScan(t, f.c, running)
		in := f.pass(0)
		in.Running = running
		before := qSnapshot(f.c)
		_, err := f.c.Schedule(in)
		require.Equal(t, before, qSnapshot(f.c), "trial %d: the pass changed the cluster", trial)
		if want == "" {
			require.NoError(t, err, "trial %d", trial)
			continue
		}
		refused++
		require.Error(t, err, "trial %d: the tasks over-hold node %s", trial, want)
		require.Contains(t, err.Error(), fmt.Sprintf("the tasks on node %s hold more", want), "trial %d", trial)
	}
	require.Greater(t, refused, 50, "the draw refuses some lists")
	require.Less(t, refused, 350, "the draw accepts some lists")
}

// TestCheckHeldAfterFleetGrows checks that the held check follows a fleet
// that grew between passes: a task on the new node is checked there.
func TestCheckHeldAfterFleetGrows(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 2, 4))
	f.run(t, qJob("a", "a", 0, 1, 1), 0, "n1:0")
	qSchedule(t, f.c, f.pass(0))
	_, err := f.c.AddNode(qNodes("m", "H100", 1, 2)[0])
	require.NoError(t, err)
	in := f.pass(0)
	in.Running = append(in.Running, &RunningJob{Job: qJob("ghost", "a", 0, 1, 1),
		Tasks: []TaskPlacement{{Node: "m0", GPUs: []int{1}, GPUMilli: MilliPerGPU, CPUMilli: 1000, MemoryMiB: 1024}}})
	_, err = f.c.Schedule(in)
	require.Error(t, err)
	require.Contains(t, err.Error(), "the tasks on node m0 hold more")
	f.run(t, in.Running[1].Job, 0, "m0:1")
	qSchedule(t, f.c, f.pass(0))
}

// TestPassJobIDs checks that a pass refuses a job listed twice, among the
// running jobs or the pending ones or across both, whether the running
// jobs come sorted by id (as the state machine lists them) or not.
func TestPassJobIDs(t *testing.T) {
	f := qNew(t, qNodes("n", "H100", 1, 4))
	run := func(ids ...string) []*RunningJob {
		var out []*RunningJob
		for _, id := range ids {
			out = append(out, &RunningJob{Job: qJob(id, "a", 0, 1, 1)})
		}
		return out
	}
	cases := []struct {
		name    string
		running []*RunningJob
		pending []string
		want    string // "" when the pass takes the input
	}{
		{"sorted", run("a", "b", "c"), []string{"d", "0"}, ""},
		{"unsorted", run("c", "a", "b"), []string{"d", "0"}, ""},
		{"sorted twice", run("a", "b", "b"), nil, "running[2]: job b listed twice"},
		{"unsorted twice, apart", run("b", "a", "c", "b"), nil, "running[3]: job b listed twice"},
		{"unsorted at the break", run("b", "c", "b"), nil, "running[2]: job b listed twice"},
		{"pending also running, sorted", run("a", "b", "c"), []string{"x", "b"}, "pending[1]: job b is listed twice or also running"},
		{"pending also running, first", run("a", "b", "c"), []string{"a"}, "pending[0]: job a is listed twice or also running"},
		{"pending also running, last", run("a", "b", "c"), []string{"c"}, "pending[0]: job c is listed twice or also running"},
		{"pending also running, unsorted", run("c", "a", "b"), []string{"a"}, "pending[0]: job a is listed twice or also running"},
		{"pending twice, sorted running", run("a", "b"), []string{"x", "x"}, "pending[1]: job x is listed twice or also running"},
		{"pending twice, unsorted running", run("b", "a"), []string{"x", "x"}, "pending[1]: job x is listed twice or also running"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pending []*Job
			for _, id := range tc.pending {
				pending = append(pending, qJob(id, "a", 0, 1, 1))
			}
			in := f.pass(0, pending...)
			in.Running = tc.running
			_, err := f.c.Schedule(in)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestPassReadyCapacity checks the capacity a pass counts, which sets the
// tenants' dominant shares: only the ready nodes', so a draining node's
// GPUs (six here, to tell them from a ready node's four) count for nothing.
func TestPassReadyCapacity(t *testing.T) {
	nodes := qNodes("n", "H100", 3, 4)
	nodes[0].State = NodeDraining
	nodes[0].GPUs = append(nodes[0].GPUs, GPU{Model: "H100"}, GPU{Model: "H100"})
	f := qNew(t, nodes)
	s, err := f.c.newPass(new(f.pass(0)))
	require.NoError(t, err)
	require.Equal(t, int64(8*MilliPerGPU), s.l.cap.gpu, "the two ready nodes' GPUs")
	require.Equal(t, int64(8*MilliPerGPU), s.l.free.gpu)
	require.Equal(t, int64(2*64000), s.l.cap.cpu)
}
