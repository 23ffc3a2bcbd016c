package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// setupDump writes a pass's set-up in a canonical form: the running jobs
// by id, the tenants by name (best-effort tenants that hold and queue
// nothing left out: a from-scratch ledger only has those the lists name),
// each with its queue, and the ready capacity and free amounts.
func setupDump(s *pass) string {
	var b strings.Builder
	live := slices.Clone(s.live[:s.nRun])
	slices.SortFunc(live, func(a, b *liveJob) int { return strings.Compare(a.job.ID, b.job.ID) })
	for _, lj := range live {
		fmt.Fprintf(&b, "run %s tenant=%s started=%d end=%d running=%v alive=%d/%d touched=%v tasks=%v alive=%v assigns=%v\n",
			lj.job.ID, s.l.tenants[lj.tenant].Name, lj.started, lj.end, lj.running, lj.nAlive, lj.nInput,
			lj.touched, lj.tasks, lj.alive, lj.assigns)
	}
	ts := slices.Clone(s.l.tenants)
	slices.SortFunc(ts, func(a, b tenantState) int { return strings.Compare(a.Name, b.Name) })
	given := map[string]bool{}
	for _, t := range s.in.Tenants {
		given[t.Name] = true
	}
	if s.st != nil {
		for _, t := range s.st.given {
			given[t.Name] = true
		}
	}
	for _, t := range ts {
		if !given[t.Name] && t.used == (amount{}) && len(t.queue) == 0 {
			continue
		}
		var q []string
		for _, j := range t.queue {
			q = append(q, j.ID)
		}
		fmt.Fprintf(&b, "tenant %+v weight=%g used=%+v pos=%d out=%d nonnil=%d queue=%v\n",
			t.Tenant, t.weight, t.used, t.pos, len(t.out), len(t.out)-strings.Count(fmt.Sprint(t.out), "nil"), q)
	}
	fmt.Fprintf(&b, "cap=%+v free=%+v\n", s.l.cap, s.l.free)
	return b.String()
}

// stModel is what a driver knows of its jobs: the lists a Pass takes.
type stModel struct {
	c       *Cluster
	st      *Standing
	tenants []Tenant
	pending map[string]*Job
	running map[string]*RunningJob
	assigns map[string][]Assign // committed to the cluster, per running job
	next    int
	// ownTenants gives each job a tenant of its own.
	ownTenants bool
	// refs, when not nil, drives the Standing by reference (RunByRef,
	// StopRef), as the state machine's frozen copy does, not by id.
	refs map[string]RunRef
	// trusted: the Standing trusts the driver (NewTrustedStanding), which
	// then keeps its promise: no running task the cluster does not hold.
	trusted bool
}

// run tells the Standing of a running job, in place of what it knew of it;
// as nil leaves the assignments to it.
func (m *stModel) run(rj *RunningJob, as []Assign) {
	switch {
	case m.refs != nil:
		m.st.StopRef(m.refs[rj.Job.ID])
		m.refs[rj.Job.ID] = m.st.RunByRef(m.c, rj, as)
	case as != nil:
		m.st.RunAssigned(m.c, rj, as)
	default:
		m.st.Run(m.c, rj)
	}
}

// stop tells the Standing that a job stopped running.
func (m *stModel) stop(id string) {
	if m.refs != nil {
		m.st.StopRef(m.refs[id])
		delete(m.refs, id)
		return
	}
	m.st.Stop(id)
}

func (m *stModel) lists() (pending []*Job, running []*RunningJob) {
	for _, j := range m.pending {
		pending = append(pending, j)
	}
	slices.SortFunc(pending, func(a, b *Job) int { return strings.Compare(a.ID, b.ID) })
	for _, rj := range m.running {
		running = append(running, rj)
	}
	slices.SortFunc(running, func(a, b *RunningJob) int { return strings.Compare(a.Job.ID, b.Job.ID) })
	return pending, running
}

// TestStandingMatchesScratch is the differential test of the kept set-up:
// random sequences of submissions, starts, finishes, lost replicas, node
// state changes, tenant changes, and tasks the cluster does not hold, each
// told to a Standing as a driver would, and after each step the set-up
// ScheduleStanding would run on is compared with the one Schedule builds
// from the same lists; every few steps both run a whole pass (preemption
// and backfill on) and must give the same plan, and the pass on the kept
// set-up must leave it as it was. Seeds from 12 on drive a trusted set-up
// (no held sums, no held check) as a driver that keeps its promise.
func TestStandingMatchesScratch(t *testing.T) {
	for seed := range uint64(18) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			pools, nodes := randomFleet(rng, 6+rng.IntN(10))
			c, err := NewCluster(pools, nodes)
			require.NoError(t, err)
			pol, err := NewPolicy(c, []string{"best-fit", "fgd", "topology"}[seed%3], Options{})
			require.NoError(t, err)
			m := &stModel{c: c, st: NewStanding(), pending: map[string]*Job{}, running: map[string]*RunningJob{}, assigns: map[string][]Assign{},
				ownTenants: seed >= 8 && seed < 15, trusted: seed >= 12}
			if m.trusted {
				m.st = NewTrustedStanding()
			}
			if seed%2 == 1 {
				m.refs = map[string]RunRef{}
			}
			phantom := ""
			var stats [4]int
			defer func() {
				t.Logf("passes %d, placed %d, evicted %d, refused %d, rebuilds %d", stats[0], stats[1], stats[2], stats[3], m.st.rebuilds)
			}()
			for step := range 400 {
				m.step(t, rng, pol, &phantom)
				pending, running := m.lists()
				in := Pass{Now: int64(step), Policy: pol, Rng: rand.New(rand.NewPCG(seed, uint64(step))),
					Pending: pending, Running: running, Tenants: m.tenants, Preempt: step%2 == 0, Backfill: step%3 == 0}
				scratch, errS := c.newPass(&in)
				kin := in
				kin.Pending, kin.Running, kin.Tenants = nil, nil, nil
				kept, errK := c.passFrom(&kin, m.st)
				if errS != nil || errK != nil {
					require.Error(t, errS, "step %d: the kept set-up refused what the scratch one took: %v", step, errK)
					require.Error(t, errK, "step %d: the kept set-up took what the scratch one refused: %v", step, errS)
					require.NotEmpty(t, phantom, "step %d: refused without a phantom task: %v", step, errS)
					require.Equal(t, errS.Error(), errK.Error(), "step %d", step)
					stats[3]++
					continue
				}
				require.Equal(t, setupDump(scratch), setupDump(kept), "step %d", step)
				kept.restore()
				if step%4 != 0 {
					continue
				}
				before := setupDump(kept)
				want, err := c.Schedule(in)
				require.NoError(t, err)
				kin.Rng = rand.New(rand.NewPCG(seed, uint64(step)))
				got, err := c.ScheduleStanding(kin, m.st)
				require.NoError(t, err)
				require.Equal(t, want, got, "step %d", step)
				again, err := c.passFrom(&kin, m.st)
				require.NoError(t, err)
				require.Equal(t, before, setupDump(again), "step %d: the pass left the set-up changed", step)
				again.restore()
				m.apply(t, got)
				stats[0]++
				stats[1] += len(got.Place)
				stats[2] += len(got.Evict)
			}
		})
	}
}

// step makes one random change and tells the Standing.
func (m *stModel) step(t *testing.T, rng *rand.Rand, pol *Policy, phantom *string) {
	t.Helper()
	c, st := m.c, m.st
	if *phantom != "" {
		// Take the phantom job back: the set-up is consistent again.
		delete(m.running, *phantom)
		m.stop(*phantom)
		*phantom = ""
	}
	switch k := rng.IntN(20); {
	case k < 6: // submit
		m.next++
		kind := Training
		count := 1 + rng.IntN(2)
		if rng.IntN(3) == 0 {
			kind, count = Inference, 1+rng.IntN(3)
		}
		tenant := fmt.Sprintf("t%d", rng.IntN(4))
		if m.ownTenants {
			tenant = fmt.Sprintf("own-%d", m.next) // a tenant per job, as fifo-skip makes
		}
		j := &Job{ID: fmt.Sprintf("j%03d", m.next), Kind: kind, Tenant: tenant,
			Priority: int32(rng.IntN(3)), Count: count, Task: randomTask(rng), Preemptible: rng.IntN(2) == 0,
			Submitted: int64(rng.IntN(50)), Walltime: int64(rng.IntN(100))}
		m.pending[j.ID] = j
		st.Queue(c, j)
	case k < 10: // start a queued job where the policy puts it
		for _, j := range m.sortedPending() {
			as, ok, err := c.PlaceJob(pol, j, rng, nil)
			require.NoError(t, err)
			if !ok {
				continue
			}
			rj := &RunningJob{Job: j, Started: int64(rng.IntN(50))}
			for k, a := range as {
				rj.Tasks = append(rj.Tasks, c.Placement(k, a))
			}
			delete(m.pending, j.ID)
			st.Unqueue(j)
			m.running[j.ID], m.assigns[j.ID] = rj, as
			if rng.IntN(2) == 0 {
				m.run(rj, as) // as the state machine hands them over
			} else {
				m.run(rj, nil)
			}
			break
		}
	case k < 13, m.ownTenants && k < 17: // finish a running job, or requeue it
		if id := m.anyRunning(rng); id != "" {
			for _, a := range m.assigns[id] {
				require.NoError(t, c.Release(a))
			}
			j := m.running[id].Job
			delete(m.running, id)
			delete(m.assigns, id)
			m.stop(id)
			if !m.ownTenants && rng.IntN(2) == 0 {
				m.pending[id] = j
				st.Queue(c, j)
			}
		}
	case k < 15: // a replica lost
		if id := m.anyRunning(rng); id != "" && len(m.running[id].Tasks) > 1 {
			rj := m.running[id]
			require.NoError(t, c.Release(m.assigns[id][0]))
			m.assigns[id] = slices.Clone(m.assigns[id][1:])
			m.running[id] = &RunningJob{Job: rj.Job, Tasks: slices.Clone(rj.Tasks[1:]), Started: rj.Started}
			m.run(m.running[id], nil)
		}
	case k < 17: // a node changes state (its tasks stay: the test is of the set-up)
		c.SetState(NodeID(rng.IntN(c.NumNodes())), []NodeState{NodeReady, NodeReady, NodeDraining, NodeDown}[rng.IntN(4)])
	case k < 18 && !m.ownTenants: // the tenants change (a rebuild of their own for ownTenants)
		m.tenants = nil
		for i := range 4 {
			if rng.IntN(2) == 0 {
				m.tenants = append(m.tenants, Tenant{Name: fmt.Sprintf("t%d", i), GuaranteedMilli: int64(500 * rng.IntN(4)),
					Weight: float64(rng.IntN(3))})
			}
		}
		st.SetTenants(m.tenants)
	case m.trusted: // the driver keeps its promise: no phantom
	default: // a running job with a task the cluster does not hold
		n := nodes(c)[rng.IntN(c.NumNodes())]
		m.next++
		j := &Job{ID: fmt.Sprintf("p%03d", m.next), Kind: Training, Count: 1, Task: Task{CPUMilli: 8000}}
		rj := &RunningJob{Job: j, Tasks: []TaskPlacement{{Task: 0, Node: n, CPUMilli: j.Task.CPUMilli}}}
		m.running[j.ID] = rj
		m.run(rj, nil)
		*phantom = j.ID
	}
}

// apply applies a plan to the cluster and the lists, and tells the
// Standing, as the state machine would.
func (m *stModel) apply(t *testing.T, p Plan) {
	t.Helper()
	for _, ev := range p.Evict {
		rj := m.running[ev.Job]
		gone := func(task int) bool { return len(ev.Tasks) == 0 || slices.Contains(ev.Tasks, task) }
		var keep []TaskPlacement
		var keepA []Assign
		for i, tp := range rj.Tasks {
			if gone(tp.Task) {
				require.NoError(t, m.c.Release(m.assigns[ev.Job][i]))
			} else {
				keep, keepA = append(keep, tp), append(keepA, m.assigns[ev.Job][i])
			}
		}
		if len(keep) == 0 || rj.Job.Kind == Training {
			for _, a := range keepA {
				require.NoError(t, m.c.Release(a))
			}
			delete(m.running, ev.Job)
			delete(m.assigns, ev.Job)
			m.stop(ev.Job)
			m.pending[ev.Job] = rj.Job
			m.st.Queue(m.c, rj.Job)
			continue
		}
		m.running[ev.Job] = &RunningJob{Job: rj.Job, Tasks: keep, Started: rj.Started}
		m.assigns[ev.Job] = keepA
		m.run(m.running[ev.Job], nil)
	}
	for _, jp := range p.Place {
		rj, running := m.running[jp.Job]
		var j *Job
		var tasks []TaskPlacement
		var as []Assign
		if running {
			j, tasks, as = rj.Job, slices.Clone(rj.Tasks), slices.Clone(m.assigns[jp.Job])
		} else {
			j = m.pending[jp.Job]
			delete(m.pending, jp.Job)
			m.st.Unqueue(j)
		}
		sh, err := m.c.ShapeOf(&j.Task)
		require.NoError(t, err)
		for _, tp := range jp.Tasks {
			a, err := m.c.AssignOf(tp, sh.Tag)
			require.NoError(t, err)
			require.NoError(t, m.c.Commit(a))
			tasks, as = append(tasks, tp), append(as, a)
		}
		idx := make([]int, len(tasks))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return tasks[a].Task - tasks[b].Task })
		rj2 := &RunningJob{Job: j, Started: 7}
		var as2 []Assign
		for _, i := range idx {
			rj2.Tasks, as2 = append(rj2.Tasks, tasks[i]), append(as2, as[i])
		}
		m.running[jp.Job] = rj2
		m.assigns[jp.Job] = as2
		m.run(m.running[jp.Job], as2)
	}
}

func (m *stModel) sortedPending() []*Job {
	p, _ := m.lists()
	return p
}

func (m *stModel) anyRunning(rng *rand.Rand) string {
	var ids []string
	for id := range m.running {
		if id[0] == 'j' {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	slices.Sort(ids)
	return ids[rng.IntN(len(ids))]
}

func nodes(c *Cluster) []string {
	out := make([]string, c.NumNodes())
	for i := range out {
		out[i] = c.specs[i].Name
	}
	return out
}
