package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"petite/scheduler"
	"petite/scheduler/fleet"
	"petite/simulator/replay"
	"petite/traces"
	"petite/traces/samples"
)

// EmbeddedOpenb names the openb default sample as a scenario's trace.
const EmbeddedOpenb = "embedded:openb"

// ErrNeedsEngine marks an action the replay engine cannot express yet
// (docs/scenario.md, "Next").
var ErrNeedsEngine = errors.New("needs engine support (not yet)")

// MaxNodeEvents bounds the node events a scenario may compile to, so a
// mistaken fault rate cannot take the run's memory.
const MaxNodeEvents = 1 << 20

// Inputs are the fleet and the workload a scenario names, read once and
// shared by the runs that compare variants of it.
type Inputs struct {
	Pools []scheduler.Pool
	Nodes []scheduler.Node
	Jobs  []replay.Job
	// Clock is the trace's clock: unix times can be given as RFC 3339
	// without workload.start.
	Clock traces.Clock
}

// Compiled is a scenario ready to run.
type Compiled struct {
	// Config is the replay to run.
	Config replay.Config
	// Start is the workload start (the first submission) on the virtual
	// clock; offsets count from it.
	Start int64
	// Actions are the actions compiled, in file order, skipped ones left
	// out.
	Actions []Compiled1
}

// Compiled1 is one action as compiled: when it happens and what it
// touches.
type Compiled1 struct {
	Index int    `json:"index"`
	Do    string `json:"do"`
	Line  int    `json:"line"`
	// At is the action's time on the virtual clock (nanoseconds); for
	// mtbf faults, their start.
	At int64 `json:"at_ns"`
	// Nodes are the nodes it acts on (a reclaim: those drawn).
	Nodes []string `json:"nodes,omitempty"`
	// Tenant and To are a move's.
	Tenant string   `json:"tenant,omitempty"`
	To     []string `json:"to,omitempty"`
	// Events is how many node events it compiled to.
	Events int `json:"events"`
}

// Where names an action for messages: "action retire at FILE:LINE".
func (s *Scenario) where(a *action) string {
	return fmt.Sprintf("action %s at %s:%d (actions[%d])", a.Do, s.Path, a.line, a.index)
}

// LoadInputs reads the fleet and the workload the scenario names.
func (s *Scenario) LoadInputs() (*Inputs, error) {
	in := &Inputs{}
	var err error
	if s.Fleet == "demo" {
		in.Pools, in.Nodes, err = fleet.Load("")
	} else {
		in.Pools, in.Nodes, err = fleet.Load(s.rel(s.Fleet))
	}
	if err != nil {
		return nil, fmt.Errorf("%s:%d: field fleet: %w", s.Path, lineOf(s.root, []any{"fleet"}), err)
	}
	w := &s.Workload
	var src []traces.Job
	name := w.Trace
	if w.Fit != "" {
		name = fmt.Sprintf("%s:%d: workload.fit", s.Path, lineOf(s.root, []any{"workload", "fit"}))
		r, err := s.openTrace(w.Fit)
		if err != nil {
			return nil, s.wrapAt([]any{"workload", "fit"}, err)
		}
		spec, err := traces.Fit(r)
		r.Close()
		if err != nil {
			return nil, s.wrapAt([]any{"workload", "fit"}, err)
		}
		spec.Seed = 42 // the scenario file's seed, not a run's --seed: one workload
		if s.Seed != nil {
			spec.Seed = *s.Seed
		}
		if w.Jobs > 0 {
			spec.Jobs = w.Jobs
		}
		if w.RatePerHour > 0 {
			spec.Arrival.RatePerHour = w.RatePerHour
		}
		in.Clock = spec.Clock
		if src, err = generate(spec); err != nil {
			return nil, s.wrapAt([]any{"workload", "fit"}, err)
		}
	} else if w.Trace != "" {
		format, err := traces.ParseFormat(w.Format)
		if w.Format == "" {
			format, err = traces.ParseFormat("auto")
		}
		if err != nil {
			return nil, s.errAt([]any{"workload", "format"}, "%v", err)
		}
		var r *traces.Reader
		opts := traces.Options{Format: format, Strict: true}
		if w.Trace == EmbeddedOpenb {
			r, err = traces.NewReader(bytes.NewReader(samples.OpenbDefaultPods()), samples.OpenbDefaultPodsFile, opts)
		} else {
			name = s.rel(w.Trace)
			r, err = traces.Open(name, opts)
		}
		if err != nil {
			return nil, s.wrapAt([]any{"workload", "trace"}, err)
		}
		defer r.Close()
		in.Clock = r.Meta().Clock
		for j, err := range r.All() {
			if err != nil {
				return nil, s.wrapAt([]any{"workload", "trace"}, err)
			}
			src = append(src, j)
			if w.Jobs > 0 && len(src) == w.Jobs {
				break
			}
		}
	} else {
		name = fmt.Sprintf("%s:%d: workload.gen", s.Path, w.Gen.Line)
		spec, err := s.genSpec()
		if err != nil {
			return nil, err
		}
		if w.Jobs > 0 {
			spec.Jobs = min(spec.Jobs, w.Jobs)
		}
		if w.RatePerHour > 0 {
			spec.Arrival.RatePerHour = w.RatePerHour
		}
		in.Clock = spec.Clock
		if src, err = generate(spec); err != nil {
			return nil, s.wrapAt([]any{"workload", "gen"}, err)
		}
	}
	in.Jobs, err = replay.FromTrace(src, name, s.defDur)
	if err != nil {
		return nil, err
	}
	if len(in.Jobs) == 0 {
		return nil, s.errAt([]any{"workload"}, "no jobs to replay")
	}
	return in, nil
}

// generate draws every job of a generator spec.
func generate(spec traces.Spec) ([]traces.Job, error) {
	g, err := traces.NewGenerator(spec)
	if err != nil {
		return nil, err
	}
	var src []traces.Job
	for {
		j, err := g.Next()
		if errors.Is(err, io.EOF) {
			return src, nil
		}
		if err != nil {
			return nil, err
		}
		src = append(src, j)
	}
}

// openTrace opens a workload trace named in the scenario: a path relative
// to the scenario file, or embedded:openb, read strictly in the format the
// scenario gives (auto by default).
func (s *Scenario) openTrace(path string) (*traces.Reader, error) {
	w := &s.Workload
	format, err := traces.ParseFormat(w.Format)
	if w.Format == "" {
		format, err = traces.ParseFormat("auto")
	}
	if err != nil {
		return nil, err
	}
	opts := traces.Options{Format: format, Strict: true}
	if path == EmbeddedOpenb {
		return traces.NewReader(bytes.NewReader(samples.OpenbDefaultPods()), samples.OpenbDefaultPodsFile, opts)
	}
	return traces.Open(s.rel(path), opts)
}

// genSpec reads workload.gen as a trace gen spec: the YAML mapping has the
// spec's JSON keys, and is checked as strictly as a spec file.
func (s *Scenario) genSpec() (traces.Spec, error) {
	var v any
	if err := s.Workload.Gen.Decode(&v); err != nil {
		return traces.Spec{}, s.wrapAt([]any{"workload", "gen"}, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return traces.Spec{}, s.wrapAt([]any{"workload", "gen"}, err)
	}
	spec, err := traces.ReadSpec(bytes.NewReader(data))
	if err != nil {
		return traces.Spec{}, s.wrapAt([]any{"workload", "gen"}, err)
	}
	return spec, nil
}

func (s *Scenario) wrapAt(path []any, err error) error {
	return fmt.Errorf("%s:%d: field %s: %w", s.Path, lineOf(s.root, path), pathString(path), err)
}

// rel resolves a path of the scenario file against its folder.
func (s *Scenario) rel(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Compile reads the scenario's inputs and compiles every action.
func (s *Scenario) Compile() (*Compiled, error) {
	in, err := s.LoadInputs()
	if err != nil {
		return nil, err
	}
	return s.CompileWith(in, nil)
}

// CompileWith compiles the scenario over inputs already read, leaving out
// the actions skip names (by index; nil skips none). It does not change
// the inputs.
func (s *Scenario) CompileWith(in *Inputs, skip func(int) bool) (*Compiled, error) {
	c := &Compiled{}
	cfg := &c.Config
	cfg.Pools, cfg.Nodes = in.Pools, in.Nodes
	cfg.Policy, cfg.Queue, cfg.Preempt, cfg.Checkpoint = s.Policy, s.queue, s.Queue.Preempt, s.ckpt
	cfg.Victims = s.victims
	cfg.Seed = 42
	if s.Seed != nil {
		cfg.Seed = *s.Seed
	}
	cfg.WarmupJobs = s.Queue.WarmupJobs
	if s.wait != nil {
		cfg.Burst = &replay.Burst{Wait: *s.wait}
	}
	c.Start = math.MaxInt64
	for i := range in.Jobs {
		c.Start = min(c.Start, in.Jobs[i].Submit)
	}
	cl, err := scheduler.NewCluster(in.Pools, in.Nodes)
	if err != nil {
		return nil, fmt.Errorf("%s: fleet: %w", s.Path, err)
	}
	pools := map[string]*scheduler.Pool{}
	for i := range in.Pools {
		pools[in.Pools[i].Name] = &in.Pools[i]
	}
	if s.Horizon != "" {
		h, err := s.resolve(s.horizon, c.Start, in, "")
		if err != nil {
			return nil, s.errAt([]any{"horizon"}, "%v", err)
		}
		if h <= 0 {
			return nil, s.errAt([]any{"horizon"}, "%s falls at or before the clock's zero", s.Horizon)
		}
		cfg.Horizon = h
	}
	for i, t := range s.Tenants {
		for _, p := range t.Pools {
			if pools[p] == nil {
				return nil, s.errAt([]any{"tenants", i, "pools"}, "no pool %q in the fleet", p)
			}
		}
	}
	// Jobs are copied so that the inputs stay as read; constraints are
	// appended to fresh slices.
	cfg.Jobs = slices.Clone(in.Jobs)
	for _, t := range s.Tenants {
		cons := constraintsOf(t.Pools, t.Selector)
		for k := range cfg.Jobs {
			if cfg.Jobs[k].Job.Tenant == t.Tenant {
				addConstraints(&cfg.Jobs[k], cons)
			}
		}
	}
	rank := map[string]int{}
	for i := range in.Nodes {
		rank[in.Nodes[i].Name] = i
	}
	var events []replay.NodeEvent
	for i := range s.acts {
		a := &s.acts[i]
		if skip != nil && skip(a.index) {
			continue
		}
		one := Compiled1{Index: a.index, Do: a.Do, Line: a.line}
		field := func(f string) []any { return []any{"actions", a.index, f} }
		for _, p := range a.To {
			if pools[p] == nil {
				return nil, s.errAt(field("to"), "no pool %q in the fleet", p)
			}
		}
		if (a.Do == DoPrice || a.Do == DoQuota) && pools[a.Pool] == nil {
			return nil, s.errAt(field("pool"), "no pool %q in the fleet", a.Pool)
		}
		if a.Do == DoQuota && pools[a.Pool].Kind != scheduler.PoolCloud {
			return nil, s.errAt(field("pool"), "pool %s is %s: only cloud pools have a quota", a.Pool, pools[a.Pool].Kind)
		}
		var addPools []scheduler.Pool
		var addNodes []scheduler.Node
		if a.Do == DoAdd {
			if addPools, addNodes, err = fleet.Load(s.rel(a.Fleet)); err != nil {
				return nil, s.wrapAt(field("fleet"), err)
			}
		}
		if !a.supported {
			return nil, fmt.Errorf("%s %w: %s", s.where(a), ErrNeedsEngine, hookOf(a))
		}
		if a.at.set {
			one.At, err = s.resolve(a.at, c.Start, in, a.Pool)
			if err != nil {
				return nil, s.errAt(field("at"), "%v", err)
			}
		} else {
			one.At = c.Start
		}
		if a.Do == DoPrice {
			one.Events = 1
			cfg.PriceEvents = append(cfg.PriceEvents, replay.PriceEvent{At: one.At, Pool: a.Pool, PricePerGPUHour: *a.Price})
			c.Actions = append(c.Actions, one)
			continue
		}
		if a.Do == DoQuota {
			// a quota only means something if the cloud pools scale: the
			// run scales them (replay.Scale's defaults)
			if cfg.Burst != nil {
				return nil, s.errAt(field("do"), "a quota needs pool scaling, which the burst method's unlimited cloud excludes")
			}
			if !slices.ContainsFunc(cfg.Nodes, func(n scheduler.Node) bool { return n.Pool == a.Pool }) {
				return nil, s.errAt(field("pool"), "cloud pool %s lists no node to grow from", a.Pool)
			}
			if cfg.Scale == nil {
				cfg.Scale = &replay.Scale{}
			}
			one.Events = 1
			cfg.QuotaEvents = append(cfg.QuotaEvents, replay.QuotaEvent{At: one.At, Pool: a.Pool, MaxNodes: *a.MaxNodes})
			c.Actions = append(c.Actions, one)
			continue
		}
		if a.Do == DoAdd {
			evs, err := s.compileAdd(a, cfg, pools, addPools, addNodes, events, one.At)
			if err != nil {
				return nil, err
			}
			for _, e := range evs {
				one.Nodes = append(one.Nodes, e.Node)
			}
			one.Events = len(evs)
			events = append(events, evs...)
			c.Actions = append(c.Actions, one)
			continue
		}
		if a.Do == DoMove {
			one.Tenant, one.To = a.Tenant, a.To
			cons := constraintsOf(a.To, nil)
			for k := range cfg.Jobs {
				if j := &cfg.Jobs[k]; j.Job.Tenant == a.Tenant && j.Submit >= one.At {
					addConstraints(j, cons)
				}
			}
			if !a.arrivals { // scope all: the work live at the move too
				cfg.MoveEvents = append(cfg.MoveEvents, replay.MoveEvent{At: one.At, Tenant: a.Tenant, Pools: slices.Clone(a.To)})
				one.Events = 1
			}
			c.Actions = append(c.Actions, one)
			continue
		}
		nodes, err := s.selectNodes(a, cl, cfg.Burst != nil)
		if err != nil {
			return nil, err
		}
		var evs []replay.NodeEvent
		switch a.Do {
		case DoRetire:
			evs = at(one.At, nodes, scheduler.NodeRetired)
		case DoDrain:
			evs = window(one.At, a.window, nodes, scheduler.NodeDraining)
		case DoOutage:
			evs = window(one.At, a.window, nodes, scheduler.NodeDown)
		case DoReclaim:
			rng := rand.New(rand.NewPCG(cfg.Seed, 0x7ec1a1<<8|uint64(a.index)))
			rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
			nodes = nodes[:int(math.Round(a.Fraction*float64(len(nodes))))]
			slices.SortFunc(nodes, func(x, y string) int { return rank[x] - rank[y] })
			evs = window(one.At, a.window, nodes, scheduler.NodeDown)
		case DoMTBF:
			end := cfg.Horizon
			if a.hasUntil {
				if end, err = s.resolve(a.until, c.Start, in, ""); err != nil {
					return nil, s.errAt(field("until"), "%v", err)
				}
			}
			rng := rand.New(rand.NewPCG(cfg.Seed, 0x3fb1<<8|uint64(a.index)))
			for _, n := range nodes {
				for t := one.At; ; {
					t += int64(rng.ExpFloat64() * float64(a.mtbf))
					if t >= end {
						break
					}
					evs = append(evs, replay.NodeEvent{At: t, Node: n, State: scheduler.NodeDown})
					t += max(1, int64(rng.ExpFloat64()*float64(a.mttr)))
					evs = append(evs, replay.NodeEvent{At: t, Node: n, State: scheduler.NodeReady})
					if len(events)+len(evs) > MaxNodeEvents {
						return nil, fmt.Errorf("%s: more than %d node events: raise mtbf or shorten the faults", s.where(a), MaxNodeEvents)
					}
				}
			}
		}
		if len(events)+len(evs) > MaxNodeEvents {
			return nil, fmt.Errorf("%s: more than %d node events", s.where(a), MaxNodeEvents)
		}
		one.Nodes, one.Events = nodes, len(evs)
		events = append(events, evs...)
		c.Actions = append(c.Actions, one)
	}
	cfg.NodeEvents = settle(events)
	return c, nil
}

// settle orders node events by time (file order among equal times) and
// drops what follows a node's retirement: retired is for good.
func settle(evs []replay.NodeEvent) []replay.NodeEvent {
	slices.SortStableFunc(evs, func(a, b replay.NodeEvent) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	retired := map[string]bool{}
	out := evs[:0]
	for _, e := range evs {
		if retired[e.Node] {
			continue
		}
		retired[e.Node] = e.State == scheduler.NodeRetired
		out = append(out, e)
	}
	return out
}

func at(t int64, nodes []string, st scheduler.NodeState) []replay.NodeEvent {
	out := make([]replay.NodeEvent, len(nodes))
	for i, n := range nodes {
		out[i] = replay.NodeEvent{At: t, Node: n, State: st}
	}
	return out
}

// window sets nodes to st at t and, for a window w > 0, ready at t + w.
func window(t, w int64, nodes []string, st scheduler.NodeState) []replay.NodeEvent {
	out := at(t, nodes, st)
	if w > 0 {
		out = append(out, at(t+w, nodes, scheduler.NodeReady)...)
	}
	return out
}

// resolve places a time on the virtual clock.
func (s *Scenario) resolve(t timeSpec, start int64, in *Inputs, pool string) (int64, error) {
	if !t.absolute && !t.retireAt {
		return start + t.offset, nil
	}
	wall := t.wall
	if t.retireAt {
		var p *scheduler.Pool
		for i := range in.Pools {
			if in.Pools[i].Name == pool {
				p = &in.Pools[i]
			}
		}
		switch {
		case p == nil:
			return 0, fmt.Errorf("retire_at: no pool %q in the fleet", pool)
		case p.RetireAt == 0:
			return 0, fmt.Errorf("retire_at: pool %s has no retire_at in its fleet file", pool)
		}
		wall = time.Unix(p.RetireAt, 0).UTC()
	}
	var sec int64
	switch {
	case s.start != nil:
		d := wall.Sub(*s.start)
		if d == math.MaxInt64 || d == math.MinInt64 {
			return 0, fmt.Errorf("%s is too far from workload.start", wall.Format(time.RFC3339))
		}
		return start + int64(d), nil
	case in.Clock == traces.ClockUnix:
		sec = wall.Unix()
	default:
		return 0, fmt.Errorf("%s: the trace's clock is relative; give workload.start (the wall time of the first submission) or an offset such as +72h", wall.Format(time.RFC3339))
	}
	return replay.FromSeconds(sec)
}

// selectNodes returns the nodes an action targets, in fleet order.
func (s *Scenario) selectNodes(a *action, cl *scheduler.Cluster, burst bool) ([]string, error) {
	want := map[string]bool{}
	for _, n := range a.Nodes {
		if _, ok := cl.NodeByName(n); !ok {
			return nil, s.errAt([]any{"actions", a.index, "nodes"}, "no node %q in the fleet", n)
		}
		want[n] = true
	}
	if a.Pool != "" && !slices.ContainsFunc(cl.Pools(), func(p scheduler.Pool) bool { return p.Name == a.Pool }) {
		return nil, s.errAt([]any{"actions", a.index, "pool"}, "no pool %q in the fleet", a.Pool)
	}
	var out []string
	for id := range cl.NumNodes() {
		n := cl.Node(scheduler.NodeID(id))
		l := cl.Labels(scheduler.NodeID(id))
		ok := (a.Pool == "" || n.Pool == a.Pool) && (len(want) == 0 || want[n.Name]) &&
			(a.Rack == "" || n.Rack == a.Rack) && (a.Zone == "" || l["zone"] == a.Zone)
		for k, v := range a.Selector {
			ok = ok && l[k] == v
		}
		if !ok {
			continue
		}
		if burst && !cl.PoolOf(scheduler.NodeID(id)).Kind.Owned() {
			return nil, fmt.Errorf("%s: node %s is in cloud pool %s, which under burst has no nodes to act on", s.where(a), n.Name, n.Pool)
		}
		out = append(out, n.Name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: selects no node of the fleet", s.where(a))
	}
	return out, nil
}

// constraintsOf turns pools and a label selector into the core's
// constraints; the selector's keys in sorted order, for determinism.
func constraintsOf(pools []string, sel map[string]string) []scheduler.Constraint {
	var out []scheduler.Constraint
	if len(pools) > 0 {
		out = append(out, scheduler.Constraint{Key: "pool", Op: scheduler.OpIn, Values: slices.Clone(pools)})
	}
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		out = append(out, scheduler.Constraint{Key: k, Op: scheduler.OpIn, Values: []string{sel[k]}})
	}
	return out
}

func addConstraints(j *replay.Job, cons []scheduler.Constraint) {
	t := &j.Job.Task
	t.Constraints = append(slices.Clip(t.Constraints), cons...)
}

// hookOf says which engine hook an action would need.
func hookOf(a *action) string {
	switch a.Do {
	case DoAdd:
		return "registering pools and nodes at a time during the run (a RegisterPool/RegisterNode event on the heap, with the fit check of later arrivals against the grown fleet)"
	case DoQuota:
		return "cloud pool scaling (nodes provisioned up to max_nodes) and an event that changes max_nodes"
	case DoMove:
		return "an event that rewrites the constraints of queued and running jobs of a tenant (requeueing the running ones whose place no longer matches)"
	}
	return a.Do
}
