package state

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// examples holds one command of every type with every field set, so that a
// change to any field's wire form shows in a golden file.
func examples() []Command {
	job := scheduler.Job{
		ID: "train-1", Kind: scheduler.Training, Tenant: "research", Priority: 5, Count: 2,
		Task: scheduler.Task{
			GPUs: 4, GPUMilli: 1000, Models: []string{"H100", "A100"}, CPUMilli: 16000, MemoryMiB: 65536,
			Constraints: []scheduler.Constraint{{Key: "rack", Op: scheduler.OpNotIn, Values: []string{"r9"}}},
			Residency:   []string{"eu"},
		},
		Checkpointable: true, Preemptible: true, MinReplicas: 1, SpreadLabel: "rack", Submitted: 99, Walltime: 3600,
	}
	return []Command{
		RegisterPool{Pool: scheduler.Pool{
			Name: "aws-eu", Kind: scheduler.PoolCloud, Region: "eu-west-1", Zone: "eu-west-1a",
			Labels: map[string]string{"residency": "eu", "compliance": "gdpr"}, PricePerGPUHour: 2.5,
			Pricing: scheduler.Spot, MaxNodes: 16, ProvisionDelaySec: 300, RetireAt: 86400,
		}},
		RegisterNode{Node: scheduler.Node{
			Name: "dgx-1", Pool: "onprem", Rack: "r1", CPUMilli: 224000, MemoryMiB: 2097152,
			GPUs: []scheduler.GPU{
				{Model: "A100", MemoryMiB: 81920, Island: 0},
				{Model: "A100", MemoryMiB: 40960, Island: 1, MIG: "3g.40gb", MilliCap: 428},
			},
			Labels: map[string]string{"zone": "a"}, State: scheduler.NodeDraining,
		}},
		SetNodeState{Node: "dgx-1", State: scheduler.NodeDown, At: 120},
		SetRanks{Nodes: []string{"dgx-2", "dgx-1"}},
		SetTenant{Tenant: scheduler.Tenant{Name: "research", GuaranteedMilli: 8000, MaxMilli: 16000, Weight: 1.5}},
		Submit{Job: job, At: 100},
		Cancel{Job: "train-1", At: 130},
		ApplyPlan{
			Evict: []scheduler.Eviction{{Job: "svc", Tasks: []int{1, 2}, For: "train-1", Seen: []scheduler.TaskPlacement{
				{Task: 1, Node: "dgx-1", GPUs: []int{0}, GPUMilli: 500, CPUMilli: 2000, MemoryMiB: 8192},
				{Task: 2, Node: "dgx-2", GPUs: []int{4}, GPUMilli: 500, CPUMilli: 2000, MemoryMiB: 8192},
			}}},
			Place: []scheduler.JobPlacement{{Job: "train-1", Tasks: []scheduler.TaskPlacement{
				{Task: 0, Node: "dgx-1", GPUs: []int{0, 1, 2, 3}, GPUMilli: 1000, CPUMilli: 16000, MemoryMiB: 65536},
				{Task: 1, Node: "dgx-2", GPUs: []int{4, 5, 6, 7}, GPUMilli: 1000, CPUMilli: 16000, MemoryMiB: 65536},
			}}},
			At: 140,
		},
		Finish{Job: "train-1", Tasks: []int{0}, Failed: true, At: 150},
		Preempt{Job: "svc", Tasks: []int{2}, For: "train-1", At: 160},
		Prune{Before: 170},
		SetDeviceHealth{Node: "gpu-1", Devices: []int{3, 5}, At: 180},
	}
}

// TestEncodeGolden pins the wire form of every command type to a golden
// file in testdata/commands. A change to the format fails here; if it is
// meant, bump Version where old readers would misread, and regenerate with
// -update.
func TestEncodeGolden(t *testing.T) {
	ex := examples()
	covered := map[string]bool{}
	for _, cmd := range ex {
		covered[cmd.Type()] = true
	}
	require.Len(t, covered, len(commandTypes), "every command type has an example")
	for _, cmd := range ex {
		t.Run(cmd.Type(), func(t *testing.T) {
			got, err := Encode(cmd)
			require.NoError(t, err)
			path := filepath.Join("testdata", "commands", cmd.Type()+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, strings.TrimSuffix(string(want), "\n"), string(got))
			require.True(t, strings.HasPrefix(string(got), `{"v":1,"type":"`+cmd.Type()+`"`), "envelope first: %s", got)

			back, err := Decode(want)
			require.NoError(t, err)
			assert.Equal(t, cmd, back, "decode(golden) is the command")
			// A pointer encodes as its value.
			viaPtr, err := encodePtr(cmd)
			require.NoError(t, err)
			assert.Equal(t, string(got), string(viaPtr))
		})
	}
}

// encodePtr encodes a pointer to the command.
func encodePtr(cmd Command) ([]byte, error) {
	switch c := cmd.(type) {
	case RegisterPool:
		return Encode(&c)
	case RegisterNode:
		return Encode(&c)
	case SetNodeState:
		return Encode(&c)
	case SetRanks:
		return Encode(&c)
	case SetTenant:
		return Encode(&c)
	case Submit:
		return Encode(&c)
	case Cancel:
		return Encode(&c)
	case ApplyPlan:
		return Encode(&c)
	case Finish:
		return Encode(&c)
	case Preempt:
		return Encode(&c)
	case Prune:
		return Encode(&c)
	case SetDeviceHealth:
		return Encode(&c)
	}
	return nil, nil
}

func TestEncodeEmptyCommand(t *testing.T) {
	got, err := Encode(ApplyPlan{})
	require.NoError(t, err)
	assert.Equal(t, `{"v":1,"type":"apply_plan","at":0}`, string(got))
	got, err = Encode(SetRanks{})
	require.NoError(t, err)
	assert.Equal(t, `{"v":1,"type":"set_ranks","nodes":null}`, string(got))
	_, err = Encode(nil)
	assert.ErrorContains(t, err, "nil command")
	_, err = Encode((*Cancel)(nil))
	assert.ErrorContains(t, err, "nil *state.Cancel")
}

func TestDecodeErrors(t *testing.T) {
	deep := `{"v":1,"type":"submit","job":{"task":{"constraints":[` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `]}}}`
	tests := []struct {
		name, in, want string
	}{
		{"empty", ``, "unexpected end of JSON input"},
		{"not an object", `[1,2]`, "cannot unmarshal array"},
		{"null", `null`, "field v: missing"},
		{"no version", `{"type":"cancel","job":"a"}`, "field v: missing"},
		{"future version", `{"v":2,"type":"cancel","job":"a"}`, "field v: unsupported version 2 (this build reads 1)"},
		{"version as string", `{"v":"1","type":"cancel"}`, "cannot unmarshal string"},
		{"no type", `{"v":1,"job":"a"}`, "field type: missing"},
		{"null string", `{"v":1,"type":"cancel","job":null,"at":1}`, "field job: want string, got null"},
		{"null number", `{"v":1,"type":"cancel","job":"a","at":null}`, "field at: want int64, got null"},
		{"null nested", `{"v":1,"type":"submit","job":{"id":"j","count":null,"task":{}},"at":1}`, "field job.count: want int, got null"},
		{"unknown type", `{"v":1,"type":"reboot"}`, `field type: unknown command type "reboot"`},
		{"unknown field", `{"v":1,"type":"cancel","job":"a","force":true}`, "decode cancel: field force: unknown"},
		{"unknown nested field", `{"v":1,"type":"submit","job":{"id":"a","task":{"gpus":1,"vram":8}}}`, "field job.task.vram: unknown"},
		{"unknown field in a list", `{"v":1,"type":"apply_plan","place":[{"job":"a","tasks":[{"task":0,"nod":"n"}]}]}`, "field place[0].tasks[0].nod: unknown"},
		{"field in another case", `{"v":1,"type":"cancel","Job":"a"}`, "field Job: unknown"},
		{"envelope in another case", `{"v":1,"Type":"cancel","type":"cancel"}`, "field Type: unknown"},
		{"repeated field", `{"v":1,"type":"cancel","job":"a","job":"b"}`, "field job: repeated"},
		{"repeated envelope", `{"v":1,"v":1,"type":"prune"}`, "field v: repeated"},
		{"wrong value type", `{"v":1,"type":"cancel","job":7}`, "Cancel.job of type string"},
		{"fraction for an int", `{"v":1,"type":"prune","before":1.5}`, "Prune.before of type int64"},
		{"trailing data", `{"v":1,"type":"prune","before":1} {}`, "invalid character"},
		{"too deep", deep, "nested deeper than 32"},
		{"envelope keys only at the top", `{"v":1,"type":"submit","job":{"v":1}}`, "field job.v: unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := Decode([]byte(tt.in))
			require.Error(t, err)
			assert.Nil(t, cmd)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecodeAcceptsFieldsInAnyOrder(t *testing.T) {
	cmd, err := Decode([]byte(` {"job":"a", "at": 7, "type":"cancel", "v":1} `))
	require.NoError(t, err)
	assert.Equal(t, Cancel{Job: "a", At: 7}, cmd)
}

// FuzzDecode feeds Decode arbitrary bytes. It must never panic; what it
// accepts must encode, decode and encode again to the same bytes; and the
// machine must apply it, or refuse it leaving the state unchanged, without
// panicking and keeping its invariants.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "commands", "*.json"))
	require.NoError(f, err)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, s := range []string{
		`{"v":1,"type":"apply_plan","place":[{"job":"g","tasks":[{"task":0,"node":"n1","gpus":[0,1],"gpu_milli":1000,"cpu_milli":1000,"memory_mib":1024}]}],"at":5}`,
		`{"v":1,"type":"apply_plan","evict":[{"job":"s","tasks":[0]}],"at":5}`,
		`{"v":1,"type":"set_node_state","node":"n1","state":"down","at":3}`,
		`{"v":1,"type":"finish","job":"s","tasks":[1],"at":9}`,
		`{"v":1,"type":"cancel","job":"Job","JOB":"x"}`,
		`{"v":1,"type":"submit","job":{"id":"x","count":1,"task":{"gpus":1,"gpu_milli":300}},"at":1}`,
		`{"v":2}`, `[]`, `null`, `{"v":1,"type":"prune","before":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The plan's fast path (decode_plan.go) takes canonical bytes only,
		// and reads them as the strict decoder does.
		if p, ok := decodePlan(data); ok {
			strict, err := decodeStrict(data)
			require.NoError(t, err, "the fast path took what the strict decoder refuses")
			require.Equal(t, strict, Command(p))
			enc, err := Encode(p)
			require.NoError(t, err)
			require.Equal(t, string(data), string(enc), "the fast path took bytes that are not canonical")
		}
		cmd, err := Decode(data)
		if err != nil {
			return
		}
		enc, err := Encode(cmd)
		require.NoError(t, err)
		back, err := Decode(enc)
		require.NoError(t, err, "decode(encode(decode(x))) for %q", enc)
		enc2, err := Encode(back)
		require.NoError(t, err)
		require.Equal(t, string(enc), string(enc2))

		m := fuzzMachine(t)
		before := snap(t, m)
		res, err := m.Apply(cmd)
		checkInvariants(t, m)
		after := snap(t, m)
		if err != nil || !res.Changed {
			require.True(t, bytes.Equal(before, after), "a refused or no-op command changed the state")
		}
	})
}

// fuzzMachine is a small machine with work in every status, for the fuzzer
// to apply commands to.
func fuzzMachine(t *testing.T) *Machine {
	t.Helper()
	m := New()
	for _, c := range []Command{
		RegisterPool{Pool: scheduler.Pool{Name: "p", Region: "eu"}},
		RegisterNode{Node: scheduler.Node{Name: "n1", Pool: "p", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("H100", 4)}},
		RegisterNode{Node: scheduler.Node{Name: "n2", Pool: "p", CPUMilli: 8000, MemoryMiB: 8192, GPUs: []scheduler.GPU{{Model: "A100", MIG: "3g.40gb"}, {Model: "A100", MIG: "1g.10gb"}}}},
		Submit{Job: scheduler.Job{ID: "g", Count: 2, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, MemoryMiB: 1024}}, At: 1},
		Submit{Job: scheduler.Job{ID: "s", Kind: scheduler.Inference, Count: 2, Task: scheduler.Task{GPUs: 1, GPUMilli: 300, CPUMilli: 1000, MemoryMiB: 1024}}, At: 2},
		Submit{Job: scheduler.Job{ID: "x", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 300, CPUMilli: 1000, MemoryMiB: 1024}}, At: 3},
		Submit{Job: scheduler.Job{ID: "done", Count: 1, Task: scheduler.Task{CPUMilli: 1000}}, At: 3},
		ApplyPlan{Place: []scheduler.JobPlacement{
			{Job: "g", Tasks: []scheduler.TaskPlacement{tp(0, "n1", 1000, 0), tp(1, "n1", 1000, 1)}},
			{Job: "s", Tasks: []scheduler.TaskPlacement{tp(0, "n1", 300, 2), tp(1, "n2", 428, 0)}},
		}, At: 4},
		Cancel{Job: "done", At: 5},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	return m
}

func gpus(model string, n int) []scheduler.GPU {
	out := make([]scheduler.GPU, n)
	for i := range out {
		out[i].Model = model
	}
	return out
}

// tp is the placement of a task of 1000 milli-CPU and 1024 MiB on the given
// devices, taking milli on each.
func tp(task int, node string, milli int32, devs ...int) scheduler.TaskPlacement {
	return scheduler.TaskPlacement{Task: task, Node: node, GPUs: devs, GPUMilli: milli, CPUMilli: 1000, MemoryMiB: 1024}
}
