package traces

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// phillyTimeLayout is how cluster_job_log writes times (US Pacific, no zone).
const phillyTimeLayout = "2006-01-02 15:04:05"

// phillyZone is the zone the Philly cluster logged its times in.
const phillyZone = "America/Los_Angeles"

// phillyJobJSON is one element of cluster_job_log. Attempts, and the
// machines and GPUs within them, are decoded one at a time (see
// decodeAt), so that a value of the wrong type is reported with its index.
type phillyJobJSON struct {
	Status    string            `json:"status"`
	VC        string            `json:"vc"`
	JobID     string            `json:"jobid"`
	Attempts  []json.RawMessage `json:"attempts"`
	Submitted *string           `json:"submitted_time"`
	User      string            `json:"user"`
}

type phillyAttemptJSON struct {
	Start  *string           `json:"start_time"`
	End    *string           `json:"end_time"`
	Detail []json.RawMessage `json:"detail"`
}

type phillyMachineJSON struct {
	IP   string            `json:"ip"`
	GPUs []json.RawMessage `json:"gpus"`
}

// phillyAttempt is one attempt, decoded.
type phillyAttempt struct {
	start, end *string
	machines   []phillyMachine
}

// phillyMachine is one machine of an attempt: its name and GPU ids.
type phillyMachine struct {
	ip   string
	gpus []string
}

// phillySource streams the elements of the cluster_job_log JSON array.
type phillySource struct {
	file  string
	in    *capReader
	dec   *json.Decoder
	loc   *time.Location
	index int  // index of the next element
	begun bool // the opening '[' was read
	done  bool
}

// NewPhillyReader reads a Philly cluster_job_log (a JSON array of jobs) one
// job at a time. Times are read in US Pacific time and kept as Unix seconds.
// A job's GPUs come from its first attempt that lists any machine (the trace
// authors count the first attempt; the two agree whenever that attempt has
// a detail); its start is the earliest attempt start and its end the latest
// attempt end, "None" times skipped. When the earliest start comes after the
// latest end (no attempt has both times, and they contradict each other),
// the job is kept with its start and end unknown. Machines of an attempt
// with the same number of GPUs form one task. The input may be
// gzip-compressed; a leading UTF-8 byte-order mark is dropped.
func NewPhillyReader(in io.Reader, name string, opts Options) (*Reader, error) {
	br, err := decompress(in, name)
	if err != nil {
		return nil, err
	}
	return newPhillyReader(br, name, opts)
}

// newPhillyReader is NewPhillyReader over input decompress has prepared.
func newPhillyReader(br *bufio.Reader, name string, opts Options) (*Reader, error) {
	loc, err := time.LoadLocation(phillyZone)
	if err != nil {
		return nil, fmt.Errorf("philly: %w", err)
	}
	in := newCapReader(br, true)
	return newReader(&phillySource{file: name, in: in, dec: json.NewDecoder(in), loc: loc}, opts), nil
}

func (s *phillySource) meta() Meta {
	return Meta{Format: FormatPhilly, Clock: ClockUnix, Zone: phillyZone}
}

// syntaxErr reports JSON the decoder cannot go on after, met in element
// idx by a call that started at offset from; comma says whether a comma was
// due before the element. It names the line and column, as jq does.
func (s *phillySource) syntaxErr(idx int, from int64, comma bool, err error) error {
	if errors.Is(err, errRecordTooLong) {
		return &TooLongError{File: s.file, Line: s.in.lines + 1, What: fmt.Sprintf("$[%d]: JSON job", idx)}
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	at := s.errorOffset(from, comma)
	if line, col, ok := s.in.position(at); ok {
		return fmt.Errorf("%s:%d:%d: $[%d]: not valid JSON: %w", s.file, line, col, idx, err)
	}
	return fmt.Errorf("%s: $[%d]: not valid JSON near byte %d: %w", s.file, idx, at, err)
}

// errorOffset finds the byte a syntax error is at. The decoder's own
// offsets count from different places for different errors, so the kept
// bytes from offset from are scanned again by a fresh decoder, whose
// SyntaxError.Offset counts from its start.
func (s *phillySource) errorOffset(from int64, comma bool) int64 {
	w := s.in.window(from)
	i := 0
	for i < len(w) && (w[i] == ' ' || w[i] == '\t' || w[i] == '\r' || w[i] == '\n') {
		i++
	}
	if comma {
		if i == len(w) || w[i] != ',' {
			return from + int64(i)
		}
		i++
	}
	var v json.RawMessage
	err := json.NewDecoder(bytes.NewReader(w[i:])).Decode(&v)
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 {
		return from + int64(i) + se.Offset - 1
	}
	return from + int64(len(w)) // cut short: the error is at the end
}

func (s *phillySource) next(j *Job) error {
	if s.done {
		return io.EOF
	}
	if !s.begun {
		tok, err := s.dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: empty file, want a JSON array of jobs", s.file)
			}
			return s.syntaxErr(0, 0, false, err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf("%s: want a JSON array of jobs, got %v", s.file, tok)
		}
		s.begun = true
		s.in.setMark(s.dec.InputOffset())
	}
	from := s.dec.InputOffset()
	if !s.dec.More() {
		if _, err := s.dec.Token(); err != nil {
			return s.syntaxErr(s.index, from, s.index > 0, err)
		}
		s.done = true
		return io.EOF
	}
	idx := s.index
	s.index++
	var raw phillyJobJSON
	err := s.dec.Decode(&raw)
	var te *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &te) {
		return s.syntaxErr(idx, from, idx > 0, err)
	}
	// The decoder read the whole element, even one of the wrong type, so
	// the stream can go on after it.
	s.in.setMark(s.dec.InputOffset())
	if te != nil {
		return &ParseError{File: s.file, Path: fmt.Sprintf("$[%d].%s", idx, te.Field), Want: "a JSON " + jsonKind(te.Type.String()), Got: te.Value}
	}
	if err := s.convert(j, idx, &raw); err != nil {
		return err
	}
	if err := j.Validate(); err != nil {
		return &ParseError{File: s.file, Path: fmt.Sprintf("$[%d]", idx), Err: err}
	}
	return nil
}

func jsonKind(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "string"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.Contains(goType, "struct"), strings.HasPrefix(strings.TrimPrefix(goType, "*"), "traces."):
		return "object"
	}
	return goType
}

// decodeAt decodes one JSON value of the element at path ("$[3].attempts[0]")
// into v; a value of the wrong type in it is a *ParseError naming its full
// path.
func (s *phillySource) decodeAt(raw json.RawMessage, v any, path string) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			path += "." + te.Field
		}
		return &ParseError{File: s.file, Path: path, Want: "a JSON " + jsonKind(te.Type.String()), Got: te.Value}
	}
	return &ParseError{File: s.file, Path: path, Err: err}
}

// attempt decodes attempt k of a job, its machines and their GPU ids.
func (s *phillySource) attempt(raw json.RawMessage, path string) (phillyAttempt, error) {
	var aj phillyAttemptJSON
	if err := s.decodeAt(raw, &aj, path); err != nil {
		return phillyAttempt{}, err
	}
	a := phillyAttempt{start: aj.Start, end: aj.End, machines: make([]phillyMachine, len(aj.Detail))}
	for m, rd := range aj.Detail {
		mpath := fmt.Sprintf("%s.detail[%d]", path, m)
		var mj phillyMachineJSON
		if err := s.decodeAt(rd, &mj, mpath); err != nil {
			return phillyAttempt{}, err
		}
		a.machines[m] = phillyMachine{ip: mj.IP, gpus: make([]string, len(mj.GPUs))}
		for g, rg := range mj.GPUs {
			if err := s.decodeAt(rg, &a.machines[m].gpus[g], fmt.Sprintf("%s.gpus[%d]", mpath, g)); err != nil {
				return phillyAttempt{}, err
			}
		}
	}
	return a, nil
}

// time parses a Philly time; nil, "None" and "" are unknown.
func (s *phillySource) time(v *string, path string) (int64, error) {
	if v == nil || missing(*v) {
		return NoTime, nil
	}
	t, err := time.ParseInLocation(phillyTimeLayout, *v, s.loc)
	if err != nil || t.Unix() < 0 {
		return 0, &ParseError{File: s.file, Path: path, Want: `a time "YYYY-MM-DD HH:MM:SS" or "None"`, Got: *v}
	}
	return t.Unix(), nil
}

func (s *phillySource) convert(j *Job, idx int, raw *phillyJobJSON) error {
	at := func(suffix string) string { return fmt.Sprintf("$[%d]%s", idx, suffix) }
	if raw.JobID == "" {
		return &ParseError{File: s.file, Path: at(".jobid"), Want: "a job id", Got: ""}
	}
	*j = Job{ID: raw.JobID, Tenant: raw.User, Group: raw.VC, Kind: KindTraining, Start: NoTime, End: NoTime, Duration: NoTime}
	switch raw.Status {
	case "Pass":
		j.Status = StatusSucceeded
	case "Killed":
		j.Status = StatusKilled
	case "Failed":
		j.Status = StatusFailed
	default:
		return &ParseError{File: s.file, Path: at(".status"), Want: "Pass, Killed or Failed", Got: raw.Status}
	}
	var err error
	if j.Submit, err = s.time(raw.Submitted, at(".submitted_time")); err != nil {
		return err
	}
	counted := false
	for k, ra := range raw.Attempts {
		path := at(fmt.Sprintf(".attempts[%d]", k))
		a, err := s.attempt(ra, path)
		if err != nil {
			return err
		}
		start, err := s.time(a.start, path+".start_time")
		if err != nil {
			return err
		}
		end, err := s.time(a.end, path+".end_time")
		if err != nil {
			return err
		}
		if start != NoTime && end != NoTime && end < start {
			return &ParseError{File: s.file, Path: path + ".end_time", Want: "a time not before the attempt's start_time " + *a.start, Got: *a.end}
		}
		if start != NoTime && (j.Start == NoTime || start < j.Start) {
			j.Start = start
		}
		if end > j.End {
			j.End = end
		}
		if !counted && len(a.machines) > 0 {
			counted = true
			if err := s.tasks(j, a, path); err != nil {
				return err
			}
		}
	}
	if j.Start != NoTime && j.End != NoTime {
		if j.End < j.Start {
			// Every attempt with both times ends after it starts, so
			// this happens only when none has both, as with attempt 0
			// "None" to 01:00 and attempt 1 02:00 to "None". Then
			// neither time is what it stands for: an attempt ended
			// before the earliest known start, so the job started
			// earlier, and one started after the latest known end, so
			// it ended later. Both are unknown; the job stays.
			j.Start, j.End = NoTime, NoTime
		} else {
			j.Duration = j.End - j.Start
		}
	}
	return nil
}

// tasks turns one attempt's machines into tasks: machines with the same
// number of distinct GPU ids form one task, in order of first appearance.
func (s *phillySource) tasks(j *Job, a phillyAttempt, path string) error {
	var ips []string
	gpus := map[string][]string{}
	for m, d := range a.machines {
		if d.ip == "" {
			return &ParseError{File: s.file, Path: fmt.Sprintf("%s.detail[%d].ip", path, m), Want: "a machine name", Got: ""}
		}
		if _, ok := gpus[d.ip]; !ok {
			ips = append(ips, d.ip)
			gpus[d.ip] = nil
		}
		for _, g := range d.gpus {
			if !slices.Contains(gpus[d.ip], g) {
				gpus[d.ip] = append(gpus[d.ip], g)
			}
		}
	}
	for _, ip := range ips {
		n := len(gpus[ip])
		found := false
		for i := range j.Tasks {
			if j.Tasks[i].GPUs == n {
				j.Tasks[i].Count++
				found = true
				break
			}
		}
		if !found {
			t := Task{Name: "worker", Count: 1, GPUs: n}
			if n > 0 {
				t.GPUMilli = 1000
			}
			j.Tasks = append(j.Tasks, t)
		}
	}
	return nil
}
