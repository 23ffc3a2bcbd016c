package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	burstFleetFile = "../../simulator/replay/testdata/burst-fleet.yaml"
	section7File   = "../../simulator/replay/testdata/section7.csv"
)

// The burst method's command form prints the keys of its §6, and the same
// inputs give the same bytes.
func TestSimRunBurstJSON(t *testing.T) {
	args := []string{"sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--policy", "best-fit", "--queue", "fifo",
		"--cloud-wait", "constant:15s", "--warmup-jobs", "5", "--json"}
	code, out, errOut := petite(t, nil, args...)
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut, "no progress bar when stderr is not a terminal")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	for _, k := range []string{"jobs", "cloud_jobs", "cloud_cost", "avg_cloud_cost", "avg_wait_h", "avg_jct_h", "p90_jct_h", "p99_jct_h", "cluster_utilization", "system_utilization"} {
		assert.Contains(t, m, k)
	}
	// 86 jobs, W = 5: N − 2W + 1 = 77 measured.
	assert.Equal(t, 77.0, m["jobs"])
	assert.Positive(t, m["cloud_jobs"])
	_, again, _ := petite(t, nil, args...)
	assert.Equal(t, out, again)

	// none sends more to the cloud than a 15 s budget, and never waits.
	_, outNone, _ := petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "none", "--warmup-jobs", "5", "--json")
	var n map[string]any
	require.NoError(t, json.Unmarshal([]byte(outNone), &n))
	assert.Equal(t, 0.0, n["avg_wait_h"])
	assert.GreaterOrEqual(t, n["cloud_jobs"].(float64), m["cloud_jobs"].(float64))
}

func TestSimRunEventLogAndText(t *testing.T) {
	dir := t.TempDir()
	evPath := filepath.Join(dir, "events.jsonl")
	code, out, errOut := petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "constant:15s", "--events", evPath)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "cloud jobs")
	f, err := os.Open(evPath)
	require.NoError(t, err)
	defer f.Close()
	arrivals, ends := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Kind string `json:"kind"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		switch e.Kind {
		case "arrive":
			arrivals++
		case "finish", "cloud-end":
			ends++
		}
	}
	assert.Equal(t, 86, arrivals)
	assert.Equal(t, 86, ends)
}

func TestSimRunErrors(t *testing.T) {
	dir := t.TempDir()
	noDur := filepath.Join(dir, "nodur.csv")
	require.NoError(t, os.WriteFile(noDur, []byte("job_id,submit,duration,gpus\na,0,10,1\nb,5,,2\n"), 0o644))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--fleet", burstFleetFile}, 2, "--trace"},
		{[]string{"--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "later"}, 2, "--cloud-wait"},
		{[]string{"--fleet", burstFleetFile, "--trace", section7File, "--queue", "lifo"}, 2, "--queue"},
		{[]string{"--fleet", burstFleetFile, "--trace", section7File, "--policy", "bestfit"}, 2, "--policy"},
		{[]string{"--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "none", "--queue", "backfill"}, 2, "fifo or fifo-skip"},
		{[]string{"--fleet", burstFleetFile, "--trace", noDur}, 1, "record 2 (job b): field duration"},
		{[]string{"--fleet", burstFleetFile, "--trace", section7File, "--warmup-jobs", "50"}, 1, "need at least 101 jobs"},
	}
	for _, c := range cases {
		code, _, errOut := petite(t, nil, append([]string{"sim", "run"}, c.args...)...)
		assert.Equal(t, c.code, code, strings.Join(c.args, " "))
		assert.Contains(t, errOut, c.want, strings.Join(c.args, " "))
	}
	// On this trace the out-of-order queue waits less than strict fifo.
	_, strictOut, _ := petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "constant:1h", "--json")
	_, skipOut, _ := petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "constant:1h", "--queue", "fifo-skip", "--json")
	var strictS, skipS struct {
		Wait float64 `json:"avg_wait_h"`
	}
	require.NoError(t, json.Unmarshal([]byte(strictOut), &strictS))
	require.NoError(t, json.Unmarshal([]byte(skipOut), &skipS))
	assert.Less(t, skipS.Wait, strictS.Wait)
	// --horizon counts from the first submit (64 s in this trace): at 1 h
	// some jobs have not arrived, and none of the log's events is later.
	evPath := filepath.Join(dir, "ev.jsonl")
	code, hOut, errOut := petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--horizon", "1h", "--json", "--events", evPath)
	require.Equal(t, 0, code, errOut)
	var hs struct {
		Future int `json:"future"`
		Ended  int `json:"ended"`
	}
	require.NoError(t, json.Unmarshal([]byte(hOut), &hs))
	assert.Positive(t, hs.Future)
	assert.Positive(t, hs.Ended)
	evs, err := os.ReadFile(evPath)
	require.NoError(t, err)
	for _, l := range strings.Split(strings.TrimSpace(string(evs)), "\n") {
		var e struct {
			At int64 `json:"at_ns"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		assert.LessOrEqual(t, e.At, int64(3664e9))
	}
	// A default duration lets the job without one run.
	code, _, errOut = petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", noDur, "--default-duration", "1m")
	assert.Equal(t, 0, code, errOut)
}

func TestSimRunScenario(t *testing.T) {
	inShippedTree(t)
	code, out, errOut := petite(t, nil, "sim", "run", "--scenario", "examples/scenarios/burst-to-cloud.yaml", "--json")
	require.Equal(t, 0, code, errOut)
	var r struct {
		Summary map[string]any `json:"summary"`
		Impacts []any          `json:"impacts"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Contains(t, r.Summary, "cloud_cost")
	assert.Positive(t, r.Summary["total"])
	assert.NotNil(t, r.Impacts, "impacts is a list, [] when the scenario has no retire, drain or move")
	_, again, _ := petite(t, nil, "sim", "run", "--scenario", "examples/scenarios/burst-to-cloud.yaml", "--json")
	assert.Equal(t, out, again)

	code, _, errOut = petite(t, nil, "sim", "run", "--scenario", "examples/scenarios/burst-to-cloud.yaml", "--seed", "3")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--scenario and --seed exclude each other")
}

func TestSimRunSeriesCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "series.csv")
	code, _, errOut := petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "constant:15s",
		"--series", path, "--series-step", "10m")
	require.Equal(t, 0, code, errOut)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	assert.Equal(t, "t_s,allocated_gpus:onprem,allocated_gpus:cloud,stranded_gpus:onprem,stranded_gpus:cloud,cloud_gpus,pending_gpus,running_jobs,queued_jobs,spend_per_hour", lines[0])
	// From 0 (the step boundary at or before the first submit, 64 s) to
	// the last end, 4.96 h after it (makespan): 30 steps of 10 min.
	assert.Len(t, lines, 1+30)
	assert.True(t, strings.HasPrefix(lines[1], "0,"), lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "600,"), lines[2])

	code, _, errOut = petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--series", path, "--series-step", "0s")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--series-step")
}

// reportPage reads a written report and checks what any report holds: one
// <svg> per plot, nothing loaded from elsewhere.
func reportPage(t *testing.T, path string, plots int) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	page := string(b)
	assert.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"), "an HTML page")
	assert.Equal(t, plots, strings.Count(page, "<svg "), "plots")
	for _, bad := range []string{"<script", `src="http`, `href="http`, "url("} {
		assert.False(t, strings.Contains(page, bad), "the page holds %q", bad)
	}
	return page
}

func TestSimRunReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.html")
	code, out, errOut := petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "constant:15s",
		"--report", path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "cloud jobs", "the summary is printed as without --report")
	page := reportPage(t, path, 5) // allocation, stranded, wait, JCT, cost
	assert.True(t, strings.Contains(page, "burst to cloud, waiting budget constant:15s"), "the settings are noted")
	assert.True(t, strings.Contains(page, "burst cloud"), "the burst cloud's GPUs are drawn")
	first, err := os.ReadFile(path)
	require.NoError(t, err)
	code, _, errOut = petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "constant:15s",
		"--report", path)
	require.Equal(t, 0, code, errOut)
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(first, again), "the same run writes the same report")

	// A folder that cannot be made (under a file) fails before the run.
	code, _, errOut = petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--report", filepath.Join(path, "sub", "dir.html"))
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "--report")
}

// The planner's question: retiring the on-prem hall, as a page with the
// action's before and after.
func TestSimRunScenarioReport(t *testing.T) {
	inShippedTree(t)
	path := filepath.Join(t.TempDir(), "report.html")
	code, out, errOut := petite(t, nil, "sim", "run", "--scenario", "examples/scenarios/retire-onprem.yaml", "--report", path)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "jobs disrupted")
	page := reportPage(t, path, 7) // over time: two plots for each run, with and without the action
	assert.True(t, strings.Contains(page, "<h1>Scenario retire-onprem</h1>"))
	assert.True(t, strings.Contains(page, `<th>without the actions</th><th>retire-onprem</th>`), "before beside after")
	assert.True(t, strings.Contains(page, "Before and after each action"))
	src, err := os.ReadFile("examples/scenarios/retire-onprem.yaml")
	require.NoError(t, err)
	line := 1 + slices.IndexFunc(strings.Split(string(src), "\n"), func(l string) bool { return strings.Contains(l, "at: retire_at") })
	assert.True(t, strings.Contains(page, fmt.Sprintf("retire (actions[0], line %d)", line)), "the action is named by its line")
}

// --series beside --scenario writes the scenario run's series, rather than
// being ignored.
func TestSimRunScenarioSeries(t *testing.T) {
	inShippedTree(t)
	path := filepath.Join(t.TempDir(), "series.csv")
	code, _, errOut := petite(t, nil, "sim", "run", "--scenario", "examples/scenarios/burst-to-cloud.yaml", "--series", path, "--series-step", "10m")
	require.Equal(t, 0, code, errOut)
	b, err := os.ReadFile(path)
	require.NoError(t, err, "the series is written")
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	assert.True(t, strings.HasPrefix(lines[0], "t_s,allocated_gpus:"), lines[0])
	assert.Greater(t, len(lines), 2)
}

// --scale grows the cloud pool when the owned nodes are full and prints its
// bill, split into used and idle; its knobs need it.
func TestSimRunScale(t *testing.T) {
	args := []string{"sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--queue", "backfill", "--scale", "--idle-release", "5m"}
	code, out, errOut := petite(t, nil, append(args, "--json")...)
	require.Equal(t, 0, code, errOut)
	var m struct {
		Ended   int                       `json:"ended"`
		Scaling map[string]map[string]any `json:"scaling"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	assert.Equal(t, 86, m.Ended)
	c := m.Scaling["cloud"]
	require.NotNil(t, c)
	assert.Positive(t, c["provisioned"])
	assert.Positive(t, c["idle_cost"], "idle time is billed")
	assert.InDelta(t, c["node_cost"].(float64), c["used_cost"].(float64)+c["idle_cost"].(float64), 1e-9)
	code, text, errOut := petite(t, nil, args...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, text, "cloud bill cloud: total used idle")

	code, _, errOut = petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--spot-reclaim", "1h")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "need --scale")
	code, _, errOut = petite(t, nil, "sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--scale", "--cloud-wait", "none")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "exclude each other")
}

// TestSimRunScenarioStdin: "-" reads the scenario from standard input, with
// the same result as the file (its relative paths start from here).
func TestSimRunScenarioStdin(t *testing.T) {
	inShippedTree(t)
	file := "examples/scenarios/zone-outage.yaml"
	code, want, errOut := petite(t, nil, "sim", "run", "--scenario", file, "-o", "json")
	require.Equal(t, exitOK, code, errOut)
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	code, got, errOut := petite(t, f, "sim", "run", "--scenario", "-", "-o", "json")
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, want, got)
}
