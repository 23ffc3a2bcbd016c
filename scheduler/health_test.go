package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnhealthyDevicesUnderChurn drives random fleets through placements,
// releases and random health changes, in any order, for every policy: no
// placement (indexed or scanned, one task or a gang) lands on an unhealthy
// device, the indexed decision stays the scan's, and capacity is conserved
// (free plus withheld is capacity less what runs there).
func TestUnhealthyDevicesUnderChurn(t *testing.T) {
	for _, name := range PolicyNames() {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, uint64(len(name))))
			pools, nodes := randomFleet(rng, 24)
			c, err := NewCluster(pools, nodes)
			require.NoError(t, err)
			p, err := NewPolicy(c, name, Options{})
			require.NoError(t, err)
			scan := *p
			scan.Scan = true
			var live []Assign
			marks, blocked := 0, 0
			check := func(a Assign) {
				t.Helper()
				sick := c.UnhealthyDevices(a.Node)
				for m := a.Mask; m != 0; m &= m - 1 {
					require.NotContains(t, sick, trailingZeros(m), "placed on unhealthy GPU of node %d", a.Node)
				}
			}
			for step := 0; step < 1500; step++ {
				switch x := rng.IntN(100); {
				case x < 12:
					n := NodeID(rng.IntN(c.NumNodes()))
					k := len(c.NodeGPUs(n))
					if k == 0 {
						continue
					}
					devs := []int{rng.IntN(k), rng.IntN(k)}
					changed, err := c.SetDeviceHealth(n, devs, rng.IntN(3) == 0)
					require.NoError(t, err)
					if changed {
						marks++
					}
					continue
				case x < 40 && len(live) > 0:
					k := rng.IntN(len(live))
					require.NoError(t, c.Release(live[k]))
					live = append(live[:k], live[k+1:]...)
					continue
				case x < 48:
					j := Job{ID: fmt.Sprint("g", step), Count: 2 + rng.IntN(3), Task: randomTask(rng)}
					as, ok, err := c.PlaceJob(p, &j, rng, nil)
					if err != nil || !ok {
						continue
					}
					for _, a := range as {
						check(a)
					}
					live = append(live, as...)
					continue
				}
				task := randomTask(rng)
				s, err := c.ShapeOf(&task)
				require.NoError(t, err)
				for n := range c.NumNodes() {
					if c.Why(NodeID(n), &s) == ReasonUnhealthyGPU {
						blocked++
						require.False(t, c.Fits(NodeID(n), &s))
					}
				}
				got := c.Select(p, &s, rng)
				want, _ := c.SelectScan(&scan, &s, rng)
				if p.Uniform {
					require.Equal(t, want == NoNode, got == NoNode, "step %d", step)
				} else {
					require.Equal(t, want, got, "step %d", step)
				}
				if got == NoNode {
					continue
				}
				a := c.assign(p, got, &s, rng)
				check(a)
				require.NoError(t, c.Commit(a))
				live = append(live, a)
			}
			checkCapacity(t, c, live)
			assert.Positive(t, marks, "health changed")
			assert.Positive(t, blocked, "some node held back by an unhealthy GPU alone")
			// Everything ends, every device healthy again: the fleet is empty.
			for _, a := range live {
				require.NoError(t, c.Release(a))
			}
			for n := range c.NumNodes() {
				_, err := c.SetDeviceHealth(NodeID(n), c.UnhealthyDevices(NodeID(n)), true)
				require.NoError(t, err)
			}
			checkCapacity(t, c, nil)
			capM, used := c.Totals()
			assert.Equal(t, c.gpuCapAll, capM)
			assert.Zero(t, used)
		})
	}
}

// TestDeviceHealth walks one node through mark, place, release and unmark:
// an unhealthy device takes nothing, its task keeps running, and healthy
// again it offers its capacity less what runs there.
func TestDeviceHealth(t *testing.T) {
	c, err := NewCluster([]Pool{{Name: "p"}}, []Node{{Name: "a", Pool: "p", CPUMilli: 64000, MemoryMiB: 1 << 20, GPUs: []GPU{{Model: "H100"}, {Model: "H100"}}}})
	require.NoError(t, err)
	p, err := NewPolicy(c, "best-fit", Options{})
	require.NoError(t, err)
	half := Task{GPUs: 1, GPUMilli: 500}
	s, err := c.ShapeOf(&half)
	require.NoError(t, err)
	// A share on device 0 (the least free first, then the lowest number).
	a0, ok := c.PlaceTask(p, &s, nil)
	require.True(t, ok)
	require.Equal(t, uint64(1), a0.Mask)

	changed, err := c.SetDeviceHealth(0, []int{0}, false)
	require.NoError(t, err)
	require.True(t, changed)
	changed, err = c.SetDeviceHealth(0, []int{0}, false)
	require.NoError(t, err)
	assert.False(t, changed, "marking again changes nothing")
	assert.Equal(t, []int{0}, c.UnhealthyDevices(0))
	u := c.Usage(0)
	assert.Equal(t, []int32{0, 1000}, u.GPUs)
	assert.Equal(t, []int32{500, 0}, u.Held)
	assert.Equal(t, int64(1000), u.GPUFree)

	// The next share goes to device 1, though device 0 has room.
	a1, ok := c.PlaceTask(p, &s, nil)
	require.True(t, ok)
	assert.Equal(t, uint64(2), a1.Mask)
	// A whole GPU fits nowhere now, and would not were device 0 healthy.
	whole := Task{GPUs: 1, GPUMilli: 1000}
	ws, err := c.ShapeOf(&whole)
	require.NoError(t, err)
	assert.False(t, c.Fits(0, &ws))
	assert.Equal(t, ReasonGPUs, c.Why(0, &ws))
	// A stale plan naming device 0 is refused.
	assert.Error(t, c.Commit(Assign{Node: 0, Mask: 1, Take: 100, Tag: -1}))

	// The task on device 0 ends: its share stays withheld.
	require.NoError(t, c.Release(a0))
	assert.Equal(t, []int32{1000, 0}, c.Usage(0).Held)
	// Now the unhealthy GPU alone keeps a whole GPU out.
	assert.Equal(t, ReasonUnhealthyGPU, c.Why(0, &ws))
	assert.Equal(t, "unhealthy GPU", c.Why(0, &ws).String())
	assert.Equal(t, 1, c.Explain(p, &ws)[ReasonUnhealthyGPU])
	assert.Error(t, c.Release(a0), "released twice")

	changed, err = c.SetDeviceHealth(0, []int{0}, true)
	require.NoError(t, err)
	require.True(t, changed)
	u = c.Usage(0)
	assert.Equal(t, []int32{1000, 500}, u.GPUs)
	assert.Nil(t, u.Held)
	assert.Equal(t, Fit, c.Why(0, &ws))
	checkCapacity(t, c, []Assign{a1})

	_, err = c.SetDeviceHealth(0, []int{2}, false)
	assert.ErrorContains(t, err, "no device 2")
	_, err = c.SetDeviceHealth(1, []int{0}, false)
	assert.Error(t, err)
	assert.True(t, slices.Equal(c.UnhealthyDevices(0), nil))
}
