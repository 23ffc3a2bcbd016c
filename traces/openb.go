package traces

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// OpenbNode is one row of an openb node list.
type OpenbNode struct {
	Name      string // sn
	CPUMilli  int64  // cpu_milli
	MemoryMiB int64  // memory_mib
	GPU       int    // gpu: the number of GPUs
	Model     string // model: the GPU model, "" on a CPU-only node
	// Line is the file line the row starts on (blank lines and quoted
	// fields that span lines counted), for error messages.
	Line int
}

// OpenbPod is one row of an openb pod list. Missing optional columns read as
// zero/empty; missing times as -1 (NoTime).
type OpenbPod struct {
	Name      string // name
	CPUMilli  int64  // cpu_milli
	MemoryMiB int64  // memory_mib
	NumGPU    int    // num_gpu: whole GPUs
	GPUMilli  int64  // gpu_milli: share of each GPU in thousandths
	GPUSpec   string // gpu_spec: allowed models, "A|B"; "" means any
	QoS       string // qos
	Phase     string // pod_phase
	Creation  int64  // creation_time, seconds from the trace start
	Deletion  int64  // deletion_time
	Scheduled int64  // scheduled_time
	// Line is the file line the row starts on (blank lines and quoted
	// fields that span lines counted), for error messages.
	Line int
}

// openbPodRows streams the rows of an openb pod list, going by its header.
type openbPodRows struct {
	rows *csvRows
	c    struct{ name, cpu, mem, ngpu, milli, spec, qos, phase, created, deleted, scheduled int }
}

func newOpenbPodRows(r io.Reader, name string) (*openbPodRows, error) {
	rows := newCSVRows(r, name)
	cols, err := rows.header("name", "cpu_milli", "memory_mib", "num_gpu")
	if err != nil {
		return nil, err
	}
	p := &openbPodRows{rows: rows}
	p.c.name, p.c.cpu, p.c.mem, p.c.ngpu = cols["name"], cols["cpu_milli"], cols["memory_mib"], cols["num_gpu"]
	p.c.milli, p.c.spec, p.c.qos, p.c.phase = col(cols, "gpu_milli"), col(cols, "gpu_spec"), col(cols, "qos"), col(cols, "pod_phase")
	p.c.created, p.c.deleted, p.c.scheduled = col(cols, "creation_time"), col(cols, "deletion_time"), col(cols, "scheduled_time")
	return p, nil
}

// next reads one pod; a bad row is a *ParseError and the stream goes on.
func (p *openbPodRows) next() (OpenbPod, int, error) {
	rec, line, err := p.rows.next()
	if err != nil {
		return OpenbPod{}, line, err
	}
	r := row{file: p.rows.file, line: line, rec: rec}
	c := &p.c
	pod := OpenbPod{
		Name:      r.str(c.name),
		CPUMilli:  r.int(c.cpu, "cpu_milli", 0, true),
		MemoryMiB: r.int(c.mem, "memory_mib", 0, true),
		NumGPU:    int(r.int(c.ngpu, "num_gpu", 0, true)),
		GPUMilli:  r.int(c.milli, "gpu_milli", 0, false),
		GPUSpec:   r.str(c.spec),
		QoS:       r.str(c.qos),
		Phase:     r.str(c.phase),
		Creation:  r.int(c.created, "creation_time", NoTime, false),
		Deletion:  r.int(c.deleted, "deletion_time", NoTime, false),
		Scheduled: r.int(c.scheduled, "scheduled_time", NoTime, false),
		Line:      line,
	}
	switch {
	case r.err != nil:
	case pod.Name == "":
		r.fail("name", "a pod name", "")
	case pod.NumGPU > 1<<20:
		r.fail("num_gpu", "a GPU count", r.str(c.ngpu))
	case pod.GPUMilli > 1000:
		r.fail("gpu_milli", "an integer from 0 to 1000", r.str(c.milli))
	}
	if r.err != nil {
		return OpenbPod{}, line, r.err
	}
	return pod, line, nil
}

// Validate checks the rules of a pod that its fields alone do not show:
// scheduled_time not before creation_time, deletion_time not before
// scheduled_time, a GPU share (gpu_milli below 1000) only on a single-GPU
// pod, and none on a pod without GPUs. The job reader (NewReader, Open)
// skips a row that breaks them with the same words; ReadOpenbPods returns
// rows as written, so its callers check them with Validate.
func (p OpenbPod) Validate() error {
	if pe := p.check(""); pe != nil {
		return fmt.Errorf("pod %s: field %s: want %s, got %q", p.Name, pe.Field, pe.Want, pe.Got)
	}
	return nil
}

// check is Validate with the file named in the error.
func (p OpenbPod) check(file string) *ParseError {
	switch {
	case p.Scheduled != NoTime && p.Creation != NoTime && p.Scheduled < p.Creation:
		return fieldErr(file, p.Line, "scheduled_time", fmt.Sprintf("a time not before creation_time %d", p.Creation), fmt.Sprint(p.Scheduled))
	case p.Deletion != NoTime && p.Scheduled != NoTime && p.Deletion < p.Scheduled:
		return fieldErr(file, p.Line, "deletion_time", fmt.Sprintf("a time not before scheduled_time %d", p.Scheduled), fmt.Sprint(p.Deletion))
	case p.NumGPU > 1 && p.GPUMilli != 0 && p.GPUMilli != 1000:
		return fieldErr(file, p.Line, "gpu_milli", "1000 on a pod with several GPUs (only single-GPU pods share)", fmt.Sprint(p.GPUMilli))
	case p.NumGPU == 0 && p.GPUMilli != 0:
		return fieldErr(file, p.Line, "gpu_milli", "0 on a pod with no GPUs", fmt.Sprint(p.GPUMilli))
	}
	return nil
}

// ReadOpenbPods reads a whole openb pod list in file order; name is used in
// error messages. Columns are found by the header, so the shorter variants
// (no gpu_spec, qos, phase or times) read too. r may be gzip-compressed; a
// leading UTF-8 byte-order mark is dropped. It stops at the first malformed
// field; rows are as written, so the pod rules the job reader applies are
// left to OpenbPod.Validate.
func ReadOpenbPods(r io.Reader, name string) ([]OpenbPod, error) {
	return readPrepared(r, name, readOpenbPods)
}

// readOpenbPods is ReadOpenbPods over input decompress has prepared.
func readOpenbPods(r io.Reader, name string) ([]OpenbPod, error) {
	p, err := newOpenbPodRows(r, name)
	if err != nil {
		return nil, err
	}
	var pods []OpenbPod
	for {
		pod, _, err := p.next()
		if errors.Is(err, io.EOF) {
			return pods, nil
		}
		if err != nil {
			return nil, err
		}
		pods = append(pods, pod)
	}
}

// LoadOpenbPods reads the openb pod list at path (gzip-compressed or not).
func LoadOpenbPods(path string) ([]OpenbPod, error) {
	return loadFile(path, readOpenbPods)
}

// ReadOpenbNodes reads a whole openb node list in file order; name is used
// in error messages. r may be gzip-compressed; a leading UTF-8 byte-order
// mark is dropped. It stops at the first bad row.
func ReadOpenbNodes(r io.Reader, name string) ([]OpenbNode, error) {
	return readPrepared(r, name, readOpenbNodes)
}

// readOpenbNodes is ReadOpenbNodes over input decompress has prepared.
func readOpenbNodes(r io.Reader, name string) ([]OpenbNode, error) {
	rows := newCSVRows(r, name)
	cols, err := rows.header("sn", "cpu_milli", "memory_mib", "gpu")
	if err != nil {
		return nil, err
	}
	cSN, cCPU, cMem, cGPU, cModel := cols["sn"], cols["cpu_milli"], cols["memory_mib"], cols["gpu"], col(cols, "model")
	var nodes []OpenbNode
	for {
		rec, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			return nodes, nil
		}
		if err != nil {
			return nil, err
		}
		r := row{file: name, line: line, rec: rec}
		n := OpenbNode{
			Name:      r.str(cSN),
			CPUMilli:  r.int(cCPU, "cpu_milli", 0, true),
			MemoryMiB: r.int(cMem, "memory_mib", 0, true),
			GPU:       int(r.int(cGPU, "gpu", 0, true)),
			Model:     r.str(cModel),
			Line:      line,
		}
		switch {
		case r.err != nil:
		case n.Name == "":
			r.fail("sn", "a node name", "")
		case n.GPU > 1<<20:
			r.fail("gpu", "a GPU count", r.str(cGPU))
		case n.GPU > 0 && n.Model == "":
			r.fail("model", "a GPU model on a node with GPUs", "")
		}
		if r.err != nil {
			return nil, r.err
		}
		nodes = append(nodes, n)
	}
}

// LoadOpenbNodes reads the openb node list at path (gzip-compressed or not).
func LoadOpenbNodes(path string) ([]OpenbNode, error) {
	return loadFile(path, readOpenbNodes)
}

// Job converts a pod to the canonical record: one task of one instance,
// submitted at creation_time, started at scheduled_time, ended at
// deletion_time. A pod with GPUs and no gpu_milli column takes whole GPUs.
func (p OpenbPod) Job() Job {
	t := Task{Count: 1, GPUs: p.NumGPU, CPUMilli: p.CPUMilli, MemoryMiB: p.MemoryMiB}
	if t.GPUs > 0 {
		t.GPUMilli = p.GPUMilli
		if t.GPUMilli == 0 {
			t.GPUMilli = 1000
		}
		t.GPUModels = splitModels(p.GPUSpec)
	}
	j := Job{
		ID: p.Name, Submit: p.Creation, Start: p.Scheduled, End: p.Deletion, Duration: NoTime,
		QoS: p.QoS, Status: openbStatus(p.Phase), Tasks: []Task{t},
	}
	if j.Start != NoTime && j.End != NoTime {
		j.Duration = j.End - j.Start
	}
	return j
}

// splitModels splits an "A|B" model list, dropping empties and repeats
// (the published lists have "V100M32|V100M32").
func splitModels(spec string) []string {
	if spec == "" {
		return nil
	}
	var out []string
	for m := range strings.SplitSeq(spec, "|") {
		m = strings.TrimSpace(m)
		if m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

func openbStatus(phase string) Status {
	switch strings.ToLower(phase) {
	case "succeeded":
		return StatusSucceeded
	case "failed":
		return StatusFailed
	case "running":
		return StatusRunning
	case "pending":
		return StatusPending
	}
	return StatusUnknown
}

// openbSource reads an openb pod list as jobs.
type openbSource struct {
	rows *openbPodRows
}

func (s *openbSource) next(j *Job) error {
	pod, _, err := s.rows.next()
	if err != nil {
		return err
	}
	if err := pod.check(s.rows.rows.file); err != nil {
		return err
	}
	*j = pod.Job()
	if err := j.Validate(); err != nil {
		return &ParseError{File: s.rows.rows.file, Line: pod.Line, Err: err}
	}
	return nil
}

func (s *openbSource) meta() Meta {
	return Meta{Format: FormatOpenb, Clock: ClockRelative, Zone: "UTC"}
}
