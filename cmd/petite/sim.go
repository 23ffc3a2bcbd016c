package main

// simCommand groups the simulator's experiments.
func simCommand() *command {
	return &command{
		name:    "sim",
		summary: "Simulate placement over a fleet: experiments and scenarios.",
		subs: []*command{
			simFragCommand(),
		},
	}
}
