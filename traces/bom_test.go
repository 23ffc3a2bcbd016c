package traces

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const utf8BOM = "\ufeff"

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.String()
}

// canonicalJSONL is the golden PAI trace as canonical JSON Lines.
func canonicalJSONL(t *testing.T) string {
	t.Helper()
	r, err := NewReader(strings.NewReader(mustRead(t, "testdata/golden/pai.csv")), "pai.csv", Options{Strict: true})
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, FormatJSONL, r.Meta())
	require.NoError(t, err)
	for _, j := range readAll(t, r) {
		require.NoError(t, w.Write(&j))
	}
	require.NoError(t, w.Close())
	return buf.String()
}

// dropFirstLine removes a file's first line (a canonical meta line).
func dropFirstLine(s string) string {
	_, rest, _ := strings.Cut(s, "\n")
	return rest
}

// A byte-order mark before a trace changes nothing: every format reads the
// same jobs, with the same meta, as without it, also gzip-compressed.
func TestBOMJobFormats(t *testing.T) {
	jsonl := canonicalJSONL(t)
	tests := []struct {
		name, data string
		format     Format
	}{
		{"openb", mustRead(t, "testdata/openb/openb_pod_list_gpuspec33_head.csv"), FormatOpenb},
		{"pai task table", mustRead(t, "testdata/pai/pai_task_table.csv"), FormatPAI},
		{"pai job table", mustRead(t, "testdata/pai/pai_job_table.csv"), FormatPAI},
		{"philly", mustRead(t, "testdata/philly/cluster_job_log"), FormatPhilly},
		{"helios", mustRead(t, "testdata/helios/cluster_log.csv"), FormatHelios},
		{"canonical CSV with meta line", mustRead(t, "testdata/golden/pai.csv"), FormatCSV},
		{"canonical CSV without meta line", dropFirstLine(mustRead(t, "testdata/golden/pai.csv")), FormatCSV},
		{"JSON Lines with meta line", jsonl, FormatJSONL},
		{"JSON Lines without meta line", dropFirstLine(jsonl), FormatJSONL},
	}
	for _, tc := range tests {
		for _, named := range []Format{FormatAuto, tc.format} {
			t.Run(tc.name+"/"+string(named), func(t *testing.T) {
				r, err := NewReader(strings.NewReader(tc.data), "plain", Options{Strict: true, Format: named})
				require.NoError(t, err)
				want := readAll(t, r)
				require.NotEmpty(t, want)
				for _, in := range []string{utf8BOM + tc.data, gzipped(t, utf8BOM+tc.data)} {
					r, err := NewReader(strings.NewReader(in), "bom", Options{Strict: true, Format: named})
					require.NoError(t, err)
					assert.Equal(t, tc.format, r.Meta().Format)
					got := readAll(t, r)
					assert.Equal(t, want, got)
				}
			})
		}
	}
}

// The dedicated readers drop the mark too: the PAI join still finds the
// first job, and Philly's JSON array still starts.
func TestBOMDedicatedReaders(t *testing.T) {
	jobs, tasks := mustRead(t, "testdata/pai/pai_job_table.csv"), mustRead(t, "testdata/pai/pai_task_table.csv")
	philly, helios := mustRead(t, "testdata/philly/cluster_job_log"), mustRead(t, "testdata/helios/cluster_log.csv")
	tests := []struct {
		name string
		open func(bom string) (*Reader, error)
	}{
		{"NewPAIReader", func(bom string) (*Reader, error) {
			return NewPAIReader(strings.NewReader(bom+jobs), "jobs", strings.NewReader(bom+tasks), "tasks", Options{Strict: true})
		}},
		{"NewPhillyReader", func(bom string) (*Reader, error) {
			return NewPhillyReader(strings.NewReader(bom+philly), "log", Options{Strict: true})
		}},
		{"NewHeliosReader", func(bom string) (*Reader, error) {
			return NewHeliosReader(strings.NewReader(bom+helios), "h.csv", Options{Strict: true})
		}},
		{"Open joining two PAI tables", func(bom string) (*Reader, error) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "pai_job_table.csv"), []byte(bom+jobs), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "pai_task_table.csv"), []byte(bom+tasks), 0o644))
			return Open(filepath.Join(dir, "pai_task_table.csv"), Options{Strict: true})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.open("")
			require.NoError(t, err)
			want := readAll(t, r)
			require.NoError(t, r.Close())
			require.NotEmpty(t, want)
			r, err = tc.open(utf8BOM)
			require.NoError(t, err)
			defer r.Close()
			got := readAll(t, r)
			assert.Equal(t, want, got)
			for _, j := range got {
				assert.False(t, strings.HasPrefix(j.ID, utf8BOM), "job id %q", j.ID)
			}
		})
	}
}

// Machine lists too, through ReadFleet and through each reader.
func TestBOMFleets(t *testing.T) {
	tests := []struct {
		name, path string
		read       func(data string) ([]Machine, error)
	}{
		{"openb nodes", "samples/openb_node_list_gpu_node.csv", func(d string) ([]Machine, error) {
			nodes, err := ReadOpenbNodes(strings.NewReader(d), "n.csv")
			var ms []Machine
			for _, n := range nodes {
				ms = append(ms, n.Machine())
			}
			return ms, err
		}},
		{"pai machine spec", "testdata/pai/pai_machine_spec.csv", func(d string) ([]Machine, error) {
			return ReadPAIMachines(strings.NewReader(d), "spec")
		}},
		{"philly machine list", "testdata/philly/cluster_machine_list", func(d string) ([]Machine, error) {
			return ReadPhillyMachines(strings.NewReader(d), "ml")
		}},
		{"helios gpu numbers", "testdata/helios/earth_cluster_gpu_number.csv", func(d string) ([]Machine, error) {
			c, err := ReadHeliosGPUs(strings.NewReader(d), "g.csv")
			var ms []Machine
			if len(c.Days) > 0 {
				for i, vc := range c.VCs {
					ms = append(ms, Machine{Name: vc, GPUs: c.Days[len(c.Days)-1].GPUs[i]})
				}
			}
			return ms, err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := mustRead(t, tc.path)
			want, wantFormat, err := ReadFleet(strings.NewReader(data), "plain", FormatAuto)
			require.NoError(t, err)
			require.NotEmpty(t, want)
			got, format, err := ReadFleet(strings.NewReader(utf8BOM+data), "bom", FormatAuto)
			require.NoError(t, err)
			assert.Equal(t, wantFormat, format)
			assert.Equal(t, want, got)
			got, err = tc.read(utf8BOM + data)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

// One mark is dropped, once: a second one is content, and an openb header
// that starts with it lacks its name column.
func TestBOMDroppedOnce(t *testing.T) {
	data := "name,cpu_milli,memory_mib,num_gpu\np1,1,1,0\n"
	tests := []struct {
		name, in string
		wantErr  string
	}{
		{"one mark", utf8BOM + data, ""},
		{"one mark, gzip", gzipped(t, utf8BOM+data), ""},
		{"two marks", utf8BOM + utf8BOM + data, "a header with column name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pods, err := ReadOpenbPods(strings.NewReader(tc.in), "x.csv")
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, pods, 1)
			assert.Equal(t, "p1", pods[0].Name)
		})
	}
}
