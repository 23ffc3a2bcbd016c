package api

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds of a job spec beyond the body cap: a job is kept in the
// replicated state and read by every scheduling pass, so its lists stay
// short, and its ID names directories on the nodes that run it.
const (
	maxIDBytes      = 128
	maxListItems    = 64   // models, residency, constraints, values of one
	maxCommandWords = 4096 // task.command
)

// idPattern is what a job ID or name may hold: it becomes a path element
// on agents (their task directories) and a URL path segment, so no
// separators, no dot-only names, no control characters.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// guard checks what the scheduler's own validation does not: names safe as
// path elements and bounded lists.
func (s JobSpec) guard() *SpecError {
	for _, f := range []struct{ field, v string }{{"id", s.ID}, {"name", s.Name}} {
		if f.v == "" {
			continue
		}
		if len(f.v) > maxIDBytes || !idPattern.MatchString(f.v) {
			return &SpecError{Field: f.field, Msg: fmt.Sprintf("want up to %d letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", maxIDBytes, clip(f.v))}
		}
	}
	lists := []struct {
		field  string
		n, max int
	}{
		{"task.models", len(s.Task.Models), maxListItems},
		{"task.residency", len(s.Task.Residency), maxListItems},
		{"task.constraints", len(s.Task.Constraints), maxListItems},
		{"task.command", len(s.Task.Command), maxCommandWords},
	}
	for i, c := range s.Task.Constraints {
		lists = append(lists, struct {
			field  string
			n, max int
		}{fmt.Sprintf("task.constraints[%d].values", i), len(c.Values), maxListItems})
	}
	for _, l := range lists {
		if l.n > l.max {
			return &SpecError{Field: l.field, Msg: fmt.Sprintf("at most %d items, got %d", l.max, l.n)}
		}
	}
	return nil
}

// clip shortens a hostile value for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// typeError finds the field whose value does not decode into its type
// (the YAML library names only the line): each field of the spec is decoded
// on its own, in order, and the first that fails is named.
func typeError(n *yaml.Node, t reflect.Type, path string) *SpecError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	field := strings.TrimPrefix(path, ".")
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fields[name] = f
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := fields[n.Content[i].Value]; ok {
				if e := typeError(n.Content[i+1], f.Type, path+"."+n.Content[i].Value); e != nil {
					return e
				}
			}
		}
		return nil
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if e := typeError(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); e != nil {
				return e
			}
		}
		return nil
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		e := yamlError("", err)
		if e.Line == 0 {
			e.Line = n.Line
		}
		e.Field = field
		return e
	}
	return nil
}

// validateError turns the scheduler's validation error into a SpecError,
// naming the field its message names ("field task.gpus: ...").
func validateError(err error) *SpecError {
	msg := err.Error()
	e := &SpecError{Msg: msg}
	if _, rest, ok := strings.Cut(msg, "field "); ok {
		if f, _, ok := strings.Cut(rest, ":"); ok && !strings.ContainsAny(f, " \t") {
			e.Field = f
		}
	}
	return e
}

// knownTags are the YAML tags a job spec may carry explicitly.
var knownTags = map[string]bool{"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!null": true, "!!map": true, "!!seq": true}

// tagError refuses an explicit tag YAML's core schema does not know
// (!!python/object..., !custom): the decoder would ignore it silently, and
// a spec must mean what it says.
func tagError(n *yaml.Node) *SpecError {
	if n.Style&yaml.TaggedStyle != 0 && !knownTags[n.ShortTag()] {
		return &SpecError{Line: n.Line, Msg: fmt.Sprintf("unknown YAML tag %q", clip(n.Tag))}
	}
	for _, c := range n.Content {
		if e := tagError(c); e != nil {
			return e
		}
	}
	return nil
}
