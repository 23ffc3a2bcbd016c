package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"petite/scheduler"
)

// Version is the version of the encoding this package writes. It reads
// exactly this version; a change to the wire format that old readers could
// misread bumps it.
const Version = 1

// maxDepth bounds the nesting of a decoded document; the deepest command is
// far shallower.
const maxDepth = 32

// Encode writes a command in its wire form: one JSON object whose first
// members are the version and the type, {"v":1,"type":"submit",...},
// followed by the command's fields in their declared order (maps sorted by
// key). The same command always encodes to the same bytes.
func Encode(cmd Command) ([]byte, error) {
	cmd, err := deref(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if p, ok := cmd.(ApplyPlan); ok { // the bulk of the log (encode_plan.go)
		b, err := appendPlan(make([]byte, 0, planSize(&p)), &p)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", cmd.Type(), err)
		}
		return b, nil
	}
	return encodeJSON(cmd)
}

// encodeJSON is Encode through encoding/json's reflection, for any command
// (cmd is not a pointer).
func encodeJSON(cmd Command) ([]byte, error) {
	body, err := marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", cmd.Type(), err)
	}
	var b bytes.Buffer
	b.Grow(len(body) + 32)
	fmt.Fprintf(&b, `{"v":%d,"type":"%s"`, Version, cmd.Type())
	if len(body) > 2 { // more than "{}"
		b.WriteByte(',')
		b.Write(body[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes(), nil
}

// Decode reads a command from its wire form. Decoding is strict: an unknown
// version or type, an unknown or repeated field (names match exactly, case
// included), a value of the wrong type or trailing data is an error that
// names the field.
func Decode(data []byte) (Command, error) {
	if p, ok := decodePlan(data); ok { // a plan in canonical form (decode_plan.go)
		return p, nil
	}
	return decodeStrict(data)
}

// decodeStrict is Decode for any document, canonical or not.
func decodeStrict(data []byte) (Command, error) {
	var head struct {
		V    *int    `json:"v"`
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	switch {
	case head.V == nil:
		return nil, errors.New("decode command: field v: missing")
	case *head.V != Version:
		return nil, fmt.Errorf("decode command: field v: unsupported version %d (this build reads %d)", *head.V, Version)
	case head.Type == nil:
		return nil, errors.New("decode command: field type: missing")
	}
	ptr := newCommand(*head.Type)
	if ptr == nil {
		return nil, fmt.Errorf("decode command: field type: unknown command type %q (known: %s)", *head.Type, strings.Join(commandTypes, ", "))
	}
	cmd := func() Command { return reflect.ValueOf(ptr).Elem().Interface().(Command) }
	err := unmarshalStrict(data, ptr, func() ([]byte, error) { return Encode(cmd()) }, "v", "type")
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", *head.Type, err)
	}
	// A job's counts and amounts are bounded where it enters, before
	// anything downstream is sized by them. Values too small are left to
	// Apply, which refuses them with the rest of Validate.
	if s, ok := ptr.(*Submit); ok && overBounds(&s.Job) {
		if err := s.Job.CheckBounds(); err != nil {
			return nil, fmt.Errorf("decode submit: %w", err)
		}
	}
	return cmd(), nil
}

// overBounds reports whether a job asks more than the scheduler's Max
// limits allow.
func overBounds(j *scheduler.Job) bool {
	t := &j.Task
	return j.Count > scheduler.MaxTasksPerJob || t.GPUs > scheduler.MaxGPUsPerNode || t.GPUMilli > scheduler.MilliPerGPU ||
		t.CPUMilli > scheduler.MaxTaskCPUMilli || t.MemoryMiB > scheduler.MaxTaskMemoryMiB
}

// deref turns a pointer to a command into the command value, so that
// callers may pass either.
func deref(cmd Command) (Command, error) {
	if cmd == nil {
		return nil, errors.New("nil command")
	}
	v := reflect.ValueOf(cmd)
	if v.Kind() != reflect.Pointer {
		return cmd, nil
	}
	if v.IsNil() {
		return nil, fmt.Errorf("nil %s", v.Type())
	}
	return v.Elem().Interface().(Command), nil
}

// marshal encodes a value as compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// unmarshalStrict decodes one JSON document into ptr, strictly: field
// names are checked against ptr's type (see checkFields). encode writes
// what was decoded in this package's canonical form; a document that is
// already canonical, as everything this package writes is, cannot hold an
// unknown, repeated or miscased field, and skips the slower check. extra
// names the envelope's top-level members.
func unmarshalStrict(data []byte, ptr any, encode func() ([]byte, error), extra ...string) error {
	if err := json.Unmarshal(data, ptr); err != nil {
		if ferr := checkFields(data, reflect.TypeOf(ptr), extra...); ferr != nil {
			return ferr // the field error says more
		}
		return err
	}
	if enc, err := encode(); err == nil && bytes.Equal(enc, bytes.TrimSuffix(data, []byte("\n"))) {
		return nil
	}
	return checkFields(data, reflect.TypeOf(ptr), extra...)
}

// checkFields walks a JSON document beside the Go type it decodes into and
// rejects what encoding/json lets through: unknown fields, fields named in
// another case, repeated fields, nesting deeper than maxDepth and trailing
// data. extra names top-level members that the envelope owns. Value types
// are left to encoding/json.
func checkFields(data []byte, t reflect.Type, extra ...string) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := walkValue(d, t, "", 0, extra); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after the document")
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func walkValue(d *json.Decoder, t reflect.Type, path string, depth int, extra []string) error {
	if depth > maxDepth {
		return fmt.Errorf("field %s: nested deeper than %d", path, maxDepth)
	}
	tok, err := d.Token()
	if err != nil {
		return fieldErr(path, err)
	}
	if tok == nil && t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		default: // encoding/json would quietly leave the zero value
			return fmt.Errorf("field %s: want %s, got null", path, t.Kind())
		}
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && reflect.PointerTo(t).Implements(unmarshalerType) {
		t = nil // it reads its own shape
	}
	switch delim {
	case '{':
		seen := map[string]bool{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return fieldErr(path, err)
			}
			key, _ := kt.(string)
			p := key
			if path != "" {
				p = path + "." + key
			}
			if seen[key] {
				return fmt.Errorf("field %s: repeated", p)
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				f, ok := fieldByName(t, key)
				if !ok {
					if depth == 0 && slices.Contains(extra, key) {
						break
					}
					return fmt.Errorf("field %s: unknown", p)
				}
				ft = f
			case t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			if err := walkValue(d, ft, p, depth+1, nil); err != nil {
				return err
			}
		}
	case '[':
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; d.More(); i++ {
			if err := walkValue(d, et, fmt.Sprintf("%s[%d]", path, i), depth+1, nil); err != nil {
				return err
			}
		}
	}
	if _, err := d.Token(); err != nil { // the closing delimiter
		return fieldErr(path, err)
	}
	return nil
}

func fieldErr(path string, err error) error {
	if path == "" {
		return err
	}
	return fmt.Errorf("field %s: %w", path, err)
}

// fieldByName finds the type of the struct field that encoding/json writes
// under name, matching exactly.
func fieldByName(t reflect.Type, name string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}
