package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSimRunOutputsCheckedFirst: the files sim run writes are checked
// before the replay runs: a missing folder is made, one that cannot be made
// or a path that is a folder fails at once (no event log written first),
// and two outputs naming one file are a usage error.
func TestSimRunOutputsCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	run := func(extra ...string) (int, string) {
		args := append([]string{"sim", "run", "--fleet", burstFleetFile, "--trace", section7File, "--cloud-wait", "constant:15s"}, extra...)
		code, _, errOut := petite(t, nil, args...)
		return code, errOut
	}

	nested := filepath.Join(dir, "a", "b", "report.html")
	code, errOut := run("--report", nested)
	require.Equal(t, 0, code, errOut)
	assert.FileExists(t, nested, "the report's folder is made")

	events := filepath.Join(dir, "events.jsonl")
	code, errOut = run("--events", events, "--report", "/proc/petite-no/report.html")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "--report:")
	assert.NoFileExists(t, events, "nothing ran, so no event log was begun")

	code, errOut = run("--report", dir)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "is a folder")

	same := filepath.Join(dir, "x.out")
	code, errOut = run("--series", same, "--report", same)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--report and --series name the same file")
	assert.NoFileExists(t, same)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".petite-check", "the probe file is removed")
		assert.NotContains(t, e.Name(), ".tmp-", "no temporary file is left")
	}
}
