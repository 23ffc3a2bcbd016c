package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"petite/scheduler"
)

// gen draws random commands against a machine: mostly sensible ones (plans
// made by the real placement core on a copy of the state), and some broken
// ones (plans onto random devices, unknown names) that the machine must
// refuse without a trace.
type gen struct {
	rng  *rand.Rand
	m    *Machine
	next int   // next job number
	now  int64 // the driver's clock
	// last is the last plan drawn, to apply again; stale is a plan drawn
	// from the same state as another, applied after it (a stale plan).
	last, stale *ApplyPlan
}

// fleet registers a small mixed fleet: whole-GPU nodes of two models, a
// MIG node, a CPU-only node, over two pools and two zones.
func (g *gen) fleet() []Command {
	cmds := []Command{
		RegisterPool{Pool: scheduler.Pool{Name: "own", Region: "eu", Zone: "eu-1"}},
		RegisterPool{Pool: scheduler.Pool{Name: "cloud", Kind: scheduler.PoolCloud, Region: "eu", Zone: "eu-2", PricePerGPUHour: 3}},
	}
	for i := range 7 {
		n := scheduler.Node{Name: fmt.Sprintf("n%d", i), Pool: []string{"own", "cloud"}[i%2], Rack: fmt.Sprintf("r%d", i/3), CPUMilli: 32000, MemoryMiB: 65536}
		switch i {
		case 5:
			for _, p := range []string{"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"} {
				n.GPUs = append(n.GPUs, scheduler.GPU{Model: "A100", MIG: p})
			}
		case 6:
		default:
			n.GPUs = gpus([]string{"H100", "A100"}[i%2], []int{4, 8}[i%2])
		}
		cmds = append(cmds, RegisterNode{Node: n})
	}
	return cmds
}

// command draws the next command.
func (g *gen) command() Command {
	g.now += int64(g.rng.IntN(10))
	switch k := g.rng.IntN(100); {
	case k < 25:
		return g.submit()
	case k < 50:
		if p, ok := g.plan(); ok {
			return p
		}
		return g.submit()
	case k < 55:
		if g.last != nil {
			return *g.last
		}
		return g.brokenPlan()
	case k < 60 && g.stale != nil:
		p := *g.stale
		g.stale = nil
		return p
	case k < 63:
		return g.brokenPlan()
	case k < 73:
		return g.finish()
	case k < 78:
		return Cancel{Job: g.someJob(), At: g.now}
	case k < 84:
		return g.preempt()
	case k < 91:
		st := []scheduler.NodeState{scheduler.NodeReady, scheduler.NodeReady, scheduler.NodeDraining, scheduler.NodeDown, scheduler.NodeRetired}
		return SetNodeState{Node: g.someNode(), State: st[g.rng.IntN(len(st))], At: g.now}
	case k < 93:
		names := make([]string, g.m.Cluster().NumNodes())
		for i := range names {
			names[i] = g.m.Cluster().Node(scheduler.NodeID(i)).Name
		}
		g.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		return SetRanks{Nodes: names}
	case k < 95:
		return Prune{Before: g.now - int64(g.rng.IntN(50))}
	case k < 98:
		return g.deviceHealth()
	default:
		return SetTenant{Tenant: scheduler.Tenant{Name: []string{"a", "b"}[g.rng.IntN(2)], MaxMilli: int64(g.rng.IntN(5)) * 4000}}
	}
}

// deviceHealth marks a few devices of a node unhealthy or healthy again,
// sometimes naming a device the node does not have (refused).
func (g *gen) deviceHealth() Command {
	name := g.someNode()
	n := 0
	if id, ok := g.m.Cluster().NodeByName(name); ok {
		n = len(g.m.Cluster().Node(id).GPUs)
	}
	var devs []int
	for range 1 + g.rng.IntN(2) {
		devs = append(devs, g.rng.IntN(n+1)) // n: no such device
	}
	return SetDeviceHealth{Node: name, Devices: devs, Healthy: g.rng.IntN(2) == 0, At: g.now}
}

// unhealthyPlacement returns an error if a plan places a task on a device
// that is unhealthy in m.
func unhealthyPlacement(m *Machine, p ApplyPlan) error {
	c := m.Cluster()
	for _, jp := range p.Place {
		for _, tp := range jp.Tasks {
			id, ok := c.NodeByName(tp.Node)
			if !ok {
				continue
			}
			for _, d := range tp.GPUs {
				if slices.Contains(c.UnhealthyDevices(id), d) {
					return fmt.Errorf("job %s task %d placed on unhealthy GPU %d of %s", jp.Job, tp.Task, d, tp.Node)
				}
			}
		}
	}
	return nil
}

func (g *gen) submit() Command {
	g.next++
	j := scheduler.Job{ID: fmt.Sprintf("j%d", g.next), Count: 1 + g.rng.IntN(3), Tenant: []string{"a", "b"}[g.rng.IntN(2)]}
	j.Task.CPUMilli, j.Task.MemoryMiB = int64(1+g.rng.IntN(8))*1000, int64(1+g.rng.IntN(8))*1024
	switch g.rng.IntN(4) {
	case 0:
		j.Kind = scheduler.Inference
		j.Task.GPUs, j.Task.GPUMilli = 1, []int{250, 500, 1000}[g.rng.IntN(3)]
	case 1:
		j.Task.GPUs, j.Task.GPUMilli = []int{1, 2, 4, 8}[g.rng.IntN(4)], 1000
	case 2:
		j.Kind = scheduler.Inference
		j.Task.GPUs, j.Task.GPUMilli = 1, 1000
		j.Task.Models = []string{"H100"}
	default:
		j.Task.GPUs, j.Task.GPUMilli = 0, 0
	}
	if g.rng.IntN(20) == 0 {
		j.Count = 0 // refused
	}
	return Submit{Job: j, At: g.now}
}

// plan places a few pending jobs and the missing replicas of running
// services with the real placement core, on a copy of the state restored
// from a snapshot (what a what-if does); sometimes it evicts a running job
// first.
func (g *gen) plan() (ApplyPlan, bool) {
	var b bytes.Buffer
	if err := g.m.Snapshot(&b); err != nil {
		panic(err)
	}
	if g.rng.IntN(3) == 0 {
		// A second planner works from the same state, on the queue taken
		// the other way round; its plan goes in later, stale.
		cp, err := Restore(bytes.NewReader(b.Bytes()))
		if err != nil {
			panic(err)
		}
		pend := g.m.Pending()
		slices.Reverse(pend)
		if p, ok := g.planOn(cp, pend); ok {
			g.stale = &p
		}
	}
	cp, err := Restore(&b)
	if err != nil {
		panic(err)
	}
	p, ok := g.planOn(cp, g.m.Pending())
	if ok {
		g.last = &p
	}
	return p, ok
}

// planOn makes a plan on cp, a copy of the machine's state, for the
// pending jobs in the order given.
func (g *gen) planOn(cp *Machine, pending []*scheduler.Job) (ApplyPlan, bool) {
	c := cp.Cluster().Clone()
	pol, err := scheduler.NewPolicy(c, []string{"best-fit", "spread", "first-fit"}[g.rng.IntN(3)], scheduler.Options{})
	if err != nil {
		panic(err)
	}
	p := ApplyPlan{At: g.now}
	placed := map[string]bool{}
	if run := g.m.Running(); len(run) > 0 && g.rng.IntN(3) == 0 {
		rj := run[g.rng.IntN(len(run))]
		ev := scheduler.Eviction{Job: rj.Job.ID, Seen: slices.Clone(rj.Tasks)}
		if rj.Job.Kind == scheduler.Inference && g.rng.IntN(2) == 0 {
			k := g.rng.IntN(len(rj.Tasks))
			ev.Tasks, ev.Seen = []int{rj.Tasks[k].Task}, slices.Clone(rj.Tasks[k:k+1])
		}
		p.Evict = append(p.Evict, ev)
		placed[rj.Job.ID] = true // not placed again in this plan
	}
	for _, rj := range g.m.Running() {
		ji, _ := g.m.Job(rj.Job.ID)
		miss := ji.Missing()
		if rj.Job.Kind != scheduler.Inference || len(miss) == 0 || placed[rj.Job.ID] {
			continue
		}
		s, err := c.ShapeOf(&rj.Job.Task)
		if err != nil {
			panic(err)
		}
		jp := scheduler.JobPlacement{Job: rj.Job.ID}
		for _, t := range miss {
			if a, ok := c.PlaceTask(pol, &s, g.rng); ok {
				jp.Tasks = append(jp.Tasks, c.Placement(t, a))
			}
		}
		if len(jp.Tasks) > 0 {
			p.Place = append(p.Place, jp)
			placed[rj.Job.ID] = true
		}
	}
	for _, j := range pending {
		if len(p.Place) >= 3 || placed[j.ID] {
			break
		}
		as, ok, err := c.PlaceJob(pol, j, g.rng, nil)
		if err != nil {
			panic(err)
		}
		if !ok {
			continue
		}
		jp := scheduler.JobPlacement{Job: j.ID}
		for k, a := range as {
			jp.Tasks = append(jp.Tasks, c.Placement(k, a))
		}
		p.Place = append(p.Place, jp)
	}
	if err := unhealthyPlacement(cp, p); err != nil {
		panic(err) // the placement core gave an unhealthy device
	}
	return p, len(p.Place) > 0 || len(p.Evict) > 0
}

// partialGang makes a plan for a pending training gang of two or more
// tasks with the real placement core, on a copy of the state, and drops
// one of its tasks (and sometimes adds a task the gang does not have).
func (g *gen) partialGang() (ApplyPlan, bool) {
	var b bytes.Buffer
	if err := g.m.Snapshot(&b); err != nil {
		panic(err)
	}
	cp, err := Restore(&b)
	if err != nil {
		panic(err)
	}
	c := cp.Cluster().Clone()
	pol, err := scheduler.NewPolicy(c, "first-fit", scheduler.Options{})
	if err != nil {
		panic(err)
	}
	for _, j := range g.m.Pending() {
		if j.Kind != scheduler.Training || j.Count < 2 {
			continue
		}
		as, ok, err := c.PlaceJob(pol, j, g.rng, nil)
		if err != nil {
			panic(err)
		}
		if !ok {
			continue
		}
		jp := scheduler.JobPlacement{Job: j.ID}
		for k, a := range as {
			jp.Tasks = append(jp.Tasks, c.Placement(k, a))
		}
		drop := g.rng.IntN(len(jp.Tasks))
		jp.Tasks = slices.Delete(jp.Tasks, drop, drop+1)
		if g.rng.IntN(3) == 0 {
			extra := jp.Tasks[0]
			extra.Task = j.Count // beyond the gang
			jp.Tasks = append(jp.Tasks, extra)
		}
		return ApplyPlan{Place: []scheduler.JobPlacement{jp}, At: g.now}, true
	}
	return ApplyPlan{}, false
}

// checkGangs checks the gang invariant of the job table: a running
// training gang holds every task 0..Count-1 exactly once, running or done;
// a job that does not run holds no task.
func checkGangs(t *testing.T, m *Machine) {
	t.Helper()
	for _, ji := range m.Jobs() {
		running := slices.ContainsFunc(m.Running(), func(rj *scheduler.RunningJob) bool { return rj.Job.ID == ji.Job.ID })
		if !running {
			require.Empty(t, ji.Tasks, "job %s (%s) holds tasks without running", ji.Job.ID, ji.Status)
			continue
		}
		if ji.Job.Kind != scheduler.Training {
			continue
		}
		var all []int
		for _, tp := range ji.Tasks {
			all = append(all, tp.Task)
		}
		all = append(all, ji.Done...)
		slices.Sort(all)
		want := make([]int, ji.Job.Count)
		for i := range want {
			want[i] = i
		}
		require.Equal(t, want, all, "gang %s runs in part: tasks %v, done %v", ji.Job.ID, ji.Tasks, ji.Done)
	}
}

// brokenPlan places a random job on random devices: usually refused.
func (g *gen) brokenPlan() Command {
	id := g.someJob()
	ji, ok := g.m.Job(id)
	count, milli, cpu, mem := 1, int32(1000), int64(1000), int64(1024)
	ng := 1
	if ok {
		count, milli, cpu, mem = ji.Job.Count, int32(ji.Job.Task.GPUMilli), ji.Job.Task.CPUMilli, ji.Job.Task.MemoryMiB
		ng = ji.Job.Task.GPUs
	}
	jp := scheduler.JobPlacement{Job: id}
	for t := range count {
		tp := scheduler.TaskPlacement{Task: t, Node: g.someNode(), GPUMilli: milli, CPUMilli: cpu, MemoryMiB: mem}
		devs := 9 // sometimes a device the node lacks
		if id, ok := g.m.Cluster().NodeByName(tp.Node); ok && g.rng.IntN(8) > 0 {
			devs = max(1, len(g.m.Cluster().Node(id).GPUs))
		}
		for range ng {
			tp.GPUs = append(tp.GPUs, g.rng.IntN(devs))
		}
		if ng == 0 {
			tp.GPUMilli = 0
		}
		jp.Tasks = append(jp.Tasks, tp)
	}
	return ApplyPlan{Place: []scheduler.JobPlacement{jp}, At: g.now}
}

func (g *gen) finish() Command {
	f := Finish{Job: g.someJob(), Failed: g.rng.IntN(5) == 0, At: g.now}
	if ji, ok := g.m.Job(f.Job); ok && len(ji.Tasks) > 0 && g.rng.IntN(2) == 0 {
		f.Tasks = []int{ji.Tasks[g.rng.IntN(len(ji.Tasks))].Task}
	}
	return f
}

func (g *gen) preempt() Command {
	p := Preempt{Job: g.someJob(), At: g.now}
	if ji, ok := g.m.Job(p.Job); ok && ji.Job.Kind == scheduler.Inference && len(ji.Tasks) > 0 {
		p.Tasks = []int{ji.Tasks[g.rng.IntN(len(ji.Tasks))].Task}
	}
	return p
}

// someJob names a job: usually a running or pending one, sometimes any id
// ever drawn or one never submitted.
func (g *gen) someJob() string {
	if run := g.m.Running(); len(run) > 0 && g.rng.IntN(2) == 0 {
		return run[g.rng.IntN(len(run))].Job.ID
	}
	if pend := g.m.Pending(); len(pend) > 0 && g.rng.IntN(2) == 0 {
		return pend[g.rng.IntN(len(pend))].ID
	}
	return fmt.Sprintf("j%d", g.rng.IntN(g.next+2))
}

func (g *gen) someNode() string {
	if g.rng.IntN(30) == 0 {
		return "ghost"
	}
	return fmt.Sprintf("n%d", g.rng.IntN(g.m.Cluster().NumNodes()))
}

// TestRandomCommands applies seeded random command sequences and checks,
// after every command: the invariants (capacity never exceeded and equal
// to the running placements, every job in exactly one of pending, running
// and ended); that refused and no-op commands leave the snapshot byte for
// byte; that a plan applied twice changes nothing the second time; that
// jobs disappear only by Prune. Every so often the machine is replaced by
// its own snapshot restored, which must snapshot identically. At the end a
// second machine fed the encoded commands must give the same results and
// the same snapshot.
func TestRandomCommands(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 100
	}
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			g := &gen{rng: rand.New(rand.NewPCG(seed, 0xC0FFEE)), m: New()}
			var wire [][]byte
			var results []string
			apply := func(cmd Command) error {
				enc, err := Encode(cmd)
				require.NoError(t, err)
				wire = append(wire, enc)
				before := snap(t, g.m)
				jobsBefore := g.m.Jobs()
				res, err := g.m.Apply(cmd)
				checkInvariants(t, g.m)
				after := snap(t, g.m)
				results = append(results, fmt.Sprint(res, err))
				if err != nil || !res.Changed {
					require.Equal(t, string(before), string(after), "refused or no-op %s changed the state (%v)", cmd.Type(), err)
				}
				if err == nil && cmd.Type() == TypeApplyPlan {
					res2, err := g.m.Apply(cmd)
					require.NoError(t, err, "a plan applied once is accepted again")
					require.False(t, res2.Changed, "a plan applied twice changed something")
					require.Equal(t, string(after), string(snap(t, g.m)), "a plan applied twice")
					wire = append(wire, wire[len(wire)-1])
					results = append(results, fmt.Sprint(res2, nil))
				}
				checkOnlyPruneForgets(t, cmd, jobsBefore, g.m)
				checkGangs(t, g.m)
				return err
			}
			for _, c := range g.fleet() {
				apply(c)
			}
			partial := 0
			for i := range steps {
				if i%10 == 5 {
					// A real plan with one task of a gang dropped: refused whole.
					if p, ok := g.partialGang(); ok {
						require.Error(t, apply(p), "a plan placing part of a gang was accepted")
						partial++
					}
				}
				apply(g.command())
				if i%50 == 49 {
					b := snap(t, g.m)
					r, err := Restore(bytes.NewReader(b))
					require.NoError(t, err)
					require.Equal(t, string(b), string(snap(t, r)), "snapshot, restore, snapshot")
					checkInvariants(t, r)
					g.m = r
				}
			}
			// Some work must have happened for the test to mean anything.
			require.Greater(t, g.m.Applied(), uint64(steps/4))
			require.Positive(t, partial, "partial gang plans tried")

			replay := New()
			for i, enc := range wire {
				cmd, err := Decode(enc)
				require.NoError(t, err)
				res, err := replay.Apply(cmd)
				require.Equal(t, results[i], fmt.Sprint(res, err), "command %d: %s", i, enc)
			}
			require.Equal(t, string(snap(t, g.m)), string(snap(t, replay)), "two machines fed the same commands")
		})
	}
}

// checkOnlyPruneForgets checks that a job leaves the table only by a
// Prune, and only once ended before its time.
func checkOnlyPruneForgets(t *testing.T, cmd Command, before []JobInfo, m *Machine) {
	t.Helper()
	for _, j := range before {
		if _, ok := m.Job(j.Job.ID); ok {
			continue
		}
		p, isPrune := cmd.(Prune)
		require.True(t, isPrune, "job %s vanished on %s", j.Job.ID, cmd.Type())
		require.True(t, j.Status.Ended() && j.Ended < p.Before, "job %s pruned while %s (ended %d, before %d)", j.Job.ID, j.Status, j.Ended, p.Before)
	}
	for _, j := range m.Jobs() {
		if !slices.ContainsFunc(before, func(b JobInfo) bool { return b.Job.ID == j.Job.ID }) {
			s, isSubmit := cmd.(Submit)
			require.True(t, isSubmit && s.Job.ID == j.Job.ID, "job %s appeared on %s", j.Job.ID, cmd.Type())
		}
	}
}
