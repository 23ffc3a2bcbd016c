package traces

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// convertAll reads every job of r and writes it as canonical CSV.
func convertAll(t testing.TB, r *Reader) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, FormatCSV, r.Meta())
	require.NoError(t, err)
	for {
		j, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NoError(t, w.Write(&j))
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// checkGolden compares got with testdata/golden/name, or rewrites it under
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run 'go test ./traces -update' to create the golden file")
	require.Equal(t, string(want), string(got))
}

// TestGolden converts each checked-in sample to canonical CSV (format
// sniffed, strict) and compares it with its golden file.
func TestGolden(t *testing.T) {
	tests := []struct {
		path, golden string
		format       Format
		problems     int
	}{
		{"testdata/openb/openb_pod_list_gpuspec33_head.csv", "openb_gpuspec33_head.csv", FormatOpenb, 0},
		{"testdata/openb/openb_pod_list_multigpu20_head.csv", "openb_multigpu20_head.csv", FormatOpenb, 0},
		{"testdata/pai/pai_task_table.csv", "pai.csv", FormatPAI, 0},
		{"testdata/philly/cluster_job_log", "philly.csv", FormatPhilly, 0},
		{"testdata/helios/cluster_log.csv", "helios.csv", FormatHelios, 0},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			r, err := Open(tc.path, Options{Strict: true})
			require.NoError(t, err)
			defer r.Close()
			require.Equal(t, tc.format, r.Meta().Format)
			checkGolden(t, tc.golden, convertAll(t, r))
			require.Equal(t, tc.problems, r.Problems().Skipped)
		})
	}
}
