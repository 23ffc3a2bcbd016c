package traces

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"
)

// drain reads r to the end, failing if it yields more records than the
// input has bytes (a reader that makes no progress), and checks that every
// job it returns is valid.
func drain(t *testing.T, r *Reader, inputLen int) {
	t.Helper()
	for n := 0; ; n++ {
		if n > inputLen+1 {
			t.Fatalf("more records (%d) than input bytes (%d)", n, inputLen)
		}
		j, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if verr := j.Validate(); verr != nil {
			t.Fatalf("reader returned an invalid job: %v", verr)
		}
	}
}

func addFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzOpenbPods(f *testing.F) {
	addFiles(f, "testdata/openb/openb_pod_list_gpuspec33_head.csv", "testdata/openb/openb_pod_list_multigpu20_head.csv")
	f.Add([]byte("name,cpu_milli,memory_mib,num_gpu\np,1,1,99999999999\n"))
	f.Add([]byte("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\"p\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pods, err := ReadOpenbPods(bytes.NewReader(data), "f.csv")
		if err == nil {
			for _, p := range pods {
				if p.Name == "" || p.CPUMilli < 0 || p.GPUMilli > 1000 || p.NumGPU < 0 {
					t.Fatalf("accepted a bad pod: %+v", p)
				}
			}
		}
		r, err := NewReader(bytes.NewReader(data), "f.csv", Options{Format: FormatOpenb})
		if err == nil {
			drain(t, r, len(data))
		}
	})
}

func FuzzOpenbNodes(f *testing.F) {
	f.Add([]byte("sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0000,64000,262144,2,P100\nn1,96000,786432,0,\n"))
	f.Add([]byte("model,gpu,sn,memory_mib,cpu_milli\nA10,1,n,1,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := ReadOpenbNodes(bytes.NewReader(data), "n.csv")
		if err == nil {
			for _, n := range nodes {
				if n.Name == "" || n.GPU < 0 || (n.GPU > 0 && n.Model == "") {
					t.Fatalf("accepted a bad node: %+v", n)
				}
			}
		}
	})
}

func FuzzPAI(f *testing.F) {
	jobs, err := os.ReadFile("testdata/pai/pai_job_table.csv")
	if err != nil {
		f.Fatal(err)
	}
	tasks, err := os.ReadFile("testdata/pai/pai_task_table.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(jobs, tasks)
	f.Add([]byte("j,i,u,Terminated,1.0,\n"), []byte("j,t,1.0,Running,2.0,,1.0,1.0,150.0,V100\nj,t2,2.0,Running,2.0,,1.0,1.0,,\n"))
	f.Add([]byte(""), tasks)
	f.Fuzz(func(t *testing.T, jobs, tasks []byte) {
		r, err := NewPAIReader(bytes.NewReader(jobs), "jobs", bytes.NewReader(tasks), "tasks", Options{})
		if err == nil {
			drain(t, r, len(jobs)+len(tasks))
		}
	})
}

func FuzzPhilly(f *testing.F) {
	addFiles(f, "testdata/philly/cluster_job_log")
	f.Add([]byte(`[{"status":"Pass","jobid":"a","attempts":[{"start_time":"None","end_time":null,"detail":[{"ip":"m1","gpus":["gpu0","gpu0"]}]}]}]`))
	f.Add([]byte(`[{"jobid":5}, {"status":"Killed","jobid":"b"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewPhillyReader(bytes.NewReader(data), "log", Options{})
		if err == nil {
			drain(t, r, len(data))
		}
	})
}

func FuzzHelios(f *testing.F) {
	addFiles(f, "testdata/helios/cluster_log.csv")
	f.Add([]byte("job_id, user, vc, gpu_num, cpu_num, node_num, state, submit_time, start_time, end_time, duration, queue\nj,u,v,8.0,NaN,0,FAILED,2020-04-01 00:00:00,None,,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewHeliosReader(bytes.NewReader(data), "h.csv", Options{})
		if err == nil {
			drain(t, r, len(data))
		}
	})
}

// FuzzCanonical reads canonical CSV or JSON Lines leniently and checks that
// what it reads writes back and reads again to the same jobs.
func FuzzCanonical(f *testing.F) {
	addFiles(f, "testdata/golden/pai.csv", "testdata/golden/philly.csv", "testdata/golden/openb_gpuspec33_head.csv")
	f.Add([]byte(`{"petite_trace":"v1","clock":"relative","zone":"+08:00"}` + "\n" + `{"id":"a","submit":1,"tasks":[{"count":2,"gpus":1,"gpu_milli":5}]}` + "\n"))
	f.Add([]byte("job_id,submit,gpus,gpu_models\nj,1,1,\"A|B\"\nj,1,2,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []Format{FormatCSV, FormatJSONL} {
			r, err := NewReader(bytes.NewReader(data), "c", Options{Format: format})
			if err != nil {
				continue
			}
			var jobs []Job
			for n := 0; ; n++ {
				if n > len(data)+1 {
					t.Fatal("no progress")
				}
				j, err := r.Next()
				if err != nil {
					break
				}
				if err := j.Validate(); err != nil {
					t.Fatalf("invalid job read: %v", err)
				}
				jobs = append(jobs, j)
			}
			for _, out := range []Format{FormatCSV, FormatJSONL} {
				var buf bytes.Buffer
				w, err := NewWriter(&buf, out, r.Meta())
				if err != nil {
					t.Fatal(err)
				}
				if out == FormatCSV && adjacentSameIDs(jobs) {
					continue // the CSV writer refuses these (tested below)
				}
				if out == FormatJSONL && anyInvalidUTF8(jobs) {
					continue // the JSON Lines writer refuses these (TestJSONLWriterRefusesInvalidUTF8)
				}
				for i := range jobs {
					if err := w.Write(&jobs[i]); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				again, err := NewReader(bytes.NewReader(buf.Bytes()), "again", Options{Strict: true})
				if err != nil {
					t.Fatalf("re-read %s: %v", out, err)
				}
				got := 0
				for j, err := range again.All() {
					if err != nil {
						t.Fatalf("re-read %s: %v\n%s", out, err, buf.Bytes())
					}
					if got >= len(jobs) {
						t.Fatalf("re-read %s: more jobs than written", out)
					}
					if !sameJob(j, jobs[got]) {
						t.Fatalf("re-read %s: job %d\n got %+v\nwant %+v", out, got, j, jobs[got])
					}
					got++
				}
				if got != len(jobs) {
					t.Fatalf("re-read %s: %d jobs, wrote %d", out, got, len(jobs))
				}
			}
		}
	})
}

// sameJob compares jobs treating nil and empty slices alike.
func sameJob(a, b Job) bool {
	norm := func(j Job) Job {
		c := j.Clone()
		if len(c.Tasks) == 0 {
			c.Tasks = nil
		}
		for i := range c.Tasks {
			if len(c.Tasks[i].GPUModels) == 0 {
				c.Tasks[i].GPUModels = nil
			}
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// adjacentSameIDs reports whether two consecutive jobs share an ID, which
// canonical CSV reads back as one job.
func adjacentSameIDs(jobs []Job) bool {
	for i := 1; i < len(jobs); i++ {
		if jobs[i].ID == jobs[i-1].ID {
			return true
		}
	}
	return false
}

// anyInvalidUTF8 reports whether a job has a string that is not valid
// UTF-8, which JSON cannot hold.
func anyInvalidUTF8(jobs []Job) bool {
	for i := range jobs {
		if invalidUTF8(&jobs[i]) != "" {
			return true
		}
	}
	return false
}

func FuzzFleet(f *testing.F) {
	addFiles(f, "testdata/pai/pai_machine_spec.csv", "testdata/philly/cluster_machine_list", "testdata/helios/earth_cluster_gpu_number.csv")
	f.Add([]byte("sn,cpu_milli,memory_mib,gpu,model\nn,1,1,1,T4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _, err := ReadFleet(bytes.NewReader(data), "fleet", FormatAuto)
		if err == nil {
			for _, m := range ms {
				if m.GPUs < 0 || m.CPUMilli < 0 || m.MemoryMiB < 0 {
					t.Fatalf("accepted a bad machine: %+v", m)
				}
			}
		}
	})
}

func FuzzSniff(f *testing.F) {
	addFiles(f, "testdata/pai/pai_task_table.csv", "testdata/philly/cluster_job_log", "testdata/golden/helios.csv")
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "any", Options{})
		if err == nil {
			drain(t, r, len(data))
		}
	})
}

// FuzzCanonicalCut writes what it reads as canonical CSV and JSON Lines,
// cuts the file at any byte and reads it again: a strict read of a cut file
// fails or gives every job (a cut that lost nothing: the trailer's newline);
// a lenient read gives the jobs before the cut, the last perhaps short of
// tasks, and owns up to the cut with a bad record or a warning.
func FuzzCanonicalCut(f *testing.F) {
	for _, p := range []string{"testdata/golden/pai.csv", "testdata/golden/philly.csv"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, at := range []uint16{0, 100, 317, uint16(len(b) - 1), uint16(len(b) - 2)} {
			f.Add(b, at)
		}
	}
	f.Add([]byte("job_id,submit,task,gpus\na,1,w,1\na,1,p,2\nb,2,w,0\n"), uint16(30))
	f.Fuzz(func(t *testing.T, data []byte, at uint16) {
		r, err := NewReader(bytes.NewReader(data), "c", Options{Format: FormatCSV})
		if err != nil {
			return
		}
		var jobs []Job
		for j, err := range r.All() {
			if err != nil {
				return
			}
			jobs = append(jobs, j)
		}
		if adjacentSameIDs(jobs) || anyInvalidUTF8(jobs) {
			return
		}
		for _, out := range []Format{FormatCSV, FormatJSONL} {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, out, r.Meta())
			if err != nil {
				t.Fatal(err)
			}
			for i := range jobs {
				if err := w.Write(&jobs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			full := buf.Bytes()
			cut := full[:int(at)%len(full)]
			strict, err := NewReader(bytes.NewReader(cut), "cut", Options{Format: out, Strict: true})
			if err == nil {
				var got []Job
				var rerr error
				for j, err := range strict.All() {
					if err != nil {
						rerr = err
						break
					}
					got = append(got, j)
				}
				if rerr == nil && len(got) != len(jobs) {
					t.Fatalf("%s cut at %d of %d: a strict read gave %d of %d jobs and no error", out, len(cut), len(full), len(got), len(jobs))
				}
			}
			lenient, err := NewReader(bytes.NewReader(cut), "cut", Options{Format: out})
			if err != nil {
				continue
			}
			var got []Job
			for j, err := range lenient.All() {
				if err != nil {
					break
				}
				got = append(got, j)
			}
			if len(got) > len(jobs) {
				t.Fatalf("%s cut at %d: more jobs than written", out, len(cut))
			}
			for i := range got {
				if i < len(got)-1 && !sameJob(got[i], jobs[i]) || got[i].ID != jobs[i].ID {
					t.Fatalf("%s cut at %d: job %d\n got %+v\nwant %+v", out, len(cut), i, got[i], jobs[i])
				}
			}
			p := lenient.Problems()
			complete := len(got) == len(jobs) && (len(got) == 0 || sameJob(got[len(got)-1], jobs[len(jobs)-1]))
			if !complete && p.Skipped == 0 && len(p.Warnings) == 0 {
				t.Fatalf("%s cut at %d of %d: %d of %d jobs read with no bad record and no warning", out, len(cut), len(full), len(got), len(jobs))
			}
		}
	})
}

// FuzzCapReaderPosition checks capReader's line and column against a count
// over the whole input, with marks set along the way.
func FuzzCapReaderPosition(f *testing.F) {
	f.Add([]byte("ab\ncde\n\nfg"), uint8(3), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, chunk, step uint8) {
		c := newCapReader(bytes.NewReader(data), true)
		buf := make([]byte, int(chunk)%17+1)
		for {
			_, err := c.Read(buf)
			if err != nil {
				break
			}
			if next := c.mark + int64(step%9); next <= c.off {
				c.setMark(next)
			}
		}
		if c.off != int64(len(data)) {
			t.Fatalf("delivered %d of %d", c.off, len(data))
		}
		for at := c.mark; at <= int64(len(data)); at++ {
			line, col, ok := c.position(at)
			if !ok {
				t.Fatalf("no position for %d (mark %d)", at, c.mark)
			}
			wantLine := bytes.Count(data[:at], []byte{'\n'}) + 1
			wantCol := int(at) - bytes.LastIndexByte(data[:at], '\n')
			if line != wantLine || col != wantCol {
				t.Fatalf("byte %d: line %d col %d, want %d %d", at, line, col, wantLine, wantCol)
			}
		}
	})
}
