package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"petite/scheduler/api"
)

func tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make bearer tokens for a server's token file (--tokens).",
		Example: examples(
			"petite token new --name alice --role admin",
		),
	}
	cmd.AddCommand(tokenNewCommand())
	return cmd
}

func tokenNewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new --name NAME --role admin|submitter|reader|agent",
		Short: "Make a random token: prints it once, and the entry (its SHA-256) for the token file.",
		Long: `Prints a new random token (256 bits) and the entry to append under
'tokens:' in the server's token file. The file keeps only the token's
SHA-256: hand the token to its user and keep it nowhere else. The user gives
it with --token or PETITE_TOKEN. Roles (docs/security.md):

  admin      everything
  submitter  read; submit and cancel jobs of its --tenant (repeat)
  reader     read
  agent      the agent endpoints of its --node`,
		Example: examples(
			"petite token new --name ci --role submitter --tenant research --tenant vision",
			"petite token new --name grafana --role reader",
		),
		Args: noArgs,
	}
	name := cmd.Flags().String("name", "", "who holds the token (the audit log records it)")
	role := cmd.Flags().String("role", "", "admin, submitter, reader or agent")
	tenants := cmd.Flags().StringSlice("tenant", nil, "a submitter's tenant (repeat)")
	node := cmd.Flags().String("node", "", "an agent's node")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *name == "" || *role == "" {
			return usageErr("new needs --name and --role")
		}
		if !slices.Contains(api.TokenRoles, api.Role(*role)) {
			return usageErr("--role %q: want admin, submitter, reader or agent", *role)
		}
		tok, sum, err := api.NewToken()
		if err != nil {
			return err
		}
		entry := fmt.Sprintf("  - name: %s\n    role: %s\n", *name, *role)
		if len(*tenants) > 0 {
			entry += fmt.Sprintf("    tenants: [%s]\n", strings.Join(*tenants, ", "))
		}
		if *node != "" {
			entry += fmt.Sprintf("    node: %s\n", *node)
		}
		entry += fmt.Sprintf("    sha256: %s\n", sum)
		// The entry must be one the server accepts: check it as it would.
		if _, err := api.ParseTokens([]byte("tokens:\n"+entry), "the entry"); err != nil {
			return usageErr("%v", err)
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "token: %s\n", tok)
		fmt.Fprintf(out, "# append under 'tokens:' in the server's token file:\n%s", entry)
		return nil
	}
	return cmd
}
