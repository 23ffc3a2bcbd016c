package traces

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// canonicalMagic starts the first line of a canonical CSV file.
const canonicalMagic = "#petite-trace"

// canonicalVersion is the version of the canonical format this package
// writes (and the only one it reads).
const canonicalVersion = "v1"

// canonicalColumns are the canonical CSV columns, in the order written. A
// job is the run of consecutive rows with the same job_id, one row per task
// (a job with no tasks has one row with the task columns empty).
var canonicalColumns = []string{
	"job_id", "submit", "start", "end", "duration", "tenant", "group", "priority", "qos", "kind", "status",
	"task", "count", "gpus", "gpu_milli", "gpu_models", "cpu_milli", "memory_mib",
}

const (
	ccJobID = iota
	ccSubmit
	ccStart
	ccEnd
	ccDuration
	ccTenant
	ccGroup
	ccPriority
	ccQoS
	ccKind
	ccStatus
	ccTask
	ccCount
	ccGPUs
	ccGPUMilli
	ccGPUModels
	ccCPUMilli
	ccMemoryMiB
	ccN
)

// metaLine formats the first line of a canonical CSV file.
func metaLine(m Meta) string {
	return fmt.Sprintf("%s %s clock=%s zone=%s", canonicalMagic, canonicalVersion, m.Clock, m.Zone)
}

// parseMetaLine reads the "#petite-trace v1 clock=... zone=..." line.
func parseMetaLine(line, file string) (Meta, error) {
	m := Meta{Clock: ClockUnix, Zone: "UTC"}
	fields := strings.Fields(strings.TrimPrefix(line, canonicalMagic))
	if len(fields) == 0 || fields[0] != canonicalVersion {
		return m, &ParseError{File: file, Line: 1, Want: canonicalMagic + " " + canonicalVersion, Got: line}
	}
	for _, kv := range fields[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "clock":
			if Clock(v) != ClockUnix && Clock(v) != ClockRelative {
				return m, &ParseError{File: file, Line: 1, Field: "clock", Want: "unix or relative", Got: v}
			}
			m.Clock = Clock(v)
		case "zone":
			if _, err := parseZone(v); err != nil {
				return m, &ParseError{File: file, Line: 1, Field: "zone", Want: "UTC, an offset like +08:00 or an IANA zone", Got: v}
			}
			m.Zone = v
		}
	}
	return m, nil
}

// jsonlMeta is the optional first line of a canonical JSON Lines file.
type jsonlMeta struct {
	PetiteTrace string `json:"petite_trace"`
	Clock       Clock  `json:"clock"`
	Zone        string `json:"zone"`
}

// newCanonicalReader reads petite's canonical CSV or JSON Lines.
func newCanonicalReader(br *bufio.Reader, name string, f Format, opts Options) (*Reader, error) {
	meta := Meta{Format: f, Clock: ClockUnix, Zone: "UTC"}
	if f == FormatJSONL {
		s := &jsonlSource{file: name, sc: bufio.NewScanner(br), info: meta, strict: opts.Strict}
		s.sc.Buffer(make([]byte, 0, 64<<10), MaxRecordBytes)
		s.sc.Split(s.split)
		head, _ := br.Peek(sniffLen)
		if first, _, _ := bytes.Cut(head, []byte("\n")); isJSONLMeta(first) {
			if err := s.readMeta(bytes.TrimSpace(first)); err != nil {
				return nil, err
			}
		}
		return newReader(s, opts), nil
	}
	rows := newCSVRows(br, name)
	rec, line, err := rows.next()
	if errors.Is(err, io.EOF) {
		return nil, &ParseError{File: name, Line: 1, Want: "a header row", Got: ""}
	}
	if err != nil {
		return nil, err
	}
	var cols map[string]int
	if len(rec) > 0 && strings.HasPrefix(rec[0], canonicalMagic) {
		m, err := parseMetaLine(strings.TrimSpace(strings.Join(rec, ",")), name)
		if err != nil {
			return nil, err
		}
		meta.Clock, meta.Zone = m.Clock, m.Zone
		cols, err = rows.header("job_id", "submit")
		if err != nil {
			return nil, err
		}
	} else if cols, err = rows.headerOf(rec, line, "job_id", "submit"); err != nil {
		return nil, err
	}
	s := &csvSource{rows: rows, info: meta, strict: opts.Strict}
	for i, c := range canonicalColumns {
		s.cols[i] = col(cols, c)
	}
	return newReader(s, opts), nil
}

// csvSource streams canonical CSV, gathering each job's rows.
type csvSource struct {
	rows   *csvRows
	info   Meta
	strict bool
	cols   [ccN]int
	// pending is the first row of the next job, already read.
	pending     *csvRow
	pendingLine int
	done        bool
	// pendingErr is a bad row met while reading the previous job, to
	// report next; badID is the job it belongs to, whose other rows are
	// skipped without a second report.
	pendingErr error
	badID      string

	end  trailerCheck
	data int // data rows read, bad ones included, for the trailer
}

// csvRow is one parsed canonical row: its job fields and its task.
type csvRow struct {
	job     Job
	key     [ccTask]string // the raw job fields, to check a job's rows agree
	hasTask bool
	task    Task
}

func (s *csvSource) meta() Meta { return s.info }

func (s *csvSource) warnings() []string { return s.end.warnings }

func (s *csvSource) next(j *Job) error {
	if s.pendingErr != nil {
		err := s.pendingErr
		s.pendingErr = nil
		return err
	}
	for {
		if s.pending == nil {
			if s.done {
				return io.EOF
			}
			r, line, id, err := s.readRow()
			if errors.Is(err, io.EOF) {
				s.done = true
				return io.EOF
			}
			if err != nil {
				if IsBadRecord(err) && id != "" && id == s.badID {
					continue // another row of a job already reported bad
				}
				s.badID = id
				return err
			}
			if r.job.ID == s.badID {
				continue
			}
			s.badID = ""
			s.pending, s.pendingLine = r, line
		}
		first, firstLine := s.pending, s.pendingLine
		s.pending = nil
		*j = first.job
		if first.hasTask {
			j.Tasks = []Task{first.task}
		}
		var bad error
		for {
			r, line, id, err := s.readRow()
			if errors.Is(err, io.EOF) {
				s.done = true
				break
			}
			if err != nil && !IsBadRecord(err) {
				return err
			}
			if err != nil && id != j.ID {
				// A bad row of another job (or one without a readable
				// id): this job ends here, the bad row is reported next.
				s.pendingErr, s.badID = err, id
				break
			}
			if err != nil {
				if bad == nil {
					bad = err
				}
				continue
			}
			if r.job.ID != j.ID {
				s.pending, s.pendingLine = r, line
				break
			}
			if bad == nil && r.key != first.key {
				bad = &ParseError{File: s.rows.file, Line: line, Want: fmt.Sprintf("the job fields of job %s's first row (line %d)", j.ID, firstLine), Got: strings.Join(r.key[:], ",")}
			}
			if bad == nil && (!r.hasTask || !first.hasTask) {
				bad = &ParseError{File: s.rows.file, Line: line, Field: "count", Want: "a task on every row of a job with several rows", Got: ""}
			}
			j.Tasks = append(j.Tasks, r.task)
		}
		if bad != nil {
			return bad
		}
		if err := j.Validate(); err != nil {
			return &ParseError{File: s.rows.file, Line: firstLine, Err: err}
		}
		return nil
	}
}

// readRow parses one CSV row. It returns the row's job_id even when the
// row is bad (if the row is CSV at all), so the bad record can be charged
// to its job. At the trailer, or the end of the input, it checks the file
// is whole (see trailerCheck) and returns io.EOF or what is wrong.
func (s *csvSource) readRow() (*csvRow, int, string, error) {
	if s.end.ended {
		return nil, 0, "", io.EOF
	}
	rec, line, err := s.rows.next()
	if errors.Is(err, io.EOF) {
		return nil, 0, "", s.end.atEOF(s.rows.file, s.rows.in.lines, s.strict, "#petite-trace end rows=N")
	}
	if err == nil && isCSVTrailer(rec) {
		n, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(rec[0], csvTrailer)), "rows=")
		err := s.end.atTrailer(s.rows.file, line, "rows", n, ok, s.data)
		_, after, aerr := s.rows.next()
		return nil, line, "", s.end.after(s.rows.file, line, after, aerr, err)
	}
	s.data++
	if err != nil {
		return nil, line, "", err
	}
	id := ""
	if c := s.cols[ccJobID]; c >= 0 && c < len(rec) {
		id = strings.TrimSpace(rec[c])
	}
	if s.rows.cut {
		return nil, line, id, s.end.cutAt(s.rows.file, line, "row")
	}
	r := row{file: s.rows.file, line: line, rec: rec}
	c := &s.cols
	out := &csvRow{}
	for i := range out.key {
		out.key[i] = r.str(c[i])
	}
	out.job = Job{
		ID: out.key[ccJobID], Tenant: out.key[ccTenant], Group: out.key[ccGroup], QoS: out.key[ccQoS],
		Submit:   canonTime(&r, c[ccSubmit], "submit"),
		Start:    canonTime(&r, c[ccStart], "start"),
		End:      canonTime(&r, c[ccEnd], "end"),
		Duration: canonTime(&r, c[ccDuration], "duration"),
	}
	if out.job.ID == "" {
		r.fail("job_id", "a job id", "")
	}
	if p := out.key[ccPriority]; p != "" {
		v, err := strconv.Atoi(p)
		if err != nil {
			r.fail("priority", "an integer", p)
		}
		out.job.Priority = v
	}
	var ok bool
	if out.job.Kind, ok = ParseKind(out.key[ccKind]); !ok {
		r.fail("kind", "training, inference or empty", out.key[ccKind])
	}
	if out.job.Status, ok = ParseStatus(out.key[ccStatus]); !ok {
		r.fail("status", "succeeded, failed, killed, timeout, running, pending or empty", out.key[ccStatus])
	}
	for _, i := range []int{ccTask, ccCount, ccGPUs, ccGPUMilli, ccGPUModels, ccCPUMilli, ccMemoryMiB} {
		if r.str(c[i]) != "" {
			out.hasTask = true
		}
	}
	if out.hasTask {
		t := Task{Name: r.str(c[ccTask])}
		t.Count = int(r.int(c[ccCount], "count", 1, false))
		t.GPUs = int(r.int(c[ccGPUs], "gpus", 0, false))
		def := int64(0)
		if t.GPUs > 0 {
			def = 1000
		}
		t.GPUMilli = r.int(c[ccGPUMilli], "gpu_milli", def, false)
		t.GPUModels = splitModels(r.str(c[ccGPUModels]))
		t.CPUMilli = r.int(c[ccCPUMilli], "cpu_milli", 0, false)
		t.MemoryMiB = r.int(c[ccMemoryMiB], "memory_mib", 0, false)
		if r.err == nil && (t.Count > 1<<31 || t.GPUs > 1<<31 || t.Count < 0 || t.GPUs < 0) {
			r.fail("count/gpus", "a plausible size", r.str(c[ccCount])+"/"+r.str(c[ccGPUs]))
		}
		out.task = t
	}
	if r.err != nil {
		return nil, line, out.key[ccJobID], r.err
	}
	return out, line, out.key[ccJobID], nil
}

// canonTime reads a canonical time: seconds, or empty (or -1) for unknown.
func canonTime(r *row, i int, field string) int64 {
	s := r.str(i)
	if s == "" || s == "-1" {
		return NoTime
	}
	return r.int(i, field, NoTime, false)
}

// csvTrailer starts the last line of a canonical CSV file, which counts the
// data rows above it: "#petite-trace end rows=8152".
const csvTrailer = canonicalMagic + " end"

// isCSVTrailer reports whether a CSV record is the trailer line.
func isCSVTrailer(rec []string) bool {
	return len(rec) == 1 && (rec[0] == csvTrailer || strings.HasPrefix(rec[0], csvTrailer+" "))
}

// jsonlTrailer is the last line of a canonical JSON Lines file, which
// counts the job lines above it: {"petite_trace":"end","jobs":8152}.
type jsonlTrailer struct {
	PetiteTrace string `json:"petite_trace"`
	Jobs        *int   `json:"jobs"`
}

// trailerCheck is what a canonical reader knows of the end of its file: a
// canonical file ends with a trailer that counts its records, so a file
// cut short is told from a whole one. A file without the trailer (written
// before there was one, or by hand) is read when it ends with a newline,
// with a warning, and is an error under Strict; its last record, if no
// newline follows it, may be cut and is a bad record.
type trailerCheck struct {
	ended    bool // the trailer or the end was met
	cut      bool // a cut last record was reported
	warnings []string
}

// cutAt reports the last record of a file that ends without a newline
// and without a trailer.
func (c *trailerCheck) cutAt(file string, line int, what string) error {
	c.cut = true
	return &ParseError{File: file, Line: line, Err: fmt.Errorf("the file ends inside this %s (no newline after it, and no trailer): cut short?", what)}
}

// atEOF handles the end of the input without a trailer.
func (c *trailerCheck) atEOF(file string, lines int, strict bool, trailer string) error {
	c.ended = true
	if c.cut {
		return io.EOF
	}
	msg := "no trailer line (" + trailer + "): the file may have been cut short at a line end; files petite writes end with one"
	if strict {
		return &ParseError{File: file, Line: lines + 1, Err: errors.New(msg)}
	}
	c.warnings = append(c.warnings, file+": "+msg)
	return io.EOF
}

// atTrailer checks the trailer's count against the records read.
func (c *trailerCheck) atTrailer(file string, line int, field, count string, ok bool, read int) error {
	c.ended = true
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n != read {
		return &ParseError{File: file, Line: line, Field: field, Want: fmt.Sprintf("%d, the %s above the trailer", read, field), Got: count}
	}
	return io.EOF
}

// after checks that nothing follows the trailer (at line): next is what
// reading on gave. Content there is fatal: the file holds more than one
// trace, or was edited by hand.
func (c *trailerCheck) after(file string, line, nextLine int, next error, trailerErr error) error {
	if !errors.Is(next, io.EOF) {
		return fmt.Errorf("%s:%d: content after the trailer on line %d: two traces joined into one file?", file, nextLine, line)
	}
	return trailerErr
}

// isJSONLMeta reports whether a JSON Lines line is the meta line.
func isJSONLMeta(line []byte) bool {
	return bytes.Contains(line, []byte(`"petite_trace"`))
}

// readMeta reads the {"petite_trace":"v1",...} first line.
func (s *jsonlSource) readMeta(b []byte) error {
	var m jsonlMeta
	if err := json.Unmarshal(b, &m); err != nil || m.PetiteTrace != canonicalVersion {
		return &ParseError{File: s.file, Line: 1, Want: fmt.Sprintf(`a meta line {"petite_trace":%q,...}`, canonicalVersion), Got: string(b)}
	}
	if m.Clock != "" {
		if m.Clock != ClockUnix && m.Clock != ClockRelative {
			return &ParseError{File: s.file, Line: 1, Field: "clock", Want: "unix or relative", Got: string(m.Clock)}
		}
		s.info.Clock = m.Clock
	}
	if m.Zone != "" {
		if _, err := parseZone(m.Zone); err != nil {
			return &ParseError{File: s.file, Line: 1, Field: "zone", Want: "UTC, an offset like +08:00 or an IANA zone", Got: m.Zone}
		}
		s.info.Zone = m.Zone
	}
	return nil
}

// jsonlSource streams canonical JSON Lines.
type jsonlSource struct {
	file   string
	sc     *bufio.Scanner
	info   Meta
	strict bool
	line   int
	jobs   int  // job lines read, bad ones included, for the trailer
	cut    bool // the line just scanned ends the input without a newline
	end    trailerCheck
}

func (s *jsonlSource) meta() Meta { return s.info }

func (s *jsonlSource) warnings() []string { return s.end.warnings }

// split is bufio.ScanLines that notes a last line without its newline.
func (s *jsonlSource) split(data []byte, atEOF bool) (int, []byte, error) {
	adv, tok, err := bufio.ScanLines(data, atEOF)
	s.cut = tok != nil && atEOF && adv == len(data) && data[len(data)-1] != '\n'
	return adv, tok, err
}

func (s *jsonlSource) next(j *Job) error {
	if s.end.ended {
		return io.EOF
	}
	for s.sc.Scan() {
		s.line++
		b := bytes.TrimSpace(s.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if s.line == 1 && isJSONLMeta(b) {
			continue // read by newCanonicalReader
		}
		if isJSONLMeta(b) {
			var tr jsonlTrailer
			if json.Unmarshal(b, &tr) == nil && tr.PetiteTrace == "end" {
				count := ""
				if tr.Jobs != nil {
					count = strconv.Itoa(*tr.Jobs)
				}
				err := s.end.atTrailer(s.file, s.line, "jobs", count, tr.Jobs != nil, s.jobs)
				line := s.line
				for s.sc.Scan() {
					s.line++
					if len(bytes.TrimSpace(s.sc.Bytes())) > 0 {
						return s.end.after(s.file, line, s.line, nil, err)
					}
				}
				return s.end.after(s.file, line, 0, io.EOF, err)
			}
		}
		s.jobs++
		*j = Job{Submit: NoTime, Start: NoTime, End: NoTime, Duration: NoTime}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(j); err != nil {
			if s.cut {
				// JSON shows a whole line whole; this one is not.
				return s.end.cutAt(s.file, s.line, "line")
			}
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return &ParseError{File: s.file, Line: s.line, Path: te.Field, Want: "a JSON " + te.Type.String(), Got: te.Value}
			}
			return &ParseError{File: s.file, Line: s.line, Err: fmt.Errorf("not a JSON job: %w", err)}
		}
		if len(j.Tasks) == 0 {
			j.Tasks = nil
		}
		if dec.More() {
			return &ParseError{File: s.file, Line: s.line, Err: errors.New("more than one JSON value on the line")}
		}
		if err := j.Validate(); err != nil {
			return &ParseError{File: s.file, Line: s.line, Err: err}
		}
		return nil
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &TooLongError{File: s.file, Line: s.line + 1, What: "JSON line"}
		}
		return fmt.Errorf("%s:%d: %w", s.file, s.line+1, err)
	}
	return s.end.atEOF(s.file, s.line, s.strict, `{"petite_trace":"end","jobs":N}`)
}

// Writer writes jobs in a canonical format. Call Close to flush.
type Writer interface {
	// Write writes one job.
	Write(j *Job) error
	// Close writes the trailer that marks the file whole and flushes
	// what is buffered; it does not close the underlying io.Writer. Call
	// it only when every job is written: a file without its trailer
	// reads as possibly cut short.
	Close() error
}

// NewWriter returns a Writer of the canonical format f (FormatCSV or
// FormatJSONL) that first writes m's clock and zone.
func NewWriter(w io.Writer, f Format, m Meta) (Writer, error) {
	switch f {
	case FormatCSV:
		return newCSVWriter(w, m), nil
	case FormatJSONL:
		return newJSONLWriter(w, m), nil
	}
	return nil, fmt.Errorf("cannot write format %q: want %s or %s", f, FormatCSV, FormatJSONL)
}

type csvWriter struct {
	bw     *bufio.Writer
	cw     *csv.Writer
	rec    []string
	lastID string
	wrote  bool
	rows   int // data rows written, for the trailer
	closed bool
	err    error
}

func newCSVWriter(w io.Writer, m Meta) *csvWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &csvWriter{bw: bw, cw: csv.NewWriter(bw), rec: make([]string, ccN)}
	_, cw.err = bw.WriteString(metaLine(m) + "\n")
	if cw.err == nil {
		cw.err = cw.cw.Write(canonicalColumns)
	}
	return cw
}

func fmtTime(t int64) string {
	if t == NoTime {
		return ""
	}
	return strconv.FormatInt(t, 10)
}

// Write writes the job's rows. Two jobs in a row with the same ID would
// read back as one, so the second is an error.
func (w *csvWriter) Write(j *Job) error {
	if w.err != nil {
		return w.err
	}
	if w.wrote && j.ID == w.lastID {
		return fmt.Errorf("job %q follows a job with the same id: canonical CSV would read them as one", j.ID)
	}
	w.wrote, w.lastID = true, j.ID
	r := w.rec
	r[ccJobID], r[ccSubmit], r[ccStart], r[ccEnd], r[ccDuration] = j.ID, fmtTime(j.Submit), fmtTime(j.Start), fmtTime(j.End), fmtTime(j.Duration)
	r[ccTenant], r[ccGroup], r[ccQoS], r[ccKind], r[ccStatus] = j.Tenant, j.Group, j.QoS, string(j.Kind), string(j.Status)
	r[ccPriority] = ""
	if j.Priority != 0 {
		r[ccPriority] = strconv.Itoa(j.Priority)
	}
	if len(j.Tasks) == 0 {
		for i := ccTask; i < ccN; i++ {
			r[i] = ""
		}
		w.rows++
		w.err = w.cw.Write(r)
		return w.err
	}
	for _, t := range j.Tasks {
		r[ccTask] = t.Name
		r[ccCount] = strconv.Itoa(t.Count)
		r[ccGPUs] = strconv.Itoa(t.GPUs)
		r[ccGPUMilli] = strconv.FormatInt(t.GPUMilli, 10)
		r[ccGPUModels] = strings.Join(t.GPUModels, "|")
		r[ccCPUMilli] = strconv.FormatInt(t.CPUMilli, 10)
		r[ccMemoryMiB] = strconv.FormatInt(t.MemoryMiB, 10)
		w.rows++
		if w.err = w.cw.Write(r); w.err != nil {
			return w.err
		}
	}
	return nil
}

// Close writes the trailer, which counts the rows, and flushes.
func (w *csvWriter) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	w.cw.Flush()
	if w.err = w.cw.Error(); w.err != nil {
		return w.err
	}
	if _, w.err = fmt.Fprintf(w.bw, "%s rows=%d\n", csvTrailer, w.rows); w.err != nil {
		return w.err
	}
	w.err = w.bw.Flush()
	return w.err
}

type jsonlWriter struct {
	bw     *bufio.Writer
	enc    *json.Encoder
	jobs   int // job lines written, for the trailer
	closed bool
	err    error
}

func newJSONLWriter(w io.Writer, m Meta) *jsonlWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	jw := &jsonlWriter{bw: bw, enc: json.NewEncoder(bw)}
	jw.enc.SetEscapeHTML(false)
	jw.err = jw.enc.Encode(jsonlMeta{PetiteTrace: canonicalVersion, Clock: m.Clock, Zone: m.Zone})
	return jw
}

// Write writes the job as one line. A job with a string that is not valid
// UTF-8 is an error: JSON would turn its bytes into U+FFFD, and the line
// would read back as another job.
func (w *jsonlWriter) Write(j *Job) error {
	if w.err != nil {
		return w.err
	}
	if field := invalidUTF8(j); field != "" {
		return fmt.Errorf("job %q: %s is not valid UTF-8, which JSON Lines cannot hold: write petite-csv instead", j.ID, field)
	}
	if j.Tasks == nil {
		jj := *j
		jj.Tasks = []Task{}
		j = &jj
	}
	w.jobs++
	w.err = w.enc.Encode(j)
	return w.err
}

// invalidUTF8 names the first string field of j that is not valid UTF-8,
// or returns "".
func invalidUTF8(j *Job) string {
	for _, f := range []struct{ name, v string }{
		{"id", j.ID}, {"tenant", j.Tenant}, {"group", j.Group}, {"qos", j.QoS}, {"kind", string(j.Kind)}, {"status", string(j.Status)},
	} {
		if !utf8.ValidString(f.v) {
			return f.name
		}
	}
	for i, t := range j.Tasks {
		if !utf8.ValidString(t.Name) {
			return fmt.Sprintf("task %d name", i)
		}
		for _, m := range t.GPUModels {
			if !utf8.ValidString(m) {
				return fmt.Sprintf("task %d gpu_models", i)
			}
		}
	}
	return ""
}

// Close writes the trailer, which counts the job lines, and flushes.
func (w *jsonlWriter) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	jobs := w.jobs
	if w.err = w.enc.Encode(jsonlTrailer{PetiteTrace: "end", Jobs: &jobs}); w.err != nil {
		return w.err
	}
	w.err = w.bw.Flush()
	return w.err
}
