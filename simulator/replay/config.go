package replay

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"petite/scheduler"
)

// Config is one replay: a fleet, a workload, a policy and a seed, with the
// options that shape the run. The zero values of the options are the
// defaults documented on each field.
type Config struct {
	// Pools and Nodes are the fleet (scheduler/fleet, or a machine list
	// through simulator/workload). Nodes are numbered in this order, which
	// breaks ties between nodes of equal score.
	Pools []scheduler.Pool
	Nodes []scheduler.Node
	// Jobs are the workload, in any order: the engine numbers them in
	// submission order (slice order among equal submit times), and checks
	// them all before the run.
	Jobs []Job
	// Source, instead of Jobs, streams the workload in submission order:
	// the run pulls each job as the clock reaches it and holds only the
	// live ones (and Result.Jobs, unless NoRecords). A job is checked when
	// pulled, so a bad one ends the run there. Series and the burst method
	// need Jobs.
	Source Source
	// Unfit says what becomes of a job that no node the fleet will ever
	// have could hold: the run stops with an *UnfitError (UnfitStop, the
	// default), or the job is left out of the replay and counted in the
	// summary (UnfitSkip).
	Unfit Unfit
	// NoRecords leaves Result.Jobs nil: the summary is computed all the
	// same, from a few figures a job, which is what a replay of millions
	// of jobs can afford.
	NoRecords bool
	// Tenants are given to the state machine before any job: quotas and
	// fair-share weights (a run from a snapshot carries the daemon's).
	Tenants []scheduler.Tenant
	// Policy is the placement policy by name (scheduler.PolicyNames);
	// "" is best-fit. Options tune it.
	Policy  string
	Options scheduler.Options
	// Queue is how the pass treats a queue head that cannot start.
	Queue Queue
	// Preempt lets a job evict running work of strictly lower priority.
	Preempt bool
	// Victims says which jobs Preempt may evict; the zero value keeps
	// each job's own Preemptible flag (a driver building jobs by hand).
	Victims Victims
	// Seed seeds the only generator the run draws from.
	Seed uint64
	// Checkpoint says how training work survives a preemption or a lost node.
	Checkpoint Checkpoint
	// Burst, when set, runs the burst-to-cloud method: the owned pools
	// serve the queue and a job waiting past its budget runs in the cloud.
	Burst *Burst
	// Scale, when set, makes the cloud pools with max_nodes elastic (nodes
	// asked for when the queue needs them, released when idle), bills
	// every cloud node while it is up, and takes spot nodes back at random.
	Scale *Scale
	// WarmupJobs is W of the measurement window (see docs/sim.md).
	WarmupJobs int
	// Horizon stops the run at that time on the virtual clock (nanoseconds);
	// 0 runs until every job has ended. Jobs still queued or running at the
	// horizon are counted as such.
	Horizon int64
	// NodeEvents change node health at given times (faults, repairs).
	NodeEvents []NodeEvent
	// PriceEvents change pool prices at given times.
	PriceEvents []PriceEvent
	// QuotaEvents change cloud pools' max_nodes at given times (with
	// Scale).
	QuotaEvents []QuotaEvent
	// MoveEvents confine tenants' live work to pools at given times.
	MoveEvents []MoveEvent
	// PassEvery, when positive, also runs a pass every PassEvery of virtual
	// time from the first event on, while events remain, whether or not
	// anything changed:
	// the naive time-step way, kept to measure what the event-driven run
	// saves. 0 runs a pass only when something changed.
	PassEvery int64
	// SeriesStep, when positive, samples the state every SeriesStep of
	// virtual time (Result.Series): GPUs held per pool and in the burst
	// cloud, GPUs asked for by the queue, running and queued jobs, spend
	// per hour.
	SeriesStep int64
	// RecordRuns keeps in every JobRecord its runs on owned nodes and the
	// GPUs each held per pool (memory per run; off for large replays).
	RecordRuns bool
	// Progress, when set, is told how many jobs have arrived out of all,
	// every 1,024 arrivals and once at the end (a progress bar's feed);
	// all is 0 while a Source has more to hand out.
	Progress func(arrived, total int)
	// Observe, when set, is called for every event the replay records, in
	// order: the event log that the summary reconciles with.
	Observe func(Event)
}

// Job is one job of the workload: the core's job and how long it runs.
type Job struct {
	// Job is what the core places. Its ID names the job in results; the
	// engine gives the state machine its own ids, in submission order.
	Job scheduler.Job
	// Submit is the arrival time on the virtual clock (nanoseconds).
	Submit int64
	// Duration is the work to do, on the virtual clock (nanoseconds): a
	// training job ends when it has run that long, a service after holding
	// its replicas that long from its first start.
	Duration int64
	// Source says where the job came from ("jobs.csv: job 17"), for errors.
	// TraceSource leaves it empty and notes the trace, the record and its
	// id instead, which the engine spells out only for an error.
	Source  string
	trace   string
	traceID string
	record  int
	// Origin, when positive and before Submit, is when the job was really
	// submitted: a job live in a snapshot arrives at the run's start, and
	// its record counts wait and JCT from here.
	Origin int64
	// Placed, when set, are the placements the job holds as it arrives (a
	// job running in a snapshot): it starts there at Submit, before any
	// pass, and runs Duration from then. PlacedSince, when positive and
	// before Submit, is its record's start.
	Placed      []scheduler.TaskPlacement
	PlacedSince int64
}

// Unfit is what a run does with a job that fits no node of the fleet.
type Unfit uint8

// The ways of treating unfit jobs.
const (
	// UnfitStop stops the run with an *UnfitError naming the job.
	UnfitStop Unfit = iota
	// UnfitSkip leaves the job out of the replay (it never arrives and
	// has no number) and counts it in Summary.Unfit, listing the first
	// few in Summary.UnfitJobs.
	UnfitSkip
)

// ParseUnfit reads how to treat unfit jobs: error (stop the run) or skip.
func ParseUnfit(s string) (Unfit, error) {
	switch s {
	case "error", "":
		return UnfitStop, nil
	case "skip":
		return UnfitSkip, nil
	}
	return 0, fmt.Errorf("unfit %q: want error or skip", s)
}

// Queue is the queueing discipline of the pass.
type Queue uint8

// The queueing disciplines.
const (
	// QueueFIFO is strict first-come first-served: a head that cannot start
	// blocks the jobs behind it (no backfilling, no skipping).
	QueueFIFO Queue = iota
	// QueueBackfill is the core's EASY backfill: jobs behind a blocked head
	// start when they cannot delay it.
	QueueBackfill
	// QueueFIFOSkip is the out-of-order queue: the pass goes over the whole
	// queue in order and starts every job that fits, skipping the others.
	// The core does it with each job its own tenant (a blocked head then
	// blocks only itself, and tenants of equal share go by name, which is
	// submission order), so tenants' quotas and fair shares do not apply.
	QueueFIFOSkip
)

// Victims says which of a workload's jobs may be preempted: a trace has
// no flag of its own, so without a rule no trace job would ever be a
// victim and Preempt would do nothing.
type Victims int

// The rules.
const (
	// VictimsAsGiven keeps each job's own Preemptible flag.
	VictimsAsGiven Victims = iota
	// VictimsAll: any job may be evicted by one of strictly higher
	// priority, as Kubernetes preempts pods.
	VictimsAll
	// VictimsTraining: training jobs only (they resume from their last
	// checkpoint); services keep their replicas.
	VictimsTraining
	// VictimsNone: no job is evicted.
	VictimsNone
)

var victimNames = [...]string{"as-given", "all", "training", "none"}

// ParseVictims reads a rule by name: all, training or none.
func ParseVictims(s string) (Victims, error) {
	for i, n := range victimNames {
		if i > 0 && n == s {
			return Victims(i), nil
		}
	}
	return 0, fmt.Errorf("preemptible %q: want all, training or none", s)
}

// String is the rule's name.
func (v Victims) String() string {
	if int(v) < len(victimNames) {
		return victimNames[v]
	}
	return fmt.Sprintf("Victims(%d)", int(v))
}

// ParseQueue reads a queue discipline by name: fifo, fifo-skip or backfill.
func ParseQueue(s string) (Queue, error) {
	switch s {
	case "fifo", "":
		return QueueFIFO, nil
	case "backfill":
		return QueueBackfill, nil
	case "fifo-skip":
		return QueueFIFOSkip, nil
	}
	return 0, fmt.Errorf("queue %q: want fifo, fifo-skip or backfill", s)
}

// String returns the discipline's name.
func (q Queue) String() string {
	switch q {
	case QueueBackfill:
		return "backfill"
	case QueueFIFOSkip:
		return "fifo-skip"
	}
	return "fifo"
}

// Checkpoint is how training work survives an eviction.
type Checkpoint struct {
	// Interval is the work between two checkpoints (nanoseconds); 0 means
	// a job that loses its place starts its work again from the beginning.
	Interval int64
	// Restart is the time a restarted job spends before doing work again
	// (loading its checkpoint), on top of its remaining work.
	Restart int64
}

// PriceEvent changes a pool's price per GPU-hour from a time on. Runs that
// span it are charged piecewise: the old price up to it, the new one after.
type PriceEvent struct {
	At              int64
	Pool            string
	PricePerGPUHour float64
}

// QuotaEvent sets a cloud pool's max_nodes from a time on, under pool
// scaling: nodes up or on the way stay, new ones are asked for only within
// the new cap. A pool named by one is elastic from the start even if its
// max_nodes is 0 (it needs a listed node as its template).
type QuotaEvent struct {
	At       int64
	Pool     string
	MaxNodes int
}

// NodeEvent sets a node's health at a time (down or retired loses its work,
// ready brings it back), or adds a node to the fleet.
type NodeEvent struct {
	At    int64
	Node  string
	State scheduler.NodeState
	// Add, when set, registers this node at At (in a pool of the fleet,
	// which may start with no nodes) and then sets State: capacity that
	// arrives during the run. Node must be Add.Name.
	Add *scheduler.Node
}

// Burst is the burst-to-cloud method's setting.
type Burst struct {
	// Wait sets each job's waiting budget.
	Wait WaitPolicy
}

// WaitKind names a waiting policy.
type WaitKind uint8

// The waiting policies of the burst method.
const (
	// WaitNone gives every job a budget of zero.
	WaitNone WaitKind = iota
	// WaitConstant gives every job the same budget.
	WaitConstant
	// WaitCost gives a job a budget proportional to its compute: K × GPUs
	// × duration (K in hours of wait per GPU-hour).
	WaitCost
	// WaitStar is Star-Wait: budget 0 on arrival; at its expiry a job longer
	// than L runs L in the cloud and comes back to the queue once, with a
	// budget of R × max(0, K × GPUs − time since submit) (K in hours per GPU).
	WaitStar
)

// WaitPolicy gives a job its waiting budget.
type WaitPolicy struct {
	Kind WaitKind
	// Budget is the constant budget (nanoseconds).
	Budget int64
	// K is the compute-proportional and Star-Wait policies' factor.
	K float64
	// L (nanoseconds) and R are Star-Wait's stint in the cloud and budget
	// factor.
	L int64
	R float64
}

// ParseWait reads a waiting policy: "none", "constant:DURATION", where
// DURATION is a Go duration ("15s", "598.711s", "10m") or a number of
// seconds, at most nanosecond precise, not negative; or "cost:K", K ≥ 0
// hours of wait per GPU-hour.
func ParseWait(s string) (WaitPolicy, error) {
	if s == "none" {
		return WaitPolicy{Kind: WaitNone}, nil
	}
	if k, ok := strings.CutPrefix(s, "cost:"); ok {
		f, err := strconv.ParseFloat(k, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return WaitPolicy{}, fmt.Errorf("cloud wait %q: K must be a number ≥ 0 (hours of wait per GPU-hour)", s)
		}
		return WaitPolicy{Kind: WaitCost, K: f}, nil
	}
	if rest, ok := strings.CutPrefix(s, "star:"); ok {
		p := strings.Split(rest, ":")
		if len(p) != 3 {
			return WaitPolicy{}, fmt.Errorf("cloud wait %q: want star:K:L:R", s)
		}
		k, errK := strconv.ParseFloat(p[0], 64)
		l, errL := parseBudget(p[1])
		r, errR := strconv.ParseFloat(p[2], 64)
		if errK != nil || k < 0 || math.IsInf(k, 0) || math.IsNaN(k) || errR != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			return WaitPolicy{}, fmt.Errorf("cloud wait %q: K (hours per GPU) and R must be numbers ≥ 0", s)
		}
		if errL != nil {
			return WaitPolicy{}, fmt.Errorf("cloud wait %q: L: %w", s, errL)
		}
		return WaitPolicy{Kind: WaitStar, K: k, L: l, R: r}, nil
	}
	if d, ok := strings.CutPrefix(s, "constant:"); ok {
		b, err := parseBudget(d)
		if err != nil {
			return WaitPolicy{}, fmt.Errorf("cloud wait %q: %w", s, err)
		}
		return WaitPolicy{Kind: WaitConstant, Budget: b}, nil
	}
	return WaitPolicy{}, fmt.Errorf("cloud wait %q: want none, constant:DURATION, cost:K or star:K:L:R", s)
}

// parseBudget reads a duration; a bare number is seconds.
func parseBudget(s string) (int64, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || math.IsNaN(f) || f*float64(Second) > math.MaxInt64/2 {
			return 0, fmt.Errorf("budget %s: want a duration from 0 up to about 146 years", s)
		}
		return int64(math.Round(f * float64(Second))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("budget %s: want a duration such as 15s or 598.711s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("budget %s: must not be negative", s)
	}
	return int64(d), nil
}

// String writes the policy as ParseWait reads it.
func (w WaitPolicy) String() string {
	switch w.Kind {
	case WaitConstant:
		return "constant:" + time.Duration(w.Budget).String()
	case WaitCost:
		return "cost:" + strconv.FormatFloat(w.K, 'g', -1, 64)
	case WaitStar:
		return "star:" + strconv.FormatFloat(w.K, 'g', -1, 64) + ":" + time.Duration(w.L).String() + ":" + strconv.FormatFloat(w.R, 'g', -1, 64)
	}
	return "none"
}

// returnBudget is Star-Wait's budget of a job back from its stint at t:
// R × max(0, K × GPUs hours − (t − submit)).
func (w WaitPolicy) returnBudget(j *Job, gpus float64, t int64) int64 {
	b := w.R * max(0, w.K*gpus*float64(Hour)-float64(t-j.Submit))
	return int64(min(math.Round(b), math.MaxInt64/4))
}

// budget is the waiting budget of a job of gpus GPUs.
func (w WaitPolicy) budget(j *Job, gpus float64) int64 {
	switch w.Kind {
	case WaitConstant:
		return w.Budget
	case WaitCost:
		// hours of wait = K × GPU-hours, so in any one unit of time
		// B = K × GPUs × duration; capped far beyond any trace.
		return int64(min(math.Round(w.K*gpus*float64(j.Duration)), math.MaxInt64/4))
	}
	return 0
}
