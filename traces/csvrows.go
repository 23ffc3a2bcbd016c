package traces

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// csvRows streams CSV records with their line numbers. Syntax errors in one
// record come back as *ParseError, so a lenient reader can skip the record.
type csvRows struct {
	file  string
	r     *csv.Reader
	in    *capReader
	names []string // the header's column names, once read
	// cut is set when the record next returned last is the end of the
	// input and no newline follows it: the file may have been cut there.
	cut bool
}

func newCSVRows(r io.Reader, file string) *csvRows {
	in := newCapReader(r, false)
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	return &csvRows{file: file, r: cr, in: in}
}

// next returns the next record and its first line. A record that is not
// valid CSV, or has a field longer than MaxFieldBytes, is a *ParseError; a
// record longer than MaxRecordBytes is a *TooLongError; an I/O failure is
// returned wrapped; io.EOF at the end.
func (c *csvRows) next() (rec []string, line int, err error) {
	rec, err = c.r.Read()
	c.in.setMark(c.r.InputOffset())
	c.cut = false
	if err == nil {
		line, _ = c.r.FieldPos(0)
		c.cut = c.in.endsCut() && c.r.InputOffset() == c.in.off
		for i, f := range rec {
			if len(f) > MaxFieldBytes {
				name := fmt.Sprintf("%d", i+1)
				if i < len(c.names) {
					name = c.names[i]
				}
				return nil, line, &ParseError{File: c.file, Line: line, Field: name,
					Err: fmt.Errorf("%d bytes, longer than %d MiB (traces.MaxFieldBytes)", len(f), MaxFieldBytes>>20)}
			}
		}
		return rec, line, nil
	}
	if errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	if errors.Is(err, errRecordTooLong) {
		return nil, c.in.lines + 1, &TooLongError{File: c.file, Line: c.in.lines + 1, What: "CSV row"}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, pe.StartLine, &ParseError{File: c.file, Line: pe.StartLine, Err: fmt.Errorf("not valid CSV: %w", pe.Err)}
	}
	return nil, 0, fmt.Errorf("%s: %w", c.file, err)
}

// header reads the header record and maps its trimmed column names to
// positions (decompress has dropped a byte-order mark before it). It fails if any of required is missing.
func (c *csvRows) header(required ...string) (map[string]int, error) {
	rec, line, err := c.next()
	if errors.Is(err, io.EOF) {
		return nil, &ParseError{File: c.file, Line: 1, Want: "a header row", Got: ""}
	}
	if err != nil {
		return nil, err
	}
	return c.headerOf(rec, line, required...)
}

// headerOf is header over a record already read.
func (c *csvRows) headerOf(rec []string, line int, required ...string) (map[string]int, error) {
	cols := make(map[string]int, len(rec))
	c.names = make([]string, len(rec))
	for i, name := range rec {
		c.names[i] = strings.TrimSpace(name)
		cols[c.names[i]] = i
	}
	for _, want := range required {
		if _, ok := cols[want]; !ok {
			return nil, &ParseError{File: c.file, Line: line, Want: "a header with column " + want, Got: strings.Join(rec, ",")}
		}
	}
	return cols, nil
}

// col returns the position of a column, or -1 if the header lacks it.
func col(cols map[string]int, name string) int {
	if i, ok := cols[name]; ok {
		return i
	}
	return -1
}

// row parses the fields of one record, remembering the first bad one.
type row struct {
	file string
	line int
	rec  []string
	err  *ParseError
}

// str returns field i trimmed, or "" when the record has no field i.
func (r *row) str(i int) string {
	if i < 0 || i >= len(r.rec) {
		return ""
	}
	return strings.TrimSpace(r.rec[i])
}

func (r *row) fail(field, want, got string) {
	if r.err == nil {
		r.err = fieldErr(r.file, r.line, field, want, got)
	}
}

// missing reports whether a field is empty or one of the spellings traces
// use for "no value".
func missing(s string) bool {
	switch s {
	case "", "None", "none", "NaN", "nan", "NULL", "null", "\\N", "NA":
		return true
	}
	return false
}

// int parses a non-negative integer field; a missing one gives def, and is
// an error when required.
func (r *row) int(i int, field string, def int64, required bool) int64 {
	s := r.str(i)
	if missing(s) {
		if required {
			r.fail(field, "a non-negative integer", s)
		}
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		r.fail(field, "a non-negative integer", s)
		return def
	}
	return v
}

// float parses a finite non-negative number; a missing field gives def,
// and is an error when required.
func (r *row) float(i int, field string, def float64, required bool) float64 {
	s := r.str(i)
	if missing(s) {
		if required {
			r.fail(field, "a non-negative number", s)
		}
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		r.fail(field, "a non-negative number", s)
		return def
	}
	return v
}

// whole parses a number written as a float that must be whole ("1.0",
// "4.55e+06"), as PAI writes every number; a missing field gives def.
func (r *row) whole(i int, field string, def int64, required bool) int64 {
	s := r.str(i)
	v := r.float(i, field, -1, required)
	if v < 0 {
		return def
	}
	if v != math.Trunc(v) || v > 1<<53 {
		r.fail(field, "a whole number", s)
		return def
	}
	return int64(v)
}
