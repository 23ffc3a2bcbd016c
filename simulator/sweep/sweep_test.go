package sweep

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/fleet"
	"petite/simulator/frag"
	"petite/simulator/replay"
	"petite/traces"
)

// section7 is the burst method's reference trace over its fleet, as one
// variant.
func section7(t *testing.T) Variant {
	t.Helper()
	f, err := os.Open("../replay/testdata/burst-fleet.yaml")
	require.NoError(t, err)
	defer f.Close()
	pools, nodes, err := fleet.Parse(f, "burst-fleet.yaml")
	require.NoError(t, err)
	r, err := traces.Open("../replay/testdata/section7.csv", traces.Options{})
	require.NoError(t, err)
	defer r.Close()
	var src []traces.Job
	for j, err := range r.All() {
		require.NoError(t, err)
		src = append(src, j)
	}
	jobs, err := replay.FromTrace(src, "section7.csv", 0)
	require.NoError(t, err)
	base := replay.Config{Pools: pools, Nodes: nodes, Jobs: jobs}
	return Variant{Name: "section7", Config: func(string, uint64) (replay.Config, error) { return base, nil }}
}

func matrix(seeds ...uint64) Matrix {
	return Matrix{Variants: []string{"section7"}, Policies: []string{"best-fit", "fgd", "random"}, Seeds: seeds, SeriesStep: 10 * replay.Second * 60}
}

// outputs runs the sweep and returns the bytes of every output file.
func outputs(t *testing.T, m Matrix, recs []Record, fulls []Full) map[string]string {
	t.Helper()
	dir := t.TempDir()
	_, err := WriteOutputs(dir, m, recs, fulls)
	require.NoError(t, err)
	got := map[string]string{}
	for _, name := range []string{"runs.json", "table.md", "table.tsv", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		got[name] = string(b)
	}
	return got
}

func TestOutputsDoNotDependOnParallel(t *testing.T) {
	v := section7(t)
	m := matrix(42, 43, 44)
	var want map[string]string
	for _, par := range []int{1, 4} {
		recs, fulls, err := (&Sweep{Variants: []Variant{v}, Matrix: m, Parallel: par}).Run(context.Background())
		require.NoError(t, err)
		require.Len(t, recs, 9)
		require.Len(t, fulls, 3, "the first seed of each policy")
		for _, f := range fulls {
			require.NotNil(t, f.Result.Series, "the report's runs are sampled")
		}
		got := outputs(t, m, recs, fulls)
		if want == nil {
			want = got
			continue
		}
		for name := range want {
			assert.Equal(t, want[name], got[name], "%s with --parallel %d", name, par)
		}
	}
	assert.Contains(t, want["report.html"], "<svg")
}

// The shards' parts, merged (read back from their files, in any order),
// give the outputs of one run byte for byte.
func TestShardsMergeToOneRun(t *testing.T) {
	v := section7(t)
	m := matrix(42, 43)
	recs, fulls, err := (&Sweep{Variants: []Variant{v}, Matrix: m, Parallel: 2}).Run(context.Background())
	require.NoError(t, err)
	want := outputs(t, m, recs, fulls)
	for _, n := range []int{1, 2, 4, 7} {
		dir := t.TempDir()
		var parts []*Part
		for i := n - 1; i >= 0; i-- {
			sh := frag.Shard{Index: i, Count: n}
			r, f, err := (&Sweep{Variants: []Variant{v}, Matrix: m, Shard: sh, Parallel: 3}).Run(context.Background())
			require.NoError(t, err)
			path, err := WritePartFile(dir, &Part{Format: PartFormat, Matrix: m, Shard: sh, Runs: r, Full: f})
			require.NoError(t, err)
			fh, err := os.Open(path)
			require.NoError(t, err)
			p, err := ReadPart(fh, path)
			fh.Close()
			require.NoError(t, err)
			parts = append(parts, p)
		}
		mm, r, f, err := Merge(parts)
		require.NoError(t, err)
		got := outputs(t, mm, r, f)
		for name := range want {
			assert.Equal(t, want[name], got[name], "%s merged from %d shards", name, n)
		}
	}
}

func TestMergeRefusesBadParts(t *testing.T) {
	v := section7(t)
	m := matrix(42)
	part := func(i, n int) *Part {
		sh := frag.Shard{Index: i, Count: n}
		r, f, err := (&Sweep{Variants: []Variant{v}, Matrix: m, Shard: sh, Parallel: 1}).Run(context.Background())
		require.NoError(t, err)
		return &Part{Format: PartFormat, Matrix: m, Shard: sh, Runs: r, Full: f}
	}
	p0, p1 := part(0, 2), part(1, 2)
	other := *p1
	other.Matrix.Seeds = []uint64{7}
	noFull := *p1
	noFull.Full = nil
	for name, tc := range map[string]struct {
		parts []*Part
		want  string
	}{
		"none":       {nil, "no parts"},
		"missing":    {[]*Part{p0}, "shard 1/2 missing"},
		"twice":      {[]*Part{p0, p0}, "given twice"},
		"matrix":     {[]*Part{p0, &other}, "another matrix"},
		"no report":  {[]*Part{p0, &noFull}, "report run"},
		"bad format": {[]*Part{{Format: "x", Shard: frag.Whole}}, "format"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := Merge(tc.parts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, _, _, err := Merge([]*Part{p1, p0})
	assert.NoError(t, err)
}

// The table's figures, checked by hand: mean and sample std (n − 1) over
// the seeds, no std with one seed.
func TestTabulate(t *testing.T) {
	rec := func(p string, seed uint64, p95H, cost float64) Record {
		r := Record{Variant: "v", Policy: p, Seed: seed}
		r.Summary.WaitH.P95, r.Summary.Cost = p95H, cost
		return r
	}
	m := Matrix{Variants: []string{"v"}, Policies: []string{"a", "b"}, Seeds: []uint64{1, 2, 3}}
	tb, err := Tabulate(m, []Record{rec("a", 1, 0.1, 2), rec("a", 2, 0.2, 4), rec("a", 3, 0.3, 9), rec("b", 1, 1, 1), rec("b", 2, 1, 1), rec("b", 3, 1, 1)})
	require.NoError(t, err)
	require.Len(t, tb.Rows, 2)
	a := tb.Rows[0]
	assert.Equal(t, "a", a.Policy)
	assert.InDelta(t, 12.0, a.Cells[1].Mean, 1e-9, "p95 wait in minutes: (6+12+18)/3")
	require.NotNil(t, a.Cells[1].Std)
	assert.InDelta(t, 6.0, *a.Cells[1].Std, 1e-9)
	assert.InDelta(t, 5.0, a.Cells[4].Mean, 1e-9)
	assert.InDelta(t, 3.605551275, *a.Cells[4].Std, 1e-9, "sqrt((9+1+16)/2)")
	assert.InDelta(t, 0.0, *tb.Rows[1].Cells[4].Std, 1e-12)

	one, err := Tabulate(Matrix{Variants: []string{"v"}, Policies: []string{"a"}, Seeds: []uint64{1}}, []Record{rec("a", 1, 0.5, 3)})
	require.NoError(t, err)
	assert.Nil(t, one.Rows[0].Cells[0].Std)
	var md, tsv strings.Builder
	require.NoError(t, one.Markdown(&md))
	require.NoError(t, one.TSV(&tsv))
	assert.NotContains(t, md.String(), "±", "no std with one seed")
	assert.Contains(t, tsv.String(), "\t30\t\t", "p95 mean, then an empty std")

	_, err = Tabulate(m, []Record{rec("a", 1, 0, 0)})
	assert.Error(t, err)
	_, err = Tabulate(m, []Record{rec("b", 1, 0, 0), rec("a", 2, 0, 0), rec("a", 3, 0, 0), rec("b", 1, 0, 0), rec("b", 2, 0, 0), rec("b", 3, 0, 0)})
	assert.ErrorContains(t, err, "out of place")
}

func TestParsePolicies(t *testing.T) {
	for in, want := range map[string][]string{
		"fgd":            {"fgd"},
		" fgd ,best-fit": {"fgd", "best-fit"},
	} {
		got, err := ParsePolicies(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	all, err := ParsePolicies("all")
	require.NoError(t, err)
	assert.Contains(t, all, "best-fit")
	assert.Greater(t, len(all), 2)
	for _, bad := range []string{"", ",", "nope", "fgd,fgd"} {
		_, err := ParsePolicies(bad)
		assert.Error(t, err, bad)
	}
}

// A failing run or a cancelled context ends the sweep with an error, no
// records.
func TestRunErrors(t *testing.T) {
	v := section7(t)
	boom := Variant{Name: "section7", Config: func(p string, s uint64) (replay.Config, error) {
		if s == 43 {
			return replay.Config{}, errors.New("boom")
		}
		return v.Config(p, s)
	}}
	recs, _, err := (&Sweep{Variants: []Variant{boom}, Matrix: matrix(42, 43), Parallel: 2}).Run(context.Background())
	assert.ErrorContains(t, err, "seed 43: boom")
	assert.Nil(t, recs)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	recs, _, err = (&Sweep{Variants: []Variant{v}, Matrix: matrix(42, 43), Parallel: 2}).Run(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, recs)

	_, _, err = (&Sweep{Variants: []Variant{{Name: "other", Config: v.Config}}, Matrix: matrix(42), Parallel: 1}).Run(context.Background())
	assert.ErrorContains(t, err, "the matrix says")
}
