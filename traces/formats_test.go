package traces

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAll reads every job, failing the test on any error.
func readAll(t testing.TB, r *Reader) []Job {
	t.Helper()
	var jobs []Job
	for j, err := range r.All() {
		require.NoError(t, err)
		jobs = append(jobs, j)
	}
	return jobs
}

func byID(jobs []Job) map[string]Job {
	m := map[string]Job{}
	for _, j := range jobs {
		m[j.ID] = j
	}
	return m
}

func TestPAIJoin(t *testing.T) {
	r, err := Open("testdata/pai/pai_task_table.csv", Options{Strict: true})
	require.NoError(t, err)
	defer r.Close()
	jobs := readAll(t, r)
	assert.Equal(t, Meta{Format: FormatPAI, Clock: ClockRelative, Zone: "+08:00"}, r.Meta())
	require.Len(t, jobs, 7, "6 task runs (one without a job row) and one job without tasks")
	m := byID(jobs)

	ps := m["7b0f3a4dba4e2a4b2cb8e0d1"]
	assert.Equal(t, "a9b3d6f0c2e1", ps.Tenant)
	assert.Equal(t, StatusFailed, ps.Status)
	assert.Equal(t, []Task{
		{Name: "ps", Count: 2, CPUMilli: 6000, MemoryMiB: 30000},
		{Name: "worker", Count: 8, GPUs: 1, GPUMilli: 1000, GPUModels: []string{"V100M32"}, CPUMilli: 8000, MemoryMiB: 61024},
	}, ps.Tasks)
	assert.Equal(t, int64(8000), ps.GPUMilli())
	assert.Equal(t, int64(1631203), ps.Submit, "the job table's start_time is the submission")
	assert.Equal(t, int64(1631210), ps.Start, "the earliest task start")
	assert.Equal(t, int64(1650020-1631210), ps.Duration)

	half := m["4f057009a5d481acec67b088"].Tasks[0]
	assert.Equal(t, 1, half.GPUs)
	assert.Equal(t, int64(500), half.GPUMilli, "plan_gpu 50 is half a GPU")
	odd := m["c3e8d1f4a9b2c7e6d5f0a1b2"]
	assert.Equal(t, []int64{2, 750}, []int64{int64(odd.Tasks[0].GPUs), odd.Tasks[0].GPUMilli}, "plan_gpu 150 spreads over 2 GPUs")
	assert.Equal(t, NoTime, odd.End, "empty end_time of a running job")
	assert.Equal(t, StatusRunning, odd.Status)

	orphan := m["a0a1a2a3a4a5a6a7a8a9aaab"]
	assert.Empty(t, orphan.Tenant, "a task run without a job row has no user")
	assert.Equal(t, orphan.Start, orphan.Submit)
	unknownStart := m["e5f6a7b8c9d0e1f2a3b4c5d6"]
	assert.Equal(t, int64(3300000), unknownStart.Submit, "a 0.0 job start falls back to the first task start")
	waiting := jobs[len(jobs)-1]
	assert.Equal(t, "9e8d7c6b5a4f3e2d1c0b9a8f", waiting.ID, "jobs without tasks come last")
	assert.Empty(t, waiting.Tasks)
	assert.Equal(t, StatusPending, waiting.Status)
}

func TestPAIOneTable(t *testing.T) {
	jobs, err := os.ReadFile("testdata/pai/pai_job_table.csv")
	require.NoError(t, err)
	r, err := NewReader(strings.NewReader(string(jobs)), "pai_job_table.csv", Options{Strict: true})
	require.NoError(t, err)
	got := readAll(t, r)
	require.Len(t, got, 6)
	for _, j := range got {
		assert.Empty(t, j.Tasks)
	}
	tasks, err := os.ReadFile("testdata/pai/pai_task_table.csv")
	require.NoError(t, err)
	r, err = NewReader(strings.NewReader(string(tasks)), "pai_task_table.csv", Options{Strict: true, Format: FormatPAI})
	require.NoError(t, err)
	got = readAll(t, r)
	require.Len(t, got, 6)
	assert.Equal(t, StatusFailed, got[0].Status, "without a job row the status comes from the tasks")
}

func TestPAIErrors(t *testing.T) {
	job := "j1,i1,u1,Terminated,100.0,200.0\n"
	tests := []struct {
		name, jobs, tasks string
		want              []string
		n                 int
	}{
		{"inst_num not whole", job, "j1,t,1.5,Terminated,110.0,190.0,100.0,1.0,100.0,V100\n",
			[]string{`tasks.csv:1: field inst_num: want a whole number, got "1.5"`}, 0},
		{"wrong field count", job, "j1,t,1.0,Terminated\n",
			[]string{`tasks.csv:1: want 10 fields (pai_task_table: job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,plan_gpu,gpu_type), got "j1,t,1.0,Terminated"`}, 0},
		{"NaN plan_gpu is missing, text is not", job, "j1,t,1.0,Terminated,110.0,190.0,100.0,1.0,NaN,\nj2,t,1.0,Terminated,110.0,190.0,100.0,1.0,lots,\n",
			[]string{`tasks.csv:2: field plan_gpu: want a non-negative number, got "lots"`}, 1},
		{"bad job row reported with its tasks", "j1,i1,u1,Terminated,yesterday,200.0\n", "j1,t,1.0,Terminated,110.0,190.0,100.0,1.0,100.0,V100\n",
			[]string{`jobs.csv:1: field start_time: want a non-negative number, got "yesterday"`}, 0},
		{"duplicate job row", job + "j2,i2,u2,Terminated,1.0,2.0\n" + "j2,i3,u2,Terminated,1.0,2.0\n", "j3,t,1.0,Terminated,110.0,190.0,100.0,1.0,100.0,V100\n",
			[]string{`jobs.csv:3: field job_name: want a job listed once (first at line 2), got "j2"`}, 3},
		{"job table end before the first task start names the job row", "j0,i0,u0,Terminated,1.0,2.0\nj1,i1,u1,Terminated,100.0,105.0\n", "j1,t,1.0,Terminated,110.0,190.0,100.0,1.0,100.0,V100\n",
			[]string{`jobs.csv:2: field end_time: want a job end not before its first task start 110, got "105"`}, 1},
		{"task end before the first task start names the task row", "j1,i1,u1,Terminated,100.0,\n", "j1,t,1.0,Terminated,110.0,0.0,100.0,1.0,100.0,V100\nj1,t2,1.0,Terminated,120.0,105.0,100.0,1.0,100.0,V100\n",
			[]string{`tasks.csv:2: field end_time: want a job end not before its first task start 110, got "105"`}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewPAIReader(strings.NewReader(tc.jobs), "jobs.csv", strings.NewReader(tc.tasks), "tasks.csv", Options{})
			require.NoError(t, err)
			jobs := readAll(t, r)
			assert.Equal(t, tc.want, r.Problems().Examples)
			assert.Len(t, jobs, tc.n)
		})
	}
}

// TestPAIReadAheadBounded checks the join keeps few rows when both tables
// list jobs in the same order.
func TestPAIReadAheadBounded(t *testing.T) {
	var jobs, tasks strings.Builder
	for i := range 5000 {
		name := fmt.Sprintf("job%05d", i)
		jobs.WriteString(name + ",inst,u,Terminated,100.0,200.0\n")
		tasks.WriteString(name + ",worker,2.0,Terminated,110.0,190.0,600.0,2.0,100.0,T4\n")
	}
	r, err := NewPAIReader(strings.NewReader(jobs.String()), "j", strings.NewReader(tasks.String()), "t", Options{Strict: true})
	require.NoError(t, err)
	src := r.src.(*paiSource)
	n, most := 0, 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		n++
		most = max(most, len(src.ahead))
	}
	assert.Equal(t, 5000, n)
	assert.LessOrEqual(t, most, 1)
}

func TestPhilly(t *testing.T) {
	r, err := Open("testdata/philly/cluster_job_log", Options{Strict: true})
	require.NoError(t, err)
	defer r.Close()
	jobs := readAll(t, r)
	require.Len(t, jobs, 5)
	m := byID(jobs)
	none := m["application_1506638472019_1140"]
	assert.Empty(t, none.Tasks, "no attempts: demand unknown")
	assert.Equal(t, NoTime, none.Start)
	assert.Equal(t, StatusKilled, none.Status)

	multi := m["application_1506638472019_2004"]
	assert.Equal(t, []Task{{Name: "worker", Count: 2, GPUs: 4, GPUMilli: 1000}}, multi.Tasks, "GPUs from the first attempt, gpu ids past the machine's count accepted")
	assert.Equal(t, int64(1507113000), multi.End, "a None end on the first attempt; the job ends with its last attempt")

	skip := m["application_1506638472019_3311"]
	assert.Equal(t, 5, skip.GPUs(), "the first attempt lists no machine: the next one counts")
	assert.Equal(t, "ee9e8c", m["application_1506638472019_10238"].Group)
	assert.Equal(t, int64(7200), m["application_1506638472019_4400"].Duration, "overlapping attempts: earliest start to latest end")
}

func TestPhillyErrors(t *testing.T) {
	good := `{"status": "Pass", "vc": "v", "jobid": "a1", "attempts": [], "submitted_time": "2017-10-07 17:42:42", "user": "u"}`
	tests := []struct {
		name, in string
		want     []string
		fatal    string
		n        int
	}{
		{"bad time", `[` + good + `, {"status": "Pass", "jobid": "a2", "attempts": [{"start_time": "yesterday", "end_time": "None", "detail": []}], "submitted_time": "None"}]`,
			[]string{`log: $[1].attempts[0].start_time: want a time "YYYY-MM-DD HH:MM:SS" or "None", got "yesterday"`}, "", 1},
		{"bad status", `[{"status": "Done", "jobid": "a2", "attempts": []}, ` + good + `]`,
			[]string{`log: $[0].status: want Pass, Killed or Failed, got "Done"`}, "", 1},
		{"wrong type", `[{"status": "Pass", "jobid": "a2", "attempts": [{"start_time": 5}]}, ` + good + `]`,
			[]string{`log: $[0].attempts[0].start_time: want a JSON string, got "number"`}, "", 1},
		{"wrong type in a later attempt", `[{"status": "Pass", "jobid": "a2", "attempts": [{"start_time": "None"}, {"end_time": true}]}, ` + good + `]`,
			[]string{`log: $[0].attempts[1].end_time: want a JSON string, got "bool"`}, "", 1},
		{"attempt not an object", `[{"status": "Pass", "jobid": "a2", "attempts": [{}, {}, 7]}, ` + good + `]`,
			[]string{`log: $[0].attempts[2]: want a JSON object, got "number"`}, "", 1},
		{"attempts not an array", `[` + good + `, {"status": "Pass", "jobid": "a2", "attempts": "none"}]`,
			[]string{`log: $[1].attempts: want a JSON array, got "string"`}, "", 1},
		{"wrong type in a machine", `[{"status": "Pass", "jobid": "a2", "attempts": [{"detail": [{"ip": "m1"}, {"ip": 4}]}]}, ` + good + `]`,
			[]string{`log: $[0].attempts[0].detail[1].ip: want a JSON string, got "number"`}, "", 1},
		{"wrong type in a GPU id", `[{"status": "Pass", "jobid": "a2", "attempts": [{}, {"detail": [{"ip": "m1", "gpus": ["gpu0", 3]}]}]}, ` + good + `]`,
			[]string{`log: $[0].attempts[1].detail[0].gpus[1]: want a JSON string, got "number"`}, "", 1},
		{"end before start", `[{"status": "Pass", "jobid": "a2", "attempts": [{"start_time": "2017-10-07 17:42:42", "end_time": "2017-10-07 17:00:00"}]}]`,
			[]string{`log: $[0].attempts[0].end_time: want a time not before the attempt's start_time 2017-10-07 17:42:42, got "2017-10-07 17:00:00"`}, "", 0},
		{"truncated", `[` + good + `, {"status": "Pass", "jobid"`, nil, "log:1:", 1},
		{"not an array", `{"jobid": 1}`, nil, "log: want a JSON array of jobs", 0},
		{"empty array", `[]`, nil, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewPhillyReader(strings.NewReader(tc.in), "log", Options{})
			require.NoError(t, err)
			n := 0
			var fatal error
			for {
				_, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					fatal = err
					break
				}
				n++
			}
			assert.Equal(t, tc.n, n)
			assert.Equal(t, tc.want, r.Problems().Examples)
			if tc.fatal == "" {
				assert.NoError(t, fatal)
			} else {
				require.Error(t, fatal)
				assert.Contains(t, fatal.Error(), tc.fatal)
			}
		})
	}
}

func TestHelios(t *testing.T) {
	r, err := Open("testdata/helios/cluster_log.csv", Options{Strict: true})
	require.NoError(t, err)
	defer r.Close()
	m := byID(readAll(t, r))
	require.Len(t, m, 7)
	assert.Equal(t, []Task{{Count: 2, GPUs: 8, GPUMilli: 1000, CPUMilli: 32000}}, m["5fa2c7"].Tasks, "16 GPUs on 2 nodes")
	assert.Equal(t, []Task{{Count: 1, GPUs: 3, GPUMilli: 1000, CPUMilli: 10000}}, m["5fa2cc"].Tasks, "3 GPUs do not split over 2 nodes")
	assert.Equal(t, StatusTimeout, m["5fa2c7"].Status)
	assert.Equal(t, StatusFailed, m["5fa2cb"].Status, "NODE_FAIL")
	c := m["5fa2ca"]
	assert.Equal(t, []int64{NoTime, NoTime, 0}, []int64{c.Start, c.End, c.Duration}, "cancelled before it started")
	assert.Equal(t, int64(1585756770), m["5fa2b9"].Submit, "2020-04-01 23:59:30 +08:00")
}

func TestHeliosErrors(t *testing.T) {
	hdr := "job_id, user, vc, gpu_num, cpu_num, node_num, state, submit_time, start_time, end_time, duration, queue\n"
	tests := []struct{ name, row, want string }{
		{"duration mismatch", "j,u,v,1,1,1,COMPLETED,2020-04-01 00:00:00,2020-04-01 00:00:10,2020-04-01 00:01:10,61,10",
			`h.csv:2: field duration: want end_time − start_time = 60, got "61"`},
		{"queue mismatch", "j,u,v,1,1,1,COMPLETED,2020-04-01 00:00:00,2020-04-01 00:00:10,2020-04-01 00:01:10,60,9",
			`h.csv:2: field queue: want start_time − submit_time = 10, got "9"`},
		{"unknown state", "j,u,v,1,1,1,DONE,2020-04-01 00:00:00,,,,",
			`h.csv:2: field state: want COMPLETED, CANCELLED, FAILED, NODE_FAIL, TIMEOUT, RUNNING or PENDING, got "DONE"`},
		{"bad time", "j,u,v,1,1,1,FAILED,2020-04-01T00:00:00,,,,",
			`h.csv:2: field submit_time: want a time "YYYY-MM-DD HH:MM:SS", got "2020-04-01T00:00:00"`},
		{"start before submit", "j,u,v,1,1,1,FAILED,2020-04-01 00:00:00,2020-03-31 00:00:00,,,",
			`h.csv:2: field start_time: want a time not before submit_time 2020-04-01 00:00:00, got "2020-03-31 00:00:00"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewHeliosReader(strings.NewReader(hdr+tc.row+"\n"), "h.csv", Options{Strict: true})
			require.NoError(t, err)
			_, err = r.Next()
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
	r, err := NewHeliosReader(strings.NewReader(hdr+"j,u,v,2,8,1,COMPLETED,2020-04-01 00:00:00,NaN,None,NaN,NaN\n"), "h.csv", Options{Strict: true})
	require.NoError(t, err)
	j, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, NoTime, j.Duration, "NaN text reads as unknown")
}

func TestSniff(t *testing.T) {
	tests := []struct {
		path string
		want Format
	}{
		{"testdata/openb/openb_pod_list_gpuspec33_head.csv", FormatOpenb},
		{"testdata/openb/openb_pod_list_multigpu20_head.csv", FormatOpenb},
		{"samples/openb_node_list_gpu_node.csv", FormatOpenbNodes},
		{"testdata/pai/pai_job_table.csv", FormatPAI},
		{"testdata/pai/pai_task_table.csv", FormatPAI},
		{"testdata/pai/pai_machine_spec.csv", FormatPAIMachines},
		{"testdata/philly/cluster_job_log", FormatPhilly},
		{"testdata/philly/cluster_machine_list", FormatPhillyMachines},
		{"testdata/helios/cluster_log.csv", FormatHelios},
		{"testdata/helios/earth_cluster_gpu_number.csv", FormatHeliosGPUs},
		{"testdata/golden/pai.csv", FormatCSV},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			f, err := os.Open(tc.path)
			require.NoError(t, err)
			defer f.Close()
			br, err := decompress(f, tc.path)
			require.NoError(t, err)
			got, err := Sniff(br, tc.path)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := Sniff(bufioString("hello,world\n1,2\n"), "x.txt")
	assert.ErrorContains(t, err, `x.txt: cannot tell the format from the first line "hello,world"`)
	_, err = Sniff(bufioString(""), "e.csv")
	assert.EqualError(t, err, "e.csv: empty file, cannot tell its format")
}

func TestFleets(t *testing.T) {
	tests := []struct {
		path   string
		format Format
		n      int
		first  Machine
	}{
		{"samples/openb_node_list_gpu_node.csv", FormatOpenbNodes, 1213, Machine{Name: "openb-node-0000", GPUs: 2, GPUModel: "P100", CPUMilli: 64000, MemoryMiB: 262144}},
		{"testdata/pai/pai_machine_spec.csv", FormatPAIMachines, 8, Machine{Name: "7399a758eb02bae1a3621236", CPUMilli: 96000, MemoryMiB: 524288}},
		{"testdata/philly/cluster_machine_list", FormatPhillyMachines, 9, Machine{Name: "m0", GPUs: 2, GPUMemMiB: 12288}},
		{"testdata/helios/earth_cluster_gpu_number.csv", FormatHeliosGPUs, 25, Machine{Name: "vchbv", GPUs: 112}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			f, err := os.Open(tc.path)
			require.NoError(t, err)
			defer f.Close()
			ms, format, err := ReadFleet(f, tc.path, FormatAuto)
			require.NoError(t, err)
			assert.Equal(t, tc.format, format)
			require.Len(t, ms, tc.n)
			assert.Equal(t, tc.first, ms[0])
		})
	}
	_, err := ReadPhillyMachines(strings.NewReader("machineId, number of GPUs, single GPU mem\nm0,2, lots\n"), "ml")
	assert.EqualError(t, err, `ml:2: field single GPU mem: want a size like "12GB", got "lots"`)
	_, err = ReadHeliosGPUs(strings.NewReader("date,vcA,vcB,total\n2020-04-01,1,2,4\n"), "g.csv")
	assert.EqualError(t, err, `g.csv:2: field total: want the sum of the VC columns, 3, got "4"`)
	_, err = ReadPAIMachines(strings.NewReader("m1,CPU,96,512,8\n"), "spec")
	assert.EqualError(t, err, `spec:1: field cap_gpu: want 0 on a CPU machine, got "8"`)
	_, _, err = ReadFleet(strings.NewReader("[]"), "log", FormatAuto)
	assert.EqualError(t, err, "log: is a philly trace, a list of jobs, not of machines")
}

func bufioString(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func TestFleetStats(t *testing.T) {
	st := ComputeFleetStats(FormatPAIMachines, []Machine{
		{Name: "a", GPUs: 8, GPUModel: "V100", CPUMilli: 96000, MemoryMiB: 1024},
		{Name: "b", GPUs: 2, GPUModel: "T4"},
		{Name: "c", GPUs: 8, GPUModel: "V100"},
		{Name: "d"},
	})
	assert.Equal(t, FleetStats{Format: FormatPAIMachines, Machines: 4, GPUs: 18, CPUMilli: 96000, MemMiB: 1024, ByModel: []ModelCount{
		{Model: "", Machines: 1}, {Model: "T4", Machines: 1, GPUs: 2}, {Model: "V100", Machines: 2, GPUs: 16},
	}}, st)
}

func TestOpenGzip(t *testing.T) {
	plain, err := os.ReadFile("testdata/helios/cluster_log.csv")
	require.NoError(t, err)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err = zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	path := filepath.Join(t.TempDir(), "cluster_log.csv.gz")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	r, err := Open(path, Options{Strict: true})
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, FormatHelios, r.Meta().Format)
	assert.Len(t, readAll(t, r), 7)
}

// Every state the Helios reader accepts is named in its error for one it
// does not.
func TestHeliosStates(t *testing.T) {
	hdr := "job_id,gpu_num,state,submit_time\n"
	r, err := NewReader(strings.NewReader(hdr+"j,1,DONE,2020-04-01 00:00:00\n"), "h.csv", Options{Strict: true, Format: FormatHelios})
	require.NoError(t, err)
	_, badErr := r.Next()
	require.Error(t, badErr)
	tests := []struct {
		state string
		want  Status
	}{
		{"COMPLETED", StatusSucceeded}, {"CANCELLED", StatusKilled}, {"FAILED", StatusFailed}, {"NODE_FAIL", StatusFailed},
		{"TIMEOUT", StatusTimeout}, {"RUNNING", StatusRunning}, {"PENDING", StatusPending},
	}
	for _, tc := range tests {
		t.Run(tc.state, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(hdr+"j,1,"+tc.state+",2020-04-01 00:00:00\n"), "h.csv", Options{Strict: true, Format: FormatHelios})
			require.NoError(t, err)
			j, err := r.Next()
			require.NoError(t, err)
			assert.Equal(t, tc.want, j.Status)
			assert.Contains(t, badErr.Error(), tc.state, "the error lists %s", tc.state)
		})
	}
}
