package traces

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// sniffLen is how many bytes Sniff looks at.
const sniffLen = 16 << 10

// Sniff guesses the format of a trace from its first bytes, which it peeks
// at without consuming. name is used in the error when nothing matches. A
// leading UTF-8 byte-order mark is looked past (the readers drop it, and
// Buffered does too).
func Sniff(br *bufio.Reader, name string) (Format, error) {
	head, err := br.Peek(sniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	head = bytes.TrimPrefix(head, []byte("\ufeff"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 {
		return "", fmt.Errorf("%s: empty file, cannot tell its format", name)
	}
	switch trimmed[0] {
	case '[':
		if bytes.Contains(trimmed, []byte(`"jobid"`)) || bytes.Contains(trimmed, []byte(`"attempts"`)) || bytes.Equal(bytes.TrimSpace(trimmed), []byte("[]")) {
			return FormatPhilly, nil
		}
		return "", fmt.Errorf("%s: a JSON array without \"jobid\" or \"attempts\", not a Philly cluster_job_log", name)
	case '{':
		return FormatJSONL, nil
	case '#':
		if bytes.HasPrefix(trimmed, []byte(canonicalMagic)) {
			return FormatCSV, nil
		}
	}
	line := firstLine(head)
	fields := strings.Split(line, ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	has := func(names ...string) bool {
		for _, n := range names {
			if !slices.Contains(fields, n) {
				return false
			}
		}
		return true
	}
	switch {
	case has("name", "cpu_milli", "memory_mib", "num_gpu"):
		return FormatOpenb, nil
	case has("sn", "cpu_milli", "memory_mib", "gpu"):
		return FormatOpenbNodes, nil
	case has("job_id", "submit"):
		return FormatCSV, nil
	case has("machineId", "number of GPUs"):
		return FormatPhillyMachines, nil
	case has("job_id", "gpu_num", "node_num", "submit_time"):
		return FormatHelios, nil
	case len(fields) > 1 && fields[0] == "date" && fields[len(fields)-1] == "total":
		return FormatHeliosGPUs, nil
	}
	if k, err := paiKind(fields); err == nil {
		if k == paiMachineTable {
			return FormatPAIMachines, nil
		}
		return FormatPAI, nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the first line %q; name it with --format (%s)", name, clip(line, 120), formatList())
}

func formatList() string {
	var names []string
	for _, f := range JobFormats {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// firstLine returns the first non-empty line of head, without its newline.
func firstLine(head []byte) string {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		var l []byte
		if i < 0 {
			l, head = head, nil
		} else {
			l, head = head[:i], head[i+1:]
		}
		if s := strings.TrimSpace(string(l)); s != "" {
			return s
		}
	}
	return ""
}

type paiTableKind int

const (
	paiJobTable paiTableKind = iota + 1
	paiTaskTable
	paiMachineTable
)

// paiKind tells the three header-less PAI tables apart by their first row:
// 6 fields with a status in the fourth is the job table, 10 fields with a
// float instance count in the third the task table, and 5 fields with a GPU
// type and three numbers the machine table. A first row that is the table's
// own header counts too.
func paiKind(f []string) (paiTableKind, error) {
	isNum := func(s string) bool {
		if missing(s) {
			return true
		}
		_, err := strconv.ParseFloat(s, 64)
		return err == nil
	}
	switch {
	case slices.Equal(f, paiJobColumns):
		return paiJobTable, nil
	case slices.Equal(f, paiTaskColumns):
		return paiTaskTable, nil
	case slices.Equal(f, paiMachineColumns):
		return paiMachineTable, nil
	case len(f) == 6 && f[0] != "" && !isNum(f[3]) && isNum(f[4]) && isNum(f[5]):
		return paiJobTable, nil
	case len(f) == 10 && f[0] != "" && isNum(f[2]) && isNum(f[4]) && isNum(f[6]) && isNum(f[7]) && isNum(f[8]):
		return paiTaskTable, nil
	case len(f) == 5 && f[0] != "" && !isNum(f[1]) && isNum(f[2]) && isNum(f[3]) && isNum(f[4]):
		return paiMachineTable, nil
	}
	return 0, fmt.Errorf("not a PAI table: want 6 fields (job table), 10 (task table) or 5 (machine table), got %d", len(f))
}

// sniffPAITable tells which PAI table br holds, from its first line. br
// comes from decompress, which has dropped a byte-order mark.
func sniffPAITable(br *bufio.Reader) (paiTableKind, error) {
	head, _ := br.Peek(sniffLen)
	line := firstLine(head)
	if line == "" {
		return 0, fmt.Errorf("empty PAI table")
	}
	fields := strings.Split(line, ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return paiKind(fields)
}
