package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"petite/scheduler"
	"petite/simulator/replay"
)

// MaxFileBytes bounds a scenario file: it lists actions, not nodes or jobs.
const MaxFileBytes = 1 << 20

// Spec is a scenario file as written (docs/scenario.md).
type Spec struct {
	// Name and Description say what the scenario asks.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Fleet is a fleet YAML, relative to the scenario file, or "demo" (the
	// embedded demo fleet).
	Fleet string `yaml:"fleet"`
	// Workload is the jobs to replay.
	Workload WorkloadSpec `yaml:"workload"`
	// Policy is the placement policy (default best-fit).
	Policy string `yaml:"policy"`
	// Seed seeds the run and the faults (default 42).
	Seed *uint64 `yaml:"seed"`
	// Horizon stops the run: an offset from the workload start ("+72h") or
	// an RFC 3339 time; empty runs until every job has ended.
	Horizon string `yaml:"horizon"`
	// Queue shapes the scheduling pass.
	Queue QueueSpec `yaml:"queue"`
	// Burst turns on the burst-to-cloud method.
	Burst *BurstSpec `yaml:"burst"`
	// Tenants restrict tenants to pools for the whole run (residency).
	Tenants []TenantSpec `yaml:"tenants"`
	// Actions are the timed changes, faults included.
	Actions []Action `yaml:"actions"`
}

// WorkloadSpec names the jobs: a trace file or a generator spec.
type WorkloadSpec struct {
	// Trace is a job trace relative to the scenario file, or
	// "embedded:openb" (the openb default sample that ships with petite).
	Trace string `yaml:"trace"`
	// Format is the trace's format (default auto).
	Format string `yaml:"format"`
	// Gen is a `petite trace gen` spec (traces.Spec's JSON keys), inline.
	Gen yaml.Node `yaml:"gen"`
	// Fit generates the jobs from the spec `petite trace gen --fit` fits to
	// this trace (a path or embedded:openb): the trace's job shapes, run
	// times and daily profile, at RatePerHour and for Jobs jobs.
	Fit string `yaml:"fit"`
	// RatePerHour sets the mean arrivals per hour of a gen or fit workload
	// (0: the spec's own).
	RatePerHour float64 `yaml:"rate_per_hour"`
	// Jobs keeps the first Jobs jobs of the trace (0: all).
	Jobs int `yaml:"jobs"`
	// DefaultDuration is the run time of a job whose trace gives none.
	DefaultDuration string `yaml:"default_duration"`
	// Start is the wall time (RFC 3339) of the first submission, for
	// actions given as RFC 3339 times on a trace with a relative clock.
	Start string `yaml:"start"`
}

// QueueSpec is the pass's queue and how training survives a lost place.
type QueueSpec struct {
	Discipline string `yaml:"discipline"`
	Preempt    bool   `yaml:"preempt"`
	// Preemptible says which jobs preempt may evict: all (the default),
	// training or none (replay.Victims).
	Preemptible        string `yaml:"preemptible"`
	CheckpointInterval string `yaml:"checkpoint_interval"`
	RestartCost        string `yaml:"restart_cost"`
	WarmupJobs         int    `yaml:"warmup_jobs"`
}

// BurstSpec is the burst-to-cloud method's waiting policy.
type BurstSpec struct {
	CloudWait string `yaml:"cloud_wait"`
}

// TenantSpec confines a tenant's jobs to pools, or to nodes whose labels
// match, from the start of the run.
type TenantSpec struct {
	Tenant   string            `yaml:"tenant"`
	Pools    []string          `yaml:"pools"`
	Selector map[string]string `yaml:"selector"`
}

// Action is one timed change. Do names it; the other fields are its
// arguments (docs/scenario.md lists which each kind takes).
type Action struct {
	// At is when: "+72h" (offset from the workload start; d for days is
	// allowed), an RFC 3339 time or a date, or "retire_at" (the pool's).
	At string `yaml:"at"`
	Do string `yaml:"do"`
	// Target nodes: all the criteria given must hold.
	Pool     string            `yaml:"pool"`
	Nodes    []string          `yaml:"nodes"`
	Rack     string            `yaml:"rack"`
	Zone     string            `yaml:"zone"`
	Selector map[string]string `yaml:"selector"`
	// For is the window of an outage, a drain or a reclaim ("6h"); empty
	// for good.
	For string `yaml:"for"`
	// Fraction of the targeted nodes a reclaim takes (0 < f ≤ 1).
	Fraction float64 `yaml:"fraction"`
	// MTBF and MTTR are the mean time between failures and to repair of
	// each targeted node; Until ends the faults (default: the horizon).
	MTBF  string `yaml:"mtbf"`
	MTTR  string `yaml:"mttr"`
	Until string `yaml:"until"`
	// Price is a pool's new price per GPU-hour.
	Price *float64 `yaml:"price_per_gpu_hour"`
	// MaxNodes is a cloud pool's new quota.
	MaxNodes *int `yaml:"max_nodes"`
	// Tenant and To move a tenant's work to pools; Scope is "arrivals"
	// (jobs submitted from At on, the default) or "all".
	Tenant string   `yaml:"tenant"`
	To     []string `yaml:"to"`
	Scope  string   `yaml:"scope"`
	// Fleet is a fleet YAML of the pools an add action brings.
	Fleet string `yaml:"fleet"`
}

// The action kinds.
const (
	DoRetire  = "retire"
	DoDrain   = "drain"
	DoOutage  = "outage"
	DoReclaim = "reclaim"
	DoMTBF    = "mtbf"
	DoMove    = "move"
	DoAdd     = "add"
	DoPrice   = "price"
	DoQuota   = "quota"
)

// Kinds lists the action kinds, in the order docs/scenario.md gives them.
var Kinds = []string{DoRetire, DoDrain, DoOutage, DoReclaim, DoMTBF, DoMove, DoAdd, DoPrice, DoQuota}

// Scenario is a loaded scenario: its spec, checked, with where each part
// came from for errors.
type Scenario struct {
	Spec
	// Path is the scenario file; Dir the folder relative paths start from.
	Path string
	Dir  string

	horizon timeSpec
	wait    *replay.WaitPolicy
	queue   replay.Queue
	victims replay.Victims
	ckpt    replay.Checkpoint
	defDur  int64
	start   *time.Time
	acts    []action
	root    *yaml.Node
}

// action is an Action checked: its times parsed, its line known.
type action struct {
	Action
	index     int
	line      int
	at        timeSpec
	window    int64 // nanoseconds; 0: for good
	mtbf      int64
	mttr      int64
	until     timeSpec
	hasUntil  bool
	arrivals  bool // a move of arrivals only
	supported bool
}

// timeSpec is a time as written: an offset from the workload start, an
// absolute time, or the pool's retire_at.
type timeSpec struct {
	set      bool
	offset   int64 // nanoseconds, when !absolute
	absolute bool
	wall     time.Time
	retireAt bool
}

// Load reads and checks a scenario file. It does not read the fleet or the
// workload: Compile does.
func Load(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a scenario; name is its path (relative paths in it start from
// its folder). Errors name the file, line and field.
func Parse(r io.Reader, name string) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: longer than %d KiB (scenario.MaxFileBytes)", name, MaxFileBytes>>10)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	s := &Scenario{Path: name, Dir: filepath.Dir(name), root: &root}
	if err := dec.Decode(&s.Spec); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty scenario file", name)
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, e := range te.Errors {
				msgs[i] = describeTypeError(&root, e)
			}
			return nil, fmt.Errorf("%s:%s", name, strings.Join(msgs, "; "))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// errAt is an error at a field of the file: "file:line: field path: msg".
func (s *Scenario) errAt(path []any, format string, a ...any) error {
	line := lineOf(s.root, path)
	return fmt.Errorf("%s:%d: field %s: %s", s.Path, line, pathString(path), fmt.Sprintf(format, a...))
}

func (s *Scenario) check() error {
	sp := &s.Spec
	if sp.Fleet == "" {
		return s.errAt([]any{"fleet"}, "want a fleet file (relative to the scenario) or demo")
	}
	w := &sp.Workload
	gen := w.Gen.Kind != 0
	if n := btoi(w.Trace != "") + btoi(gen) + btoi(w.Fit != ""); n != 1 {
		return s.errAt([]any{"workload"}, "want exactly one of trace, gen and fit")
	}
	if w.RatePerHour < 0 || math.IsNaN(w.RatePerHour) || math.IsInf(w.RatePerHour, 0) {
		return s.errAt([]any{"workload", "rate_per_hour"}, "want a finite rate >= 0, got %g", w.RatePerHour)
	}
	if w.RatePerHour > 0 && w.Trace != "" {
		return s.errAt([]any{"workload", "rate_per_hour"}, "a trace keeps its own arrivals; rate_per_hour goes with gen or fit")
	}
	if gen && w.Gen.Kind != yaml.MappingNode {
		return s.errAt([]any{"workload", "gen"}, "want a mapping (the keys of a trace gen spec)")
	}
	if w.Jobs < 0 {
		return s.errAt([]any{"workload", "jobs"}, "want 0 (all) or more, got %d", w.Jobs)
	}
	if w.DefaultDuration != "" {
		d, err := parseDuration(w.DefaultDuration)
		if err != nil || d <= 0 {
			return s.errAt([]any{"workload", "default_duration"}, "want a positive duration such as 1h, got %q", w.DefaultDuration)
		}
		s.defDur = d
	}
	if w.Start != "" {
		t, err := parseWall(w.Start)
		if err != nil {
			return s.errAt([]any{"workload", "start"}, "%v", err)
		}
		s.start = &t
	}
	if sp.Policy == "" {
		sp.Policy = "best-fit"
	}
	if !slices.Contains(scheduler.PolicyNames(), sp.Policy) {
		return s.errAt([]any{"policy"}, "unknown policy %q (want one of %v)", sp.Policy, scheduler.PolicyNames())
	}
	if sp.Horizon != "" {
		t, err := parseTime(sp.Horizon, false)
		if err != nil {
			return s.errAt([]any{"horizon"}, "%v", err)
		}
		if !t.absolute && t.offset <= 0 {
			return s.errAt([]any{"horizon"}, "want an offset after the workload start, got %q", sp.Horizon)
		}
		s.horizon = t
	}
	q, err := replay.ParseQueue(sp.Queue.Discipline)
	if err != nil {
		return s.errAt([]any{"queue", "discipline"}, "%v", err)
	}
	s.queue = q
	if sp.Queue.Preemptible != "" && !sp.Queue.Preempt {
		return s.errAt([]any{"queue", "preemptible"}, "needs preempt: true")
	}
	if sp.Queue.Preempt {
		s.victims = replay.VictimsAll
		if sp.Queue.Preemptible != "" {
			if s.victims, err = replay.ParseVictims(sp.Queue.Preemptible); err != nil {
				return s.errAt([]any{"queue", "preemptible"}, "%v", err)
			}
		}
	}
	for _, f := range []struct {
		key string
		v   string
		out *int64
	}{{"checkpoint_interval", sp.Queue.CheckpointInterval, &s.ckpt.Interval}, {"restart_cost", sp.Queue.RestartCost, &s.ckpt.Restart}} {
		if f.v == "" {
			continue
		}
		d, err := parseDuration(f.v)
		if err != nil || d < 0 {
			return s.errAt([]any{"queue", f.key}, "want a duration such as 30m, got %q", f.v)
		}
		*f.out = d
	}
	if sp.Queue.WarmupJobs < 0 {
		return s.errAt([]any{"queue", "warmup_jobs"}, "must not be negative")
	}
	if sp.Burst != nil {
		wp, err := replay.ParseWait(sp.Burst.CloudWait)
		if err != nil {
			return s.errAt([]any{"burst", "cloud_wait"}, "%v", err)
		}
		if q != replay.QueueFIFO || sp.Queue.Preempt {
			return s.errAt([]any{"burst"}, "the burst method runs a strict fifo queue without preemption")
		}
		s.wait = &wp
	}
	for i, t := range sp.Tenants {
		if t.Tenant == "" {
			return s.errAt([]any{"tenants", i, "tenant"}, "want a tenant name")
		}
		if len(t.Pools) == 0 && len(t.Selector) == 0 {
			return s.errAt([]any{"tenants", i}, "want pools or a selector the tenant's jobs must stay on")
		}
	}
	for i := range sp.Actions {
		a, err := s.checkAction(i)
		if err != nil {
			return err
		}
		s.acts = append(s.acts, a)
	}
	return nil
}

func (s *Scenario) checkAction(i int) (action, error) {
	a := action{Action: s.Actions[i], index: i, line: lineOf(s.root, []any{"actions", i})}
	at := func(field string) []any { return []any{"actions", i, field} }
	if !slices.Contains(Kinds, a.Do) {
		return a, s.errAt(at("do"), "unknown action %q (want one of %v)", a.Do, Kinds)
	}
	if a.At == "" && a.Do != DoMTBF {
		return a, s.errAt(at("at"), "want a time: +72h, an RFC 3339 time or a date")
	}
	if a.At != "" {
		t, err := parseTime(a.At, a.Do == DoRetire)
		if err != nil {
			return a, s.errAt(at("at"), "%v", err)
		}
		if t.retireAt && a.Pool == "" {
			return a, s.errAt(at("at"), "retire_at needs a pool whose retire_at it is")
		}
		a.at = t
	}
	targets := a.Pool != "" || len(a.Nodes) > 0 || a.Rack != "" || a.Zone != "" || len(a.Selector) > 0
	if a.For != "" {
		if a.Do != DoOutage && a.Do != DoDrain && a.Do != DoReclaim {
			return a, s.errAt(at("for"), "only outage, drain and reclaim take a window")
		}
		d, err := parseDuration(a.For)
		if err != nil || d <= 0 {
			return a, s.errAt(at("for"), "want a positive duration such as 6h, got %q", a.For)
		}
		a.window = d
	}
	switch a.Do {
	case DoRetire, DoDrain, DoOutage, DoReclaim, DoMTBF:
		if !targets {
			return a, s.errAt([]any{"actions", i}, "%s needs nodes to act on: pool, nodes, rack, zone or selector", a.Do)
		}
		a.supported = true
	}
	switch a.Do {
	case DoReclaim:
		if !(a.Fraction > 0 && a.Fraction <= 1) {
			return a, s.errAt(at("fraction"), "want the share of nodes reclaimed, 0 < fraction ≤ 1, got %g", a.Fraction)
		}
	case DoMTBF:
		for _, f := range []struct {
			key, v string
			out    *int64
		}{{"mtbf", a.MTBF, &a.mtbf}, {"mttr", a.MTTR, &a.mttr}} {
			d, err := parseDuration(f.v)
			if err != nil || d <= 0 {
				return a, s.errAt(at(f.key), "want a positive duration such as 720h, got %q", f.v)
			}
			*f.out = d
		}
		if a.Until != "" {
			t, err := parseTime(a.Until, false)
			if err != nil {
				return a, s.errAt(at("until"), "%v", err)
			}
			a.until, a.hasUntil = t, true
		} else if !s.horizon.set {
			return a, s.errAt(at("until"), "faults need an end: give until or the scenario's horizon")
		}
	case DoMove:
		if a.Tenant == "" {
			return a, s.errAt(at("tenant"), "want the tenant whose work moves")
		}
		if len(a.To) == 0 {
			return a, s.errAt(at("to"), "want the pools the work moves to")
		}
		switch a.Scope {
		case "", "arrivals":
			a.arrivals, a.supported = true, true
		case "all":
			a.supported = true
		default:
			return a, s.errAt(at("scope"), "want arrivals or all, got %q", a.Scope)
		}
	case DoAdd:
		a.supported = true
		if a.Fleet == "" {
			return a, s.errAt(at("fleet"), "want a fleet file of the pools to add")
		}
	case DoPrice:
		a.supported = true
		if a.Pool == "" {
			return a, s.errAt(at("pool"), "want the pool whose price changes")
		}
		if a.Price == nil || *a.Price < 0 || math.IsNaN(*a.Price) || math.IsInf(*a.Price, 0) {
			return a, s.errAt(at("price_per_gpu_hour"), "want a finite price ≥ 0")
		}
	case DoQuota:
		a.supported = true
		if a.Pool == "" {
			return a, s.errAt(at("pool"), "want the cloud pool whose quota changes")
		}
		if a.MaxNodes == nil || *a.MaxNodes < 0 {
			return a, s.errAt(at("max_nodes"), "want a node count ≥ 0")
		}
	}
	if a.Do != DoReclaim && a.Fraction != 0 {
		return a, s.errAt(at("fraction"), "only reclaim takes a fraction")
	}
	return a, nil
}

// parseTime reads "+DURATION" (from the workload start), an RFC 3339 time
// or a date, or (where allowed) "retire_at".
func parseTime(v string, retireAt bool) (timeSpec, error) {
	if v == "retire_at" {
		if !retireAt {
			return timeSpec{}, errors.New("retire_at is a time only retire actions take")
		}
		return timeSpec{set: true, retireAt: true}, nil
	}
	if rest, ok := strings.CutPrefix(v, "+"); ok {
		d, err := parseDuration(rest)
		if err != nil {
			return timeSpec{}, fmt.Errorf("offset %q: %w", v, err)
		}
		return timeSpec{set: true, offset: d}, nil
	}
	t, err := parseWall(v)
	if err != nil {
		return timeSpec{}, err
	}
	return timeSpec{set: true, absolute: true, wall: t}, nil
}

func parseWall(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want +DURATION (from the workload start), an RFC 3339 time or a date, got %q", v)
}

// parseDuration reads a Go duration, with d for days ("30d", "1d12h").
func parseDuration(v string) (int64, error) {
	days := int64(0)
	if i := strings.IndexByte(v, 'd'); i > 0 {
		n, err := strconv.ParseInt(v[:i], 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("duration %q: want days as a whole number up to 100000", v)
		}
		days, v = n, v[i+1:]
		if v == "" {
			return days * 24 * replay.Hour, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a duration such as 90m, 72h or 3d", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q: must not be negative", v)
	}
	return days*24*replay.Hour + int64(d), nil
}

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
