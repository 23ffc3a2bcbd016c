package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sweepArgs is a small sweep on the burst method's reference trace.
func sweepArgs(repo string, extra ...string) []string {
	return append([]string{"sim", "sweep",
		"--fleet", filepath.Join(repo, "simulator/replay/testdata/burst-fleet.yaml"),
		"--trace", filepath.Join(repo, "simulator/replay/testdata/section7.csv"),
		"--policy", "best-fit,fgd,random", "--seed", "42-44", "-o", "none"}, extra...)
}

func readOutputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, name := range []string{"runs.json", "table.md", "table.tsv", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, name)
		got[name] = string(b)
	}
	return got
}

// --parallel 1 and 4 write the same bytes, and the shards of the sweep,
// merged, write them too.
func TestSimSweepParallelAndShards(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	code, _, stderr := petiteIn(t, dir, sweepArgs(repo, "--parallel", "1", "--out", "one")...)
	require.Equal(t, exitOK, code, stderr)
	want := readOutputs(t, filepath.Join(dir, "one"))
	code, _, stderr = petiteIn(t, dir, sweepArgs(repo, "--parallel", "4", "--out", "four")...)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, want, readOutputs(t, filepath.Join(dir, "four")), "--parallel 4")
	for i := range 3 {
		code, stdout, stderr := petiteIn(t, dir, sweepArgs(repo, "--shard", string(rune('0'+i))+"/3", "--out", "parts")...)
		require.Equal(t, exitOK, code, stderr)
		assert.Empty(t, stdout)
	}
	code, _, stderr = petiteIn(t, dir, "sim", "sweep", "merge", "-o", "none", "--out", "merged", "parts")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, want, readOutputs(t, filepath.Join(dir, "merged")), "merged from 3 shards")
	// Merged beside its parts: the parts are kept.
	code, stdout, stderr := petiteIn(t, dir, "sim", "sweep", "merge", "-o", "tsv", "--out", "parts", "parts")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, want["table.tsv"], stdout)
	assert.Equal(t, want, readOutputs(t, filepath.Join(dir, "parts")))
	parts, err := filepath.Glob(filepath.Join(dir, "parts", "part-*-of-3.json"))
	require.NoError(t, err)
	assert.Len(t, parts, 3)
	// A missing shard is an error, and nothing is written.
	require.NoError(t, os.Remove(parts[1]))
	code, _, stderr = petiteIn(t, dir, "sim", "sweep", "merge", "--out", "again", "parts")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "shard 1/3 missing")
	assert.NoDirExists(t, filepath.Join(dir, "again"))
}

// The output folder is checked before any run, and a folder of someone's
// files is left alone.
func TestSimSweepOutChecked(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine")
	require.NoError(t, os.MkdirAll(mine, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mine, "notes.txt"), []byte("keep"), 0o644))
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	for out, want := range map[string]string{
		mine:                       "holds notes.txt, which a sweep does not write",
		filepath.Join(file, "out"): "output folder",
	} {
		for _, extra := range [][]string{nil, {"--shard", "0/2"}} {
			code, stdout, stderr := petiteIn(t, dir, sweepArgs(repo, append(extra, "--out", out)...)...)
			assert.Equal(t, exitError, code, out)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, want)
			assert.NotContains(t, stderr, "runs in", "no run was made")
		}
	}
	b, err := os.ReadFile(filepath.Join(mine, "notes.txt"))
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b))

	// A previous sweep's folder is replaced whole.
	out := filepath.Join(dir, "prev")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "alloc-old.svg"), []byte("<svg/>"), 0o644))
	code, _, stderr := petiteIn(t, dir, sweepArgs(repo, "--out", out)...)
	require.Equal(t, exitOK, code, stderr)
	assert.NoFileExists(t, filepath.Join(out, "alloc-old.svg"))
	assert.FileExists(t, filepath.Join(out, "report.html"))
}

func TestSimSweepUsageErrorsExit2(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	scen := filepath.Join(repo, "examples/scenarios/burst-to-cloud.yaml")
	for name, args := range map[string][]string{
		"no variant":          {"sim", "sweep", "--policy", "fgd"},
		"bad policy":          sweepArgs(repo, "--policy", "nope"),
		"repeated policy":     sweepArgs(repo, "--policy", "fgd,fgd"),
		"bad seed":            sweepArgs(repo, "--seed", "9-3"),
		"bad shard":           sweepArgs(repo, "--shard", "2/2"),
		"bad parallel":        sweepArgs(repo, "--parallel", "0"),
		"bad output":          sweepArgs(repo, "-o", "xml"),
		"bad queue":           sweepArgs(repo, "--queue", "lifo"),
		"bad cloud wait":      sweepArgs(repo, "--cloud-wait", "soon"),
		"scenario and trace":  {"sim", "sweep", "--scenario", scen, "--trace", "x.csv"},
		"merge without parts": {"sim", "sweep", "merge"},
		"unknown flag":        sweepArgs(repo, "--nope"),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			code, _, stderr := petiteIn(t, dir, append(args, "--out", "o")...)
			assert.Equal(t, exitUsage, code, stderr)
			assert.NoDirExists(t, filepath.Join(dir, "o"))
		})
	}
}

// A scenario variant: its policy and seed are the sweep's, and the table
// has a row per policy.
func TestSimSweepScenario(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	code, stdout, stderr := petiteIn(t, dir, "sim", "sweep", "--scenario", filepath.Join(repo, "examples/scenarios/burst-to-cloud.yaml"),
		"--policy", "best-fit,fgd", "--seed", "42", "-o", "tsv", "--out", "o")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "burst-to-cloud\tbest-fit\t1\t")
	assert.Contains(t, stdout, "burst-to-cloud\tfgd\t1\t")
	b, err := os.ReadFile(filepath.Join(dir, "o", "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "scenario "+filepath.ToSlash(filepath.Join(repo, "examples/scenarios/burst-to-cloud.yaml")))
	assert.NotContains(t, string(b), "burst-to-cloud · fgd", "one variant: its runs are labelled by policy")
}

// An interrupted sweep (the context a Ctrl-C cancels) stops, writes
// nothing, and leaves the previous sweep's folder as it was.
func TestSimSweepInterrupted(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "table.md"), []byte("old"), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, sweepArgs(repo, "--parallel", "1", "--out", out), strings.NewReader(""), &stdout, &stderr)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr.String(), "canceled")
	assert.Empty(t, stdout.String())
	b, err := os.ReadFile(filepath.Join(out, "table.md"))
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary folder left beside")
}
