package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const forecastSampleHere = "../../" + forecastSample

// checkPoints checks the --json form other tools read: exactly
// {"points":[{"t":"<RFC3339>","value":<x>},...]}, one point per step from
// the cutoff on.
func checkPoints(t *testing.T, out string, cutoff time.Time, step time.Duration, n int) {
	t.Helper()
	var doc map[string][]map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Len(t, doc, 1, "one key")
	pts, ok := doc["points"]
	require.True(t, ok, "the key is points")
	require.Len(t, pts, n)
	for i, p := range pts {
		require.Len(t, p, 2, "point %d: t and value only", i)
		s, ok := p["t"].(string)
		require.True(t, ok, "point %d: t is a string", i)
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err, "point %d", i)
		require.True(t, strings.HasSuffix(s, "Z"), "point %d: UTC", i)
		require.Equal(t, cutoff.Add(time.Duration(i)*step), tm, "point %d", i)
		v, ok := p["value"].(float64)
		require.True(t, ok, "point %d: value is a number", i)
		require.GreaterOrEqual(t, v, 0.0)
	}
}

func TestSimForecastJSONForm(t *testing.T) {
	args := []string{"sim", "forecast", "--series", forecastSampleHere, "--column", "active",
		"--train-until", "2017-11-06T00:00:00Z", "--horizon", "2d", "--step", "10m", "--json"}
	code, out, errOut := petite(t, nil, args...)
	require.Equal(t, exitOK, code, errOut)
	checkPoints(t, out, time.Date(2017, 11, 6, 0, 0, 0, 0, time.UTC), 10*time.Minute, 288)

	// The same bytes again, and through -o json and standard input.
	_, again, _ := petite(t, nil, args...)
	assert.Equal(t, out, again, "deterministic")
	f, err := os.Open(forecastSampleHere)
	require.NoError(t, err)
	defer f.Close()
	stdinArgs := append([]string{}, args...)
	stdinArgs[3] = "-"
	stdinArgs[len(stdinArgs)-1] = "-o"
	code, viaStdin, errOut := petite(t, f, append(stdinArgs, "json")...)
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, out, viaStdin)
}

// Zone-less times in the file are UTC, and so is a zone-less cutoff; a
// cutoff with an offset is the same instant. The local zone is set far
// from UTC so that reading either in it would show.
func TestSimForecastZonelessUTC(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("UTC-7", -7*3600)
	t.Cleanup(func() { time.Local = local })
	var csv strings.Builder
	csv.WriteString("time,busy\n")
	start := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	for i := range 3 * 7 * 24 {
		ts := start.Add(time.Duration(i) * time.Hour)
		csv.WriteString(ts.Format("2006-01-02 15:04:05"))
		csv.WriteString(",")
		csv.WriteString([]string{"100", "110", "120", "110"}[i%4])
		csv.WriteString("\n")
	}
	for _, cut := range []string{"2024-03-22 00:00:00", "2024-03-22T01:00:00+01:00"} {
		code, out, errOut := petite(t, strings.NewReader(csv.String()), "sim", "forecast", "--series", "-",
			"--train-until", cut, "--horizon", "6h", "--step", "1h", "--json")
		require.Equal(t, exitOK, code, errOut)
		checkPoints(t, out, time.Date(2024, 3, 22, 0, 0, 0, 0, time.UTC), time.Hour, 6)
	}
}

// The full series the outside checks use, where the shared traces are
// beside the repository: 14 days of 10-minute points from the cutoff.
func TestSimForecastPhillyForm(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "traces", "helios-ces", "philly_node_sequence.csv")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("the full series is not here (%v)", err)
	}
	code, out, errOut := petite(t, nil, "sim", "forecast", "--series", path, "--column", "active",
		"--train-until", "2017-12-01T00:00:00Z", "--horizon", "14d", "--step", "10m", "--json")
	require.Equal(t, exitOK, code, errOut)
	checkPoints(t, out, time.Date(2017, 12, 1, 0, 0, 0, 0, time.UTC), 10*time.Minute, 14*144)
}

func TestSimForecastText(t *testing.T) {
	code, out, errOut := petite(t, nil, "sim", "forecast", "--series", forecastSampleHere,
		"--train-until", "2017-11-06T00:00:00Z", "--horizon", "7d")
	require.Equal(t, exitOK, code, errOut)
	for _, want := range []string{
		"active in " + forecastSampleHere + ", mean per 10m",
		"1849 steps of 10m before 2017-11-06T00:00:00Z (108 masked as outages, 59 without data)",
		"size to", "backtest: 1008 steps scored",
		"model", "seasonal naive (daily)", "seasonal naive (weekly)", "MASE",
	} {
		assert.Contains(t, out, want)
	}
	// Forecasting past the end of the data: no backtest.
	code, out, errOut = petite(t, nil, "sim", "forecast", "--series", forecastSampleHere, "--horizon", "1d")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "before 2017-11-13T00:00:00Z")
	assert.NotContains(t, out, "backtest")

	code, out, errOut = petite(t, nil, "sim", "forecast", "--series", forecastSampleHere, "--horizon", "2h", "-o", "csv")
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 13)
	assert.Equal(t, "t,value,lo,hi", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "2017-11-13T00:00:00Z,"), lines[1])
}

// A job trace's GPU demand, from standard input: the series ends at the
// last submission, where the forecast starts.
func TestSimForecastTrace(t *testing.T) {
	f, err := os.Open("../../traces/samples/openb_pod_list_default.csv")
	require.NoError(t, err)
	defer f.Close()
	code, out, errOut := petite(t, f, "sim", "forecast", "--trace", "-", "--horizon", "2h", "--step", "1h", "--json")
	require.Equal(t, exitOK, code, errOut)
	// The last submission is at 12901761 s on the relative clock.
	last := time.Unix(12901761, 0).UTC().Truncate(time.Hour).Add(time.Hour)
	checkPoints(t, out, last, time.Hour, 2)

	code, out, errOut = petite(t, nil, "sim", "forecast", "--trace", "../../traces/samples/openb_pod_list_default.csv", "--horizon", "1d", "--step", "1h")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "GPUs asked for in ../../traces/samples/openb_pod_list_default.csv (openb, 7064 jobs with GPUs, 861 of them open-ended; 0 bad records skipped), mean per 1h")
	assert.Contains(t, out, "(0 masked as outages, 0 without data)", "a trace's demand has no outages to mask")
}

func TestSimForecastErrors(t *testing.T) {
	bad := "time,active\n2017-10-03 00:00:00,1\n2017-10-03 00:01:00,lots\n"
	tests := []struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		{[]string{}, "", exitUsage, "give one of --series and --trace"},
		{[]string{"--series", "a", "--trace", "b"}, "", exitUsage, "give one of --series and --trace"},
		{[]string{"--series", "-", "--horizon", "25m"}, "", exitUsage, "not a whole number of --step"},
		{[]string{"--series", "-", "--horizon", "fortnight"}, "", exitUsage, "--horizon"},
		{[]string{"--series", "-", "--step", "0s"}, "", exitUsage, "--step"},
		{[]string{"--series", "-", "--train-until", "soon"}, "", exitUsage, "--train-until"},
		{[]string{"--series", "-", "--agg", "median"}, "", exitUsage, "--agg"},
		{[]string{"--series", "-", "--level", "1.5"}, "", exitUsage, "level"},
		{[]string{"--series", "-"}, bad, exitError, "stdin:3: field active: want a finite number ≥ 0, or empty for a gap, got \"lots\""},
		{[]string{"--series", "-", "--column", "idle"}, bad, exitError, "stdin:1: field idle"},
		{[]string{"--series", "no-such-series.csv"}, "", exitError, "no-such-series.csv"},
		{[]string{"--trace", "no-such-trace.csv"}, "", exitError, "no-such-trace.csv"},
		{[]string{"--series", "-", "--train-until", "2017-10-02T00:00:00Z"}, "time,active\n2017-10-03 00:00:00,1\n", exitError, "no data before it"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := petite(t, strings.NewReader(tc.stdin), append([]string{"sim", "forecast"}, tc.args...)...)
			assert.Equal(t, tc.code, code)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

// A failed write to standard output fails the run, in every output form.
func TestSimForecastWriteErrors(t *testing.T) {
	for _, form := range []string{"table", "json", "csv"} {
		var errb bytes.Buffer
		code := run(context.Background(), []string{"sim", "forecast", "--series", forecastSampleHere,
			"--train-until", "2017-11-06T00:00:00Z", "--horizon", "1d", "-o", form},
			strings.NewReader(""), failingWriter{errors.New("disk full")}, &errb)
		assert.Equal(t, exitError, code, form)
		assert.True(t, strings.HasPrefix(errb.String(), "petite: writing output: "), "%s: %q", form, errb.String())
	}
}
