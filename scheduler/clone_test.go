package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cloneFields says how Clone treats every field of Cluster. A field added
// to Cluster fails TestCloneHandlesEveryField until it is listed here and
// handled in Clone.
var cloneFields = map[string]string{
	// copied: written in place, so the clone gets its own memory.
	"pools": "copied", "poolByNam": "copied", "nodes": "copied", "byName": "copied",
	"rank": "copied", "order": "copied", "ranked": "copied", "rackByNam": "copied", "rackNodes": "copied",
	"modelByNm": "copied", "gpuFree": "copied", "gpuHeld": "copied", "tagCount": "copied",
	"selectors": "copied", "selByKey": "copied",
	"seq": "copied", "maxCPU": "copied", "maxGPU": "copied", "gpuCapAll": "copied",
	// clipped: only ever appended to, so shared with the capacity clipped
	// (cloneClipped lists them, and the slabs nested in copied fields).
	"specs": "clipped", "names": "clipped", "labels": "clipped", "rackNames": "clipped", "models": "clipped",
	"gpuCap": "clipped", "gpuIsland": "clipped", "gpuExcl": "clipped",
	// fresh: derived caches and scratch, rebuilt on use; the log only feeds
	// indexes, and the clone has none yet.
	"log": "fresh", "logBase": "fresh", "idx": "fresh", "heap": "fresh", "jobShape": "fresh", "memo": "fresh",
	"spread": "fresh", "held": "fresh",
}

// cloneClipped are the append-only slabs that the clone shares with the
// original, each with its capacity clipped to its length so that an append
// on either side never writes where the other reads. Paths are as refsOf
// writes them.
var cloneClipped = []string{
	".specs", ".names", ".labels", ".rackNames", ".models", ".gpuCap", ".gpuIsland", ".gpuExcl",
	".rackNodes[]", ".selectors[].ok",
}

// cloneShared are the places below which the clone may share memory as is:
// what a registration writes once and nothing writes again (a node's
// devices and labels, a pool's labels, a selector's constraints), and the
// callers' policies that key the score indexes.
var cloneShared = []string{
	".specs[]", ".labels[]", ".pools[].Labels", ".selectors[].cons", ".selectors[].residency", ".idx.m[].pol",
}

func TestCloneHandlesEveryField(t *testing.T) {
	typ := reflect.TypeFor[Cluster]()
	var missing []string
	seen := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		seen[f.Name] = true
		if _, ok := cloneFields[f.Name]; !ok {
			missing = append(missing, f.Name)
		}
	}
	require.Empty(t, missing, "Cluster fields that Clone does not account for: copy them in Clone (clone.go) and list them in cloneFields")
	for name := range cloneFields {
		require.True(t, seen[name], "cloneFields lists %q, which Cluster no longer has", name)
	}
}

// cloneWorld builds a cluster that exercises every slab: pools with labels,
// racks, two models, MIG instances, interned selectors, tasks of several
// tags, warm score indexes and the class memo.
func cloneWorld(t *testing.T) (*Cluster, []*Policy) {
	t.Helper()
	pools := []Pool{
		{Name: "own", Kind: PoolOnPrem, Region: "eu", Labels: map[string]string{"tier": "gold"}},
		{Name: "cloud", Kind: PoolCloud, Region: "us", Zone: "us-1", PricePerGPUHour: 2},
	}
	var nodes []Node
	for i := range 24 {
		n := Node{
			Name: fmt.Sprintf("n%02d", i), Pool: pools[i%2].Name, Rack: fmt.Sprintf("r%d", i/6),
			CPUMilli: 64000, MemoryMiB: 1 << 18, Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3)},
		}
		model := []string{"A100", "H100"}[i%2]
		switch {
		case i%5 == 4:
			for _, p := range []string{"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"} {
				n.GPUs = append(n.GPUs, GPU{Model: model, MIG: p})
			}
		default:
			for g := range 8 {
				n.GPUs = append(n.GPUs, GPU{Model: model, Island: g / 4})
			}
		}
		nodes = append(nodes, n)
	}
	c, err := NewCluster(pools, nodes)
	require.NoError(t, err)
	var pols []*Policy
	for _, name := range []string{"best-fit", "fgd", "topology", "gpu-clustering"} {
		p, err := NewPolicy(c, name, Options{})
		require.NoError(t, err)
		pols = append(pols, p)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		j := drawCloneJob(rng, i)
		_, _, err := c.PlaceJob(pols[i%len(pols)], &j, rng, nil)
		require.NoError(t, err)
	}
	return c, pols
}

// cloneJob draws a job: a share, whole GPUs or CPU only, sometimes pinned
// to a model or constrained to labels.
func drawCloneJob(rng *rand.Rand, i int) Job {
	j := Job{ID: fmt.Sprintf("j%d", i), Count: 1 + rng.IntN(2), Task: Task{CPUMilli: 1000 * int64(1+rng.IntN(8)), MemoryMiB: 4096}}
	switch rng.IntN(3) {
	case 0:
		j.Task.GPUs, j.Task.GPUMilli = 1, 250*(1+rng.IntN(3))
	case 1:
		j.Task.GPUs, j.Task.GPUMilli = []int{1, 2, 4}[rng.IntN(3)], MilliPerGPU
	}
	if j.Task.GPUs > 0 && rng.IntN(3) == 0 {
		j.Task.Models = []string{"H100"}
	}
	if rng.IntN(3) == 0 {
		j.Task.Constraints = []Constraint{{Key: "zone", Op: OpNotIn, Values: []string{fmt.Sprintf("z%d", rng.IntN(3))}}}
	}
	return j
}

// ref is a piece of memory reachable from a cluster: where it was found
// and, for a slice, whether its capacity is clipped to its length.
type ref struct {
	path    string
	clipped bool
}

// refsOf records every piece of memory reachable from v that a write could
// reach through (slice arrays, maps, pointers), by address. Strings are
// immutable and left out; policies belong to their callers and are not
// walked into.
func refsOf(v reflect.Value, path string, out map[uintptr]ref) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if _, seen := out[v.Pointer()]; seen {
			return
		}
		out[v.Pointer()] = ref{path: path}
		if v.Type() == reflect.TypeFor[*Policy]() {
			return
		}
		refsOf(v.Elem(), path+"*", out)
	case reflect.Slice:
		if v.Cap() == 0 {
			return
		}
		out[v.Pointer()] = ref{path: path, clipped: v.Len() == v.Cap()}
		for i := range v.Len() {
			refsOf(v.Index(i), path+"[]", out)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		out[v.Pointer()] = ref{path: path}
		for it := v.MapRange(); it.Next(); {
			refsOf(it.Key(), path+"[]", out)
			refsOf(it.Value(), path+"[]", out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			refsOf(v.Field(i), path+"."+v.Type().Field(i).Name, out)
		}
	case reflect.Array:
		for i := range v.Len() {
			refsOf(v.Index(i), path+"[]", out)
		}
	case reflect.Interface:
		if !v.IsNil() {
			refsOf(v.Elem(), path, out)
		}
	}
}

// sharedRefs lists what b wrongly shares with a: memory outside the
// allowed places (the shallow copy a clone must not make), and append-only
// slabs shared without their capacity clipped.
func sharedRefs(a, b *Cluster) []string {
	ra, rb := map[uintptr]ref{}, map[uintptr]ref{}
	refsOf(reflect.ValueOf(a).Elem(), "", ra)
	refsOf(reflect.ValueOf(b).Elem(), "", rb)
	var bad []string
	for addr, r := range rb {
		if _, ok := ra[addr]; !ok {
			continue
		}
		switch {
		case slices.Contains(cloneClipped, r.path):
			if !r.clipped {
				bad = append(bad, r.path+" (not clipped)")
			}
		case slices.ContainsFunc(cloneShared, func(s string) bool { return strings.HasPrefix(r.path, s) }):
		default:
			bad = append(bad, r.path)
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

func TestCloneSharesNoWritableMemory(t *testing.T) {
	c, pols := cloneWorld(t)
	d := c.Clone()
	require.Empty(t, sharedRefs(c, d), "the clone shares these with the original")
	// After both have been used, nothing new is shared either (the indexes
	// and memo the clone builds are its own).
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 10 {
		j := drawCloneJob(rng, 100+i)
		_, _, err := d.PlaceJob(pols[i%len(pols)], &j, rng, nil)
		require.NoError(t, err)
	}
	require.NotEmpty(t, d.idx.m, "the clone built indexes of its own")
	require.Empty(t, sharedRefs(c, d), "after use, the clone shares these with the original")

	// The walker itself finds a shallow copy, and a slab shared unclipped.
	e := c.Clone()
	e.tagCount = c.tagCount
	c.gpuCap = slices.Grow(c.gpuCap, 1)
	e.gpuCap = c.gpuCap
	require.Equal(t, []string{".gpuCap (not clipped)", ".tagCount"}, sharedRefs(c, e))
}

// clusterState renders every field of the cluster except the derived
// caches, so that two renderings are equal exactly when the state is.
func clusterState(c *Cluster) string {
	v := reflect.ValueOf(c).Elem()
	var b strings.Builder
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if cloneFields[name] == "fresh" {
			continue
		}
		fmt.Fprintf(&b, "%s=%v\n", name, v.Field(i))
	}
	return b.String()
}

// placeAll places jobs drawn from seed with each policy in turn and
// returns the assignments, or "-" for a job not placed.
func placeAll(t *testing.T, c *Cluster, pols []*Policy, seed uint64, n int) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []string
	for i := range n {
		j := drawCloneJob(rng, 1000+i)
		as, ok, err := c.PlaceJob(pols[i%len(pols)], &j, rng, nil)
		require.NoError(t, err)
		if !ok {
			out = append(out, "-")
			continue
		}
		out = append(out, fmt.Sprint(as))
	}
	return out
}

// TestCloneIsIndependent changes one of a cluster and its clone in every
// way the cluster can change and checks the other: its state is unchanged,
// and it places the next jobs exactly as an untouched twin does (a score
// index or selector verdict shared between the two would move it).
func TestCloneIsIndependent(t *testing.T) {
	changes := []struct {
		name   string
		change func(t *testing.T, c *Cluster, pols []*Policy)
	}{
		{"placements", func(t *testing.T, c *Cluster, pols []*Policy) { placeAll(t, c, pols, 77, 60) }},
		{"releases", func(t *testing.T, c *Cluster, pols []*Policy) {
			rng := rand.New(rand.NewPCG(5, 5))
			j := Job{ID: "x", Count: 3, Task: Task{GPUs: 2, GPUMilli: MilliPerGPU, CPUMilli: 8000}}
			as, ok, err := c.PlaceJob(pols[0], &j, rng, nil)
			require.NoError(t, err)
			require.True(t, ok)
			for _, a := range as[:2] {
				require.NoError(t, c.Release(a))
			}
		}},
		{"node states", func(t *testing.T, c *Cluster, _ []*Policy) {
			for n := range NodeID(6) {
				c.SetState(n*3, NodeDown)
			}
		}},
		{"ranks", func(t *testing.T, c *Cluster, _ []*Policy) {
			perm := make([]NodeID, c.NumNodes())
			for i := range perm {
				perm[i] = NodeID(len(perm) - 1 - i)
			}
			require.NoError(t, c.SetRanks(perm))
		}},
		{"registrations", func(t *testing.T, c *Cluster, _ []*Policy) {
			require.NoError(t, c.AddPool(Pool{Name: "new", Labels: map[string]string{"zone": "z9"}}))
			_, err := c.AddNode(Node{Name: "extra", Pool: "new", Rack: "r0", CPUMilli: 64000, MemoryMiB: 1 << 18,
				GPUs: []GPU{{Model: "B200"}, {Model: "B200"}}})
			require.NoError(t, err)
			_, err = c.ShapeOf(&Task{GPUs: 1, GPUMilli: 500, Constraints: []Constraint{{Key: "rack", Op: OpIn, Values: []string{"r0"}}}})
			require.NoError(t, err)
		}},
	}
	for _, ch := range changes {
		for _, side := range []string{"clone changed", "original changed"} {
			t.Run(ch.name+"/"+side, func(t *testing.T) {
				c, pols := cloneWorld(t)
				twin, twinPols := cloneWorld(t)
				require.Equal(t, clusterState(twin), clusterState(c))
				d := c.Clone()
				require.Equal(t, clusterState(c), clusterState(d), "a fresh clone holds the same state")
				changed, kept := d, c
				if side == "original changed" {
					changed, kept = c, d
				}
				before := clusterState(kept)
				ch.change(t, changed, pols)
				require.NotEqual(t, before, clusterState(changed), "the change changed something")
				require.Equal(t, before, clusterState(kept), "the other copy's state moved")
				require.Equal(t, placeAll(t, twin, twinPols, 11, 80), placeAll(t, kept, pols, 11, 80),
					"the other copy places as an untouched twin")
			})
		}
	}
}

// TestScheduleOnCloneLeavesOriginal runs a pass on a clone: the original
// has not changed at all, not even its change count, while a pass on the
// original itself moves the count (it applies and undoes as it goes); and
// the two passes give the same plan.
func TestScheduleOnCloneLeavesOriginal(t *testing.T) {
	c, pols := cloneWorld(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var pending []*Job
	for i := range 30 {
		j := drawCloneJob(rng, 500+i)
		j.Submitted = int64(i)
		pending = append(pending, &j)
	}
	for _, p := range pols {
		t.Run(p.Name, func(t *testing.T) {
			pass := func() Pass {
				return Pass{Now: 100, Policy: p, Rng: rand.New(rand.NewPCG(7, 7)), Pending: pending, Backfill: true}
			}
			state, changes := clusterState(c), c.View().Changes()
			fromClone, err := c.Clone().Schedule(pass())
			require.NoError(t, err)
			require.NotEmpty(t, fromClone.Place)
			require.Equal(t, state, clusterState(c))
			require.Equal(t, changes, c.View().Changes(), "a pass on a clone touches nothing of the original")

			fromLive, err := c.Schedule(pass())
			require.NoError(t, err)
			require.Greater(t, c.View().Changes(), changes, "a pass on the cluster itself changes it and undoes it")
			require.Equal(t, fromLive, fromClone)
		})
	}
}

// TestCloneBothSidesGrow registers a different node and selector on each of
// a cluster and its clone: each keeps its own (an append-only slab shared
// with spare capacity would let the second append overwrite the first).
func TestCloneBothSidesGrow(t *testing.T) {
	c, _ := cloneWorld(t)
	d := c.Clone()
	for i, x := range []*Cluster{c, d} {
		name := fmt.Sprintf("grown%d", i)
		_, err := x.AddNode(Node{Name: name, Pool: "own", Rack: "r0", CPUMilli: 1000, GPUs: []GPU{{Model: "A100", MIG: "1g.10gb", Island: i}}})
		require.NoError(t, err)
		_, err = x.ShapeOf(&Task{CPUMilli: 1, Constraints: []Constraint{{Key: "rack", Op: OpIn, Values: []string{name}}}})
		require.NoError(t, err)
	}
	for i, x := range []*Cluster{c, d} {
		last := NodeID(x.NumNodes() - 1)
		require.Equal(t, fmt.Sprintf("grown%d", i), x.Node(last).Name)
		require.Equal(t, int16(i), x.gpuIsland[len(x.gpuIsland)-1])
		require.Equal(t, last, x.rackNodes[0][len(x.rackNodes[0])-1])
		require.Len(t, x.selectors[len(x.selectors)-1].ok, x.NumNodes())
		require.Equal(t, clusterState(x), clusterState(x.Clone()))
	}
}
