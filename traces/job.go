package traces

import (
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // trace zones (Philly's US Pacific) must resolve on machines without zoneinfo
)

// NoTime marks a time or duration the trace does not know: a job that never
// started, one still running when the trace was taken, or a field the format
// lacks.
const NoTime int64 = -1

// Job is one job of a trace: when it arrived, ran and ended, who sent it, and
// the tasks it asked for. It is plain data shared by every format; the
// canonical format (docs/traces.md) writes exactly these fields.
type Job struct {
	// ID names the job uniquely within its trace.
	ID string `json:"id"`
	// Tenant is the user or team that submitted the job ("" if unknown).
	Tenant string `json:"tenant,omitempty"`
	// Group is the virtual cluster or queue the job ran in ("" if none).
	Group string `json:"group,omitempty"`
	// Submit is the arrival time in seconds on the trace's clock (Meta.Clock).
	Submit int64 `json:"submit"`
	// Start is when the job first ran, or NoTime.
	Start int64 `json:"start"`
	// End is when the job finished, or NoTime.
	End int64 `json:"end"`
	// Duration is how long the job ran, in seconds, or NoTime. Readers set
	// it to End-Start when both are known; a generated job has a Duration
	// and no Start or End, since it has not been scheduled yet.
	Duration int64 `json:"duration"`
	// Priority orders jobs where the source has a number (higher first).
	Priority int `json:"priority,omitempty"`
	// QoS is the source's service class (openb: LS, Burstable, BE, ...).
	QoS string `json:"qos,omitempty"`
	// Kind says whether the job trains or serves, when the source tells.
	Kind Kind `json:"kind,omitempty"`
	// Status is how the job ended, or where it stood at the trace's end.
	Status Status `json:"status,omitempty"`
	// Tasks are the job's groups of identical instances. A job with no
	// tasks is one whose demand the trace does not record.
	Tasks []Task `json:"tasks"`
}

// Task is a group of identical instances of a job: a gang of Count
// workers, or Count replicas of a service. Demands are per instance.
type Task struct {
	// Name is the task's role in the job ("worker", "ps", ...), "" if none.
	Name string `json:"name,omitempty"`
	// Count is the number of instances (at least 1).
	Count int `json:"count"`
	// GPUs is the number of GPUs each instance uses.
	GPUs int `json:"gpus"`
	// GPUMilli is the share of each of those GPUs an instance takes, in
	// thousandths: 1000 is a whole GPU, less is a slice of a shared GPU.
	// It is 0 when GPUs is 0.
	GPUMilli int64 `json:"gpu_milli"`
	// GPUModels lists the GPU models the task may run on; empty means any.
	GPUModels []string `json:"gpu_models,omitempty"`
	// CPUMilli is CPU per instance in thousandths of a core.
	CPUMilli int64 `json:"cpu_milli"`
	// MemoryMiB is memory per instance in MiB.
	MemoryMiB int64 `json:"memory_mib"`
}

// Kind says what a job does, when the source tells.
type Kind string

// The kinds of job. Philly and Helios are training clusters; openb and PAI
// do not say, so their jobs are KindUnknown.
const (
	KindUnknown   Kind = ""          // the source does not say
	KindTraining  Kind = "training"  // a batch job that runs to completion
	KindInference Kind = "inference" // a long-running service
)

// Status is how a job ended, or where it stood when the trace was taken.
type Status string

// The statuses every format maps onto (docs/traces.md has the table).
const (
	StatusUnknown   Status = ""          // the source does not say
	StatusSucceeded Status = "succeeded" // ended normally
	StatusFailed    Status = "failed"    // ended in error (node failures included)
	StatusKilled    Status = "killed"    // cancelled or killed by a user or operator
	StatusTimeout   Status = "timeout"   // stopped at its time limit
	StatusRunning   Status = "running"   // still running when the trace ends
	StatusPending   Status = "pending"   // never started, or waiting when the trace ends
)

var statuses = []Status{StatusUnknown, StatusSucceeded, StatusFailed, StatusKilled, StatusTimeout, StatusRunning, StatusPending}

// ParseStatus reads a canonical status name ("" is StatusUnknown).
func ParseStatus(s string) (Status, bool) {
	st := Status(s)
	return st, slices.Contains(statuses, st)
}

// ParseKind reads a canonical kind name ("" is KindUnknown).
func ParseKind(s string) (Kind, bool) {
	switch k := Kind(s); k {
	case KindUnknown, KindTraining, KindInference:
		return k, true
	}
	return "", false
}

// GPUMilli is the GPU capacity the job holds while it runs, in thousandths
// of a GPU: the sum over tasks of Count × GPUs × GPUMilli.
func (j *Job) GPUMilli() int64 {
	var m int64
	for _, t := range j.Tasks {
		m += int64(t.Count) * int64(t.GPUs) * t.GPUMilli
	}
	return m
}

// GPUs is the number of GPUs the job touches (shared ones count whole).
func (j *Job) GPUs() int {
	n := 0
	for _, t := range j.Tasks {
		n += t.Count * t.GPUs
	}
	return n
}

// Instances is the number of task instances of the job.
func (j *Job) Instances() int {
	n := 0
	for _, t := range j.Tasks {
		n += t.Count
	}
	return n
}

// Clone returns a deep copy of the job, sharing no slices with it.
func (j *Job) Clone() Job {
	c := *j
	c.Tasks = make([]Task, len(j.Tasks))
	for i, t := range j.Tasks {
		t.GPUModels = slices.Clone(t.GPUModels)
		c.Tasks[i] = t
	}
	return c
}

// Validate checks the invariants of the canonical format: an ID, strings no
// longer than MaxFieldBytes, without spaces around them or control
// characters (a CSV reader could not give them back as written), GPU model
// names without "|" and without repeats, known status and kind, times that are NoTime or non-negative, End not before
// Start, and tasks with at least one instance and a GPU share within
// (0, 1000] exactly when they use GPUs. It returns the first broken one.
func (j *Job) Validate() error {
	if j.ID == "" {
		return fmt.Errorf("job has no id")
	}
	for _, tf := range []struct {
		name string
		v    int64
	}{{"submit", j.Submit}, {"start", j.Start}, {"end", j.End}, {"duration", j.Duration}} {
		if tf.v < NoTime {
			return fmt.Errorf("job %s: %s is %d, want a non-negative time or %d for unknown", j.ID, tf.name, tf.v, NoTime)
		}
	}
	if j.Start != NoTime && j.End != NoTime && j.End < j.Start {
		return fmt.Errorf("job %s: end %d is before start %d", j.ID, j.End, j.Start)
	}
	if name, n := j.longestString(); n > MaxFieldBytes {
		return fmt.Errorf("job %s: %s is %d bytes, longer than %d MiB (traces.MaxFieldBytes)", clip(j.ID, 80), name, n, MaxFieldBytes>>20)
	}
	for _, f := range []struct{ name, v string }{{"id", j.ID}, {"tenant", j.Tenant}, {"group", j.Group}, {"qos", j.QoS}} {
		if err := checkText(f.v); err != nil {
			return fmt.Errorf("job %q: %s %w", clip(j.ID, 80), f.name, err)
		}
	}
	if _, ok := ParseStatus(string(j.Status)); !ok {
		return fmt.Errorf("job %s: unknown status %q", j.ID, j.Status)
	}
	if _, ok := ParseKind(string(j.Kind)); !ok {
		return fmt.Errorf("job %s: unknown kind %q", j.ID, j.Kind)
	}
	for i, t := range j.Tasks {
		if err := t.validate(); err != nil {
			return fmt.Errorf("job %s: task %d: %w", j.ID, i, err)
		}
	}
	return nil
}

// longestString names the longest string field of j and its length in
// bytes.
func (j *Job) longestString() (name string, n int) {
	for _, f := range []struct {
		name string
		v    string
	}{{"id", j.ID}, {"tenant", j.Tenant}, {"group", j.Group}, {"qos", j.QoS}} {
		if len(f.v) > n {
			name, n = f.name, len(f.v)
		}
	}
	for i, t := range j.Tasks {
		if len(t.Name) > n {
			name, n = fmt.Sprintf("task %d name", i), len(t.Name)
		}
		for _, m := range t.GPUModels {
			if len(m) > n {
				name, n = fmt.Sprintf("task %d gpu_models", i), len(m)
			}
		}
	}
	return name, n
}

// checkText refuses what canonical CSV cannot carry back as written: a
// reader trims the spaces around a field, and turns a carriage return
// before a line feed into a line break. Control characters have no place
// in names anyway.
func checkText(s string) error {
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%q has spaces around it", clip(s, 40))
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
		return fmt.Errorf("%q has a control character", clip(s, 40))
	}
	return nil
}

func (t *Task) validate() error {
	if err := checkText(t.Name); err != nil {
		return fmt.Errorf("name %w", err)
	}
	for i, m := range t.GPUModels {
		switch err := checkText(m); {
		case err != nil:
			return fmt.Errorf("gpu model %w", err)
		case m == "":
			return fmt.Errorf("gpu model %d is empty, want a name", i)
		case strings.Contains(m, "|"):
			return fmt.Errorf("gpu model %q: want a name without \"|\" (which separates models)", m)
		case slices.Contains(t.GPUModels[:i], m):
			return fmt.Errorf("gpu model %q is listed twice", m)
		}
	}
	switch {
	case t.Count < 1:
		return fmt.Errorf("count is %d, want at least 1", t.Count)
	case t.GPUs < 0:
		return fmt.Errorf("gpus is %d, want 0 or more", t.GPUs)
	case t.GPUs == 0 && t.GPUMilli != 0:
		return fmt.Errorf("gpu_milli is %d on a task with no GPUs, want 0", t.GPUMilli)
	case t.GPUs > 0 && (t.GPUMilli < 1 || t.GPUMilli > 1000):
		return fmt.Errorf("gpu_milli is %d, want 1 to 1000", t.GPUMilli)
	case t.CPUMilli < 0:
		return fmt.Errorf("cpu_milli is %d, want 0 or more", t.CPUMilli)
	case t.MemoryMiB < 0:
		return fmt.Errorf("memory_mib is %d, want 0 or more", t.MemoryMiB)
	}
	return nil
}

// Clock says what a trace's times count from.
type Clock string

// The clocks of trace times.
const (
	// ClockUnix times are seconds since 1970-01-01 UTC.
	ClockUnix Clock = "unix"
	// ClockRelative times are seconds from an origin the trace does not
	// disclose (openb's trace start, PAI's hidden origin).
	ClockRelative Clock = "relative"
)

// Meta describes a trace as a whole: where it came from and how to read its
// times.
type Meta struct {
	// Format is the format the trace was read from.
	Format Format `json:"format"`
	// Clock says what the times count from.
	Clock Clock `json:"clock"`
	// Zone is the time zone in which hours of the day (and, on a Unix
	// clock, weekdays) are read: "UTC", a fixed offset such as "+08:00",
	// or an IANA name such as "America/Los_Angeles".
	Zone string `json:"zone"`
}

// Location resolves Zone to a time.Location (UTC when Zone is empty).
func (m Meta) Location() (*time.Location, error) {
	return parseZone(m.Zone)
}

func parseZone(z string) (*time.Location, error) {
	if z == "" || z == "UTC" {
		return time.UTC, nil
	}
	if (z[0] == '+' || z[0] == '-') && len(z) == 6 && z[3] == ':' {
		t, err := time.Parse("-07:00", z)
		if err == nil {
			_, off := t.Zone()
			return time.FixedZone(z, off), nil
		}
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return nil, fmt.Errorf("zone %q: want UTC, an offset like +08:00 or an IANA zone name: %w", z, err)
	}
	return loc, nil
}
