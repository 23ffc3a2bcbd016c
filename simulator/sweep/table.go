package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"petite/simulator/replay"
	"petite/simulator/report"
)

// Metrics are the table's columns, in order: what each reads of a summary.
var Metrics = []struct {
	// Name is the column's name in the TSV and JSON ("_mean"/"_std" added).
	Name string
	// Title heads the Markdown column.
	Title string
	// Of reads the figure from a run's summary.
	Of func(*replay.Summary) float64
}{
	{"wait_p50_min", "p50 wait (min)", func(s *replay.Summary) float64 { return s.WaitH.P50 * 60 }},
	{"wait_p95_min", "p95 wait (min)", func(s *replay.Summary) float64 { return s.WaitH.P95 * 60 }},
	{"wait_p99_min", "p99 wait (min)", func(s *replay.Summary) float64 { return s.WaitH.P99 * 60 }},
	{"jct_mean_h", "mean JCT (h)", func(s *replay.Summary) float64 { return s.JCTH.Mean }},
	{"cost", "cost", func(s *replay.Summary) float64 { return s.Cost }},
	{"utilization", "utilisation", func(s *replay.Summary) float64 { return s.ClusterUtilization }},
}

// Cell is a figure over the seeds of a row: its mean and, with two seeds
// or more, its sample standard deviation.
type Cell struct {
	Mean float64  `json:"mean"`
	Std  *float64 `json:"std,omitempty"`
}

// Row is one variant under one policy, over the seeds.
type Row struct {
	Variant string `json:"variant"`
	Policy  string `json:"policy"`
	Seeds   int    `json:"seeds"`
	// Cells are the figures of Metrics, in order.
	Cells []Cell `json:"cells"`
}

// Table is a sweep's table: one row per variant and policy, in matrix
// order.
type Table struct {
	Rows []Row `json:"rows"`
}

// Tabulate builds the table of a sweep's records, given in canonical order.
func Tabulate(m Matrix, recs []Record) (*Table, error) {
	if len(recs) != len(m.Variants)*len(m.Policies)*len(m.Seeds) {
		return nil, fmt.Errorf("table: %d records for a matrix of %d runs", len(recs), len(m.Variants)*len(m.Policies)*len(m.Seeds))
	}
	t := &Table{}
	k := 0
	for _, v := range m.Variants {
		for _, p := range m.Policies {
			row := Row{Variant: v, Policy: p, Seeds: len(m.Seeds)}
			group := recs[k : k+len(m.Seeds)]
			k += len(m.Seeds)
			for _, r := range group {
				if r.Variant != v || r.Policy != p {
					return nil, fmt.Errorf("table: run %s/%s/seed %d out of place (want %s/%s)", r.Variant, r.Policy, r.Seed, v, p)
				}
			}
			for _, mt := range Metrics {
				xs := make([]float64, len(group))
				for i := range group {
					xs[i] = mt.Of(&group[i].Summary)
				}
				row.Cells = append(row.Cells, cell(xs))
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t, nil
}

// cell is the mean of xs and, for two values or more, their sample
// standard deviation (n − 1), summed in order so that the bytes do not
// depend on which worker ran what.
func cell(xs []float64) Cell {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	c := Cell{Mean: sum / float64(len(xs))}
	if len(xs) >= 2 {
		var ss float64
		for _, x := range xs {
			ss += (x - c.Mean) * (x - c.Mean)
		}
		sd := math.Sqrt(ss / float64(len(xs)-1))
		c.Std = &sd
	}
	return c
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

// Markdown writes the table for people: mean ± std per figure.
func (t *Table) Markdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| variant | policy | seeds |")
	for _, mt := range Metrics {
		b.WriteString(" " + mt.Title + " |")
	}
	b.WriteString("\n| --- | --- | ---: |")
	for range Metrics {
		b.WriteString(" ---: |")
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %s | %d |", r.Variant, r.Policy, r.Seeds)
		for _, c := range r.Cells {
			if c.Std != nil {
				fmt.Fprintf(&b, " %s ± %s |", num(c.Mean), num(*c.Std))
			} else {
				fmt.Fprintf(&b, " %s |", num(c.Mean))
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TSV writes the table for scripts: a mean and a std column per figure, the
// std empty with one seed.
func (t *Table) TSV(w io.Writer) error {
	var b strings.Builder
	b.WriteString("variant\tpolicy\tseeds")
	for _, mt := range Metrics {
		b.WriteString("\t" + mt.Name + "_mean\t" + mt.Name + "_std")
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "%s\t%s\t%d", r.Variant, r.Policy, r.Seeds)
		for _, c := range r.Cells {
			std := ""
			if c.Std != nil {
				std = strconv.FormatFloat(*c.Std, 'g', -1, 64)
			}
			b.WriteString("\t" + strconv.FormatFloat(c.Mean, 'g', -1, 64) + "\t" + std)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON writes the table as one JSON object, with the column names.
func (t *Table) JSON(w io.Writer) error {
	names := make([]string, len(Metrics))
	for i, mt := range Metrics {
		names[i] = mt.Name
	}
	b, err := json.Marshal(struct {
		Columns []string `json:"columns"`
		Rows    []Row    `json:"rows"`
	}{names, t.Rows})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Report is the sweep's HTML page: for every variant and policy, the run
// of the first seed.
func Report(m Matrix, fulls []Full) report.Report {
	r := report.Report{Title: "petite sim sweep", Notes: append([]string(nil), m.Notes...)}
	r.Notes = append(r.Notes, fmt.Sprintf("%d variants × %d policies × %d seeds; the plots show seed %d",
		len(m.Variants), len(m.Policies), len(m.Seeds), m.Seeds[0]))
	for _, f := range fulls {
		label := f.Policy
		if len(m.Variants) > 1 {
			label = f.Variant + " · " + f.Policy
		}
		r.Runs = append(r.Runs, report.Run{Label: label, Policy: f.Policy, Result: f.Result})
	}
	return r
}

// WriteOutputs writes a sweep's outputs into dir: runs.json, table.md,
// table.tsv and report.html. It returns the table.
func WriteOutputs(dir string, m Matrix, recs []Record, fulls []Full) (*Table, error) {
	t, err := Tabulate(m, recs)
	if err != nil {
		return nil, err
	}
	var runs bytes.Buffer
	if err := writeRuns(&runs, m, recs); err != nil {
		return nil, err
	}
	var md, tsv, page bytes.Buffer
	if err := t.Markdown(&md); err != nil {
		return nil, err
	}
	if err := t.TSV(&tsv); err != nil {
		return nil, err
	}
	if err := report.Write(&page, Report(m, fulls)); err != nil {
		return nil, fmt.Errorf("report.html: %w", err)
	}
	for name, b := range map[string][]byte{"runs.json": runs.Bytes(), "table.md": md.Bytes(), "table.tsv": tsv.Bytes(), "report.html": page.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return t, nil
}

// writeRuns writes the matrix and one summary per run, a run a line.
func writeRuns(w io.Writer, m Matrix, recs []Record) error {
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString(`{"matrix":`)
	b.Write(mb)
	b.WriteString(`,"runs":[`)
	for i := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		rb, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("runs.json: %w", err)
		}
		b.WriteString("\n")
		b.Write(rb)
	}
	b.WriteString("\n]}\n")
	_, err = w.Write(b.Bytes())
	return err
}
