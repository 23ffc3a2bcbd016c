package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petite/scheduler"
	"petite/scheduler/api"
)

// addAddressFlag adds --address, and the TLS and token flags beside it
// (tls.go), to a command group; clientFor reads them.
func addAddressFlag(fs *pflag.FlagSet) *string {
	addr := fs.String("address", "", "server API address (default: $PETITE_ADDR, else "+defaultAddr+")")
	addClientAuthFlags(fs, addr)
	return addr
}

// clientFor returns a client of the server named by the address flag addr
// (--address), else PETITE_ADDR, else the dev server's default address,
// with the TLS and token flags registered beside addr (or their PETITE_
// variables).
func clientFor(addr *string) (*api.Client, error) {
	a := *addr
	if a == "" {
		a = os.Getenv("PETITE_ADDR")
	}
	if a == "" {
		a = defaultAddr
	}
	cl, err := api.NewClient(a)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if err := authFor(addr).apply(cl); err != nil {
		return nil, err
	}
	return cl, nil
}

// clientError says which server an error came from.
func clientError(cl *api.Client, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", cl.Base, ae.Message)
	}
	return fmt.Errorf("%w (is a server running at %s? set PETITE_ADDR or --address)", err, cl.Base)
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func jobCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit, plan, inspect and stop jobs on a running server.",
		Long: `Talks to a server's API: --address, else $PETITE_ADDR, else ` + defaultAddr + `.
A job ID may be given by a prefix that names one job (the name of a spec
without an id names the job it made).`,
		Example: examples(
			"petite job plan examples/train.yaml",
			"petite job status",
		),
		Annotations: map[string]string{needsServer: "talks to a server"},
	}
	addr := addAddressFlag(cmd.PersistentFlags())
	cmd.AddCommand(jobRunCommand(addr), jobPlanCommand(addr), jobStatusCommand(addr), jobStopCommand(addr), jobFinishCommand(addr), jobLogsCommand(addr))
	return cmd
}

// readSpec reads a job spec file ("-" for stdin) and checks it here, so
// errors name the file and line; the server checks it again.
func readSpec(cmd *cobra.Command, path string) ([]byte, error) {
	in, name, err := openInput(cmd, path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	b, err := io.ReadAll(io.LimitReader(in, api.MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	spec, err := api.ParseJobSpec(bytes.NewReader(b), name)
	if err == nil {
		_, err = spec.Job()
		var se *api.SpecError
		if errors.As(err, &se) {
			se.File = name
		}
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func jobRunCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run FILE|-",
		Short: "Submit a job spec (YAML or JSON) and show where it was placed.",
		Long: `Submits a job spec and waits up to --wait for the first scheduling pass,
then prints the job: running with its placements, or queued with the reasons.
A spec without an id gets one from its name and a random suffix.`,
		Example: examples(
			"petite job run examples/train.yaml",
			"petite job run - < examples/serve.yaml",
			"petite job run examples/notebook.yaml --json",
		),
		Args: exactArgs(1, "run takes one FILE (or - for stdin)"),
	}
	wait := cmd.Flags().Duration("wait", 2*time.Second, "how long to wait for the job to be placed")
	output := addOutputFlag(cmd.Flags(), "table", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		spec, err := readSpec(cmd, args[0])
		if err != nil {
			return err
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		res, err := cl.Submit(ctx, spec)
		if err != nil {
			return clientError(cl, err)
		}
		j, err := waitPlaced(ctx, cl, res.ID, *wait)
		if err != nil {
			return clientError(cl, err)
		}
		if format == "json" {
			return writeJSONOut(cmd.OutOrStdout(), j)
		}
		return printJob(cmd.OutOrStdout(), j)
	}
	return cmd
}

// waitPlaced polls a job until it leaves the queue or the wait is over.
func waitPlaced(ctx context.Context, cl *api.Client, id string, wait time.Duration) (api.Job, error) {
	deadline := time.Now().Add(wait)
	for {
		j, err := cl.Job(ctx, id, false)
		if err != nil || j.Status != api.StatusQueued || time.Now().After(deadline) {
			return j, err
		}
		// A reason from a pass means the pass ran and could not place it.
		if j.Pending != nil && j.Pending.Why != "" && j.Pending.Why != api.WhyNextPass {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func jobPlanCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan FILE|-",
		Short: "Dry run: where a job would be placed now, or why it would wait. Changes nothing.",
		Example: examples(
			"petite job plan examples/train.yaml",
			"# a job too big for the fleet, and why",
			"petite job plan examples/too-big.yaml",
		),
		Args: exactArgs(1, "plan takes one FILE (or - for stdin)"),
	}
	output := addOutputFlag(cmd.Flags(), "table", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		spec, err := readSpec(cmd, args[0])
		if err != nil {
			return err
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		p, err := cl.Plan(cmd.Context(), spec)
		if err != nil {
			return clientError(cl, err)
		}
		w := cmd.OutOrStdout()
		if format == "json" {
			return writeJSONOut(w, p)
		}
		if p.Placed {
			fmt.Fprintf(w, "job %s would be placed now:\n", p.Job)
			printTasks(w, p.Tasks)
		} else {
			fmt.Fprintf(w, "job %s would wait in the queue:\n", p.Job)
			printPending(w, p.Pending)
		}
		for _, e := range p.Evict {
			fmt.Fprintf(w, "  would preempt %s %v\n", e.Job, e.Tasks)
		}
		if p.Others > 0 {
			fmt.Fprintf(w, "the same pass would also start %d queued job(s)\n", p.Others)
		}
		fmt.Fprintln(w, "(a dry run: nothing was submitted)")
		return nil
	}
	return cmd
}

func jobStatusCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [ID]",
		Short: "List jobs, or show one with its placements or the reasons it waits.",
		Long: `Without an ID, lists the jobs (--json: an array of jobs, each with id and
status). With one, shows it: status is queued, running, succeeded, failed or
cancelled; a queued job shows why it waits, as the last scheduling pass found.
Reads are linearizable (served by the leader); --stale answers from the server
asked.`,
		Example: examples(
			"petite job status",
			"petite job status train-llm",
			"petite job status --json",
		),
		Args: maxArgs(1, "status takes at most one job ID"),
	}
	staleOK := cmd.Flags().Bool("stale", false, "answer from the server asked, without the leader")
	output := addOutputFlag(cmd.Flags(), "table", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		format, err := output.format()
		if err != nil {
			return err
		}
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		ctx, w := cmd.Context(), cmd.OutOrStdout()
		if len(args) == 1 {
			j, err := findJob(ctx, cl, args[0], *staleOK)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSONOut(w, j)
			}
			return printJob(w, j)
		}
		jobs, err := cl.Jobs(ctx, *staleOK)
		if err != nil {
			return clientError(cl, err)
		}
		if format == "json" {
			return writeJSONOut(w, jobs)
		}
		if len(jobs) == 0 {
			fmt.Fprintln(w, "no jobs")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tKIND\tTENANT\tTASKS\tGPUS/TASK\tWHY PENDING")
		for _, j := range jobs {
			why := ""
			if j.Pending != nil {
				why = j.Pending.Why
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Status, j.Kind, orDash(j.Tenant), len(j.Tasks), j.Count, gpuAsk(j), why)
		}
		return tw.Flush()
	}
	return cmd
}

// findJob returns a job by ID, or by a prefix that names one job; among
// several, the one job not ended.
func findJob(ctx context.Context, cl *api.Client, id string, staleOK bool) (api.Job, error) {
	j, err := cl.Job(ctx, id, staleOK)
	var ae *api.Error
	if err == nil || !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		if err != nil {
			return j, clientError(cl, err)
		}
		return j, nil
	}
	jobs, lerr := cl.Jobs(ctx, staleOK)
	if lerr != nil {
		return j, clientError(cl, lerr)
	}
	var all, live []api.Job
	for _, j := range jobs {
		if strings.HasPrefix(j.ID, id) {
			all = append(all, j)
			if j.Status == api.StatusQueued || j.Status == api.StatusRunning {
				live = append(live, j)
			}
		}
	}
	switch {
	case len(all) == 1:
		return all[0], nil
	case len(live) == 1:
		return live[0], nil
	case len(all) == 0:
		return j, clientError(cl, err)
	}
	ids := make([]string, len(all))
	for i, j := range all {
		ids[i] = j.ID
	}
	return j, fmt.Errorf("%q names %d jobs: %s", id, len(all), strings.Join(ids, ", "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func gpuAsk(j api.Job) string {
	switch {
	case j.Task.GPUs == 0:
		return "0"
	case j.Task.GPUMilli > 0 && j.Task.GPUMilli < 1000:
		return fmt.Sprintf("%.3g", float64(j.Task.GPUMilli)/1000)
	}
	return fmt.Sprint(j.Task.GPUs)
}

// printJob prints one job for people.
func printJob(w io.Writer, j api.Job) error {
	fmt.Fprintf(w, "job %s: %s\n", j.ID, j.Status)
	fmt.Fprintf(w, "  %s, %d task(s) of %s GPU", j.Kind, j.Count, gpuAsk(j))
	if len(j.Task.Models) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(j.Task.Models, " or "))
	}
	if j.Tenant != "" {
		fmt.Fprintf(w, ", tenant %s", j.Tenant)
	}
	fmt.Fprintln(w)
	if len(j.Command) > 0 {
		fmt.Fprintf(w, "  command: %s\n", commandLine(j.Command))
	}
	printTasks(w, j.Tasks)
	if len(j.Done) > 0 {
		fmt.Fprintf(w, "  tasks done: %v\n", j.Done)
	}
	if j.Status == api.StatusQueued {
		printPending(w, j.Pending)
		printEstimate(w, j)
	}
	return nil
}

func printTasks(w io.Writer, tasks []scheduler.TaskPlacement) {
	for _, t := range tasks {
		share := ""
		if t.GPUMilli > 0 && t.GPUMilli < 1000 {
			share = fmt.Sprintf(" x %d milli", t.GPUMilli)
		}
		fmt.Fprintf(w, "  task %d on %s GPUs %v%s\n", t.Task, t.Node, t.GPUs, share)
	}
}

func printPending(w io.Writer, p *api.Pending) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "  pending: %s\n", p.Why)
	for _, r := range slices.Sorted(maps.Keys(p.Reasons)) {
		fmt.Fprintf(w, "    %s: %d node(s)\n", r, p.Reasons[r])
	}
}

func jobStopCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "stop ID",
		Short:   "Stop (cancel) a job, releasing what it holds.",
		Example: examples("petite job stop llm-serve"),
		Args:    exactArgs(1, "stop takes one job ID"),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		j, err := findJob(cmd.Context(), cl, args[0], false)
		if err != nil {
			return err
		}
		j, err = cl.Cancel(cmd.Context(), j.ID)
		if err != nil {
			return clientError(cl, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "job %s: %s\n", j.ID, j.Status)
		return nil
	}
	return cmd
}

func jobFinishCommand(addr *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "finish ID",
		Short: "Report a job, or some of its tasks, ended (an admin's stand-in for the node agent).",
		Long: `Records that tasks of a running job ended, as a node agent will report it:
a training gang succeeds when all its tasks are done, and fails with one;
an inference replica that ends is placed again. Without --task the whole job
ends. Until agents run tasks, this is how a job completes.`,
		Example: examples(
			"petite job finish train-llm --task 0",
			"petite job finish train-llm",
		),
		Args: exactArgs(1, "finish takes one job ID"),
	}
	tasks := cmd.Flags().IntSlice("task", nil, "task index that ended (repeat, or comma-separated)")
	failed := cmd.Flags().Bool("failed", false, "the tasks failed")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := clientFor(addr)
		if err != nil {
			return err
		}
		j, err := findJob(cmd.Context(), cl, args[0], false)
		if err != nil {
			return err
		}
		j, err = cl.Finish(cmd.Context(), j.ID, api.FinishRequest{Tasks: *tasks, Failed: *failed})
		if err != nil {
			return clientError(cl, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "job %s: %s\n", j.ID, j.Status)
		return nil
	}
	return cmd
}

// exactArgs and maxArgs check the count of arguments with a usage error
// that says what is wanted.
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%s, got %q", msg, args)
		}
		return nil
	}
}

func maxArgs(n int, msg string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErr("%s, got %q", msg, args)
		}
		return nil
	}
}

// commandLine shows a task's argv on one line: an argument that is a
// script of several lines shows its first line and how many follow.
func commandLine(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		a = strings.TrimRight(a, "\n")
		if first, _, ok := strings.Cut(a, "\n"); ok {
			a = fmt.Sprintf("%s ... (%d more lines)", first, strings.Count(a, "\n"))
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
