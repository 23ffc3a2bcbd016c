package traces

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
)

// Format names a trace format.
type Format string

// The formats petite reads. The job formats give jobs through Reader; the
// fleet formats give machines through ReadFleet.
const (
	FormatAuto   Format = "auto"         // sniff the content
	FormatOpenb  Format = "openb"        // Alibaba GPU 2023 pod list
	FormatPAI    Format = "pai"          // Alibaba PAI 2020 job + task tables
	FormatPhilly Format = "philly"       // Microsoft Philly cluster_job_log
	FormatHelios Format = "helios"       // SenseTime Helios cluster_log.csv
	FormatCSV    Format = "petite-csv"   // petite canonical CSV
	FormatJSONL  Format = "petite-jsonl" // petite canonical JSON Lines

	FormatOpenbNodes     Format = "openb-nodes"     // openb node list
	FormatPAIMachines    Format = "pai-machines"    // pai_machine_spec
	FormatPhillyMachines Format = "philly-machines" // cluster_machine_list
	FormatHeliosGPUs     Format = "helios-gpus"     // cluster_gpu_number.csv
)

// JobFormats lists the formats Reader reads, for help texts.
var JobFormats = []Format{FormatOpenb, FormatPAI, FormatPhilly, FormatHelios, FormatCSV, FormatJSONL}

// IsFleet reports whether f describes machines rather than jobs.
func (f Format) IsFleet() bool {
	switch f {
	case FormatOpenbNodes, FormatPAIMachines, FormatPhillyMachines, FormatHeliosGPUs:
		return true
	}
	return false
}

// ParseFormat reads a format name as given on a command line. "petite" is
// the canonical format, CSV or JSON Lines as sniffed.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "", FormatAuto, "petite":
		return FormatAuto, nil
	case FormatOpenb, FormatPAI, FormatPhilly, FormatHelios, FormatCSV, FormatJSONL,
		FormatOpenbNodes, FormatPAIMachines, FormatPhillyMachines, FormatHeliosGPUs:
		return f, nil
	case "csv":
		return FormatCSV, nil
	case "jsonl":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("unknown format %q (want auto, openb, pai, philly, helios, petite-csv or petite-jsonl)", s)
}

// Options tune a Reader.
type Options struct {
	// Format is the input's format; "" or FormatAuto sniffs it.
	Format Format
	// Strict makes the first bad record an error; otherwise bad records
	// are skipped and counted in Problems.
	Strict bool
	// PAIJobs is the path of the PAI job table to join a task table with
	// (Open only). When empty, Open looks for pai_job_table.csv (or .gz)
	// beside the task table, and the other way round.
	PAIJobs string
}

// Source is a stream of jobs: a Reader over a trace, or a Generator.
type Source interface {
	// Next returns the next job, or io.EOF after the last one.
	Next() (Job, error)
	// Meta describes the trace's clock.
	Meta() Meta
}

// source is what each format implements for Reader.
type source interface {
	// next fills j with the next record. A bad record is a *ParseError
	// (the source must be able to go on after it); io.EOF ends the stream;
	// any other error is fatal.
	next(j *Job) error
	meta() Meta
}

// Reader streams the jobs of one trace, in file order. It is not safe for
// concurrent use.
type Reader struct {
	src      source
	strict   bool
	problems Problems
	err      error // sticky: the error that ended the stream
	closers  []io.Closer
}

func newReader(src source, opts Options, closers ...io.Closer) *Reader {
	return &Reader{src: src, strict: opts.Strict, closers: closers}
}

// Next returns the next job, io.EOF after the last one, or the error that
// ended the stream. In lenient mode bad records are skipped (and counted);
// in strict mode the first one is returned as a *ParseError and ends the
// stream.
func (r *Reader) Next() (Job, error) {
	if r.err != nil {
		return Job{}, r.err
	}
	for {
		var j Job
		err := r.src.next(&j)
		if err == nil {
			return j, nil
		}
		if !r.strict && IsBadRecord(err) {
			r.problems.add(err)
			continue
		}
		r.err = err
		return Job{}, err
	}
}

// All returns the jobs as an iterator. It stops after the first error,
// which it yields (io.EOF is not yielded).
func (r *Reader) All() iter.Seq2[Job, error] {
	return func(yield func(Job, error) bool) {
		for {
			j, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(j, err) || err != nil {
				return
			}
		}
	}
}

// Meta describes the trace: its format and clock.
func (r *Reader) Meta() Meta { return r.src.meta() }

// warner is a source that can doubt the file as a whole without failing
// the read (see Problems.Warnings).
type warner interface {
	warnings() []string
}

// Problems returns the bad records skipped so far, and the warnings.
func (r *Reader) Problems() Problems {
	p := r.problems
	if w, ok := r.src.(warner); ok {
		p.Warnings = w.warnings()
	}
	return p
}

// Close closes the files Open opened. It is safe to call more than once.
func (r *Reader) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	r.closers = nil
	return errors.Join(errs...)
}

// NewReader reads one trace file from in; name is used in error messages.
// It sniffs the format unless opts.Format names it. in may be
// gzip-compressed, and a leading UTF-8 byte-order mark is dropped. A PAI
// table read this way is read alone (see NewPAIReader to join the two
// tables).
func NewReader(in io.Reader, name string, opts Options) (*Reader, error) {
	br, err := decompress(in, name)
	if err != nil {
		return nil, err
	}
	return readerOf(br, name, opts)
}

// readerOf is NewReader over input decompress has prepared.
func readerOf(br *bufio.Reader, name string, opts Options) (*Reader, error) {
	f := opts.Format
	if f == "" || f == FormatAuto {
		var err error
		if f, err = Sniff(br, name); err != nil {
			return nil, err
		}
	}
	switch f {
	case FormatOpenb:
		rows, err := newOpenbPodRows(br, name)
		if err != nil {
			return nil, err
		}
		return newReader(&openbSource{rows: rows}, opts), nil
	case FormatPAI:
		kind, err := sniffPAITable(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if kind == paiJobTable {
			return newPAIReader(br, name, nil, "", opts), nil
		}
		return newPAIReader(nil, "", br, name, opts), nil
	case FormatPhilly:
		return newPhillyReader(br, name, opts)
	case FormatHelios:
		return newHeliosReader(br, name, opts)
	case FormatCSV, FormatJSONL:
		return newCanonicalReader(br, name, f, opts)
	}
	if f.IsFleet() {
		return nil, fmt.Errorf("%s: is a machine list (%s), not a job trace", name, f)
	}
	return nil, fmt.Errorf("%s: unknown format %q", name, f)
}

// Open opens a trace file (plain or gzip-compressed) and returns a Reader
// over it. A PAI task table is joined with its job table: opts.PAIJobs, or
// pai_job_table.csv beside it (and a job table with pai_task_table.csv).
// Close the Reader when done.
func Open(path string, opts Options) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	name := filepath.Base(path)
	br, err := decompress(f, name)
	if err != nil {
		f.Close()
		return nil, err
	}
	format := opts.Format
	if format == "" || format == FormatAuto {
		if format, err = Sniff(br, name); err != nil {
			f.Close()
			return nil, err
		}
	}
	if format == FormatPAI {
		r, err := openPAI(path, f, br, opts)
		if err != nil {
			f.Close()
			return nil, err
		}
		return r, nil
	}
	opts.Format = format
	r, err := readerOf(br, name, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closers = append(r.closers, f)
	return r, nil
}

// openPAI opens the companion table of a PAI table and joins the two.
func openPAI(path string, f *os.File, br *bufio.Reader, opts Options) (*Reader, error) {
	name := filepath.Base(path)
	kind, err := sniffPAITable(br)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	other := opts.PAIJobs
	want := "pai_task_table"
	if kind == paiTaskTable {
		want = "pai_job_table"
	}
	if other == "" {
		for _, ext := range []string{".csv", ".csv.gz"} {
			p := filepath.Join(filepath.Dir(path), want+ext)
			if _, err := os.Stat(p); err == nil {
				other = p
				break
			}
		}
	}
	if other == "" {
		opts.Format = FormatPAI
		r, err := readerOf(br, name, opts)
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, f)
		return r, nil
	}
	of, err := os.Open(other)
	if err != nil {
		return nil, fmt.Errorf("open PAI %s: %w", want, err)
	}
	oname := filepath.Base(other)
	obr, err := decompress(of, oname)
	if err != nil {
		of.Close()
		return nil, err
	}
	okind, err := sniffPAITable(obr)
	if err == nil && okind == kind {
		err = fmt.Errorf("is the same kind of PAI table as %s, want the %s", name, want)
	}
	if err != nil {
		of.Close()
		return nil, fmt.Errorf("%s: %w", oname, err)
	}
	var r *Reader
	if kind == paiTaskTable {
		r = newPAIReader(obr, oname, br, name, opts)
	} else {
		r = newPAIReader(br, name, obr, oname, opts)
	}
	r.closers = append(r.closers, f, of)
	return r, nil
}

// bom is the UTF-8 byte-order mark some tools (Excel, PowerShell) write at
// the start of a text file.
var bom = []byte("\ufeff")

// decompress prepares a trace stream for reading: it buffers in, gunzips it
// when it starts with the gzip magic number, and drops one leading UTF-8
// byte-order mark. Every exported entry point calls it once on its input
// and hands the result to unexported readers that do not call it again, so
// a second BOM (or gzip inside gzip) stays content.
func decompress(in io.Reader, name string) (*bufio.Reader, error) {
	br, ok := in.(*bufio.Reader)
	if !ok || br.Size() < sniffLen {
		br = bufio.NewReaderSize(in, 64<<10)
	}
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	head, err := br.Peek(len(bom))
	switch {
	case bytes.Equal(head, bom):
		if _, err := br.Discard(len(bom)); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	case err != nil && !errors.Is(err, io.EOF):
		// Peek hands the error over once; keep it from being lost.
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return br, nil
}

// loadFile opens path, prepares it with decompress and reads it with read,
// which must not call decompress again.
func loadFile[T any](path string, read func(io.Reader, string) ([]T, error)) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	name := filepath.Base(path)
	br, err := decompress(f, name)
	if err != nil {
		return nil, err
	}
	return read(br, name)
}

// readPrepared prepares r with decompress and reads it with read, which
// must not call decompress again.
func readPrepared[T any](r io.Reader, name string, read func(io.Reader, string) ([]T, error)) ([]T, error) {
	br, err := decompress(r, name)
	if err != nil {
		return nil, err
	}
	return read(br, name)
}

// Buffered returns a buffered reader over in, gunzipped if it is gzip and
// without a leading UTF-8 byte-order mark, ready for Sniff.
func Buffered(in io.Reader, name string) (*bufio.Reader, error) {
	return decompress(in, name)
}
