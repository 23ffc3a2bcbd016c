package traces

import (
	"bufio"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// The column orders of the header-less PAI tables, as published in their
// .header files.
var (
	paiJobColumns     = []string{"job_name", "inst_id", "user", "status", "start_time", "end_time"}
	paiTaskColumns    = []string{"job_name", "task_name", "inst_num", "status", "start_time", "end_time", "plan_cpu", "plan_mem", "plan_gpu", "gpu_type"}
	paiMachineColumns = []string{"machine", "gpu_type", "cap_cpu", "cap_mem", "cap_gpu"}
)

// paiJob is one row of pai_job_table.
type paiJob struct {
	name, user, status string
	start, end         int64 // NoTime when 0 or empty
	line               int
	err                error // the row's parse error, reported with its job
}

// paiTask is one row of pai_task_table.
type paiTask struct {
	job        string
	task       Task
	status     string
	start, end int64
	line       int
	err        error
}

// paiSource joins the task table to the job table as it streams. The task
// table drives: a job is a run of consecutive task rows with the same
// job_name. Its job row is looked up in the job table, reading ahead and
// keeping the rows passed over until their tasks come. When the two tables
// list jobs in the same order (as the published ones do, and as sorting
// both by job_name guarantees) the read-ahead stays a few rows long;
// otherwise it grows up to the job table's size, a plain hash join.
type paiSource struct {
	jobs, tasks *csvRows

	ahead     map[string]*paiJob // job rows read ahead, by name
	order     []string           // names in ahead, in file order (for the tail)
	jobsDone  bool               // job table read to the end
	peek      *paiTask           // first row of the next task run
	tasksDone bool
	tail      int     // position in order while emitting jobs without tasks
	queued    []error // bad rows met while reading ahead, to report in turn
}

// NewPAIReader joins a PAI task table to its job table; either may be nil
// (a job table alone gives jobs without tasks, a task table alone jobs
// without users). The names are used in error messages. Either table may be
// gzip-compressed; a leading UTF-8 byte-order mark is dropped.
//
// A job's submit time is the job table's start_time (PAI's job start is the
// submission), its start the earliest task start, its end the job table's
// end_time (else the latest task end). A time of 0.0 or an empty field is
// unknown. plan_cpu (percent of a core), plan_mem (GB, read as GiB) and
// plan_gpu (percent of one GPU) are per instance; a plan_gpu above 100 that
// is not a whole number of GPUs is spread evenly over the next whole number
// of GPUs (150 → 2 GPUs × 750 milli).
func NewPAIReader(jobTable io.Reader, jobName string, taskTable io.Reader, taskName string, opts Options) (*Reader, error) {
	var jobs, tasks *bufio.Reader
	var err error
	if jobTable != nil {
		if jobs, err = decompress(jobTable, jobName); err != nil {
			return nil, err
		}
	}
	if taskTable != nil {
		if tasks, err = decompress(taskTable, taskName); err != nil {
			return nil, err
		}
	}
	return newPAIReader(jobs, jobName, tasks, taskName, opts), nil
}

// newPAIReader is NewPAIReader over tables decompress has prepared; either
// may be nil.
func newPAIReader(jobTable *bufio.Reader, jobName string, taskTable *bufio.Reader, taskName string, opts Options) *Reader {
	s := &paiSource{ahead: map[string]*paiJob{}}
	if jobTable != nil {
		s.jobs = newCSVRows(jobTable, jobName)
	} else {
		s.jobsDone = true
	}
	if taskTable != nil {
		s.tasks = newCSVRows(taskTable, taskName)
	} else {
		s.tasksDone = true
	}
	return newReader(s, opts)
}

func (s *paiSource) meta() Meta { return Meta{Format: FormatPAI, Clock: ClockRelative, Zone: "+08:00"} }

func (s *paiSource) next(j *Job) error {
	if len(s.queued) > 0 {
		err := s.queued[0]
		s.queued = s.queued[1:]
		return err
	}
	if !s.tasksDone {
		run, err := s.nextRun()
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(run) > 0 {
			jr, lerr := s.lookup(run[0].job)
			if lerr != nil {
				return lerr
			}
			return s.join(j, jr, run)
		}
		if len(s.queued) > 0 {
			return s.next(j)
		}
	}
	// The task table is done: the job rows no task named, in file order.
	for s.tail < len(s.order) {
		jr := s.ahead[s.order[s.tail]]
		s.tail++
		if jr == nil {
			continue
		}
		delete(s.ahead, jr.name)
		return s.join(j, jr, nil)
	}
	if s.jobsDone {
		return io.EOF
	}
	jr, err := s.readJob()
	if err != nil {
		return err
	}
	return s.join(j, jr, nil)
}

// nextRun reads the next run of task rows of one job. A row that is not
// CSV at all is reported on its own.
func (s *paiSource) nextRun() ([]paiTask, error) {
	var run []paiTask
	for {
		if s.peek == nil {
			if s.tasksDone {
				return run, io.EOF
			}
			t, err := s.readTask()
			if errors.Is(err, io.EOF) {
				s.tasksDone = true
				return run, io.EOF
			}
			if err != nil {
				if IsBadRecord(err) {
					s.queued = append(s.queued, err)
					continue
				}
				return nil, err
			}
			s.peek = &t
		}
		if len(run) > 0 && s.peek.job != run[0].job {
			return run, nil
		}
		run = append(run, *s.peek)
		s.peek = nil
	}
}

func (s *paiSource) readTask() (paiTask, error) {
	rec, line, err := s.tasks.next()
	if err != nil {
		return paiTask{}, err
	}
	if line == 1 && isHeader(rec, paiTaskColumns) {
		return s.readTask()
	}
	r := row{file: s.tasks.file, line: line, rec: rec}
	t := paiTask{job: r.str(0), line: line, status: r.str(3)}
	if len(rec) != len(paiTaskColumns) {
		r.fail("", "10 fields (pai_task_table: "+strings.Join(paiTaskColumns, ",")+")", strings.Join(rec, ","))
	}
	if t.job == "" {
		r.fail("job_name", "a job name", "")
	}
	count := r.whole(2, "inst_num", 0, true)
	if r.err == nil && (count < 1 || count > 1<<31) {
		r.fail("inst_num", "a whole number of instances, at least 1", r.str(2))
	}
	t.start = paiTime(&r, 4, "start_time")
	t.end = paiTime(&r, 5, "end_time")
	cpu := r.float(6, "plan_cpu", 0, false)
	mem := r.float(7, "plan_mem", 0, false)
	gpu := r.float(8, "plan_gpu", 0, false)
	if r.err == nil && (cpu > 1e12 || mem > 1e12 || gpu > 1e9) {
		r.fail("plan_cpu/plan_mem/plan_gpu", "a plausible demand", strings.Join(rec[6:9], ","))
	}
	t.task = Task{Name: r.str(1), Count: int(count), CPUMilli: int64(math.Round(cpu * 10)), MemoryMiB: int64(math.Round(mem * 1024))}
	t.task.GPUs, t.task.GPUMilli = gpuShape(gpu)
	if gt := r.str(9); t.task.GPUs > 0 && !missing(gt) {
		t.task.GPUModels = []string{gt}
	}
	if r.err != nil {
		t.err = r.err
	}
	return t, nil
}

// paiTime reads a PAI time: a float number of seconds, 0.0 or empty for
// unknown.
func paiTime(r *row, i int, field string) int64 {
	v := r.whole(i, field, 0, false)
	if v == 0 {
		return NoTime
	}
	return v
}

// gpuShape turns a percentage of one GPU into whole GPUs × milli-GPU.
func gpuShape(percent float64) (int, int64) {
	total := int64(math.Round(percent * 10))
	switch {
	case total <= 0:
		return 0, 0
	case total <= 1000:
		return 1, total
	}
	gpus := (total + 999) / 1000
	return int(gpus), int64(math.Round(float64(total) / float64(gpus)))
}

func (s *paiSource) readJob() (*paiJob, error) {
	for {
		rec, line, err := s.jobs.next()
		if errors.Is(err, io.EOF) {
			s.jobsDone = true
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if line == 1 && isHeader(rec, paiJobColumns) {
			continue
		}
		r := row{file: s.jobs.file, line: line, rec: rec}
		jr := &paiJob{name: r.str(0), user: r.str(2), status: r.str(3), line: line}
		if len(rec) != len(paiJobColumns) {
			r.fail("", "6 fields (pai_job_table: "+strings.Join(paiJobColumns, ",")+")", strings.Join(rec, ","))
		}
		jr.start = paiTime(&r, 4, "start_time")
		jr.end = paiTime(&r, 5, "end_time")
		if r.err != nil {
			jr.err = r.err
		}
		if jr.name == "" {
			return nil, fieldErr(s.jobs.file, line, "job_name", "a job name", "")
		}
		return jr, nil
	}
}

// lookup finds the job row of a task run, reading the job table ahead. It
// returns nil when the job table has no such row.
func (s *paiSource) lookup(name string) (*paiJob, error) {
	if jr, ok := s.ahead[name]; ok {
		delete(s.ahead, name)
		return jr, nil
	}
	for !s.jobsDone {
		jr, err := s.readJob()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if IsBadRecord(err) {
				s.queued = append(s.queued, err)
				continue
			}
			return nil, err
		}
		if jr.name == name {
			return jr, nil
		}
		if prev, dup := s.ahead[jr.name]; dup {
			s.queued = append(s.queued, fieldErr(s.jobs.file, jr.line, "job_name", "a job listed once (first at line "+strconv.Itoa(prev.line)+")", jr.name))
			continue
		}
		s.ahead[jr.name] = jr
		s.order = append(s.order, jr.name)
		if len(s.order) > 4*len(s.ahead)+1024 {
			s.compactOrder()
		}
	}
	return nil, nil
}

// compactOrder drops the names already joined from order.
func (s *paiSource) compactOrder() {
	kept := s.order[:0]
	for _, n := range s.order[s.tail:] {
		if _, ok := s.ahead[n]; ok {
			kept = append(kept, n)
		}
	}
	s.order, s.tail = kept, 0
}

// join builds the job from its job row (may be nil) and task run (may be
// empty).
func (s *paiSource) join(j *Job, jr *paiJob, run []paiTask) error {
	if jr != nil && jr.err != nil {
		return jr.err
	}
	for _, t := range run {
		if t.err != nil {
			return t.err
		}
	}
	*j = Job{Submit: NoTime, Start: NoTime, End: NoTime, Duration: NoTime}
	// endFile and endLine locate the row the job's end comes from.
	var endFile string
	var endLine int
	for _, t := range run {
		j.Tasks = append(j.Tasks, t.task)
		if t.start != NoTime && (j.Start == NoTime || t.start < j.Start) {
			j.Start = t.start
		}
		if t.end != NoTime && t.end > j.End {
			j.End = t.end
			endFile, endLine = s.tasks.file, t.line
		}
	}
	if jr != nil {
		j.ID, j.Tenant, j.Status = jr.name, jr.user, paiStatus(jr.status)
		j.Submit = jr.start
		if jr.end != NoTime {
			j.End = jr.end
			endFile, endLine = s.jobs.file, jr.line
		}
	} else {
		j.ID = run[0].job
		j.Status = paiRunStatus(run)
	}
	if j.Submit == NoTime {
		// No submit time (no job row, or a 0.0 start in it): the first
		// task start is the best bound on the arrival there is.
		j.Submit = j.Start
	}
	if j.Submit != NoTime && j.Start != NoTime && j.Start < j.Submit {
		// A task that started before its job was submitted: the
		// published tables round times, so trust the earlier one.
		j.Submit = j.Start
	}
	if j.Start != NoTime && j.End != NoTime {
		if j.End < j.Start {
			return fieldErr(endFile, endLine, "end_time", "a job end not before its first task start "+strconv.FormatInt(j.Start, 10), strconv.FormatInt(j.End, 10))
		}
		j.Duration = j.End - j.Start
	}
	if err := j.Validate(); err != nil {
		if len(run) > 0 {
			return &ParseError{File: s.tasks.file, Line: run[0].line, Err: err}
		}
		return &ParseError{File: s.jobs.file, Line: jr.line, Err: err}
	}
	return nil
}

func paiStatus(s string) Status {
	switch strings.ToLower(s) {
	case "terminated":
		return StatusSucceeded
	case "failed":
		return StatusFailed
	case "running":
		return StatusRunning
	case "waiting", "ready":
		return StatusPending
	case "interrupted", "killed", "cancelled", "canceled":
		return StatusKilled
	}
	return StatusUnknown
}

// paiRunStatus is a job's status from its tasks, when it has no job row:
// failed if a task failed, else running or pending if one is, else the
// first task's.
func paiRunStatus(run []paiTask) Status {
	seen := map[Status]bool{}
	for _, t := range run {
		seen[paiStatus(t.status)] = true
	}
	for _, st := range []Status{StatusFailed, StatusRunning, StatusPending} {
		if seen[st] {
			return st
		}
	}
	return paiStatus(run[0].status)
}

// isHeader reports whether rec is the given header row.
func isHeader(rec, cols []string) bool {
	if len(rec) != len(cols) {
		return false
	}
	for i, c := range cols {
		if strings.TrimSpace(rec[i]) != c {
			return false
		}
	}
	return true
}
