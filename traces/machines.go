package traces

import (
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Machine is one machine of a fleet list, in petite's units. Fields a list
// does not give are zero.
type Machine struct {
	Name      string `json:"name"`
	GPUs      int    `json:"gpus"`
	GPUModel  string `json:"gpu_model,omitempty"`   // "" on CPU-only machines or when unknown
	GPUMemMiB int64  `json:"gpu_mem_mib,omitempty"` // memory of one GPU
	CPUMilli  int64  `json:"cpu_milli,omitempty"`
	MemoryMiB int64  `json:"memory_mib,omitempty"`
}

// Machine converts an openb node to a Machine.
func (n OpenbNode) Machine() Machine {
	return Machine{Name: n.Name, GPUs: n.GPU, GPUModel: n.Model, CPUMilli: n.CPUMilli, MemoryMiB: n.MemoryMiB}
}

// ReadPAIMachines reads the header-less pai_machine_spec table (machine,
// gpu_type, cap_cpu in cores, cap_mem in GB, cap_gpu). gpu_type CPU marks a
// machine without GPUs. r may be gzip-compressed; a leading UTF-8
// byte-order mark is dropped. It stops at the first bad row.
func ReadPAIMachines(r io.Reader, name string) ([]Machine, error) {
	return readPrepared(r, name, readPAIMachines)
}

// readPAIMachines is ReadPAIMachines over input decompress has prepared.
func readPAIMachines(r io.Reader, name string) ([]Machine, error) {
	rows := newCSVRows(r, name)
	var ms []Machine
	for {
		rec, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			return ms, nil
		}
		if err != nil {
			return nil, err
		}
		if line == 1 && isHeader(rec, paiMachineColumns) {
			continue
		}
		rw := row{file: name, line: line, rec: rec}
		if len(rec) != len(paiMachineColumns) {
			rw.fail("", "5 fields (pai_machine_spec: "+strings.Join(paiMachineColumns, ",")+")", strings.Join(rec, ","))
		}
		m := Machine{Name: rw.str(0), GPUModel: rw.str(1)}
		cpu := rw.float(2, "cap_cpu", 0, true)
		mem := rw.float(3, "cap_mem", 0, true)
		m.GPUs = int(rw.whole(4, "cap_gpu", 0, true))
		m.CPUMilli, m.MemoryMiB = int64(math.Round(cpu*1000)), int64(math.Round(mem*1024))
		switch {
		case rw.err != nil:
		case m.Name == "":
			rw.fail("machine", "a machine name", "")
		case m.GPUModel == "CPU" && m.GPUs != 0:
			rw.fail("cap_gpu", "0 on a CPU machine", rw.str(4))
		case m.GPUs > 1<<20 || cpu > 1e9 || mem > 1e9:
			rw.fail("cap_cpu/cap_mem/cap_gpu", "a plausible capacity", strings.Join(rec[2:], ","))
		}
		if rw.err != nil {
			return nil, rw.err
		}
		if m.GPUModel == "CPU" {
			m.GPUModel = ""
		}
		ms = append(ms, m)
	}
}

var gpuMemRE = regexp.MustCompile(`^(\d+)\s*([GM])i?B$`)

// ReadPhillyMachines reads Philly's cluster_machine_list: a header
// "machineId, number of GPUs, single GPU mem" and rows like "m31,8, 24GB".
// Rows come sorted as strings (m0, m1, m10, ...) and are kept in file
// order. r may be gzip-compressed; a leading UTF-8 byte-order mark is
// dropped. It stops at the first bad row.
func ReadPhillyMachines(r io.Reader, name string) ([]Machine, error) {
	return readPrepared(r, name, readPhillyMachines)
}

// readPhillyMachines is ReadPhillyMachines over input decompress has
// prepared.
func readPhillyMachines(r io.Reader, name string) ([]Machine, error) {
	rows := newCSVRows(r, name)
	cols, err := rows.header("machineId", "number of GPUs")
	if err != nil {
		return nil, err
	}
	cID, cGPU, cMem := cols["machineId"], cols["number of GPUs"], col(cols, "single GPU mem")
	var ms []Machine
	for {
		rec, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			return ms, nil
		}
		if err != nil {
			return nil, err
		}
		rw := row{file: name, line: line, rec: rec}
		m := Machine{Name: rw.str(cID), GPUs: int(rw.int(cGPU, "number of GPUs", 0, true))}
		if s := rw.str(cMem); s != "" {
			sm := gpuMemRE.FindStringSubmatch(s)
			if sm == nil {
				rw.fail("single GPU mem", `a size like "12GB"`, s)
			} else {
				v, _ := strconv.ParseInt(sm[1], 10, 64)
				if sm[2] == "G" {
					v *= 1024
				}
				m.GPUMemMiB = v
			}
		}
		if rw.err == nil && m.Name == "" {
			rw.fail("machineId", "a machine name", "")
		}
		if rw.err == nil && m.GPUs > 1<<20 {
			rw.fail("number of GPUs", "a GPU count", rw.str(cGPU))
		}
		if rw.err != nil {
			return nil, rw.err
		}
		ms = append(ms, m)
	}
}

// HeliosCapacity is a Helios cluster_gpu_number.csv: the GPUs of each
// virtual cluster on each day.
type HeliosCapacity struct {
	// VCs names the virtual clusters, in column order.
	VCs []string `json:"vcs"`
	// Days holds one row per day, in file order.
	Days []HeliosDay `json:"days"`
}

// HeliosDay is the GPU count of each virtual cluster on one day.
type HeliosDay struct {
	Date  string `json:"date"` // YYYY-MM-DD
	GPUs  []int  `json:"gpus"` // per VC, in HeliosCapacity.VCs order
	Total int    `json:"total"`
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// ReadHeliosGPUs reads a Helios cluster_gpu_number.csv (date, one column
// per virtual cluster, total) and checks that total is the sum of the
// others. r may be gzip-compressed; a leading UTF-8 byte-order mark is
// dropped. It stops at the first bad row.
func ReadHeliosGPUs(r io.Reader, name string) (HeliosCapacity, error) {
	br, err := decompress(r, name)
	if err != nil {
		return HeliosCapacity{}, err
	}
	return readHeliosGPUs(br, name)
}

// readHeliosGPUs is ReadHeliosGPUs over input decompress has prepared.
func readHeliosGPUs(r io.Reader, name string) (HeliosCapacity, error) {
	rows := newCSVRows(r, name)
	rec, line, err := rows.next()
	if errors.Is(err, io.EOF) {
		return HeliosCapacity{}, &ParseError{File: name, Line: 1, Want: "a header date,VC...,total", Got: ""}
	}
	if err != nil {
		return HeliosCapacity{}, err
	}
	hdr := make([]string, len(rec))
	for i, h := range rec {
		hdr[i] = strings.TrimSpace(h)
	}
	if len(hdr) < 2 || hdr[0] != "date" || hdr[len(hdr)-1] != "total" {
		return HeliosCapacity{}, &ParseError{File: name, Line: line, Want: "a header date,VC...,total", Got: strings.Join(hdr, ",")}
	}
	capy := HeliosCapacity{VCs: hdr[1 : len(hdr)-1]}
	for {
		rec, line, err := rows.next()
		if errors.Is(err, io.EOF) {
			return capy, nil
		}
		if err != nil {
			return HeliosCapacity{}, err
		}
		rw := row{file: name, line: line, rec: rec}
		if len(rec) != len(hdr) {
			rw.fail("", fmt.Sprintf("%d fields as in the header", len(hdr)), strings.Join(rec, ","))
		}
		d := HeliosDay{Date: rw.str(0), GPUs: make([]int, len(capy.VCs))}
		if rw.err == nil && !dateRE.MatchString(d.Date) {
			rw.fail("date", "a date YYYY-MM-DD", d.Date)
		}
		sum := 0
		for i, vc := range capy.VCs {
			d.GPUs[i] = int(rw.whole(i+1, vc, 0, true))
			if d.GPUs[i] > 1<<24 {
				rw.fail(vc, "a plausible GPU count", rw.str(i+1))
			}
			sum += d.GPUs[i]
		}
		d.Total = int(rw.whole(len(hdr)-1, "total", 0, true))
		if rw.err == nil && d.Total != sum {
			rw.fail("total", fmt.Sprintf("the sum of the VC columns, %d", sum), rw.str(len(hdr)-1))
		}
		if rw.err != nil {
			return HeliosCapacity{}, rw.err
		}
		capy.Days = append(capy.Days, d)
	}
}

// ReadFleet reads a machine list of any fleet format (sniffed when f is
// FormatAuto or ""). in may be gzip-compressed; a leading UTF-8 byte-order
// mark is dropped. A Helios GPU-number file has no machines: its last
// day's per-VC GPU counts come back as one pseudo-machine per VC (see
// ReadFleetStats for its peak).
func ReadFleet(in io.Reader, name string, f Format) ([]Machine, Format, error) {
	br, err := decompress(in, name)
	if err != nil {
		return nil, "", err
	}
	if f == "" || f == FormatAuto {
		if f, err = Sniff(br, name); err != nil {
			return nil, "", err
		}
	}
	return readFleet(br, name, f)
}

// readFleet is ReadFleet over input decompress has prepared, of a known
// format.
func readFleet(br io.Reader, name string, f Format) ([]Machine, Format, error) {
	var ms []Machine
	var err error
	switch f {
	case FormatOpenbNodes:
		nodes, err := readOpenbNodes(br, name)
		if err != nil {
			return nil, f, err
		}
		for _, n := range nodes {
			ms = append(ms, n.Machine())
		}
	case FormatPAIMachines:
		ms, err = readPAIMachines(br, name)
	case FormatPhillyMachines:
		ms, err = readPhillyMachines(br, name)
	case FormatHeliosGPUs:
		var c HeliosCapacity
		c, err = readHeliosGPUs(br, name)
		if err == nil && len(c.Days) > 0 {
			last := c.Days[len(c.Days)-1]
			for i, vc := range c.VCs {
				ms = append(ms, Machine{Name: vc, GPUs: last.GPUs[i]})
			}
		}
	default:
		return nil, f, fmt.Errorf("%s: is a %s trace, a list of jobs, not of machines", name, f)
	}
	return ms, f, err
}
