package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"petite/scheduler/api"
	"petite/traces"
)

// traceExportCommand is `petite trace export`: the jobs a running cluster
// has seen, as a canonical trace the simulator replays.
func traceExportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the jobs a running cluster has seen as a canonical trace (for petite sim run).",
		Long: `Asks a server (--address, else $PETITE_ADDR) for its job history: every job
that ended (succeeded, failed, or cancelled: "killed") with its submit, start and
end times, tasks, tenant and priority, in petite's canonical trace format.
The servers keep the last 100,000 jobs to end. --live adds the jobs still queued
or running (no end yet: replay them with --default-duration).

The trace replays under another policy or fleet:
  petite trace export -o history.csv
  petite sim run --trace history.csv --policy best-fit`,
		Example: examples(
			"petite trace export -o history.csv",
			"petite trace export --since 2026-11-01T00:00:00Z --format petite-jsonl --live",
		),
		Args:        noArgs,
		Annotations: map[string]string{needsServer: "talks to a server"},
	}
	addr := addAddressFlag(cmd.Flags())
	since := cmd.Flags().String("since", "", "only jobs submitted at or after this time (RFC 3339 or Unix seconds)")
	out := cmd.Flags().StringP("output", "o", "-", "file to write ('-': standard output); written whole or not at all")
	format := cmd.Flags().String("format", string(traces.FormatCSV), "petite-csv or petite-jsonl")
	live := cmd.Flags().Bool("live", false, "add the jobs still queued or running")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := api.HistoryQuery{Live: *live, Format: traces.Format(*format)}
		if q.Format != traces.FormatCSV && q.Format != traces.FormatJSONL {
			return usageErr("--format: want %s or %s, got %q", traces.FormatCSV, traces.FormatJSONL, *format)
		}
		if *since != "" {
			if t, err := time.Parse(time.RFC3339, *since); err == nil {
				q.Since = t.Unix()
			} else if n, err := strconv.ParseInt(*since, 10, 64); err == nil && n >= 0 {
				q.Since = n
			} else {
				return usageErr("--since: want an RFC 3339 time or Unix seconds, got %q", *since)
			}
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := cl.History(cmd.Context(), q, &b); err != nil {
			return clientError(cl, err)
		}
		if *out == "-" {
			_, err := cmd.OutOrStdout().Write(b.Bytes())
			return err
		}
		if err := writeFileWhole(*out, b.Bytes()); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		return nil
	}
	return cmd
}
