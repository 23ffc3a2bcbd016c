package traces

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces/samples"
)

// canonicalOf converts the embedded openb default list to canonical f.
func canonicalOf(t *testing.T, f Format) []byte {
	t.Helper()
	r, err := NewReader(bytes.NewReader(samples.OpenbDefaultPods()), "openb_pod_list_default.csv", Options{Strict: true})
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, f, r.Meta())
	require.NoError(t, err)
	for j, err := range r.All() {
		require.NoError(t, err)
		require.NoError(t, w.Write(&j))
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// readCanonical reads in and returns the job IDs, the problems and the
// error that ended the read (nil at a clean end).
func readCanonical(in []byte, strict bool) ([]string, Problems, error) {
	r, err := NewReader(bytes.NewReader(in), "cut.csv", Options{Strict: strict})
	if err != nil {
		return nil, Problems{}, err
	}
	var ids []string
	for j, err := range r.All() {
		if err != nil {
			return ids, r.Problems(), err
		}
		ids = append(ids, j.ID)
	}
	return ids, r.Problems(), nil
}

// A canonical file cut short is an error under Strict and a counted bad
// record otherwise; it never yields a phantom job. The openb default list,
// converted and cut at byte 30,000, once read as 365 jobs ending in "ope".
func TestCanonicalCut(t *testing.T) {
	full := canonicalOf(t, FormatCSV)
	require.True(t, bytes.HasSuffix(full, []byte("\n#petite-trace end rows=8152\n")), "a trailer with the row count")

	ids, p, err := readCanonical(full, true)
	require.NoError(t, err)
	require.Len(t, ids, 8152)
	require.Zero(t, p.Skipped)
	require.Empty(t, p.Warnings)

	cut := full[:30000]
	_, _, err = readCanonical(cut, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cut.csv:367: the file ends inside this row")

	ids, p, err = readCanonical(cut, false)
	require.NoError(t, err)
	assert.Len(t, ids, 364)
	assert.NotContains(t, ids, "ope")
	assert.Equal(t, "openb-pod-0363", ids[len(ids)-1])
	assert.Equal(t, 1, p.Skipped)

	// Cut at a line end: the rows are whole, the trailer is missing.
	atLine := full[:bytes.LastIndexByte(cut, '\n')+1]
	_, _, err = readCanonical(atLine, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no trailer")
	ids, p, err = readCanonical(atLine, false)
	require.NoError(t, err)
	assert.Len(t, ids, 364)
	assert.Zero(t, p.Skipped)
	require.Len(t, p.Warnings, 1)
	assert.Contains(t, p.Warnings[0], "no trailer")

	// Cut inside the trailer: its count no longer matches.
	inTrailer := full[:len(full)-2]
	_, _, err = readCanonical(inTrailer, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cut.csv:8155: field rows: want 8152")
	// Cut just before the trailer's newline: nothing is lost.
	ids, _, err = readCanonical(full[:len(full)-1], true)
	require.NoError(t, err)
	assert.Len(t, ids, 8152)
}

// The same for JSON Lines: the trailer counts the jobs.
func TestCanonicalJSONLCut(t *testing.T) {
	full := canonicalOf(t, FormatJSONL)
	require.True(t, bytes.HasSuffix(full, []byte("\n"+`{"petite_trace":"end","jobs":8152}`+"\n")))
	ids, p, err := readCanonical(full, true)
	require.NoError(t, err)
	require.Len(t, ids, 8152)
	require.Empty(t, p.Warnings)

	for _, cut := range []int{30000, bytes.IndexByte(full[30000:], '\n') + 30001} {
		_, _, err = readCanonical(full[:cut], true)
		require.Error(t, err, "cut at %d", cut)
		ids, p, err := readCanonical(full[:cut], false)
		require.NoError(t, err)
		assert.Greater(t, len(ids), 100)
		assert.Equal(t, 1, p.Skipped+len(p.Warnings), "cut at %d: one bad record or one warning", cut)
	}
	// A trailer that disagrees with the lines above it.
	bad := bytes.Replace(full, []byte(`"jobs":8152`), []byte(`"jobs":8153`), 1)
	_, _, err = readCanonical(bad, true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "want 8152")
}

// Files written before the trailer: read whole when they end in a newline,
// with a warning; a last row without its newline is a bad record.
func TestCanonicalWithoutTrailer(t *testing.T) {
	hdr := "#petite-trace v1 clock=unix zone=UTC\njob_id,submit,tenant\n"
	tests := []struct {
		name    string
		in      string
		ids     []string
		skipped int
		warn    string
	}{
		{"ends with a newline", hdr + "a,1,x\nb,2,y\n", []string{"a", "b"}, 0, "no trailer"},
		{"last row without newline", hdr + "a,1,x\nb,2,y", []string{"a"}, 1, ""},
		{"header only", hdr, nil, 0, "no trailer"},
		{"trailer", hdr + "a,1,x\nb,2,y\n#petite-trace end rows=2\n", []string{"a", "b"}, 0, ""},
		{"trailer, count wrong", hdr + "a,1,x\nb,2,y\n#petite-trace end rows=3\n", []string{"a", "b"}, 1, ""},
		{"trailer, count missing", hdr + "a,1,x\n#petite-trace end\n", []string{"a"}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, p, err := readCanonical([]byte(tc.in), false)
			require.NoError(t, err)
			assert.Equal(t, tc.ids, ids)
			assert.Equal(t, tc.skipped, p.Skipped, "%v", p.Examples)
			if tc.warn == "" {
				assert.Empty(t, p.Warnings)
			} else {
				require.Len(t, p.Warnings, 1)
				assert.Contains(t, p.Warnings[0], tc.warn)
			}
			_, _, err = readCanonical([]byte(tc.in), true)
			assert.Equal(t, tc.skipped == 0 && tc.warn == "", err == nil, "strict: %v", err)
		})
	}
}

// Anything after the trailer (two files joined, say) ends the read.
func TestCanonicalAfterTrailer(t *testing.T) {
	one := "#petite-trace v1 clock=unix zone=UTC\njob_id,submit\na,1\n#petite-trace end rows=1\n"
	_, _, err := readCanonical([]byte(one+one), false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cut.csv:5: content after the trailer on line 4")
	jl := `{"id":"a","submit":1}` + "\n" + `{"petite_trace":"end","jobs":1}` + "\n"
	_, _, err = readCanonical([]byte(jl+jl), false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cut.csv:3: content after the trailer on line 2")
}

// The canonical CSV's line numbers count the meta line.
func TestCanonicalLines(t *testing.T) {
	in := "#petite-trace v1 clock=unix zone=UTC\njob_id,submit,tenant\na,1,x\nb,x,y\n"
	_, p, err := readCanonical([]byte(in), false)
	require.NoError(t, err)
	require.Len(t, p.Examples, 1)
	assert.True(t, strings.HasPrefix(p.Examples[0], "cut.csv:4: field submit"), p.Examples[0])
}
