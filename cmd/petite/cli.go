package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// command is one node of petite's command tree. A command either runs
// (run != nil) or only groups subcommands; --help works on every level.
type command struct {
	name    string
	summary string
	usage   string // arguments after the command path, e.g. "IN OUT"
	long    string
	// flags declares the command's flags on fs and returns the function
	// that runs it once the flags are parsed.
	flags func(fs *pflag.FlagSet) func(args []string) error
	subs  []*command
}

// errUsage marks an error caused by how the command was called; main prints
// the usage hint after it.
var errUsage = errors.New("usage")

// usageErr formats a usage error that wraps errUsage.
func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// execute walks args down the tree and runs the command it lands on.
func (c *command) execute(path string, args []string, stdout, stderr io.Writer) error {
	if len(c.subs) > 0 && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		for _, s := range c.subs {
			if s.name == args[0] {
				return s.execute(path+" "+s.name, args[1:], stdout, stderr)
			}
		}
		if c.flags == nil {
			return usageErr("unknown command %q for %q (see '%s --help')", args[0], path, path)
		}
	}
	fs := pflag.NewFlagSet(path, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	var run func([]string) error
	if c.flags != nil {
		run = c.flags(fs)
	}
	help := fs.BoolP("help", "h", false, "show help for this command")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			c.printHelp(path, fs, stdout)
			return nil
		}
		return usageErr("%v (see '%s --help')", err, path)
	}
	if *help || run == nil {
		c.printHelp(path, fs, stdout)
		if run == nil && !*help && len(args) == 0 {
			return nil
		}
		return nil
	}
	return run(fs.Args())
}

func (c *command) printHelp(path string, fs *pflag.FlagSet, w io.Writer) {
	if c.summary != "" {
		fmt.Fprintf(w, "%s\n\n", c.summary)
	}
	if c.long != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.long))
	}
	fmt.Fprintf(w, "Usage:\n")
	if c.flags != nil {
		u := path
		if fs.HasFlags() {
			u += " [flags]"
		}
		if c.usage != "" {
			u += " " + c.usage
		}
		fmt.Fprintf(w, "  %s\n", u)
	}
	if len(c.subs) > 0 {
		fmt.Fprintf(w, "  %s COMMAND [flags]\n\nCommands:\n", path)
		subs := append([]*command(nil), c.subs...)
		sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
		for _, s := range subs {
			fmt.Fprintf(w, "  %-12s %s\n", s.name, s.summary)
		}
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
	if len(c.subs) > 0 {
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for more about a command.\n", path)
	}
}

func main() {
	root := rootCommand()
	if err := root.execute("petite", os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "petite: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
