package forecast

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"petite/traces"
)

// Point is one observation of a demand series.
type Point struct {
	T time.Time
	V float64
}

// ReadOptions say which columns of a series CSV to read.
type ReadOptions struct {
	// TimeColumn names the time column; "" is the first column named
	// time, timestamp, datetime, date, ts or t, else the first column.
	TimeColumn string
	// Column names the value column; "" is the first column after the
	// time column.
	Column string
}

// Limits of what ReadCSV accepts: a series is one short record a line, so
// a longer line or a file of more points is a mistake, not a series.
const (
	MaxLineBytes = 64 << 10
	MaxPoints    = 50_000_000
)

// Raw is a series as read: its points in time order and what was skipped.
type Raw struct {
	// Column is the value column read.
	Column string
	// Points are the observations sorted by time (stable for equal times).
	Points []Point
	// Missing counts records whose value was empty or NA: gaps.
	Missing int
}

// ReadCSV reads a demand series from a CSV file with a header line: a time
// column and a value column, one record a line. Times are RFC 3339, or
// zone-less ("2006-01-02 15:04:05", with 'T' or without seconds, or a date)
// read as UTC, or Unix seconds. An empty value, "NA", "NaN" or "null" is a
// missing point; any other value must be a finite number ≥ 0. A bad record
// is an error naming name, its line and the field; nothing is returned with
// it. Input may be gzip-compressed; a UTF-8 byte-order mark is dropped.
func ReadCSV(in io.Reader, name string, opts ReadOptions) (*Raw, error) {
	br, err := traces.Buffered(in, name)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 4096), MaxLineBytes)
	line := 0
	next := func() (string, bool) {
		for sc.Scan() {
			line++
			s := strings.TrimRight(sc.Text(), "\r")
			if strings.TrimSpace(s) != "" && !strings.HasPrefix(s, "#") {
				return s, true
			}
		}
		return "", false
	}
	head, ok := next()
	if !ok {
		if err := scanErr(sc, name, line); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: empty: want a header line naming a time and a value column", name)
	}
	names := splitRecord(head)
	tcol, vcol, err := columns(names, opts, name, line)
	if err != nil {
		return nil, err
	}
	raw := &Raw{Column: names[vcol]}
	need := max(tcol, vcol) + 1
	for {
		rec, ok := next()
		if !ok {
			break
		}
		f := splitRecord(rec)
		if len(f) < need {
			return nil, &traces.ParseError{File: name, Line: line, Field: names[max(tcol, vcol)],
				Want: fmt.Sprintf("%d fields as in the header", len(names)), Got: rec}
		}
		t, err := ParseTime(f[tcol])
		if err != nil {
			return nil, &traces.ParseError{File: name, Line: line, Field: names[tcol],
				Want: "a time (RFC 3339, zone-less YYYY-MM-DD HH:MM:SS read as UTC, or Unix seconds)", Got: f[tcol]}
		}
		v, missing, err := parseValue(f[vcol])
		if err != nil {
			return nil, &traces.ParseError{File: name, Line: line, Field: names[vcol],
				Want: "a finite number ≥ 0, or empty for a gap", Got: f[vcol]}
		}
		if missing {
			raw.Missing++
			continue
		}
		if len(raw.Points) >= MaxPoints {
			return nil, fmt.Errorf("%s:%d: more than %d points: not a series petite reads whole", name, line, MaxPoints)
		}
		raw.Points = append(raw.Points, Point{T: t, V: v})
	}
	if err := scanErr(sc, name, line); err != nil {
		return nil, err
	}
	if len(raw.Points) == 0 {
		return nil, fmt.Errorf("%s: no values in column %s", name, raw.Column)
	}
	slices.SortStableFunc(raw.Points, func(a, b Point) int { return a.T.Compare(b.T) })
	return raw, nil
}

func scanErr(sc *bufio.Scanner, name string, line int) error {
	err := sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("%s:%d: line longer than %d KiB: not a series file", name, line+1, MaxLineBytes>>10)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// columns finds the time and value columns of a header.
func columns(names []string, opts ReadOptions, file string, line int) (tcol, vcol int, err error) {
	tname := opts.TimeColumn
	if tname == "" {
		// The usual names, else the first column: a file of time and
		// value needs no flags.
		tcol = 0
		for _, n := range []string{"time", "timestamp", "datetime", "date", "ts", "t"} {
			if i := slices.Index(names, n); i >= 0 {
				tcol = i
				break
			}
		}
		tname = names[tcol]
	}
	tcol = slices.Index(names, tname)
	if tcol < 0 {
		return 0, 0, &traces.ParseError{File: file, Line: line, Field: tname,
			Want: "a header with a time column " + strconv.Quote(tname), Got: strings.Join(names, ",")}
	}
	if opts.Column == "" {
		for i := range names {
			if i != tcol {
				return tcol, i, nil
			}
		}
		return 0, 0, &traces.ParseError{File: file, Line: line,
			Want: "a header with a value column beside " + strconv.Quote(tname), Got: strings.Join(names, ",")}
	}
	vcol = slices.Index(names, opts.Column)
	if vcol < 0 || vcol == tcol {
		return 0, 0, &traces.ParseError{File: file, Line: line, Field: opts.Column,
			Want: "a header with a value column " + strconv.Quote(opts.Column), Got: strings.Join(names, ",")}
	}
	return tcol, vcol, nil
}

// splitRecord splits a CSV line into trimmed fields; a field may be quoted
// with double quotes (a series has no commas inside its fields).
func splitRecord(s string) []string {
	f := strings.Split(s, ",")
	for i, x := range f {
		x = strings.TrimSpace(x)
		if len(x) >= 2 && x[0] == '"' && x[len(x)-1] == '"' {
			x = x[1 : len(x)-1]
		}
		f[i] = x
	}
	return f
}

func parseValue(s string) (v float64, missing bool, err error) {
	switch strings.ToLower(s) {
	case "", "na", "nan", "null":
		return 0, true, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) || v < 0 {
		return 0, false, errors.New("bad value")
	}
	return v, false, nil
}

// zoneless are the layouts of times without a zone, read as UTC.
var zoneless = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// ParseTime reads a time as series files and flags give it: RFC 3339, a
// zone-less time read as UTC, or whole Unix seconds.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, l := range zoneless {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("not a time: %q", s)
}
