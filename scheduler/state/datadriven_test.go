package state

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// update rewrites golden files and transcripts with what the code does now.
var update = flag.Bool("update", false, "rewrite testdata golden files and transcripts")

// tcase is one case of a transcript, in the style of etcd-raft's
// datadriven package: a directive line, optional input lines, "----", and
// the expected output up to a blank line.
type tcase struct {
	pre    []string // comments and blank lines before the case, verbatim
	line   int      // line number of the directive
	cmd    string
	args   []string
	input  []string
	output string
}

// parseTranscript reads the cases of a transcript file and the lines that
// trail the last case.
func parseTranscript(t *testing.T, path string) ([]tcase, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var cases []tcase
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		c := tcase{pre: pre, line: i + 1}
		pre = nil
		f := strings.Fields(l)
		c.cmd, c.args = f[0], f[1:]
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			c.input = append(c.input, lines[i])
		}
		require.Less(t, i, len(lines), "%s:%d: directive %q has no ---- line", path, c.line, c.cmd)
		var out []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		c.output = strings.Join(out, "\n")
		cases = append(cases, c)
		if i < len(lines) {
			pre = append(pre, lines[i])
		}
	}
	return cases, pre
}

// runTranscript replays a transcript through run, comparing (or, with
// -update, rewriting) every case's output.
func runTranscript(t *testing.T, path string, run func(t *testing.T, c *tcase) string) {
	t.Helper()
	cases, trail := parseTranscript(t, path)
	var b strings.Builder
	for i := range cases {
		c := &cases[i]
		got := strings.TrimRight(run(t, c), "\n")
		require.NotContains(t, got, "\n\n", "%s:%d: output must have no blank line", path, c.line)
		if !*update {
			require.Equal(t, c.output, got, "%s:%d: %s %s", path, c.line, c.cmd, strings.Join(c.args, " "))
		}
		for _, l := range c.pre {
			b.WriteString(l + "\n")
		}
		b.WriteString(strings.Join(append([]string{c.cmd}, c.args...), " ") + "\n")
		for _, l := range c.input {
			b.WriteString(l + "\n")
		}
		b.WriteString("----\n" + got + "\n")
	}
	for _, l := range trail {
		b.WriteString(l + "\n")
	}
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
}

// transcripts lists the transcript files of testdata.
func transcripts(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

// args is a directive's key=value arguments; a bare word is a flag.
type args map[string]string

func parseArgs(fields []string) args {
	a := args{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		a[k] = v
	}
	return a
}

// words splits input lines into fields, dropping blank lines.
func words(lines []string) [][]string {
	var out [][]string
	sc := bufio.NewScanner(strings.NewReader(strings.Join(lines, "\n")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

func (a args) str(k, def string) string {
	if v, ok := a[k]; ok {
		return v
	}
	return def
}

func (a args) int(t *testing.T, k string, def int64) int64 {
	t.Helper()
	v, ok := a[k]
	if !ok {
		return def
	}
	var n int64
	_, err := fmt.Sscan(v, &n)
	require.NoError(t, err, "argument %s=%q", k, v)
	return n
}

func (a args) ints(t *testing.T, k string) []int {
	t.Helper()
	v, ok := a[k]
	if !ok || v == "" {
		return nil
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		var n int
		_, err := fmt.Sscan(s, &n)
		require.NoError(t, err, "argument %s=%q", k, v)
		out = append(out, n)
	}
	return out
}

func (a args) list(k string) []string {
	v, ok := a[k]
	if !ok || v == "" {
		return nil
	}
	return strings.Split(v, ",")
}
