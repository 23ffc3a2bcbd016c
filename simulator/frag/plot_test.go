package frag

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// Each policy has its own colour from the colour-blind-safe palette, and
// keeps it whatever is plotted beside it.
func TestPolicyStyle(t *testing.T) {
	seen := map[color.Color]string{}
	for _, p := range append(slices.Clone(PublishedPolicies), OwnPolicies...) {
		c, _, _ := policyStyle(p)
		assert.Contains(t, okabeIto, c, p)
		if other, dup := seen[c]; dup {
			t.Errorf("%s and %s share a colour", p, other)
		}
		seen[c] = p
	}
	styles := map[string]string{}
	for _, p := range PolicyNames() {
		c, d, _ := policyStyle(p)
		k := fmt.Sprint(c, d)
		assert.NotContains(t, styles, k, "%s and %s look alike", p, styles[k])
		styles[k] = p
	}
	pts := []Point{{60, 60}, {61, 61}}
	colourOf := func(policy string, curves []MeanCurve) color.Color {
		lines, names, err := curveLines("w", curves)
		require.NoError(t, err)
		return lines[slices.Index(names, policy)].Color
	}
	alone := colourOf("fgd", []MeanCurve{{"w", "fgd", pts}})
	crowded := colourOf("fgd", []MeanCurve{{"w", "random", pts}, {"w", "best-fit", pts}, {"w", "fgd", pts}, {"x", "fgd", pts}})
	assert.Equal(t, alone, crowded, "fgd keeps its colour")
}

func summaryTable(seeds []uint64) *Table {
	m := Matrix{Workloads: []string{"default", "cpu050", "gpushare100"}, Policies: []string{"random", "fgd", "fgd-strand"}, Seeds: seeds, Inflate: DefaultInflate}
	var runs []Record
	for wi, w := range m.Workloads {
		for pi, p := range m.Policies {
			for k, s := range seeds {
				v := 80 + 5*float64(pi) - 2*float64(wi) + float64(k)
				runs = append(runs, Record{Workload: w, Result: Result{Policy: p, Seed: s, FinalAllocPct: v}})
			}
		}
	}
	return Summarise(m, runs)
}

// The summary is grouped bars: the workloads are categories, a bar per
// policy in each, from zero, in the policy's colour, with error bars at
// the bars' centres when there are seeds to spread.
func TestSummaryBars(t *testing.T) {
	for _, seeds := range [][]uint64{{42}, {42, 43}} {
		tb := summaryTable(seeds)
		bars, errs, err := summaryBars(tb, vg.Centimeter)
		require.NoError(t, err)
		require.Len(t, bars, 3)
		for pi, b := range bars {
			name := tb.Matrix.Policies[pi]
			c, _, _ := policyStyle(name)
			assert.Equal(t, c, b.Color, name)
			assert.Greater(t, b.XMin, -0.5, "inside its group")
			assert.Less(t, b.XMin, 0.5, "inside its group")
			if pi > 0 {
				assert.Greater(t, b.XMin, bars[pi-1].XMin, "side by side, in the matrix's order")
			}
			require.Len(t, b.Values, 3)
			for wi := range b.Values {
				assert.InDelta(t, 100-tb.cell(wi, pi).Mean, b.Values[wi], 1e-9, "%s on %s", name, tb.Matrix.Workloads[wi])
			}
		}
		assert.InDelta(t, 0, bars[0].XMin+bars[2].XMin, 1e-9, "the group is centred on its workload")
		if len(seeds) < 2 {
			assert.Empty(t, errs, "no spread for one seed")
			continue
		}
		require.Len(t, errs, 3)
		for pi, e := range errs {
			for wi := range e.XYs {
				assert.InDelta(t, bars[pi].XMin+float64(wi), e.XYs[wi].X, 1e-9)
				assert.InDelta(t, bars[pi].Values[wi], e.XYs[wi].Y, 1e-9)
				assert.InDelta(t, tb.cell(wi, pi).Std, e.YErrors[wi].High, 1e-9)
			}
		}
	}
}

// Nothing of a plot is cut at the page's edge: the outermost pixels of the
// rendered page are all background.
func TestPlotsNotClipped(t *testing.T) {
	tb := summaryTable([]uint64{42, 43})
	curves := []MeanCurve{}
	for _, p := range tb.Matrix.Policies {
		curves = append(curves, MeanCurve{Workload: "gpushare100", Policy: p, Points: []Point{{0, 0}, {60, 60}, {90, 86}, {130, 87}}})
	}
	cp, err := CurvePlot("gpushare100", curves)
	require.NoError(t, err)
	width := summaryWidth(len(tb.Matrix.Workloads), len(tb.Matrix.Policies))
	sp, err := SummaryPlot(tb, width)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		p    *plot.Plot
		w, h vg.Length
	}{
		{"curve", cp, curveWidth, curveHeight},
		{"summary", sp, width, summaryHeight},
	} {
		b, err := renderPlot(tc.p, tc.w, tc.h, "png")
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err)
		r := img.Bounds()
		const margin = 3 // pixels
		inked := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if x >= r.Min.X+margin && x < r.Max.X-margin && y >= r.Min.Y+margin && y < r.Max.Y-margin {
					continue
				}
				if !isWhite(img, image.Pt(x, y)) {
					if inked < 5 {
						t.Logf("%s: ink at %d,%d of %v", tc.name, x, y, r)
					}
					inked++
				}
			}
		}
		assert.Zero(t, inked, "%s: %d pixels inked at the page's edge", tc.name, inked)
	}
}

func isWhite(img image.Image, p image.Point) bool {
	r, g, b, _ := img.At(p.X, p.Y).RGBA()
	return r > 0xf000 && g > 0xf000 && b > 0xf000
}
