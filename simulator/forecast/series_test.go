package forecast

import (
	"bytes"
	"compress/gzip"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleFile = "testdata/philly_node_sequence_3w.csv"

func utc(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
}

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		opts    ReadOptions
		column  string
		want    []Point
		missing int
	}{
		{
			name:   "zone-less times are UTC, the first column after time is the default",
			in:     "time,active,total\n2017-10-03 00:01:00,5,420\n2017-10-03 00:00:00,4,420\n",
			column: "active",
			want:   []Point{{utc(2017, 10, 3, 0, 0), 4}, {utc(2017, 10, 3, 0, 1), 5}},
		},
		{
			name:   "a named column, RFC 3339 with an offset, Unix seconds, T and no seconds",
			in:     "total,time,active\n1,2017-10-03T02:00:00+02:00,7.5\n2,1507000000,8\n3,2017-10-03T00:05,9\n",
			opts:   ReadOptions{Column: "total"},
			column: "total",
			want:   []Point{{utc(2017, 10, 3, 0, 0), 1}, {utc(2017, 10, 3, 0, 5), 3}, {time.Unix(1507000000, 0).UTC(), 2}},
		},
		{
			name:   "a timestamp column found by name, else the first column",
			in:     "busy,timestamp\n3,2017-10-03 00:00:00\n",
			column: "busy",
			want:   []Point{{utc(2017, 10, 3, 0, 0), 3}},
		},
		{
			name:   "the first column as time when none is named so",
			in:     "when,busy\n2017-10-03 00:00:00,4\n",
			column: "busy",
			want:   []Point{{utc(2017, 10, 3, 0, 0), 4}},
		},
		{
			name:    "gaps, comments, blank lines, quotes, a BOM and CRLF",
			in:      "\ufeff# a comment\r\n\"when\",\"v\"\r\n\r\n2017-10-03,\"1\"\r\n2017-10-04,\r\n2017-10-05,NA\r\n2017-10-06,NaN\r\n2017-10-07,2\r\n",
			opts:    ReadOptions{TimeColumn: "when"},
			column:  "v",
			want:    []Point{{utc(2017, 10, 3, 0, 0), 1}, {utc(2017, 10, 7, 0, 0), 2}},
			missing: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := ReadCSV(strings.NewReader(tc.in), "s.csv", tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.column, raw.Column)
			assert.Equal(t, tc.missing, raw.Missing)
			require.Len(t, raw.Points, len(tc.want))
			for i, p := range raw.Points {
				assert.True(t, tc.want[i].T.Equal(p.T), "point %d: %v, want %v", i, p.T, tc.want[i].T)
				assert.Equal(t, time.UTC, p.T.Location(), "point %d", i)
				assert.Equal(t, tc.want[i].V, p.V, "point %d", i)
			}
		})
	}
}

func TestReadCSVGzip(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte("time,v\n2017-10-03 00:00:00,3\n"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	raw, err := ReadCSV(&b, "s.csv.gz", ReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []Point{{utc(2017, 10, 3, 0, 0), 3}}, raw.Points)
}

// Bad input is an error that names the file, the line and the field.
func TestReadCSVErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts ReadOptions
		want string
	}{
		{"bad time", "time,active\n2017-10-03 00:00:00,1\n\n03/10/2017,2\n", ReadOptions{}, `s.csv:4: field time: want a time`},
		{"bad value", "time,active\n2017-10-03 00:00:00,x\n", ReadOptions{}, `s.csv:2: field active: want a finite number ≥ 0, or empty for a gap, got "x"`},
		{"negative", "time,active\n2017-10-03 00:00:00,-1\n", ReadOptions{}, `s.csv:2: field active: want a finite number`},
		{"infinite", "time,active\n2017-10-03 00:00:00,+Inf\n", ReadOptions{}, `s.csv:2: field active`},
		{"short record", "time,a,b\n2017-10-03 00:00:00,1,2\n2017-10-03 00:01:00\n", ReadOptions{Column: "b"}, `s.csv:3: field b: want 3 fields as in the header`},
		{"no such column", "time,active\n", ReadOptions{Column: "busy"}, `s.csv:1: field busy: want a header with a value column "busy"`},
		{"no such time column", "when,active\n", ReadOptions{TimeColumn: "time"}, `s.csv:1: field time: want a header with a time column "time"`},
		{"first column not a time", "when,active\nyesterday,1\n", ReadOptions{}, `s.csv:2: field when: want a time`},
		{"time column only", "time\n2017-10-03,1\n", ReadOptions{}, `s.csv:1: want a header with a value column`},
		{"empty", "", ReadOptions{}, "s.csv: empty"},
		{"no values", "time,active\n2017-10-03,\n", ReadOptions{}, "s.csv: no values in column active"},
		{"line too long", "time,active\n" + strings.Repeat("1", MaxLineBytes+1) + "\n", ReadOptions{}, "s.csv:2: line longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := ReadCSV(strings.NewReader(tc.in), "s.csv", tc.opts)
			require.Error(t, err)
			assert.Nil(t, raw)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{"14d": 14 * day, "2w": 2 * week, "10m": 10 * time.Minute, "36h": 36 * time.Hour, "0d": 0} {
		got, err := ParseSpan(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		if want > 0 {
			back, err := ParseSpan(FormatSpan(got))
			require.NoError(t, err)
			assert.Equal(t, got, back, "FormatSpan(%v) reads back", got)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-2d", "x", "14"} {
		_, err := ParseSpan(in)
		assert.Error(t, err, in)
	}
}

func TestResample(t *testing.T) {
	pts := []Point{
		{utc(2017, 1, 1, 0, 1), 4}, {utc(2017, 1, 1, 0, 9), 8}, // step 00:00
		{utc(2017, 1, 1, 0, 30), 2}, // step 00:30; 00:10 and 00:20 are gaps
	}
	anchor := utc(2017, 1, 1, 1, 0) // after the data: steps before it count back
	for _, tc := range []struct {
		agg  Agg
		want []float64
	}{
		{AggMax, []float64{8, math.NaN(), math.NaN(), 2}},
		{AggMean, []float64{6, math.NaN(), math.NaN(), 2}},
	} {
		s, err := Resample(pts, anchor, 10*time.Minute, tc.agg)
		require.NoError(t, err)
		assert.Equal(t, utc(2017, 1, 1, 0, 0), s.Start, tc.agg)
		require.Len(t, s.Values, 4)
		for i, w := range tc.want {
			if math.IsNaN(w) {
				assert.True(t, math.IsNaN(s.Values[i]), "%s step %d: %v, want a gap", tc.agg, i, s.Values[i])
			} else {
				assert.Equal(t, w, s.Values[i], "%s step %d", tc.agg, i)
			}
		}
		assert.Equal(t, 6, s.Index(anchor))
	}
	_, err := Resample(pts, anchor, 0, AggMax)
	assert.Error(t, err)
	_, err = Resample([]Point{{utc(2000, 1, 1, 0, 0), 1}, {utc(2017, 1, 1, 0, 0), 1}}, anchor, time.Second, AggMax)
	assert.ErrorContains(t, err, "more than")
}

// The shipped slice of Philly's series: the zeros of 2017-10-26 are an
// outage and are masked, with the near-zero minutes that follow; the DST
// hour (~121 of ~337) and the 552-node burst are demand, however odd.
func TestMaskOutagesPhilly(t *testing.T) {
	s := readSample(t, 10*time.Minute)
	mask := MaskOutages(s, 0.05)
	var masked []time.Time
	for i, m := range mask {
		if m {
			masked = append(masked, s.At(i))
		}
	}
	require.NotEmpty(t, masked)
	assert.Equal(t, utc(2017, 10, 26, 0, 0), masked[0])
	assert.Equal(t, utc(2017, 10, 26, 17, 50), masked[len(masked)-1], "the 1–7 minutes up to 18:05 fall in the 18:00 step, whose max is 248")
	assert.Len(t, masked, 108, "every step from 00:00 to 17:50, and no other")
	assert.False(t, mask[s.Index(utc(2017, 11, 5, 1, 0))], "the DST hour is low, not an outage")
	assert.Equal(t, make([]bool, len(s.Values)), MaskOutages(s, 0), "fraction 0 masks nothing")
}

func readSample(t testing.TB, step time.Duration) *Series {
	t.Helper()
	f, err := os.Open(sampleFile)
	require.NoError(t, err)
	defer f.Close()
	raw, err := ReadCSV(f, sampleFile, ReadOptions{Column: "active"})
	require.NoError(t, err)
	require.Equal(t, 29641, len(raw.Points))
	s, err := Resample(raw.Points, utc(2017, 11, 6, 0, 0), step, AggMax)
	require.NoError(t, err)
	return s
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("time,active,total\n2017-10-03 00:00:00,312,420\n2017-10-03 00:01:00,,420\n"))
	f.Add([]byte("time,v\n1507000000,1e3\n2017-10-03T00:00:00Z,\"2\"\n"))
	f.Add([]byte("\ufefftime,v\r\n# c\r\n2017-10-03,NaN\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, err := ReadCSV(bytes.NewReader(in), "f.csv", ReadOptions{})
		if err != nil {
			assert.Nil(t, raw)
			assert.True(t, strings.HasPrefix(err.Error(), "f.csv"), "the error names the file: %v", err)
			return
		}
		require.NotEmpty(t, raw.Points)
		for i, p := range raw.Points {
			assert.False(t, math.IsNaN(p.V) || math.IsInf(p.V, 0) || p.V < 0, "value %v", p.V)
			if i > 0 {
				assert.False(t, p.T.Before(raw.Points[i-1].T), "sorted")
			}
		}
	})
}

// Whatever a series file holds, reading, resampling and forecasting it
// end in a forecast or an error, never a panic, and a forecast's values
// are finite and ordered within their interval.
func FuzzForecast(f *testing.F) {
	f.Add([]byte("time,v\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-03 00:00,0\n"), uint8(60))
	f.Add([]byte("time,v\n0,5\n86400,5\n172800,5\n259200,5\n"), uint8(6))
	f.Fuzz(func(t *testing.T, in []byte, stepMin uint8) {
		raw, err := ReadCSV(bytes.NewReader(in), "f.csv", ReadOptions{})
		if err != nil {
			return
		}
		step := time.Duration(max(1, int(stepMin))) * time.Minute
		last := raw.Points[len(raw.Points)-1].T
		s, err := Resample(raw.Points, last, step, AggMean)
		if err != nil {
			return
		}
		cfg := DefaultConfig()
		cfg.Origins = 3
		r, err := Forecast(s, s.At(len(s.Values)), 12, cfg)
		if err != nil {
			return
		}
		for _, st := range r.Steps {
			for _, v := range []float64{st.Value, st.Lo, st.Hi} {
				require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%+v", st)
			}
			require.LessOrEqual(t, st.Lo, st.Value+1e-9)
			require.LessOrEqual(t, st.Value, st.Hi+1e-9)
		}
	})
}
