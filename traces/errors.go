package traces

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseError is one bad record: it names the file, where in it (a line, or a
// JSON path for JSON sources), the field and what the reader wanted there.
//
// It prints as
//
//	openb_pod_list_x.csv:17: field cpu_milli: want a non-negative integer, got "abc"
//	cluster_job_log: [3].attempts[0].start_time: want a time "YYYY-MM-DD HH:MM:SS" or "None", got "x"
type ParseError struct {
	File  string // the file name as given to the reader
	Line  int    // 1-based line, 0 when the source has no lines to speak of
	Path  string // JSON path of the field, for JSON sources
	Field string // the column or key at fault, "" for a whole-record problem
	Want  string // what was expected, in words
	Got   string // what was there (quoted when printed)
	Err   error  // an underlying cause, if any
}

// Error formats the error as file:line: field F: want W, got "G".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	switch {
	case e.Line > 0:
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	switch {
	case e.Path != "":
		b.WriteString(e.Path)
		b.WriteString(": ")
	case e.Field != "":
		b.WriteString("field ")
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.Want != "" {
		b.WriteString("want ")
		b.WriteString(e.Want)
		b.WriteString(", got ")
		b.WriteString(strconv.Quote(clip(e.Got, 80)))
	}
	if e.Err != nil {
		if e.Want != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *ParseError) Unwrap() error { return e.Err }

// clip shortens s to at most n bytes (on a rune boundary) for messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// IsBadRecord reports whether err is a problem with one record (a
// *ParseError) rather than with the file as a whole.
func IsBadRecord(err error) bool {
	var pe *ParseError
	return errors.As(err, &pe)
}

// fieldErr builds the usual "want W, got G" ParseError for a CSV field.
func fieldErr(file string, line int, field, want, got string) *ParseError {
	return &ParseError{File: file, Line: line, Field: field, Want: want, Got: got}
}

// Problems counts the bad records a lenient reader skipped and keeps the
// first few of them to show.
type Problems struct {
	// Skipped is the number of records skipped.
	Skipped int `json:"skipped"`
	// Examples holds the first MaxExamples errors, in file order.
	Examples []string `json:"examples,omitempty"`
	// Warnings are doubts about the file as a whole that did not stop
	// the read: a canonical file without its trailer may have been cut
	// at a line end.
	Warnings []string `json:"warnings,omitempty"`
}

// MaxExamples is how many skipped records Problems keeps the error of.
const MaxExamples = 10

func (p *Problems) add(err error) {
	p.Skipped++
	if len(p.Examples) < MaxExamples {
		p.Examples = append(p.Examples, err.Error())
	}
}

// String summarises the problems in a line or a few.
func (p Problems) String() string {
	var b strings.Builder
	if p.Skipped == 0 {
		b.WriteString("no bad records")
	} else {
		fmt.Fprintf(&b, "%d bad records skipped", p.Skipped)
	}
	for _, e := range p.Examples {
		b.WriteString("\n  ")
		b.WriteString(e)
	}
	if p.Skipped > len(p.Examples) {
		fmt.Fprintf(&b, "\n  ... and %d more", p.Skipped-len(p.Examples))
	}
	for _, w := range p.Warnings {
		b.WriteString("\n  warning: ")
		b.WriteString(w)
	}
	return b.String()
}
