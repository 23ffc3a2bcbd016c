package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"petite/scheduler"
)

// JobSpec is a job as users write it, in YAML or JSON. Unknown fields are
// refused; errors name the file, line and field.
type JobSpec struct {
	// ID names the job; when empty the server makes one from Name.
	ID string `yaml:"id" json:"id,omitempty"`
	// Name is a human name; the ID's prefix when no ID is given.
	Name string `yaml:"name" json:"name,omitempty"`
	// Kind is training (a gang, all or nothing) or inference (replicas).
	Kind     string `yaml:"kind" json:"kind,omitempty"`
	Tenant   string `yaml:"tenant" json:"tenant,omitempty"`
	Priority int32  `yaml:"priority" json:"priority,omitempty"`
	// Count is the gang size or the number of replicas (default 1).
	Count          int    `yaml:"count" json:"count,omitempty"`
	Checkpointable bool   `yaml:"checkpointable" json:"checkpointable,omitempty"`
	Preemptible    bool   `yaml:"preemptible" json:"preemptible,omitempty"`
	MinReplicas    int    `yaml:"min_replicas" json:"min_replicas,omitempty"`
	SpreadLabel    string `yaml:"spread_label" json:"spread_label,omitempty"`
	// Walltime is the expected run time ("90m", "2h"), used by backfill.
	Walltime string   `yaml:"walltime" json:"walltime,omitempty"`
	Task     TaskSpec `yaml:"task" json:"task"`
}

// TaskSpec is what each task of a job asks for and runs.
type TaskSpec struct {
	// GPUs is the number of GPU devices (0 for a CPU-only task).
	GPUs int `yaml:"gpus" json:"gpus,omitempty"`
	// GPUMilli is the share of each GPU, 1..1000 (default 1000, whole
	// GPUs); below 1000 the task takes a fraction of one GPU.
	GPUMilli    int          `yaml:"gpu_milli" json:"gpu_milli,omitempty"`
	Models      []string     `yaml:"models" json:"models,omitempty"`
	CPUMilli    int64        `yaml:"cpu_milli" json:"cpu_milli,omitempty"`
	MemoryMiB   int64        `yaml:"memory_mib" json:"memory_mib,omitempty"`
	Constraints []Constraint `yaml:"constraints" json:"constraints,omitempty"`
	Residency   []string     `yaml:"residency" json:"residency,omitempty"`
	// Command is what the node agent runs for each task, argv form.
	Command []string `yaml:"command" json:"command,omitempty"`
}

// Constraint restricts tasks to nodes whose labels match: op is in,
// not-in or exists.
type Constraint struct {
	Key    string   `yaml:"key" json:"key"`
	Op     string   `yaml:"op" json:"op,omitempty"`
	Values []string `yaml:"values" json:"values,omitempty"`
}

// SpecError is a job spec error: the file, the line (0 when unknown) and
// the field, dotted from the top (task.gpus).
type SpecError struct {
	File  string `json:"file,omitempty"`
	Line  int    `json:"line,omitempty"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"message"`
}

func (e *SpecError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// MaxSpecBytes caps a job spec, on the wire and on disk.
const MaxSpecBytes = 1 << 20

// ParseJobSpec reads one job spec in YAML or JSON (a JSON document is
// YAML). Unknown and repeated fields, values of the wrong type and more
// than one document are refused with the file, line and field named.
func ParseJobSpec(r io.Reader, file string) (JobSpec, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return JobSpec{}, &SpecError{File: file, Msg: fmt.Sprintf("read: %v", err)}
	}
	if len(data) > MaxSpecBytes {
		return JobSpec{}, &SpecError{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxSpecBytes)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return JobSpec{}, &SpecError{File: file, Msg: "empty job spec"}
		}
		return JobSpec{}, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return JobSpec{}, yamlError(file, err)
		}
		return JobSpec{}, &SpecError{File: file, Line: line, Msg: "more than one document: one job per spec"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if err := checkFields(root, reflect.TypeFor[JobSpec](), ""); err != nil {
		err.File = file
		return JobSpec{}, err
	}
	if err := tagError(root); err != nil { // specguard.go
		err.File = file
		return JobSpec{}, err
	}
	var spec JobSpec
	if err := root.Decode(&spec); err != nil {
		if e := typeError(root, reflect.TypeFor[JobSpec](), ""); e != nil { // specguard.go: name the field
			e.File = file
			return JobSpec{}, e
		}
		return JobSpec{}, yamlError(file, err)
	}
	return spec, nil
}

// yamlError turns the YAML library's error into a SpecError with its line.
func yamlError(file string, err error) *SpecError {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &SpecError{File: file, Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		var n int
		if _, err := fmt.Sscanf(rest, "%d:", &n); err == nil {
			e.Line = n
			e.Msg = strings.TrimSpace(rest[strings.Index(rest, ":")+1:])
		}
	}
	return e
}

// checkFields walks a YAML mapping against a struct's yaml tags, so that
// an unknown or repeated field is named with its full path and line.
func checkFields(n *yaml.Node, t reflect.Type, path string) *SpecError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return &SpecError{Line: n.Line, Field: strings.TrimPrefix(path, "."), Msg: fmt.Sprintf("want a mapping, got %s", kindName(n))}
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fields[name] = f
			names = append(names, name)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			field := strings.TrimPrefix(path+"."+k.Value, ".")
			f, ok := fields[k.Value]
			if !ok {
				msg := "unknown field (known: " + strings.Join(names, ", ") + ")"
				if s := closest(k.Value, names); s != "" {
					msg = fmt.Sprintf("unknown field; did you mean %q?", s)
				}
				return &SpecError{Line: k.Line, Field: field, Msg: msg}
			}
			if seen[k.Value] {
				return &SpecError{Line: k.Line, Field: field, Msg: "repeated field"}
			}
			seen[k.Value] = true
			if err := checkFields(v, f.Type, path+"."+k.Value); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			return nil // the decoder names the type error
		}
		for i, c := range n.Content {
			if err := checkFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

// closest returns the known name one or two edits from s, if any.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Job turns the spec into the scheduler's job, filling defaults (kind
// training, count 1, whole GPUs) and checking what no placement could
// honour. The ID is left as given (the server names jobs without one).
func (s JobSpec) Job() (scheduler.Job, error) {
	if err := s.guard(); err != nil { // specguard.go: safe names, bounded lists
		return scheduler.Job{}, err
	}
	kind := s.Kind
	if kind == "" {
		kind = "training"
	}
	k, err := scheduler.ParseJobKind(kind)
	if err != nil {
		return scheduler.Job{}, &SpecError{Field: "kind", Msg: fmt.Sprintf("want training or inference, got %q", s.Kind)}
	}
	count := s.Count
	if count == 0 {
		count = 1
	}
	milli := s.Task.GPUMilli
	if milli == 0 && s.Task.GPUs > 0 {
		milli = scheduler.MilliPerGPU
	}
	var walltime int64
	if s.Walltime != "" {
		d, err := time.ParseDuration(s.Walltime)
		if err != nil || d <= 0 {
			return scheduler.Job{}, &SpecError{Field: "walltime", Msg: fmt.Sprintf("want a positive duration such as 90m or 2h, got %q", s.Walltime)}
		}
		walltime = int64(d.Round(time.Second) / time.Second)
	}
	if len(s.Task.Command) > 0 && s.Task.Command[0] == "" {
		return scheduler.Job{}, &SpecError{Field: "task.command", Msg: "the program (first word) is empty"}
	}
	job := scheduler.Job{
		ID: s.ID, Kind: k, Tenant: s.Tenant, Priority: s.Priority, Count: count,
		Checkpointable: s.Checkpointable, Preemptible: s.Preemptible,
		MinReplicas: s.MinReplicas, SpreadLabel: s.SpreadLabel, Walltime: walltime,
		Task: scheduler.Task{
			GPUs: s.Task.GPUs, GPUMilli: milli, Models: slices.Clone(s.Task.Models),
			CPUMilli: s.Task.CPUMilli, MemoryMiB: s.Task.MemoryMiB,
			Residency: slices.Clone(s.Task.Residency),
		},
	}
	for i, c := range s.Task.Constraints {
		op := scheduler.OpIn
		if c.Op != "" {
			if op, err = scheduler.ParseOp(c.Op); err != nil {
				return scheduler.Job{}, &SpecError{Field: fmt.Sprintf("task.constraints[%d].op", i), Msg: fmt.Sprintf("want in, not-in or exists, got %q", c.Op)}
			}
		}
		job.Task.Constraints = append(job.Task.Constraints, scheduler.Constraint{Key: c.Key, Op: op, Values: slices.Clone(c.Values)})
	}
	check := job
	if check.ID == "" {
		check.ID = "unnamed" // Validate wants an ID; the server gives one
	}
	if err := check.Validate(); err != nil {
		return scheduler.Job{}, validateError(err) // specguard.go: with its field
	}
	return job, nil
}
