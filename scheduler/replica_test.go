package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// syncFields says how Replica.Sync treats every field of Cluster. A field
// added to Cluster fails TestSyncHandlesEveryField until it is listed here
// and handled in Sync.
var syncFields = map[string]string{
	// per node: the nodes changed on either side are copied.
	"nodes": "per node", "gpuFree": "per node", "gpuHeld": "per node", "tagCount": "per node",
	// whole: compared, and taken whole when they differ.
	"rank": "whole", "order": "whole", "ranked": "whole", "pools": "whole", "poolByNam": "whole",
	"selectors": "whole", "selByKey": "whole",
	// node set: change only when a node registers, which makes Sync clone.
	"specs": "node set", "names": "node set", "labels": "node set", "byName": "node set",
	"rackNames": "node set", "rackByNam": "node set", "rackNodes": "node set",
	"models": "node set", "modelByNm": "node set",
	"gpuCap": "node set", "gpuIsland": "node set", "gpuExcl": "node set",
	"maxCPU": "node set", "maxGPU": "node set", "gpuCapAll": "node set",
	// own: the replica's own change sequence, which keeps its caches valid.
	"seq": "own", "log": "own", "logBase": "own",
	// caches: kept (warm), refreshed through the replica's own log.
	"idx": "cache", "heap": "cache", "jobShape": "cache", "memo": "cache", "spread": "cache",
	// scratch: all zero between uses, sized again to the node set on use.
	"held": "scratch",
}

func TestSyncHandlesEveryField(t *testing.T) {
	typ := reflect.TypeFor[Cluster]()
	seen := map[string]bool{}
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		seen[name] = true
		_, ok := syncFields[name]
		require.True(t, ok, "Cluster field %s: say in syncFields how Replica.Sync (replica.go) keeps it current", name)
	}
	for name := range syncFields {
		require.True(t, seen[name], "syncFields lists %q, which Cluster no longer has", name)
	}
}

// liveState renders what a pass reads of a cluster and a change may
// move: every node's free capacity, tags and health, the ranks, the
// selectors' verdicts and the pools. It leaves out the change sequence,
// which is each copy's own.
func liveState(c *Cluster) string {
	var b strings.Builder
	for n := range c.nodes {
		r := c.nodes[n]
		r.seq = 0
		fmt.Fprintf(&b, "%+v %v %v %v\n", r, c.gpuFree[r.gpuOff:r.gpuOff+r.gpuN], c.gpuHeld[r.gpuOff:r.gpuOff+r.gpuN], c.tagCount[n*numTags:(n+1)*numTags])
	}
	fmt.Fprintf(&b, "rank %v order %v\n", c.rank, c.order)
	for _, s := range c.selectors {
		fmt.Fprintf(&b, "selector %v %v %v\n", s.cons, s.residency, s.ok)
	}
	fmt.Fprintf(&b, "selectors %v pools %v %v\n", c.selByKey, c.pools, c.poolByNam)
	return b.String()
}

// TestReplicaMatchesClone changes a cluster and its replica at random
// (placements, releases, node states, ranks, new selectors and pools, a
// new node now and then; passes and trial placements on the replica), syncs,
// and checks that the replica holds the source's state and places the next
// jobs, through its warm indexes and policies, exactly as a fresh Clone of
// the source does through new ones.
func TestReplicaMatchesClone(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			src, srcPols := cloneWorld(t)
			rng := rand.New(rand.NewPCG(seed, 99))
			r := NewReplica(src)
			var replPols []*Policy
			for _, name := range []string{"best-fit", "fgd", "topology", "gpu-clustering", "random"} {
				p, err := NewPolicy(src, name, Options{})
				require.NoError(t, err)
				replPols = append(replPols, p)
			}
			var live []Assign
			fulls, syncs := 0, 0
			for step := range 60 {
				// The source moves on.
				for range rng.IntN(6) {
					switch k := rng.IntN(100); {
					case k < 45:
						j := drawCloneJob(rng, 10000+step*10+k)
						as, _, err := src.PlaceJob(srcPols[rng.IntN(len(srcPols))], &j, rng, nil)
						require.NoError(t, err)
						live = append(live, as...)
					case k < 75 && len(live) > 0:
						i := rng.IntN(len(live))
						require.NoError(t, src.Release(live[i]))
						live = append(live[:i], live[i+1:]...)
					case k < 82:
						n := NodeID(rng.IntN(src.NumNodes()))
						if g := len(src.NodeGPUs(n)); g > 0 {
							_, err := src.SetDeviceHealth(n, []int{rng.IntN(g)}, rng.IntN(2) == 0)
							require.NoError(t, err)
						}
					case k < 88:
						st := []NodeState{NodeReady, NodeReady, NodeDraining, NodeDown}[rng.IntN(4)]
						src.SetState(NodeID(rng.IntN(src.NumNodes())), st)
					case k < 92:
						require.NoError(t, src.SetRanks(replicaPerm(rng, src.NumNodes())))
					case k < 96:
						_, err := src.ShapeOf(&Task{CPUMilli: 1, Constraints: []Constraint{{Key: "rack", Op: OpNotIn, Values: []string{fmt.Sprintf("src%d", step)}}}})
						require.NoError(t, err)
					case k < 98:
						require.NoError(t, src.AddPool(Pool{Name: fmt.Sprintf("p%d-%d", step, k)}))
					default:
						_, err := src.AddNode(Node{Name: fmt.Sprintf("late%d-%d", step, src.NumNodes()), Pool: "own", Rack: "r1", CPUMilli: 64000, MemoryMiB: 1 << 18,
							GPUs: []GPU{{Model: "A100"}, {Model: "A100"}}})
						require.NoError(t, err)
					}
				}
				// The replica is used: passes that restore, trials that do
				// not, its own selectors.
				rc := r.Cluster()
				switch rng.IntN(4) {
				case 0:
					var pending []*Job
					for i := range 5 {
						j := drawCloneJob(rng, 20000+step*10+i)
						pending = append(pending, &j)
					}
					_, err := rc.Schedule(Pass{Policy: replPols[rng.IntN(len(replPols))], Rng: rng, Pending: pending})
					require.NoError(t, err)
				case 1:
					placeAll(t, rc, replPols, uint64(step), 4)
				case 2:
					_, err := rc.ShapeOf(&Task{CPUMilli: 1, Constraints: []Constraint{{Key: "zone", Op: OpIn, Values: []string{fmt.Sprintf("repl%d", step)}}}})
					require.NoError(t, err)
				}

				if r.Sync() {
					fulls++
				}
				syncs++
				require.Equal(t, liveState(src), liveState(r.Cluster()), "step %d: the replica holds the source's state", step)
				fresh := src.Clone()
				var freshPols []*Policy
				for _, p := range replPols {
					q, err := NewPolicy(fresh, strings.TrimSuffix(p.Name, "+cost"), Options{})
					require.NoError(t, err)
					freshPols = append(freshPols, q)
				}
				require.Equal(t, placeAll(t, fresh, freshPols, 1000+uint64(step), 12), placeAll(t, r.Cluster(), replPols, 1000+uint64(step), 12),
					"step %d: the replica places as a fresh clone", step)
			}
			require.Less(t, fulls, syncs/2, "most syncs are incremental")
		})
	}
}

// replicaPerm draws a permutation of n node ids.
func replicaPerm(rng *rand.Rand, n int) []NodeID {
	p := make([]NodeID, n)
	for i := range p {
		p[i] = NodeID(i)
	}
	rng.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// TestReplicaSharesNoWritableMemory checks a synced replica as a clone is
// checked: no memory shared with the source but the clipped append-only
// slabs and the registered specs.
func TestReplicaSharesNoWritableMemory(t *testing.T) {
	src, pols := cloneWorld(t)
	r := NewReplica(src)
	placeAll(t, r.Cluster(), pols, 1, 20)
	placeAll(t, src, pols, 2, 20)
	_, err := src.ShapeOf(&Task{CPUMilli: 1, Constraints: []Constraint{{Key: "rack", Op: OpIn, Values: []string{"r9"}}}})
	require.NoError(t, err)
	require.NoError(t, src.AddPool(Pool{Name: "later"}))
	require.False(t, r.Sync())
	require.Empty(t, sharedRefs(src, r.Cluster()))
	require.Equal(t, liveState(src), liveState(r.Cluster()))
}

// TestReplicaSelectorsDiverge interns a different selector on each side
// under the same id, with a warm index on the replica's: after Sync the id
// means the source's selector, and the stale index must not answer for it.
func TestReplicaSelectorsDiverge(t *testing.T) {
	src, pols := cloneWorld(t)
	r := NewReplica(src)
	none := Job{ID: "none", Count: 1, Task: Task{CPUMilli: 1, Constraints: []Constraint{{Key: "zone", Op: OpIn, Values: []string{"nowhere"}}}}}
	_, ok, err := r.Cluster().PlaceJob(pols[0], &none, rand.New(rand.NewPCG(1, 1)), nil)
	require.NoError(t, err)
	require.False(t, ok, "no node is in zone nowhere")
	any := Job{ID: "any", Count: 1, Task: Task{CPUMilli: 1, Constraints: []Constraint{{Key: "zone", Op: OpNotIn, Values: []string{"nowhere"}}}}}
	sSrc, err := src.ShapeOf(&any.Task)
	require.NoError(t, err)
	sRepl, err := r.Cluster().ShapeOf(&none.Task)
	require.NoError(t, err)
	require.Equal(t, sSrc, sRepl, "the two selectors got the same id: the case under test")

	require.False(t, r.Sync())
	_, ok, err = r.Cluster().PlaceJob(pols[0], &any, rand.New(rand.NewPCG(1, 1)), nil)
	require.NoError(t, err)
	require.True(t, ok, "the source's selector matches every node")
}
