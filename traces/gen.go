package traces

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Spec describes a synthetic workload for Generator. It can be written by
// hand (JSON) or fitted from a real trace with Fit.
type Spec struct {
	// Jobs is how many jobs to generate.
	Jobs int `json:"jobs"`
	// Seed seeds the generator: the same spec and seed give the same jobs.
	Seed uint64 `json:"seed"`
	// Start is the time of the first possible arrival, in seconds.
	Start int64 `json:"start"`
	// Clock and Zone describe the times, as in Meta.
	Clock Clock  `json:"clock"`
	Zone  string `json:"zone"`
	// Arrival is the arrival process.
	Arrival Arrival `json:"arrival"`
	// Duration is the distribution of run times.
	Duration DurationDist `json:"duration"`
	// Shapes is the mix of job shapes, drawn by weight.
	Shapes []Shape `json:"shapes"`
	// Tenants is the number of tenants jobs are spread over (Zipf-like,
	// "tenant-0" busiest); 0 leaves Tenant empty.
	Tenants int `json:"tenants"`
	// Kind is given to every job.
	Kind Kind `json:"kind,omitempty"`
}

// Arrival is an arrival process.
type Arrival struct {
	// Process is "poisson" (a constant rate) or "diurnal" (a Poisson
	// process whose rate follows Hourly through the day).
	Process string `json:"process"`
	// RatePerHour is the mean number of arrivals per hour.
	RatePerHour float64 `json:"rate_per_hour"`
	// Hourly weighs the 24 hours of the day (in Zone) for "diurnal"; the
	// rate in hour h is RatePerHour × Hourly[h] / mean(Hourly).
	Hourly []float64 `json:"hourly,omitempty"`
}

// DurationDist is a heavy-tailed distribution of run times in seconds,
// clamped to [Min, Max].
type DurationDist struct {
	// Dist is "lognormal" (Mu, Sigma of the log of seconds) or "pareto"
	// (scale Xm seconds, shape Alpha).
	Dist  string  `json:"dist"`
	Mu    float64 `json:"mu,omitempty"`
	Sigma float64 `json:"sigma,omitempty"`
	Xm    float64 `json:"xm,omitempty"`
	Alpha float64 `json:"alpha,omitempty"`
	Min   int64   `json:"min"`
	Max   int64   `json:"max"`
}

// Shape is one kind of job in the mix: its tasks and how often it comes.
type Shape struct {
	Weight float64 `json:"weight"`
	Tasks  []Task  `json:"tasks"`
}

// DefaultSpec is the workload gen makes without --fit or --spec: a diurnal
// day of mostly single-GPU jobs, some shared and some multi-GPU gangs, with
// lognormal run times around half an hour.
func DefaultSpec() Spec {
	hourly := []float64{4, 3, 2, 2, 2, 3, 5, 7, 9, 10, 10, 10, 9, 10, 10, 10, 9, 8, 7, 7, 6, 6, 5, 5}
	t := func(count, gpus int, milli, cpu, mem int64) []Task {
		return []Task{{Count: count, GPUs: gpus, GPUMilli: milli, CPUMilli: cpu, MemoryMiB: mem}}
	}
	return Spec{
		Jobs: 10000, Seed: 1, Clock: ClockRelative, Zone: "UTC",
		Arrival:  Arrival{Process: "diurnal", RatePerHour: 120, Hourly: hourly},
		Duration: DurationDist{Dist: "lognormal", Mu: math.Log(1800), Sigma: 1.6, Min: 10, Max: 30 * 86400},
		Shapes: []Shape{
			{Weight: 0.12, Tasks: t(1, 0, 0, 4000, 16384)},
			{Weight: 0.20, Tasks: t(1, 1, 250, 4000, 8192)},
			{Weight: 0.15, Tasks: t(1, 1, 500, 6000, 12288)},
			{Weight: 0.35, Tasks: t(1, 1, 1000, 8000, 32768)},
			{Weight: 0.07, Tasks: t(1, 2, 1000, 16000, 65536)},
			{Weight: 0.05, Tasks: t(1, 4, 1000, 32000, 131072)},
			{Weight: 0.04, Tasks: t(1, 8, 1000, 64000, 262144)},
			{Weight: 0.02, Tasks: t(4, 8, 1000, 64000, 262144)},
		},
		Tenants: 50, Kind: KindTraining,
	}
}

// MinRatePerHour is the lowest Arrival.RatePerHour Validate accepts: one
// job in about 114 years. Lower rates put even the first arrival out of
// any trace's reach.
const MinRatePerHour = 1e-6

// maxClock is 2^63, the first float64 past the last int64 time.
const maxClock = 0x1p63

// Validate checks a spec before generating from it, including that the
// arrivals it asks for fit, on average, in int64 seconds.
func (s *Spec) Validate() error {
	if s.Jobs < 0 {
		return fmt.Errorf("spec: jobs is %d, want 0 or more", s.Jobs)
	}
	if s.Clock != ClockUnix && s.Clock != ClockRelative {
		return fmt.Errorf("spec: clock %q, want unix or relative", s.Clock)
	}
	if _, err := parseZone(s.Zone); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	a := s.Arrival
	switch a.Process {
	case "poisson":
	case "diurnal":
		if len(a.Hourly) != 24 {
			return fmt.Errorf("spec: arrival.hourly has %d weights, want 24", len(a.Hourly))
		}
		sum := 0.0
		for _, w := range a.Hourly {
			if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
				return fmt.Errorf("spec: arrival.hourly weight %v, want a finite number >= 0", w)
			}
			sum += w
		}
		if sum == 0 {
			return fmt.Errorf("spec: arrival.hourly weights are all zero")
		}
	default:
		return fmt.Errorf("spec: arrival.process %q, want poisson or diurnal", a.Process)
	}
	if !(a.RatePerHour >= MinRatePerHour) || math.IsInf(a.RatePerHour, 0) {
		return fmt.Errorf("spec: arrival.rate_per_hour is %v, want a finite number >= %g", a.RatePerHour, MinRatePerHour)
	}
	if s.Start < 0 {
		return fmt.Errorf("spec: start is %d, want a time >= 0", s.Start)
	}
	// The arrivals of Jobs jobs span Jobs/rate hours on average; the last
	// must still be a time. (A draw can still run past it: Next stops
	// with an error then.)
	if span := float64(s.Jobs) / a.RatePerHour * 3600; float64(s.Start)+span >= maxClock {
		return fmt.Errorf("spec: %d jobs at %v per hour from start %d span %.3g s on average, past the last time a trace can hold (%d)",
			s.Jobs, a.RatePerHour, s.Start, span, int64(math.MaxInt64))
	}
	d := s.Duration
	switch d.Dist {
	case "lognormal":
		if !(d.Sigma >= 0) || math.IsInf(d.Mu, 0) || math.IsNaN(d.Mu) || math.IsInf(d.Sigma, 0) {
			return fmt.Errorf("spec: duration mu %v, sigma %v: want finite numbers, sigma >= 0", d.Mu, d.Sigma)
		}
	case "pareto":
		if !(d.Xm > 0) || !(d.Alpha > 0) || math.IsInf(d.Xm, 0) || math.IsInf(d.Alpha, 0) {
			return fmt.Errorf("spec: duration xm %v, alpha %v: want positive numbers", d.Xm, d.Alpha)
		}
	default:
		return fmt.Errorf("spec: duration.dist %q, want lognormal or pareto", d.Dist)
	}
	if d.Min < 1 || d.Max < d.Min {
		return fmt.Errorf("spec: duration min %d, max %d: want 1 <= min <= max", d.Min, d.Max)
	}
	if len(s.Shapes) == 0 {
		return fmt.Errorf("spec: no shapes")
	}
	total := 0.0
	for i, sh := range s.Shapes {
		if !(sh.Weight >= 0) || math.IsInf(sh.Weight, 0) {
			return fmt.Errorf("spec: shape %d: weight %v, want >= 0", i, sh.Weight)
		}
		total += sh.Weight
		for k := range sh.Tasks {
			if err := sh.Tasks[k].validate(); err != nil {
				return fmt.Errorf("spec: shape %d: task %d: %w", i, k, err)
			}
		}
	}
	if total <= 0 {
		return fmt.Errorf("spec: shape weights are all zero")
	}
	if s.Tenants < 0 {
		return fmt.Errorf("spec: tenants is %d, want 0 or more", s.Tenants)
	}
	if _, ok := ParseKind(string(s.Kind)); !ok {
		return fmt.Errorf("spec: kind %q, want training, inference or empty", s.Kind)
	}
	return nil
}

// ReadSpec reads a JSON spec, rejecting unknown fields.
func ReadSpec(r io.Reader) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("spec: %w", err)
	}
	return s, s.Validate()
}

// maxFitShapes is how many of the commonest job shapes Fit keeps.
const maxFitShapes = 64

// maxFitKeys bounds the distinct shapes Fit counts, so fitting a huge
// trace stays in bounded memory; shapes first met past it are not counted.
const maxFitKeys = 1 << 16

// Fit estimates a Spec from a trace: the mean arrival rate and hourly
// profile (diurnal), a lognormal of the run times (maximum likelihood: the
// mean and standard deviation of their logs), the commonest job shapes with
// their frequencies, and the number of tenants. Jobs keeps the trace's job
// count; the caller sets Jobs and Seed as it likes.
func Fit(src Source) (Spec, error) {
	meta := src.Meta()
	spec := Spec{Seed: 1, Clock: meta.Clock, Zone: meta.Zone}
	if spec.Zone == "" {
		spec.Zone = "UTC"
	}
	if spec.Clock == "" {
		spec.Clock = ClockRelative
	}
	loc, err := parseZone(spec.Zone)
	if err != nil {
		return Spec{}, err
	}
	var (
		logs        []float64
		hourly      [24]float64
		first, last = NoTime, NoTime
		shapes      = map[string]*Shape{}
		tenants     = map[string]bool{}
		kinds       = map[Kind]int{}
		minD, maxD  = int64(math.MaxInt64), int64(0)
	)
	for {
		j, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Spec{}, fmt.Errorf("fit: %w", err)
		}
		spec.Jobs++
		kinds[j.Kind]++
		if j.Tenant != "" && len(tenants) < maxFitKeys {
			tenants[j.Tenant] = true
		}
		if j.Submit != NoTime {
			if first == NoTime || j.Submit < first {
				first = j.Submit
			}
			last = max(last, j.Submit)
			hourly[time.Unix(j.Submit, 0).In(loc).Hour()]++
		}
		if j.Duration > 0 {
			logs = append(logs, math.Log(float64(j.Duration)))
			minD, maxD = min(minD, j.Duration), max(maxD, j.Duration)
		}
		if len(j.Tasks) == 0 {
			continue
		}
		k := shapeKey(j.Tasks)
		if sh, ok := shapes[k]; ok {
			sh.Weight++
		} else if len(shapes) < maxFitKeys {
			c := j.Clone()
			for i := range c.Tasks {
				if c.Tasks[i].Count < 1 {
					c.Tasks[i].Count = 1
				}
			}
			shapes[k] = &Shape{Weight: 1, Tasks: c.Tasks}
		}
	}
	if spec.Jobs == 0 {
		return Spec{}, errors.New("fit: the trace has no jobs")
	}
	if first == NoTime || last == first {
		return Spec{}, errors.New("fit: the trace has too few submit times to fit an arrival rate")
	}
	spec.Start = first
	spec.Arrival = Arrival{Process: "diurnal", RatePerHour: float64(spec.Jobs) / (float64(last-first) / 3600)}
	mean := 0.0
	for _, h := range hourly {
		mean += h / 24
	}
	for _, h := range hourly {
		spec.Arrival.Hourly = append(spec.Arrival.Hourly, math.Round(h/mean*1000)/1000)
	}
	if len(logs) < 2 {
		return Spec{}, errors.New("fit: the trace has fewer than 2 jobs with a known duration")
	}
	mu, sigma := stat.MeanStdDev(logs, nil)
	spec.Duration = DurationDist{Dist: "lognormal", Mu: round6(mu), Sigma: round6(sigma), Min: max(1, minD), Max: maxD}
	all := make([]*Shape, 0, len(shapes))
	keys := make(map[*Shape]string, len(shapes))
	for k, sh := range shapes {
		all = append(all, sh)
		keys[sh] = k
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].Weight != all[b].Weight {
			return all[a].Weight > all[b].Weight
		}
		return keys[all[a]] < keys[all[b]]
	})
	total := float64(spec.Jobs)
	for _, sh := range all[:min(len(all), maxFitShapes)] {
		spec.Shapes = append(spec.Shapes, Shape{Weight: round6(sh.Weight / total), Tasks: sh.Tasks})
	}
	if len(spec.Shapes) == 0 {
		return Spec{}, errors.New("fit: the trace's jobs have no tasks")
	}
	spec.Tenants = len(tenants)
	best := 0
	for k, n := range kinds {
		if n > best || (n == best && k < spec.Kind) {
			spec.Kind, best = k, n
		}
	}
	return spec, spec.Validate()
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// shapeKey identifies a job's tasks, names and models included.
func shapeKey(ts []Task) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%s/%d/%d/%d/%d/%d/%s;", t.Name, t.Count, t.GPUs, t.GPUMilli, t.CPUMilli, t.MemoryMiB, strings.Join(t.GPUModels, "|"))
	}
	return b.String()
}

// Generator makes the jobs of a Spec, one at a time. It is a Source.
type Generator struct {
	spec    Spec
	rng     *rand.Rand
	zipf    *rand.Zipf
	loc     *time.Location
	cum     []float64 // cumulative shape weights
	peak    float64   // the largest hourly rate, for thinning
	hourly  [24]float64
	t       float64 // the last arrival time
	n       int
	tenants []string
	// Jobs' ids and task lists are cut from blocks made for genBlock jobs
	// at a time (an allocation a block, not two a job); each job's part
	// is its own, capped so that an append reallocates.
	ids   string // the ids of the present block's jobs, back to back
	idsAt int    // where the next id starts in ids
	tasks []Task // tasks[len:cap] is free for the next jobs' task lists
	// hourOf's last answer: hour, over unix times [hourFrom, hourTo)
	hour             int
	hourFrom, hourTo int64
	err              error // sticky: the error that ended the stream
}

// NewGenerator checks spec and returns a generator of its jobs.
func NewGenerator(spec Spec) (*Generator, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	loc, _ := parseZone(spec.Zone)
	g := &Generator{spec: spec, rng: rand.New(rand.NewPCG(spec.Seed, 0x9e3779b97f4a7c15)), loc: loc, t: float64(spec.Start)}
	sum := 0.0
	for _, sh := range spec.Shapes {
		sum += sh.Weight
		g.cum = append(g.cum, sum)
	}
	if spec.Arrival.Process == "diurnal" {
		mean := 0.0
		for _, w := range spec.Arrival.Hourly {
			mean += w / 24
		}
		for h, w := range spec.Arrival.Hourly {
			g.hourly[h] = spec.Arrival.RatePerHour * w / mean
			g.peak = max(g.peak, g.hourly[h])
		}
	}
	if spec.Tenants > 0 {
		g.zipf = rand.NewZipf(g.rng, 1.2, 1, uint64(spec.Tenants-1))
		g.tenants = make([]string, spec.Tenants)
		for i := range g.tenants {
			g.tenants[i] = "tenant-" + strconv.Itoa(i)
		}
	}
	return g, nil
}

// Meta describes the generated trace's clock.
func (g *Generator) Meta() Meta {
	return Meta{Format: "gen", Clock: g.spec.Clock, Zone: g.spec.Zone}
}

// Next returns the next job, or io.EOF after Spec.Jobs of them. Jobs have a
// submit time and a duration but no start or end: they have not run yet.
// The tasks' GPUModels slices are shared with the spec: do not modify them.
//
// If an arrival falls past the last time an int64 holds, Next returns an
// error, then and on every later call.
func (g *Generator) Next() (Job, error) {
	var j Job
	if err := g.next(&j, false); err != nil {
		return Job{}, err
	}
	return j, nil
}

// NextInto writes the next job into *j, the job Next would return, its
// tasks in the room of j.Tasks where there is enough: a caller done with
// each job before it asks for the next (a stream converting the jobs as
// it reads them) hands the same job back and generates with no
// allocation a job. On an error (io.EOF after the last job) *j is left
// as it was.
func (g *Generator) NextInto(j *Job) error { return g.next(j, true) }

// next writes the next job into *j: its tasks in j.Tasks's room (reuse),
// or in a list of their own.
func (g *Generator) next(j *Job, reuse bool) error {
	if g.err != nil {
		return g.err
	}
	if g.n >= g.spec.Jobs {
		return io.EOF
	}
	g.t = g.arrival(g.t)
	if !(g.t < maxClock) {
		g.err = fmt.Errorf("gen: job %d arrives past the last time a trace can hold (%d s): lower jobs or raise arrival.rate_per_hour", g.n+1, int64(math.MaxInt64))
		return g.err
	}
	g.n++
	room := j.Tasks
	*j = Job{
		Submit: int64(g.t), Start: NoTime, End: NoTime, Duration: g.duration(),
		Kind: g.spec.Kind,
	}
	j.ID = g.nextID()
	if g.zipf != nil {
		j.Tenant = g.tenants[g.zipf.Uint64()]
	}
	i := sort.SearchFloat64s(g.cum, g.rng.Float64()*g.cum[len(g.cum)-1])
	i = min(i, len(g.cum)-1)
	if ts := g.spec.Shapes[i].Tasks; reuse && len(ts) > 0 {
		j.Tasks = append(room[:0], ts...)
	} else {
		j.Tasks = g.taskList(ts)
	}
	return nil
}

// genBlock is how many jobs' ids, or task lists of one task, one block
// holds.
const genBlock = 256

// nextID is job g.n's id, "gen-N", cut from the block of ids made with the
// first of its block.
func (g *Generator) nextID() string {
	if g.idsAt == len(g.ids) {
		b := make([]byte, 0, genBlock*(len("gen-")+len(strconv.Itoa(g.n+genBlock))))
		for n := g.n; n < g.n+genBlock && n <= g.spec.Jobs; n++ {
			b = strconv.AppendInt(append(b, "gen-"...), int64(n), 10)
		}
		g.ids, g.idsAt = string(b), 0
	}
	n := len("gen-") + 1
	for d := g.n; d >= 10; d /= 10 {
		n++
	}
	at := g.idsAt
	g.idsAt += n
	return g.ids[at:g.idsAt]
}

// taskList is a copy of ts, cut from the block of task lists.
func (g *Generator) taskList(ts []Task) []Task {
	if len(ts) == 0 {
		return slices.Clone(ts) // nil or empty as the spec has it
	}
	if cap(g.tasks)-len(g.tasks) < len(ts) {
		g.tasks = make([]Task, 0, max(genBlock, len(ts)))
	}
	at := len(g.tasks)
	g.tasks = append(g.tasks, ts...)
	return g.tasks[at:len(g.tasks):len(g.tasks)]
}

// arrival draws the next arrival after t.
func (g *Generator) arrival(t float64) float64 {
	a := g.spec.Arrival
	if a.Process != "diurnal" {
		return t + g.rng.ExpFloat64()/a.RatePerHour*3600
	}
	// Thinning: candidates at the peak rate, each kept with probability
	// rate(hour)/peak.
	for range 1 << 20 {
		t += g.rng.ExpFloat64() / g.peak * 3600
		if g.rng.Float64()*g.peak < g.hourly[g.hourOf(int64(t))] {
			return t
		}
	}
	return t
}

// hourOf is the hour of the day of unix time s in the spec's zone. The
// last answer holds over the rest of its hour of local time, while the
// zone's offset holds: most draws fall in it and need no look-up.
func (g *Generator) hourOf(s int64) int {
	if s >= g.hourFrom && s < g.hourTo {
		return g.hour
	}
	tm := time.Unix(s, 0).In(g.loc)
	g.hour = tm.Hour()
	g.hourFrom = s - int64(tm.Minute()*60+tm.Second())
	g.hourTo = g.hourFrom + 3600
	from, to := tm.ZoneBounds() // zero where the offset holds for ever
	if !from.IsZero() {
		g.hourFrom = max(g.hourFrom, from.Unix())
	}
	if !to.IsZero() {
		g.hourTo = min(g.hourTo, to.Unix())
	}
	return g.hour
}

func (g *Generator) duration() int64 {
	d := g.spec.Duration
	var x float64
	switch d.Dist {
	case "pareto":
		x = d.Xm / math.Pow(1-g.rng.Float64(), 1/d.Alpha)
	default:
		x = math.Exp(d.Mu + d.Sigma*g.rng.NormFloat64())
	}
	if math.IsNaN(x) {
		x = float64(d.Max)
	}
	return min(d.Max, max(d.Min, int64(math.Round(min(x, 1e18)))))
}
