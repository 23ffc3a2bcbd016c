package state

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// TestTranscripts replays every testdata/*.txt transcript: commands in a
// compact text form, each followed by what the machine said and the state
// it left. After every command the driver also checks the invariants, that
// a rejected or no-op command left the snapshot byte for byte as it was,
// and that the command survives its encoding. Regenerate with -update.
//
// Directives (units are milli-CPU, MiB and milli-GPU):
//
//	pool name=P [kind=onprem|outposts|cloud] [region=R] [zone=Z]
//	node name=N [pool=P] [gpus=8] [model=H100] [mig=3g.40gb,...] [cpu=64000] [mem=524288] [rack=R] [zone=Z] [state=ready]
//	state node=N to=down [at=T]
//	ranks nodes=N1,N2,...
//	tenant name=T [guaranteed=M] [max=M] [weight=W]
//	submit id=J [kind=training|inference] [count=1] [gpus=1] [milli=1000] [cpu=1000] [mem=1024] [tenant=T] [prio=P] [models=M,...] [at=T]
//	plan [at=T]       then lines: "evict J [tasks=1,2] [for=K] [seen T@N:g,g ...]" and "place J T@N:g,g[~milli] ..."
//	finish job=J [tasks=0,1] [failed] [at=T]
//	cancel job=J [at=T]
//	preempt job=J [tasks=1] [for=K] [at=T]
//	prune before=T
//	restore           snapshot, restore, and go on with the restored machine
func TestTranscripts(t *testing.T) {
	for _, path := range transcripts(t) {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(path, "testdata/"), ".txt"), func(t *testing.T) {
			m := New()
			runTranscript(t, path, func(t *testing.T, c *tcase) string {
				return step(t, &m, c)
			})
		})
	}
}

// step runs one directive and renders its outcome.
func step(t *testing.T, mp **Machine, c *tcase) string {
	t.Helper()
	m := *mp
	if c.cmd == "restore" {
		before := snap(t, m)
		r, err := Restore(bytes.NewReader(before))
		require.NoError(t, err)
		require.Equal(t, string(before), string(snap(t, r)), "snapshot, restore, snapshot")
		*mp = r
		return "restored: snapshot identical"
	}
	cmd := parseCommand(t, m, c)
	wire, err := Encode(cmd)
	require.NoError(t, err)
	back, err := Decode(wire)
	require.NoError(t, err, "%s", wire)
	again, err := Encode(back)
	require.NoError(t, err)
	require.Equal(t, string(wire), string(again), "encode, decode, encode")

	before := snap(t, m)
	res, err := m.Apply(back)
	checkInvariants(t, m)
	if err != nil {
		require.Equal(t, string(before), string(snap(t, m)), "a rejected command changed the state")
		return "error: " + err.Error()
	}
	if !res.Changed {
		require.Equal(t, string(before), string(snap(t, m)), "a command that changed nothing changed the state")
		return "ok, unchanged"
	}
	require.NotEqual(t, string(before), string(snap(t, m)), "a changing command left the snapshot as it was")
	return renderResult(res) + "\n" + summary(m)
}

func snap(t *testing.T, m *Machine) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, m.Snapshot(&b))
	return b.Bytes()
}

// parseCommand turns a directive into a command.
func parseCommand(t *testing.T, m *Machine, c *tcase) Command {
	t.Helper()
	a := parseArgs(c.args)
	at := a.int(t, "at", 0)
	switch c.cmd {
	case "pool":
		kind, err := scheduler.ParsePoolKind(a.str("kind", "onprem"))
		require.NoError(t, err)
		return RegisterPool{Pool: scheduler.Pool{Name: a["name"], Kind: kind, Region: a["region"], Zone: a["zone"]}}
	case "node":
		st, err := scheduler.ParseNodeState(a.str("state", "ready"))
		require.NoError(t, err)
		n := scheduler.Node{
			Name: a["name"], Pool: a["pool"], Rack: a["rack"], State: st,
			CPUMilli: a.int(t, "cpu", 64000), MemoryMiB: a.int(t, "mem", 524288),
		}
		if z, ok := a["zone"]; ok {
			n.Labels = map[string]string{"zone": z}
		}
		model := a.str("model", "H100")
		for range a.int(t, "gpus", 0) {
			n.GPUs = append(n.GPUs, scheduler.GPU{Model: model})
		}
		for _, p := range a.list("mig") {
			n.GPUs = append(n.GPUs, scheduler.GPU{Model: model, MIG: p})
		}
		return RegisterNode{Node: n}
	case "state":
		st, err := scheduler.ParseNodeState(a["to"])
		require.NoError(t, err)
		return SetNodeState{Node: a["node"], State: st, At: at}
	case "ranks":
		return SetRanks{Nodes: a.list("nodes")}
	case "tenant":
		return SetTenant{Tenant: scheduler.Tenant{
			Name: a["name"], GuaranteedMilli: a.int(t, "guaranteed", 0), MaxMilli: a.int(t, "max", 0),
			Weight: float64(a.int(t, "weight", 0)),
		}}
	case "submit":
		kind, err := scheduler.ParseJobKind(a.str("kind", "training"))
		require.NoError(t, err)
		gpus := a.int(t, "gpus", 1)
		milli := a.int(t, "milli", 1000)
		if gpus == 0 {
			milli = 0
		}
		return Submit{Job: scheduler.Job{
			ID: a["id"], Kind: kind, Tenant: a["tenant"], Priority: int32(a.int(t, "prio", 0)),
			Count: int(a.int(t, "count", 1)), Preemptible: true,
			Task: scheduler.Task{
				GPUs: int(gpus), GPUMilli: int(milli), Models: a.list("models"),
				CPUMilli: a.int(t, "cpu", 1000), MemoryMiB: a.int(t, "mem", 1024),
			},
		}, At: at}
	case "plan":
		return parsePlan(t, m, c.input, at)
	case "finish":
		_, failed := a["failed"]
		return Finish{Job: a["job"], Tasks: a.ints(t, "tasks"), Failed: failed, At: at}
	case "cancel":
		return Cancel{Job: a["job"], At: at}
	case "preempt":
		return Preempt{Job: a["job"], Tasks: a.ints(t, "tasks"), For: a["for"], At: at}
	case "prune":
		return Prune{Before: a.int(t, "before", 0)}
	}
	t.Fatalf("line %d: unknown directive %q", c.line, c.cmd)
	return nil
}

// parsePlan reads the input lines of a plan directive. A placement
// "T@N:g,g" takes the job's CPU and memory and, on each device, the task's
// share (a MIG instance whole); "~milli" after the devices overrides it.
func parsePlan(t *testing.T, m *Machine, lines []string, at int64) ApplyPlan {
	t.Helper()
	p := ApplyPlan{At: at}
	for _, f := range words(lines) {
		require.GreaterOrEqual(t, len(f), 2, "plan line %q", strings.Join(f, " "))
		switch f[0] {
		case "evict":
			// The placements the plan saw follow the word "seen".
			rest, seen := f[2:], []string(nil)
			if i := slices.Index(rest, "seen"); i >= 0 {
				rest, seen = rest[:i], rest[i+1:]
			}
			a := parseArgs(rest)
			ev := scheduler.Eviction{Job: f[1], Tasks: a.ints(t, "tasks"), For: a["for"]}
			ji, known := m.Job(f[1])
			for _, spec := range seen {
				ev.Seen = append(ev.Seen, parseTaskPlacement(t, m, ji, known, spec))
			}
			p.Evict = append(p.Evict, ev)
		case "place":
			jp := scheduler.JobPlacement{Job: f[1]}
			ji, known := m.Job(f[1])
			for _, spec := range f[2:] {
				jp.Tasks = append(jp.Tasks, parseTaskPlacement(t, m, ji, known, spec))
			}
			p.Place = append(p.Place, jp)
		default:
			t.Fatalf("plan line %q: want evict or place", strings.Join(f, " "))
		}
	}
	return p
}

func parseTaskPlacement(t *testing.T, m *Machine, ji JobInfo, known bool, spec string) scheduler.TaskPlacement {
	t.Helper()
	task, rest, ok := strings.Cut(spec, "@")
	require.True(t, ok, "placement %q: want T@NODE[:g,g][~milli]", spec)
	rest, override, hasOverride := strings.Cut(rest, "~")
	node, devs, _ := strings.Cut(rest, ":")
	tp := scheduler.TaskPlacement{Node: node}
	_, err := fmt.Sscan(task, &tp.Task)
	require.NoError(t, err, "placement %q", spec)
	if devs != "" {
		for _, d := range strings.Split(devs, ",") {
			var g int
			_, err := fmt.Sscan(d, &g)
			require.NoError(t, err, "placement %q", spec)
			tp.GPUs = append(tp.GPUs, g)
		}
	}
	if known {
		tp.CPUMilli, tp.MemoryMiB = ji.Job.Task.CPUMilli, ji.Job.Task.MemoryMiB
		if len(tp.GPUs) > 0 {
			tp.GPUMilli = int32(ji.Job.Task.GPUMilli)
			if id, ok := m.Cluster().NodeByName(node); ok && tp.GPUMilli < scheduler.MilliPerGPU {
				if gs := m.Cluster().Node(id).GPUs; tp.GPUs[0] < len(gs) && gs[tp.GPUs[0]].MilliCap < scheduler.MilliPerGPU {
					tp.GPUMilli = gs[tp.GPUs[0]].MilliCap
				}
			}
		}
	}
	if hasOverride {
		_, err := fmt.Sscan(override, &tp.GPUMilli)
		require.NoError(t, err, "placement %q", spec)
	}
	return tp
}

func renderResult(r Result) string {
	var b strings.Builder
	b.WriteString("ok")
	for _, l := range []struct {
		name string
		ids  []string
	}{{"started", r.Started}, {"requeued", r.Requeued}, {"degraded", r.Degraded}, {"ended", r.Ended}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(&b, " %s=%s", l.name, strings.Join(l.ids, ","))
		}
	}
	return b.String()
}

// summary renders the state: each node with its free capacity, each job
// with its status and placements, the tenants.
func summary(m *Machine) string {
	var b strings.Builder
	c := m.Cluster()
	for i := range c.NumNodes() {
		id := scheduler.NodeID(i)
		n, u := c.Node(id), c.Usage(id)
		fmt.Fprintf(&b, "node %s %s cpu=%d/%d", n.Name, n.State, u.CPUFree, u.CPUCap)
		if len(u.GPUs) > 0 {
			fmt.Fprintf(&b, " gpu-free=%v", u.GPUs)
		}
		b.WriteString("\n")
	}
	pend := map[string]int{}
	for i, j := range m.Pending() {
		pend[j.ID] = i
	}
	for _, j := range m.Jobs() {
		fmt.Fprintf(&b, "job %s %s %s", j.Job.ID, j.Job.Kind, j.Status)
		if i, ok := pend[j.Job.ID]; ok {
			fmt.Fprintf(&b, " queue#%d", i)
		}
		for _, tp := range j.Tasks {
			fmt.Fprintf(&b, " %d@%s", tp.Task, tp.Node)
			if len(tp.GPUs) > 0 {
				fmt.Fprintf(&b, ":%s", joinInts(tp.GPUs))
				if tp.GPUMilli != scheduler.MilliPerGPU {
					fmt.Fprintf(&b, "~%d", tp.GPUMilli)
				}
			}
		}
		if len(j.Done) > 0 {
			fmt.Fprintf(&b, " done=%s", joinInts(j.Done))
		}
		if miss := j.Missing(); j.Status == Running && len(miss) > 0 && j.Job.Kind == scheduler.Inference {
			fmt.Fprintf(&b, " missing=%s", joinInts(miss))
		}
		if j.Started != 0 {
			fmt.Fprintf(&b, " started=%d", j.Started)
		}
		if j.Ended != 0 {
			fmt.Fprintf(&b, " ended=%d", j.Ended)
		}
		if j.Requeues != 0 {
			fmt.Fprintf(&b, " requeues=%d", j.Requeues)
		}
		b.WriteString("\n")
	}
	for _, tn := range m.Tenants() {
		fmt.Fprintf(&b, "tenant %s guaranteed=%d max=%d weight=%g\n", tn.Name, tn.GuaranteedMilli, tn.MaxMilli, tn.Weight)
	}
	fmt.Fprintf(&b, "applied=%d", m.Applied())
	return b.String()
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// checkInvariants checks what must hold after every command: the running
// placements add up, device by device, to exactly what the cluster says is
// taken and never exceed capacity; no task runs on a down or retired node;
// every job is in exactly one of pending, running and ended, the queue in
// submission order.
func checkInvariants(t *testing.T, m *Machine) {
	t.Helper()
	c := m.Cluster()
	type use struct {
		cpu, mem int64
		gpu      []int64
	}
	used := make([]use, c.NumNodes())
	for i := range used {
		used[i].gpu = make([]int64, len(c.Node(scheduler.NodeID(i)).GPUs))
	}
	running := map[string]bool{}
	for _, rj := range m.Running() {
		require.False(t, running[rj.Job.ID], "job %s listed twice as running", rj.Job.ID)
		running[rj.Job.ID] = true
		require.NotEmpty(t, rj.Tasks, "running job %s has no task", rj.Job.ID)
		require.True(t, slices.IsSortedFunc(rj.Tasks, func(a, b scheduler.TaskPlacement) int { return a.Task - b.Task }))
		for _, tp := range rj.Tasks {
			id, ok := c.NodeByName(tp.Node)
			require.True(t, ok, "job %s runs on unknown node %s", rj.Job.ID, tp.Node)
			st := c.Node(id).State
			require.True(t, st == scheduler.NodeReady || st == scheduler.NodeDraining, "job %s task %d on %s node %s", rj.Job.ID, tp.Task, st, tp.Node)
			used[id].cpu += tp.CPUMilli
			used[id].mem += tp.MemoryMiB
			for _, g := range tp.GPUs {
				used[id].gpu[g] += int64(tp.GPUMilli)
			}
		}
	}
	for i := range used {
		id := scheduler.NodeID(i)
		u, gpus := c.Usage(id), c.Node(id).GPUs
		require.Equal(t, u.CPUCap-u.CPUFree, used[i].cpu, "node %d CPU", i)
		require.Equal(t, u.MemCap-u.MemFree, used[i].mem, "node %d memory", i)
		require.LessOrEqual(t, used[i].cpu, u.CPUCap)
		require.LessOrEqual(t, used[i].mem, u.MemCap)
		sick := c.UnhealthyDevices(id)
		require.Equal(t, len(sick) > 0, u.Held != nil, "node %d withholds exactly when a device is unhealthy", i)
		for g := range gpus {
			free := u.GPUs[g]
			if slices.Contains(sick, g) {
				// An unhealthy device offers nothing; what it holds back is
				// its capacity less what runs there.
				require.Zero(t, free, "node %d unhealthy GPU %d offers capacity", i, g)
				free = u.Held[g]
			} else if u.Held != nil {
				require.Zero(t, u.Held[g], "node %d healthy GPU %d withheld", i, g)
			}
			require.Equal(t, int64(gpus[g].MilliCap-free), used[i].gpu[g], "node %d GPU %d", i, g)
			require.LessOrEqual(t, used[i].gpu[g], int64(gpus[g].MilliCap), "node %d GPU %d oversubscribed", i, g)
		}
	}
	pending := map[string]bool{}
	var lastSeq uint64
	for k, j := range m.Pending() {
		require.False(t, pending[j.ID], "job %s queued twice", j.ID)
		pending[j.ID] = true
		ji, ok := m.Job(j.ID)
		require.True(t, ok)
		require.True(t, k == 0 || ji.Seq > lastSeq, "queue out of submission order at %s", j.ID)
		lastSeq = ji.Seq
	}
	jobs := m.Jobs()
	require.Equal(t, m.NumJobs(), len(jobs))
	for _, j := range jobs {
		id := j.Job.ID
		in := 0
		for _, b := range []bool{pending[id], running[id], j.Status.Ended()} {
			if b {
				in++
			}
		}
		require.Equal(t, 1, in, "job %s (%s) is in %d of pending, running, ended", id, j.Status, in)
		require.Equal(t, j.Status == Pending, pending[id], "job %s status %s", id, j.Status)
		require.Equal(t, j.Status == Running, running[id], "job %s status %s", id, j.Status)
	}
	for id := range running {
		ji, ok := m.Job(id)
		require.True(t, ok && ji.Status == Running, "running job %s is not in the job table as running", id)
	}
}
