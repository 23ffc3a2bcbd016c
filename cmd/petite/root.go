package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// newRootCommand builds petite's command tree over the given streams.
func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "petite",
		Short: "A GPU-aware workload scheduler and capacity simulator.",
		Long: `petite places GPU workloads on fleets that mix cloud regions, outposts and
on-prem clusters, with one placement core driven by two drivers: a
replicated daemon (petite server, petite job) and a simulator (petite sim).`,
		Example: examples(
			"# what does retiring the demo fleet's on-prem hall cost?",
			"petite sim run --scenario examples/scenarios/retire-onprem.yaml",
			"# place the demo workload on the demo fleet",
			"petite place",
			"# the commands and their help",
			"petite help place",
		),
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE:          runGroup,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("petite {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		versionCommand(),
		placeCommand(),
		validateCommand(),
		traceCommand(),
		simCommand(),
		nvmlCommand(),
		serverCommand(), agentCommand(), jobCommand(), nodeCommand(), poolCommand(), operatorCommand(),
		tlsCommand(), tokenCommand(),
	)
	root.SetHelpCommand(helpCommand())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd() // after SetOut: it keeps the stream it finds
	finishTree(root)
	return root
}

// finishTree applies the tree-wide conventions to commands petite did not
// write itself (completion) as to its own: a group without a run of its own
// prints its help or names an unknown subcommand, and every argument error
// is a usage error.
func finishTree(c *cobra.Command) {
	c.SuggestionsMinimumDistance = 2
	if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
		c.Args, c.RunE = cobra.ArbitraryArgs, runGroup
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				if !errors.Is(err, errUsage) {
					err = usageErr("%v", err)
				}
				return err
			}
			return nil
		}
	}
	if c.Example == "" && c.Name() == "completion" {
		c.Example = examples("petite completion bash", "# in ~/.bashrc: source <(petite completion bash)")
	}
	if p := c.Parent(); c.Example == "" && p != nil && p.Name() == "completion" {
		c.Example = examples("petite completion " + c.Name())
	}
	for _, s := range c.Commands() {
		finishTree(s)
	}
}

// helpCommand is `petite help [COMMAND...]`: the help of a command; an
// unknown one is a usage error.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND...]",
		Short: "Help about any command",
		Long:  "Prints the help of petite or of the command named, as 'petite COMMAND --help' does.",
		Example: examples(
			"petite help",
			"petite help sim frag",
		),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil {
				return usageErr("%v", err)
			}
			if len(rest) > 0 {
				return unknownCommand(target, rest[0])
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			target, _, err := cmd.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, s := range target.Commands() {
				if s.IsAvailableCommand() {
					out = append(out, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
	}
}

func versionString() string {
	return fmt.Sprintf("%s (%s, %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print petite's version.",
		Example: examples("petite version", "petite --version"),
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "petite %s\n", versionString())
			return err
		},
	}
}

// newRand is the one seeded random source the CLI hands to the core.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }
