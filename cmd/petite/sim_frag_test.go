package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	args := []string{"sim", "frag", "sweep", "--policies", "random,gpu-packing", "--seeds", "1-3", "--parallel", "2"}
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
