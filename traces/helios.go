package traces

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// heliosZone is the zone of Helios times: SenseTime's clusters log China
// Standard Time, which has no daylight saving.
const heliosZone = "+08:00"

// heliosSource streams a Helios cluster_log.csv.
type heliosSource struct {
	rows *csvRows
	loc  *time.Location
	c    struct{ id, user, vc, gpu, cpu, node, state, submit, start, end, duration, queue int }
}

// NewHeliosReader reads a Helios cluster_log.csv, going by its header
// (spaces after the commas are fine, extra columns are ignored). Times are
// "YYYY-MM-DD HH:MM:SS" in China Standard Time, kept as Unix seconds; empty,
// NaN or None times are unknown. A job of gpu_num GPUs on node_num nodes is
// one task of node_num instances when the GPUs divide evenly, else one
// instance with all of them; cpu_num is shared out the same way. duration
// must equal end − start and queue start − submit, as in the real rows.
func NewHeliosReader(in io.Reader, name string, opts Options) (*Reader, error) {
	br, err := decompress(in, name)
	if err != nil {
		return nil, err
	}
	return newHeliosReader(br, name, opts)
}

// newHeliosReader is NewHeliosReader over input decompress has prepared.
func newHeliosReader(br *bufio.Reader, name string, opts Options) (*Reader, error) {
	rows := newCSVRows(br, name)
	cols, err := rows.header("job_id", "gpu_num", "state", "submit_time")
	if err != nil {
		return nil, err
	}
	loc, err := parseZone(heliosZone)
	if err != nil {
		return nil, err
	}
	s := &heliosSource{rows: rows, loc: loc}
	c := &s.c
	c.id, c.user, c.vc, c.gpu = cols["job_id"], col(cols, "user"), col(cols, "vc"), cols["gpu_num"]
	c.cpu, c.node, c.state, c.submit = col(cols, "cpu_num"), col(cols, "node_num"), cols["state"], cols["submit_time"]
	c.start, c.end, c.duration, c.queue = col(cols, "start_time"), col(cols, "end_time"), col(cols, "duration"), col(cols, "queue")
	return newReader(s, opts), nil
}

func (s *heliosSource) meta() Meta {
	return Meta{Format: FormatHelios, Clock: ClockUnix, Zone: heliosZone}
}

func (s *heliosSource) time(r *row, i int, field string, required bool) int64 {
	v := r.str(i)
	if missing(v) {
		if required {
			r.fail(field, `a time "YYYY-MM-DD HH:MM:SS"`, v)
		}
		return NoTime
	}
	t, err := time.ParseInLocation(phillyTimeLayout, v, s.loc)
	if err != nil || t.Unix() < 0 {
		r.fail(field, `a time "YYYY-MM-DD HH:MM:SS"`, v)
		return NoTime
	}
	return t.Unix()
}

func heliosStatus(state string) (Status, bool) {
	switch state {
	case "COMPLETED":
		return StatusSucceeded, true
	case "CANCELLED":
		return StatusKilled, true
	case "FAILED", "NODE_FAIL":
		return StatusFailed, true
	case "TIMEOUT":
		return StatusTimeout, true
	case "RUNNING":
		return StatusRunning, true
	case "PENDING":
		return StatusPending, true
	}
	return StatusUnknown, false
}

func (s *heliosSource) next(j *Job) error {
	rec, line, err := s.rows.next()
	if err != nil {
		return err
	}
	r := row{file: s.rows.file, line: line, rec: rec}
	c := &s.c
	*j = Job{ID: r.str(c.id), Tenant: r.str(c.user), Group: r.str(c.vc), Kind: KindTraining, Duration: NoTime}
	if j.ID == "" {
		r.fail("job_id", "a job id", "")
	}
	gpus := r.whole(c.gpu, "gpu_num", 0, true)
	cpus := r.whole(c.cpu, "cpu_num", 0, false)
	nodes := r.whole(c.node, "node_num", 0, false)
	if r.err == nil && (gpus > 1<<20 || nodes > 1<<20 || cpus > 1<<30) {
		r.fail("gpu_num/cpu_num/node_num", "a plausible size", strings.Join([]string{r.str(c.gpu), r.str(c.cpu), r.str(c.node)}, ","))
	}
	st, ok := heliosStatus(r.str(c.state))
	if !ok {
		r.fail("state", "COMPLETED, CANCELLED, FAILED, NODE_FAIL, TIMEOUT, RUNNING or PENDING", r.str(c.state))
	}
	j.Status = st
	j.Submit = s.time(&r, c.submit, "submit_time", true)
	j.Start = s.time(&r, c.start, "start_time", false)
	j.End = s.time(&r, c.end, "end_time", false)
	dur := r.whole(c.duration, "duration", NoTime, false)
	queue := r.whole(c.queue, "queue", NoTime, false)
	if r.err != nil {
		return r.err
	}
	switch {
	case j.Start != NoTime && j.Start < j.Submit:
		return fieldErr(r.file, line, "start_time", "a time not before submit_time "+r.str(c.submit), r.str(c.start))
	case j.Start != NoTime && j.End != NoTime && j.End < j.Start:
		return fieldErr(r.file, line, "end_time", "a time not before start_time "+r.str(c.start), r.str(c.end))
	case dur != NoTime && j.Start != NoTime && j.End != NoTime && dur != j.End-j.Start:
		return fieldErr(r.file, line, "duration", fmt.Sprintf("end_time − start_time = %d", j.End-j.Start), r.str(c.duration))
	case queue != NoTime && j.Start != NoTime && queue != j.Start-j.Submit:
		return fieldErr(r.file, line, "queue", fmt.Sprintf("start_time − submit_time = %d", j.Start-j.Submit), r.str(c.queue))
	}
	switch {
	case j.Start != NoTime && j.End != NoTime:
		j.Duration = j.End - j.Start
	case dur != NoTime:
		j.Duration = dur
	}
	t := Task{Count: 1, GPUs: int(gpus), CPUMilli: cpus * 1000}
	if nodes > 1 && gpus%nodes == 0 && (cpus*1000)%nodes == 0 {
		t.Count = int(nodes)
		t.GPUs = int(gpus / nodes)
		t.CPUMilli = cpus * 1000 / nodes
	}
	if t.GPUs > 0 {
		t.GPUMilli = 1000
	}
	j.Tasks = []Task{t}
	if err := j.Validate(); err != nil {
		return &ParseError{File: r.file, Line: line, Err: err}
	}
	return nil
}
