package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"petite/simulator/frag"
	"petite/simulator/replay"
)

// The size every plot is drawn at: two fit side by side on a wide screen.
const (
	plotWidth  = 16 * vg.Centimeter
	plotHeight = 10 * vg.Centimeter
	// pageMargin keeps labels off the SVG's edge, where a browser would
	// cut them.
	pageMargin = 0.3 * vg.Centimeter
	// cdfPoints bounds the points of a CDF line, so that a replay of a
	// million jobs still draws a page of modest size.
	cdfPoints = 1000
	// timeBuckets bounds a line over time: past 2 × timeBuckets samples,
	// each bucket keeps its lowest and highest.
	timeBuckets = 1000
)

// style is how one run, or one pool, is drawn.
type style struct {
	c      color.Color
	dashes []vg.Length
}

// runStyles gives each run a colour: its policy's, as the fragmentation
// plots draw it, when the runs have distinct policies; otherwise the
// palette in run order (runs of one policy told apart by colour).
func runStyles(runs []Run) []style {
	out := make([]style, len(runs))
	seen := map[string]bool{}
	distinct := true
	for _, r := range runs {
		if r.Policy == "" || seen[r.Policy] {
			distinct = false
		}
		seen[r.Policy] = true
	}
	pal := frag.Palette()
	for i, r := range runs {
		if distinct {
			c, d, _ := frag.PolicyStyle(r.Policy)
			out[i] = style{c, d}
			continue
		}
		out[i] = style{c: pal[i%len(pal)]}
	}
	return out
}

// poolColour is the colour of the i-th pool: the palette past black, which
// draws pending demand.
func poolColour(i int) color.Color {
	pal := frag.Palette()
	return pal[1+i%(len(pal)-1)]
}

// newPlot is a plot with the house's title and axis labels.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Title.Padding = vg.Points(6)
	p.Legend.Top = true
	p.Legend.ThumbnailWidth = vg.Points(24)
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	return p
}

// plainTicks are gonum's default ticks labelled as plain numbers ("500",
// "2.5"), not padded to a common precision ("500.00").
type plainTicks struct{}

// Ticks implements plot.Ticker.
func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(math.Round(ts[i].Value*1e9)/1e9, 'f', -1, 64)
		}
	}
	return ts
}

// svgOf draws a plot on a white page and returns the SVG element alone,
// without the XML prolog, to sit inline in HTML.
func svgOf(p *plot.Plot) (string, error) {
	c := vgsvg.New(plotWidth, plotHeight)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, pageMargin, -pageMargin, pageMargin, -pageMargin))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("report: draw %q: %w", p.Title.Text, err)
	}
	b := buf.Bytes()
	i := bytes.Index(b, []byte("<svg"))
	if i < 0 {
		return "", fmt.Errorf("report: draw %q: no <svg> element", p.Title.Text)
	}
	return string(b[i:]), nil
}

// line is a polyline in a colour and dashes, of a given width.
func line(xy plotter.XYs, s style, width vg.Length) (*plotter.Line, error) {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	l.Color, l.Dashes, l.Width = s.c, s.dashes, width
	return l, nil
}

// hoursSince is the series' time axis: hours since its first sample.
func hoursSince(s *replay.Series, at int64) float64 {
	return float64(at-s.Samples[0].At) / float64(replay.Hour)
}

// thin keeps, of a long line, the lowest and the highest point of each of
// n buckets (in their order) and the last point: peaks and troughs stay
// where they were, at a width no screen shows more of.
func thin(xy plotter.XYs, n int) plotter.XYs {
	if len(xy) <= 2*n {
		return xy
	}
	size := (len(xy) + n - 1) / n
	out := make(plotter.XYs, 0, 2*n+1)
	for start := 0; start < len(xy); start += size {
		end := min(start+size, len(xy))
		lo, hi := start, start
		for i := start; i < end; i++ {
			if xy[i].Y < xy[lo].Y {
				lo = i
			}
			if xy[i].Y > xy[hi].Y {
				hi = i
			}
		}
		out = append(out, xy[min(lo, hi)])
		if lo != hi {
			out = append(out, xy[max(lo, hi)])
		}
	}
	if last := xy[len(xy)-1]; out[len(out)-1] != last {
		out = append(out, last)
	}
	return out
}

// timePlot draws, per pool, one value of every sample (allocated or
// stranded GPUs), and pending demand when withPending.
func timePlot(title, ylabel string, s *replay.Series, val func(replay.Sample) []float64, withPending, withCloud bool) (*plot.Plot, error) {
	p := newPlot(title, "hours since the first sample", ylabel)
	for i, pool := range s.Pools {
		xy := make(plotter.XYs, len(s.Samples))
		for k, sm := range s.Samples {
			xy[k] = plotter.XY{X: hoursSince(s, sm.At), Y: val(sm)[i]}
		}
		l, err := line(thin(xy, timeBuckets), style{c: poolColour(i)}, vg.Points(1.2))
		if err != nil {
			return nil, err
		}
		p.Add(l)
		p.Legend.Add(pool, l)
	}
	extra := []struct {
		on   bool
		name string
		v    func(replay.Sample) float64
		st   style
	}{
		{withCloud, "burst cloud", func(sm replay.Sample) float64 { return sm.Cloud }, style{c: color.Gray{0x77}, dashes: []vg.Length{vg.Points(2), vg.Points(2)}}},
		{withPending, "pending (queue)", func(sm replay.Sample) float64 { return sm.Pending }, style{c: color.Black, dashes: []vg.Length{vg.Points(5), vg.Points(3)}}},
	}
	for _, e := range extra {
		if !e.on {
			continue
		}
		xy := make(plotter.XYs, len(s.Samples))
		for k, sm := range s.Samples {
			xy[k] = plotter.XY{X: hoursSince(s, sm.At), Y: e.v(sm)}
		}
		l, err := line(thin(xy, timeBuckets), e.st, vg.Points(1.5))
		if err != nil {
			return nil, err
		}
		p.Add(l)
		p.Legend.Add(e.name, l)
	}
	p.Y.Min = 0
	p.Y.Max = max(p.Y.Max*1.25, 1) // room for the legend above the lines
	return p, nil
}

// cdf is the empirical distribution of v (sorted in place), at most
// cdfPoints points: (x, fraction of values ≤ x).
func cdf(v []float64) plotter.XYs {
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return nil
	}
	var xy plotter.XYs
	if n <= cdfPoints {
		for i, x := range v {
			xy = append(xy, plotter.XY{X: x, Y: float64(i+1) / float64(n)})
		}
		return xy
	}
	for q := range cdfPoints + 1 {
		k := int(math.RoundToEven(float64(q) / cdfPoints * float64(n-1)))
		xy = append(xy, plotter.XY{X: v[k], Y: float64(k+1) / float64(n)})
	}
	return xy
}

// cdfPlot draws one CDF per run of the value each record has (ok false:
// none); logX draws x on a log axis, leaving out values ≤ 0. It returns how
// many values a log axis left out.
func cdfPlot(title, xlabel string, runs []Run, styles []style, val func(*replay.JobRecord) (float64, bool), logX bool) (*plot.Plot, int, error) {
	p := newPlot(title, xlabel, "fraction of jobs")
	p.Legend.Top = false
	p.Legend.Left = false
	dropped := 0
	any := false
	for i, r := range runs {
		var v []float64
		for k := range r.Result.Jobs {
			x, ok := val(&r.Result.Jobs[k])
			if !ok {
				continue
			}
			if logX && x <= 0 {
				dropped++
				continue
			}
			v = append(v, x)
		}
		if len(v) == 0 {
			continue
		}
		any = true
		xy := cdf(v)
		// A step from 0 to the first value, so a run of equal values
		// still shows as a rise.
		xy = append(plotter.XYs{{X: xy[0].X, Y: 0}}, xy...)
		l, err := line(xy, styles[i], vg.Points(1.5))
		if err != nil {
			return nil, 0, err
		}
		p.Add(l)
		p.Legend.Add(r.Label, l)
	}
	p.Y.Min, p.Y.Max = 0, 1.05
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		if !any {
			p.X.Min, p.X.Max = 1, 10
		}
		// Whole decades, so that the log ticks have something to mark.
		p.X.Min = math.Pow(10, math.Floor(math.Log10(p.X.Min)))
		p.X.Max = math.Pow(10, math.Ceil(math.Log10(p.X.Max)))
	} else {
		p.X.Min = min(p.X.Min, 0)
		if p.X.Max <= p.X.Min {
			p.X.Max = p.X.Min + 1
		}
	}
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = vg.Points(8)
	return p, dropped, nil
}

// billOf is a run's bill by pool (Summary.BillByPool: node bills and
// reservations, idle included, where the pool bills so); a summary made
// before bills existed falls back on the jobs' charges.
func billOf(s *replay.Summary) map[string]float64 {
	if s.BillByPool != nil {
		return s.BillByPool
	}
	return s.CostByPool
}

// costPlot draws each pool's bill (billOf) as bars grouped by pool, one
// bar per run.
func costPlot(runs []Run, styles []style) (*plot.Plot, []string, error) {
	var pools []string
	for _, r := range runs {
		for name := range billOf(&r.Result.Summary) {
			if !slices.Contains(pools, name) {
				pools = append(pools, name)
			}
		}
	}
	slices.SortFunc(pools, cmp.Compare[string])
	p := newPlot("Cost by pool", "", "bill (price × GPU-hours billed)")
	if len(pools) == 0 {
		pools = []string{"-"}
	}
	w := vg.Points(min(40, 220/float64(len(runs)*len(pools))+8))
	top := 0.0
	for i, r := range runs {
		v := make(plotter.Values, len(pools))
		for k, name := range pools {
			v[k] = billOf(&r.Result.Summary)[name]
			top = max(top, v[k])
		}
		b, err := plotter.NewBarChart(v, w)
		if err != nil {
			return nil, nil, err
		}
		b.Color = styles[i].c
		b.LineStyle.Color = color.Gray{0x40}
		b.LineStyle.Width = vg.Points(0.5)
		b.Offset = vg.Length(float64(i)-float64(len(runs)-1)/2) * w
		p.Add(b)
		p.Legend.Add(r.Label, b)
	}
	p.NominalX(pools...)
	p.Y.Min, p.Y.Max = 0, max(top*1.3, 1)
	return p, pools, nil
}
