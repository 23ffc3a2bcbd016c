package replay

// The engine's books on jobs: a slab of the live jobs (arrived, not
// ended), compact figures of every job for the summary, and the feed that
// pulls jobs from the workload a few ahead of the clock.

import (
	"errors"
	"fmt"
	"io"
	"math/bits"

	"petite/scheduler"
)

// jobState is the engine's book on one live job, six cache lines. A
// finish reads four: the first two (what comes before rec) and the two
// holding the record's figures (JobRecord's Submit to Pool); the record's
// names before them and what follows it are read elsewhere.
type jobState struct {
	status   status
	kind     scheduler.JobKind
	started  bool        // a service's lifetime runs from its first start
	returned bool        // back from a Star-Wait stint (its machine id changed)
	stale    bool        // runs under older constraints than engine.cons: resubmitted at its next requeue
	epoch    uint32      // moves on at every requeue, and as the book is freed: a finish names the book and its epoch, and goes stale with either
	k        int32       // the job's number
	hint     int32       // the state machine's hint for the job (Machine.Hint; stale after a resubmission, which only costs a look-up)
	gen      uint16      // resubmissions by a move (its machine id changed)
	poolAt   int16       // rec.Pool's index in the fleet, plus one (0: none yet)
	id       string      // the state machine's id of the job, as submitted now
	gpus     float64     // GPUs the job holds while running (all tasks)
	runStart int64       // start of the current owned run
	costFrom int64       // the run's cost is booked up to here
	shares   []poolShare // the GPUs of the current owned run, by pool: in buf, unless a gang spans more pools
	buf      [2]poolShare
	work     int64 // training work left (nanoseconds)
	rec      JobRecord
	done     int64 // training work saved by checkpoints
	overhead int64 // restart time at the head of the current run
	// Star-Wait's stint: its cost so far (paid if the job then runs on
	// owned nodes) and its end.
	stintCost float64
	stintEnd  int64
	// src is the job as the workload gave it, where a run reads it after
	// the arrival (engine.keepSrc); nil otherwise. The record holds its
	// id, tenant and duration, kind holds its kind.
	src *Job
}

// warm reads a word of each cache line of the book that a finish reads
// (its head, the run's shares, the record's times, its counts and costs,
// the saved work and source), for the engine to read an instant's
// finishing books side by side before it applies them.
func (j *jobState) warm() uint32 {
	return j.epoch + uint32(len(j.shares)) + uint32(j.rec.End) + uint32(j.rec.Preemptions) + uint32(j.done)
}

// figs is what the summary needs of one job: its record without the
// strings (tenant, pool and size as small numbers). Every job has one,
// from the moment it is pulled from the workload; a live job's is written
// when it ends (or when the run stops). It fills one cache line: the
// figures most jobs have none of are kept apart (moreFigs).
type figs struct {
	submit, start, end, dur int64
	gpuH, cost              float64
	tenant                  int32 // engine.tenants
	pool                    int16 // fleet order; -1 for none
	size                    uint8 // sizeBuckets
	state                   uint8 // recStates
	cloud                   bool  // Where is "cloud"
	more                    bool  // engine.more holds the job's moreFigs
}

// moreFigs are the figures of a job that most jobs have none of (no
// preemption, no burst cloud): only a job with some has an entry in
// engine.more, and a job without one has them all zero.
type moreFigs struct {
	lostH, cloudCost  float64
	preempt, restarts int32
}

// moreOf is job k's moreFigs, f its figures.
func (e *engine) moreOf(k int, f *figs) moreFigs {
	if !f.more {
		return moreFigs{}
	}
	return e.more[k]
}

// recStates are JobRecord.State's values, numbered for figs.
var recStates = [...]string{"future", "queued", "running", "cloud", "ended"}

// sizeBuckets are SizeBucket's values, numbered for figs.
var sizeBuckets = [...]string{"cpu", "share", "1", "2-4", "5-8", "9-64", ">64"}

func indexOf(names []string, s string) uint8 {
	for i, n := range names {
		if n == s {
			return uint8(i)
		}
	}
	panic("replay: no index for " + s)
}

func (f *figs) wait() (int64, bool) { return f.start - f.submit, f.start >= 0 }
func (f *figs) jct() (int64, bool)  { return f.end - f.submit, f.end >= 0 }

// slowdown is JobRecord.Slowdown's figure.
func (f *figs) slowdown() (float64, bool) {
	jct, ok := f.jct()
	if !ok {
		return 0, false
	}
	return max(1, float64(jct)/float64(max(f.dur, slowdownFloor))), true
}

// openFigs writes the figures of record r, of a job just pulled.
func (e *engine) openFigs(r *JobRecord) figs {
	t, ok := e.tenantIdx[r.Tenant]
	if !ok {
		t = int32(len(e.tenants))
		e.tenants = append(e.tenants, r.Tenant)
		e.tenantIdx[r.Tenant] = t
	}
	f := figs{tenant: t, size: indexOf(sizeBuckets[:], SizeBucket(r.GPUs))}
	e.setFigs(r.Index, &f, r, 0)
	return f
}

// setFigs brings f, job k's figures, up to date with record r, of the
// same job (its tenant and size stay as they were opened); poolAt is the
// index of r.Pool plus one, 0 for none (jobState.poolAt).
func (e *engine) setFigs(k int, f *figs, r *JobRecord, poolAt int16) {
	f.submit, f.start, f.end, f.dur = r.Submit, r.Start, r.End, r.Duration
	f.gpuH, f.cost = r.GPUHours, r.Cost
	// Summed from +0, these figures are never -0: zero is zero.
	if m := (moreFigs{r.LostGPUHours, r.CloudCost, int32(r.Preemptions), int32(r.Restarts)}); m != (moreFigs{}) {
		if e.more == nil {
			e.more = map[int]moreFigs{}
		}
		e.more[k], f.more = m, true
	} else {
		// f is written, not read: a write to a line not in the cache
		// does not stall the way a read does
		delete(e.more, k) // nothing to do while no job has any
		f.more = false
	}
	f.state, f.cloud, f.pool = indexOf(recStates[:], r.State), r.Where == "cloud", poolAt-1
}

// chunked is an append-only array kept in chunks that never move: 64
// entries, then 128, and so on up to chunkLen, then chunkLen each. Growing
// it copies nothing and leaves at most a chunk unused (a slice copies all
// of it and leaves up to a quarter unused), small runs stay small, and a
// pointer to an entry stays good.
type chunked[T any] struct {
	c    [][]T
	n    int // entries added
	room int // entries the chunks hold
}

const (
	firstBits = 6
	chunkBits = 12
	chunkLen  = 1 << chunkBits
	// tiered is the entries of the growing chunks, 64 + 128 + … + chunkLen.
	tiered = 2*chunkLen - 1<<firstBits
)

func (a *chunked[T]) at(i int) *T {
	if i < tiered {
		j := bits.Len(uint(i>>firstBits)+1) - 1
		return &a.c[j][i-(1<<j-1)<<firstBits]
	}
	i -= tiered
	return &a.c[chunkBits-firstBits+1+i>>chunkBits][i&(chunkLen-1)]
}

func (a *chunked[T]) add(v T) {
	if a.n == a.room {
		size := chunkLen
		if j := len(a.c); j <= chunkBits-firstBits {
			size = 1 << (firstBits + j)
		}
		a.c = append(a.c, make([]T, size))
		a.room += size
	}
	*a.at(a.n) = v
	a.n++
}

// job is the book of live job k.
func (e *engine) job(k int) *jobState { return e.live.at(int(e.slot[k])) }

// isLive says whether job k has arrived and not ended.
func (e *engine) isLive(k int) bool { return k >= 0 && k < len(e.slot) && e.slot[k] >= 0 }

// admit gives arriving job k a book, and its source where the run reads
// it later: Config.Jobs's own, or a copy of a streamed one.
func (e *engine) admit(k int, src *Job) *jobState {
	var s int32
	if n := len(e.free); n > 0 {
		s = e.free[n-1]
		e.free = e.free[:n-1]
	} else {
		s = int32(e.live.n)
		e.live.add(jobState{})
	}
	e.slot[k] = s
	j := e.live.at(int(s))
	*j = jobState{kind: src.Job.Kind, k: int32(k), epoch: j.epoch}
	switch {
	case !e.keepSrc:
	case e.feed.src == nil:
		j.src = src // Config.Jobs: it stays where it is
	default:
		for e.srcs.n <= int(s) {
			e.srcs.add(Job{})
		}
		j.src = e.srcs.at(int(s))
		*j.src = *src
	}
	return j
}

// foldAt writes the figures (and the record, when kept) of job k, which
// ended, and frees its book, j, number s in engine.live.
func (e *engine) foldAt(k int, s int32, j *jobState) {
	x := endedFigs{k: k}
	e.setFigs(k, &x.f, &j.rec, j.poolAt)
	e.endLog = append(e.endLog, x)
	if len(e.endLog) == endBatch {
		e.flushFigs()
	}
	if e.recs != nil {
		e.recs[k] = j.rec
	}
	delete(e.cons, k)
	if e.feed.src != nil && j.src != nil {
		*j.src = Job{} // let its strings go
	}
	*j = jobState{epoch: j.epoch + 1} // the job's pending events go stale
	e.free = append(e.free, s)
	e.slot[k] = -1
}

// endedFigs are the figures of job k, which ended, on their way to
// engine.figs (all but the tenant and size, which they keep).
type endedFigs struct {
	k int
	f figs
}

// endBatch is how many ended jobs' figures engine.endLog gathers before
// they are written: a job's figures lie in a cache line the run has long
// left, and a batch of such writes in a row waits for many lines at once,
// where one write a finish waits for each.
const endBatch = 1024

// flushFigs writes the figures gathered in engine.endLog, field by field
// but for the tenant and size: written, not read, the lines of a batch
// are fetched side by side.
func (e *engine) flushFigs() {
	for i := range e.endLog {
		x := &e.endLog[i].f
		f := e.figs.at(e.endLog[i].k)
		f.submit, f.start, f.end, f.dur = x.submit, x.start, x.end, x.dur
		f.gpuH, f.cost = x.gpuH, x.cost
		f.pool, f.state, f.cloud, f.more = x.pool, x.state, x.cloud, x.more
	}
	e.endLog = e.endLog[:0]
}

// newRecord is job k's record before it arrives.
func newRecord(k int, src *Job, gpus float64) JobRecord {
	r := JobRecord{Index: k, ID: src.Job.ID, Kind: src.Job.Kind.String(), Tenant: src.Job.Tenant,
		GPUs: gpus, Submit: src.Submit, Start: -1, End: -1, Duration: src.Duration, State: "future"}
	if src.Origin != 0 && src.Origin < src.Submit {
		r.Submit = src.Origin
	}
	return r
}

// feed is the workload as the engine pulls it: all of Config.Jobs at the
// start, or a Source's jobs kept W + 1 ahead of the arrivals, so that the
// measurement window's start is known from the first arrival, and its end
// is known (or still to come) whenever the books need it; at an instant
// with arrivals, up to arrivalWarm ahead (see warmArrivals).
type feed struct {
	src   Source
	ahead []Job // a Source's jobs pulled and not arrived, from head on
	head  int
	done  bool    // every job has been pulled
	last  int64   // submit of the last job pulled
	tail  []int64 // submits of the last W + 1 jobs pulled, by number mod W + 1
}

// upcoming is job k, pulled and not arrived.
func (e *engine) upcoming(k int) *Job {
	if e.feed.src == nil {
		return &e.cfg.Jobs[e.order[k]]
	}
	return &e.feed.ahead[e.feed.head+k-e.arrived]
}

// peek is the next job to arrive, nil when none is left; it pulls from the
// Source to keep W + 1 jobs ahead.
func (e *engine) peek() (*Job, error) {
	if err := e.fill(e.cfg.WarmupJobs + 1); err != nil {
		return nil, err
	}
	if e.arrived == e.figs.n {
		return nil, nil
	}
	return e.upcoming(e.arrived), nil
}

// took notes the arrival of the job peek returned.
func (e *engine) took() {
	e.arrived++
	if f := &e.feed; f.src != nil {
		f.ahead[f.head] = Job{}
		f.head++
		if f.head == len(f.ahead) || (f.head >= 64 && f.head*2 >= len(f.ahead)) {
			n := copy(f.ahead, f.ahead[f.head:])
			clear(f.ahead[n:])
			f.ahead, f.head = f.ahead[:n], 0
		}
	}
}

// fill pulls from the Source until n jobs are pulled and not arrived, or
// the Source has no more; then the window's end is known.
func (e *engine) fill(n int) error {
	f := &e.feed
	for !f.done && e.figs.n-e.arrived < n {
		j, err := f.src.Next()
		if errors.Is(err, io.EOF) {
			f.done = true
			return e.closeWindow()
		}
		k := e.figs.n
		if err != nil {
			return fmt.Errorf("workload: job %d: %w", k, err)
		}
		if j.Submit < f.last {
			return fmt.Errorf("%s: field submit: %d ns is before the job before it (%d ns): a streamed workload comes in submission order", where(&j, k), j.Submit, f.last)
		}
		f.last = j.Submit
		f.ahead = append(f.ahead, j)
		if err := e.pull(k, &f.ahead[len(f.ahead)-1]); e.skipUnfit(err) {
			f.ahead[len(f.ahead)-1] = Job{}
			f.ahead = f.ahead[:len(f.ahead)-1]
			continue
		} else if err != nil {
			return err
		}
		if w := e.cfg.WarmupJobs; k == w {
			e.win.start = j.Submit
		}
		f.tail[k%len(f.tail)] = j.Submit
	}
	return nil
}

// closeWindow sets the measurement window once a Source has handed out
// its last job.
func (e *engine) closeWindow() error {
	n, w := e.figs.n, e.cfg.WarmupJobs
	if err := checkWindow(n, w); err != nil {
		return e.unfitNote(err)
	}
	e.win.first, e.win.last = w, min(n-w, n-1)
	e.win.end = e.feed.tail[(n-w-1)%len(e.feed.tail)]
	return nil
}

// drain pulls what is left of a Source at the end of a run stopped by its
// horizon: those jobs count as not submitted, and their figures are all
// the run keeps of them.
func (e *engine) drain() error {
	f := &e.feed
	for !f.done {
		if err := e.fill(e.figs.n - e.arrived + 1); err != nil {
			return err
		}
		clear(f.ahead) // none of them will arrive
		f.ahead, f.head = f.ahead[:0], 0
	}
	return nil
}

// where names a job for errors.
func where(src *Job, k int) string {
	if src.Source != "" {
		return src.Source
	}
	if src.trace != "" {
		return traceWhere(src.trace, src.record, src.traceID)
	}
	if src.Job.ID != "" {
		return "job " + src.Job.ID
	}
	return fmt.Sprintf("job %d", k)
}

// pull checks job k, taken from the workload, and opens its figures (and
// its record, when kept).
func (e *engine) pull(k int, src *Job) error {
	gpus, err := e.check(k, src)
	if err != nil {
		return err
	}
	if err := e.checkPlaced(src); err != nil {
		return err
	}
	r := newRecord(k, src, gpus)
	e.figs.add(e.openFigs(&r))
	e.slot = append(e.slot, -1)
	if e.keep {
		e.recs = append(e.recs, r)
	}
	return nil
}

// UnfitJob is a job of the workload that no node the fleet will ever have
// could hold.
type UnfitJob struct {
	// Record is the job's record in its trace (from 1), 0 for a job given
	// otherwise.
	Record int `json:"record,omitempty"`
	// ID is the job's id in the workload.
	ID string `json:"id"`
	// Where names the job as errors do ("jobs.csv: record 3 (job x)").
	Where  string `json:"where"`
	Reason string `json:"reason"`
}

// UnfitError is the error of a run that meets an unfit job under
// UnfitStop (the default).
type UnfitError struct {
	Job UnfitJob
}

func (e *UnfitError) Error() string { return e.Job.Where + ": " + e.Job.Reason }

// unfitNote adds to a workload's error the jobs left out as unfit, which
// a workload of too few jobs may owe its size to.
func (e *engine) unfitNote(err error) error {
	if e.unfit == 0 {
		return err
	}
	return fmt.Errorf("%w (%d more left out: they fit no node of the fleet)", err, e.unfit)
}

// maxUnfitListed bounds Summary.UnfitJobs: the count says how many more.
const maxUnfitListed = 10

// skipUnfit says whether err is an unfit job that Config.Unfit leaves out
// of the replay, and books it.
func (e *engine) skipUnfit(err error) bool {
	if err == nil || e.cfg.Unfit != UnfitSkip {
		return false // before u, which escapes: an allocation a job otherwise
	}
	var u *UnfitError
	if !errors.As(err, &u) {
		return false
	}
	e.unfit++
	if len(e.unfitJobs) < maxUnfitListed {
		e.unfitJobs = append(e.unfitJobs, u.Job)
	}
	return true
}
