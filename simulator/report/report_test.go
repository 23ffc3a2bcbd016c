package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/simulator/replay"
	"petite/simulator/scenario"
)

// testConfig is a small busy fleet: two pools of two 8-GPU nodes (the
// second priced), 80 jobs of 1 to 8 GPUs (some half a GPU) arriving every
// 45 s, long enough to queue.
func testConfig() replay.Config {
	pools := []scheduler.Pool{{Name: "hall", Kind: scheduler.PoolOnPrem, PricePerGPUHour: 0.5},
		{Name: "cloud", Kind: scheduler.PoolCloud, PricePerGPUHour: 2}}
	var nodes []scheduler.Node
	for i := range 4 {
		n := scheduler.Node{Name: fmt.Sprintf("n%d", i), Pool: pools[i/2].Name, CPUMilli: 64000, MemoryMiB: 512 << 10}
		for range 8 {
			n.GPUs = append(n.GPUs, scheduler.GPU{Model: "H100", MemoryMiB: 81920})
		}
		nodes = append(nodes, n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var jobs []replay.Job
	for i := range 80 {
		t := scheduler.Task{GPUs: []int{1, 1, 2, 4, 8}[rng.IntN(5)], GPUMilli: 1000, CPUMilli: 4000, MemoryMiB: 4096}
		if rng.IntN(4) == 0 {
			t.GPUs, t.GPUMilli = 1, 500
		}
		jobs = append(jobs, replay.Job{Job: scheduler.Job{ID: fmt.Sprintf("j%d", i), Kind: scheduler.Training, Count: 1, Task: t},
			Submit: int64(i) * 45 * replay.Second, Duration: int64(60+rng.IntN(3600)) * replay.Second})
	}
	return replay.Config{Pools: pools, Nodes: nodes, Jobs: jobs, SeriesStep: 60 * replay.Second, Queue: replay.QueueBackfill}
}

// testReport compares best-fit and fgd on the test fleet, with one
// made-up scenario impact.
func testReport(t *testing.T) Report {
	t.Helper()
	var runs []Run
	for _, pol := range []string{"best-fit", "fgd"} {
		cfg := testConfig()
		cfg.Policy = pol
		res, err := replay.Run(context.Background(), cfg)
		require.NoError(t, err)
		runs = append(runs, Run{Label: pol, Policy: pol, Result: res})
	}
	im := scenario.Impact{Action: scenario.Compiled1{Index: 0, Do: "retire", Line: 12},
		Disrupted: map[string]int{"training": 3}, Cost: scenario.Change{Before: 10, After: 25},
		WaitMeanH: scenario.Change{Before: 0.1, After: 0.4},
		Stranded:  []scenario.Stranded{{ID: "j7", Tenant: "t1", Reason: "no node can take it (2 nodes: node not ready)"}}}
	return Report{Title: "Test <report>", Notes: []string{"two policies"}, Runs: runs, Impacts: []scenario.Impact{im}}
}

// element is what the structure test reads of the page.
type element struct {
	name  string
	attrs map[string]string
}

// parse reads the page as HTML, tolerantly (void elements, entities), and
// lists its elements; a malformed page is an error.
func parse(b []byte) ([]element, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var out []element
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			e := element{name: strings.ToLower(se.Name.Local), attrs: map[string]string{}}
			for _, a := range se.Attr {
				e.attrs[strings.ToLower(a.Name.Local)] = a.Value
			}
			out = append(out, e)
		}
	}
}

// The page parses, has a figure with one <svg> per plot the report names,
// the summary and impact tables, and no reference to anything outside it.
func TestReportStructure(t *testing.T) {
	r := testReport(t)
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, r))
	els, err := parse(buf.Bytes())
	require.NoError(t, err)

	want := r.Plots()
	assert.Equal(t, []string{"alloc:best-fit", "stranded:best-fit", "alloc:fgd", "stranded:fgd", "wait-cdf", "jct-cdf", "cost"}, want)
	var figs []string
	svgs, tables, scripts := 0, 0, 0
	for i, e := range els {
		switch e.name {
		case "figure":
			figs = append(figs, e.attrs["data-plot"])
			// the figure's first child is its plot
			require.Less(t, i+1, len(els))
			assert.Equal(t, "svg", els[i+1].name, "figure %s", e.attrs["data-plot"])
		case "svg":
			svgs++
		case "table":
			tables++
		case "script", "iframe", "img", "link", "object", "embed":
			scripts++
		}
		for _, k := range []string{"src", "href"} {
			v := strings.ToLower(e.attrs[k])
			assert.False(t, strings.Contains(v, "http://") || strings.Contains(v, "https://") || strings.HasPrefix(v, "//"),
				"<%s %s=%q> points outside the page", e.name, k, v)
		}
	}
	assert.Equal(t, want, figs)
	assert.Equal(t, len(want), svgs)
	assert.Equal(t, 2, tables, "the summary and one action's before and after")
	assert.Zero(t, scripts, "no script, frame, image or stylesheet from elsewhere")
	page := buf.String()
	// (not assert.Contains: a failure would print the whole page)
	has := func(s string) bool { return strings.Contains(page, s) }
	assert.False(t, has("url("), "no resource loaded from CSS")
	assert.True(t, has("<title>Test &lt;report&gt;</title>"), "the title is escaped")
	assert.True(t, has("j7 (tenant t1): no node can take it"), "the stranded job is listed")
	assert.True(t, has("<td>10.00</td><td>25.00</td><td>&#43;15.00</td>"), "the impact's cost before, after and change")
	assert.False(t, has("<?xml"), "inline SVG carries no XML prolog")
}

// The same inputs give the same bytes, from the replays up.
func TestReportDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	require.NoError(t, Write(&a, testReport(t)))
	require.NoError(t, Write(&b, testReport(t)))
	assert.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "two renderings differ")
}

func TestReportRejectsBadRuns(t *testing.T) {
	r := testReport(t)
	for name, runs := range map[string][]Run{
		"none":       nil,
		"no result":  {{Label: "a"}},
		"no label":   {{Result: r.Runs[0].Result}},
		"same label": {{Label: "a", Result: r.Runs[0].Result}, {Label: "a", Result: r.Runs[1].Result}},
	} {
		err := Write(io.Discard, Report{Runs: runs})
		assert.Error(t, err, name)
	}
}

// A run without a series has no plots over time, and the others still
// draw.
func TestReportWithoutSeries(t *testing.T) {
	cfg := testConfig()
	cfg.SeriesStep = 0
	res, err := replay.Run(context.Background(), cfg)
	require.NoError(t, err)
	r := Report{Runs: []Run{{Label: "plain", Result: res}}}
	assert.Equal(t, []string{"wait-cdf", "jct-cdf", "cost"}, r.Plots())
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, r))
	assert.Equal(t, 3, strings.Count(buf.String(), "<svg"))
}
