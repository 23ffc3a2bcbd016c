package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The index, the scan and PlaceJob against the oracle of
// oracle_world_test.go, on the worlds of exact_gen_test.go.

// oCheckState requires the core's free capacity to be the oracle's, node
// by node and device by device.
func oCheckState(t *testing.T, c *Cluster, w *oWorld, where string) {
	t.Helper()
	for i, n := range w.nodes {
		u := c.Usage(NodeID(i))
		require.Equal(t, n.cpuFree, u.CPUFree, "%s: node %s CPU", where, n.name)
		require.Equal(t, n.memFree, u.MemFree, "%s: node %s memory", where, n.name)
		require.Len(t, u.GPUs, len(n.devs))
		for d := range n.devs {
			require.Equal(t, n.devs[d].free, int64(u.GPUs[d]), "%s: node %s GPU %d", where, n.name, d)
		}
	}
}

// oLive is a task placed during a test, with its request.
type oLive struct {
	a    Assign
	task Task
}

// oChurn releases a random live task or changes a node's state, in the
// core and the oracle alike.
func oChurn(t *testing.T, rng *rand.Rand, c *Cluster, w *oWorld, live []oLive) []oLive {
	t.Helper()
	if rng.IntN(10) == 0 {
		id := rng.IntN(len(w.nodes))
		st := []NodeState{NodeReady, NodeReady, NodeDraining, NodeDown}[rng.IntN(4)]
		c.SetState(NodeID(id), st)
		w.nodes[id].state = st
		return live
	}
	if len(live) == 0 {
		return live
	}
	k := rng.IntN(len(live))
	require.NoError(t, c.Release(live[k].a))
	w.apply(live[k].a, &live[k].task, +1)
	return append(live[:k], live[k+1:]...)
}

// TestOracleSelect checks every policy's single decisions, through the
// score index and through the scan, against the oracle: the same feasible
// count, the same node, the same devices; and the free capacity after each
// placement against the oracle's own arithmetic.
func TestOracleSelect(t *testing.T) {
	seeds, steps := uint64(5), 250
	if oLong() {
		seeds, steps = 60, 600
	}
	for _, name := range PolicyNames() {
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0x5CA7))
				cost := seed%2 == 0
				c, p, w := oSetup(t, rng, 6+rng.IntN(24), name, cost)
				op := oPolicy{name: name, cost: cost}
				scan := *p
				scan.Scan = true
				var live []oLive
				placed, refused := 0, 0
				for step := range steps {
					if rng.IntN(3) == 0 {
						live = oChurn(t, rng, c, w, live)
						continue
					}
					task := exactTask(rng, w)
					s, err := c.ShapeOf(&task)
					require.NoError(t, err)
					want, feasible := w.decide(op, &task)
					where := fmt.Sprintf("step %d task %+v", step, task)
					got := c.Select(p, &s, rng)
					gotScan, nScan := c.SelectScan(&scan, &s, rng)
					require.Equal(t, feasible, nScan, "%s: feasible nodes (scan)", where)
					if p.indexable() {
						require.Equal(t, feasible, c.index(p, &s).feasible(), "%s: feasible nodes (index)", where)
					}
					if p.Uniform {
						require.Equal(t, want < 0, got == NoNode, where)
						if got != NoNode {
							require.True(t, w.nodes[got].feasible(&task), "%s: random chose an infeasible node", where)
						}
					} else {
						require.Equal(t, NodeID(want), gotScan, "%s: scan", where)
						require.Equal(t, NodeID(want), got, "%s: index", where)
					}
					if got == NoNode {
						refused++
						continue
					}
					a := c.assign(p, got, &s, rng)
					mask, take, sure := w.pick(name, int(got), &task)
					if sure {
						require.Equal(t, mask, a.Mask, "%s: devices on %s", where, w.nodes[got].name)
						require.Equal(t, take, int64(a.Take), "%s: share taken", where)
					}
					require.NoError(t, c.Commit(a), where)
					w.apply(a, &task, -1)
					live = append(live, oLive{a, task})
					placed++
					oCheckState(t, c, w, where)
					oProbeLimits(t, rng, c, w, where)
				}
				require.Positive(t, placed)
				require.Positive(t, refused)
			})
		}
	}
}

// TestOraclePlaceJob checks PlaceJob's spread and gang-locality paths
// against the oracle: every task on the node and devices the oracle
// chooses (for random, on a feasible node of a least-used domain), a gang
// placed whole or not at all, and a failed job leaving nothing behind.
func TestOraclePlaceJob(t *testing.T) {
	seeds, steps := uint64(4), 120
	if oLong() {
		seeds, steps = 40, 400
	}
	for _, name := range PolicyNames() {
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0x9A46))
				cost := seed%2 == 1
				c, p, w := oSetup(t, rng, 8+rng.IntN(20), name, cost)
				op := oPolicy{name: name, cost: cost}
				var live []oLive
				spread, gangs, failed := 0, 0, 0
				for step := range steps {
					if rng.IntN(3) == 0 {
						live = oChurn(t, rng, c, w, live)
						continue
					}
					j := exactJob(rng, w, fmt.Sprintf("j%d", step))
					where := fmt.Sprintf("step %d job %s %v x%d %+v", step, j.Kind, j.SpreadLabel, j.Count, j.Task)
					before := qSnapshot(c)
					got, ok, err := c.PlaceJob(p, j, rng, nil)
					require.NoError(t, err, where)
					if p.Uniform {
						// Chance picks the nodes: check each against the oracle's rules.
						oCheckUniformJob(t, w, j, got, ok, where)
					} else {
						want, wantOK := w.placeJob(op, j)
						require.Equal(t, wantOK, ok, "%s: placed", where)
						if ok {
							require.Len(t, got, len(want))
							for k := range want {
								require.Equal(t, want[k].Node, got[k].Node, "%s: task %d node", where, k)
								require.Equal(t, want[k].Mask, got[k].Mask, "%s: task %d devices", where, k)
								require.Equal(t, want[k].Take, got[k].Take, "%s: task %d take", where, k)
							}
						}
					}
					if !ok {
						failed++
						require.Empty(t, got, "%s: a failed job returned tasks", where)
						require.Equal(t, before, qSnapshot(c), "%s: a failed job left a trace", where)
						continue
					}
					require.Len(t, got, j.Count, "%s: a gang is placed whole", where)
					if j.Kind == Inference {
						spread++
					} else {
						gangs++
					}
					for _, a := range got {
						live = append(live, oLive{a, j.Task})
					}
					oCheckState(t, c, w, where)
				}
				require.Positive(t, spread, "services placed")
				require.Positive(t, gangs, "gangs placed")
				require.Positive(t, failed, "jobs refused")
			})
		}
	}
}

// oCheckUniformJob checks a random-policy job task by task on the oracle's
// world: each task feasible where it went, a replica always in a domain of
// fewest replicas; then applies it.
func oCheckUniformJob(t *testing.T, w *oWorld, j *Job, got []Assign, ok bool, where string) {
	t.Helper()
	label := j.SpreadLabel
	if label == "" {
		label = "zone"
	}
	if !ok {
		// Nothing fits for at least one task: the oracle places the others
		// one by one on any feasible node and must run out.
		var out []Assign
		fits := true
		for range j.Count {
			cands := w.candidates(&j.Task, nil)
			if len(cands) == 0 {
				fits = false
				break
			}
			mask, take, sure := w.pick("first-fit", cands[0], &j.Task)
			require.True(t, sure)
			a := Assign{Node: NodeID(cands[0]), Mask: mask, Take: int32(take), CPUMilli: j.Task.CPUMilli, MemMiB: j.Task.MemoryMiB}
			w.apply(a, &j.Task, -1)
			out = append(out, a)
		}
		for i := len(out) - 1; i >= 0; i-- {
			w.apply(out[i], &j.Task, +1)
		}
		if fits {
			// Whole-GPU and CPU-only tasks lower the count of tasks their
			// node holds by one wherever they go, so a job the oracle fits
			// task by task fits in any order; shares may not (MIG).
			require.True(t, oSharing(&j.Task), "%s: the job fits but was refused", where)
		}
		return
	}
	used := map[string]int{}
	for _, a := range got {
		n := w.nodes[a.Node]
		require.True(t, n.feasible(&j.Task), "%s: task on infeasible %s", where, n.name)
		if j.Kind == Inference && j.Count > 1 {
			fewest := math.MaxInt
			for _, c := range w.candidates(&j.Task, nil) {
				fewest = min(fewest, used[w.nodes[c].labels[label]])
			}
			require.Equal(t, fewest, used[n.labels[label]], "%s: replica on %s, not in a least-used domain", where, n.name)
			used[n.labels[label]]++
		}
		w.apply(a, &j.Task, -1)
	}
}

// oProbeLimits checks Commit's and Release's re-checks at their exact
// limits on a random node: taking exactly what is free of CPU, memory or
// one device is accepted (and given back), one milli more is refused;
// giving back exactly what is used is accepted (and taken again), one
// milli more is refused. Refusals change nothing.
func oProbeLimits(t *testing.T, rng *rand.Rand, c *Cluster, w *oWorld, where string) {
	t.Helper()
	id := rng.IntN(len(w.nodes))
	n := w.nodes[id]
	probes := []struct {
		dim       string
		take, use Assign
	}{
		{"cpu", Assign{CPUMilli: n.cpuFree}, Assign{CPUMilli: n.cpuCap - n.cpuFree}},
		{"memory", Assign{MemMiB: n.memFree}, Assign{MemMiB: n.memCap - n.memFree}},
	}
	for d, dev := range n.devs {
		if dev.free > 0 {
			probes = append(probes, struct {
				dim       string
				take, use Assign
			}{fmt.Sprintf("GPU %d", d), Assign{Mask: 1 << uint(d), Take: int32(dev.free)}, Assign{}})
		}
		if dev.free < dev.cap {
			probes = append(probes, struct {
				dim       string
				take, use Assign
			}{fmt.Sprintf("GPU %d", d), Assign{}, Assign{Mask: 1 << uint(d), Take: int32(dev.cap - dev.free)}})
		}
	}
	more := func(a Assign) Assign {
		switch {
		case a.Mask != 0:
			a.Take++
		case a.CPUMilli > 0 || a.MemMiB == 0:
			a.CPUMilli++
		default:
			a.MemMiB++
		}
		return a
	}
	// A probe touches one node: its usage is all it may change.
	before := c.Usage(NodeID(id))
	for _, pr := range probes {
		// Tag -1: the probes move resources, not tasks, so that only the
		// capacity checks can refuse them.
		pr.take.Node, pr.take.Tag = NodeID(id), -1
		pr.use.Node, pr.use.Tag = NodeID(id), -1
		if pr.take.Mask != 0 || pr.take.CPUMilli > 0 || pr.take.MemMiB > 0 {
			require.Error(t, c.Commit(more(pr.take)), "%s: commit of %s one milli over the free amount on %s", where, pr.dim, n.name)
			require.Equal(t, before, c.Usage(NodeID(id)), "%s: a refused commit changed the node", where)
			require.NoError(t, c.Commit(pr.take), "%s: commit of exactly the free %s on %s", where, pr.dim, n.name)
			require.NoError(t, c.Release(pr.take), where)
		}
		if pr.use.Mask != 0 || pr.use.CPUMilli > 0 || pr.use.MemMiB > 0 {
			require.Error(t, c.Release(more(pr.use)), "%s: release of %s one milli over what is used on %s", where, pr.dim, n.name)
			require.Equal(t, before, c.Usage(NodeID(id)), "%s: a refused release changed the node", where)
			require.NoError(t, c.Release(pr.use), "%s: release of exactly the used %s on %s", where, pr.dim, n.name)
			require.NoError(t, c.Commit(pr.use), where)
		}
	}
	require.Equal(t, before, c.Usage(NodeID(id)), "%s: the probes put the node back", where)
}

// TestOracleSpreadBigFleet checks the spread path where the best-first walk
// cannot see every candidate: over 512 partly used nodes in one zone score
// better than the few nodes of the others, so a service's second replica
// must look past them. Every replica must go where the oracle puts it.
func TestOracleSpreadBigFleet(t *testing.T) {
	big, jobs := 600, 12
	if oLong() {
		big, jobs = 1100, 60
	}
	for _, name := range []string{"best-fit", "gpu-packing", "fgd", "topology", "first-fit"} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(len(name)), 0xB16))
			var nodes []Node
			for i := range big + 8 {
				n := Node{Name: fmt.Sprintf("n%04d", i), CPUMilli: 64000, MemoryMiB: 1 << 18, Rack: fmt.Sprintf("r%d", i%7),
					Labels: map[string]string{"zone": "z0"}}
				for g := range 4 {
					n.GPUs = append(n.GPUs, GPU{Model: "A100", Island: g / 2})
				}
				switch {
				case i >= big+5:
					n.Labels = nil // no zone: the "" domain
				case i >= big:
					n.Labels["zone"] = fmt.Sprintf("z%d", 1+i%2)
				}
				nodes = append(nodes, n)
			}
			c, err := NewCluster(nil, nodes)
			require.NoError(t, err)
			w := newOWorld(nil, nodes, oTarget)
			perm := make([]NodeID, c.NumNodes())
			for r, id := range rng.Perm(len(perm)) {
				perm[r] = NodeID(id)
				w.rank[id] = r
			}
			require.NoError(t, c.SetRanks(perm))
			p, err := NewPolicy(c, name, Options{Target: oTarget})
			require.NoError(t, err)
			// Fill the big zone partly, so that its nodes score best.
			fill := Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000 + rng.Int64N(8000)}
			for i := range big {
				a := Assign{Node: NodeID(i), Mask: 1 << uint(rng.IntN(4)), Take: 1000, CPUMilli: fill.CPUMilli, Tag: 1}
				require.NoError(t, c.Commit(a))
				w.apply(a, &fill, -1)
			}
			op := oPolicy{name: name}
			outside := 0
			for k := range jobs {
				j := &Job{ID: fmt.Sprintf("svc%d", k), Kind: Inference, Count: 2 + rng.IntN(3),
					Task: Task{GPUs: 1, GPUMilli: []int{1000, 1000, 250}[rng.IntN(3)], CPUMilli: 1000}}
				where := fmt.Sprintf("job %s x%d %+v", j.ID, j.Count, j.Task)
				got, ok, err := c.PlaceJob(p, j, rng, nil)
				require.NoError(t, err)
				want, wantOK := w.placeJob(op, j)
				require.Equal(t, wantOK, ok, where)
				require.Len(t, got, len(want), where)
				for i := range want {
					require.Equal(t, want[i].Node, got[i].Node, "%s: replica %d", where, i)
					require.Equal(t, want[i].Mask, got[i].Mask, "%s: replica %d devices", where, i)
					if int(got[i].Node) >= big {
						outside++
					}
				}
				oCheckState(t, c, w, where)
			}
			require.Positive(t, outside, "replicas went past the big zone")
		})
	}
}

// feasible is the number of the index's feasible leaves: the root's count
// where the index keeps counts, else counted over the leaves.
func (ix *shapeIndex) feasible() int {
	if ix.counted {
		return int(ix.cnt[ix.root()])
	}
	k := 0
	for _, v := range ix.val[:ix.n] {
		if v != noScore {
			k++
		}
	}
	return k
}
