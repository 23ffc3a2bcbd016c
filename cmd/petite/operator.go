package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"petite/scheduler/api"
)

func nodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:         "node",
		Short:       "List nodes, drain them and retire them on a running server.",
		Example:     examples("petite node status", "petite node drain sh-h100-0001", "petite node retire sh-h100-0001 --at 2030-03-01T00:00:00Z"),
		Annotations: map[string]string{needsServer: "talks to a server"},
	}
	addr := addAddressFlag(cmd.PersistentFlags())

	status := &cobra.Command{
		Use:   "status [NAME]",
		Short: "List the nodes with their free capacity, or show one.",
		Example: examples(
			"petite node status",
			"petite node status --pool cloud-sh-ondemand",
			"petite node status hz-t4-0001 --json",
		),
		Args: maxArgs(1, "status takes at most one node NAME"),
	}
	pool := status.Flags().String("pool", "", "only the nodes of this pool")
	output := addOutputFlag(status.Flags(), "table", "json")
	status.RunE = func(cmd *cobra.Command, args []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		var nodes []api.Node
		if len(args) == 1 {
			n, err := cl.Node(cmd.Context(), args[0])
			if err != nil {
				return clientError(cl, err)
			}
			if format == "json" {
				return writeJSONOut(cmd.OutOrStdout(), n)
			}
			nodes = []api.Node{n}
		} else if nodes, err = cl.Nodes(cmd.Context(), *pool); err != nil {
			return clientError(cl, err)
		}
		if format == "json" {
			return writeJSONOut(cmd.OutOrStdout(), nodes)
		}
		return printNodes(cmd.OutOrStdout(), nodes)
	}

	drain := &cobra.Command{
		Use:   "drain NAME",
		Short: "Drain a node: no new work goes there, its work moves elsewhere (--disable: ready again).",
		Example: examples(
			"petite node drain sh-h100-0001",
			"petite node drain sh-h100-0001 --disable",
		),
		Args: exactArgs(1, "drain takes one node NAME"),
	}
	disable := drain.Flags().Bool("disable", false, "end the drain: the node is ready for work again")
	drain.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		st := "draining"
		if *disable {
			st = "ready"
		}
		n, err := cl.SetNodeState(cmd.Context(), args[0], st)
		if err != nil {
			return clientError(cl, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "node %s: %s\n", n.Name, n.State)
		return nil
	}
	cmd.AddCommand(status, drain, nodeRetireCommand(addr)) // node_retire.go
	return cmd
}

func printNodes(w io.Writer, nodes []api.Node) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPOOL\tSTATE\tMODEL\tGPUS FREE\tCPU FREE\tMEM FREE (GiB)\tRETIRE AT")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3g/%d\t%.3g/%.3g\t%d/%d\t%s\n", n.Name, n.Pool, n.State, orDash(n.Model),
			float64(n.GPUMilliFree)/1000, n.GPUs, float64(n.CPUMilliFree)/1000, float64(n.CPUMilliCap)/1000,
			n.MemMiBFree>>10, n.MemMiBCap>>10, orDash(n.RetireAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printUnhealthy(w, nodes) // agent.go
}

func poolCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:         "pool",
		Short:       "List the pools of a running server with their capacity.",
		Example:     examples("petite pool list"),
		Annotations: map[string]string{needsServer: "talks to a server"},
	}
	addr := addAddressFlag(cmd.PersistentFlags())
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the pools: kind, nodes ready, GPUs free.",
		Example: examples("petite pool list", "petite pool list --json"),
		Args:    noArgs,
	}
	output := addOutputFlag(list.Flags(), "table", "json")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		pools, err := cl.Pools(cmd.Context())
		if err != nil {
			return clientError(cl, err)
		}
		if format == "json" {
			return writeJSONOut(cmd.OutOrStdout(), pools)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "POOL\tKIND\tREGION\tNODES READY\tGPUS FREE")
		for _, p := range pools {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%.4g/%d\n", p.Name, p.Kind, orDash(p.Region), p.Ready, p.Nodes, float64(p.GPUMilliFree)/1000, p.GPUs)
		}
		return tw.Flush()
	}
	cmd.AddCommand(list)
	return cmd
}

func operatorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:         "operator",
		Short:       "Operate the server cluster: raft membership, backup and restore.",
		Example:     examples("petite operator raft list-peers"),
		Annotations: map[string]string{needsServer: "talks to a server"},
	}
	addr := addAddressFlag(cmd.PersistentFlags())
	raftCmd := &cobra.Command{
		Use:     "raft",
		Short:   "List, add and remove the servers of the raft configuration.",
		Example: examples("petite operator raft list-peers"),
	}
	list := &cobra.Command{
		Use:     "list-peers",
		Short:   "List the servers of the raft configuration, the leader marked.",
		Example: examples("petite operator raft list-peers", "petite operator raft list-peers --json"),
		Args:    noArgs,
	}
	output := addOutputFlag(list.Flags(), "table", "json")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		peers, err := cl.Peers(cmd.Context())
		if err != nil {
			return clientError(cl, err)
		}
		if format == "json" {
			return writeJSONOut(cmd.OutOrStdout(), peers)
		}
		return printPeers(cmd.OutOrStdout(), peers)
	}
	add := &cobra.Command{
		Use:   "add-peer",
		Short: "Add a voting server (started without --bootstrap) to the cluster.",
		Long: `Adds a server to the raft configuration. Start it first, without --bootstrap,
with its own --id and --data-dir; it then catches up from the leader.`,
		Example: examples(
			"# on a three-server cluster, after starting s4 without --bootstrap:",
			"petite operator raft add-peer --id s4 --address 10.0.0.4:4647",
		),
		Args: noArgs,
	}
	id := add.Flags().String("id", "", "the new server's --id")
	raftAddr := add.Flags().String("address", "", "the new server's raft address, HOST:PORT")
	add.RunE = func(cmd *cobra.Command, _ []string) error {
		if *id == "" || *raftAddr == "" {
			return usageErr("add-peer needs --id and --address")
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		peers, err := cl.AddPeer(cmd.Context(), *id, *raftAddr)
		if err != nil {
			return clientError(cl, err)
		}
		return printPeers(cmd.OutOrStdout(), peers)
	}
	remove := &cobra.Command{
		Use:     "remove-peer ID",
		Short:   "Remove a server from the raft configuration.",
		Example: examples("petite operator raft remove-peer s4"),
		Args:    exactArgs(1, "remove-peer takes one server ID"),
	}
	remove.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		peers, err := cl.RemovePeer(cmd.Context(), args[0])
		if err != nil {
			return clientError(cl, err)
		}
		return printPeers(cmd.OutOrStdout(), peers)
	}
	raftCmd.AddCommand(list, add, remove)
	cmd.AddCommand(raftCmd, snapshotCommand(addr))
	return cmd
}

func printPeers(w io.Writer, peers []api.Peer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tVOTER")
	for _, p := range peers {
		role := "follower"
		if p.Leader {
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\n", p.ID, p.Address, role, p.Voter)
	}
	return tw.Flush()
}
