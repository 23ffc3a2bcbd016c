package bench

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"testing"

	"petite/traces"
)

// rowSource is an io.Reader that makes a trace on the fly: a header, then
// rows made by row(i, buf) for i in [0, n). Nothing of it is kept, so
// whatever memory a benchmark sees belongs to the reader under test.
type rowSource struct {
	header []byte
	row    func(i int, buf []byte) []byte
	n, i   int
	buf    []byte
	footer []byte
}

func (s *rowSource) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) {
		switch {
		case s.header != nil:
			s.buf = append(s.buf, s.header...)
			s.header = nil
		case s.i < s.n:
			s.buf = s.row(s.i, s.buf)
			s.i++
		case s.footer != nil:
			s.buf = append(s.buf, s.footer...)
			s.footer = nil
		default:
			if len(s.buf) == 0 {
				return 0, io.EOF
			}
			n := copy(p, s.buf)
			s.buf = s.buf[:copy(s.buf, s.buf[n:])]
			return n, nil
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	return n, nil
}

func openbRow(i int, b []byte) []byte {
	b = append(b, "openb-pod-"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ",6000,12288,1,"...)
	b = strconv.AppendInt(b, int64(100+i%900), 10)
	b = append(b, ",V100M16|V100M32,LS,Running,"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(i+3600), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(i+5), 10)
	return append(b, '\n')
}

func canonicalRow(i int, b []byte) []byte {
	b = append(b, "job-"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(1700000000+i), 10)
	b = append(b, ",,,600,alice,vc1,,,training,,worker,4,8,1000,H100,64000,262144\n"...)
	return b
}

func phillyRow(i int, b []byte) []byte {
	if i > 0 {
		b = append(b, ",\n"...)
	}
	b = append(b, `{"status": "Pass", "vc": "ee9e8c", "jobid": "application_`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `", "attempts": [{"end_time": "2017-10-07 17:46:18", "start_time": "2017-10-07 17:42:43", "detail": [{"ip": "m388", "gpus": ["gpu3", "gpu5"]}]}], "submitted_time": "2017-10-07 17:42:42", "user": "6e2c5b"}`...)
	return b
}

// heapSampler records the largest live heap seen while reading.
type heapSampler struct{ peak uint64 }

func (h *heapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}

// readStream reads every job of src and samples the heap every 200,000
// jobs. It fails the benchmark unless exactly n jobs came back.
func readStream(b *testing.B, src io.Reader, format traces.Format, n int, h *heapSampler) {
	r, err := traces.NewReader(src, "synthetic", traces.Options{Format: format, Strict: true})
	if err != nil {
		b.Fatal(err)
	}
	got := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		got++
		if got%200_000 == 0 {
			h.sample()
		}
	}
	if got != n {
		b.Fatalf("read %d jobs, want %d", got, n)
	}
}

// BenchmarkTraceReadFlat reads synthetic traces of 1M and 4M rows (openb,
// canonical CSV) and 0.5M and 2M jobs (a Philly JSON array) and reports the
// peak heap in use while reading: it stays the same whatever the length,
// because readers stream. Run with:
//
//	go test ./bench -run '^$' -bench TraceReadFlat -benchtime 1x
func BenchmarkTraceReadFlat(b *testing.B) {
	cases := []struct {
		name           string
		format         traces.Format
		header, footer string
		row            func(int, []byte) []byte
		sizes          []int
	}{
		{"openb", traces.FormatOpenb, "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n", "", openbRow, []int{1_000_000, 4_000_000}},
		{"petite-csv", traces.FormatCSV, "#petite-trace v1 clock=unix zone=UTC\njob_id,submit,start,end,duration,tenant,group,priority,qos,kind,status,task,count,gpus,gpu_milli,gpu_models,cpu_milli,memory_mib\n", "#petite-trace end rows=%d\n", canonicalRow, []int{1_000_000, 4_000_000}},
		{"philly", traces.FormatPhilly, "[", "]", phillyRow, []int{500_000, 2_000_000}},
	}
	for _, c := range cases {
		for _, n := range c.sizes {
			b.Run(fmt.Sprintf("%s/rows=%d", c.name, n), func(b *testing.B) {
				runtime.GC()
				var h heapSampler
				h.sample()
				b.ResetTimer()
				for range b.N {
					footer := c.footer
					if c.format == traces.FormatCSV {
						footer = fmt.Sprintf(footer, n) // the trailer counts the rows
					}
					src := &rowSource{header: []byte(c.header), footer: []byte(footer), row: c.row, n: n}
					readStream(b, src, c.format, n, &h)
				}
				b.StopTimer()
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(h.peak)/(1<<20), "peak-heap-MiB")
			})
		}
	}
}

// BenchmarkTraceGen makes 1M jobs of the default spec per op, alone and
// written as canonical CSV, and reports jobs/s.
//
//	go test ./bench -run '^$' -bench TraceGen -benchtime 3x
func BenchmarkTraceGen(b *testing.B) {
	const n = 1_000_000
	for _, write := range []bool{false, true} {
		b.Run(fmt.Sprintf("jobs=1M/write=%v", write), func(b *testing.B) {
			spec := traces.DefaultSpec()
			spec.Jobs = n
			for range b.N {
				g, err := traces.NewGenerator(spec)
				if err != nil {
					b.Fatal(err)
				}
				var w traces.Writer
				if write {
					if w, err = traces.NewWriter(io.Discard, traces.FormatCSV, g.Meta()); err != nil {
						b.Fatal(err)
					}
				}
				got := 0
				for {
					j, err := g.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if w != nil {
						if err := w.Write(&j); err != nil {
							b.Fatal(err)
						}
					}
					got++
				}
				if w != nil {
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
				if got != n {
					b.Fatalf("generated %d jobs, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
