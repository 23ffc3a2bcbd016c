package scenario

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lineOf is the line of the value at a path of mapping keys (strings) and
// sequence indices (ints); where the path stops early (a field left out),
// the line of the deepest part that is there, at least 1.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := max(n.Line, 1)
	for _, step := range path {
		var next *yaml.Node
		switch k := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

// pathString writes a path as actions[2].at.
func pathString(path []any) string {
	var b strings.Builder
	for _, step := range path {
		switch k := step.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

var (
	errLine  = regexp.MustCompile(`^line (\d+): (.*)$`)
	errValue = regexp.MustCompile("`([^`]*)`")
	errField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// describeTypeError rewrites one of yaml's decoding errors ("line 5:
// cannot unmarshal !!str `x` into int") as " 5: field actions[1].fraction:
// cannot ...": the field is the deepest value on that line that matches
// the quoted value (or the unknown key).
func describeTypeError(root *yaml.Node, msg string) string {
	m := errLine.FindStringSubmatch(msg)
	if m == nil {
		return " " + msg
	}
	line, _ := strconv.Atoi(m[1])
	text := m[2]
	want, key := "", false
	if f := errField.FindStringSubmatch(text); f != nil {
		want, key, text = f[1], true, "unknown field"
	} else if v := errValue.FindStringSubmatch(text); v != nil {
		want = v[1]
	}
	best, depth := "", -1
	var walk func(n *yaml.Node, path []any)
	walk = func(n *yaml.Node, path []any) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := append(append([]any(nil), path...), k.Value)
				hit := k
				if !key {
					hit = v
				}
				if hit.Line == line && len(p) > depth && (want == "" || hit.Kind != yaml.ScalarNode || hit.Value == want) {
					best, depth = pathString(p), len(p)
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := append(append([]any(nil), path...), i)
				if !key && c.Line == line && len(p) > depth && (want == "" || c.Kind != yaml.ScalarNode || c.Value == want) {
					best, depth = pathString(p), len(p)
				}
				walk(c, p)
			}
		}
	}
	walk(root, nil)
	if best == "" {
		return fmt.Sprintf("%d: %s", line, text)
	}
	return fmt.Sprintf("%d: field %s: %s", line, best, text)
}
