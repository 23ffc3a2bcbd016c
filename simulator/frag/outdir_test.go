package frag

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
}

func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

// The output folder: a new one is created, an empty one or a previous
// sweep's is replaced whole (its part files kept), anything else is refused
// before any run, untouched.
func TestPrepareOut(t *testing.T) {
	newSweep := map[string]string{"table.md": "new", "alloc-default.png": "new"}
	for _, tc := range []struct {
		name   string
		before map[string]string // nil: the folder does not exist
		after  map[string]string
		err    string
	}{
		{name: "new", after: newSweep},
		{name: "empty", before: map[string]string{}, after: newSweep},
		{
			name:   "previous sweep",
			before: map[string]string{"table.md": "old", "alloc-gpushare40.png": "old", "summary.svg": "old", "part-0-of-2.json": "p0"},
			after:  map[string]string{"table.md": "new", "alloc-default.png": "new", "part-0-of-2.json": "p0"},
		},
		{name: "foreign file", before: map[string]string{"table.md": "old", "notes.txt": "mine"}, err: "holds notes.txt, which a sweep does not write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "a", "out")
			if tc.before != nil {
				writeFiles(t, dir, tc.before)
			}
			o, err := PrepareOut(dir)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				assert.Equal(t, tc.before, readFiles(t, dir), "a refused folder is left as it was")
				return
			}
			require.NoError(t, err)
			writeFiles(t, o.Path(), newSweep)
			if tc.before != nil {
				assert.Equal(t, tc.before, readFiles(t, dir), "nothing changes before Commit")
			}
			require.NoError(t, o.Commit())
			assert.Equal(t, tc.after, readFiles(t, dir))
			siblings, err := os.ReadDir(filepath.Join(parent, "a"))
			require.NoError(t, err)
			require.Len(t, siblings, 1, "no temporary folder is left beside")
			assert.Error(t, o.Commit(), "a second commit")
		})
	}
}

// A folder that cannot be made fails before any run, and leaves nothing.
func TestPrepareOutRefuses(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	bad := []string{file, filepath.Join(file, "sub"), ""}
	if runtime.GOOS == "linux" {
		bad = append(bad, "/proc/x")
	}
	for _, dir := range bad {
		_, err := PrepareOut(dir)
		assert.ErrorContains(t, err, "output folder", dir)
		assert.Error(t, PreparePartDir(dir), dir)
	}
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

// Abort leaves the folder as it was and removes what was written.
func TestOutDirAbort(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	writeFiles(t, dir, map[string]string{"table.md": "old"})
	o, err := PrepareOut(dir)
	require.NoError(t, err)
	writeFiles(t, o.Path(), map[string]string{"table.md": "new"})
	require.NoError(t, o.Abort())
	assert.Equal(t, map[string]string{"table.md": "old"}, readFiles(t, dir))
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
	require.NoError(t, o.Abort(), "twice is harmless")
}

// Shards write their parts into one folder whole, beside each other's.
func TestWritePartFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "parts")
	require.NoError(t, PreparePartDir(dir))
	for i := range 2 {
		name, err := WritePartFile(dir, &Part{Format: PartFormat, Shard: Shard{i, 2}})
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, PartFileName(Shard{i, 2})), name)
	}
	require.NoError(t, PreparePartDir(dir), "a folder of parts takes another")
	got := readFiles(t, dir)
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	assert.Equal(t, []string{"part-0-of-2.json", "part-1-of-2.json"}, names)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644))
	assert.ErrorContains(t, PreparePartDir(dir), "notes.txt")
}
