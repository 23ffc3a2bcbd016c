package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/simulator/frag"
)

// runPetite runs the command tree with args, as main does, and returns
// what it printed on stdout.
func runPetite(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	err := execute(context.Background(), args, strings.NewReader(""), &out, io.Discard)
	require.NoError(t, err, "petite %s", strings.Join(args, " "))
	return out.String()
}

func TestSimFragListPolicies(t *testing.T) {
	names := strings.Fields(runPetite(t, "sim", "frag", "--list-policies"))
	for _, p := range append(frag.PublishedPolicies, frag.OwnPolicies...) {
		assert.Contains(t, names, p)
	}
}

// --json prints the documented keys in order, and the same bytes each time.
func TestSimFragJSON(t *testing.T) {
	out := runPetite(t, "sim", "frag", "--policy", "best-fit", "--seed", "7", "--json")
	assert.Equal(t, out, runPetite(t, "sim", "frag", "--policy", "best-fit", "--seed", "7", "--json"))
	dec := json.NewDecoder(strings.NewReader(out))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	assert.Equal(t, []string{"policy", "seed", "inflate", "nodes", "gpus", "pods", "failed_pods", "final_alloc_pct", "final_at_arrived_pct", "end_arrived_pct", "end_alloc_pct", "curve"}, keys)
	var r frag.Result
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Equal(t, "best-fit", r.Policy)
	assert.Equal(t, 1.3, r.Inflate)
	assert.Contains(t, runPetite(t, "sim", "frag", "--policy", "random"), "policy random:")
}

// A sweep and the merge of its shards write the same table, and the plots.
func TestSimFragSweepShardMerge(t *testing.T) {
	dir := t.TempDir()
	args := []string{"sim", "frag", "sweep", "--policy", "random,gpu-packing", "--seed", "1-3", "--parallel", "2"}
	whole := filepath.Join(dir, "whole")
	table := runPetite(t, append(args, "--out", whole)...)
	assert.Contains(t, table, "| default |")
	parts := filepath.Join(dir, "parts")
	for _, sh := range []string{"0/2", "1/2"} {
		assert.Empty(t, runPetite(t, append(args, "--shard", sh, "--out", parts)...))
	}
	merged := filepath.Join(dir, "merged")
	assert.Equal(t, table, runPetite(t, "sim", "frag", "merge", "--out", merged, parts))
	for _, f := range []string{"table.md", "table.tsv", "table.json", "runs.json", "alloc-default.svg", "alloc-default.png"} {
		a, err := os.ReadFile(filepath.Join(whole, f))
		require.NoError(t, err, f)
		b, err := os.ReadFile(filepath.Join(merged, f))
		require.NoError(t, err, f)
		assert.True(t, bytes.Equal(a, b), "%s differs between the sweep and the merge", f)
	}
}

// petiteIn runs the program with the working directory dir.
func petiteIn(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Chdir(dir)
	return petite(t, nil, args...)
}

// The output folder is checked before the first run: a sweep of 300 runs
// into a folder that cannot be made fails at once, and one into a folder
// of someone's files leaves them alone.
func TestSimFragSweepOutChecked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	mine := filepath.Join(dir, "mine")
	require.NoError(t, os.MkdirAll(mine, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mine, "notes.txt"), []byte("keep"), 0o644))
	bad := map[string]string{
		filepath.Join(file, "out"): "output folder",
		mine:                       "holds notes.txt, which a sweep does not write",
	}
	if runtime.GOOS == "linux" {
		bad["/proc/x"] = "output folder /proc/x"
	}
	for out, want := range bad {
		for _, extra := range [][]string{nil, {"--shard", "0/2"}} {
			start := time.Now()
			code, stdout, stderr := petiteIn(t, dir, append([]string{"sim", "frag", "sweep", "--policy", "fgd", "--seed", "1-300", "--parallel", "1", "--out", out}, extra...)...)
			assert.Equal(t, exitError, code, out)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, want)
			assert.NotContains(t, stderr, "runs in", "no run was made")
			assert.Less(t, time.Since(start), 10*time.Second, "%s: failed before the runs", out)
		}
	}
	b, err := os.ReadFile(filepath.Join(mine, "notes.txt"))
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "nothing left beside")
}

// A sweep into a previous sweep's folder replaces it whole: the plots of
// workloads the new sweep lacks go.
func TestSimFragSweepReplacesPrevious(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	code, _, stderr := petiteIn(t, dir, "sim", "frag", "sweep", "--pods", filepath.Join(repo, "traces/testdata/openb"),
		"--policy", "fgd,random", "--seed", "1", "--out", out, "-o", "none")
	require.Equal(t, exitOK, code, stderr)
	for _, f := range []string{"alloc-gpuspec33_head.png", "alloc-multigpu20_head.svg", "summary.png"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	code, _, stderr = petiteIn(t, dir, "sim", "frag", "sweep", "--pods", filepath.Join(repo, "traces/testdata/openb/openb_pod_list_multigpu20_head.csv"),
		"--policy", "fgd", "--seed", "1", "--out", out, "-o", "none")
	require.Equal(t, exitOK, code, stderr)
	var names []string
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"table.md", "table.tsv", "table.json", "runs.json", "alloc-multigpu20_head.svg", "alloc-multigpu20_head.png"}, names)
	table, err := os.ReadFile(filepath.Join(out, "table.md"))
	require.NoError(t, err)
	assert.NotContains(t, string(table), "random")
	siblings, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, siblings, 1, "no temporary folder left beside")
}

// The text of a run states the figures of its JSON, whatever the
// inflation: the figure at round(100 × inflate)% arrival and the end of the
// sequence, never the curve's last whole percent.
func TestSimFragTextAgreesWithJSON(t *testing.T) {
	pct := regexp.MustCompile(`(\d+(?:\.\d+)?)%`)
	for _, inflate := range []string{"0", "0.5", "1.3", "2", "100"} {
		text := runPetite(t, "sim", "frag", "--inflate", inflate)
		var fields map[string]any
		require.NoError(t, json.Unmarshal([]byte(runPetite(t, "sim", "frag", "--inflate", inflate, "-o", "json")), &fields))
		var figures []string
		for k, v := range fields {
			if x, ok := v.(float64); ok && k != "curve" {
				figures = append(figures, strconv.FormatFloat(x, 'f', 2, 64))
			}
		}
		for _, m := range pct.FindAllStringSubmatch(text, -1) {
			x, err := strconv.ParseFloat(m[1], 64)
			require.NoError(t, err)
			assert.Contains(t, figures, strconv.FormatFloat(x, 'f', 2, 64), "--inflate %s: %q of the text is not in the JSON", inflate, m[0])
		}
		assert.Contains(t, text, fmt.Sprintf("%.2f%% of GPUs allocated at %v%% arrival", fields["final_alloc_pct"], fields["final_at_arrived_pct"]), inflate)
		assert.Contains(t, text, fmt.Sprintf("%.2f%% of GPUs allocated at the end of the sequence, at %.2f%% arrival", fields["end_alloc_pct"], fields["end_arrived_pct"]), inflate)
	}
	assert.Contains(t, runPetite(t, "sim", "frag", "--inflate", "100"), "at 10000% arrival")
}

// The shared vocabulary: --policy and --seed take lists (the old
// --policies and --seeds still work, with a deprecation note), -o/--output
// chooses what is printed (--json and the old --format still work), and a
// wrong call exits 2.
func TestSimFragVocabulary(t *testing.T) {
	dir := t.TempDir()
	sweep := func(args ...string) (int, string, string) {
		return petiteIn(t, dir, append([]string{"sim", "frag", "sweep", "--parallel", "1", "--out", filepath.Join(dir, "out")}, args...)...)
	}
	code, want, stderr := sweep("--policy", "random,best-fit", "--seed", "1,2")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, want, "| default | 87")
	for _, args := range [][]string{
		{"--policy", "random", "--policy", "best-fit", "--seed", "1-2"},
		{"--policies", "random,best-fit", "--seeds", "1-2"},
		{"--policy", "random,best-fit", "--seed", "1-2", "--format", "md"},
		{"--policy", "random,best-fit", "--seed", "1-2", "-o", "table"},
	} {
		code, got, stderr := sweep(args...)
		require.Equal(t, exitOK, code, "%v: %s", args, stderr)
		assert.Equal(t, want, got, "%v", args)
		if slices.Contains(args, "--policies") || slices.Contains(args, "--format") {
			assert.Contains(t, stderr, "deprecated", "%v", args)
		}
	}
	code, js, stderr := sweep("--policy", "random", "--seed", "1", "--json")
	require.Equal(t, exitOK, code, stderr)
	_, js2, _ := sweep("--policy", "random", "--seed", "1", "-o", "json")
	assert.Equal(t, js, js2)
	assert.True(t, json.Valid([]byte(js)))
	assert.Equal(t, runPetite(t, "sim", "frag", "--json"), runPetite(t, "sim", "frag", "-o", "json"))
	for _, args := range [][]string{
		{"--policy", "fgd", "--policies", "random"},
		{"--seed", "1", "--seeds", "2"},
		{"--format", "md", "-o", "tsv"},
		{"--format", "xml"},
		{"-o", "md"},
		{"--policy", "nope"},
		{"--seed", "5-3"},
		{"extra"},
	} {
		code, stdout, stderr := sweep(args...)
		assert.Equal(t, exitUsage, code, "%v: %s", args, stderr)
		assert.Empty(t, stdout, "%v", args)
	}
	code, _, _ = petite(t, nil, "sim", "frag", "-o", "tsv")
	assert.Equal(t, exitUsage, code)

	help := runPetite(t, "sim", "frag", "sweep", "--help")
	for _, p := range append(slices.Clone(frag.PublishedPolicies), frag.OwnPolicies...) {
		assert.Contains(t, help, p, "the help says what 'all' means")
	}
	assert.Contains(t, help, `"all" (the paper's six`)
	assert.NotContains(t, help, "--policies", "the old name is hidden")
}

// A failed write of what the frag commands print is an error, exit 1.
func TestSimFragWriteErrorsExit1(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"sim", "frag", "-o", "json"},
		{"sim", "frag", "--inflate", "0.5"},
		{"sim", "frag", "sweep", "--policy", "random", "--seed", "1", "-o", "tsv", "--out", filepath.Join(dir, "a")},
		{"sim", "frag", "sweep", "--policy", "random", "--seed", "1", "--json", "--out", filepath.Join(dir, "b")},
	} {
		var errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), failingWriter{errors.New("disk full")}, &errb)
		assert.Equal(t, exitError, code, "%v", args)
		assert.Contains(t, errb.String(), "petite: writing output: disk full", "%v", args)
	}
}

// An interrupted sweep (Ctrl-C cancels the command's context) leaves the
// output folder as it was and nothing beside it.
func TestSimFragSweepInterrupted(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "table.md"), []byte("old"), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"sim", "frag", "sweep", "--policy", "random", "--seed", "1-50", "--parallel", "1", "--out", out}, strings.NewReader(""), &stdout, &stderr)
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

// TestSimFragStdin: "-" reads the pod list or the node list from standard
// input, with the same result as the file; both at once is a usage error.
func TestSimFragStdin(t *testing.T) {
	pods, err := filepath.Abs("../../traces/testdata/openb/openb_pod_list_multigpu20_head.csv")
	require.NoError(t, err)
	nodes, err := filepath.Abs("../../traces/samples/openb_node_list_gpu_node.csv")
	require.NoError(t, err)
	code, want, errOut := petite(t, nil, "sim", "frag", "--policy", "best-fit", "--nodes", nodes, "--pods", pods, "-o", "json")
	require.Equal(t, exitOK, code, errOut)

	f, err := os.Open(pods)
	require.NoError(t, err)
	defer f.Close()
	code, got, errOut := petite(t, f, "sim", "frag", "--policy", "best-fit", "--nodes", nodes, "--pods", "-", "-o", "json")
	require.Equal(t, exitOK, code, errOut)
	assert.JSONEq(t, strings.Replace(want, pods, "stdin", -1), got, "the pods from stdin")

	g, err := os.Open(nodes)
	require.NoError(t, err)
	defer g.Close()
	code, got, errOut = petite(t, g, "sim", "frag", "--policy", "best-fit", "--nodes", "-", "--pods", pods, "-o", "json")
	require.Equal(t, exitOK, code, errOut)
	assert.JSONEq(t, strings.Replace(want, nodes, "stdin", -1), got, "the nodes from stdin")

	code, _, errOut = petite(t, nil, "sim", "frag", "--nodes", "-", "--pods", "-")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "cannot both be standard input")
}
