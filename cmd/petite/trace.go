package main

// traceCommand groups the trace tools (convert, stats, head, sample, gen).
func traceCommand() *command {
	return &command{
		name:    "trace",
		summary: "Read, convert, summarise and generate GPU cluster traces.",
	}
}
