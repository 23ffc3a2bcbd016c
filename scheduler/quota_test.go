package scheduler

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTenantValidate(t *testing.T) {
	cases := []struct {
		name string
		t    Tenant
		want string // "" for valid
	}{
		{"plain", Tenant{Name: "a"}, ""},
		{"guarantee within max", Tenant{Name: "a", GuaranteedMilli: 2000, MaxMilli: 2000, Weight: 3}, ""},
		{"guarantee without max", Tenant{Name: "a", GuaranteedMilli: 2000}, ""},
		{"no name", Tenant{}, "field name"},
		{"negative guarantee", Tenant{Name: "a", GuaranteedMilli: -1}, "guaranteed_milli"},
		{"negative max", Tenant{Name: "a", MaxMilli: -1}, "max_milli"},
		{"guarantee above max", Tenant{Name: "a", GuaranteedMilli: 3000, MaxMilli: 2000}, "exceeds max_milli"},
		{"negative weight", Tenant{Name: "a", Weight: -1}, "weight"},
		{"NaN weight", Tenant{Name: "a", Weight: math.NaN()}, "weight"},
		{"infinite weight", Tenant{Name: "a", Weight: math.Inf(1)}, "weight"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLedgerShare(t *testing.T) {
	l, err := newLedger([]Tenant{{Name: "b", Weight: 2}, {Name: "a"}})
	require.NoError(t, err)
	l.cap = amount{gpu: 8000, cpu: 100000}
	a, b := l.tenant("a"), l.tenant("b")
	assert.Equal(t, "a", l.tenants[a].Name, "tenants are kept in name order")
	l.tenants[a].used = amount{gpu: 2000, cpu: 10000, mem: 1 << 20}
	l.tenants[b].used = amount{gpu: 1000, cpu: 60000}
	assert.InDelta(t, 0.25, l.share(a), 1e-12, "GPU dominates; memory, of which the fleet has none, does not count")
	assert.InDelta(t, 0.30, l.share(b), 1e-12, "CPU dominates (0.6), halved by the weight")
	assert.Equal(t, -1, l.next(), "no queue: nothing is next")
	// next only offers tenants with queued jobs.
	l.tenants[a].queue = []*Job{{ID: "x"}}
	l.tenants[b].queue = []*Job{{ID: "y"}}
	assert.Equal(t, a, l.next())
	l.tenants[a].used.gpu = 5000
	assert.Equal(t, b, l.next())
	g := l.tenant("guest")
	assert.Equal(t, Tenant{Name: "guest"}, l.tenants[g].Tenant, "an unlisted tenant is best-effort")
	assert.Equal(t, 1.0, l.tenants[g].weight)
}

func TestQuotaCheck(t *testing.T) {
	// 8 GPUs of capacity. a: guarantee 2, max 6; b: guarantee 4; guests
	// have no guarantee and no max.
	cases := []struct {
		name         string
		usedA, usedB int64
		free         int64
		tenant       string
		ask          int64
		want         quotaVerdict
	}{
		{"within the guarantee", 0, 0, 8000, "a", 2000, quotaOK},
		{"within the guarantee though b's is idle", 0, 0, 3000, "a", 2000, quotaOK},
		{"more than the max at all", 0, 0, 8000, "a", 7000, quotaNever},
		{"over the max with what runs", 3000, 0, 5000, "a", 4000, quotaMax},
		{"up to the max", 3000, 4000, 1000, "a", 1000, quotaOK},
		{"borrows what b does not need", 2000, 4000, 2000, "a", 2000, quotaOK},
		{"borrows into b's idle guarantee", 2000, 0, 6000, "a", 3000, quotaBorrow},
		{"borrows past b's idle guarantee", 2000, 0, 6000, "a", 2000, quotaOK},
		{"b's guarantee shields a's unused part too", 0, 4000, 4000, "b", 3000, quotaBorrow},
		{"b borrows beside a's idle guarantee", 0, 4000, 4000, "b", 2000, quotaOK},
		{"guest borrows only", 2000, 4000, 2000, "guest", 2000, quotaOK},
		{"guest may not take guarantees", 0, 0, 8000, "guest", 3000, quotaBorrow},
		{"short of free GPU: a fit question, not quota", 2000, 0, 1000, "a", 2000, quotaOK},
		{"no GPU asked", 6000, 0, 0, "a", 0, quotaOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := newLedger([]Tenant{{Name: "a", GuaranteedMilli: 2000, MaxMilli: 6000}, {Name: "b", GuaranteedMilli: 4000}})
			require.NoError(t, err)
			l.tenants[l.tenant("a")].used.gpu = tc.usedA
			l.tenants[l.tenant("b")].used.gpu = tc.usedB
			l.free.gpu = tc.free
			assert.Equal(t, tc.want, l.check(l.tenant(tc.tenant), tc.ask))
		})
	}
}

func TestQuotaInSchedule(t *testing.T) {
	// Two 4-GPU nodes. Tenant a: guarantee 2 GPUs, max 4; tenant b:
	// guarantee 4 GPUs.
	tenants := []Tenant{{Name: "a", GuaranteedMilli: 2000, MaxMilli: 4000}, {Name: "b", GuaranteedMilli: 4000}}
	t.Run("a job beyond the max never holds up the queue", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 2, 4))
		next := qJob("next", "a", 0, 1, 1)
		next.Submitted = 1
		in := f.pass(0, qJob("huge", "a", 0, 1, 5), next)
		in.Tenants = tenants
		plan := qSchedule(t, f.c, in)
		assert.Equal(t, []string{"next"}, qPlaced(plan))
		assert.Equal(t, WhyQuotaNever, qWhy(plan)["huge"])
	})
	t.Run("at the max the queue waits", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 2, 4))
		f.run(t, qJob("held", "a", 0, 1, 3), 0, "n0:0,1,2")
		small := qJob("small", "a", 0, 1, 1)
		small.Submitted = 1
		in := f.pass(0, qJob("two", "a", 0, 1, 2), small)
		in.Tenants, in.Backfill = tenants, true
		plan := qSchedule(t, f.c, in)
		assert.Empty(t, plan.Place, "a quota-blocked head reserves nothing and lets nothing pass")
		assert.Equal(t, WhyQuotaMax, qWhy(plan)["two"])
		assert.Equal(t, WhyBehindHead+" two", qWhy(plan)["small"])
	})
	t.Run("borrowing stops where b's idle guarantee starts", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 2, 4))
		var pending []*Job
		for i, id := range []string{"a0", "a1", "a2", "a3"} {
			j := qJob(id, "a", 0, 1, 1)
			j.Submitted = int64(i)
			pending = append(pending, j)
		}
		in := f.pass(0, pending...)
		in.Tenants = []Tenant{{Name: "a", GuaranteedMilli: 2000}, {Name: "b", GuaranteedMilli: 4000}}
		plan := qSchedule(t, f.c, in)
		// 8 GPUs: a's 2 guaranteed and 2 borrowed leave b's 4.
		assert.Equal(t, []string{"a0", "a1", "a2", "a3"}, qPlaced(plan))

		in.Pending = append(in.Pending, qJob("a4", "a", 0, 1, 1))
		in.Pending[4].Submitted = 9
		plan = qSchedule(t, f.c, in)
		assert.Len(t, plan.Place, 4)
		assert.Equal(t, WhyQuotaBorrow, qWhy(plan)["a4"])

		// Once b runs its guarantee, what is idle may be borrowed.
		f.run(t, qJob("b-run", "b", 0, 1, 4), 0, "n1:0,1,2,3")
		in.Running = f.running
		plan = qSchedule(t, f.c, in)
		assert.Equal(t, []string{"a0", "a1", "a2", "a3"}, qPlaced(plan))
		assert.Equal(t, WhyNoFit, qWhy(plan)["a4"], "now it is room, not quota, that is short")
	})
	t.Run("a best-effort tenant runs on unclaimed capacity only", func(t *testing.T) {
		f := qNew(t, qNodes("n", "H100", 2, 4))
		in := f.pass(0, qJob("g1", "guest", 0, 1, 2), qJob("g2", "guest", 0, 1, 1))
		in.Pending[1].Submitted = 1
		in.Tenants = tenants // 6 of 8 GPUs guaranteed to a and b
		plan := qSchedule(t, f.c, in)
		assert.Equal(t, []string{"g1"}, qPlaced(plan))
		assert.Equal(t, WhyQuotaBorrow, qWhy(plan)["g2"])
	})
}
