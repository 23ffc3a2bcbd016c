package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petite/traces"
)

// traceCommand groups the trace tools (convert, stats, head, sample, gen).
func traceCommand() *cobra.Command {
	t := &traceIO{}
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Read, convert, summarise and generate GPU cluster traces.",
		Long: `
Formats (--format, sniffed from the content when auto):
  openb         Alibaba GPU 2023 pod list (openb_pod_list_*.csv)
  pai           Alibaba PAI 2020 pai_task_table.csv joined with pai_job_table.csv
                (found beside it, or named with --pai-jobs); either table alone works
  philly        Microsoft Philly cluster_job_log (JSON array)
  helios        SenseTime Helios cluster_log.csv
  petite-csv    petite canonical CSV (docs/traces.md)
  petite-jsonl  petite canonical JSON Lines
Machine lists (stats only): openb-nodes, pai-machines, philly-machines, helios-gpus.
Files may be gzip-compressed; "-" reads standard input.

Bad records are skipped and counted (the first few are shown); --strict stops at
the first one instead. A canonical file ends with a trailer that counts its rows,
so a cut one is caught: without the trailer it reads with a warning, or fails
under --strict. A row over 4 MiB ends the read. An output file (convert, sample,
gen) may not be one of the inputs; it is written whole or not at all, and Ctrl-C
removes what was begun.`,
		Example: examples(
			"petite trace stats traces/samples/openb_pod_list_default.csv",
			"petite trace head traces/testdata/helios/cluster_log.csv",
		),
	}
	cmd.AddCommand(
		t.convertCommand(),
		t.statsCommand(),
		t.headCommand(),
		t.sampleCommand(),
		t.genCommand(),
		traceExportCommand(), // from a running cluster (trace_export.go)
	)
	return cmd
}

// traceIO is where the trace tools read "-" from and write to: the
// streams and context of the command that runs (bind).
type traceIO struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	closers        []io.Closer // files open opened that its Reader does not close
}

// bind points t at the streams and context of cmd. Each command calls it
// first, and defers release.
func (t *traceIO) bind(cmd *cobra.Command) {
	t.stdin, t.stdout, t.stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	t.ctx = cmd.Context()
	if t.ctx == nil {
		t.ctx = context.Background()
	}
}

// inputFlags are the flags every command that reads a trace takes.
type inputFlags struct {
	format  string
	strict  bool
	paiJobs string
}

func (in *inputFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&in.format, "format", "auto", "input format: auto, openb, pai, philly, helios, petite-csv, petite-jsonl")
	fs.BoolVar(&in.strict, "strict", false, "fail on the first bad record instead of skipping it")
	fs.StringVar(&in.paiJobs, "pai-jobs", "", "PAI job table to join a task table with (default: pai_job_table.csv beside it)")
}

// changed reports whether any input flag was given, for a command whose
// input is optional (gen without --fit reads nothing).
func (in *inputFlags) changed(fs *pflag.FlagSet) bool {
	return fs.Changed("format") || fs.Changed("strict") || fs.Changed("pai-jobs")
}

func (in *inputFlags) options() (traces.Options, error) {
	f, err := traces.ParseFormat(in.format)
	if err != nil {
		return traces.Options{}, usageErr("%v", err)
	}
	return traces.Options{Format: f, Strict: in.strict, PAIJobs: in.paiJobs}, nil
}

// open opens a job trace; "-" is standard input. --pai-jobs must name a
// file (or "-") and goes with a PAI task table only: it is never ignored.
func (t *traceIO) open(path string, in *inputFlags) (*traces.Reader, error) {
	opts, err := in.options()
	if err != nil {
		return nil, err
	}
	var r *traces.Reader
	switch {
	case in.paiJobs == "-" && path == "-":
		return nil, usageErr("--pai-jobs - and the trace - cannot both be standard input")
	case in.paiJobs == "-":
		r, err = t.openPAIFromStdin(path, opts)
	case in.paiJobs != "":
		if _, err := os.Stat(in.paiJobs); err != nil {
			return nil, fmt.Errorf("--pai-jobs: %w", err)
		}
		fallthrough
	default:
		if path == "-" {
			if in.paiJobs != "" {
				return nil, usageErr("--pai-jobs joins a PAI task table read from a file; the trace - is standard input")
			}
			r, err = traces.NewReader(t.stdin, "stdin", opts)
		} else {
			r, err = traces.Open(path, opts)
		}
	}
	if err != nil {
		return nil, err
	}
	if in.paiJobs != "" && r.Meta().Format != traces.FormatPAI {
		r.Close()
		return nil, usageErr("--pai-jobs joins a PAI task table, and %s is %s", path, r.Meta().Format)
	}
	return r, nil
}

// openPAIFromStdin joins the PAI task table at path with a job table on
// standard input.
func (t *traceIO) openPAIFromStdin(path string, opts traces.Options) (*traces.Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	r, err := traces.NewPAIReader(t.stdin, "stdin", f, filepath.Base(path), opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	t.closers = append(t.closers, f)
	return r, nil
}

// release closes what open opened beside the Readers it returned.
func (t *traceIO) release() {
	for _, c := range t.closers {
		c.Close()
	}
	t.closers = nil
}

// outputFlags choose the canonical encoding written.
type outputFlags struct {
	to string
}

func (o *outputFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&o.to, "to", "", "output format: petite-csv or petite-jsonl (default: by the output's extension, .jsonl for JSON Lines, else CSV)")
}

func (o *outputFlags) format(path string) (traces.Format, error) {
	if o.to == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".jsonl", ".ndjson":
			return traces.FormatJSONL, nil
		}
		return traces.FormatCSV, nil
	}
	f, err := traces.ParseFormat(o.to)
	if err != nil || (f != traces.FormatCSV && f != traces.FormatJSONL) {
		return "", usageErr("--to %q: want petite-csv or petite-jsonl", o.to)
	}
	return f, nil
}

// distinctOutput refuses an output path that names the same file as one
// of the inputs: writing it would clobber what is being read. Inputs that
// are "" or "-", and an output that does not exist yet, pass.
func distinctOutput(out string, inputs ...string) error {
	if out == "" || out == "-" {
		return nil
	}
	ost, err := os.Stat(out)
	if err != nil {
		return nil // no such file yet (or unreadable: creating it will tell)
	}
	for _, in := range inputs {
		if in == "" || in == "-" {
			continue
		}
		if ist, err := os.Stat(in); err == nil && os.SameFile(ist, ost) {
			return usageErr("input %s and output %s are the same file: write the output elsewhere", in, out)
		}
	}
	return nil
}

// create opens an output; "-" (or "") is standard output. The returned
// finish must be called once writing is over, with the error that ended it
// (nil on success). A regular file is written as a temporary file beside
// it and renamed over it by a successful finish, so a failed run leaves the
// old file (or none) rather than half a new one; anything else that exists
// (a device, a pipe) is written in place.
func (t *traceIO) create(path string) (w io.Writer, finish func(failed error) error, err error) {
	if path == "-" || path == "" {
		return t.stdout, func(error) error { return nil }, nil
	}
	target := path
	perm := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return nil, nil, fmt.Errorf("create output: %w", err)
			}
			return f, func(error) error { return f.Close() }, nil
		}
		perm = st.Mode().Perm()
		// Write through a symbolic link rather than replace it.
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return nil, nil, fmt.Errorf("create output: %w", err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return nil, nil, fmt.Errorf("create output: %w", err)
	}
	finish = func(failed error) error {
		err := tmp.Close()
		if failed == nil && err == nil {
			err = os.Chmod(tmp.Name(), perm)
		}
		if failed == nil && err == nil {
			err = os.Rename(tmp.Name(), target)
		}
		if failed != nil || err != nil {
			os.Remove(tmp.Name())
		}
		if err != nil {
			return fmt.Errorf("write output %s: %w", path, err)
		}
		return nil
	}
	return tmp, finish, nil
}

// errInterrupted ends a write cut short by Ctrl-C or SIGTERM.
var errInterrupted = errors.New("interrupted")

// writeJobs writes jobs from next to path in the chosen format and returns
// how many it wrote. On an error a file at path is left as it was. While a
// file is written, Ctrl-C (or SIGTERM) stops the write between two jobs and
// removes the temporary file, and the error says so; a second Ctrl-C ends
// the program at once (as when the read is stuck on a terminal).
func (t *traceIO) writeJobs(path string, f traces.Format, meta traces.Meta, next func() (traces.Job, error)) (n int, err error) {
	ctx := t.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if path != "-" && path != "" {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		context.AfterFunc(ctx, stop) // the next signal is the default: exit
	}
	_, statErr := os.Stat(path)
	existed := statErr == nil
	w, finish, err := t.create(path)
	if err != nil {
		return 0, err
	}
	defer func() {
		ferr := finish(err)
		if errors.Is(err, errInterrupted) {
			was := "no file " + path + " was made"
			if existed {
				was = path + " is as it was"
			}
			err = fmt.Errorf("interrupted after %d jobs: the partial output was removed; %s", n, was)
		}
		if err == nil {
			err = ferr
		}
	}()
	tw, err := traces.NewWriter(w, f, meta)
	if err != nil {
		return 0, err
	}
	for {
		if n%1024 == 0 && ctx.Err() != nil {
			return n, errInterrupted
		}
		j, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		if err := tw.Write(&j); err != nil {
			return n, fmt.Errorf("write: %w", err)
		}
		n++
	}
	if ctx.Err() != nil {
		return n, errInterrupted // not a whole file if the signal came last
	}
	if err := tw.Close(); err != nil {
		return n, fmt.Errorf("write: %w", err)
	}
	return n, nil
}

// reportProblems prints the skipped records and the warnings of a lenient
// read to stderr.
func (t *traceIO) reportProblems(name string, p traces.Problems) {
	if p.Skipped > 0 || len(p.Warnings) > 0 {
		fmt.Fprintf(t.stderr, "%s: %s\n", name, p)
	}
}

func (t *traceIO) convertCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "convert [flags] IN OUT",
		Short: "Convert a trace of any format to petite's canonical CSV or JSON Lines.",
		Long: `OUT "-" writes to standard output. A summary (jobs written, bad records skipped) goes to standard error.
OUT may not be IN. A file is written whole or not at all: through a temporary file
beside it, renamed over it at the end.`,
		Example: examples(
			"# a Philly job log to canonical CSV, then back as JSON Lines on stdout",
			"petite trace convert traces/testdata/philly/cluster_job_log philly.csv",
			"petite trace convert --to petite-jsonl philly.csv -",
			"# PAI task table joined with the job table beside it",
			"petite trace convert traces/testdata/pai/pai_task_table.csv pai.jsonl",
		),
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	var in inputFlags
	var out outputFlags
	in.add(fs)
	out.add(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t.bind(cmd)
		defer t.release()
		if len(args) != 2 {
			return usageErr("convert takes IN and OUT, got %d arguments", len(args))
		}
		if err := distinctOutput(args[1], args[0], in.paiJobs); err != nil {
			return err
		}
		f, err := out.format(args[1])
		if err != nil {
			return err
		}
		r, err := t.open(args[0], &in)
		if err != nil {
			return err
		}
		defer r.Close()
		n, err := t.writeJobs(args[1], f, r.Meta(), r.Next)
		if err != nil {
			return err
		}
		fmt.Fprintf(t.stderr, "%s: %d jobs written as %s\n", args[0], n, f)
		t.reportProblems(args[0], r.Problems())
		return nil
	}
	return cmd
}
