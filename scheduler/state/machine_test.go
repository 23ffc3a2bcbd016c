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

// sample is a small machine with work in every status, tenants and ranks
// set: the state behind the snapshot golden file and the restore tests.
func sample(t *testing.T) *Machine {
	t.Helper()
	m := fuzzMachine(t)
	for _, c := range []Command{
		SetRanks{Nodes: []string{"n2", "n1"}},
		SetTenant{Tenant: scheduler.Tenant{Name: "b", MaxMilli: 4000}},
		SetTenant{Tenant: scheduler.Tenant{Name: "a", GuaranteedMilli: 1000, Weight: 2}},
		Finish{Job: "g", Tasks: []int{1}, At: 6},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	return m
}

// TestSnapshotGolden pins the snapshot's wire form.
func TestSnapshotGolden(t *testing.T) {
	got := snap(t, sample(t))
	path := filepath.Join("testdata", "snapshot.json")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	m, err := Restore(bytes.NewReader(want))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(snap(t, m)))
	assert.Equal(t, []string{"x"}, ids(m.Pending()))
	assert.Equal(t, int32(0), m.Cluster().Rank(1), "ranks restored: n2 first")
}

func ids(js []*scheduler.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

func TestRestoreErrors(t *testing.T) {
	good := string(snap(t, sample(t)))
	// The sample's running jobs, as the snapshot writes them.
	gTask0 := `{"task":0,"node":"n1","gpus":[0],"gpu_milli":1000,"cpu_milli":1000,"memory_mib":1024}`
	require.Contains(t, good, gTask0)
	tests := []struct {
		name, old, new, want string
	}{
		{"future version", `{"v":1,`, `{"v":2,`, "field v: unsupported version 2"},
		{"not a snapshot", `"type":"snapshot"`, `"type":"submit"`, `field type: want "snapshot"`},
		{"unknown field", `"next_seq":`, `"nextseq":1,"next_seq":`, "field nextseq: unknown"},
		{"unknown job field", `"status":"pending"`, `"status":"pending","eta":3`, "field jobs[3].eta: unknown"},
		{"unknown status", `"status":"pending"`, `"status":"sleeping"`, `unknown job status "sleeping"`},
		{"node without pool", `"pool":"p","cpu_milli":8000,"memory_mib":8192,"gpus":[{"model":"H100"`, `"pool":"","cpu_milli":8000,"memory_mib":8192,"gpus":[{"model":"H100"`, "field nodes[0].pool"},
		{"unknown rank", `"ranks":["n2","n1"]`, `"ranks":["n2","n7"]`, `field ranks[1]: unknown node "n7"`},
		{"ranks not a permutation", `"ranks":["n2","n1"]`, `"ranks":["n2","n2"]`, "field ranks: ranks: not a permutation"},
		{"tenant repeated", `{"name":"b","max_milli":4000}`, `{"name":"a"}`, "field tenants[1]: tenant a repeated"},
		{"bad tenant", `"max_milli":4000`, `"max_milli":-4`, "field tenants[1]: tenant b: field max_milli"},
		{"pending job with tasks", `"status":"pending","seq":2`, `"status":"pending","seq":2,"tasks":[` + gTask0 + `]`, "field tasks: a pending job has 1 running tasks"},
		{"seq taken", `"status":"pending","seq":2`, `"status":"pending","seq":0`, "field seq: 0 is taken"},
		{"seq beyond next_seq", `"status":"pending","seq":2`, `"status":"pending","seq":9`, "not below next_seq"},
		{"gang not whole", `,"done":[1]`, ``, "a running gang of 2 has 1 running and 0 done tasks"},
		{"done task running", `,"done":[1]`, `,"done":[0]`, "field done[0]: task 0 is also running"},
		{"device given twice", `"tasks":[` + gTask0 + `],"done":[1]`, `"tasks":[` + gTask0 + `,` + strings.Replace(gTask0, `"task":0`, `"task":1`, 1) + `]`, "job g: field tasks[1]: commit on n1: GPU 0 oversubscribed"},
		{"oversubscribed", `"gpus":[2],"gpu_milli":300`, `"gpus":[0],"gpu_milli":300`, "GPU 0 oversubscribed"},
		{"wrong share", `"gpus":[2],"gpu_milli":300`, `"gpus":[2],"gpu_milli":30`, "field gpu_milli: want 300, got 30"},
		{"unsorted devices", `"gpus":[2],"gpu_milli":300`, `"gpus":[3,2],"gpu_milli":300`, "field tasks[0].gpus: want sorted devices"},
		{"task on an unknown node", `"task":1,"node":"n2"`, `"task":1,"node":"n9"`, `unknown node "n9"`},
		{"ended job with a start", `"status":"cancelled","seq":3`, `"status":"cancelled","seq":3,"started":4`, "a cancelled job has a start time"},
		{"trailing data", "}\n", "}{}\n", "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, good, tt.old, "the test's anchor")
			bad := strings.Replace(good, tt.old, tt.new, 1)
			m, err := Restore(strings.NewReader(bad))
			require.Error(t, err)
			assert.Nil(t, m)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "restore: "), err.Error())
		})
	}
}

func TestRestoreRefusesWorkOnADownNode(t *testing.T) {
	good := string(snap(t, sample(t)))
	// Mark n1 down in the snapshot while g still runs there.
	bad := strings.Replace(good, `{"name":"n1","pool":"p","cpu_milli":8000,"memory_mib":8192,"gpus":[{"model":"H100","milli_cap":1000},{"model":"H100","milli_cap":1000},{"model":"H100","milli_cap":1000},{"model":"H100","milli_cap":1000}]}`,
		`{"name":"n1","pool":"p","cpu_milli":8000,"memory_mib":8192,"gpus":[{"model":"H100","milli_cap":1000},{"model":"H100","milli_cap":1000},{"model":"H100","milli_cap":1000},{"model":"H100","milli_cap":1000}],"state":"down"}`, 1)
	require.NotEqual(t, good, bad, "the test's anchor")
	_, err := Restore(strings.NewReader(bad))
	assert.ErrorContains(t, err, "runs on n1, which is down")
}

func TestApplyTakesPointersAndRefusesNil(t *testing.T) {
	m := New()
	res, err := m.Apply(&RegisterPool{Pool: scheduler.Pool{Name: "p"}})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, uint64(1), m.Applied())
	_, err = m.Apply(nil)
	assert.ErrorContains(t, err, "nil command")
	_, err = m.Apply((*Submit)(nil))
	assert.ErrorContains(t, err, "nil *state.Submit")
	assert.Equal(t, uint64(1), m.Applied())
}

// The cluster adds its implicit default pool before it checks the rest of
// a node; the machine must not let a refused node leave it behind.
func TestRefusedNodeLeavesNoDefaultPool(t *testing.T) {
	m := New()
	_, err := m.Apply(RegisterNode{Node: scheduler.Node{Name: "n", CPUMilli: -1}})
	require.Error(t, err)
	assert.Empty(t, m.Cluster().Pools())
	res, err := m.Apply(RegisterNode{Node: scheduler.Node{Name: "n", CPUMilli: 1000}})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, "default", m.Cluster().Pools()[0].Name)
}

func TestSubmitSharesNoMemoryWithTheCaller(t *testing.T) {
	m := New()
	j := scheduler.Job{ID: "j", Count: 1, Submitted: 5, Task: scheduler.Task{
		GPUs: 1, GPUMilli: 1000, Models: []string{"H100"},
		Constraints: []scheduler.Constraint{{Key: "zone", Values: []string{"a"}}},
	}}
	_, err := m.Apply(Submit{Job: j, At: 42})
	require.NoError(t, err)
	j.Task.Models[0] = "T4"
	j.Task.Constraints[0].Values[0] = "z"
	got, ok := m.Job("j")
	require.True(t, ok)
	assert.Equal(t, []string{"H100"}, got.Job.Task.Models)
	assert.Equal(t, []string{"a"}, got.Job.Task.Constraints[0].Values)
	assert.Equal(t, int64(42), got.Job.Submitted, "Submitted is the command's time")

	got.Job.Task.Models[0] = "A100" // a copy, too
	again, _ := m.Job("j")
	assert.Equal(t, []string{"H100"}, again.Job.Task.Models)
}

func TestNoOpCommands(t *testing.T) {
	m := sample(t)
	tests := []struct {
		name string
		cmd  Command
	}{
		{"same tenant", SetTenant{Tenant: scheduler.Tenant{Name: "b", MaxMilli: 4000}}},
		{"same node state", SetNodeState{Node: "n1", State: scheduler.NodeReady, At: 9}},
		{"same ranks", SetRanks{Nodes: []string{"n2", "n1"}}},
		{"cancel an ended job", Cancel{Job: "done", At: 9}},
		{"finish an ended job", Finish{Job: "done", At: 9}},
		{"finish a done task", Finish{Job: "g", Tasks: []int{1}, At: 9}},
		{"preempt a pending job", Preempt{Job: "x", At: 9}},
		{"prune before anything ended", Prune{Before: 5}},
		{"empty plan", ApplyPlan{At: 9}},
		{"evict a pending job", ApplyPlan{Evict: []scheduler.Eviction{{Job: "x", Seen: []scheduler.TaskPlacement{tp(0, "n1", 1000, 0)}}}, At: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snap(t, m)
			res, err := m.Apply(tt.cmd)
			require.NoError(t, err)
			assert.Equal(t, Result{}, res)
			assert.Equal(t, string(before), string(snap(t, m)))
		})
	}
}

func TestRefusedCommands(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"unknown node state", SetNodeState{Node: "n1", State: 9}, "set_node_state: node n1: field state: unknown node state 9"},
		{"unknown node", SetNodeState{Node: "n9", State: scheduler.NodeDown}, `field node: unknown node "n9"`},
		{"ranks of some nodes", SetRanks{Nodes: []string{"n1"}}, "field nodes: ranks: want a permutation of 2 nodes, got 1"},
		{"ranks of an unknown node", SetRanks{Nodes: []string{"n1", "n3"}}, `field nodes[1]: unknown node "n3"`},
		{"bad tenant", SetTenant{Tenant: scheduler.Tenant{Name: "t", Weight: -1}}, "tenant t: field weight"},
		{"bad constraint", Submit{Job: scheduler.Job{ID: "c", Count: 1, Task: scheduler.Task{Constraints: []scheduler.Constraint{{Key: ""}}}}}, "job c: field task: constraint: field key"},
		{"duplicate pool", RegisterPool{Pool: scheduler.Pool{Name: "p"}}, "pool p: already registered"},
		{"finish task out of range", Finish{Job: "s", Tasks: []int{2}}, "job s: field tasks[0]: task 2 out of range 0..1"},
		{"finish task repeated", Finish{Job: "s", Tasks: []int{0, 0}}, "field tasks[1]: task 0 repeated"},
		{"cancel unknown", Cancel{Job: "zz"}, `cancel: field job: unknown job "zz"`},
		{"place a done task", ApplyPlan{Place: []scheduler.JobPlacement{{Job: "g", Tasks: []scheduler.TaskPlacement{tp(1, "n1", 1000, 3)}}}}, "field task: the task is done"},
		{"place a job twice", ApplyPlan{Place: []scheduler.JobPlacement{{Job: "x", Tasks: []scheduler.TaskPlacement{tp(0, "n1", 300, 3)}}, {Job: "x", Tasks: []scheduler.TaskPlacement{tp(0, "n1", 300, 3)}}}}, "field place[1].job: job x placed twice in one plan"},
		{"place no task", ApplyPlan{Place: []scheduler.JobPlacement{{Job: "x"}}}, "field place[0].tasks: job x: no tasks"},
		{"place a task twice", ApplyPlan{Place: []scheduler.JobPlacement{{Job: "s", Tasks: []scheduler.TaskPlacement{tp(1, "n1", 300, 3), tp(1, "n1", 300, 3)}}}}, "task 1 placed twice"},
		{"memory not the task's", ApplyPlan{Place: []scheduler.JobPlacement{{Job: "x", Tasks: []scheduler.TaskPlacement{{Node: "n1", GPUs: []int{3}, GPUMilli: 300, CPUMilli: 1000, MemoryMiB: 4096}}}}}, "field memory_mib: want the task's 1024, got 4096"},
		{"CPU-only task given a share", ApplyPlan{Place: []scheduler.JobPlacement{{Job: "cpu", Tasks: []scheduler.TaskPlacement{{Node: "n1", GPUMilli: 5, CPUMilli: 1000}}}}}, "field gpu_milli: want 0 for a CPU-only task, got 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sample(t)
			_, err := m.Apply(Submit{Job: scheduler.Job{ID: "cpu", Count: 1, Task: scheduler.Task{CPUMilli: 1000}}, At: 7})
			require.NoError(t, err)
			before, applied := snap(t, m), m.Applied()
			res, err := m.Apply(tt.cmd)
			require.Error(t, err)
			assert.Equal(t, Result{}, res)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, string(before), string(snap(t, m)))
			assert.Equal(t, applied, m.Applied())
		})
	}
}

func TestAccessorsOrderAndResults(t *testing.T) {
	m := New()
	for _, c := range []Command{
		RegisterNode{Node: scheduler.Node{Name: "n1", CPUMilli: 8000, MemoryMiB: 8192, GPUs: gpus("H100", 4)}},
		Submit{Job: scheduler.Job{ID: "z", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: 1},
		Submit{Job: scheduler.Job{ID: "y", Kind: scheduler.Inference, Count: 2, Task: scheduler.Task{GPUs: 1, GPUMilli: 500}}, At: 2},
		Submit{Job: scheduler.Job{ID: "x", Count: 1, Task: scheduler.Task{GPUs: 1, GPUMilli: 1000}}, At: 3},
		SetTenant{Tenant: scheduler.Tenant{Name: "t2"}},
		SetTenant{Tenant: scheduler.Tenant{Name: "t1"}},
	} {
		_, err := m.Apply(c)
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"z", "y", "x"}, ids(m.Pending()), "pending in submission order")
	res, err := m.Apply(ApplyPlan{Place: []scheduler.JobPlacement{
		{Job: "z", Tasks: []scheduler.TaskPlacement{{Node: "n1", GPUs: []int{0}, GPUMilli: 1000}}},
		{Job: "y", Tasks: []scheduler.TaskPlacement{{Task: 1, Node: "n1", GPUs: []int{1}, GPUMilli: 500}}},
	}, At: 10})
	require.NoError(t, err)
	assert.Equal(t, Result{Changed: true, Started: []string{"y", "z"}}, res)
	var running []string
	for _, rj := range m.Running() {
		running = append(running, rj.Job.ID)
	}
	assert.Equal(t, []string{"y", "z"}, running, "running sorted by id")
	y, _ := m.Job("y")
	assert.Equal(t, []int{0}, y.Missing(), "a service placed in part misses the rest")

	res, err = m.Apply(SetNodeState{Node: "n1", State: scheduler.NodeDown, At: 20})
	require.NoError(t, err)
	assert.Equal(t, Result{Changed: true, Requeued: []string{"y", "z"}}, res)
	assert.Equal(t, []string{"z", "y", "x"}, ids(m.Pending()), "requeued jobs back at their places")
	assert.Empty(t, m.Running())
	assert.Equal(t, []string{"t1", "t2"}, []string{m.Tenants()[0].Name, m.Tenants()[1].Name})
	tn, ok := m.Tenant("t2")
	assert.True(t, ok)
	assert.Equal(t, "t2", tn.Name)
	assert.Equal(t, "applied 8, 1 nodes, 3 pending, 0 running, 3 jobs", m.String())
}

func TestJobStatusText(t *testing.T) {
	for s := Pending; s <= Cancelled; s++ {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back JobStatus
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, s, back)
		assert.Equal(t, string(b), s.String())
		assert.Equal(t, s >= Succeeded, s.Ended())
	}
	_, err := JobStatus(9).MarshalText()
	assert.ErrorContains(t, err, "job status 9: unknown")
	assert.Equal(t, "JobStatus(9)", JobStatus(9).String())
	var s JobStatus
	assert.ErrorContains(t, s.UnmarshalText([]byte("Running")), `unknown job status "Running"`)
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name  string
		count int
		live  []int
		done  []int
		want  []int
	}{
		{"all missing", 3, nil, nil, []int{0, 1, 2}},
		{"none missing", 2, []int{0, 1}, nil, nil},
		{"done are not missing", 4, []int{1}, []int{0, 3}, []int{2}},
		{"gaps", 5, []int{0, 4}, nil, []int{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ji := JobInfo{Job: scheduler.Job{Count: tt.count}, Done: tt.done}
			for _, l := range tt.live {
				ji.Tasks = append(ji.Tasks, scheduler.TaskPlacement{Task: l})
			}
			assert.Equal(t, tt.want, ji.Missing())
		})
	}
}
