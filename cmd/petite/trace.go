package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"petite/traces"
)

// traceCommand groups the trace tools (convert, stats, head, sample, gen).
func traceCommand() *command {
	return newTraceCommand(os.Stdin, os.Stdout, os.Stderr)
}

// traceIO is where the trace tools read "-" from and write to.
type traceIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// newTraceCommand builds the trace command tree over the given streams, so
// tests can run it in-process.
func newTraceCommand(stdin io.Reader, stdout, stderr io.Writer) *command {
	tio := &traceIO{stdin: stdin, stdout: stdout, stderr: stderr}
	return &command{
		name:    "trace",
		summary: "Read, convert, summarise and generate GPU cluster traces.",
		long: `
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
the first one instead.`,
		subs: []*command{
			tio.convertCommand(),
			tio.statsCommand(),
			tio.headCommand(),
			tio.sampleCommand(),
			tio.genCommand(),
		},
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

func (in *inputFlags) options() (traces.Options, error) {
	f, err := traces.ParseFormat(in.format)
	if err != nil {
		return traces.Options{}, usageErr("%v", err)
	}
	return traces.Options{Format: f, Strict: in.strict, PAIJobs: in.paiJobs}, nil
}

// open opens a job trace; "-" is standard input.
func (t *traceIO) open(path string, in *inputFlags) (*traces.Reader, error) {
	opts, err := in.options()
	if err != nil {
		return nil, err
	}
	if path == "-" {
		return traces.NewReader(t.stdin, "stdin", opts)
	}
	return traces.Open(path, opts)
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

// create opens an output file; "-" is standard output.
func (t *traceIO) create(path string) (io.Writer, func() error, error) {
	if path == "-" || path == "" {
		return t.stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("create output: %w", err)
	}
	return f, f.Close, nil
}

// writeJobs writes jobs from next to path in the chosen format and returns
// how many it wrote.
func (t *traceIO) writeJobs(path string, f traces.Format, meta traces.Meta, next func() (traces.Job, error)) (n int, err error) {
	w, closeFile, err := t.create(path)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := closeFile(); err == nil && cerr != nil {
			err = fmt.Errorf("close output: %w", cerr)
		}
	}()
	tw, err := traces.NewWriter(w, f, meta)
	if err != nil {
		return 0, err
	}
	for {
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
	if err := tw.Close(); err != nil {
		return n, fmt.Errorf("write: %w", err)
	}
	return n, nil
}

// reportProblems prints the skipped records of a lenient read to stderr.
func (t *traceIO) reportProblems(name string, p traces.Problems) {
	if p.Skipped > 0 {
		fmt.Fprintf(t.stderr, "%s: %s\n", name, p)
	}
}

func (t *traceIO) convertCommand() *command {
	return &command{
		name:    "convert",
		summary: "Convert a trace of any format to petite's canonical CSV or JSON Lines.",
		usage:   "IN OUT",
		long:    `OUT "-" writes to standard output. A summary (jobs written, bad records skipped) goes to standard error.`,
		flags: func(fs *pflag.FlagSet) func([]string) error {
			var in inputFlags
			var out outputFlags
			in.add(fs)
			out.add(fs)
			return func(args []string) error {
				if len(args) != 2 {
					return usageErr("convert takes IN and OUT, got %d arguments", len(args))
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
		},
	}
}
