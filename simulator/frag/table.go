package frag

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Cell summarises the runs of one workload under one policy over its seeds.
type Cell struct {
	// Workload and Policy name the cell ("overall" for a policy's mean
	// over workloads).
	Workload string `json:"workload"`
	Policy   string `json:"policy"`
	// Runs is the number of runs summarised.
	Runs int `json:"runs"`
	// Mean and Std are the mean and sample standard deviation of the
	// allocation at the target arrival, in percent of the GPU capacity.
	// Std is 0 where it is not defined (fewer than two runs, and the
	// overall cells); Runs tells those apart.
	Mean float64 `json:"mean_alloc_pct"`
	Std  float64 `json:"std_alloc_pct"`
	// Failed is the mean number of pods that found no node.
	Failed float64 `json:"mean_failed_pods"`
}

// Table is the summary of a sweep: one cell per workload × policy, in the
// matrix's order, workloads outer.
type Table struct {
	// Matrix is the sweep summarised.
	Matrix Matrix `json:"matrix"`
	// Cells has one entry per workload × policy.
	Cells []Cell `json:"cells"`
	// Overall is the mean of each policy's cell means over the workloads.
	Overall []Cell `json:"overall"`
}

// Summarise builds the table of a sweep from its records (any order).
func Summarise(m Matrix, runs []Record) *Table {
	t := &Table{Matrix: m}
	vals := map[[2]string][]Record{}
	for _, r := range runs {
		k := [2]string{r.Workload, r.Policy}
		vals[k] = append(vals[k], r)
	}
	for _, w := range m.Workloads {
		for _, p := range m.Policies {
			rs := vals[[2]string{w, p}]
			c := Cell{Workload: w, Policy: p, Runs: len(rs)}
			if len(rs) > 0 {
				xs := make([]float64, len(rs))
				var failed float64
				for i, r := range rs {
					xs[i] = r.FinalAllocPct
					failed += float64(r.FailedPods)
				}
				c.Mean, c.Std = meanStd(xs)
				c.Failed = round4(failed / float64(len(rs)))
			}
			t.Cells = append(t.Cells, c)
		}
	}
	for pi, p := range m.Policies {
		var xs []float64
		var failed float64
		runs := 0
		for wi := range m.Workloads {
			c := t.Cells[wi*len(m.Policies)+pi]
			if c.Runs > 0 {
				xs = append(xs, c.Mean)
				failed += c.Failed
				runs += c.Runs
			}
		}
		o := Cell{Workload: "overall", Policy: p, Runs: runs}
		if len(xs) > 0 {
			o.Mean, _ = meanStd(xs)
			o.Failed = round4(failed / float64(len(xs)))
		}
		t.Overall = append(t.Overall, o)
	}
	return t
}

// meanStd is the mean and the sample (n−1) standard deviation, rounded to
// 4 decimals; the deviation of one value is 0. The sum runs in input order,
// so the same values give the same bytes.
func meanStd(xs []float64) (float64, float64) {
	var s float64
	for _, x := range xs {
		s += x
	}
	mean := s / float64(len(xs))
	if len(xs) < 2 {
		return round4(mean), 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return round4(mean), round4(math.Sqrt(ss / float64(len(xs)-1)))
}

// cell returns the cell of a workload and policy by position.
func (t *Table) cell(w, p int) *Cell { return &t.Cells[w*len(t.Matrix.Policies)+p] }

// Markdown writes the table for people: a caption that says what is
// measured, in which unit, over which seeds; a row per workload, a column
// per policy, "mean ± std" in each cell (the mean alone for a cell of one
// run, whose deviation is not defined), the best mean of a row in bold, and
// a last row with each policy's mean over the workloads.
func (t *Table) Markdown(w io.Writer) error {
	var b strings.Builder
	ps := t.Matrix.Policies
	b.WriteString(t.caption())
	b.WriteString("\n\n| workload |")
	for _, p := range ps {
		fmt.Fprintf(&b, " %s |", p)
	}
	b.WriteString("\n| --- |")
	for range ps {
		b.WriteString(" ---: |")
	}
	b.WriteString("\n")
	row := func(name string, cells []*Cell, std bool) {
		best := math.Inf(-1)
		for _, c := range cells {
			if c.Runs > 0 {
				best = max(best, c.Mean)
			}
		}
		fmt.Fprintf(&b, "| %s |", name)
		for _, c := range cells {
			var s string
			switch {
			case c.Runs == 0:
				s = "–"
			case std && c.Runs >= 2:
				s = fmt.Sprintf("%.2f ± %.2f", c.Mean, c.Std)
			default:
				s = fmt.Sprintf("%.2f", c.Mean)
			}
			if c.Runs > 0 && fmt.Sprintf("%.2f", c.Mean) == fmt.Sprintf("%.2f", best) {
				s = "**" + s + "**"
			}
			fmt.Fprintf(&b, " %s |", s)
		}
		b.WriteString("\n")
	}
	for wi, name := range t.Matrix.Workloads {
		cells := make([]*Cell, len(ps))
		for pi := range ps {
			cells[pi] = t.cell(wi, pi)
		}
		row(name, cells, true)
	}
	if len(t.Matrix.Workloads) > 1 {
		cells := make([]*Cell, len(ps))
		for pi := range ps {
			cells[pi] = &t.Overall[pi]
		}
		row("*mean of workloads*", cells, false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// caption says what the table measures, in which unit, over which seeds.
func (t *Table) caption() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Table: GPU allocation at %s%% arrival, in %% of the GPU capacity", strconv.FormatFloat(100*t.Matrix.Inflate, 'f', -1, 64))
	if t.Matrix.Inflate == 0 {
		b.Reset()
		b.WriteString("Table: GPU allocation at the trace's final arrival rounded down to a whole percent, in % of the GPU capacity")
	}
	ss := t.Matrix.Seeds
	switch {
	case len(ss) == 1:
		fmt.Fprintf(&b, ", seed %d", ss[0])
	case len(ss) > 1:
		fmt.Fprintf(&b, ": mean ± sample standard deviation over %s", seedsText(ss))
	}
	b.WriteString("; the best mean of a row in bold")
	if len(t.Matrix.Workloads) > 1 {
		fmt.Fprintf(&b, "; last row, each policy's mean over the %d workloads", len(t.Matrix.Workloads))
	}
	b.WriteString(".")
	return b.String()
}

// seedsText names a list of seeds briefly: "10 seeds (42–51)" for a run of
// consecutive seeds, the list itself when short.
func seedsText(ss []uint64) string {
	consecutive := true
	for i := 1; i < len(ss); i++ {
		consecutive = consecutive && ss[i] == ss[i-1]+1
	}
	switch {
	case consecutive:
		return fmt.Sprintf("%d seeds (%d–%d)", len(ss), ss[0], ss[len(ss)-1])
	case len(ss) <= 6:
		parts := make([]string, len(ss))
		for i, s := range ss {
			parts[i] = strconv.FormatUint(s, 10)
		}
		return fmt.Sprintf("%d seeds (%s)", len(ss), strings.Join(parts, ", "))
	}
	return fmt.Sprintf("%d seeds", len(ss))
}

// TSV writes the table for scripts: one line per workload × policy, then
// one per policy with workload "overall". The deviation is left empty
// where it is not defined: a cell of fewer than two runs, and the overall
// lines (a mean of means).
func (t *Table) TSV(w io.Writer) error {
	var b strings.Builder
	b.WriteString("workload\tpolicy\truns\tmean_alloc_pct\tstd_alloc_pct\tmean_failed_pods\n")
	for i, cells := range [][]Cell{t.Cells, t.Overall} {
		for _, c := range cells {
			std := ""
			if i == 0 && c.Runs >= 2 {
				std = fmt.Sprintf("%.4f", c.Std)
			}
			fmt.Fprintf(&b, "%s\t%s\t%d\t%.4f\t%s\t%.4f\n", c.Workload, c.Policy, c.Runs, c.Mean, std, c.Failed)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON writes the table as one indented JSON object.
func (t *Table) JSON(w io.Writer) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// MeanCurve is the allocation curve of one workload under one policy,
// averaged over its seeds at each whole percent of arrival that every seed
// reached.
type MeanCurve struct {
	// Workload and Policy name the curve.
	Workload, Policy string
	// Points are the mean allocation at each whole percent of arrival.
	Points []Point
}

// MeanCurves averages the curves of a sweep, in the matrix's order.
func MeanCurves(m Matrix, runs []Record) []MeanCurve {
	by := map[[2]string][]*Record{}
	for i := range runs {
		r := &runs[i]
		k := [2]string{r.Workload, r.Policy}
		by[k] = append(by[k], r)
	}
	var out []MeanCurve
	for _, w := range m.Workloads {
		for _, p := range m.Policies {
			rs := by[[2]string{w, p}]
			if len(rs) == 0 {
				continue
			}
			n := len(rs[0].Curve)
			for _, r := range rs {
				n = min(n, len(r.Curve))
			}
			pts := make([]Point, n)
			for i := range n {
				var s float64
				for _, r := range rs {
					s += r.Curve[i].AllocPct
				}
				pts[i] = Point{ArrivedPct: rs[0].Curve[i].ArrivedPct, AllocPct: round4(s / float64(len(rs)))}
			}
			out = append(out, MeanCurve{Workload: w, Policy: p, Points: pts})
		}
	}
	return out
}
