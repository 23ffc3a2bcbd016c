package scheduler

import (
	"cmp"
	"slices"
	"strings"
)

// topUp places the missing replicas of running inference services before
// the queue runs: a service that lost replicas to a failed node or to
// preemption gets them back as soon as capacity and its tenant's quota
// allow, highest priority first. A service is not a gang: replicas come
// back one at a time, each in the failure domain its live replicas leave
// emptiest. It never preempts.
func (s *pass) topUp() {
	if s.st != nil && s.st.short == 0 {
		return // a kept set-up counts the services short of replicas
	}
	var svc []*liveJob
	for _, lj := range s.live {
		if lj.running && lj.job.Kind == Inference && lj.nAlive < lj.job.Count {
			svc = append(svc, lj)
		}
	}
	slices.SortFunc(svc, func(a, b *liveJob) int {
		return cmp.Or(cmp.Compare(b.job.Priority, a.job.Priority), strings.Compare(a.job.ID, b.job.ID))
	})
	for _, lj := range svc {
		s.topUpOne(lj)
	}
}

func (s *pass) topUpOne(lj *liveJob) {
	j := lj.job
	sh, err := s.c.ShapeOf(&j.Task)
	if err != nil {
		return // the job was validated when the pass began
	}
	label := spreadLabel(j)
	used := map[string]int{}
	// The live task indices, sorted: memory by what runs, never by Count.
	var have []int
	for k, t := range lj.tasks {
		if lj.alive[k] && t >= 0 && t < j.Count {
			have = append(have, t)
			used[s.c.labels[lj.assigns[k].Node][label]]++
		}
	}
	slices.Sort(have)
	end := endOf(s.in.Now, j.Walltime)
	jp := JobPlacement{Job: j.ID}
	for task, h := 0, 0; task < j.Count; task++ {
		if h < len(have) && have[h] == task {
			for h < len(have) && have[h] == task {
				h++
			}
			continue
		}
		if s.l.check(lj.tenant, sh.GPUMilli()) != quotaOK {
			break
		}
		n := s.c.selectSpread(s.in.Policy, &sh, s.in.Rng, label, used)
		if n == NoNode {
			break
		}
		mark := len(s.undo)
		a := s.c.assign(s.in.Policy, n, &sh, s.in.Rng)
		s.c.apply(&a)
		as := []Assign{a}
		s.applied(as)
		if s.quotaAfter(lj.tenant, as) != quotaOK || !s.admit(as, end) {
			s.rollback(mark)
			break
		}
		s.touch(lj)
		lj.tasks = append(lj.tasks, task)
		lj.assigns = append(lj.assigns, a)
		if s.st != nil {
			s.st.planAs = append(s.st.planAs, a)
		}
		lj.alive = append(lj.alive, true)
		lj.nAlive++
		s.l.tenants[lj.tenant].used.add(amountOf(&a))
		used[s.c.labels[n][label]]++
		jp.Tasks = append(jp.Tasks, s.c.Placement(task, a))
	}
	if len(jp.Tasks) > 0 {
		s.plan.Place = append(s.plan.Place, jp)
	}
}
