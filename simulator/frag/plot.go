package frag

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// CurvePlot draws, like the paper's figures, the GPU allocation against
// the arrived workload for each policy on one workload (mean over seeds).
func CurvePlot(workload string, curves []MeanCurve) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("openb %s: GPU allocation against arrival (mean over seeds)", workload)
	p.X.Label.Text = "arrived GPU request (% of GPU capacity)"
	p.Y.Label.Text = "allocated GPUs (% of capacity)"
	// The policies part where the cluster fills up: show from 60% on, with
	// the legend in the empty lower right.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	i := 0
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
			return nil, fmt.Errorf("plot %s/%s: %w", workload, c.Policy, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(c.Policy, l)
		i++
	}
	p.X.Min, p.Y.Min = 60, 60
	return p, nil
}

// SummaryPlot draws each policy's mean allocation at the target arrival
// for every workload of a table: the paper's per-workload comparison.
func SummaryPlot(t *Table) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("GPU allocation at %.0f%% arrival (mean over seeds)", 100*t.Matrix.Inflate)
	p.Y.Label.Text = "allocated GPUs (% of capacity)"
	p.Legend.Top = false
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	nw := len(t.Matrix.Workloads)
	lowest := 100.0
	for _, c := range t.Cells {
		if c.Runs > 0 {
			lowest = min(lowest, c.Mean)
		}
	}
	// Leave room under the lowest line for the legend.
	p.Y.Min = max(0, lowest-3*float64(len(t.Matrix.Policies)))
	for pi, name := range t.Matrix.Policies {
		xys := make(plotter.XYs, 0, nw)
		for wi := range t.Matrix.Workloads {
			if c := t.cell(wi, pi); c.Runs > 0 {
				xys = append(xys, plotter.XY{X: float64(wi), Y: c.Mean})
			}
		}
		lp, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", name, err)
		}
		lp.Color = plotutil.Color(pi)
		lp.Dashes = plotutil.Dashes(pi)
		pts.Color = plotutil.Color(pi)
		pts.Shape = plotutil.Shape(pi)
		p.Add(lp, pts)
		p.Legend.Add(name, lp, pts)
	}
	p.NominalX(t.Matrix.Workloads...)
	p.X.Tick.Label.Rotation = 0.9
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	return p, nil
}

// savePlot writes a plot as SVG and PNG next to each other: path.svg and
// path.png.
func savePlot(p *plot.Plot, path string, w, h vg.Length) error {
	for _, ext := range []string{"svg", "png"} {
		wt, err := p.WriterTo(w, h, ext)
		if err != nil {
			return fmt.Errorf("plot %s.%s: %w", path, ext, err)
		}
		var buf bytes.Buffer
		if _, err := wt.WriteTo(&buf); err != nil {
			return fmt.Errorf("plot %s.%s: %w", path, ext, err)
		}
		if err := os.WriteFile(path+"."+ext, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WritePlots writes one curve plot per workload (alloc-WORKLOAD.svg/.png)
// and the summary plot (summary.svg/.png) into dir.
func WritePlots(dir string, t *Table, curves []MeanCurve) error {
	for _, w := range t.Matrix.Workloads {
		p, err := CurvePlot(w, curves)
		if err != nil {
			return err
		}
		if err := savePlot(p, filepath.Join(dir, "alloc-"+w), 16*vg.Centimeter, 11*vg.Centimeter); err != nil {
			return err
		}
	}
	if len(t.Matrix.Workloads) > 1 {
		p, err := SummaryPlot(t)
		if err != nil {
			return err
		}
		return savePlot(p, filepath.Join(dir, "summary"), 20*vg.Centimeter, 12*vg.Centimeter)
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
