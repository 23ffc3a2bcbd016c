package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// prepareOutputs checks the files a long command will write before it runs,
// so that a run of minutes does not end on "no such file or directory":
// each folder is created when missing and must take a new file, no path
// is a folder, and no two outputs are one file. flag names each path's
// flag for the error; empty paths are skipped.
func prepareOutputs(paths map[string]string) error {
	seen := map[string]string{}
	flags := make([]string, 0, len(paths))
	for f := range paths {
		flags = append(flags, f)
	}
	slices.Sort(flags)
	for _, flag := range flags {
		p := paths[flag]
		if p == "" || p == "-" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
		if other, ok := seen[abs]; ok {
			return usageErr("--%s and --%s name the same file %s", other, flag, p)
		}
		seen[abs] = flag
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return fmt.Errorf("--%s: %s is a folder; name a file", flag, p)
		}
		dir := filepath.Dir(abs)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
		f, err := os.CreateTemp(dir, ".petite-check-*")
		if err != nil {
			return fmt.Errorf("--%s: cannot write in %s: %w", flag, dir, err)
		}
		name := f.Name()
		f.Close()
		os.Remove(name)
	}
	return nil
}

// writeFileWhole writes data to path through a temporary file beside it,
// renamed into place, so that a failed write leaves no half file.
func writeFileWhole(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// partFiles lists the part files a merge reads: each argument is a part
// file, or a folder whose part-*.json files are taken (sorted by name).
func partFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		found, err := filepath.Glob(filepath.Join(a, "part-*.json"))
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("merge: no part-*.json in %s", a)
		}
		files = append(files, found...)
	}
	return files, nil
}
