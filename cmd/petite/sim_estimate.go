package main

import (
	"fmt"
	"io"

	"petite/scheduler/api"
)

// printEstimate prints a queued job's estimated start (a replay of the
// live queue by the server) and what it assumed, or why there is none.
func printEstimate(w io.Writer, j api.Job) {
	switch {
	case j.EstimatedStart != "":
		fmt.Fprintf(w, "  estimated start: %s (%s)\n", j.EstimatedStart, j.EstimateNote)
	case j.EstimateNote != "":
		fmt.Fprintf(w, "  estimated start: none (%s)\n", j.EstimateNote)
	}
}
