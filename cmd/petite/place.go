package main

// placeCommand places a workload on a fleet with the scheduler core.
func placeCommand() *command {
	return &command{
		name:    "place",
		summary: "Place a workload on a fleet and print the placement summary.",
	}
}
