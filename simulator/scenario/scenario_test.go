package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/simulator/replay"
)

const examples = "../../examples/scenarios/"

// exampleNames are the scenarios shipped in examples/.
var exampleNames = []string{"retire-onprem", "burst-to-cloud", "zone-outage", "residency"}

// loaded is a scenario with its inputs.
func loaded(t *testing.T, name string) (*Scenario, *Inputs) {
	t.Helper()
	s, err := Load(examples + name + ".yaml")
	require.NoError(t, err)
	in, err := s.LoadInputs()
	require.NoError(t, err)
	return s, in
}

// logged runs a config and returns its result and event log.
func logged(t *testing.T, cfg replay.Config) (*replay.Result, []replay.Event) {
	t.Helper()
	var evs []replay.Event
	cfg.Observe = func(e replay.Event) { evs = append(evs, e) }
	res, err := replay.Run(context.Background(), cfg)
	require.NoError(t, err)
	return res, evs
}

func poolOf(cfg *replay.Config) map[string]string {
	m := map[string]string{}
	for _, n := range cfg.Nodes {
		m[n.Name] = n.Pool
	}
	return m
}

func TestExamplesLoadAndCompile(t *testing.T) {
	for _, name := range exampleNames {
		t.Run(name, func(t *testing.T) {
			s, in := loaded(t, name)
			c, err := s.CompileWith(in, nil)
			require.NoError(t, err)
			assert.Equal(t, name, s.Name)
			assert.NotEmpty(t, c.Config.Jobs)
			assert.Len(t, c.Actions, len(s.Actions))
			for _, a := range c.Actions {
				assert.Positive(t, a.Events+len(a.To), "action %d compiles to something", a.Index)
			}
		})
	}
}

func TestRetireOnpremMovesWorkOff(t *testing.T) {
	s, in := loaded(t, "retire-onprem")
	c, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	at := c.Actions[0].At
	// 2027-03-31 is 90 minutes after workload.start.
	assert.Equal(t, c.Start+90*60*replay.Second, at)
	pool := poolOf(&c.Config)
	res, evs := logged(t, c.Config)
	startedThere, requeued := 0, 0
	for _, e := range evs {
		if e.Kind == replay.EventStart && pool[e.Node] == "hz-onprem" {
			require.Less(t, e.At, at, "job %s starts on the retired hall", e.ID)
			startedThere++
		}
		if e.Kind == replay.EventRequeue && e.At == at {
			requeued++
		}
	}
	assert.Positive(t, startedThere, "the hall carried work before it retired")
	assert.Positive(t, requeued, "the retirement moved running work")
	assert.Equal(t, len(c.Config.Jobs), res.Summary.Ended, "the moved work finished elsewhere")
}

func TestZoneOutageDisruptsAndRestarts(t *testing.T) {
	s, in := loaded(t, "zone-outage")
	c, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	out := c.Actions[0]
	require.Equal(t, DoOutage, out.Do)
	zone := map[string]bool{}
	for _, n := range out.Nodes {
		zone[n] = true
	}
	assert.Len(t, zone, 340, "the outposts zone")
	res, evs := logged(t, c.Config)
	hit := map[int]bool{}
	for _, e := range evs {
		if e.Kind == replay.EventRequeue && e.At == out.At {
			hit[e.Job] = true
		}
		if e.Kind == replay.EventStart && zone[e.Node] {
			inWindow := e.At >= out.At && e.At < out.At+6*replay.Hour
			require.False(t, inWindow, "job %s starts in the zone while it is down", e.ID)
		}
	}
	require.NotEmpty(t, hit, "the outage disrupts running jobs")
	restarted := 0
	for k := range hit {
		if res.Jobs[k].Restarts > 0 {
			restarted++
		}
		assert.Positive(t, res.Jobs[k].Preemptions)
	}
	assert.Positive(t, restarted, "disrupted jobs start again")
	// Without the outage, no job is requeued at that instant.
	c2, err := s.CompileWith(in, func(i int) bool { return i == 0 })
	require.NoError(t, err)
	_, evs2 := logged(t, c2.Config)
	for _, e := range evs2 {
		assert.False(t, e.Kind == replay.EventRequeue && e.At == out.At, "requeue without the outage")
	}
}

func TestBurstOutageSendsMoreToCloud(t *testing.T) {
	s, in := loaded(t, "burst-to-cloud")
	with, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	without, err := s.CompileWith(in, func(int) bool { return true })
	require.NoError(t, err)
	rw, _ := logged(t, with.Config)
	ro, _ := logged(t, without.Config)
	assert.Positive(t, ro.Summary.CloudJobs, "the workload bursts even without the outage")
	assert.Greater(t, rw.Summary.CloudJobs, ro.Summary.CloudJobs, "a rack down sends more to the cloud")
	assert.Greater(t, rw.Summary.CloudCost, ro.Summary.CloudCost)

	// The peak of burst GPUs, from the event log, against the records:
	// cloud runs from their departure to their end.
	r, err := runLogged(context.Background(), with.Config, false)
	require.NoError(t, err)
	pk := 0.0
	for i := range r.res.Jobs {
		at := &r.res.Jobs[i]
		if at.Where != "cloud" {
			continue
		}
		held := 0.0
		for k := range r.res.Jobs {
			o := &r.res.Jobs[k]
			if o.Where == "cloud" && o.Start <= at.Start && (o.End < 0 || o.End > at.Start) {
				held += o.GPUs
			}
		}
		pk = max(pk, held)
	}
	assert.Positive(t, pk)
	assert.Equal(t, pk, r.peakCloud)
}

func TestResidencyKeepsTenantOnCompliantPools(t *testing.T) {
	s, in := loaded(t, "residency")
	c, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	var res *replay.Result
	var evs []replay.Event
	ims, err := s.impacts(context.Background(), in, func(_ Compiled1, _, a *run) { res, evs = a.res, a.events })
	require.NoError(t, err)
	compliant := map[string]bool{}
	for _, p := range c.Config.Pools {
		compliant[p.Name] = p.Labels["compliance"] == "cn-pipl"
	}
	pool := poolOf(&c.Config)
	tenant0, cloudOthers := 0, 0
	for _, e := range evs {
		if e.Kind != replay.EventStart {
			continue
		}
		if res.Jobs[e.Job].Tenant == "tenant-0" {
			require.True(t, compliant[pool[e.Node]], "tenant-0's job %s starts on %s", e.ID, pool[e.Node])
			tenant0++
		} else if !compliant[pool[e.Node]] {
			cloudOthers++
		}
	}
	assert.Positive(t, tenant0)
	assert.Positive(t, cloudOthers, "other tenants may use the cloud")

	require.Len(t, ims, 1)
	require.NotEmpty(t, ims[0].Stranded)
	for _, st := range ims[0].Stranded {
		assert.Equal(t, "tenant-0", st.Tenant, "only the regulated tenant is stranded: %s", st.ID)
		assert.Contains(t, st.Reason, "labels or residency do not match")
		assert.Contains(t, st.Reason, "node not ready")
		k := slices.IndexFunc(res.Jobs, func(r replay.JobRecord) bool { return r.ID == st.ID })
		require.GreaterOrEqual(t, k, 0)
		assert.Negative(t, res.Jobs[k].Start, "a stranded job never starts")
	}
	assert.Equal(t, float64(len(ims[0].Stranded)), ims[0].NotStarted.Delta(), "every job that no longer starts is stranded")
}

// TestImpactReconciles recomputes every figure of the retire impact from
// the two runs' job records and event logs.
func TestImpactReconciles(t *testing.T) {
	s, in := loaded(t, "retire-onprem")
	var before, after *replay.Result
	var evA, evB []replay.Event
	ims, err := s.impacts(context.Background(), in, func(_ Compiled1, b, a *run) {
		before, after, evB, evA = b.res, a.res, b.events, a.events
	})
	require.NoError(t, err)
	require.Len(t, ims, 1)
	im := ims[0]
	require.NotEmpty(t, evA)
	require.NotEmpty(t, evB)

	sum := func(res *replay.Result, f func(r *replay.JobRecord) float64) float64 {
		x := 0.0
		for i := range res.Jobs {
			x += f(&res.Jobs[i])
		}
		return x
	}
	lost := func(r *replay.JobRecord) float64 { return r.LostGPUHours }
	cost := func(r *replay.JobRecord) float64 { return r.Cost }
	assert.InDelta(t, sum(before, lost), im.LostGPUHours.Before, 1e-9)
	assert.InDelta(t, sum(after, lost), im.LostGPUHours.After, 1e-9)
	assert.Zero(t, im.LostGPUHours.Before, "nothing is lost without the retirement")
	assert.InDelta(t, sum(after, lost)-sum(before, lost), im.LostGPUHours.Delta(), 1e-9)
	assert.InDelta(t, sum(before, cost), im.Cost.Before, 1e-6)
	assert.InDelta(t, sum(after, cost), im.Cost.After, 1e-6)

	// Disrupted jobs: the requeues at the retirement's instant, by kind,
	// and the records agree that each lost its place.
	n := 0
	for _, e := range evA {
		if e.Kind == replay.EventRequeue && e.At == im.Action.At {
			n++
			assert.Positive(t, after.Jobs[e.Job].Preemptions)
		}
	}
	assert.Equal(t, n, im.Disrupted["training"])
	assert.Len(t, im.DisruptedJobs, n)
	mean := func(res *replay.Result) float64 {
		s, k := 0.0, 0
		for i := range res.Jobs {
			if w, ok := res.Jobs[i].Wait(); ok {
				s += float64(w) / float64(replay.Hour)
				k++
			}
		}
		return s / float64(k)
	}
	assert.InDelta(t, mean(before), im.WaitMeanH.Before, 1e-12)
	assert.InDelta(t, mean(after), im.WaitMeanH.After, 1e-12)
	// Peak cloud GPUs: the most held in cloud pools at any instant a run
	// starts, counted from the records' runs one instant at a time.
	cloud := map[string]bool{"cloud-sh-ondemand": true, "cloud-sg-spot": true}
	peak := func(res *replay.Result, _ []replay.Event) float64 {
		pk := 0.0
		for i := range res.Jobs {
			for _, at := range res.Jobs[i].Runs {
				held := 0.0
				for k := range res.Jobs {
					for _, sg := range res.Jobs[k].Runs {
						if sg.Start <= at.Start && (sg.End < 0 || sg.End > at.Start) {
							for _, p := range sg.Pools {
								if cloud[p.Pool] {
									held += p.GPUs
								}
							}
						}
					}
				}
				pk = max(pk, held)
			}
		}
		return pk
	}
	assert.InDelta(t, peak(before, evB), im.PeakCloudGPUs.Before, 1e-9)
	assert.InDelta(t, peak(after, evA), im.PeakCloudGPUs.After, 1e-9)
	assert.Greater(t, im.PeakCloudGPUs.After, 0.0)

	var b strings.Builder
	require.NoError(t, WriteImpacts(&b, ims))
	assert.Contains(t, b.String(), "GPU-hours lost to restarts")
	assert.Contains(t, b.String(), "jobs that can no longer run anywhere")
	t.Logf("retire-onprem:\n%s", b.String())
}

func TestFaultsAreDrawnFromTheSeed(t *testing.T) {
	s, in := loaded(t, "zone-outage")
	a, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	b, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	assert.Equal(t, a.Config.NodeEvents, b.Config.NodeEvents)
	mtbf := a.Actions[1]
	require.Equal(t, DoMTBF, mtbf.Do)
	assert.Positive(t, mtbf.Events)
	assert.Zero(t, mtbf.Events%2, "every failure is repaired")
	seed := uint64(7)
	s.Seed = &seed
	c, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	assert.NotEqual(t, a.Config.NodeEvents, c.Config.NodeEvents, "another seed draws other faults")
	for i := 1; i < len(c.Config.NodeEvents); i++ {
		assert.LessOrEqual(t, c.Config.NodeEvents[i-1].At, c.Config.NodeEvents[i].At, "events in time order")
	}
}

// TestReclaimTakesItsShare checks a spot reclaim wave takes the fraction
// of the pool it names, the same nodes for the same seed.
func TestReclaimTakesItsShare(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`fleet: demo
workload: {trace: embedded:openb, jobs: 50, default_duration: 1h}
actions:
  - {at: +1h, do: reclaim, pool: cloud-sg-spot, fraction: 0.3, for: 2h}
  - {at: +2h, do: retire, nodes: [hz-t4-0000]}
  - {at: +3h, do: outage, nodes: [hz-t4-0000], for: 1h}
`), 0o644))
	s, err := Load(p)
	require.NoError(t, err)
	c, err := s.Compile()
	require.NoError(t, err)
	require.Len(t, c.Actions[0].Nodes, 30)
	down, up := 0, 0
	for _, e := range c.Config.NodeEvents {
		if strings.HasPrefix(e.Node, "sg-a10") {
			if e.State == scheduler.NodeDown {
				down++
				assert.Equal(t, c.Start+replay.Hour, e.At)
			} else {
				up++
				assert.Equal(t, c.Start+3*replay.Hour, e.At)
			}
		}
		if e.Node == "hz-t4-0000" {
			assert.Equal(t, scheduler.NodeRetired, e.State, "nothing follows a retirement")
		}
	}
	assert.Equal(t, 30, down)
	assert.Equal(t, 30, up)
	_, err = replay.Run(context.Background(), c.Config)
	require.NoError(t, err)
}

func TestErrorsNameFileLineField(t *testing.T) {
	head := "fleet: demo\nworkload: {trace: embedded:openb, jobs: 20, default_duration: 1h}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top field", head + "polcy: fgd\n", "s.yaml:3: field polcy: unknown field"},
		{"unknown action field", head + "actions:\n  - at: +1h\n    do: retire\n    pol: x\n", "s.yaml:6: field actions[0].pol: unknown field"},
		{"type error", head + "actions:\n  - {at: +1h, do: reclaim, pool: x, fraction: lots}\n", "s.yaml:4: field actions[0].fraction: cannot unmarshal"},
		{"seed type", head + "seed: -1\n", "s.yaml:3: field seed: cannot unmarshal"},
		{"unknown kind", head + "actions:\n  - {at: +1h, do: explode, pool: x}\n", "s.yaml:4: field actions[0].do: unknown action \"explode\""},
		{"bad time", head + "actions:\n  - {at: tomorrow, do: retire, pool: x}\n", "s.yaml:4: field actions[0].at: want +DURATION"},
		{"retire_at elsewhere", head + "actions:\n  - {at: retire_at, do: drain, pool: x}\n", "field actions[0].at: retire_at is a time only retire actions take"},
		{"no target", head + "actions:\n  - {at: +1h, do: outage}\n", "s.yaml:4: field actions[0]: outage needs nodes"},
		{"bad window", head + "actions:\n  - {at: +1h, do: outage, pool: x, for: -2h}\n", "field actions[0].for: want a positive duration"},
		{"mtbf without end", head + "actions:\n  - {do: mtbf, pool: x, mtbf: 30d, mttr: 4h}\n", "s.yaml:4: field actions[0].until: faults need an end"},
		{"policy", head + "policy: nope\n", "s.yaml:3: field policy: unknown policy"},
		{"no workload", "fleet: demo\n", "field workload: want exactly one of trace, gen and fit"},
		{"both workloads", "fleet: demo\nworkload:\n  trace: x.csv\n  gen: {jobs: 1}\n", "s.yaml:3: field workload: want exactly one"},
		{"fit and trace", "fleet: demo\nworkload:\n  trace: x.csv\n  fit: embedded:openb\n", "s.yaml:3: field workload: want exactly one of trace, gen and fit"},
		{"rate with a trace", "fleet: demo\nworkload:\n  trace: x.csv\n  rate_per_hour: 10\n", "s.yaml:4: field workload.rate_per_hour: a trace keeps its own arrivals"},
		{"negative rate", "fleet: demo\nworkload:\n  fit: embedded:openb\n  rate_per_hour: -1\n", "s.yaml:4: field workload.rate_per_hour: want a finite rate"},
		{"no fleet", "workload: {trace: x}\n", "s.yaml:1: field fleet: want a fleet file"},
		{"burst with backfill", head + "queue: {discipline: backfill}\nburst: {cloud_wait: none}\n", "s.yaml:4: field burst: the burst method runs a strict fifo"},
		{"bad wait", head + "burst: {cloud_wait: soon}\n", "s.yaml:3: field burst.cloud_wait: cloud wait \"soon\""},
		{"preemptible without preempt", head + "queue:\n  preemptible: all\n", "s.yaml:4: field queue.preemptible: needs preempt: true"},
		{"preemptible unknown", head + "queue:\n  preempt: true\n  preemptible: services\n", "s.yaml:5: field queue.preemptible: preemptible \"services\": want all, training or none"},
		{"empty", "", "s.yaml: empty scenario file"},
		{"syntax", "fleet: [\n", "s.yaml: yaml: line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.yaml), "s.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCompileErrors(t *testing.T) {
	head := "fleet: demo\nworkload: {trace: embedded:openb, jobs: 20, default_duration: 1h}\n"
	tests := []struct {
		name, yaml, want string
		engine           bool
	}{
		{"quota under burst", head + "burst: {cloud_wait: none}\nactions:\n  - {at: +1h, do: quota, pool: cloud-sg-spot, max_nodes: 10}\n",
			"s.yaml:5: field actions[0].do: a quota needs pool scaling", false},
		{"price of no pool", head + "actions:\n  - {at: +1h, do: price, pool: nope, price_per_gpu_hour: 1}\n", "s.yaml:4: field actions[0].pool: no pool \"nope\"", false},
		{"quota of owned pool", head + "actions:\n  - {at: +1h, do: quota, pool: hz-onprem, max_nodes: 10}\n", "s.yaml:4: field actions[0].pool: pool hz-onprem is onprem", false},
		{"unknown pool", head + "actions:\n  - {at: +1h, do: retire, pool: nowhere}\n", "s.yaml:4: field actions[0].pool: no pool \"nowhere\"", false},
		{"unknown node", head + "actions:\n  - {at: +1h, do: retire, nodes: [x]}\n", "s.yaml:4: field actions[0].nodes: no node \"x\"", false},
		{"no match", head + "actions:\n  - {at: +1h, do: retire, pool: hz-onprem, zone: elsewhere}\n", "action retire at s.yaml:4 (actions[0]): selects no node", false},
		{"wall time on relative clock", head + "actions:\n  - {at: 2027-01-01, do: retire, pool: hz-onprem}\n", "s.yaml:4: field actions[0].at: 2027-01-01T00:00:00Z: the trace's clock is relative", false},
		{"retire_at missing", head + "actions:\n  - {at: retire_at, do: retire, pool: hz-outposts}\n", "pool hz-outposts has no retire_at", false},
		{"tenant pool", head + "tenants:\n  - {tenant: a, pools: [nope]}\n", "s.yaml:4: field tenants[0].pools: no pool \"nope\"", false},
		{"missing fleet file", "fleet: nope.yaml\nworkload: {trace: embedded:openb}\n", "s.yaml:1: field fleet: fleet: open", false},
		{"cloud node under burst", head + "burst: {cloud_wait: none}\nactions:\n  - {at: +1h, do: outage, pool: cloud-sg-spot}\n",
			"action outage at s.yaml:5 (actions[0]): node sg-a10-0000 is in cloud pool cloud-sg-spot, which under burst has no nodes", false},
		{"gen spec", "fleet: demo\nworkload:\n  gen: {jobs: 5, colour: red}\n", "s.yaml:3: field workload.gen: spec: json: unknown field \"colour\"", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(strings.NewReader(tc.yaml), "s.yaml")
			require.NoError(t, err)
			_, err = s.Compile()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, tc.engine, errors.Is(err, ErrNeedsEngine))
		})
	}
}

func TestMoveRewritesArrivalsOnly(t *testing.T) {
	s, err := Parse(strings.NewReader(`fleet: demo
workload:
  gen: {jobs: 200, seed: 1, clock: relative, zone: UTC, tenants: 2, kind: training,
        arrival: {process: poisson, rate_per_hour: 100},
        duration: {dist: lognormal, mu: 7, sigma: 0.5, min: 60, max: 7200},
        shapes: [{weight: 1, tasks: [{count: 1, gpus: 1, gpu_milli: 1000, cpu_milli: 1000, memory_mib: 1024}]}]}
actions:
  - {at: +1h, do: move, tenant: tenant-0, to: [hz-outposts]}
`), "s.yaml")
	require.NoError(t, err)
	c, err := s.Compile()
	require.NoError(t, err)
	moved := 0
	for _, j := range c.Config.Jobs {
		has := len(j.Job.Task.Constraints) > 0
		want := j.Job.Tenant == "tenant-0" && j.Submit >= c.Actions[0].At
		assert.Equal(t, want, has, "job %s", j.Job.ID)
		if has {
			moved++
		}
	}
	assert.Positive(t, moved)
	in, err := s.LoadInputs()
	require.NoError(t, err)
	for _, j := range in.Jobs {
		assert.Empty(t, j.Job.Task.Constraints, "the inputs stay as read")
	}
	res, evs := logged(t, c.Config)
	pool := poolOf(&c.Config)
	for _, e := range evs {
		if e.Kind == replay.EventStart && res.Jobs[e.Job].Tenant == "tenant-0" && res.Jobs[e.Job].Submit >= c.Actions[0].At {
			assert.Equal(t, "hz-outposts", pool[e.Node])
		}
	}
}

// TestImpactCountsOnlyItsAction: requeues of another action (an earlier
// outage on the same hall) are not the retirement's disruption.
func TestImpactCountsOnlyItsAction(t *testing.T) {
	data, err := os.ReadFile(examples + "retire-onprem.yaml")
	require.NoError(t, err)
	data = append(data, "  - {at: +60m, do: outage, pool: hz-onprem, for: 10m}\n"...)
	// Training that runs for hours, so the hall holds work at both actions.
	src := regexp.MustCompile(`(?s)workload:.*?\npolicy:`).ReplaceAllString(string(data), `workload:
  start: 2027-03-30T22:30:00Z
  gen:
    jobs: 1500
    seed: 7
    clock: relative
    zone: UTC
    arrival: {process: poisson, rate_per_hour: 1200}
    duration: {dist: lognormal, mu: 8.2, sigma: 1.2, min: 60, max: 172800}
    shapes:
      - {weight: 0.5, tasks: [{count: 1, gpus: 1, gpu_milli: 1000, cpu_milli: 8000, memory_mib: 32768}]}
      - {weight: 0.2, tasks: [{count: 1, gpus: 4, gpu_milli: 1000, cpu_milli: 32000, memory_mib: 131072}]}
    tenants: 8
    kind: training
policy:`)
	s, err := Parse(strings.NewReader(src), examples+"retire-onprem.yaml")
	require.NoError(t, err)
	in, err := s.LoadInputs()
	require.NoError(t, err)
	var evs []replay.Event
	ims, err := s.impacts(context.Background(), in, func(_ Compiled1, _, a *run) { evs = a.events })
	require.NoError(t, err)
	require.Len(t, ims, 1)
	full, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	atRetire, atOutage := 0, 0
	for _, e := range evs {
		if e.Kind == replay.EventRequeue {
			switch e.At {
			case ims[0].Action.At:
				atRetire++
			case full.Actions[1].At:
				atOutage++
			}
		}
	}
	t.Logf("requeues at the retirement %d, at the outage %d", atRetire, atOutage)
	require.Positive(t, atRetire)
	require.Positive(t, atOutage, "the outage disrupts work too")
	assert.Equal(t, atRetire, ims[0].Disrupted["training"])
}

// TestDrainKeepsWorkAndTakesNone: a drained pool keeps its running work
// (nothing is disrupted) and starts nothing until the drain ends; the
// impact says so, and is the same bytes when computed again.
func TestDrainKeepsWorkAndTakesNone(t *testing.T) {
	s, err := Parse(strings.NewReader(`fleet: demo
workload:
  gen: {jobs: 600, seed: 2, clock: relative, zone: UTC, tenants: 2, kind: training,
        arrival: {process: poisson, rate_per_hour: 300},
        duration: {dist: lognormal, mu: 8, sigma: 0.5, min: 60, max: 14400},
        shapes: [{weight: 1, tasks: [{count: 1, gpus: 1, gpu_milli: 1000, cpu_milli: 1000, memory_mib: 1024}]}]}
actions:
  - {at: +30m, do: drain, pool: cloud-sg-spot, for: 1h}
`), "drain.yaml")
	require.NoError(t, err)
	in, err := s.LoadInputs()
	require.NoError(t, err)
	c, err := s.CompileWith(in, nil)
	require.NoError(t, err)
	from, to := c.Actions[0].At, c.Actions[0].At+replay.Hour
	pool := poolOf(&c.Config)
	_, evs := logged(t, c.Config)
	before, during, after := 0, 0, 0
	for _, e := range evs {
		require.NotEqual(t, replay.EventRequeue, e.Kind, "a drain loses no work")
		if e.Kind != replay.EventStart || pool[e.Node] != "cloud-sg-spot" {
			continue
		}
		switch {
		case e.At < from:
			before++
		case e.At < to:
			during++
		default:
			after++
		}
	}
	assert.Positive(t, before)
	assert.Zero(t, during, "nothing starts on a draining node")
	assert.Positive(t, after, "the pool takes work again when the drain ends")

	ims, err := s.Impacts(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, ims, 1)
	assert.Empty(t, ims[0].Disrupted)
	assert.Zero(t, ims[0].LostGPUHours.After)
	again, err := s.Impacts(context.Background(), in)
	require.NoError(t, err)
	a, _ := json.Marshal(ims)
	b, _ := json.Marshal(again)
	assert.Equal(t, string(a), string(b), "same inputs, same bytes")
}

// TestPriceChangesCost: the price workload runs on the spot pool alone
// (1-GPU jobs, best fit). Doubling its price from the start doubles the
// cost; doubling it mid-way lands strictly between.
func TestPriceChangesCost(t *testing.T) {
	base := `fleet: demo
workload:
  gen: {jobs: 300, seed: 2, clock: relative, zone: UTC, tenants: 2, kind: training,
        arrival: {process: poisson, rate_per_hour: 300},
        duration: {dist: lognormal, mu: 8, sigma: 0.5, min: 60, max: 14400},
        shapes: [{weight: 1, tasks: [{count: 1, gpus: 1, gpu_milli: 1000, cpu_milli: 1000, memory_mib: 1024}]}]}
`
	cost := func(actions string) float64 {
		s, err := Parse(strings.NewReader(base+actions), "price.yaml")
		require.NoError(t, err)
		c, err := s.Compile()
		require.NoError(t, err)
		res, evs := logged(t, c.Config)
		pool := poolOf(&c.Config)
		for _, e := range evs {
			if e.Kind == replay.EventStart {
				require.Equal(t, "cloud-sg-spot", pool[e.Node])
			}
		}
		x := 0.0
		for i := range res.Jobs {
			x += res.Jobs[i].Cost
		}
		return x
	}
	plain := cost("")
	require.Positive(t, plain)
	doubled := cost("actions:\n  - {at: +0s, do: price, pool: cloud-sg-spot, price_per_gpu_hour: 2.20}\n")
	assert.InDelta(t, 2*plain, doubled, 1e-6*plain)
	midway := cost("actions:\n  - {at: +30m, do: price, pool: cloud-sg-spot, price_per_gpu_hour: 2.20}\n")
	assert.Greater(t, midway, plain)
	assert.Less(t, midway, doubled)
}

// TestFitWorkload: a fit workload draws the fitted trace's shapes at the
// rate asked, as many jobs as asked, the same jobs every time.
func TestFitWorkload(t *testing.T) {
	src := "fleet: demo\nworkload:\n  fit: embedded:openb\n  jobs: 3000\n  rate_per_hour: 6000\n"
	load := func() *Inputs {
		s, err := Parse(strings.NewReader(src), "fit.yaml")
		require.NoError(t, err)
		in, err := s.LoadInputs()
		require.NoError(t, err)
		return in
	}
	in := load()
	require.Len(t, in.Jobs, 3000)
	last := in.Jobs[len(in.Jobs)-1].Submit
	hours := float64(last) / float64(replay.Hour)
	// About half an hour; the fitted daily profile speeds up or slows down
	// the first hours (openb's own rate, 2.3 an hour, would take months).
	assert.True(t, hours > 0.2 && hours < 1, "3,000 arrivals at 6,000 an hour took %.2f h", hours)
	shared := 0
	for _, j := range in.Jobs {
		if m := j.Job.Task.GPUMilli; m > 0 && m < 1000 {
			shared++
		}
	}
	assert.Greater(t, shared, 600, "openb's shares of a GPU are in the mix")
	assert.Equal(t, in.Jobs, load().Jobs, "the same scenario draws the same jobs")
}

// A quota action compiles to a quota event and turns on pool scaling; the
// run then asks for cloud nodes within the new cap.
func TestQuotaCompilesAndScales(t *testing.T) {
	s, err := Parse(strings.NewReader(`fleet: demo
workload: {trace: embedded:openb, jobs: 40, default_duration: 1h}
actions:
  - {at: +1h, do: quota, pool: cloud-sg-spot, max_nodes: 150}
`), "s.yaml")
	require.NoError(t, err)
	c, err := s.Compile()
	require.NoError(t, err)
	require.NotNil(t, c.Config.Scale)
	require.Len(t, c.Config.QuotaEvents, 1)
	q := c.Config.QuotaEvents[0]
	assert.Equal(t, "cloud-sg-spot", q.Pool)
	assert.Equal(t, 150, q.MaxNodes)
	assert.Equal(t, c.Start+replay.Hour, q.At)
	require.Len(t, c.Actions, 1)
	assert.Equal(t, 1, c.Actions[0].Events)
	quotas := 0
	c.Config.Observe = func(e replay.Event) {
		if e.Kind == replay.EventQuota && e.ID == "cloud-sg-spot" && e.State == "150" {
			quotas++
		}
	}
	res, err := replay.Run(context.Background(), c.Config)
	require.NoError(t, err)
	assert.Equal(t, 1, quotas)
	assert.Contains(t, res.Summary.Scaling, "cloud-sg-spot")
}
