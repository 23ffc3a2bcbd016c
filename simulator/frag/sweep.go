package frag

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Matrix is the set of runs of a sweep: every workload under every policy
// with every seed, with the same arrival options.
type Matrix struct {
	// Workloads, Policies and Seeds are the three axes, in table order.
	Workloads []string `json:"workloads"`
	Policies  []string `json:"policies"`
	Seeds     []uint64 `json:"seeds"`
	// Inflate and NoShuffle are the arrival options of every run (Config).
	Inflate   float64 `json:"inflate"`
	NoShuffle bool    `json:"no_shuffle,omitempty"`
}

// Job is one run of a matrix, by position.
type Job struct {
	// Workload and Policy index the matrix's lists.
	Workload, Policy int
	// Seed is the run's seed.
	Seed uint64
}

// Jobs lists the runs of the matrix in canonical order: by workload, then
// policy, then seed.
func (m *Matrix) Jobs() []Job {
	jobs := make([]Job, 0, len(m.Workloads)*len(m.Policies)*len(m.Seeds))
	for w := range m.Workloads {
		for p := range m.Policies {
			for _, s := range m.Seeds {
				jobs = append(jobs, Job{w, p, s})
			}
		}
	}
	return jobs
}

// equal reports whether two matrices name the same runs.
func (m *Matrix) equal(o *Matrix) bool {
	return slices.Equal(m.Workloads, o.Workloads) && slices.Equal(m.Policies, o.Policies) &&
		slices.Equal(m.Seeds, o.Seeds) && m.Inflate == o.Inflate && m.NoShuffle == o.NoShuffle
}

// Shard is one part of a sweep split over machines: the runs whose
// canonical position k has k mod Count = Index. Round robin spreads the
// dear policies evenly.
type Shard struct {
	// Index is this shard, 0 <= Index < Count.
	Index int `json:"index"`
	// Count is the number of shards the matrix is split into.
	Count int `json:"count"`
}

// Whole is the shard that holds every run.
var Whole = Shard{Index: 0, Count: 1}

// ParseShard reads "i/n" with 0 <= i < n, the form of a Kubernetes Indexed
// Job's completion index or a Slurm array task id over n tasks.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want i/n, e.g. 0/4", s)
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with whole numbers 0 <= i < n", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// String writes the shard as i/n.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Select keeps the jobs of the shard.
func (s Shard) Select(jobs []Job) []Job {
	if s.Count <= 1 {
		return jobs
	}
	var out []Job
	for k, j := range jobs {
		if k%s.Count == s.Index {
			out = append(out, j)
		}
	}
	return out
}

// Record is the result of one run of a sweep, with its workload.
type Record struct {
	// Workload names the pod list the run placed.
	Workload string `json:"workload"`
	Result
}

// Sweep runs a matrix of experiments.
type Sweep struct {
	// Fleet is the cluster every run starts from.
	Fleet *Fleet
	// Workloads are the loaded workloads, named as in the matrix.
	Workloads []*Workload
	// Matrix names the runs.
	Matrix Matrix
	// Shard selects part of the matrix; the zero value runs all of it.
	Shard Shard
	// Parallel is how many runs go at once (at least one).
	Parallel int
	// Progress, when set, is called after each run with the number done
	// and the total; calls are serialised.
	Progress func(done, total int)
}

// Run executes the sweep's runs and returns their records in canonical
// order, whatever the parallelism.
func (s *Sweep) Run(ctx context.Context) ([]Record, error) {
	if err := CheckInflate(s.Matrix.Inflate); err != nil {
		return nil, fmt.Errorf("sweep: inflate: %w", err)
	}
	if len(s.Workloads) != len(s.Matrix.Workloads) {
		return nil, fmt.Errorf("sweep: %d workloads loaded for a matrix of %d", len(s.Workloads), len(s.Matrix.Workloads))
	}
	for i, w := range s.Workloads {
		if w.Name != s.Matrix.Workloads[i] {
			return nil, fmt.Errorf("sweep: workload %d is %q, the matrix says %q", i, w.Name, s.Matrix.Workloads[i])
		}
	}
	jobs := s.Shard.Select(s.Matrix.Jobs())
	out := make([]Record, len(jobs))
	errs := make([]error, len(jobs))
	par := max(s.Parallel, 1)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(par, max(len(jobs), 1)) {
		wg.Go(func() {
			for k := range next {
				j := jobs[k]
				w := s.Workloads[j.Workload]
				r, err := Run(s.Fleet, w, Config{
					Policy: s.Matrix.Policies[j.Policy], Seed: j.Seed,
					Inflate: s.Matrix.Inflate, NoShuffle: s.Matrix.NoShuffle,
				})
				if err != nil {
					errs[k] = fmt.Errorf("run %s/%s/seed %d: %w", w.Name, s.Matrix.Policies[j.Policy], j.Seed, err)
					cancel()
					continue
				}
				out[k] = Record{Workload: w.Name, Result: *r}
				mu.Lock()
				done++
				if s.Progress != nil {
					s.Progress(done, len(jobs))
				}
				mu.Unlock()
			}
		})
	}
feed:
	for k := range jobs {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil && done < len(jobs) {
		return nil, fmt.Errorf("sweep: %w", context.Cause(ctx))
	}
	return out, nil
}

// Part is the output of one shard: enough to merge it with the others into
// the table a single run would give.
type Part struct {
	// Format names the file kind and version.
	Format string `json:"format"`
	// Matrix is the whole sweep the shard belongs to.
	Matrix Matrix `json:"matrix"`
	// Shard says which part of it this is.
	Shard Shard `json:"shard"`
	// Nodes and GPUs size the fleet, a check that the shards agree.
	Nodes int `json:"nodes"`
	GPUs  int `json:"gpus"`
	// Runs are the shard's runs in canonical order.
	Runs []Record `json:"runs"`
}

// PartFormat is the Format of a part file.
const PartFormat = "petite-frag-part/1"

// Merge joins the parts of one sweep into the records of the whole matrix,
// in canonical order. Every shard must be there exactly once, from the same
// matrix and fleet. A single unsharded part merges to itself.
func Merge(parts []*Part) (Matrix, []Record, error) {
	if len(parts) == 0 {
		return Matrix{}, nil, fmt.Errorf("merge: no parts")
	}
	first := parts[0]
	n := first.Shard.Count
	seen := make([]bool, max(n, 1))
	for i, p := range parts {
		switch {
		case p.Format != PartFormat:
			return Matrix{}, nil, fmt.Errorf("merge: part %d: format %q, want %q", i, p.Format, PartFormat)
		case !p.Matrix.equal(&first.Matrix):
			return Matrix{}, nil, fmt.Errorf("merge: part %d (shard %s) is from another matrix than part 0", i, p.Shard)
		case p.Shard.Count != n || p.Shard.Index < 0 || p.Shard.Index >= n:
			return Matrix{}, nil, fmt.Errorf("merge: part %d: shard %s does not belong to a split in %d", i, p.Shard, n)
		case seen[p.Shard.Index]:
			return Matrix{}, nil, fmt.Errorf("merge: part %d: shard %s given twice", i, p.Shard)
		case p.Nodes != first.Nodes || p.GPUs != first.GPUs:
			return Matrix{}, nil, fmt.Errorf("merge: part %d: fleet of %d nodes/%d GPUs, part 0 has %d/%d", i, p.Nodes, p.GPUs, first.Nodes, first.GPUs)
		}
		seen[p.Shard.Index] = true
	}
	for i, ok := range seen {
		if !ok {
			return Matrix{}, nil, fmt.Errorf("merge: shard %d/%d missing", i, n)
		}
	}
	m := first.Matrix
	pos := map[runKey]int{}
	for k, j := range m.Jobs() {
		pos[runKey{m.Workloads[j.Workload], m.Policies[j.Policy], j.Seed}] = k
	}
	out := make([]Record, len(pos))
	filled := make([]bool, len(pos))
	for _, p := range parts {
		for _, r := range p.Runs {
			k, ok := pos[runKey{r.Workload, r.Policy, r.Seed}]
			if !ok {
				return Matrix{}, nil, fmt.Errorf("merge: shard %s: run %s/%s/seed %d is not in the matrix", p.Shard, r.Workload, r.Policy, r.Seed)
			}
			if filled[k] {
				return Matrix{}, nil, fmt.Errorf("merge: shard %s: run %s/%s/seed %d given twice", p.Shard, r.Workload, r.Policy, r.Seed)
			}
			out[k], filled[k] = r, true
		}
	}
	for k, ok := range filled {
		if !ok {
			j := m.Jobs()[k]
			return Matrix{}, nil, fmt.Errorf("merge: run %s/%s/seed %d missing", m.Workloads[j.Workload], m.Policies[j.Policy], j.Seed)
		}
	}
	return m, out, nil
}

type runKey struct {
	workload, policy string
	seed             uint64
}

// ParseSeeds reads a seed list: "42", "42-51", or a comma list of either.
func ParseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		a, b, isRange := strings.Cut(item, "-")
		lo, err := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("seeds %q: %q is not a seed or a range a-b", s, item)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(strings.TrimSpace(b), 10, 64); err != nil || hi < lo {
				return nil, fmt.Errorf("seeds %q: %q is not a range a-b with a <= b", s, item)
			}
			if hi-lo >= 1<<20 {
				return nil, fmt.Errorf("seeds %q: range %q is too long", s, item)
			}
		}
		for x := lo; ; x++ {
			if slices.Contains(out, x) {
				return nil, fmt.Errorf("seeds %q: seed %d repeated", s, x)
			}
			out = append(out, x)
			if x == hi {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("seeds %q: no seed", s)
	}
	return out, nil
}

// WritePart writes a part file: JSON, one run per line.
func WritePart(w io.Writer, p *Part) error {
	head := *p
	head.Runs = nil
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	// Splice the runs in one per line, so that a part reads well in diffs.
	buf.Write(b[:len(b)-len(`,"runs":null}`)])
	buf.WriteString(`,"runs":[`)
	for i := range p.Runs {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n")
		rb, err := json.Marshal(&p.Runs[i])
		if err != nil {
			return err
		}
		buf.Write(rb)
	}
	buf.WriteString("\n]}\n")
	_, err = w.Write(buf.Bytes())
	return err
}

// ReadPart reads a part file written by WritePart; name is used in errors.
func ReadPart(r io.Reader, name string) (*Part, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p Part
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("part %s: %w", name, err)
	}
	if p.Format != PartFormat {
		return nil, fmt.Errorf("part %s: field format: want %q, got %q", name, PartFormat, p.Format)
	}
	return &p, nil
}
