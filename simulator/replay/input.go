package replay

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"petite/scheduler"
	"petite/simulator/workload"
	"petite/traces"
)

// Source streams a workload to the engine (Config.Source): jobs in
// submission order, pulled as the run reaches them, so that a run holds
// only the jobs that have arrived and not ended (and a few ahead).
type Source interface {
	// Next returns the next job, or io.EOF after the last one. Jobs come in
	// order of Submit; one earlier than the job before it ends the run with
	// an error naming it.
	Next() (Job, error)
}

// FromTrace converts the jobs of a trace, read by the traces package, into
// the replay's jobs, through simulator/workload (one job per task group).
// name is the trace's file name for errors. A job whose trace records no
// duration takes defaultDuration (nanoseconds) when it is positive, and is
// refused otherwise, naming its record; so is a job whose demand the core
// cannot hold. Times must fit the virtual clock.
func FromTrace(src []traces.Job, name string, defaultDuration int64) ([]Job, error) {
	out := make([]Job, 0, len(src))
	var scratch []scheduler.Job
	for i := range src {
		var err error
		if out, err = appendTraceJob(out, &scratch, &src[i], i+1, name, defaultDuration, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendTraceJob converts trace job tj, record number rec of the trace,
// and appends its jobs to out, converting through *scratch (a buffer
// reused from job to job). With lazy set, the jobs leave Source empty
// and note their record, spelled out only for an error (a string a job is
// an allocation a job).
func appendTraceJob(out []Job, scratch *[]scheduler.Job, tj *traces.Job, rec int, name string, defaultDuration int64, lazy bool) ([]Job, error) {
	where := func() string { return traceWhere(name, rec, tj.ID) }
	d := tj.Duration
	var dur int64
	switch {
	case d >= 0:
		v, err := FromSeconds(d)
		if err != nil {
			return nil, fmt.Errorf("%s: field duration: %w", where(), err)
		}
		dur = v
	case defaultDuration > 0:
		dur = defaultDuration
	default:
		return nil, fmt.Errorf("%s: field duration: the trace gives none; pass a default duration to replay it", where())
	}
	sub, err := FromSeconds(max(tj.Submit, 0))
	if err != nil {
		return nil, fmt.Errorf("%s: field submit: %w", where(), err)
	}
	jobs, err := workload.AppendJob((*scratch)[:0], tj)
	*scratch = jobs
	defer clear(jobs) // the buffer keeps no strings alive
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(), err)
	}
	for _, j := range jobs {
		if lazy {
			out = append(out, Job{Job: j, Submit: sub, Duration: dur, trace: name, traceID: tj.ID, record: rec})
		} else {
			out = append(out, Job{Job: j, Submit: sub, Duration: dur, Source: where(), trace: name, traceID: tj.ID, record: rec})
		}
	}
	return out, nil
}

// traceWhere names record rec of trace name, job id, for errors.
func traceWhere(name string, rec int, id string) string {
	return name + ": record " + strconv.Itoa(rec) + " (job " + id + ")"
}

// TraceSource streams the jobs of a trace read one at a time (a reader's
// or a generator's Next, which returns io.EOF after the last), converted
// as FromTrace converts them. The trace must come in submission order.
func TraceSource(next func() (traces.Job, error), name string, defaultDuration int64) Source {
	return &traceSource{next: next, name: name, def: defaultDuration}
}

// TraceSourceInto is TraceSource over a trace read into one job, over and
// over (traces.Generator.NextInto): next writes the next job into the one
// it is given, reusing its task list, which the source is done with once
// it has converted the job.
func TraceSourceInto(next func(*traces.Job) error, name string, defaultDuration int64) Source {
	return &traceSource{into: next, name: name, def: defaultDuration}
}

type traceSource struct {
	next func() (traces.Job, error)
	into func(*traces.Job) error // instead of next
	tj   traces.Job              // the last trace job read
	name string
	def  int64
	rec  int
	buf  []Job // the jobs of the last trace job; buf[at:] not handed out yet
	at   int
	conv []scheduler.Job // appendTraceJob's scratch
	err  error
}

func (s *traceSource) Next() (Job, error) {
	for s.at == len(s.buf) {
		if s.err != nil {
			return Job{}, s.err
		}
		clear(s.buf)
		s.buf, s.at = s.buf[:0], 0
		var err error
		if s.into != nil {
			err = s.into(&s.tj)
		} else {
			s.tj, err = s.next()
		}
		if errors.Is(err, io.EOF) {
			s.err = io.EOF
			continue
		}
		s.rec++
		if err != nil {
			s.err = fmt.Errorf("%s: record %d: %w", s.name, s.rec, err)
			continue
		}
		if s.buf, err = appendTraceJob(s.buf, &s.conv, &s.tj, s.rec, s.name, s.def, true); err != nil {
			s.buf, s.err = s.buf[:0], err
		}
	}
	s.at++
	return s.buf[s.at-1], nil
}
