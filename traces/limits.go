package traces

import (
	"bytes"
	"fmt"
	"io"
)

// The longest record and field the readers take. A trace whose row has no
// end (a file of one 200 MB field, a quote never closed) would otherwise be
// read whole into memory: with these caps a reader holds a few times
// MaxRecordBytes at most and fails with the file and line instead.
const (
	// MaxRecordBytes caps one record: a CSV row (quoted line breaks
	// included), a JSON Lines line, or one job of a Philly JSON array.
	MaxRecordBytes = 4 << 20
	// MaxFieldBytes caps one CSV field or JSON string of a job.
	MaxFieldBytes = 1 << 20
)

// TooLongError is a record longer than MaxRecordBytes. It ends the read:
// the reader cannot find where the record ends without reading it all.
type TooLongError struct {
	File string // the file name as given to the reader
	Line int    // the line the read stopped in
	What string // "CSV row", "JSON line", "JSON job"
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("%s:%d: %s longer than %d MiB (traces.MaxRecordBytes): not a trace, or a field without its closing quote?",
		e.File, e.Line, e.What, MaxRecordBytes>>20)
}

// errRecordTooLong is what capReader hands its reader when a record passes
// the cap; the reader turns it into a *TooLongError.
var errRecordTooLong = fmt.Errorf("record longer than %d bytes", MaxRecordBytes)

// capReader is what the CSV readers and the Philly reader read through. It
// delivers at most MaxRecordBytes past mark, the start of the record being
// read (the reader moves it after each record), so a record without end
// costs bounded memory. It also counts lines, remembers the last byte (a
// file that does not end in a newline may have been cut), and, when keep is
// set, keeps the bytes from the mark on so a JSON syntax error can be placed
// by line and column.
type capReader struct {
	r     io.Reader
	limit int64
	off   int64 // bytes delivered
	mark  int64 // start of the record being read
	lines int   // newlines delivered
	last  byte  // the last byte delivered
	eof   bool  // r said io.EOF

	keep    bool
	kept    []byte // bytes from keptOff to off, from index ks on
	ks      int
	keptOff int64
	lastNL  int64 // offset of the last newline before keptOff, -1 if none
}

func newCapReader(r io.Reader, keep bool) *capReader {
	return &capReader{r: r, limit: MaxRecordBytes, keep: keep, lastNL: -1}
}

func (c *capReader) Read(p []byte) (int, error) {
	room := c.mark + c.limit - c.off
	if room <= 0 {
		return 0, errRecordTooLong
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	if n > 0 {
		b := p[:n]
		c.off += int64(n)
		c.lines += bytes.Count(b, []byte{'\n'})
		c.last = b[n-1]
		if c.keep {
			c.kept = append(c.kept, b...)
		}
	}
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// setMark says the record before off is read: the next may take the full
// allowance from there.
func (c *capReader) setMark(off int64) {
	c.mark = off
	if !c.keep || off <= c.keptOff {
		return
	}
	drop := int(min(off, c.off) - c.keptOff)
	if i := bytes.LastIndexByte(c.kept[c.ks:c.ks+drop], '\n'); i >= 0 {
		c.lastNL = c.keptOff + int64(i)
	}
	c.ks += drop
	c.keptOff += int64(drop)
	// Move the kept bytes down once the dropped part is the larger, so
	// each byte is copied about once.
	if c.ks > len(c.kept)-c.ks {
		c.kept = c.kept[:copy(c.kept, c.kept[c.ks:])]
		c.ks = 0
	}
}

// lineAt is the line (1-based) of the byte at offset at, which must be at
// or after the mark and at most off.
func (c *capReader) lineAt(at int64) int {
	after := 0
	if c.keep && at >= c.keptOff && at <= c.off {
		after = bytes.Count(c.kept[c.ks+int(at-c.keptOff):], []byte{'\n'})
	}
	return c.lines - after + 1
}

// position is the line and column (1-based, in bytes) of the byte at
// offset at; ok is false when the bytes around it were not kept.
func (c *capReader) position(at int64) (line, col int, ok bool) {
	if !c.keep || at < c.keptOff || at > c.off {
		return 0, 0, false
	}
	nl := c.lastNL
	if i := bytes.LastIndexByte(c.kept[c.ks:c.ks+int(at-c.keptOff)], '\n'); i >= 0 {
		nl = c.keptOff + int64(i)
	}
	return c.lineAt(at), int(at - nl), true
}

// window returns the kept bytes from offset from (at or after the mark) to
// what was delivered.
func (c *capReader) window(from int64) []byte {
	if !c.keep || from < c.keptOff || from > c.off {
		return nil
	}
	return c.kept[c.ks+int(from-c.keptOff):]
}

// endsCut reports whether the input is at its end and its last byte is not
// a newline: the last record may have been cut short.
func (c *capReader) endsCut() bool {
	return c.eof && c.off > 0 && c.last != '\n'
}
