package traces

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// longInput is a trace made on the fly: head, then n bytes of fill, then
// tail. It counts what was read of it, and keeps none of it, so the memory
// a test sees is the reader's.
type longInput struct {
	head, tail []byte
	fill       byte
	n          int
	read       int
}

func (l *longInput) Read(p []byte) (int, error) {
	total := len(l.head) + l.n + len(l.tail)
	if l.read >= total {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && l.read < total {
		switch {
		case l.read < len(l.head):
			c := copy(p[k:], l.head[l.read:])
			k += c
			l.read += c
		case l.read < len(l.head)+l.n:
			c := min(len(p)-k, len(l.head)+l.n-l.read)
			for i := range c {
				p[k+i] = l.fill
			}
			k += c
			l.read += c
		default:
			c := copy(p[k:], l.tail[l.read-len(l.head)-l.n:])
			k += c
			l.read += c
		}
	}
	return k, nil
}

// heapGrowth runs f and returns the bytes it allocated.
func heapGrowth(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A row of 16 MiB (one field, or a quote never closed) ends every reader
// with an error naming the file and line, after reading little more than
// MaxRecordBytes of it and allocating a bounded amount.
func TestRecordCap(t *testing.T) {
	const field = 16 << 20
	openbHead := "name,cpu_milli,memory_mib,num_gpu\np1,1,1,0\np2,1,1,0\n"
	canonHead := "#petite-trace v1 clock=unix zone=UTC\njob_id,submit\nj1,1\n"
	tests := []struct {
		name       string
		in         *longInput
		read       func(io.Reader) error
		wantPrefix string
	}{
		{"openb jobs", &longInput{head: []byte(openbHead + "p3,"), fill: '7', tail: []byte(",1,0\n")}, readerOfFormat(FormatOpenb), "big.csv:4: CSV row longer than 4 MiB"},
		{"openb jobs, quote never closed", &longInput{head: []byte(openbHead + "\"p3\n"), fill: 'x'}, readerOfFormat(FormatOpenb), "big.csv:5: CSV row longer than 4 MiB"},
		{"openb pods", &longInput{head: []byte(openbHead + "p3,"), fill: '7', tail: []byte(",1,0\n")}, func(r io.Reader) error {
			_, err := ReadOpenbPods(r, "big.csv")
			return err
		}, "big.csv:4: CSV row longer"},
		{"openb nodes", &longInput{head: []byte("sn,cpu_milli,memory_mib,gpu,model\nn,"), fill: '1'}, func(r io.Reader) error {
			_, _, err := ReadFleet(r, "big.csv", FormatAuto)
			return err
		}, "big.csv:2: CSV row longer"},
		{"canonical CSV", &longInput{head: []byte(canonHead + "j2,"), fill: '1', tail: []byte("\n")}, readerOfFormat(FormatCSV), "big.csv:4: CSV row longer"},
		{"canonical JSON Lines", &longInput{head: []byte(`{"id":"a","submit":1}` + "\n" + `{"id":"`), fill: 'a', tail: []byte(`"}` + "\n")}, readerOfFormat(FormatJSONL), "big.csv:2: JSON line longer"},
		{"helios", &longInput{head: []byte("job_id,gpu_num,node_num,state,submit_time\nj,"), fill: '1'}, readerOfFormat(FormatHelios), "big.csv:2: CSV row longer"},
		{"pai", &longInput{head: []byte("j,t,1.0,Running,2.0,,1.0,1.0,,\nj2,"), fill: 't'}, readerOfFormat(FormatPAI), "big.csv:2: CSV row longer"},
		{"philly", &longInput{head: []byte("[\n{\"jobid\": \"a\", \"status\": \"Pass\"},\n{\"jobid\": \""), fill: 'a', tail: []byte("\"}]")}, readerOfFormat(FormatPhilly), "big.csv:3: $[1]: JSON job longer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.n = field
			var err error
			grew := heapGrowth(func() { err = tc.read(tc.in) })
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.wantPrefix), "error %q, want it to start %q", err, tc.wantPrefix)
			var tl *TooLongError
			assert.True(t, errors.As(err, &tl), "a *TooLongError")
			assert.Less(t, tc.in.read, MaxRecordBytes+256<<10, "read past the cap")
			// Reading the row whole costs several times its 16 MiB.
			assert.Less(t, grew, uint64(10*MaxRecordBytes), "allocated %d MiB", grew>>20)
		})
	}
}

// readerOfFormat reads every job of a trace of format f, leniently.
func readerOfFormat(f Format) func(io.Reader) error {
	return func(in io.Reader) error {
		r, err := NewReader(in, "big.csv", Options{Format: f})
		if err != nil {
			return err
		}
		for _, err := range r.All() {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// A field over MaxFieldBytes in a row under MaxRecordBytes is one bad
// record, named by file, line and column; the rows around it read.
func TestFieldCap(t *testing.T) {
	long := strings.Repeat("x", MaxFieldBytes+1)
	tests := []struct {
		name, in string
		format   Format
		want     string
	}{
		{"openb", "name,cpu_milli,memory_mib,num_gpu,qos\np1,1,1,0,LS\np2,1,1,0," + long + "\np3,1,1,0,LS\n", FormatOpenb, "f:3: field qos: 1048577 bytes, longer than 1 MiB (traces.MaxFieldBytes)"},
		{"canonical", "job_id,submit,tenant\nj1,1,a\nj2,1," + long + "\nj3,1,a\n", FormatCSV, "f:3: field tenant: 1048577 bytes"},
		{"json lines", `{"id":"j1","submit":1}` + "\n" + `{"id":"j2","submit":1,"tenant":"` + long + `"}` + "\n" + `{"id":"j3","submit":1}` + "\n", FormatJSONL, "f:2: job j2: tenant is 1048577 bytes, longer than 1 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tc.in), "f", Options{Format: tc.format})
			require.NoError(t, err)
			var ids []string
			for j, err := range r.All() {
				require.NoError(t, err)
				ids = append(ids, j.ID)
			}
			assert.Equal(t, []string{ids[0], ids[len(ids)-1]}, ids)
			p := r.Problems()
			require.Equal(t, 1, p.Skipped)
			assert.True(t, strings.HasPrefix(p.Examples[0], tc.want), "%q, want it to start %q", p.Examples[0], tc.want)
		})
	}
}

// capReader's positions: line and column of any byte after the mark.
func TestCapReaderPosition(t *testing.T) {
	in := "ab\ncde\n\nfg"
	c := newCapReader(strings.NewReader(in), true)
	buf := make([]byte, 4)
	var all bytes.Buffer
	for {
		n, err := c.Read(buf)
		all.Write(buf[:n])
		if err != nil {
			break
		}
		if all.Len() == 4 {
			c.setMark(4)
		}
	}
	require.Equal(t, in, all.String())
	for _, tc := range []struct {
		at        int64
		line, col int
	}{{4, 2, 2}, {6, 2, 4}, {7, 3, 1}, {8, 4, 1}, {9, 4, 2}} {
		line, col, ok := c.position(tc.at)
		require.True(t, ok)
		assert.Equal(t, []int{tc.line, tc.col}, []int{line, col}, "byte %d", tc.at)
	}
	_, _, ok := c.position(2)
	assert.False(t, ok, "before the mark")
	assert.True(t, c.endsCut())
}

// rowsInput makes n rows of a trace on the fly after a header.
type rowsInput struct {
	header string
	row    func(i int) string
	n, i   int
	buf    []byte
}

func (r *rowsInput) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) && (r.header != "" || r.i < r.n) {
		if r.header != "" {
			r.buf, r.header = append(r.buf, r.header...), ""
			continue
		}
		r.buf = append(r.buf, r.row(r.i)...)
		r.i++
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	return n, nil
}

// The cap is per record: files many times MaxRecordBytes long, of
// ordinary rows or jobs, read whole.
func TestRecordCapIsPerRecord(t *testing.T) {
	const n = 200_000 // about 12 MiB of CSV, 18 MiB of JSON
	tests := []struct {
		name   string
		format Format
		in     *rowsInput
	}{
		{"openb", FormatOpenb, &rowsInput{header: "name,cpu_milli,memory_mib,num_gpu,qos\n", row: func(i int) string {
			return fmt.Sprintf("pod-%07d,1000,2048,1,LS-%040d\n", i, i)
		}}},
		{"philly", FormatPhilly, &rowsInput{header: "[\n", row: func(i int) string {
			sep := ",\n"
			if i == n-1 {
				sep = "\n]\n"
			}
			return fmt.Sprintf(`{"jobid": "j%07d", "status": "Pass", "attempts": [], "user": "u%040d"}`+sep, i, i)
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.n = n
			r, err := NewReader(tc.in, "long", Options{Format: tc.format, Strict: true})
			require.NoError(t, err)
			got := 0
			for _, err := range r.All() {
				require.NoError(t, err)
				got++
			}
			assert.Equal(t, n, got)
		})
	}
}
