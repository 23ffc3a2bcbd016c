package frag

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// A sweep's output folder is replaced whole: the outputs are written into a
// temporary folder beside it, which then takes its place, so a reader never
// sees a half-written sweep, and plots of a previous sweep (workloads or
// policies it had and this one lacks) never sit beside the new table. The
// folder is checked before the first run, so a sweep that cannot write its
// outputs fails at once instead of after hours of runs.
//
// A folder that holds anything a sweep does not write is refused: replacing
// it would delete someone's files, and writing beside them would leave the
// mixed folder this rule exists to prevent. There is no option to force it;
// name a new or empty folder instead.

// sweepFiles are the name patterns of what a sweep, a merge or a shard
// writes into its folder (path.Match syntax).
var sweepFiles = []string{
	"table.md", "table.tsv", "table.json", "runs.json",
	"alloc-*.svg", "alloc-*.png", "summary.svg", "summary.png",
	"report.html", // petite sim sweep's page (simulator/sweep)
	partPattern,
	// A shard's part file while it is written, and a shard's check that
	// the folder is writable: other shards may be writing beside.
	".part-*-of-*.tmp-*", ".probe-*",
}

// partPattern matches the part files of a sharded sweep. They are kept when
// a report replaces the folder: they are a merge's inputs, not its outputs.
const partPattern = "part-*-of-*.json"

func isSweepFile(name string) bool {
	for _, p := range sweepFiles {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// checkSweepDir returns the folder's entries, or an error when dir is not a
// folder or holds an entry a sweep does not write. A missing folder holds
// nothing.
func checkSweepDir(dir string) ([]fs.DirEntry, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("output folder %s: exists and is not a folder", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("output folder %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isSweepFile(e.Name()) {
			return nil, fmt.Errorf("output folder %s holds %s, which a sweep does not write: name a new or empty folder (a previous sweep's folder is replaced whole)", dir, e.Name())
		}
	}
	return entries, nil
}

// OutDir is a sweep's output folder made ready before the first run: the
// outputs go into Path, a temporary folder beside it, and Commit puts them
// in place.
type OutDir struct {
	dir, tmp string
}

// PrepareOut checks that dir can take a sweep's outputs, before any run:
// it is a new folder whose parent can be created, an empty folder, or a
// previous sweep's folder (only files a sweep writes), and a folder can be
// created beside it. A symbolic link is followed: the folder it names is
// the one replaced.
func PrepareOut(dir string) (*OutDir, error) {
	if dir == "" {
		return nil, fmt.Errorf("output folder: empty name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("output folder %s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	if _, err := checkSweepDir(abs); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(abs)
	if base == "" {
		return nil, fmt.Errorf("output folder %s: the root cannot be replaced", dir)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("output folder %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("output folder %s: cannot write beside it: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("output folder %s: %w", dir, err)
	}
	return &OutDir{dir: abs, tmp: tmp}, nil
}

// Path is the folder to write the outputs into until Commit.
func (o *OutDir) Path() string { return o.tmp }

// Dir is the output folder the outputs land in.
func (o *OutDir) Dir() string { return o.dir }

// Commit replaces the output folder with the written outputs. Part files
// of a sharded sweep in the old folder are kept; everything else of the
// previous sweep goes.
func (o *OutDir) Commit() error {
	if o.tmp == "" {
		return fmt.Errorf("output folder %s: already committed or aborted", o.dir)
	}
	// Checked again: the folder may have changed during the runs.
	old, err := checkSweepDir(o.dir)
	if err != nil {
		return err
	}
	st, err := os.Stat(o.dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("output folder %s: %w", o.dir, err)
		}
		if err := os.Rename(o.tmp, o.dir); err != nil {
			return fmt.Errorf("output folder %s: %w", o.dir, err)
		}
		o.tmp = ""
		return nil
	}
	if err := os.Chmod(o.tmp, st.Mode().Perm()); err != nil {
		return fmt.Errorf("output folder %s: %w", o.dir, err)
	}
	for _, e := range old {
		if ok, _ := path.Match(partPattern, e.Name()); !ok {
			continue
		}
		if _, err := os.Lstat(filepath.Join(o.tmp, e.Name())); err == nil {
			continue // the new outputs have their own
		}
		if err := os.Rename(filepath.Join(o.dir, e.Name()), filepath.Join(o.tmp, e.Name())); err != nil {
			return fmt.Errorf("output folder %s: keeping %s: %w", o.dir, e.Name(), err)
		}
	}
	aside := o.tmp + ".old"
	if err := os.Rename(o.dir, aside); err != nil {
		return fmt.Errorf("output folder %s: %w", o.dir, err)
	}
	if err := os.Rename(o.tmp, o.dir); err != nil {
		if back := os.Rename(aside, o.dir); back != nil {
			return fmt.Errorf("output folder %s: %w (the previous sweep is in %s)", o.dir, err, aside)
		}
		return fmt.Errorf("output folder %s: %w", o.dir, err)
	}
	o.tmp = ""
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("output folder %s: removing the previous sweep: %w", o.dir, err)
	}
	return nil
}

// Abort removes the temporary folder and what was written into it; the
// output folder is left as it was. It does nothing after Commit.
func (o *OutDir) Abort() error {
	if o.tmp == "" {
		return nil
	}
	err := os.RemoveAll(o.tmp)
	o.tmp = ""
	return err
}

// PreparePartDir checks, before any run, that dir can take a shard's part
// file: it can be created and written, and holds only files a sweep writes
// (the other shards' parts among them). The shards of one sweep write into
// one folder, possibly at the same time, so it is not replaced whole.
func PreparePartDir(dir string) error {
	if _, err := checkSweepDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return fmt.Errorf("output folder %s: cannot write: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// PartFileName is the name of shard sh's part file.
func PartFileName(sh Shard) string {
	return fmt.Sprintf("part-%d-of-%d.json", sh.Index, sh.Count)
}

// WritePartFile writes p into dir as its shard's part file, whole or not at
// all (a temporary file renamed into place), and returns its path.
func WritePartFile(dir string, p *Part) (string, error) {
	var b bytes.Buffer
	if err := WritePart(&b, p); err != nil {
		return "", err
	}
	name := filepath.Join(dir, PartFileName(p.Shard))
	f, err := os.CreateTemp(dir, "."+strings.TrimSuffix(PartFileName(p.Shard), ".json")+".tmp-")
	if err != nil {
		return "", fmt.Errorf("part %s: %w", name, err)
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("part %s: %w", name, err)
	}
	return name, nil
}
