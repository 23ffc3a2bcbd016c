package report

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"

	"petite/simulator/replay"
	"petite/simulator/scenario"
)

// Run is one replay the report shows.
type Run struct {
	// Label names the run in the tables and legends ("best-fit", "with
	// the retirement").
	Label string
	// Policy is its placement policy. Runs of distinct policies draw in
	// their policy's colour, as every plot of petite does.
	Policy string
	// Result is the replay's outcome; its Series, when present, gives the
	// plots over time.
	Result *replay.Result
}

// Report is what one page shows.
type Report struct {
	// Title heads the page.
	Title string
	// Notes are lines under the title: the inputs, the settings.
	Notes []string
	// Runs are compared in every table and plot, in this order.
	Runs []Run
	// Impacts, when not nil, are a scenario's actions, each measured
	// against the same run without it (scenario.(*Scenario).Impacts).
	Impacts []scenario.Impact
}

// Plot names the plots of a report, in page order, for tests and
// readers: "alloc:LABEL" and "stranded:LABEL" per run with a series, then
// "wait-cdf", "jct-cdf", "cost".
func (r *Report) Plots() []string {
	var out []string
	for _, run := range r.Runs {
		if run.Result.Series != nil && len(run.Result.Series.Samples) > 0 {
			out = append(out, "alloc:"+run.Label, "stranded:"+run.Label)
		}
	}
	return append(out, "wait-cdf", "jct-cdf", "cost")
}

// figure is one plot on the page.
type figure struct {
	ID      string
	SVG     template.HTML
	Caption string
}

// row is a line of a table.
type row struct {
	Cells []string
}

// impactTable is one action's before and after.
type impactTable struct {
	Head string
	Rows []row
	More []string // jobs stranded by the action, with their reason
}

type page struct {
	Title   string
	Notes   []string
	Head    []string
	Rows    []row
	Figures []figure
	Impacts []impactTable
}

// Write renders the report as one HTML page.
func Write(w io.Writer, r Report) error {
	if len(r.Runs) == 0 {
		return errors.New("report: no run to show")
	}
	labels := map[string]bool{}
	for i, run := range r.Runs {
		if run.Result == nil {
			return fmt.Errorf("report: run %d (%q): no result", i, run.Label)
		}
		if run.Label == "" || labels[run.Label] {
			return fmt.Errorf("report: run %d: label %q is empty or used twice; each run needs its own", i, run.Label)
		}
		labels[run.Label] = true
	}
	pg := page{Title: r.Title, Notes: r.Notes}
	if pg.Title == "" {
		pg.Title = "Replay report"
	}
	pg.Head, pg.Rows = summaryTable(r.Runs)
	figs, err := figures(r.Runs)
	if err != nil {
		return err
	}
	pg.Figures = figs
	for _, im := range r.Impacts {
		pg.Impacts = append(pg.Impacts, impactOf(im))
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, pg); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func figures(runs []Run) ([]figure, error) {
	styles := runStyles(runs)
	var figs []figure
	for _, run := range runs {
		s := run.Result.Series
		if s == nil || len(s.Samples) == 0 {
			continue
		}
		cloud := slices.ContainsFunc(s.Samples, func(sm replay.Sample) bool { return sm.Cloud > 0 })
		p, err := timePlot("GPUs allocated and pending — "+run.Label, "GPUs", s,
			func(sm replay.Sample) []float64 { return sm.Allocated }, true, cloud)
		if err != nil {
			return nil, err
		}
		svg, err := svgOf(p)
		if err != nil {
			return nil, err
		}
		figs = append(figs, figure{ID: "alloc:" + run.Label, SVG: template.HTML(svg),
			Caption: fmt.Sprintf("GPUs held on each pool's nodes, the burst cloud's when it was used, and the GPUs the queue asked for (pending: the queue's, not a pool's), every %s.", stepText(s.Step))})
		p, err = timePlot("Stranded GPUs — "+run.Label, "GPUs", s,
			func(sm replay.Sample) []float64 { return sm.Stranded }, false, false)
		if err != nil {
			return nil, err
		}
		if svg, err = svgOf(p); err != nil {
			return nil, err
		}
		figs = append(figs, figure{ID: "stranded:" + run.Label, SVG: template.HTML(svg),
			Caption: "Idle GPUs of each pool's ready nodes that the workload's typical tasks could not use (FRAG-METHOD §5 against the workload's own task mix): a node too small for a typical task counts its idle GPUs in that task's share even when empty."})
	}
	wait := func(j *replay.JobRecord) (float64, bool) {
		d, ok := j.Wait()
		return float64(d) / float64(replay.Hour), ok
	}
	p, _, err := cdfPlot("Queueing delay", "wait (hours)", runs, styles, wait, false)
	if err != nil {
		return nil, err
	}
	svg, err := svgOf(p)
	if err != nil {
		return nil, err
	}
	figs = append(figs, figure{ID: "wait-cdf", SVG: template.HTML(svg),
		Caption: "Distribution of first start − submit over the jobs that started (all jobs, warm-up included)."})
	jct := func(j *replay.JobRecord) (float64, bool) {
		d, ok := j.JCT()
		return float64(d) / float64(replay.Hour), ok
	}
	p, dropped, err := cdfPlot("Job completion time", "JCT (hours, log scale)", runs, styles, jct, true)
	if err != nil {
		return nil, err
	}
	if svg, err = svgOf(p); err != nil {
		return nil, err
	}
	caption := "Distribution of end − submit over the jobs that ended."
	if dropped > 0 {
		caption += fmt.Sprintf(" %d jobs of zero JCT are left off the log axis.", dropped)
	}
	figs = append(figs, figure{ID: "jct-cdf", SVG: template.HTML(svg), Caption: caption})
	p, _, err = costPlot(runs, styles)
	if err != nil {
		return nil, err
	}
	if svg, err = svgOf(p); err != nil {
		return nil, err
	}
	figs = append(figs, figure{ID: "cost", SVG: template.HTML(svg),
		Caption: "Each pool's bill over the whole run: for a cloud pool under scaling, its nodes while up (idle included); for a reserved pool, every node it has, used or not; elsewhere the GPU-hours its jobs held. Price × GPU-hours."})
	return figs, nil
}

// stepText writes a series step for a caption: "1m0s" as "minute".
func stepText(step int64) string {
	switch step {
	case replay.Second:
		return "second"
	case 60 * replay.Second:
		return "minute"
	case replay.Hour:
		return "hour"
	}
	return fmt.Sprintf("%gs", float64(step)/float64(replay.Second))
}

// summaryTable is a column per run of the summary's main figures.
func summaryTable(runs []Run) ([]string, []row) {
	head := []string{""}
	for _, r := range runs {
		head = append(head, r.Label)
	}
	f := func(name string, v func(s *replay.Summary) string) row {
		cells := []string{name}
		for _, r := range runs {
			cells = append(cells, v(&r.Result.Summary))
		}
		return row{cells}
	}
	f4 := func(x float64) string { return fmt.Sprintf("%.4f", x) }
	f2 := func(x float64) string { return fmt.Sprintf("%.2f", x) }
	rows := []row{
		f("policy", func(*replay.Summary) string { return "" }),
		f("measured jobs", func(s *replay.Summary) string { return fmt.Sprint(s.Jobs) }),
		f("jobs ended / running / queued / in cloud", func(s *replay.Summary) string {
			return fmt.Sprintf("%d / %d / %d / %d", s.Ended, s.Running, s.Queued, s.InCloud)
		}),
		f("wait (h): mean", func(s *replay.Summary) string { return f4(s.WaitH.Mean) }),
		f("wait (h): p50 / p95 / p99", func(s *replay.Summary) string {
			return fmt.Sprintf("%s / %s / %s", f4(s.WaitH.P50), f4(s.WaitH.P95), f4(s.WaitH.P99))
		}),
		f("JCT (h): mean", func(s *replay.Summary) string { return f4(s.JCTH.Mean) }),
		f("JCT (h): p50 / p90 / p99", func(s *replay.Summary) string {
			return fmt.Sprintf("%s / %s / %s", f4(s.JCTH.P50), f4(s.JCTH.P90), f4(s.JCTH.P99))
		}),
		f("cluster utilization", func(s *replay.Summary) string { return f4(s.ClusterUtilization) }),
		f("cost (cloud)", func(s *replay.Summary) string { return fmt.Sprintf("%s (%s)", f2(s.Cost), f2(s.CloudCost)) }),
		f("GPU-hours (lost)", func(s *replay.Summary) string { return fmt.Sprintf("%s (%s)", f2(s.GPUHours), f2(s.LostGPUHours)) }),
		f("preemptions, restarts", func(s *replay.Summary) string { return fmt.Sprintf("%d, %d", s.Preemptions, s.Restarts) }),
		f("makespan (h)", func(s *replay.Summary) string { return f4(s.MakespanH) }),
	}
	for i, r := range runs {
		rows[0].Cells[i+1] = r.Policy
	}
	return head, rows
}

// impactOf is one action's table, as scenario.WriteImpacts prints it.
func impactOf(im scenario.Impact) impactTable {
	a := im.Action
	t := impactTable{Head: fmt.Sprintf("%s (actions[%d], line %d)", a.Do, a.Index, a.Line)}
	kinds := make([]string, 0, len(im.Disrupted))
	for k := range im.Disrupted {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	total := 0
	var dis []string
	for _, k := range kinds {
		dis = append(dis, fmt.Sprintf("%s %d", k, im.Disrupted[k]))
		total += im.Disrupted[k]
	}
	t.Rows = append(t.Rows, row{[]string{"jobs disrupted", "", fmt.Sprint(total), strings.Join(dis, ", ")}})
	for _, c := range []struct {
		name string
		c    scenario.Change
		f    string
	}{
		{"GPU-hours lost to restarts", im.LostGPUHours, "%.2f"},
		{"mean wait (h)", im.WaitMeanH, "%.4f"},
		{"p95 wait (h)", im.WaitP95H, "%.4f"},
		{"cost", im.Cost, "%.2f"},
		{"peak cloud GPUs", im.PeakCloudGPUs, "%.1f"},
		{"jobs never started", im.NotStarted, "%.0f"},
	} {
		t.Rows = append(t.Rows, row{[]string{c.name, fmt.Sprintf(c.f, c.c.Before), fmt.Sprintf(c.f, c.c.After),
			fmt.Sprintf("%+"+c.f[1:], c.c.Delta())}})
	}
	t.Rows = append(t.Rows, row{[]string{"jobs that can no longer run anywhere", "", fmt.Sprint(len(im.Stranded)), ""}})
	for i, s := range im.Stranded {
		if i == 10 {
			t.More = append(t.More, fmt.Sprintf("… and %d more", len(im.Stranded)-10))
			break
		}
		t.More = append(t.More, fmt.Sprintf("%s (tenant %s): %s", s.ID, s.Tenant, s.Reason))
	}
	return t
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { margin: 0; padding: 24px 32px; background: #eef0f3; color: #1a1a1a; font: 15px/1.4 "Liberation Sans", Arial, Helvetica, sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
p.note { margin: 2px 0; color: #444; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 4px 12px; border-bottom: 1px solid #c8ccd2; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #555; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr)); gap: 18px; }
figure { margin: 0; }
figure svg { display: block; width: 100%; max-width: 620px; height: auto; }
figcaption { font-size: 13px; color: #444; margin-top: 4px; max-width: 620px; }
ul.stranded { font-size: 13px; color: #444; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{range .Notes}}<p class="note">{{.}}</p>
{{end}}
<h2>Summary</h2>
<table class="summary">
<thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{if .Impacts}}<h2>Before and after each action</h2>
<p class="note">Each action of the scenario against the same run without it.</p>
{{range .Impacts}}<table class="impact">
<thead><tr><th>{{.Head}}</th><th>before</th><th>after</th><th>change</th></tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{if .More}}<ul class="stranded">{{range .More}}<li>{{.}}</li>{{end}}</ul>
{{end}}{{end}}{{end}}
<h2>Plots</h2>
<div class="plots">
{{range .Figures}}<figure data-plot="{{.ID}}">
{{.SVG}}
<figcaption>{{.Caption}}</figcaption>
</figure>
{{end}}</div>
</body>
</html>
`))
