package main

import "github.com/spf13/cobra"

// simCommand groups the simulator's experiments.
func simCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "sim",
		Short: "Simulate placement over a fleet: experiments and scenarios.",
		Example: examples(
			"# one run of the fragmentation experiment on the embedded openb data",
			"petite sim frag",
		),
	}
	c.AddCommand(simFragCommand())
	c.AddCommand(simRunCommand())
	c.AddCommand(simForecastCommand())
	c.AddCommand(simSizeCommand())
	c.AddCommand(simSweepCommand())
	return c
}
