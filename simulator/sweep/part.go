package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"petite/simulator/frag"
)

// PartFormat is the Format of a part file.
const PartFormat = "petite-sim-sweep-part/1"

// Part is the output of one shard: enough to merge it with the others into
// the outputs a single sweep gives.
type Part struct {
	// Format names the file kind and version.
	Format string `json:"format"`
	// Matrix is the whole sweep the shard belongs to.
	Matrix Matrix `json:"matrix"`
	// Shard says which part of it this is.
	Shard frag.Shard `json:"shard"`
	// Runs are the shard's runs in canonical order.
	Runs []Record `json:"runs"`
	// Full are the shard's runs of the first seed, whole, for the report.
	Full []Full `json:"full"`
}

// WritePart writes a part file as JSON.
func WritePart(w io.Writer, p *Part) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("part %s: %w", p.Shard, err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadPart reads a part file written by WritePart; name is used in errors.
func ReadPart(r io.Reader, name string) (*Part, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p Part
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("part %s: %w", name, err)
	}
	if p.Format != PartFormat {
		return nil, fmt.Errorf("part %s: field format: want %q, got %q", name, PartFormat, p.Format)
	}
	return &p, nil
}

// WritePartFile writes p into dir as its shard's part file
// (frag.PartFileName), whole or not at all, and returns its path.
func WritePartFile(dir string, p *Part) (string, error) {
	var b bytes.Buffer
	if err := WritePart(&b, p); err != nil {
		return "", err
	}
	base := frag.PartFileName(p.Shard)
	name := filepath.Join(dir, base)
	f, err := os.CreateTemp(dir, "."+strings.TrimSuffix(base, ".json")+".tmp-")
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

type runKey struct {
	variant, policy string
	seed            uint64
}

// Merge joins the parts of one sweep into the records and report runs of
// the whole matrix, in canonical order. Every shard must be there exactly
// once, from the same matrix.
func Merge(parts []*Part) (Matrix, []Record, []Full, error) {
	fail := func(format string, a ...any) (Matrix, []Record, []Full, error) {
		return Matrix{}, nil, nil, fmt.Errorf("merge: "+format, a...)
	}
	if len(parts) == 0 {
		return fail("no parts")
	}
	first := parts[0]
	n := first.Shard.Count
	seen := make([]bool, max(n, 1))
	for i, p := range parts {
		switch {
		case p.Format != PartFormat:
			return fail("part %d: format %q, want %q", i, p.Format, PartFormat)
		case !p.Matrix.equal(&first.Matrix):
			return fail("part %d (shard %s) is from another matrix than part 0", i, p.Shard)
		case p.Shard.Count != n || p.Shard.Index < 0 || p.Shard.Index >= n:
			return fail("part %d: shard %s does not belong to a split in %d", i, p.Shard, n)
		case seen[p.Shard.Index]:
			return fail("part %d: shard %s given twice", i, p.Shard)
		}
		seen[p.Shard.Index] = true
	}
	for i, ok := range seen {
		if !ok {
			return fail("shard %d/%d missing", i, n)
		}
	}
	m := first.Matrix
	if err := m.check(); err != nil {
		return fail("%v", err)
	}
	jobs := m.Jobs()
	pos := make(map[runKey]int, len(jobs))
	for k, j := range jobs {
		pos[runKey{m.Variants[j.Variant], m.Policies[j.Policy], j.Seed}] = k
	}
	recs := make([]Record, len(jobs))
	filled := make([]bool, len(jobs))
	fulls := make([]*Full, len(jobs))
	for _, p := range parts {
		for _, r := range p.Runs {
			k, ok := pos[runKey{r.Variant, r.Policy, r.Seed}]
			if !ok {
				return fail("shard %s: run %s/%s/seed %d is not in the matrix", p.Shard, r.Variant, r.Policy, r.Seed)
			}
			if filled[k] {
				return fail("shard %s: run %s/%s/seed %d given twice", p.Shard, r.Variant, r.Policy, r.Seed)
			}
			recs[k], filled[k] = r, true
		}
		for i := range p.Full {
			f := &p.Full[i]
			k, ok := pos[runKey{f.Variant, f.Policy, m.Seeds[0]}]
			if !ok || fulls[k] != nil || f.Result == nil {
				return fail("shard %s: report run %s/%s is not in the matrix, given twice or empty", p.Shard, f.Variant, f.Policy)
			}
			fulls[k] = f
		}
	}
	var out []Full
	for k, j := range jobs {
		if !filled[k] {
			return fail("run %s/%s/seed %d missing", m.Variants[j.Variant], m.Policies[j.Policy], j.Seed)
		}
		if j.Seed == m.Seeds[0] {
			if fulls[k] == nil {
				return fail("report run %s/%s missing", m.Variants[j.Variant], m.Policies[j.Policy])
			}
			out = append(out, *fulls[k])
		}
	}
	return m, recs, out, nil
}
