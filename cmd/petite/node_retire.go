package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"petite/scheduler/api"
)

// nodeRetireCommand is `petite node retire`: a node's own retirement
// date, drained from server.drain.retire_lead before it and retired on it.
func nodeRetireCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retire NAME (--at RFC3339|now | --cancel)",
		Short: "Retire a node on a date: it drains from the server's retire lead before, retired on the date.",
		Long: `Sets a node's own retirement date, which replaces its pool's retire_at. The
leader drains the node from server.drain.retire_lead (default 72h) before the
date, moving its work elsewhere, and sets it retired on the date. --at now
retires it at once; --cancel withdraws a date not yet reached (a node already
draining for it stays draining: petite node drain NAME --disable).`,
		Example: examples(
			"petite node retire sh-h100-0001 --at 2030-03-01T00:00:00Z",
			"petite node retire sh-h100-0001 --cancel --json",
		),
		Args: exactArgs(1, "retire takes one node NAME"),
	}
	at := cmd.Flags().String("at", "", `the date, RFC 3339 (2030-03-01T00:00:00Z), or "now"`)
	cancel := cmd.Flags().Bool("cancel", false, "withdraw the node's date, if not yet reached")
	output := addOutputFlag(cmd.Flags(), "table", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		if (*at == "") == !*cancel {
			return usageErr("retire takes --at RFC3339|now or --cancel, one of the two")
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		n, err := cl.RetireNode(cmd.Context(), args[0], api.RetireRequest{At: *at, Cancel: *cancel})
		if err != nil {
			return clientError(cl, err)
		}
		if format == "json" {
			return writeJSONOut(cmd.OutOrStdout(), n)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "node %s: %s, retires %s\n", n.Name, n.State, orDash(n.RetireAt))
		return nil
	}
	return cmd
}
