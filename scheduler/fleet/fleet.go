// Package fleet reads a fleet description (pools of nodes, as planners and
// admins write it in YAML) into the scheduler's model, and ships the demo
// fleet petite runs on when nothing else is given.
package fleet

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"petite/scheduler"
)

//go:embed demo.yaml
var demo []byte

// Demo returns the embedded demo fleet's YAML.
func Demo() []byte { return bytes.Clone(demo) }

// Spec is a fleet file: its pools, each with groups of identical nodes.
type Spec struct {
	Pools []PoolSpec `yaml:"pools"`
}

// PoolSpec is one pool and its node groups.
type PoolSpec struct {
	Name              string            `yaml:"name"`
	Kind              string            `yaml:"kind"`
	Region            string            `yaml:"region"`
	Zone              string            `yaml:"zone"`
	Labels            map[string]string `yaml:"labels"`
	PricePerGPUHour   float64           `yaml:"price_per_gpu_hour"`
	Pricing           string            `yaml:"pricing"`
	MaxNodes          int               `yaml:"max_nodes"`
	ProvisionDelaySec int64             `yaml:"provision_delay_sec"`
	// RetireAt is a date (2027-03-31) or RFC 3339 time.
	RetireAt string      `yaml:"retire_at"`
	Nodes    []GroupSpec `yaml:"nodes"`
}

// GroupSpec is Count identical nodes, named Prefix-0001, ...
type GroupSpec struct {
	Count     int               `yaml:"count"`
	Prefix    string            `yaml:"prefix"`
	RackSize  int               `yaml:"rack_size"`
	CPUMilli  int64             `yaml:"cpu_milli"`
	MemoryMiB int64             `yaml:"memory_mib"`
	GPUs      GPUSpec           `yaml:"gpus"`
	Labels    map[string]string `yaml:"labels"`
}

// GPUSpec describes the GPUs of each node of a group.
type GPUSpec struct {
	Count     int    `yaml:"count"`
	Model     string `yaml:"model"`
	MemoryMiB int64  `yaml:"memory_mib"`
	// Islands splits the GPUs into this many NVLink islands of equal size.
	Islands int `yaml:"islands"`
	// MIG, when set, partitions each GPU into these instance profiles.
	MIG []string `yaml:"mig"`
}

// Load reads a fleet file; an empty path reads the demo fleet.
func Load(path string) ([]scheduler.Pool, []scheduler.Node, error) {
	if path == "" {
		return Parse(bytes.NewReader(demo), "demo.yaml")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a fleet description. Errors name the file, line and field.
func Parse(r io.Reader, name string) ([]scheduler.Pool, []scheduler.Node, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, nil, fmt.Errorf("%s: longer than %d MiB (fleet.MaxFileBytes): a fleet file lists node groups, not nodes one by one", name, MaxFileBytes>>20)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var spec Spec
	if err := dec.Decode(&spec); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s: empty fleet file", name)
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, e := range te.Errors {
				msgs[i] = fieldOfTypeError(&root, e)
			}
			return nil, nil, fmt.Errorf("%s:%s", name, strings.Join(msgs, "; "))
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return spec.build(name, &root)
}

// MaxFileBytes bounds a fleet file, so a hostile or mistaken input (one
// huge scalar, a generated list of millions of nodes) cannot take the
// loader's memory: fleets describe nodes in groups with a count.
const MaxFileBytes = 16 << 20

// typeErrValue matches the offending value that yaml quotes in backticks,
// typeErrTag the kind of YAML node it was, typeErrLine the "line N: " that
// yaml's errors start with, and unknownField its unknown-field error.
var (
	typeErrValue = regexp.MustCompile("`([^`]*)`")
	typeErrTag   = regexp.MustCompile(`unmarshal !!(\w+)`)
	typeErrLine  = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`^field \S+ not found in type \S+$`)
)

// fieldOfTypeError rewrites one of yaml's decoding errors ("line 5: cannot
// unmarshal ...") as "5: field pools[0].nodes[1].cpu_milli: cannot
// unmarshal ...", naming the field whose value is on that line.
func fieldOfTypeError(root *yaml.Node, msg string) string {
	m := typeErrLine.FindStringSubmatch(msg)
	if m == nil {
		return " " + msg
	}
	line, _ := strconv.Atoi(m[1])
	text := m[2]
	// The value and its kind are in the message; they tell apart the
	// fields of a flow mapping ({count: 2, cpu_milli: lots}) on one line.
	want, kind := "", yaml.ScalarNode
	if v := typeErrValue.FindStringSubmatch(text); v != nil {
		want = v[1]
	}
	if t := typeErrTag.FindStringSubmatch(text); t != nil {
		switch t[1] {
		case "seq":
			kind = yaml.SequenceNode
		case "map":
			kind = yaml.MappingNode
		}
	}
	if unknownField.MatchString(text) {
		text = "unknown field"
		kind = 0 // the unknown key's value, whatever it is
	}
	if path := pathAtLine(root, line, kind, want); path != "" {
		return fmt.Sprintf("%d: field %s: %s", line, path, text)
	}
	return fmt.Sprintf("%d: %s", line, text)
}

// pathAtLine returns the path (pools[0].nodes[1].cpu_milli) of the deepest
// value that starts on a line and is of the kind (any kind when 0) and,
// when want is not empty, is the scalar want; "" when none is.
func pathAtLine(root *yaml.Node, line int, kind yaml.Kind, want string) string {
	best, bestDepth := "", -1
	var walk func(n *yaml.Node, path string, depth int)
	visit := func(v *yaml.Node, path string, depth int) {
		if v.Line == line && (kind == 0 || v.Kind == kind) &&
			(want == "" || v.Kind == yaml.ScalarNode && v.Value == want) && depth > bestDepth {
			best, bestDepth = path, depth
		}
		walk(v, path, depth)
	}
	walk = func(n *yaml.Node, path string, depth int) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth)
			}
		case yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				p := n.Content[k].Value
				if path != "" {
					p = path + "." + p
				}
				visit(n.Content[k+1], p, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				visit(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		}
	}
	walk(root, "", 0)
	return best
}

// lineOf finds the line of pools[i] (and of nodes[j] within it when j >= 0).
func lineOf(root *yaml.Node, i, j int) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	get := func(m *yaml.Node, key string) *yaml.Node {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		for k := 0; k+1 < len(m.Content); k += 2 {
			if m.Content[k].Value == key {
				return m.Content[k+1]
			}
		}
		return nil
	}
	idx := func(s *yaml.Node, k int) *yaml.Node {
		if s == nil || s.Kind != yaml.SequenceNode || k >= len(s.Content) {
			return nil
		}
		return s.Content[k]
	}
	p := idx(get(n, "pools"), i)
	if p == nil {
		return 0
	}
	if j < 0 {
		return p.Line
	}
	if g := idx(get(p, "nodes"), j); g != nil {
		return g.Line
	}
	return p.Line
}

// lineAt finds the line of the YAML value at a path of mapping keys
// (strings) and sequence indices (ints); 0 when the path is not there.
func lineAt(root *yaml.Node, path ...any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
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
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return n.Line
}

// migSlices is how many compute slices a GPU has for MIG instances.
const migSlices = 7

// checkMIG checks that a MIG layout fits one GPU as NVIDIA's profile
// tables allow: every profile NgX.Mgb names N compute slices of seven and
// M GB of memory; together they hold at most seven slices, and no more
// memory than the GPU (when gpus.memory_mib gives it). k is the profile at
// fault, or -1 when the layout as a whole is.
func checkMIG(g *GPUSpec) (k int, err error) {
	if len(g.MIG) == 0 {
		return -1, nil
	}
	slices, gb := 0, 0
	for i, prof := range g.MIG {
		var n, m int
		if _, err := fmt.Sscanf(prof, "%dg.%dgb", &n, &m); err != nil || n < 1 || n > migSlices || m < 1 {
			return i, fmt.Errorf("field gpus.mig[%d]: MIG profile %q: want NgX.Mgb with N in 1..%d, e.g. 3g.40gb", i, prof, migSlices)
		}
		slices += n
		gb += m
	}
	if slices > migSlices {
		return -1, fmt.Errorf("field gpus.mig: %d compute slices %v; a GPU has %d", slices, g.MIG, migSlices)
	}
	// Profiles name memory in rounded GB: compare with the GPU's GiB,
	// rounded up (an 80 GB part has a little less than 80 GiB).
	if g.MemoryMiB > 0 {
		if have := (g.MemoryMiB + 1023) / 1024; int64(gb) > have {
			return -1, fmt.Errorf("field gpus.mig: %d GB of instance memory, the GPU has %d GB", gb, have)
		}
	}
	return -1, nil
}

func (s *Spec) build(name string, root *yaml.Node) ([]scheduler.Pool, []scheduler.Node, error) {
	var pools []scheduler.Pool
	var nodes []scheduler.Node
	if len(s.Pools) == 0 {
		return nil, nil, fmt.Errorf("%s: field pools: want at least one pool", name)
	}
	for i, ps := range s.Pools {
		at := fmt.Sprintf("%s:%d: pools[%d]", name, lineOf(root, i, -1), i)
		kind, err := scheduler.ParsePoolKind(ps.Kind)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: field kind: %w", at, err)
		}
		p := scheduler.Pool{
			Name: ps.Name, Kind: kind, Region: ps.Region, Zone: ps.Zone, Labels: ps.Labels,
			PricePerGPUHour: ps.PricePerGPUHour, MaxNodes: ps.MaxNodes, ProvisionDelaySec: ps.ProvisionDelaySec,
		}
		switch strings.ToLower(ps.Pricing) {
		case "", "on-demand", "ondemand":
			p.Pricing = scheduler.OnDemand
		case "reserved":
			p.Pricing = scheduler.Reserved
		case "spot":
			p.Pricing = scheduler.Spot
		default:
			return nil, nil, fmt.Errorf("%s: field pricing: want on-demand, reserved or spot, got %q", at, ps.Pricing)
		}
		if ps.Name == "" {
			return nil, nil, fmt.Errorf("%s: field name: want a pool name", at)
		}
		if math.IsNaN(ps.PricePerGPUHour) || math.IsInf(ps.PricePerGPUHour, 0) || ps.PricePerGPUHour < 0 {
			return nil, nil, fmt.Errorf("%s: field price_per_gpu_hour: want a finite number >= 0, got %g", at, ps.PricePerGPUHour)
		}
		if kind.Owned() && ps.PricePerGPUHour != 0 {
			return nil, nil, fmt.Errorf("%s: field price_per_gpu_hour: an %s pool is already paid for; leave it out", at, kind)
		}
		if ps.RetireAt != "" {
			if kind != scheduler.PoolOnPrem {
				return nil, nil, fmt.Errorf("%s: field retire_at: only onprem pools retire", at)
			}
			t, err := parseTime(ps.RetireAt)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: field retire_at: %w", at, err)
			}
			p.RetireAt = t
		}
		pools = append(pools, p)
		for j, g := range ps.Nodes {
			at := fmt.Sprintf("%s:%d: pools[%d].nodes[%d]", name, lineOf(root, i, j), i, j)
			if k, err := checkMIG(&g.GPUs); err != nil {
				// Name the line of the layout, or of the profile at fault.
				path := []any{"pools", i, "nodes", j, "gpus", "mig"}
				if k >= 0 {
					path = append(path, k)
				}
				line := lineAt(root, path...)
				if line == 0 {
					line = lineOf(root, i, j)
				}
				return nil, nil, fmt.Errorf("%s:%d: pools[%d].nodes[%d]: %w", name, line, i, j, err)
			}
			group, err := g.expand(ps.Name)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", at, err)
			}
			nodes = append(nodes, group...)
		}
	}
	// Let the cluster check what a file cannot show alone (duplicates).
	if _, err := scheduler.NewCluster(pools, nodes); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return pools, nodes, nil
}

func parseTime(s string) (int64, error) {
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("want a date like 2027-03-31 or an RFC 3339 time, got %q", s)
}

// maxGroup bounds one group, so a typo cannot ask for a billion nodes.
const maxGroup = 100000

func (g *GroupSpec) expand(pool string) ([]scheduler.Node, error) {
	switch {
	case g.Count < 1 || g.Count > maxGroup:
		return nil, fmt.Errorf("field count: want 1..%d, got %d", maxGroup, g.Count)
	case g.CPUMilli <= 0:
		return nil, fmt.Errorf("field cpu_milli: want > 0, got %d", g.CPUMilli)
	case g.MemoryMiB <= 0:
		return nil, fmt.Errorf("field memory_mib: want > 0, got %d", g.MemoryMiB)
	case g.GPUs.Count < 0 || g.GPUs.Count > 16:
		return nil, fmt.Errorf("field gpus.count: want 0..16, got %d", g.GPUs.Count)
	case g.GPUs.Count > 0 && g.GPUs.Model == "":
		return nil, fmt.Errorf("field gpus.model: want a model for %d GPUs", g.GPUs.Count)
	case g.GPUs.Islands < 0 || (g.GPUs.Islands > 0 && g.GPUs.Count%g.GPUs.Islands != 0):
		return nil, fmt.Errorf("field gpus.islands: want a divisor of gpus.count (%d), got %d", g.GPUs.Count, g.GPUs.Islands)
	case g.RackSize < 0:
		return nil, fmt.Errorf("field rack_size: want >= 0, got %d", g.RackSize)
	}
	prefix := g.Prefix
	if prefix == "" {
		prefix = pool
	}
	per := g.GPUs.Count
	if g.GPUs.Islands > 0 {
		per = g.GPUs.Count / g.GPUs.Islands
	}
	var gpus []scheduler.GPU
	for i := 0; i < g.GPUs.Count; i++ {
		island := 0
		if per > 0 {
			island = i / per
		}
		if len(g.GPUs.MIG) == 0 {
			gpus = append(gpus, scheduler.GPU{Model: g.GPUs.Model, MemoryMiB: g.GPUs.MemoryMiB, Island: island})
			continue
		}
		for _, prof := range g.GPUs.MIG {
			gpus = append(gpus, scheduler.GPU{Model: g.GPUs.Model, Island: island, MIG: prof})
		}
	}
	if len(gpus) > scheduler.MaxGPUsPerNode {
		return nil, fmt.Errorf("field gpus.mig: %d devices per node, at most %d", len(gpus), scheduler.MaxGPUsPerNode)
	}
	out := make([]scheduler.Node, g.Count)
	for k := range out {
		n := scheduler.Node{
			Name: fmt.Sprintf("%s-%04d", prefix, k), Pool: pool, CPUMilli: g.CPUMilli,
			MemoryMiB: g.MemoryMiB, GPUs: gpus, Labels: g.Labels,
		}
		if g.RackSize > 0 {
			n.Rack = fmt.Sprintf("%s-rack%02d", prefix, k/g.RackSize)
		}
		out[k] = n
	}
	return out, nil
}
