package traces

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Philly file with broken JSON syntax names the line and column of the
// fault, as jq does, wherever it is: inside a job, between jobs, at the
// start, at a cut end, and far into a long file (past what the decoder
// buffers).
func TestPhillySyntaxPosition(t *testing.T) {
	job := func(id string) string {
		return `{"status": "Pass", "jobid": "` + id + `",` + "\n" + `  "attempts": [], "submitted_time": "None", "user": "u"}`
	}
	var long strings.Builder
	long.WriteString("[\n")
	for i := range 3000 {
		if i > 0 {
			long.WriteString(",\n")
		}
		long.WriteString(job("j"))
	}
	tests := []struct {
		name, in string
		jobs     int
		want     string
	}{
		{"inside a job", "[\n" + job("a") + ",\n" + `{"status": "Pass", "jobid": x}` + "]", 1, `log:4:29: $[1]: not valid JSON: invalid character 'x'`},
		{"missing comma", "[\n" + job("a") + "\n  " + job("b") + "]", 1, "log:4:3: $[1]: not valid JSON: expected comma"},
		{"comma before the end", "[\n" + job("a") + ",\n]", 1, "log:4:1: $[1]: not valid JSON"},
		{"first byte", "[x", 0, "log:1:2: $[0]: not valid JSON"},
		{"cut short", "[\n" + job("a") + ",\n" + `{"status": "Pa`, 1, "log:4:15: $[1]: not valid JSON: unexpected EOF"},
		{"far in", long.String() + ",\n  {\"jobid\" \"z\"}]", 3000, `log:6002:12: $[3000]: not valid JSON: invalid character '"' after object key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewPhillyReader(strings.NewReader(tc.in), "log", Options{})
			require.NoError(t, err)
			n := 0
			for {
				_, err = r.Next()
				if err != nil {
					break
				}
				n++
			}
			require.Error(t, err)
			require.False(t, errors.Is(err, io.EOF), "want a syntax error")
			assert.Equal(t, tc.jobs, n)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), "error %q, want it to start %q", err, tc.want)
		})
	}
}
