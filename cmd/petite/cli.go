package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Exit statuses: 0 for success, 1 for an error of the work itself (bad
// input, a failed write), 2 for a command called the wrong way.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program as main runs it, over the given streams: it
// executes args, prints an error as one line on stderr and returns the exit
// status. Tests call it the way a user's shell calls main.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := execute(ctx, args, stdin, stdout, stderr)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "petite: %v\n", err)
	if errors.Is(err, errUsage) {
		return exitUsage
	}
	return exitError
}

// execute builds the command tree over the streams, runs args and returns
// the error that ended the command. Standard output is watched: if any
// write to it failed (a full disk, a closed pipe), or flushing it at the
// end fails, the run fails with "writing output: ..." even when the command
// itself ignored the error, so `petite place > /dev/full` never exits 0.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	out := &watchedWriter{w: stdout}
	root := newRootCommand(stdin, out, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if ferr := out.flush(); ferr != nil {
		return fmt.Errorf("writing output: %w", ferr)
	}
	if errors.Is(err, errUsage) && cmd != nil {
		err = fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	}
	return err
}

// watchedWriter passes writes through and remembers the first that failed;
// after it, every write fails with the same error so a long output stops
// early instead of writing into the void.
type watchedWriter struct {
	w   io.Writer
	err error
}

func (o *watchedWriter) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		o.err = err
	}
	return n, err
}

// flush flushes a buffered destination and returns the first write error
// seen, if any.
func (o *watchedWriter) flush() error {
	if f, ok := o.w.(interface{ Flush() error }); ok && o.err == nil {
		if err := f.Flush(); err != nil {
			o.err = err
		}
	}
	return o.err
}
