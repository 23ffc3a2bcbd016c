package main

// The conventions every petite command follows. A new command uses these
// helpers rather than its own variants, so the whole tree speaks one way:
//
//   - Examples: every command sets cobra's Example with examples(...): lines
//     "petite ..." are commands, lines "# ..." comments. Each command must run
//     as written from the repository root on the data that ships with it (the
//     embedded demo fleet and workload, traces/samples, traces/testdata,
//     simulator/forecast/testdata);
//     an example may end in "< FILE" to feed FILE on standard input.
//     TestExamples runs every one of them.
//   - Output: what a command prints is chosen with -o/--output (addOutputFlag),
//     with --json kept as an alias of --output json. --format names an input
//     format only.
//   - Seeds: a command that draws random numbers takes --seed, default
//     defaultSeed.
//   - Inputs: a file argument or flag reads "-" as standard input (openInput).
//   - Errors: a command returns errors; the caller of the tree prints one line
//     "petite: ..." on stderr. A wrong call (unknown command or flag, bad
//     argument or flag value) is a usageErr and exits 2; anything else
//     exits 1. Output goes to cmd.OutOrStdout(), whose write errors are caught
//     for the command (execute).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultSeed is the seed every command that draws random numbers uses
// when --seed is not given.
const defaultSeed = 42

// errUsage marks an error caused by how a command was called; such a run
// exits with status 2.
var errUsage = errors.New("usage")

// usageErr formats a usage error that wraps errUsage.
func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// examples formats a command's Example text: one line each, indented as
// cobra's help shows them. Lines starting with "petite " are commands that
// TestExamples runs; the others are comments and should start with "# ".
func examples(lines ...string) string {
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// exampleCommands returns the commands of an Example text, as typed.
func exampleCommands(example string) []string {
	var cmds []string
	for _, l := range strings.Split(example, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "petite ") || l == "petite" {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// outputFlag is a command's -o/--output choice of what it prints, with
// --json as an alias of --output json.
type outputFlag struct {
	fs      *pflag.FlagSet
	value   string
	json    bool
	allowed []string
}

// addOutputFlag adds -o/--output (the first of formats is the default) and
// --json to fs.
func addOutputFlag(fs *pflag.FlagSet, formats ...string) *outputFlag {
	o := &outputFlag{fs: fs, allowed: formats}
	fs.StringVarP(&o.value, "output", "o", formats[0], "what to print: "+strings.Join(formats, " or "))
	fs.BoolVar(&o.json, "json", false, "print JSON (the same as --output json)")
	return o
}

// format returns the chosen output format, or a usage error for one the
// command does not print or for --json beside another --output.
func (o *outputFlag) format() (string, error) {
	if o.json {
		if o.fs.Changed("output") && o.value != "json" {
			return "", usageErr("--json and --output %s exclude each other", o.value)
		}
		return "json", nil
	}
	if !slices.Contains(o.allowed, o.value) {
		return "", usageErr("--output: want %s, got %q", strings.Join(o.allowed, " or "), o.value)
	}
	return o.value, nil
}

// openInput opens path for reading, "-" being the command's standard
// input, and returns the name errors should give it.
func openInput(cmd *cobra.Command, path string) (io.ReadCloser, string, error) {
	if path == "-" {
		return io.NopCloser(cmd.InOrStdin()), "stdin", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, path, fmt.Errorf("open input: %w", err)
	}
	return f, path, nil
}

// noArgs is the Args check of a command that takes no arguments. On a
// command with subcommands a stray word is most likely a mistyped
// subcommand, so it says so and suggests the closest.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasAvailableSubCommands() {
		return unknownCommand(cmd, args[0])
	}
	return usageErr("%s takes no arguments, got %q", cmd.Name(), args)
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageErr("%s", msg)
}

// runGroup runs a command that only groups subcommands: alone it prints its
// help; with a word it is an unknown subcommand.
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return unknownCommand(cmd, args[0])
	}
	return cmd.Help()
}

// flagError turns pflag's parse errors into usage errors, suggesting the
// closest flag for an unknown one.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if s := closestFlag(cmd, name); s != "" {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
	}
	return usageErr("%s", msg)
}

// closestFlag returns the command's flag nearest to name (edit distance at
// most 2, name a prefix of it, or its plural), or "".
func closestFlag(cmd *cobra.Command, name string) string {
	singular := strings.TrimSuffix(name, "s")
	if s, ok := strings.CutSuffix(name, "ies"); ok {
		singular = s + "y"
	}
	best, bestD := "", 3
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) || f.Name == singular {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
