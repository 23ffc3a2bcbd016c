package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"petite/scheduler/api"
	"petite/scheduler/server"
)

// The server writes this binary's version in the backups it makes.
func init() { server.Version = version }

// snapshotCommand is `petite operator snapshot save|restore`: backup and
// disaster recovery of the whole cluster state.
func snapshotCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save the cluster's state to a file, or restore it from one.",
		Long: `A backup file holds the whole replicated state (nodes, jobs and their
placements, the job history) under a header line with the file format's
version, the petite that wrote it and a SHA-256 checksum of the body.

restore replaces the state of the cluster it is sent to (a running one or a
fresh one) through raft: every server takes it. A corrupt, cut or newer file is
refused with one line saying which, and the cluster keeps its state.`,
		Example: examples(
			"petite operator snapshot save backup.snap",
			"petite operator snapshot restore backup.snap",
		),
	}
	save := &cobra.Command{
		Use:     "save FILE",
		Short:   "Write a backup of the cluster's state to FILE (whole or not at all).",
		Example: examples("petite operator snapshot save backup.snap"),
		Args:    exactArgs(1, "save takes one FILE"),
	}
	save.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := cl.SaveSnapshot(cmd.Context(), &b); err != nil {
			return clientError(cl, err)
		}
		// Check what came before writing it: a backup that would not
		// restore is worse than none.
		h, _, err := server.DecodeBackup(b.Bytes())
		if err != nil {
			return fmt.Errorf("snapshot from %s: %w", cl.Base, err)
		}
		if err := writeFileWhole(args[0], b.Bytes()); err != nil {
			return fmt.Errorf("snapshot save: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "saved %s: %d bytes at raft index %d (petite %s, %s)\n",
			args[0], b.Len(), h.Index, h.Petite, time.Unix(h.Created, 0).UTC().Format(time.RFC3339))
		return nil
	}
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster's state with the backup in FILE.",
		Example: examples(
			"# after: petite operator snapshot save backup.snap",
			"petite operator snapshot restore backup.snap",
		),
		Args: exactArgs(1, "restore takes one FILE"),
	}
	restore.RunE = func(cmd *cobra.Command, args []string) error {
		file := args[0]
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("snapshot restore: %w", err)
		}
		// The server checks the file too; checking here names the file
		// and sends nothing when it is bad.
		if _, _, err := server.DecodeBackup(b); err != nil {
			return fmt.Errorf("snapshot %s: %w", file, err)
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		res, err := cl.RestoreSnapshot(cmd.Context(), b)
		if err != nil {
			var ae *api.Error
			if errors.As(err, &ae) && ae.Code == api.CodeBadSnapshot {
				return fmt.Errorf("snapshot %s: %s", file, ae.Message)
			}
			return clientError(cl, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "restored %s: %d jobs (saved by petite %s at raft index %d)\n", file, res.Jobs, res.Petite, res.Index)
		return nil
	}
	cmd.AddCommand(save, restore)
	return cmd
}
