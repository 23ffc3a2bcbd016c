package frag

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Okabe and Ito's palette ("Color Universal Design", 2008), told apart
// under the common colour-vision deficiencies, plus a grey.
var okabeIto = []color.NRGBA{
	{0x00, 0x00, 0x00, 0xff}, // black
	{0xe6, 0x9f, 0x00, 0xff}, // orange
	{0x56, 0xb4, 0xe9, 0xff}, // sky blue
	{0x00, 0x9e, 0x73, 0xff}, // bluish green
	{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
	{0x00, 0x72, 0xb2, 0xff}, // blue
	{0xd5, 0x5e, 0x00, 0xff}, // vermillion
	// Yellow is faint as a line on white: the experiment's seven policies
	// do without it.
	{0xf0, 0xe4, 0x42, 0xff}, // yellow
	{0x99, 0x99, 0x99, 0xff}, // grey
}

// Palette returns the colour-blind-safe palette the plots draw with, in
// the order policies take it, so that other reports match these plots.
func Palette() []color.NRGBA { return slices.Clone(okabeIto) }

// PolicyStyle is the colour, dashes and marker a policy draws with in
// every plot (see policyStyle), for other reports to use the same.
func PolicyStyle(policy string) (color.Color, []vg.Length, draw.GlyphDrawer) {
	return policyStyle(policy)
}

// policyStyle is the fixed style of a policy in every plot, so that a
// policy keeps its colour (and its dashes and marker) from one plot to the
// next whatever the policies plotted beside it: the published six and
// petite's own first, in the order of the paper's figures, then the rest
// of the scheduler's policies. Past the palette, colours repeat and the
// dashes and markers still tell the policies apart.
func policyStyle(policy string) (c color.Color, dashes []vg.Length, shape draw.GlyphDrawer) {
	order := append(slices.Clone(PublishedPolicies), OwnPolicies...)
	for _, p := range PolicyNames() {
		if !slices.Contains(order, p) {
			order = append(order, p)
		}
	}
	i := slices.Index(order, policy)
	if i < 0 { // not a scheduler policy (a renamed record): after the rest
		i = len(order)
	}
	n := len(okabeIto)
	// A policy that shares a colour with an earlier one draws other dashes.
	return okabeIto[i%n], plotutil.Dashes(i%n + i/n), plotutil.Shape(i)
}

// curveLines are the lines of a curve plot: a policy's mean allocation
// against arrival on one workload, in its own style.
func curveLines(workload string, curves []MeanCurve) ([]*plotter.Line, []string, error) {
	var lines []*plotter.Line
	var names []string
	for _, c := range curves {
		if c.Workload != workload {
			continue
		}
		xys := make(plotter.XYs, len(c.Points))
		for k, pt := range c.Points {
			xys[k].X, xys[k].Y = pt.ArrivedPct, pt.AllocPct
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, nil, fmt.Errorf("plot %s/%s: %w", workload, c.Policy, err)
		}
		l.Color, l.Dashes, _ = policyStyle(c.Policy)
		l.Width = vg.Points(1.5)
		lines = append(lines, l)
		names = append(names, c.Policy)
	}
	return lines, names, nil
}

// CurvePlot draws, like the paper's figures, the GPU allocation against
// the arrived workload for each policy on one workload (mean over seeds).
func CurvePlot(workload string, curves []MeanCurve) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("openb %s: GPU allocation against arrival\n(mean over seeds)", workload)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "arrived GPU request (% of GPU capacity)"
	p.Y.Label.Text = "allocated GPUs (% of GPU capacity)"
	// The policies part where the cluster fills up: show from 60% on, with
	// the legend in the empty lower right.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.Padding = vg.Points(2)
	p.Legend.ThumbnailWidth = vg.Points(24)
	p.Add(plotter.NewGrid())
	lines, names, err := curveLines(workload, curves)
	if err != nil {
		return nil, err
	}
	for i, l := range lines {
		p.Add(l)
		p.Legend.Add(names[i], l)
	}
	p.X.Min, p.Y.Min = 60, 60
	p.Y.Max = 100 // allocation cannot pass it; the top curves stay off the frame
	return p, nil
}

// summaryBars are the bars of the summary plot, one chart per policy: the
// GPU capacity left unallocated on each workload, a bar per policy in a
// group per workload, the groups at the workloads' positions 0, 1, ... and
// groupWidth wide on the page. With two seeds or more, errs holds the error
// bars (± one sample standard deviation) at the bars' centres.
func summaryBars(t *Table, groupWidth vg.Length) (bars []*plotter.BarChart, errs []*plotter.YErrorBars, err error) {
	np := len(t.Matrix.Policies)
	const span = 0.8 // of the space between two workloads
	for pi, name := range t.Matrix.Policies {
		vals := make(plotter.Values, len(t.Matrix.Workloads))
		var pts errPoints
		for wi := range t.Matrix.Workloads {
			c := t.cell(wi, pi)
			if c.Runs == 0 {
				continue // no bar
			}
			vals[wi] = round4(100 - c.Mean)
			if c.Runs >= 2 {
				pts.XYs = append(pts.XYs, plotter.XY{Y: vals[wi]})
				pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{c.Std, c.Std})
			}
		}
		b, err := plotter.NewBarChart(vals, groupWidth*span/vg.Length(np))
		if err != nil {
			return nil, nil, fmt.Errorf("plot %s: %w", name, err)
		}
		// The bar's centre, in workload units: groups are centred on the
		// workload.
		b.XMin = -span/2 + span*(float64(pi)+0.5)/float64(np)
		col, _, _ := policyStyle(name)
		b.Color = col
		b.LineStyle.Width = vg.Points(0.4)
		b.LineStyle.Color = color.Gray{0x40}
		bars = append(bars, b)
		if len(pts.XYs) > 0 {
			k := 0
			for wi := range t.Matrix.Workloads {
				if c := t.cell(wi, pi); c.Runs >= 2 {
					pts.XYs[k].X = b.XMin + float64(wi)
					k++
				}
			}
			e, err := plotter.NewYErrorBars(pts)
			if err != nil {
				return nil, nil, fmt.Errorf("plot %s: %w", name, err)
			}
			e.LineStyle.Width = vg.Points(0.6)
			e.CapWidth = groupWidth * span / vg.Length(np) / 2
			errs = append(errs, e)
		}
	}
	return bars, errs, nil
}

type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// SummaryPlot draws, as grouped bars, the GPU capacity each policy leaves
// unallocated at the target arrival on every workload of a table (100
// minus the table's mean): the workloads are categories, and bars that
// start from zero compare the policies honestly, which bars of the
// allocation itself, all between 80 and 97, would not. width is the width
// of the page the plot is drawn on.
func SummaryPlot(t *Table, width vg.Length) (*plot.Plot, error) {
	p := plot.New()
	what := fmt.Sprintf("at %s%% arrival", strconv.FormatFloat(100*t.Matrix.Inflate, 'f', -1, 64))
	if t.Matrix.Inflate == 0 {
		what = "at the trace's final arrival"
	}
	spread := "mean over seeds"
	if len(t.Matrix.Seeds) >= 2 {
		spread = "mean over seeds, ± one standard deviation"
	} else if len(t.Matrix.Seeds) == 1 {
		spread = fmt.Sprintf("seed %d", t.Matrix.Seeds[0])
	}
	p.Title.Text = fmt.Sprintf("GPU capacity left unallocated %s (lower is better)\n(%s)", what, spread)
	p.Title.Padding = vg.Points(6)
	p.Y.Label.Text = "unallocated GPUs (% of GPU capacity)"
	p.X.Label.Text = "workload"
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.Padding = vg.Points(2)
	p.Add(plotter.NewGrid())
	nw := len(t.Matrix.Workloads)
	// The room a workload takes on the page, less the axis and its labels.
	group := (width - 2.5*vg.Centimeter) / vg.Length(max(nw, 1))
	bars, errs, err := summaryBars(t, group)
	if err != nil {
		return nil, err
	}
	top := 0.0
	for i, b := range bars {
		for _, v := range b.Values {
			top = max(top, v)
		}
		p.Add(b)
		p.Legend.Add(t.Matrix.Policies[i], b)
	}
	for _, e := range errs {
		for i := range e.XYs {
			top = max(top, e.XYs[i].Y+e.YErrors[i].High)
		}
		p.Add(e)
	}
	// Headroom for the legend, top right, above the bars.
	p.Y.Min = 0
	p.Y.Max = top * (1 + 0.08*float64(len(bars)))
	p.NominalX(t.Matrix.Workloads...)
	p.X.Min, p.X.Max = -0.5, float64(nw)-0.5
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	return p, nil
}

// pageMargin keeps what a plot draws off the page's edge, where a viewer
// or a crop would cut it.
const pageMargin = 0.3 * vg.Centimeter

// renderPlot draws a plot on a white page of w × h in a format that
// draw.NewFormattedCanvas knows ("svg", "png").
func renderPlot(p *plot.Plot, w, h vg.Length, format string) ([]byte, error) {
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return nil, err
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, pageMargin, -pageMargin, pageMargin, -pageMargin))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// savePlot writes a plot as SVG and PNG next to each other: path.svg and
// path.png.
func savePlot(p *plot.Plot, path string, w, h vg.Length) error {
	for _, ext := range []string{"svg", "png"} {
		b, err := renderPlot(p, w, h, ext)
		if err != nil {
			return fmt.Errorf("plot %s.%s: %w", path, ext, err)
		}
		if err := os.WriteFile(path+"."+ext, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// The pages the plots are drawn on.
const (
	curveWidth    = 16 * vg.Centimeter
	curveHeight   = 12 * vg.Centimeter
	summaryHeight = 13 * vg.Centimeter
)

// summaryWidth gives every bar of the summary plot about 2 mm, and the
// page at least 20 cm.
func summaryWidth(workloads, policies int) vg.Length {
	return max(20*vg.Centimeter, 2.5*vg.Centimeter+vg.Length(workloads*(policies+1))*0.22*vg.Centimeter)
}

// WritePlots writes one curve plot per workload (alloc-WORKLOAD.svg/.png)
// and the summary plot (summary.svg/.png) into dir.
func WritePlots(dir string, t *Table, curves []MeanCurve) error {
	for _, w := range t.Matrix.Workloads {
		p, err := CurvePlot(w, curves)
		if err != nil {
			return err
		}
		if err := savePlot(p, filepath.Join(dir, "alloc-"+w), curveWidth, curveHeight); err != nil {
			return err
		}
	}
	if len(t.Matrix.Workloads) > 1 {
		width := summaryWidth(len(t.Matrix.Workloads), len(t.Matrix.Policies))
		p, err := SummaryPlot(t, width)
		if err != nil {
			return err
		}
		return savePlot(p, filepath.Join(dir, "summary"), width, summaryHeight)
	}
	return nil
}

// WriteReport writes a sweep's outputs into dir: table.md, table.tsv,
// table.json, runs.json (every run with its curve) and the plots.
func WriteReport(dir string, m Matrix, runs []Record) (*Table, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t := Summarise(m, runs)
	for name, write := range map[string]func(*bytes.Buffer) error{
		"table.md":   func(b *bytes.Buffer) error { return t.Markdown(b) },
		"table.tsv":  func(b *bytes.Buffer) error { return t.TSV(b) },
		"table.json": func(b *bytes.Buffer) error { return t.JSON(b) },
		"runs.json": func(b *bytes.Buffer) error {
			return WritePart(b, &Part{Format: PartFormat, Matrix: m, Shard: Whole, Nodes: nodesOf(runs), GPUs: gpusOf(runs), Runs: runs})
		},
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	if err := WritePlots(dir, t, MeanCurves(m, runs)); err != nil {
		return nil, err
	}
	return t, nil
}

func nodesOf(runs []Record) int {
	if len(runs) == 0 {
		return 0
	}
	return runs[0].Nodes
}

func gpusOf(runs []Record) int {
	if len(runs) == 0 {
		return 0
	}
	return runs[0].GPUs
}
