package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/simulator/frag"
)

// petite runs the program as main does, with stdin, and returns its exit
// status and what it printed.
func petite(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code = run(context.Background(), args, stdin, &out, &errb)
	return code, out.String(), errb.String()
}

// inShippedTree makes a temporary directory that looks like the
// repository root to a user (the shipped data under traces/, scheduler/
// and simulator/) and makes it the working directory, so commands that write
// files write them there.
func inShippedTree(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	for _, d := range []string{"traces", "scheduler", "simulator", "docs", "examples", "README.md"} {
		require.NoError(t, os.Symlink(filepath.Join(repo, d), filepath.Join(dir, d)))
	}
	t.Chdir(dir)
	return repo
}

// shellWords splits a command line as a shell would for the simple lines
// examples use: words, '...' and "..." quoting, and a final "< FILE".
func shellWords(t *testing.T, line string) (args []string, stdin string) {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			require.NotContains(t, "|>;&$`", string(r), "example %q: only plain commands and '< FILE' are run", line)
			cur.WriteRune(r)
			inWord = true
		}
	}
	require.Zero(t, quote, "example %q: unclosed quote", line)
	if inWord {
		words = append(words, cur.String())
	}
	if n := len(words); n >= 2 && words[n-2] == "<" {
		return words[:n-2], words[n-1]
	}
	return words, ""
}

// runLine runs one typed command line ("petite ...") through main's entry
// point and fails the test unless it exits 0 and prints something.
func runLine(t *testing.T, line string) {
	t.Helper()
	words, in := shellWords(t, line)
	require.Equal(t, "petite", words[0], line)
	var stdin io.Reader = strings.NewReader("")
	if in != "" {
		f, err := os.Open(in)
		require.NoError(t, err, line)
		defer f.Close()
		stdin = f
	}
	before := filesHere(t)
	code, out, errOut := petite(t, stdin, words[1:]...)
	require.Equal(t, exitOK, code, "%s\nstderr: %s", line, errOut)
	if strings.TrimSpace(out+errOut) == "" {
		assert.NotEqual(t, before, filesHere(t), "%s prints nothing and writes no file", line)
	}
}

// filesHere lists the files under the working directory (not through the
// links to the shipped data) with their sizes and times.
func filesHere(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	require.NoError(t, filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[path] = fmt.Sprint(info.Size(), info.ModTime().UnixNano())
		return nil
	}))
	return files
}

// walk calls f on every command of the tree users can reach.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() || s.Name() == "help" {
			walk(s, f)
		}
	}
}

// Every command has examples, and every example runs on the shipped data
// as a user types it.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every example, sweeps included")
	}
	inShippedTree(t)
	walk(newRootCommand(nil, io.Discard, io.Discard), func(c *cobra.Command) {
		cmds := exampleCommands(c.Example)
		if !assert.NotEmpty(t, cmds, "%q has no examples", c.CommandPath()) || talksToServer(c) {
			return // a server's commands run against a dev server: TestServerExamples
		}
		for _, line := range cmds {
			t.Run(line, func(t *testing.T) { runLine(t, line) })
		}
	})
}

// The README's shell commands run. make targets map to what they run;
// those that run the suite itself or take minutes are skipped, with the
// reason.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands")
	}
	repo := inShippedTree(t)
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	require.NoError(t, err)
	make := map[string]string{
		"make demo":  makeRecipe(t, filepath.Join(repo, "Makefile"), "demo"),
		"make build": "", // builds bin/petite: this test runs the same code in-process
	}
	skip := map[string]string{
		"make test":       "is the suite this test is part of",
		"make lint":       "runs gofmt and go vet, not petite",
		"make bench":      "takes minutes and measures, not checks",
		"make fuzz":       "takes FUZZTIME per fuzz target",
		"make chaos":      "runs 20 seeds of the chaos harness, about 25 minutes",
		"make frag-sweep": "needs the full openb trace outside the repository and takes minutes",
	}
	lines := readmeShellLines(string(readme))
	require.NotEmpty(t, lines)
	ran := 0
	for _, line := range lines {
		t.Run(line, func(t *testing.T) {
			if why, ok := skip[line]; ok {
				t.Skipf("%s %s", line, why)
			}
			if strings.HasPrefix(line, "make ") {
				cmd, ok := make[line]
				require.True(t, ok, "README runs %q: map it to what it runs or skip it with a reason", line)
				if cmd == "" {
					return
				}
				line = cmd
			}
			ran++
			runLine(t, line)
		})
	}
	assert.Positive(t, ran, "at least one README command ran")
}

// makeRecipe returns the petite command a Makefile target runs, from its
// "./bin/petite ..." recipe line, as a user would type it.
func makeRecipe(t *testing.T, makefile, target string) string {
	t.Helper()
	b, err := os.ReadFile(makefile)
	require.NoError(t, err)
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, target+":"):
			in = true
		case in && strings.HasPrefix(l, "\t./bin/petite "):
			return strings.TrimPrefix(l, "\t./bin/")
		case in && !strings.HasPrefix(l, "\t"):
			in = false
		}
	}
	t.Fatalf("%s: target %s runs no ./bin/petite command", makefile, target)
	return ""
}

// readmeShellLines returns the commands of the ```sh blocks of a Markdown
// text, without trailing comments.
func readmeShellLines(md string) []string {
	var lines []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(md))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
		case strings.HasPrefix(l, "```"):
			in = false
		case in:
			if i := strings.Index(l, " #"); i >= 0 {
				l = strings.TrimSpace(l[:i])
			}
			if l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the one line on stderr
	}{
		{[]string{"plac"}, `unknown command "plac" for "petite"; did you mean "place"?`},
		{[]string{"sim", "fragg"}, `unknown command "fragg" for "petite sim"; did you mean "frag"?`},
		{[]string{"sim", "frag", "swep"}, `unknown command "swep" for "petite sim frag"; did you mean "sweep"?`},
		{[]string{"trace", "stat"}, `did you mean "stats"?`},
		{[]string{"place", "--polcy", "fgd"}, "unknown flag: --polcy; did you mean --policy?"},
		{[]string{"place", "--policies", "fgd"}, "unknown flag: --policies; did you mean --policy?"},
		{[]string{"validate", "--pod", "x"}, "unknown flag: --pod; did you mean --pods?"},
		{[]string{"place", "extra"}, `place takes no arguments, got ["extra"]`},
		{[]string{"place", "--policy", "nope"}, `unknown policy "nope"`},
		{[]string{"place", "-o", "yaml"}, `--output: want table or json, got "yaml"`},
		{[]string{"place", "--json", "-o", "table"}, "--json and --output table exclude each other"},
		{[]string{"place", "--seed", "x"}, `invalid argument "x" for "--seed"`},
		{[]string{"version", "x"}, "version takes no arguments"},
		{[]string{"help", "nosuch"}, `unknown command "nosuch" for "petite"`},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "petite completion"`},
		{[]string{"completion", "bash", "x"}, `unknown command "x" for "petite completion bash"`},
		{[]string{"trace", "stats"}, "stats takes one FILE"},
		{[]string{"trace", "gen", "--fit", "a", "--spec", "b"}, "--fit and --spec exclude each other"},
		{[]string{"sim", "frag", "--inflate", "-1"}, "--inflate"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := petite(t, nil, tc.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.True(t, strings.HasPrefix(errOut, "petite: "), errOut)
			assert.Contains(t, errOut, tc.want)
			assert.Contains(t, errOut, "--help')", "points at the help")
		})
	}
}

func TestRunErrorsExit1(t *testing.T) {
	for _, args := range [][]string{
		{"place", "--fleet", "no-such-fleet.yaml"},
		{"trace", "stats", "no-such-trace.csv"},
		{"sim", "frag", "--pods", "no-such-pods.csv"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, errOut := petite(t, nil, args...)
			assert.Equal(t, exitError, code)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Contains(t, errOut, "no-such-")
		})
	}
}

func TestHelpVersionCompletion(t *testing.T) {
	code, viaHelp, _ := petite(t, nil, "help", "place")
	require.Equal(t, exitOK, code)
	_, viaFlag, _ := petite(t, nil, "place", "--help")
	assert.Equal(t, viaFlag, viaHelp, "petite help CMD is CMD --help")
	assert.Contains(t, viaHelp, "Examples:\n  # the demo")
	assert.Contains(t, viaHelp, "-o, --output string")

	_, groupHelp, _ := petite(t, nil, "sim")
	assert.Contains(t, groupHelp, "Available Commands:")

	code, v, _ := petite(t, nil, "--version")
	require.Equal(t, exitOK, code)
	_, v2, _ := petite(t, nil, "version")
	assert.Equal(t, v2, v)
	assert.True(t, strings.HasPrefix(v, "petite "+version+" ("), v)

	for shell, want := range map[string]string{"bash": "complete -o default", "zsh": "#compdef petite", "fish": "complete -c petite"} {
		code, out, _ := petite(t, nil, "completion", shell)
		require.Equal(t, exitOK, code, shell)
		assert.Contains(t, out, want, shell)
	}
	// The completion script asks the tree; the tree answers with commands.
	_, out, _ := petite(t, nil, "__complete", "sim", "frag", "sw")
	assert.Contains(t, out, "sweep")
}

// failingWriter fails every write, as a full disk does.
type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// flushFailing accepts writes and fails at Flush, as a buffered stream
// over a full disk does.
type flushFailing struct{ bytes.Buffer }

func (*flushFailing) Flush() error { return errors.New("no space left on device") }

// A failed write to standard output fails the run with one line, whether
// the command checked the write or not.
func TestWriteErrorsExit1(t *testing.T) {
	cmds := [][]string{
		{"place"},
		{"place", "-o", "json"},
		{"sim", "frag", "--list-policies"},
		{"sim", "frag", "--policy", "best-fit"},
		{"trace", "stats", "../../traces/samples/openb_pod_list_default.csv"},
		{"version"},
		{"--version"},
		{"help"},
	}
	devFull, _ := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if devFull != nil {
		defer devFull.Close()
	}
	for _, args := range cmds {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			sinks := map[string]io.Writer{
				"failing writer": failingWriter{errors.New("disk full")},
				"failing flush":  &flushFailing{},
			}
			if devFull != nil {
				sinks["/dev/full"] = devFull
			}
			for name, w := range sinks {
				var errb bytes.Buffer
				code := run(context.Background(), args, strings.NewReader(""), w, &errb)
				assert.Equal(t, exitError, code, name)
				assert.Equal(t, 1, strings.Count(errb.String(), "\n"), "%s: one line: %q", name, errb.String())
				assert.True(t, strings.HasPrefix(errb.String(), "petite: writing output: "), "%s: %q", name, errb.String())
			}
		})
	}
}

func TestShellWords(t *testing.T) {
	args, in := shellWords(t, `petite a 'b c' "d" < f.txt`)
	assert.Equal(t, []string{"petite", "a", "b c", "d"}, args)
	assert.Equal(t, "f.txt", in)
}

// The README tells what the tree does: every command is in its table, the
// cost tier's default and how to turn it off, which policies "all" runs,
// and nvml/ as absent while it is.
func TestREADMEFacts(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(repo, "README.md"))
	require.NoError(t, err)
	readme := string(b)
	for _, c := range newRootCommand(nil, io.Discard, io.Discard).Commands() {
		if c.IsAvailableCommand() || c.Name() == "help" {
			assert.Contains(t, readme, "| `petite "+c.Name(), "the commands table lists %s", c.Name())
		}
	}
	assert.Contains(t, readme, "`--cost=false` turns it off")
	_, allPara, ok := strings.Cut(readme, "`all` is")
	require.True(t, ok)
	allPara, _, _ = strings.Cut(allPara, "\n\n")
	for _, p := range append(append([]string{}, frag.PublishedPolicies...), frag.OwnPolicies...) {
		assert.Contains(t, allPara, "`"+p+"`", "README says `all` runs %s", p)
	}
	if _, err := os.Stat(filepath.Join(repo, "nvml")); os.IsNotExist(err) {
		assert.Contains(t, readme, "arrives with the daemon")
	}
}
